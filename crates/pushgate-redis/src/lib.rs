//! Redis storage for the pushgate hub: several gateway processes ("nodes") serve the same
//! topics, with one order of events, one set of positions and cursors that work on every node.
//!
//! [`RedisStorage`] implements [`pushgate_hub::Storage`]. Redis assigns positions and per-topic
//! `seq`, and keeps the shared log; each node keeps a local copy of the recent log (a
//! [`MemoryStorage::replica`]) that every read is answered from, so delivery costs no Redis
//! round trip. Transports do not know which storage they run on.
//!
//! # Layout
//!
//! Every key starts with a prefix (default `pushgate:`):
//!
//! | key | type | what it holds |
//! | --- | --- | --- |
//! | `epoch` | string | the shared [`Epoch`] (8 hex digits), `SET NX` by the first node to start |
//! | `pos` | string (integer) | the last position handed out |
//! | `seq` | hash | topic → the last `seq` handed out in it |
//! | `log` | stream | one entry per event, ID `<position>-0`, fields `topic`, `seq`, `type`, `data`, `ts`, `epoch` (and `from`, the sender, and `key`, the latest-value key, when set); trimmed with `MAXLEN ~` ([`RedisOptions::history_events`]); plus a `restored_after` marker where a restore moved `pos` on |
//! | `idem:<topic length>:<topic>:<key>` | string | `<position>:<seq>` of the event an idempotency key published, expiring after [`RedisOptions::idempotency_window`] |
//! | `ack` | string | written by a node before `WAIT`, when replicas must confirm the log ([`RedisOptions::min_replicas_ack`]) |
//! | `presence:node:<id>`, `presence:nodes` | hash, sorted set | each node's readers per topic, expiring: see [`RedisPresence`] |
//! | `revoked:<user>` | string | `<issued_before>:<until>` (ms since the Unix epoch) of a revocation of the user's tokens, expiring at `until` ([`ServerRelay`]) |
//!
//! The channel `server` relays the server API's disconnects and revocations ([`ServerRelay`]).
//!
//! A publish runs one Lua script (`EVALSHA`) that checks the epoch, takes the next position and
//! `seq`, and `XADD`s the entry, atomically. A publish with an idempotency key is deduplicated in
//! the same script, so the same key on the same topic stores one event whichever nodes it is
//! sent to: a repeat within [`RedisOptions::idempotency_window`] answers the original `seq` and
//! position. Every node runs one *tail* task that reads the stream (`XREAD BLOCK` after the last
//! ID it applied) and applies entries, in order, to its copy; that moves the node's head and
//! wakes its subscribers. A publish resolves once this node has applied it (from the script's
//! answer when nothing of the log before it is unread here, else through its tail), so a
//! publisher reads its own write on the node it used (or, past [`RedisOptions::apply_wait`]
//! and without replica acknowledgements, with the event Redis took: once Redis answered with a
//! position the publish never fails). When Redis's answer itself is lost or late (the response
//! timeout), the outcome is unknown and the publish fails with [`HubError::Unavailable`]: a
//! retry with the same idempotency key stores the event once, a retry without one may store it
//! twice.
//!
//! One stream for all topics, rather than a stream per topic, was chosen because it gives the
//! total order across topics for free (the stream ID *is* the position) and costs each node one
//! blocking read, whatever the number of topics; a stream per topic would need a merge by
//! position across streams and one read per topic (or per batch of topics) on every node.
//!
//! # History past memory
//!
//! A node's copy keeps [`RedisOptions::history`] per topic; the stream keeps the newest
//! [`RedisOptions::history_events`] events of all topics together. [`RedisStorage::history_tier`]
//! makes the stream the hub's deeper tier: a reader whose cursor is older than the copy's
//! history but inside the stream gets the events from it (`XRANGE`), in order, with no reset;
//! only what the stream trimmed too is reported as missed.
//!
//! # Reaching Redis
//!
//! [`RedisStorage::connect`] takes a `redis://` or `rediss://` URL (TLS with rustls; a private
//! CA with [`RedisOptions::ca_file`], mutual TLS with [`RedisOptions::client_identity`]), or a
//! Sentinel URL, `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master_name[/db]`
//! (`rediss+sentinel://` for TLS; the Sentinels' own credentials as `?sentinel_username=…&sentinel_password=…`).
//! With Sentinels, every reconnect asks them for the master, so the node follows a failover:
//! the old master's connections fail (Sentinel closes them when it demotes it), the tail
//! reconnects to the promoted replica and resumes after the last entry it applied, and
//! publishes go there from then on.
//!
//! # Replicas and failover
//!
//! Redis replicates asynchronously, so an event the master took is lost if the master fails
//! before a replica received it. With [`RedisOptions::min_replicas_ack`] `n > 0` (the default
//! with Sentinel), a node applies what it reads from the log only after `WAIT n` confirmed that
//! `n` replicas hold it, and a publish succeeds only once its node applied it. So an
//! acknowledged publish is on a replica, which Sentinel promotes (it picks the replica with the
//! most data), and no node delivers an event the new master lacks. A publish that no replica
//! confirmed in time fails as [`HubError::Unavailable`]: it may still be delivered later (retry
//! it with the same idempotency key).
//!
//! Should a new master still lack entries a node applied (with `n = 0`, or a failover to a
//! replica that had less), that node notices on reconnect: the entry at its head is missing or
//! different. Positions of the lost entries may already be handed out again, and clients hold
//! cursors and `seq`s of events that no longer exist, so the node changes the store's epoch
//! (every cursor gets a `reset`, on every node) and stops; every other node stops too on seeing
//! the new epoch, and restarts into it. Never silent divergence, at the price of a reset for all.
//!
//! # Starting, failing and recovering
//!
//! - **Start:** [`RedisStorage::connect`] needs Redis 6.2 or newer (it refuses an older one
//!   with [`ConnectError::TooOld`]), reads (or creates) the epoch, then loads the retained
//!   tail of the log into the copy before returning, so a new node answers cursors issued
//!   before it started. A topic whose oldest loaded event has `seq > 1` reports a gap (a
//!   reset) to readers from before it.
//! - **Cursor ahead of this node:** a client that moves from a node that has applied more can
//!   hold a cursor past this node's head; up to [`RedisOptions::max_lead`] positions ahead, it
//!   is taken as "nothing yet" (the read waits for the head to pass it), not as an error.
//! - **Redis down:** publishes fail at once with [`HubError::Unavailable`]; reads keep being
//!   answered from the copy; [`RedisState::connected`] is false. The tail reconnects with
//!   backoff and resumes after the last ID it applied, so it catches up on what other nodes
//!   published meanwhile. When the stream was trimmed past that ID meanwhile, every reader from
//!   before the trimmed range gets a gap (a reset) on every topic
//!   ([`MemoryStorage::mark_lost_through`]): which topics lost events there is unknown.
//! - **Redis back empty** (it keeps nothing on disk): the first node to reconnect restores
//!   every topic's `seq` to at least what it has applied (Lua scripts taking maxima, so every
//!   node can run them), then moves `pos` past the position it has read by a margin (half of
//!   [`RedisOptions::max_lead`]) and marks the jump with a stream entry, and sets the epoch
//!   *last*: publishes are refused while it is missing, so none takes a `seq` from a counter
//!   not restored yet. Positions keep increasing (with a gap; only `seq` is gapless) and cursors
//!   stay valid. The margin keeps positions that other nodes had read before the store lost
//!   them from being handed out again (they would skip the new events). *The remaining race:*
//!   events that had been written to Redis but not applied by the node that restores are lost
//!   with Redis; a node that had not applied them either sees the marker and reports a gap to
//!   readers from before it, and a node more than the margin ahead would skip new events.
//! - **Eviction:** Redis must run with `maxmemory-policy noeviction` (its default): a `seq` hash
//!   evicted alone is not noticed and topics would restart at `seq` 1. [`RedisStorage::connect`]
//!   warns when the policy is another one.
//! - **A different epoch** in Redis (the store was replaced, or a node started on the empty store
//!   before any old node restored it): positions of the two epochs cannot be compared, and this
//!   node's subscribers hold logs of the old one. The node does not mix them: it logs an error,
//!   refuses publishes, reports [`RedisState::fatal`], and stops tailing. The gateway exits on
//!   it, so its supervisor restarts it; on restart it adopts the store's epoch and clients
//!   resuming with old cursors get a `reset` (epoch changed) and replay what is retained.
//!   A node that only reads notices it too: every entry carries the epoch it was written under,
//!   and one of another epoch (the store was wiped without a restart and a new node started on
//!   it) stops the node the same way rather than being applied as its own.

mod endpoint;
mod error;
mod failover;
mod options;
mod presence;
mod publish;
mod relay;
mod scripts;
mod server;
mod state;
mod tail;
mod tier;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use pushgate_hub::{
    AppendRequest, Epoch, Event, EventParts, HistoryTier, HistoryUse, HubError, MemoryStorage, Notifier,
    Published, Storage, TopicLog, TopicName,
};
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;

use crate::endpoint::Endpoint;
pub use crate::error::ConnectError;
pub use crate::options::{DEFAULT_HISTORY_EVENTS, RedisOptions};
pub use crate::presence::{PresenceError, RedisPresence};
pub use crate::relay::{ServerCommand, ServerRelay};
pub use crate::state::RedisState;

/// Checks that `url` is a Redis URL this crate can connect to (`redis://`, `rediss://`,
/// `redis+sentinel://`, `rediss+sentinel://`), without connecting.
///
/// ```
/// assert!(pushgate_redis::check_url("redis://127.0.0.1:6379/0").is_ok());
/// assert!(pushgate_redis::check_url("rediss://redis.example.com:6380").is_ok());
/// assert!(pushgate_redis::check_url("redis+sentinel://s1:26379,s2:26379/mymaster").is_ok());
/// assert!(pushgate_redis::check_url("postgres://h/db").is_err());
/// ```
///
/// # Errors
/// [`ConnectError::Url`] or [`ConnectError::SentinelUrl`] saying what is wrong.
pub fn check_url(url: &str) -> Result<(), ConnectError> {
    Endpoint::new(url, None).map(drop)
}

/// The keys of one deployment.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    pub(crate) epoch: String,
    pub(crate) pos: String,
    pub(crate) seq: String,
    pub(crate) log: String,
    pub(crate) ack: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            epoch: format!("{prefix}epoch"),
            pos: format!("{prefix}pos"),
            seq: format!("{prefix}seq"),
            log: format!("{prefix}log"),
            ack: format!("{prefix}ack"),
        }
    }

    /// The record of an idempotency key on a topic. The topic's length goes first, since both
    /// may contain `:` (topic `a:b` with key `c` must not meet topic `a` with key `b:c`).
    pub(crate) fn idempotency(&self, topic: &TopicName, key: &str) -> String {
        format!("{}idem:{}:{topic}:{key}", self.prefix, topic.as_str().len())
    }
}

/// The newest event this node applied: on reconnect, the store must still hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) position: u64,
    pub(crate) topic: TopicName,
    pub(crate) seq: u64,
}

/// What the storage handle and its tail task share.
pub(crate) struct Shared {
    pub(crate) replica: MemoryStorage,
    pub(crate) keys: Keys,
    pub(crate) options: RedisOptions,
    pub(crate) endpoint: Endpoint,
    /// [`RedisOptions::min_replicas_ack`], its default resolved for the endpoint.
    pub(crate) min_replicas_ack: usize,
    pub(crate) state: RedisState,
    /// The command connection of the current session with Redis; `None` while disconnected.
    pub(crate) connection: Mutex<Option<MultiplexedConnection>>,
    /// The applied position, for publishes waiting to read their own write.
    pub(crate) applied: watch::Sender<u64>,
    /// The newest event applied.
    pub(crate) last_applied: Mutex<Option<Applied>>,
    /// The newest log position passed over as unreadable; reading resumes after it.
    pub(crate) skipped_through: AtomicU64,
    /// The number of the tail's session while it follows the log (it checked the store and
    /// caught up, and has not ended), else 0. A publish applies its own event (`publish.rs`)
    /// only when the session it sent the script in still follows: an answer from an earlier
    /// session's connection (an old master) must go through the tail.
    pub(crate) following: AtomicU64,
    /// Set by a publish that found the store without this node's epoch (or on a replica): the
    /// tail reconnects and checks the store. A flag of its own, since the tail may mark itself
    /// connected after the publish marked it disconnected.
    pub(crate) recheck: AtomicBool,
    pub(crate) append_script: redis::Script,
    pub(crate) restore_seqs_script: redis::Script,
    pub(crate) restore_epoch_script: redis::Script,
    pub(crate) rotate_epoch_script: redis::Script,
}

impl Shared {
    pub(crate) fn connection_config(&self, response_timeout: Duration) -> redis::AsyncConnectionConfig {
        redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.timeout))
            .set_response_timeout(Some(response_timeout))
    }

    pub(crate) fn set_connection(&self, connection: Option<MultiplexedConnection>) {
        *self.connection.lock().unwrap_or_else(PoisonError::into_inner) = connection;
    }

    pub(crate) fn connection(&self) -> Option<MultiplexedConnection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn last_applied(&self) -> Option<Applied> {
        self.last_applied.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Applies one log entry to the copy and publishes the new head.
    pub(crate) fn apply(&self, entry: tail::Entry) -> Result<(), HubError> {
        let (position, topic, seq) = (entry.position, entry.topic.clone(), entry.seq);
        if self.replica.apply(entry.into_parts())?.is_some() {
            self.note_applied(Applied { position, topic, seq });
        }
        self.head_moved();
        Ok(())
    }

    /// Applies an event this node just appended to the log, when it comes right after what the
    /// copy holds (see `publish.rs`); gives `parts` back when it does not, for the tail to apply.
    pub(crate) fn apply_own(&self, parts: EventParts) -> Result<Result<Arc<Event>, EventParts>, HubError> {
        let (position, seq) = (parts.position, parts.seq);
        let topic = parts.topic.clone();
        let applied = self.replica.apply_next(parts)?;
        if applied.is_ok() {
            self.note_applied(Applied { position, topic, seq });
            self.head_moved();
        }
        Ok(applied)
    }

    /// Records `applied` as the newest event applied, unless a later one was recorded first:
    /// publishes and the tail apply concurrently, and the failover check must see the newest.
    fn note_applied(&self, applied: Applied) {
        let mut last = self.last_applied.lock().unwrap_or_else(PoisonError::into_inner);
        if last.as_ref().is_none_or(|last| last.position < applied.position) {
            *last = Some(applied);
        }
    }

    /// Tells the state and the publishes waiting to read their own write where the head is.
    fn head_moved(&self) {
        let head = self.replica.head();
        self.state.set_applied(head);
        self.applied.send_if_modified(|applied| {
            let moved = head > *applied;
            *applied = head.max(*applied);
            moved
        });
    }
}

/// A [`Storage`] on Redis, shared by every node using the same Redis and key prefix.
///
/// Build the hub with it: `Hub::builder().storage(Arc::new(storage)).build()`. See the
/// [crate docs](crate) for the layout and failure behaviour.
pub struct RedisStorage {
    shared: Arc<Shared>,
    tail: tokio::task::AbortHandle,
}

impl RedisStorage {
    /// Connects to `url` (see [`check_url`] for the forms it takes), reads or creates the
    /// shared epoch, loads the retained log into this node's copy, and starts the tail task (on
    /// the current tokio runtime).
    ///
    /// # Errors
    /// [`ConnectError`] when the URL is invalid, a TLS file cannot be read, Redis cannot be
    /// reached (or refuses the TLS handshake) or is older than 6.2, or its keys hold something
    /// unexpected. Once connected, later outages are not errors of this call: they show in
    /// [`RedisState`] and as [`HubError::Unavailable`] on publish.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self, ConnectError> {
        // The redis crate builds its rustls config from the process's default provider, and
        // rustls panics there when more than one provider is compiled in and none was chosen.
        // Choosing ring only when nobody chose yet leaves an embedder's choice alone. (rustls
        // deprecates ring's provider for lacking post-quantum key exchange; aws-lc-rs would
        // need a C and CMake build on every machine that builds pushgate.)
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = endpoint::certificates(&options).await?;
        let endpoint = Endpoint::new(url, tls)?;
        let min_replicas_ack = options.min_replicas_ack.unwrap_or(usize::from(endpoint.is_sentinel()));
        let keys = Keys::new(&options.prefix);
        let client = endpoint.client(options.timeout).await.map_err(ConnectError::from_redis)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout));
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(ConnectError::from_redis)?;
        server::check(&mut connection, min_replicas_ack).await?;
        let epoch = scripts::init_epoch(&mut connection, &keys).await?;
        let replica = MemoryStorage::replica(epoch, options.history, options.max_topics)
            .history_max_bytes(options.history_max_bytes);
        let shared = Arc::new(Shared {
            replica,
            keys,
            endpoint,
            min_replicas_ack,
            state: RedisState::new(),
            connection: Mutex::new(None),
            applied: watch::Sender::new(0),
            last_applied: Mutex::new(None),
            skipped_through: AtomicU64::new(0),
            following: AtomicU64::new(0),
            recheck: AtomicBool::new(false),
            append_script: redis::Script::new(scripts::APPEND),
            restore_seqs_script: redis::Script::new(scripts::RESTORE_SEQS),
            restore_epoch_script: redis::Script::new(scripts::RESTORE_EPOCH),
            rotate_epoch_script: redis::Script::new(scripts::ROTATE_EPOCH),
            options,
        });
        tail::load(&shared, &mut connection).await?;
        // Serve publishes at once on this connection; the tail opens its own and replaces it.
        shared.set_connection(Some(connection));
        shared.state.set_connected(true);
        tracing::info!(
            %epoch,
            head = shared.replica.head(),
            topics = shared.replica.topic_count(),
            min_replicas_ack,
            "redis storage ready"
        );
        let tail = tokio::spawn(tail::run(Arc::clone(&shared))).abort_handle();
        Ok(Self { shared, tail })
    }

    /// The connection state, for readiness and metrics.
    pub fn state(&self) -> RedisState {
        self.shared.state.clone()
    }

    /// This node's presence reports and the other nodes' (see [`RedisPresence`]), under a node
    /// id made up now: each call is another node.
    pub fn presence(&self) -> RedisPresence {
        use std::hash::BuildHasher as _;
        let id = std::collections::hash_map::RandomState::new()
            .hash_one((std::process::id(), std::time::SystemTime::now()));
        RedisPresence::new(Arc::clone(&self.shared), format!("{id:016x}"))
    }

    /// The relay of the server API's commands (disconnects, revocations) to every node using
    /// this Redis and prefix.
    pub fn relay(&self) -> ServerRelay {
        ServerRelay::new(Arc::clone(&self.shared))
    }

    /// The Redis log as a history tier for the hub: a cursor older than this node's memory
    /// history ([`RedisOptions::history`]) but inside the log
    /// ([`RedisOptions::history_events`]) is answered from it instead of with a reset.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), pushgate_redis::ConnectError> {
    /// use std::sync::Arc;
    /// use pushgate_hub::Hub;
    /// use pushgate_redis::{RedisOptions, RedisStorage};
    ///
    /// let storage = RedisStorage::connect("redis://127.0.0.1:6379", RedisOptions::default()).await?;
    /// let tier = storage.history_tier();
    /// let hub = Hub::builder().storage(Arc::new(storage)).tier(tier).build();
    /// # let _ = hub; Ok(()) }
    /// ```
    pub fn history_tier(&self) -> Arc<dyn HistoryTier> {
        Arc::new(tier::LogTier { shared: Arc::clone(&self.shared) })
    }
}

impl Drop for RedisStorage {
    fn drop(&mut self) {
        self.tail.abort();
    }
}

impl std::fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStorage")
            .field("epoch", &self.shared.replica.epoch())
            .field("prefix", &self.shared.options.prefix)
            .field("endpoint", &self.shared.endpoint)
            .field("state", &self.shared.state)
            .finish()
    }
}

impl Storage for RedisStorage {
    fn epoch(&self) -> Epoch {
        self.shared.replica.epoch()
    }

    fn head(&self) -> u64 {
        self.shared.replica.head()
    }

    fn topic(&self, topic: &TopicName) -> Result<Arc<dyn TopicLog>, HubError> {
        self.shared.replica.topic(topic)
    }

    fn watch(&self, topic: &TopicName) -> Result<Arc<dyn TopicLog>, HubError> {
        self.shared.replica.watch(topic)
    }

    fn unwatch(&self, topic: &TopicName) {
        self.shared.replica.unwatch(topic);
    }

    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<Published, HubError>> {
        Box::pin(publish::append(&self.shared, request))
    }

    fn attach(&self, notifier: Notifier) {
        self.shared.replica.attach(notifier);
    }

    fn sweep(&self) -> usize {
        self.shared.replica.sweep()
    }

    fn topic_count(&self) -> usize {
        self.shared.replica.topic_count()
    }

    fn history_use(&self) -> HistoryUse {
        self.shared.replica.history_use()
    }

    fn max_lead(&self) -> u64 {
        self.shared.options.max_lead
    }
}
