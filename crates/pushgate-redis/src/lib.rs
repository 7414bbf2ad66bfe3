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
//! | `log` | stream | one entry per event, ID `<position>-0`, fields `topic`, `seq`, `type`, `data`, `ts`, `epoch`; trimmed with `MAXLEN ~`; plus a `restored_after` marker where a restore moved `pos` on |
//!
//! A publish runs one Lua script (`EVALSHA`) that checks the epoch, takes the next position and
//! `seq`, and `XADD`s the entry, atomically. Every node runs one *tail* task that reads the
//! stream (`XREAD BLOCK` after the last ID it applied) and applies entries, in order, to its
//! copy; that moves the node's head and wakes its subscribers. A publish resolves once this
//! node's tail has applied it, so a publisher reads its own write on the node it used (or, past
//! [`RedisOptions::apply_wait`], with the event Redis took: once Redis answered with a position
//! the publish never fails). When Redis's answer itself is lost or late (the response timeout),
//! the outcome is unknown and the publish fails with [`HubError::Unavailable`]: a retry is
//! at-least-once.
//!
//! One stream for all topics, rather than a stream per topic, was chosen because it gives the
//! total order across topics for free (the stream ID *is* the position) and costs each node one
//! blocking read, whatever the number of topics; a stream per topic would need a merge by
//! position across streams and one read per topic (or per batch of topics) on every node.
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

mod scripts;
mod tail;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use pushgate_hub::{
    AppendRequest, DEFAULT_HISTORY_MAX_BYTES, Epoch, Event, EventParts, HistoryLimit, HistoryUse, HubError,
    MemoryStorage, Notifier, Published, Storage, TopicLog, TopicName,
};
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;

/// Settings of a [`RedisStorage`].
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::HistoryLimit;
/// use pushgate_redis::RedisOptions;
///
/// let options = RedisOptions::default()
///     .prefix("myapp:push:")
///     .history(HistoryLimit::default().max_events(100))
///     .stream_max_len(50_000)
///     .timeout(Duration::from_secs(1));
/// assert_eq!(options.key_prefix(), "myapp:push:");
/// ```
#[derive(Debug, Clone)]
pub struct RedisOptions {
    prefix: String,
    history: HistoryLimit,
    history_max_bytes: usize,
    max_topics: usize,
    stream_max_len: usize,
    max_lead: u64,
    timeout: Duration,
    apply_wait: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "pushgate:".to_owned(),
            history: HistoryLimit::default(),
            history_max_bytes: DEFAULT_HISTORY_MAX_BYTES,
            max_topics: 100_000,
            stream_max_len: 100_000,
            max_lead: 1_000_000,
            timeout: Duration::from_secs(2),
            apply_wait: Duration::from_secs(10),
        }
    }
}

impl RedisOptions {
    /// Prefix of every key (default `pushgate:`); nodes sharing topics must use the same one.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// History kept per topic in this node's copy (default: [`HistoryLimit::default`]).
    pub fn history(mut self, limit: HistoryLimit) -> Self {
        self.history = limit;
        self
    }

    /// The memory budget of this node's copy, all topics together (default 128 MiB; see
    /// [`MemoryStorage::history_max_bytes`]). The copy evicts its oldest events past it, events
    /// other nodes may still hold: this node's readers of them get a gap, which the shared log
    /// fills when the hub reads it as a history tier.
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

    /// About how many entries the shared stream keeps (`XADD … MAXLEN ~ n`; default 100,000).
    /// It bounds what a node starting (or catching up after an outage) can load.
    pub fn stream_max_len(mut self, n: usize) -> Self {
        self.stream_max_len = n.max(1);
        self
    }

    /// How far past this node's head a cursor may point and be taken as "not applied here yet"
    /// (default 1,000,000 positions); further is [`HubError::CursorAhead`].
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
    /// 10 s), so the publisher reads its own write on this node. Past that the publish still
    /// succeeds (the event is stored; failing would invite a duplicate retry), answered from
    /// what Redis returned; this node's readers get the event once its tail applies it.
    pub fn apply_wait(mut self, wait: Duration) -> Self {
        self.apply_wait = wait;
        self
    }
}

/// Why [`RedisStorage::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a Redis URL.
    #[error("invalid redis url: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The server is older than this crate needs.
    #[error("redis {version} is too old: pushgate needs redis {minimum} or newer")]
    TooOld {
        /// The server's version (`INFO server`).
        version: String,
        /// The oldest version supported.
        minimum: String,
    },
    /// The `epoch` key holds something this crate did not write.
    #[error("redis key {key} holds {value:?}, not an epoch (8 hex digits)")]
    BadEpoch {
        /// The key.
        key: String,
        /// What it holds.
        value: String,
    },
    /// A log entry was written under another epoch than this node's while it followed the log:
    /// the store was wiped and a node started on it with a new epoch. The node stops (this is
    /// the reason [`RedisState::fatal`] gives); at connect, entries of an earlier epoch left in
    /// the stream are passed over instead, since the node starts in the store's epoch.
    #[error("redis stream entry {id} belongs to epoch {epoch}, this node serves epoch {ours}")]
    ForeignEntry {
        /// The stream entry ID.
        id: String,
        /// The epoch it was written under.
        epoch: Epoch,
        /// This node's epoch.
        ours: Epoch,
    },
    /// A log entry could not be read as an event.
    #[error("redis stream entry {id}: {reason}")]
    BadEntry {
        /// The stream entry ID.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Checks that `url` is a Redis URL this crate can connect to, without connecting.
///
/// ```
/// assert!(pushgate_redis::check_url("redis://127.0.0.1:6379/0").is_ok());
/// assert!(pushgate_redis::check_url("postgres://h/db").is_err());
/// ```
///
/// # Errors
/// [`ConnectError::Url`] saying what is wrong.
pub fn check_url(url: &str) -> Result<(), ConnectError> {
    redis::Client::open(url).map(drop).map_err(ConnectError::Url)
}

/// The oldest Redis this crate works with: loading the log uses `XRANGE` with an exclusive
/// start (`(id`), new in 6.2.
const MIN_VERSION: (u64, u64) = (6, 2);

/// Refuses a Redis older than [`MIN_VERSION`], and warns when Redis may evict keys: an evicted
/// `seq` hash (or `pos`) alone is not noticed, and `seq` would start again at 1 in a topic.
/// Servers that refuse `INFO` or `CONFIG` are not checked.
async fn check_server(connection: &mut MultiplexedConnection) -> Result<(), ConnectError> {
    let info: Result<String, _> = redis::cmd("INFO").arg("server").query_async(connection).await;
    match info {
        Ok(info) => {
            let version = info.lines().find_map(|line| line.strip_prefix("redis_version:")).map(str::trim);
            let parsed = version.and_then(|v| {
                let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
                Some((parts.next()??, parts.next()??))
            });
            if let (Some(version), Some(parsed)) = (version, parsed)
                && parsed < MIN_VERSION
            {
                return Err(ConnectError::TooOld {
                    version: version.to_owned(),
                    minimum: format!("{}.{}", MIN_VERSION.0, MIN_VERSION.1),
                });
            }
        }
        Err(err) => tracing::debug!(%err, "cannot read the redis version"),
    }
    let policy: Result<Vec<String>, _> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(connection).await;
    match policy {
        Ok(reply) => match reply.get(1) {
            Some(policy) if policy != "noeviction" => tracing::warn!(
                %policy,
                "redis maxmemory-policy is not noeviction: evicted pushgate keys break seq and positions"
            ),
            _ => {}
        },
        Err(err) => tracing::debug!(%err, "cannot read redis maxmemory-policy"),
    }
    Ok(())
}

/// The keys of one deployment.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) epoch: String,
    pub(crate) pos: String,
    pub(crate) seq: String,
    pub(crate) log: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            epoch: format!("{prefix}epoch"),
            pos: format!("{prefix}pos"),
            seq: format!("{prefix}seq"),
            log: format!("{prefix}log"),
        }
    }
}

/// The connection state of a [`RedisStorage`], for readiness checks and metrics. Cheap to clone.
///
/// ```no_run
/// # async fn f() -> Result<(), pushgate_redis::ConnectError> {
/// use pushgate_redis::{RedisOptions, RedisStorage};
///
/// let storage = RedisStorage::connect("redis://127.0.0.1:6379", RedisOptions::default()).await?;
/// let state = storage.state();
/// if !state.connected() {
///     eprintln!("redis down: {:?}", state.last_error());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RedisState(Arc<StateInner>);

#[derive(Debug, Default)]
struct StateInner {
    connected: AtomicBool,
    applied: AtomicU64,
    last_error: Mutex<Option<String>>,
    fatal: Mutex<Option<String>>,
}

impl RedisState {
    /// Whether the node is connected to Redis and following the log (publishes are accepted).
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// The newest position this node has applied from the log (its head).
    pub fn applied_position(&self) -> u64 {
        self.0.applied.load(Ordering::Acquire)
    }

    /// The last Redis error seen, if any (kept after a reconnect, for diagnosis).
    pub fn last_error(&self) -> Option<String> {
        self.0.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Set when the node cannot go on with this store (it holds another epoch): the node
    /// refuses publishes for good and should be restarted.
    pub fn fatal(&self) -> Option<String> {
        self.0.fatal.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.0.connected.store(connected, Ordering::Release);
    }

    pub(crate) fn set_applied(&self, position: u64) {
        self.0.applied.store(position, Ordering::Release);
    }

    pub(crate) fn set_error(&self, error: impl Into<String>) {
        *self.0.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.into());
    }

    pub(crate) fn set_fatal(&self, reason: String) {
        self.set_connected(false);
        *self.0.fatal.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }
}

/// What the storage handle and its tail task share.
pub(crate) struct Shared {
    pub(crate) replica: MemoryStorage,
    pub(crate) keys: Keys,
    pub(crate) options: RedisOptions,
    pub(crate) client: redis::Client,
    pub(crate) state: RedisState,
    /// The command connection of the current session with Redis; `None` while disconnected.
    pub(crate) connection: Mutex<Option<MultiplexedConnection>>,
    /// The applied position, for publishes waiting to read their own write.
    pub(crate) applied: watch::Sender<u64>,
    /// The newest log position passed over as unreadable; reading resumes after it.
    pub(crate) skipped_through: AtomicU64,
    /// Set by a publish that found the store without this node's epoch: the tail reconnects and
    /// checks the store. A flag of its own, since the tail may mark itself connected after the
    /// publish marked it disconnected.
    pub(crate) recheck: AtomicBool,
    pub(crate) append_script: redis::Script,
    pub(crate) restore_seqs_script: redis::Script,
    pub(crate) restore_epoch_script: redis::Script,
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

    fn connection(&self) -> Option<MultiplexedConnection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Applies one log entry to the copy and publishes the new head.
    pub(crate) fn apply(&self, entry: tail::Entry) -> Result<(), HubError> {
        self.replica.apply(EventParts {
            topic: entry.topic,
            event_type: entry.event_type,
            data: entry.data,
            seq: entry.seq,
            position: entry.position,
            epoch: entry.epoch,
            timestamp_ms: entry.timestamp_ms,
            // The stream does not carry the sender yet.
            from: None,
        })?;
        let head = self.replica.head();
        self.state.set_applied(head);
        self.applied.send_if_modified(|applied| {
            let moved = head > *applied;
            *applied = head.max(*applied);
            moved
        });
        Ok(())
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
    /// Connects to `url`, reads or creates the shared epoch, loads the retained log into this
    /// node's copy, and starts the tail task (on the current tokio runtime).
    ///
    /// # Errors
    /// [`ConnectError`] when the URL is invalid, Redis cannot be reached or is older than 6.2,
    /// or its keys hold something unexpected. Once connected, later outages are not errors of this call: they
    /// show in [`RedisState`] and as [`HubError::Unavailable`] on publish.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self, ConnectError> {
        let client = redis::Client::open(url).map_err(ConnectError::Url)?;
        let keys = Keys::new(&options.prefix);
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout));
        let mut connection = client.get_multiplexed_async_connection_with_config(&config).await?;
        check_server(&mut connection).await?;
        let epoch = scripts::init_epoch(&mut connection, &keys).await?;
        let replica = MemoryStorage::replica(epoch, options.history, options.max_topics)
            .history_max_bytes(options.history_max_bytes);
        let shared = Arc::new(Shared {
            replica,
            keys,
            client,
            state: RedisState(Arc::default()),
            connection: Mutex::new(None),
            applied: watch::Sender::new(0),
            skipped_through: AtomicU64::new(0),
            recheck: AtomicBool::new(false),
            append_script: redis::Script::new(scripts::APPEND),
            restore_seqs_script: redis::Script::new(scripts::RESTORE_SEQS),
            restore_epoch_script: redis::Script::new(scripts::RESTORE_EPOCH),
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
            "redis storage ready"
        );
        let tail = tokio::spawn(tail::run(Arc::clone(&shared))).abort_handle();
        Ok(Self { shared, tail })
    }

    /// The connection state, for readiness and metrics.
    pub fn state(&self) -> RedisState {
        self.shared.state.clone()
    }

    async fn append_inner(&self, request: AppendRequest) -> Result<Published, HubError> {
        let shared = &self.shared;
        if let Some(reason) = shared.state.fatal() {
            return Err(HubError::Unavailable { reason });
        }
        let unavailable = |why: &str| HubError::Unavailable { reason: format!("redis: {why}") };
        let Some(mut connection) = shared.connection().filter(|_| shared.state.connected()) else {
            return Err(unavailable("not connected"));
        };
        // The local topic limit (applying other nodes' events ignores it).
        shared.replica.topic(&request.topic)?;
        let timestamp_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut waiter = shared.applied.subscribe();
        let (position, seq): (u64, u64) = shared
            .append_script
            .key(&shared.keys.epoch)
            .key(&shared.keys.pos)
            .key(&shared.keys.seq)
            .key(&shared.keys.log)
            .arg(shared.replica.epoch().to_string())
            .arg(request.topic.as_str())
            .arg(&*request.event_type)
            .arg(request.data.as_str())
            .arg(timestamp_ms)
            .arg(shared.options.stream_max_len)
            .invoke_async(&mut connection)
            .await
            .map_err(|err| {
                shared.state.set_error(err.to_string());
                if err.to_string().contains(scripts::EPOCH_MISMATCH) {
                    // The store lost its keys (or was replaced): the tail sorts that out on its
                    // next reconnect; until then this node takes no publish.
                    shared.state.set_connected(false);
                    shared.recheck.store(true, Ordering::Release);
                    unavailable("the store lost its state; waiting for it to be restored")
                } else if err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                {
                    unavailable(&err.to_string())
                } else {
                    HubError::Storage(Box::new(err))
                }
            })?;
        // The event is published from here on: failing now would make the client publish it again.
        let applied =
            tokio::time::timeout(shared.options.apply_wait, waiter.wait_for(|&a| a >= position)).await;
        let mut out = Vec::with_capacity(1);
        if matches!(applied, Ok(Ok(_))) {
            if let Ok(log) = shared.replica.topic(&request.topic) {
                log.read(position - 1, position, 1, &mut out);
            }
        } else {
            tracing::debug!(position, "published, but this node has not applied it yet");
        }
        Ok(Published::New(match out.pop() {
            Some(event) if event.position() == position => event,
            // Not applied here in time, or already evicted again (a tiny history): the caller
            // still gets what was stored, built from Redis's answer.
            _ => Arc::new(Event::from_parts(EventParts {
                topic: request.topic,
                event_type: request.event_type,
                data: request.data,
                seq,
                position,
                epoch: shared.replica.epoch(),
                timestamp_ms,
                from: request.from,
            })),
        }))
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
        Box::pin(self.append_inner(request))
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
