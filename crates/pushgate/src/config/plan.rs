//! What [`serve`](crate::serve) runs, derived from a [`Config`] in one place: each component's
//! settings (the transports', the publish API's, the accept loop's), the access policy, the
//! CORS layer and the sources, built once, before anything binds or connects.
//!
//! Deriving is validating: [`Config::validate`] is `Plan::new` with the plan dropped, so
//! whatever `serve` would refuse, `validate` (and `pushgate serve --print-config`) refuses
//! with the same error, and a plan that exists holds no half-checked value (a malformed
//! pattern cannot be skipped here and refused there).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pushgate_auth::{AccessPolicy, AdminKey};
use pushgate_http::Authorize;
use pushgate_longpoll::LongPollConfig;
use pushgate_poll::PollConfig;
use pushgate_sse::SseConfig;
use pushgate_ws::WsConfig;
use tower_http::cors::CorsLayer;

use super::{Config, ConfigError};
use crate::api::BodyLimits;
use crate::forwarded::TrustedProxies;
use crate::server;
use crate::sources::Sources;

/// A [`Config`], resolved into the parts `serve` composes.
pub(crate) struct Plan {
    /// The access policy every transport, the publish API and the demo check.
    pub(crate) authorize: Arc<dyn Authorize>,
    /// The same, when auth is on: for its housekeeping (`AccessPolicy::maintain`) and for
    /// revoking tokens (`AccessPolicy::revoke`).
    pub(crate) policy: Option<AccessPolicy>,
    /// The admin key alone, for presence and for naming a sender.
    pub(crate) admin: Option<AdminKey>,
    pub(crate) poll: PollConfig,
    pub(crate) longpoll: LongPollConfig,
    pub(crate) sse: SseConfig,
    /// Without the server's refusal counters, which exist only once it runs.
    pub(crate) ws: WsConfig,
    /// Publish bodies, for the publish API and the demo's REST API.
    pub(crate) bodies: BodyLimits,
    pub(crate) cors: Option<CorsLayer>,
    /// The accept loop's limits.
    pub(crate) server: server::Limits,
    /// The peers whose forwarding headers name the client.
    pub(crate) proxies: TrustedProxies,
    /// The database sources, not running yet (the demo's is added when it opens).
    pub(crate) sources: Sources,
    pub(crate) web_dir: Option<PathBuf>,
    pub(crate) demo_db: Option<PathBuf>,
    /// How soon another node takes over a source, the demo's included.
    pub(crate) lease_timeout: Duration,
    /// Where one node without Redis keeps its hub's epoch, if anywhere.
    pub(crate) state_file: Option<PathBuf>,
    pub(crate) ticker_rate: u32,
    pub(crate) drain_timeout: Duration,
    /// How often this node reports its presence to the other nodes (with Redis).
    pub(crate) presence_interval: Duration,
}

impl Plan {
    /// Checks `config` and derives the plan from it.
    pub(crate) fn new(config: &Config) -> Result<Self, ConfigError> {
        config.check()?;
        let Config { listener, publishing, delivery, topics: _, backends, access, pages } = config;
        let (authorize, policy) = access.authorizer()?;
        let poll = PollConfig::default().max_bytes(*delivery.max_answer_bytes).authorize(authorize.clone());
        let longpoll = LongPollConfig::default()
            .default_timeout(*delivery.longpoll_timeout)
            .max_timeout(*delivery.longpoll_max_timeout)
            .max_bytes(*delivery.max_answer_bytes)
            .coalesce(*delivery.coalesce)
            .authorize(authorize.clone());
        let sse = SseConfig::default()
            .heartbeat(*delivery.sse_heartbeat)
            .retry(*delivery.sse_retry)
            .coalesce(*delivery.coalesce)
            .auto_batch(delivery.auto_batch)
            .authorize(authorize.clone());
        // The write-buffer cap follows the body limit: an event frame larger than the cap would
        // close every WebSocket with 1011.
        let ws = WsConfig::default()
            .max_message_size(*delivery.ws_max_message_bytes)
            .max_write_buffer_size(delivery.ws_write_buffer_cap(publishing))
            .coalesce(*delivery.coalesce)
            .auto_batch(delivery.auto_batch)
            .publish_rate(publishing.rate())
            .authorize(authorize.clone())
            .allowed_origins(access.ws_origins()?);
        let server = server::Limits {
            // `check` made sure it fits.
            max_connections: u32::try_from(listener.max_connections).unwrap_or(u32::MAX),
            // More than `u32::MAX` from one address cannot happen: the total limit is lower.
            max_connections_per_ip: u32::try_from(listener.max_connections_per_ip).unwrap_or(u32::MAX),
            publish_rate: publishing.rate(),
            header_read_timeout: *listener.header_read_timeout,
            idle_timeout: *listener.idle_timeout,
            drain_timeout: *listener.drain_timeout,
            // The auth proxy tells the application each request's client address.
            client_addresses: access.auth_proxy.is_some(),
            keep_alive_loop: !listener.no_keep_alive_loop,
            socket: server::SocketOptions {
                keepalive_idle: *listener.tcp_keepalive_idle,
                keepalive_interval: *listener.tcp_keepalive_interval,
                keepalive_retries: listener.tcp_keepalive_retries,
                user_timeout: *listener.tcp_user_timeout,
            },
        };
        Ok(Self {
            admin: access.admin(),
            cors: access.cors()?,
            authorize,
            policy,
            poll,
            longpoll,
            sse,
            ws,
            bodies: BodyLimits {
                max_bytes: *publishing.max_body_bytes,
                read_timeout: *publishing.body_read_timeout,
            },
            server,
            proxies: TrustedProxies::new(listener.trusted_networks()?),
            sources: Sources::new(&backends.sources, *backends.source_lease_timeout)?,
            web_dir: pages.web_dir.clone(),
            demo_db: pages.demo_db.clone(),
            lease_timeout: *backends.source_lease_timeout,
            state_file: config.state_file_path(),
            ticker_rate: pages.demo_ticker_rate,
            drain_timeout: *listener.drain_timeout,
            presence_interval: *backends.redis_presence_interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    #[test]
    fn inconsistent_settings_are_refused() {
        let base = Config::default();
        assert_eq!(
            base.clone().with_max_connections(0).validate(),
            Err(ConfigError::Zero { name: "max_connections" })
        );
        assert!(matches!(
            base.clone().with_longpoll_timeout(Duration::from_secs(200)).validate(),
            Err(ConfigError::LongPollDefaultAboveMax { .. })
        ));
        assert!(matches!(
            base.clone().with_coalesce(Duration::from_millis(1001)).validate(),
            Err(ConfigError::CoalesceTooLong { .. })
        ));
        assert_eq!(base.clone().with_coalesce(Duration::from_secs(1)).validate(), Ok(()));
        assert!(matches!(
            base.clone().with_idle_timeout(Duration::from_secs(120)).validate(),
            Err(ConfigError::IdleTooShort { .. })
        ));
        // A stream may be silent for up to twice its heartbeat interval.
        let slow_heartbeat = base.clone().with_sse_heartbeat(Duration::from_secs(100));
        assert_eq!(
            slow_heartbeat.clone().with_idle_timeout(Duration::from_secs(150)).validate(),
            Err(ConfigError::IdleTooShort {
                idle: Duration::from_secs(150),
                needed: Duration::from_secs(200)
            })
        );
        assert_eq!(slow_heartbeat.with_idle_timeout(Duration::from_secs(201)).validate(), Ok(()));
        assert_eq!(base.clone().with_idle_timeout(Duration::ZERO).validate(), Ok(()));
        assert_eq!(
            base.clone().with_body_read_timeout(Duration::ZERO).validate(),
            Err(ConfigError::Zero { name: "body_read_timeout" })
        );
        assert_eq!(
            base.clone().with_max_answer_bytes(0).validate(),
            Err(ConfigError::Zero { name: "max_answer_bytes" })
        );
        assert_eq!(
            base.clone().with_publish_burst(0).validate(),
            Err(ConfigError::Zero { name: "publish_burst" })
        );
        assert_eq!(base.clone().with_publish_rate(0).with_publish_burst(0).validate(), Ok(()));
        assert_eq!(base.clone().with_max_connections_per_ip(0).validate(), Ok(()));
        assert_eq!(
            base.clone().with_tcp_keepalive_retries(0).validate(),
            Err(ConfigError::Zero { name: "tcp_keepalive_retries" })
        );
        let no_keepalive = base.clone().with_tcp_keepalive_idle(Duration::ZERO);
        assert_eq!(no_keepalive.with_tcp_keepalive_retries(0).validate(), Ok(()));
        assert!(matches!(
            base.clone().with_max_body_bytes(usize::MAX).validate(),
            Err(ConfigError::BodyLimitTooLarge { .. })
        ));
        assert_eq!(base.clone().with_demo_ticker_rate(1000).validate(), Ok(()));
        assert_eq!(
            base.clone().with_demo_ticker_rate(1001).validate(),
            Err(ConfigError::TickerRateTooHigh { value: 1001, limit: 1000 })
        );
        let missing = PathBuf::from("/nonexistent/pushgate-web");
        assert_eq!(
            base.clone().with_web_dir(Some(missing.clone())).validate(),
            Err(ConfigError::WebDir { path: missing })
        );
    }
}
