//! The seam between the hub's fan-out and the place events are sequenced and kept.
//!
//! The contract itself is documented on [`Storage`], since this module is private.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::cursor::Epoch;
use crate::error::HubError;
use crate::event::{Data, Event};
use crate::publish::Published;
use crate::registry::Registry;
use crate::topic::TopicName;

/// Sequencing and history for a hub: assigns positions, stores events, answers range reads.
///
/// [`MemoryStorage`](crate::MemoryStorage) is the default: one process, history in RAM, a new
/// [`Epoch`] per start. A multi-node backend (Redis) implements the same two traits: it assigns
/// positions from the shared store and keeps a readable local copy of recent events, calling
/// [`Notifier::committed`] as events become readable in position order. Transports never see
/// this seam; they talk to [`Hub`](crate::Hub) only.
///
/// The contract, which subscriptions rely on for loss-free, duplicate-free, totally ordered
/// delivery:
/// - positions strictly increase across all topics of an epoch; `seq` counts 1, 2, 3, … per topic;
/// - [`Storage::head`] only moves forward, and once it returns `h`, every event at a position
///   `<= h` is readable from its topic's [`TopicLog`] (publish the head *after* the event);
/// - eviction removes events oldest-first per topic and is reported through [`Gap`].
///
/// Reads are synchronous and must be cheap (they run on every delivery); only appends may wait
/// on I/O.
pub trait Storage: Send + Sync + 'static {
    /// The epoch every position handed out belongs to.
    fn epoch(&self) -> Epoch;

    /// The highest position `h` such that every event at a position `<= h` is readable.
    fn head(&self) -> u64;

    /// The log of `topic` for a publisher, created on first use: the topic takes a slot
    /// toward the backend's topic limit.
    ///
    /// # Errors
    /// [`HubError::TopicLimit`] when creating it would pass the backend's topic limit.
    fn topic(&self, topic: &TopicName) -> Result<Arc<dyn TopicLog>, HubError>;

    /// The log of `topic` for a reader (a subscription, a fetch). Readers do not make topics:
    /// a backend should give a topic that was never published to a log that takes no slot
    /// toward its topic limit and is dropped when the last reader lets go
    /// ([`unwatch`](Self::unwatch)), so that readers naming topics cannot fill the table
    /// publishers need. The log must still show the topic's events once they are published.
    /// The default is [`topic`](Self::topic).
    ///
    /// # Errors
    /// As [`topic`](Self::topic), for a backend whose readers take slots.
    fn watch(&self, topic: &TopicName) -> Result<Arc<dyn TopicLog>, HubError> {
        self.topic(topic)
    }

    /// A reader dropped the log [`watch`](Self::watch) gave it for `topic`. The hub calls it
    /// only for a log that shows no event ([`TopicLog::last_position`] 0): a topic that has
    /// held events keeps its slot until [`sweep`](Self::sweep) forgets it. The default does
    /// nothing.
    fn unwatch(&self, topic: &TopicName) {
        let _ = topic;
    }

    /// Sequences and stores an event, resolving once it is readable (the head covers it).
    ///
    /// With [`AppendRequest::idempotency_key`] set, the storage checks the key atomically with
    /// sequencing: if the same key was used on the same topic within its window, it stores
    /// nothing and answers [`Published::Replayed`] with the original event's `seq` and position.
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<Published, HubError>>;

    /// Continues `topic`'s `seq` after `last_seq`, its newest event (at `last_position`) having
    /// been published before this storage started; see
    /// [`Hub::restore_topic`](crate::Hub::restore_topic). The default does nothing: a shared
    /// store keeps `seq` itself.
    ///
    /// # Errors
    /// [`HubError::RestoreConflict`] when the topic already holds events with other numbers.
    fn restore_topic(&self, topic: &TopicName, last_seq: u64, last_position: u64) -> Result<(), HubError> {
        let _ = (topic, last_seq, last_position);
        Ok(())
    }

    /// Receives the hub's wake-up handle; called once, when the hub is built.
    fn attach(&self, notifier: Notifier);

    /// Evicts expired events and forgets idle, empty topics no one holds. Returns how many
    /// topics were forgotten.
    fn sweep(&self) -> usize;

    /// Topics currently held that take a slot toward the topic limit.
    fn topic_count(&self) -> usize;

    /// What the retained history costs in memory, and the budget it is kept within. The
    /// default reports nothing (no budget).
    fn history_use(&self) -> HistoryUse {
        HistoryUse::default()
    }

    /// How far past [`head`](Self::head) a cursor of this epoch may point and still be taken as
    /// an event that is not readable *here yet* rather than as [`HubError::CursorAhead`].
    ///
    /// A shared store's other nodes may have made newer positions readable before this one (a
    /// client moved from such a node); the hub then treats the cursor as "nothing yet" and
    /// waits for the head to pass it. The default, 0, suits a single-process storage, where no
    /// valid cursor can be ahead of the head.
    fn max_lead(&self) -> u64 {
        0
    }
}

/// What a storage's retained history costs in memory; see [`Storage::history_use`].
///
/// ```
/// use pushgate_hub::{HistoryLimit, MemoryStorage, Storage};
///
/// let storage = MemoryStorage::new(HistoryLimit::default(), 100).history_max_bytes(1 << 20);
/// let held = storage.history_use();
/// assert_eq!((held.bytes, held.max_bytes, held.evicted), (0, 1 << 20, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryUse {
    /// Bytes the retained events (with their cached encodings) and idempotency keys hold.
    pub bytes: u64,
    /// The budget they are kept within; 0 when the storage keeps none.
    pub max_bytes: u64,
    /// Events evicted to keep within the budget, since the storage was made.
    pub evicted: u64,
}

impl HistoryUse {
    /// A report, for a [`Storage`] that keeps a budget.
    ///
    /// ```
    /// # use pushgate_hub::HistoryUse;
    /// assert_eq!(HistoryUse::new(10, 100, 0).max_bytes, 100);
    /// ```
    pub fn new(bytes: usize, max_bytes: usize, evicted: u64) -> Self {
        Self { bytes: bytes as u64, max_bytes: max_bytes as u64, evicted }
    }
}

/// One topic's retained events, read by position range.
pub trait TopicLog: Send + Sync {
    /// Position of the newest event of this topic, 0 if it has none. A cheap check (an atomic
    /// load) that lets a reader skip topics with nothing new.
    fn last_position(&self) -> u64;

    /// Appends to `out`, in order, at most `limit` events with `after < position <= upto`.
    fn read(&self, after: u64, upto: u64, limit: usize, out: &mut Vec<Arc<Event>>) -> TopicRead;

    /// Evicts events older than the age limit now, rather than at the next append.
    fn expire(&self);
}

/// What an append asks of the storage. The hub has validated every field.
#[derive(Debug)]
pub struct AppendRequest {
    /// Target topic.
    pub topic: TopicName,
    /// Event type.
    pub event_type: Box<str>,
    /// Payload.
    pub data: Data,
    /// Who published it ([`NewEvent::from`](crate::NewEvent::from)); stored with the event.
    pub from: Option<Box<str>>,
    /// The publish's idempotency key ([`NewEvent::idempotency_key`](crate::NewEvent::idempotency_key)),
    /// scoped to `topic`: see [`Storage::append`].
    pub idempotency_key: Option<Box<str>>,
    /// What the event is the newest value of ([`NewEvent::latest_key`](crate::NewEvent::latest_key));
    /// stored with the event.
    pub latest_key: Option<Box<str>>,
}

/// The outcome of [`TopicLog::read`] besides the events themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicRead {
    /// Set when events after `after` were evicted (or may have been), so the reader missed them.
    pub gap: Option<Gap>,
    /// Events in range that were not returned because of `limit`.
    pub remaining: usize,
}

/// Events a reader missed in one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The `seq` of the oldest event still available (retained, or the next to be published).
    pub resume_seq: u64,
    /// The position of the newest missing event; reading after it sees no gap.
    pub evicted_through: u64,
    /// False when the backend cannot tell whether anything was missed (the topic was forgotten
    /// and created again), only that it may have been.
    pub certain: bool,
}

/// The hub's wake-up handle: a storage calls [`committed`](Self::committed) after events of a
/// topic become readable, and every subscriber of that topic is woken.
#[derive(Clone)]
pub struct Notifier(pub(crate) Arc<Registry>);

impl Notifier {
    /// Wakes the readers of `topic`. Cheap when the topic has no subscribers.
    pub fn committed(&self, topic: &TopicName) {
        self.0.wake(topic);
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifier")
    }
}
