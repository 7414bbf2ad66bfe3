//! What the gateway connects to: Redis, shared by several nodes, and the databases whose
//! outboxes it tails.

use std::path::PathBuf;
use std::sync::Arc;

use pushgate_hub::{HistoryTier, Hub, HubBuilder};
use pushgate_redis::{DEFAULT_HISTORY_EVENTS, RedisOptions, RedisState, RedisStorage, ServerRelay};
use pushgate_sources::SourceConfig;

use super::{Config, ConfigError, ConnectionUrl, TimeSpan};
use crate::state::Resume;

/// The state file's name beside the demo database.
const STATE_FILE_NAME: &str = "pushgate-state";

section! {
    /// Redis and the database sources.
    pub struct Backends {
        /// Tail the outbox of this database into the hub: postgres://…, mysql://… (or
        /// mariadb://…), sqlite:PATH, prepared with `pushgate db install`. Repeat for more (in the
        /// variable: comma-separated). Each runs next to the server; one that cannot connect
        /// retries with backoff and shows it on /healthz, and never stops the gateway. The demo
        /// stays on unless --no-demo.
        #[arg(long = "source", env = "PUSHGATE_SOURCES", value_name = "URL", value_delimiter = ',',
              hide_env_values = true)]
        pub sources: Vec<ConnectionUrl>,

        /// How soon another gateway takes over a database source (the demo's too) when the one
        /// tailing it is gone: every gateway may run the same --source, one at a time tails it,
        /// holding a lease in the database. At least 500ms.
        #[arg(long, env = "PUSHGATE_SOURCE_LEASE_TIMEOUT", value_name = "DURATION")]
        pub source_lease_timeout: TimeSpan = TimeSpan::secs(5),

        /// Where this gateway keeps its hub's epoch and a position floor across restarts when it
        /// runs database sources (the demo's too) without --redis, so clients resume with their
        /// cursors (the outboxes serve what memory lost) [default: pushgate-state beside
        /// --demo-db; the `pushgate` command uses ./pushgate-state for sources without the demo].
        #[arg(long, env = "PUSHGATE_STATE_FILE", value_name = "PATH")]
        pub state_file: Option<PathBuf>,

        /// Share topics with the other gateways using this Redis: redis://host:port, with a
        /// password redis://:PASSWORD@host:port, a database number after a last slash. Positions,
        /// history and cursors live in Redis, so an event published on any node reaches
        /// subscribers on every node and a client resumes on any node. Without it, history is in
        /// this process's memory. Redis must be reachable at start-up. Sentinel:
        /// redis+sentinel://:PASSWORD@host:port,host:port/MASTER (port 26379 when left out) finds
        /// the master through the sentinels and follows a failover; rediss:// and
        /// rediss+sentinel:// speak TLS (see --redis-ca-file).
        #[arg(long, env = "PUSHGATE_REDIS", value_name = "URL", hide_env_values = true)]
        pub redis: Option<ConnectionUrl>,

        /// A PEM file of the certificate authorities that sign the Redis server's certificate,
        /// for rediss:// with a private CA (replaces the system's roots).
        #[arg(long, env = "PUSHGATE_REDIS_CA_FILE", value_name = "FILE")]
        pub redis_ca_file: Option<PathBuf>,

        /// A client certificate chain (PEM) for Redis servers that require mutual TLS; needs
        /// --redis-client-key.
        #[arg(long, env = "PUSHGATE_REDIS_CLIENT_CERT", value_name = "FILE", requires = "redis_client_key")]
        pub redis_client_cert: Option<PathBuf>,

        /// The private key (PEM) of --redis-client-cert.
        #[arg(long, env = "PUSHGATE_REDIS_CLIENT_KEY", value_name = "FILE", requires = "redis_client_cert")]
        pub redis_client_key: Option<PathBuf>,

        /// Events of all topics together the Redis log keeps: the deeper history a cursor older
        /// than this node's memory history is answered from before anything is called a reset.
        #[arg(long, env = "PUSHGATE_REDIS_HISTORY_EVENTS", value_name = "N")]
        pub redis_history_events: usize = DEFAULT_HISTORY_EVENTS,

        /// Redis replicas that must hold an event before it is delivered or its publish
        /// acknowledged, so a failover cannot lose an acknowledged publish [default: 1 with a
        /// Sentinel URL, else 0].
        #[arg(long, env = "PUSHGATE_REDIS_MIN_REPLICAS_ACK", value_name = "N")]
        pub redis_min_replicas_ack: Option<usize>,

        /// How often this node writes its presence (readers per topic and transport, their
        /// users) to Redis, for the other nodes' /v1/presence. A report counts for three
        /// intervals, so a node that dies stops being counted at most three intervals after its
        /// last report. From 100ms to 5s.
        #[arg(long, env = "PUSHGATE_REDIS_PRESENCE_INTERVAL", value_name = "DURATION")]
        pub redis_presence_interval: TimeSpan = TimeSpan::secs(5),
    }
}

/// What a node on Redis keeps of its storage: the connection's state, for `/readyz` and
/// `/metrics`, and the cluster's presence.
pub(crate) struct RedisNode {
    pub(crate) state: RedisState,
    pub(crate) presence: pushgate_redis::RedisPresence,
    /// The server API's disconnects and revocations to and from the other nodes.
    pub(crate) relay: ServerRelay,
}

/// The range of [`Backends::redis_presence_interval`]: at most 5 s, so that a dead node's
/// report (counted for three intervals) is gone within 15 s.
pub(crate) const PRESENCE_INTERVALS: std::ops::RangeInclusive<std::time::Duration> =
    std::time::Duration::from_millis(100)..=std::time::Duration::from_secs(5);

impl Backends {
    /// The Redis URL is one; no source is given twice.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis
            && let Err(err) = pushgate_redis::check_url(url.expose())
        {
            return Err(ConfigError::Redis { url: url.redacted(), reason: err.to_string() });
        }
        if self.redis_client_cert.is_some() != self.redis_client_key.is_some() {
            return Err(ConfigError::RedisClientIdentity);
        }
        if self.redis_history_events == 0 {
            return Err(ConfigError::Zero { name: "redis_history_events" });
        }
        if !PRESENCE_INTERVALS.contains(&*self.redis_presence_interval) {
            return Err(ConfigError::OutOfRange {
                name: "redis_presence_interval",
                value: *self.redis_presence_interval,
                range: PRESENCE_INTERVALS,
            });
        }
        if *self.source_lease_timeout < SourceConfig::MIN_LEASE_TIMEOUT {
            return Err(ConfigError::LeaseTimeoutTooShort {
                value: *self.source_lease_timeout,
                min: SourceConfig::MIN_LEASE_TIMEOUT,
            });
        }
        for (i, url) in self.sources.iter().enumerate() {
            if self.sources[..i].contains(url) {
                return Err(ConfigError::DuplicateSource { url: url.redacted() });
            }
        }
        Ok(())
    }
}

impl Config {
    /// The hub [`serve`](crate::serve) and [`serve_on`](crate::serve_on) use: with
    /// [`redis`](Backends::redis) set, one on a [`RedisStorage`] (connected, its epoch read and
    /// its retained log loaded), returned with the connection's state for `/readyz` and
    /// `/metrics`; else [`build_hub`](Self::build_hub)'s.
    ///
    /// # Errors
    /// [`ServeError::Redis`](crate::ServeError::Redis) when Redis cannot be reached or holds
    /// something unexpected.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate::ServeError> {
    /// let (hub, redis) = pushgate::Config::default().connect_hub().await?;
    /// assert!(redis.is_none());
    /// # let _ = hub; Ok(()) }
    /// ```
    pub async fn connect_hub(&self) -> Result<(Hub, Option<RedisState>), crate::ServeError> {
        let (hub, redis) = self.connect_hub_with(Vec::new(), None).await?;
        Ok((hub, redis.map(|node| node.state)))
    }

    /// [`connect_hub`](Self::connect_hub) with history `tiers` (the sources' outboxes) and,
    /// for the in-memory hub, an epoch to `resume` above a position floor, with its idempotency-key
    /// journal (from the state file).
    pub(crate) async fn connect_hub_with(
        &self,
        tiers: Vec<Arc<dyn HistoryTier>>,
        resume: Option<Resume>,
    ) -> Result<(Hub, Option<RedisNode>), crate::ServeError> {
        let Some(url) = &self.backends.redis else {
            let mut builder = self.hub_builder().history(self.topics.history_limit());
            if let Some(resume) = resume {
                builder = builder.resume(resume.epoch, resume.floor);
                if let Some(journal) = resume.journal {
                    builder = builder.key_journal(journal);
                }
            }
            return Ok((with_tiers(builder, tiers).build(), None));
        };
        let storage = RedisStorage::connect(url.expose(), self.redis_options())
            .await
            .map_err(|source| crate::ServeError::Redis { url: url.redacted(), source })?;
        let node = RedisNode { state: storage.state(), presence: storage.presence(), relay: storage.relay() };
        // The Redis log answers cursors older than this node's memory history first (it holds
        // every topic); the outboxes, asked next, reach further back for their sources' topics.
        let tier = storage.history_tier();
        // Readers on other nodes may want this node's joins and leaves.
        let builder = self.hub_builder().storage(Arc::new(storage)).tier(tier).announce_everywhere(true);
        Ok((with_tiers(builder, tiers).build(), Some(node)))
    }

    /// Where a single node keeps its hub's epoch across restarts: the configured
    /// [`state_file`](Backends::state_file), else beside the demo database; `None` with Redis,
    /// whose epoch lives in Redis.
    pub(crate) fn state_file_path(&self) -> Option<PathBuf> {
        if self.backends.redis.is_some() {
            return None;
        }
        self.backends
            .state_file
            .clone()
            .or_else(|| self.pages.demo_db.as_ref().map(|demo| demo.with_file_name(STATE_FILE_NAME)))
    }

    /// What the Redis storage is told: the history and topic limits, the log's retention, TLS
    /// files, replica acknowledgements and the idempotency window.
    fn redis_options(&self) -> RedisOptions {
        let backends = &self.backends;
        let mut options = RedisOptions::default()
            .history(self.topics.history_limit())
            .history_max_bytes(*self.topics.history_max_bytes)
            .max_topics(self.topics.max_topics)
            .history_events(backends.redis_history_events)
            .idempotency_window(*self.publishing.idempotency_window);
        if let Some(path) = &backends.redis_ca_file {
            options = options.ca_file(path);
        }
        if let (Some(cert), Some(key)) = (&backends.redis_client_cert, &backends.redis_client_key) {
            options = options.client_identity(cert, key);
        }
        if let Some(n) = backends.redis_min_replicas_ack {
            options = options.min_replicas_ack(n);
        }
        options
    }
}

/// `builder` asking `tiers` too, after the tiers it has.
fn with_tiers(builder: HubBuilder, tiers: Vec<Arc<dyn HistoryTier>>) -> HubBuilder {
    tiers.into_iter().fold(builder, HubBuilder::tier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_must_name_a_known_database_once() {
        let base = Config::default();
        let ok = ["postgres://u:p@h/db", "mysql://h/db", "mariadb://h/db", "sqlite:/tmp/x.db"];
        let config = base.clone().with_sources(ok.to_vec());
        assert_eq!(config.validate(), Ok(()));

        let bad = base.clone().with_sources(vec!["oracle://u:secret@h/db"]);
        match bad.validate() {
            Err(ConfigError::Source { url, .. }) => assert_eq!(url, "oracle://u:***@h/db"),
            other => panic!("expected ConfigError::Source, got {other:?}"),
        }
        let twice = base.clone().with_sources(vec!["mysql://u:secret@h/db", "mysql://u:secret@h/db"]);
        assert_eq!(twice.validate(), Err(ConfigError::DuplicateSource { url: "mysql://u:***@h/db".into() }));
        let lease =
            |ms| base.clone().with_source_lease_timeout(std::time::Duration::from_millis(ms)).validate();
        assert_eq!(lease(500), Ok(()));
        assert!(matches!(lease(499), Err(ConfigError::LeaseTimeoutTooShort { .. })));
    }

    #[test]
    fn redis_urls_are_checked_and_their_passwords_hidden() {
        let config = Config::default().with_redis(Some("redis://:pw@127.0.0.1:6380/2"));
        assert_eq!(config.validate(), Ok(()));
        assert!(!format!("{config:?}").contains("pw@"), "{config:?}");
        let bad = Config::default().with_redis(Some("http://:secret@h")).validate();
        let bad = bad.map_err(|err| err.to_string()).unwrap_err();
        assert!(bad.contains("redis url") && !bad.contains("secret"), "{bad}");
    }
}
