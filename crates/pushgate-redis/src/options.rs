//! [`RedisOptions`]: every setting of a [`RedisStorage`](crate::RedisStorage), with defaults.

use std::path::PathBuf;
use std::time::Duration;

use pushgate_hub::{DEFAULT_HISTORY_MAX_BYTES, HistoryLimit};

/// Settings of a [`RedisStorage`](crate::RedisStorage).
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::HistoryLimit;
/// use pushgate_redis::RedisOptions;
///
/// let options = RedisOptions::default()
///     .prefix("myapp:push:")
///     .history(HistoryLimit::default().max_events(100))
///     .history_events(50_000)
///     .ca_file("/etc/pushgate/redis-ca.pem")
///     .timeout(Duration::from_secs(1));
/// assert_eq!(options.key_prefix(), "myapp:push:");
/// ```
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub(crate) prefix: String,
    pub(crate) history: HistoryLimit,
    pub(crate) history_max_bytes: usize,
    pub(crate) max_topics: usize,
    pub(crate) history_events: usize,
    pub(crate) max_lead: u64,
    pub(crate) timeout: Duration,
    pub(crate) apply_wait: Duration,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_identity: Option<(PathBuf, PathBuf)>,
    pub(crate) min_replicas_ack: Option<usize>,
    pub(crate) idempotency_window: Duration,
}

/// The default of [`RedisOptions::history_events`].
pub const DEFAULT_HISTORY_EVENTS: usize = 100_000;

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "pushgate:".to_owned(),
            history: HistoryLimit::default(),
            history_max_bytes: DEFAULT_HISTORY_MAX_BYTES,
            max_topics: 100_000,
            history_events: DEFAULT_HISTORY_EVENTS,
            max_lead: 1_000_000,
            timeout: Duration::from_secs(2),
            apply_wait: Duration::from_secs(10),
            ca_file: None,
            client_identity: None,
            min_replicas_ack: None,
            idempotency_window: Duration::from_secs(300),
        }
    }
}

impl RedisOptions {
    /// Prefix of every key (default `pushgate:`); nodes sharing topics must use the same one.
    /// On Redis Cluster it must hold a hash tag (`{pushgate}:`), so that every key lives in one
    /// slot (see docs/deployment.md).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// History kept per topic in this node's copy, in memory (default: [`HistoryLimit::default`]).
    /// A cursor older than it is answered from the Redis log ([`history_events`](Self::history_events))
    /// through [`RedisStorage::history_tier`](crate::RedisStorage::history_tier).
    pub fn history(mut self, limit: HistoryLimit) -> Self {
        self.history = limit;
        self
    }

    /// The memory budget of this node's copy, all topics together (default 128 MiB; see
    /// [`MemoryStorage::history_max_bytes`](pushgate_hub::MemoryStorage::history_max_bytes)).
    /// The copy evicts its oldest events past it, events other nodes and the Redis log may
    /// still hold: this node's readers of them are answered from the log through
    /// [`RedisStorage::history_tier`](crate::RedisStorage::history_tier), as for any cursor
    /// older than memory.
    pub fn history_max_bytes(mut self, bytes: usize) -> Self {
        self.history_max_bytes = bytes;
        self
    }

    /// Most topics this node's copy holds before it refuses a publish to a new one (default
    /// 100,000; subscribing takes no slot). The copy holds the topics of the whole cluster (every node's
    /// events are applied, whatever this limit says), so the limit counts them all, not only
    /// the topics published on this node.
    pub fn max_topics(mut self, n: usize) -> Self {
        self.max_topics = n;
        self
    }

    /// How many events, of all topics together, the Redis log keeps (`XADD … MAXLEN ~ n`;
    /// default [`DEFAULT_HISTORY_EVENTS`], 100,000).
    ///
    /// It is the deeper history tier: a cursor older than a node's memory history but inside
    /// the log is answered from it without a reset, and it bounds what a node starting (or
    /// catching up after an outage) can load. It is independent of, and normally much larger
    /// than, the per-topic memory history: the default keeps a minute and a half of a cluster
    /// publishing 1,000 events/s (a node restart or a short Redis outage loses nothing) for a few
    /// tens of MB of Redis memory at typical event sizes. Redis trims in whole stream nodes, so
    /// it may keep up to about a hundred more.
    pub fn history_events(mut self, n: usize) -> Self {
        self.history_events = n.max(1);
        self
    }

    /// How far past this node's head a cursor may point and be taken as "not applied here yet"
    /// (default 1,000,000 positions); further is
    /// [`HubError::CursorAhead`](pushgate_hub::HubError::CursorAhead).
    pub fn max_lead(mut self, n: u64) -> Self {
        self.max_lead = n;
        self
    }

    /// Connect and command timeout towards Redis (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// How long a publish waits for this node to apply it once Redis has taken it (default
    /// 10 s), so the publisher reads its own write on this node. Past that, without replica
    /// acknowledgements the publish still succeeds (the event is stored; failing would invite a
    /// duplicate retry), answered from what Redis returned; with them
    /// ([`min_replicas_ack`](Self::min_replicas_ack)) it fails as
    /// [`HubError::Unavailable`](pushgate_hub::HubError::Unavailable): no replica confirmed the
    /// event, so a failover could still lose it.
    pub fn apply_wait(mut self, wait: Duration) -> Self {
        self.apply_wait = wait;
        self
    }

    /// A PEM file of the certificate authorities that sign the Redis server's certificate, for
    /// `rediss://` (and `rediss+sentinel://`) with a private CA. It replaces the system's roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// A client certificate chain and its private key (PEM files), for servers that require
    /// mutual TLS (`tls-auth-clients yes`).
    pub fn client_identity(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_identity = Some((cert.into(), key.into()));
        self
    }

    /// How many Redis replicas must hold an event before any node delivers it or its publish
    /// succeeds (default: 1 with a Sentinel URL, 0 with a plain one).
    ///
    /// Redis replicates asynchronously: an event the master took but no replica received yet is
    /// lost if the master fails and a replica is promoted. With `n > 0` every node applies the
    /// log only after `WAIT n` confirmed that `n` replicas hold it, so an acknowledged publish
    /// survives a failover and no node ever shows an event the new master does not have. While
    /// fewer than `n` replicas answer, nothing new is delivered and publishes fail as
    /// unavailable (the price of that guarantee); 0 keeps delivering from the master alone.
    pub fn min_replicas_ack(mut self, n: usize) -> Self {
        self.min_replicas_ack = Some(n);
        self
    }

    /// How long an idempotency key is remembered on its topic (default 5 minutes, as the hub's
    /// own): a publish with the same key within it, on any node, stores nothing and answers the
    /// original event. Zero turns deduplication off. Each key costs Redis a small string that
    /// expires with the window.
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }
}
