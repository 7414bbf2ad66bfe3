//! The gateway's settings: one plain struct with defaults, checked once before serving.
//!
//! The command line ([`crate::cli`]) and tests build a [`Config`]; [`crate::app`] and
//! [`crate::serve_on`] read it. Nothing else in the process reads configuration.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use pushgate_hub::{HistoryLimit, Hub};

/// How the gateway is set up.
///
/// Start from [`Config::default`] and change what you need with the `with_*` methods, so new
/// settings can be added without breaking callers:
///
/// ```
/// use std::net::{Ipv4Addr, SocketAddr};
/// use std::time::Duration;
///
/// let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9000));
/// let config = pushgate::Config::default()
///     .with_listen(listen)
///     .with_header_read_timeout(Duration::from_secs(5));
/// assert_eq!(config.listen, listen);
/// assert_eq!(config.max_connections, 10_000);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The address [`serve`](crate::serve) binds to. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest `POST /v1/publish/{topic}` body; larger ones get `413 too_large`. Default 1 MiB.
    pub max_body_bytes: usize,
    /// How long a long poll that names no `timeout` is held. Default 25 s.
    pub longpoll_timeout: Duration,
    /// The longest a long poll is held, whatever it asks. Default 120 s.
    pub longpoll_max_timeout: Duration,
    /// Interval of the SSE `: hb` comment that keeps idle streams open. Default 15 s.
    pub sse_heartbeat: Duration,
    /// Largest WebSocket message accepted from a client (close 1009 beyond). Default 64 KiB.
    pub ws_max_message_bytes: usize,
    /// Most open connections (WebSockets included). Connections beyond it are answered
    /// `503 overloaded` and closed. Default 10,000.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may wait for its next request. Default 10 s.
    pub header_read_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed (a peer that
    /// stopped reading, a half-open TCP connection). Must exceed the long-poll maximum and the
    /// SSE heartbeat, which are silent on purpose; zero disables it. WebSockets are kept alive
    /// by their own pings instead. Default 300 s.
    pub idle_timeout: Duration,
    /// On shutdown, how long open connections get to finish before they are cut. Default 10 s.
    pub drain_timeout: Duration,
    /// Most distinct topics one subscription or poll may name. Default 100.
    pub max_topics_per_subscription: usize,
    /// Events kept per topic for resuming and `cursor=oldest`. Default 1,000.
    pub history_events: usize,
    /// How long an event is kept for resuming; zero keeps events until evicted by count.
    /// Default 10 min.
    pub history_age: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            max_body_bytes: 1 << 20,
            longpoll_timeout: Duration::from_secs(25),
            longpoll_max_timeout: Duration::from_secs(120),
            sse_heartbeat: Duration::from_secs(15),
            ws_max_message_bytes: 64 << 10,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(10),
            max_topics_per_subscription: 100,
            history_events: 1000,
            history_age: Duration::from_secs(600),
        }
    }
}

/// Why a [`Config`] cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting that must be positive is zero.
    #[error("{name} must be greater than zero")]
    Zero {
        /// The setting.
        name: &'static str,
    },
    /// `max_connections` is larger than the server can count.
    #[error("max_connections is {value}; at most {limit} are supported")]
    TooManyConnections {
        /// The configured value.
        value: usize,
        /// The largest value supported.
        limit: usize,
    },
    /// The long-poll default wait is longer than its maximum.
    #[error("the long-poll timeout ({default:?}) exceeds the long-poll maximum ({max:?})")]
    LongPollDefaultAboveMax {
        /// The default wait.
        default: Duration,
        /// The maximum wait.
        max: Duration,
    },
    /// The idle timeout would cut connections that are silent on purpose.
    #[error(
        "the idle timeout ({idle:?}) must exceed the long-poll maximum and the SSE heartbeat ({needed:?})"
    )]
    IdleTooShort {
        /// The configured idle timeout.
        idle: Duration,
        /// The longest silence it must allow.
        needed: Duration,
    },
}

/// The most connections the accept loop can count (its semaphore counts in `u32`).
const MAX_CONNECTIONS_LIMIT: usize = u32::MAX as usize;

macro_rules! setters {
    ($($(#[$doc:meta])* $method:ident => $field:ident: $ty:ty;)*) => {
        impl Config {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $method(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Replaces [`listen`](Config::listen).
    with_listen => listen: SocketAddr;
    /// Replaces [`max_body_bytes`](Config::max_body_bytes).
    with_max_body_bytes => max_body_bytes: usize;
    /// Replaces [`longpoll_timeout`](Config::longpoll_timeout).
    with_longpoll_timeout => longpoll_timeout: Duration;
    /// Replaces [`longpoll_max_timeout`](Config::longpoll_max_timeout).
    with_longpoll_max_timeout => longpoll_max_timeout: Duration;
    /// Replaces [`sse_heartbeat`](Config::sse_heartbeat).
    with_sse_heartbeat => sse_heartbeat: Duration;
    /// Replaces [`ws_max_message_bytes`](Config::ws_max_message_bytes).
    with_ws_max_message_bytes => ws_max_message_bytes: usize;
    /// Replaces [`max_connections`](Config::max_connections).
    with_max_connections => max_connections: usize;
    /// Replaces [`header_read_timeout`](Config::header_read_timeout).
    with_header_read_timeout => header_read_timeout: Duration;
    /// Replaces [`idle_timeout`](Config::idle_timeout).
    with_idle_timeout => idle_timeout: Duration;
    /// Replaces [`drain_timeout`](Config::drain_timeout).
    with_drain_timeout => drain_timeout: Duration;
    /// Replaces [`max_topics_per_subscription`](Config::max_topics_per_subscription).
    with_max_topics_per_subscription => max_topics_per_subscription: usize;
    /// Replaces [`history_events`](Config::history_events).
    with_history_events => history_events: usize;
    /// Replaces [`history_age`](Config::history_age).
    with_history_age => history_age: Duration;
}

impl Config {
    /// Checks that the settings make sense together; [`serve_on`](crate::serve_on) refuses to
    /// start otherwise.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pushgate::{Config, ConfigError};
    ///
    /// let config = Config::default().with_idle_timeout(Duration::from_secs(60));
    /// assert!(matches!(config.validate(), Err(ConfigError::IdleTooShort { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes == 0),
            ("ws_max_message_bytes", self.ws_max_message_bytes == 0),
            ("max_connections", self.max_connections == 0),
            ("header_read_timeout", self.header_read_timeout.is_zero()),
            ("sse_heartbeat", self.sse_heartbeat.is_zero()),
            ("max_topics_per_subscription", self.max_topics_per_subscription == 0),
            ("history_events", self.history_events == 0),
        ];
        if let Some((name, _)) = positive.into_iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::Zero { name });
        }
        if self.max_connections > MAX_CONNECTIONS_LIMIT {
            return Err(ConfigError::TooManyConnections {
                value: self.max_connections,
                limit: MAX_CONNECTIONS_LIMIT,
            });
        }
        if self.longpoll_timeout > self.longpoll_max_timeout {
            return Err(ConfigError::LongPollDefaultAboveMax {
                default: self.longpoll_timeout,
                max: self.longpoll_max_timeout,
            });
        }
        let needed = self.longpoll_max_timeout.max(self.sse_heartbeat);
        if !self.idle_timeout.is_zero() && self.idle_timeout <= needed {
            return Err(ConfigError::IdleTooShort { idle: self.idle_timeout, needed });
        }
        Ok(())
    }

    /// A new hub with this configuration's history and limits.
    ///
    /// ```
    /// let hub = pushgate::Config::default().build_hub();
    /// assert_eq!(hub.stats().published, 0);
    /// ```
    pub fn build_hub(&self) -> Hub {
        let age = (!self.history_age.is_zero()).then_some(self.history_age);
        Hub::builder()
            .history(HistoryLimit::default().max_events(self.history_events).max_age(age))
            .max_topics_per_subscription(self.max_topics_per_subscription)
            // A publish body holds the data and a little more, so the body limit bounds the
            // data too; the hub's own check catches data that grows when made compact.
            .max_data_bytes(self.max_body_bytes)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_protocol() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(config.ws_max_message_bytes, 64 * 1024);
    }

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
            base.clone().with_idle_timeout(Duration::from_secs(120)).validate(),
            Err(ConfigError::IdleTooShort { .. })
        ));
        assert_eq!(base.with_idle_timeout(Duration::ZERO).validate(), Ok(()));
    }
}
