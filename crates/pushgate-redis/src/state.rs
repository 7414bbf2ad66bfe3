//! [`RedisState`]: what a node knows of its link to Redis, for readiness checks and metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The connection state of a [`RedisStorage`](crate::RedisStorage), for readiness checks and metrics. Cheap to clone.
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
    waiting_for_replicas: AtomicBool,
    last_error: Mutex<Option<String>>,
    fatal: Mutex<Option<String>>,
}

impl RedisState {
    pub(crate) fn new() -> Self {
        Self(Arc::default())
    }

    /// Whether the node is connected to Redis and following the log (publishes are accepted).
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// The newest position this node has applied from the log (its head).
    pub fn applied_position(&self) -> u64 {
        self.0.applied.load(Ordering::Acquire)
    }

    /// Whether this node holds log entries that fewer replicas than
    /// [`RedisOptions::min_replicas_ack`](crate::RedisOptions::min_replicas_ack) confirmed: it
    /// delivers nothing newer, and publishes fail as unavailable, until they do.
    pub fn waiting_for_replicas(&self) -> bool {
        self.0.waiting_for_replicas.load(Ordering::Acquire)
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

    pub(crate) fn set_waiting_for_replicas(&self, waiting: bool) {
        self.0.waiting_for_replicas.store(waiting, Ordering::Release);
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
