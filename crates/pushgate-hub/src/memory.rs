//! The in-process storage: history in bounded per-topic rings, positions from one counter, and
//! one byte budget over all of it (see `budget`).

mod journal;
mod topic;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::future::{self, BoxFuture};
use parking_lot::Mutex;
use tokio::time::Instant;

pub use self::journal::KeyJournal;
pub(crate) use self::topic::{MemoryTopic, Oldest};
use crate::budget::{Budget, DEFAULT_HISTORY_MAX_BYTES};
use crate::cursor::Epoch;
use crate::error::HubError;
use crate::event::{Event, EventParts};
use crate::idempotency::{KeyId, KeyMap, Original};
use crate::publish::{Published, Replay};
use crate::storage::{AppendRequest, HistoryUse, Notifier, Storage, TopicLog};
use crate::topic::TopicName;

/// How much history each topic keeps. An event is dropped when any bound is passed, oldest
/// first; the newest event of a topic is always kept.
///
/// History is also every live subscriber's buffer: a subscriber that has not read an event by
/// the time it is evicted has lagged (see [`RecvError::Lagged`](crate::RecvError::Lagged)).
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::HistoryLimit;
///
/// let limit = HistoryLimit::default().max_events(100).max_age(Some(Duration::from_secs(60)));
/// assert_eq!(limit.events(), 100);
/// assert_eq!(HistoryLimit::default().events(), 1000);
/// assert_eq!(HistoryLimit::default().age(), Some(Duration::from_secs(600)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimit {
    max_events: usize,
    max_age: Option<Duration>,
    max_bytes: usize,
}

impl Default for HistoryLimit {
    fn default() -> Self {
        Self { max_events: 1000, max_age: Some(Duration::from_secs(600)), max_bytes: 8 << 20 }
    }
}

impl HistoryLimit {
    /// Keep at most `n` events per topic (at least 1 is always kept).
    pub fn max_events(mut self, n: usize) -> Self {
        self.max_events = n.max(1);
        self
    }

    /// Drop events older than `age`; `None` keeps them until another bound evicts them.
    pub fn max_age(mut self, age: Option<Duration>) -> Self {
        self.max_age = age;
        self
    }

    /// Keep at most about `bytes` of events per topic (payload plus a fixed per-event overhead).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The event bound.
    pub fn events(&self) -> usize {
        self.max_events
    }

    /// The age bound.
    pub fn age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The byte bound.
    pub fn bytes(&self) -> usize {
        self.max_bytes
    }
}

/// History in this process's memory. The default storage of a [`Hub`](crate::Hub).
///
/// Appends are serialized by one short critical section (take the next position, push onto the
/// topic's ring, publish the head), which is what gives every reader one total order across
/// topics; readers never take that lock.
///
/// **Idempotency keys** are remembered in the same critical section, so a key is checked and
/// taken atomically with sequencing: two concurrent publishes with one key store one event. A
/// key is remembered for its window ([`idempotency`](Self::idempotency), default 5 minutes) and
/// at most `max_keys` keys are (default 100,000), the oldest forgotten first: forgetting a key
/// early, when more than `max_keys` keyed publishes arrive within one window, is the one way a
/// repeated key is published twice.
///
/// **Memory.** Besides each topic's [`HistoryLimit`], all history together is kept within one
/// byte budget ([`history_max_bytes`](Self::history_max_bytes), default 128 MiB), counting what
/// events really hold (payload, the event itself, every encoding transports cache on it) and
/// the idempotency keys. Past it, the oldest events of the whole storage are evicted first,
/// whatever their topic, and their readers get the usual exact [`Gap`](crate::Gap): a reset, a lag, or a
/// backfill from a [`HistoryTier`](crate::HistoryTier).
///
/// **Topics.** A topic takes a slot toward `max_topics` when it is published to (or restored),
/// and gives it back when [`sweep`](Storage::sweep) forgets it. A reader naming a topic that was
/// never published to takes no slot: the record it is given ([`Storage::watch`]) is dropped when
/// its last reader lets go, so readers cannot fill the table publishers need. Such records are
/// bounded by the readers that hold them (connections × topics per subscription).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use pushgate_hub::{HistoryLimit, Hub, MemoryStorage};
///
/// let storage = MemoryStorage::new(HistoryLimit::default().max_events(10), 10_000)
///     .idempotency(Duration::from_secs(60), 1_000);
/// let hub = Hub::builder().storage(Arc::new(storage)).build();
/// # let _ = hub;
/// ```
pub struct MemoryStorage {
    epoch: Epoch,
    limit: HistoryLimit,
    max_topics: usize,
    /// Topics that take a slot toward `max_topics`.
    counted: AtomicUsize,
    budget: Arc<Budget>,
    /// The lock that orders appends across topics, and what it guards.
    sequencer: Mutex<Sequencer>,
    idempotency_window: Duration,
    max_idempotency_keys: usize,
    /// The position floor of a resumed epoch: below it this storage saw nothing.
    resumed_floor: u64,
    head: AtomicU64,
    topics: DashMap<TopicName, Arc<MemoryTopic>>,
    /// The newest position any forgotten topic had: a cursor older than this may have missed
    /// events of a topic that no longer has a record.
    horizon: AtomicU64,
    /// Replica only: this copy never saw the shared log's entries at or below this position
    /// (they were gone before it started reading, or unreadable). Bounds where the unseen events
    /// of a topic first met past `seq` 1 can lie.
    unseen_through: AtomicU64,
    notifier: OnceLock<Notifier>,
    /// Where new idempotency keys are written down before their events are readable.
    journal: Option<Arc<KeyJournal>>,
}

impl MemoryStorage {
    /// An empty storage with a fresh random epoch.
    ///
    /// ```
    /// use pushgate_hub::{HistoryLimit, MemoryStorage, Storage};
    ///
    /// let storage = MemoryStorage::new(HistoryLimit::default(), 100);
    /// assert_eq!(storage.head(), 0);
    /// ```
    pub fn new(limit: HistoryLimit, max_topics: usize) -> Self {
        Self {
            epoch: Epoch::random(),
            limit,
            max_topics,
            counted: AtomicUsize::new(0),
            budget: Arc::new(Budget::new(DEFAULT_HISTORY_MAX_BYTES)),
            sequencer: Mutex::new(Sequencer { last: 0, keys: KeyMap::default(), continued: HashMap::new() }),
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            max_idempotency_keys: DEFAULT_MAX_IDEMPOTENCY_KEYS,
            resumed_floor: 0,
            head: AtomicU64::new(0),
            topics: DashMap::new(),
            horizon: AtomicU64::new(0),
            unseen_through: AtomicU64::new(0),
            notifier: OnceLock::new(),
            journal: None,
        }
    }

    /// An empty storage of a known `epoch`, filled by [`apply`](Self::apply) rather than by
    /// appends: the local copy a shared-store backend (Redis) keeps of the shared log, which
    /// assigns positions and `seq` itself.
    ///
    /// ```
    /// use pushgate_hub::{Data, Epoch, EventParts, HistoryLimit, MemoryStorage, Storage, TopicName};
    ///
    /// let epoch = Epoch::from_u32(7);
    /// let replica = MemoryStorage::replica(epoch, HistoryLimit::default(), 100);
    /// let entry = || EventParts {
    ///     topic: TopicName::new("t").unwrap(),
    ///     event_type: "message".into(),
    ///     data: Data::from(serde_json::json!(1)),
    ///     seq: 1,
    ///     position: 5,
    ///     epoch,
    ///     timestamp_ms: 0,
    ///     from: Some("ada".into()),
    ///     latest_key: None,
    /// };
    /// let event = replica.apply(entry())?;
    /// assert_eq!(event.map(|e| (e.position(), e.seq(), e.from().map(str::to_owned))), Some((5, 1, Some("ada".into()))));
    /// assert_eq!(replica.head(), 5);
    /// // Applying a position at or below the head again is a no-op, so a re-read is harmless.
    /// assert!(replica.apply(entry())?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replica(epoch: Epoch, limit: HistoryLimit, max_topics: usize) -> Self {
        Self { epoch, ..Self::new(limit, max_topics) }
    }

    /// Keep all history within about `bytes` (default 128 MiB,
    /// [`DEFAULT_HISTORY_MAX_BYTES`](crate::DEFAULT_HISTORY_MAX_BYTES)): past it, the oldest
    /// events of the whole storage are evicted first, whatever their topic. What is counted is
    /// what events really hold: payload, type and sender, the event itself, each encoding
    /// transports cache on it; and the idempotency keys, which may take at most a quarter of it
    /// (past that, the oldest keys are forgotten). The newest event is always kept. A replica
    /// obeys it too: readers of events it evicted get a gap, which a tier (the shared log) can
    /// fill.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use pushgate_hub::{Cursor, FetchOptions, HistoryLimit, Hub, MemoryStorage, NewEvent, Storage, TopicName};
    ///
    /// let storage = Arc::new(MemoryStorage::new(HistoryLimit::default(), 1000).history_max_bytes(64 << 10));
    /// let hub = Hub::builder().storage(storage.clone()).build();
    /// let kilobyte = serde_json::json!("x".repeat(1000));
    /// for n in 0..200 {
    ///     hub.publish(&TopicName::new(&format!("t{n}"))?, NewEvent::new(kilobyte.clone())).await?;
    /// }
    /// let held = storage.history_use();
    /// assert!(held.bytes <= 64 << 10 && held.evicted > 100);
    /// // The first topic's event went first: its reader is told exactly what it missed.
    /// let batch = hub.fetch(&[TopicName::new("t0")?], Cursor::at(hub.epoch(), 0), &FetchOptions::default()).await?;
    /// assert_eq!(batch.reset.unwrap().topics()[0].missed.at_least, 1);
    /// # Ok(()) }
    /// ```
    pub fn history_max_bytes(mut self, bytes: usize) -> Self {
        self.budget = Arc::new(Budget::new(bytes));
        self
    }

    /// Remember idempotency keys for `window` (zero turns keys off: every publish is new), and at
    /// most `max_keys` of them, the oldest forgotten first. Defaults: 5 minutes, 100,000 keys.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pushgate_hub::{HistoryLimit, MemoryStorage};
    ///
    /// let storage = MemoryStorage::new(HistoryLimit::default(), 100).idempotency(Duration::from_secs(30), 500);
    /// # let _ = storage;
    /// ```
    pub fn idempotency(mut self, window: Duration, max_keys: usize) -> Self {
        self.idempotency_window = window;
        self.max_idempotency_keys = max_keys;
        self
    }

    /// Continues `epoch` rather than starting a new one: positions handed out from now on are
    /// above `position_floor`, which must be at least every position the epoch used before
    /// (the gateway keeps it across restarts). Cursors of the epoch up to the floor stay valid.
    /// This storage holds none of the epoch's earlier events, so a reader from before the floor
    /// is told it *may* have missed events of every topic (an uncertain gap, the rule for a
    /// forgotten topic), unless a [`HistoryTier`](crate::HistoryTier) holds them. Restore each
    /// topic's `seq` with [`Hub::restore_topic`](crate::Hub::restore_topic) before publishing to
    /// it.
    ///
    /// ```
    /// use pushgate_hub::{Epoch, HistoryLimit, MemoryStorage, Storage};
    ///
    /// let storage = MemoryStorage::new(HistoryLimit::default(), 100).resume(Epoch::from_u32(7), 1_000);
    /// assert_eq!((storage.epoch(), storage.head()), (Epoch::from_u32(7), 1_000));
    /// ```
    pub fn resume(mut self, epoch: Epoch, position_floor: u64) -> Self {
        self.epoch = epoch;
        self.resumed_floor = position_floor;
        self.sequencer.get_mut().last = position_floor;
        *self.head.get_mut() = position_floor;
        *self.horizon.get_mut() = position_floor;
        self
    }

    /// Writes every idempotency key it takes to `journal` before the event is readable, and
    /// remembers the keys the journal holds from before a restart, each for what was left of
    /// its window; a topic's next new event is numbered after the newest `seq` the journal
    /// holds of it (and after a [restored](Storage::restore_topic) one); see [`KeyJournal`].
    /// Readers from before the restart are told what they may have missed as without the
    /// journal (it knows keyed events only). So a keyed
    /// publish retried after the process crashed (a database source republishing changes it
    /// had not marked yet) is answered with the original event's numbers instead of being
    /// delivered twice.
    ///
    /// Call it after [`idempotency`](Self::idempotency) and [`resume`](Self::resume): the
    /// journal must be of the resumed epoch (one of another epoch is not used, and a warning
    /// says so), and with keys off it is not used either.
    #[must_use]
    pub fn key_journal(mut self, journal: Arc<KeyJournal>) -> Self {
        if journal.epoch() != self.epoch {
            tracing::warn!(
                journal = %journal.epoch(), storage = %self.epoch,
                "the idempotency-key journal is of another epoch; not used"
            );
            journal.forget();
            return self;
        }
        if self.idempotency_window.is_zero() || self.max_idempotency_keys == 0 {
            journal.forget();
            return self;
        }
        let now = Instant::now();
        let budget = Arc::clone(&self.budget);
        let sequencer = self.sequencer.get_mut();
        for remembered in journal.start(self.idempotency_window, self.max_idempotency_keys) {
            let line = remembered.line;
            let last = sequencer.continued.entry(line.topic.clone()).or_default();
            *last = (*last).max(line.seq);
            let id = Arc::new(KeyId { topic: line.topic, key: line.key });
            let original = Original { seq: line.seq, position: line.position };
            sequencer.keys.insert(id, original, now + remembered.left, self.max_idempotency_keys, &budget);
        }
        self.journal = Some(journal);
        self
    }

    /// Stores an event that was already sequenced elsewhere (at `parts.position`, which must be
    /// past the head, with topic sequence number `parts.seq`), moves the head to it and wakes
    /// the topic's readers. Returns `None`, changing nothing, when the position is not past the
    /// head (the event is already here). `parts.epoch` is ignored: the event takes this copy's.
    ///
    /// A `seq` beyond the next one the topic expects means events of the topic were never seen
    /// here (they were gone from the shared log before this copy started, or trimmed before it
    /// read them). They can only lie where this copy was blind to the topic: before its record
    /// of the topic was created (the head then), or at positions it never saw (before the first
    /// position it applied, or declared with [`mark_unseen_through`](Self::mark_unseen_through)).
    /// Readers from before that bound get an uncertain [`Gap`](crate::Gap) rather than silence; a reader
    /// positioned at or after it (a live subscriber that started after the record was created)
    /// missed nothing.
    ///
    /// The topic limit is not enforced here: the shared log has already accepted the event, and
    /// a copy that skipped it would break the head's promise.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for a bounded copy.
    pub fn apply(&self, parts: EventParts) -> Result<Option<Arc<Event>>, HubError> {
        Ok(self.apply_when(parts, false)?.ok())
    }

    /// As [`apply`](Self::apply), but only when the event comes right after the head (at
    /// `head + 1`): the node that sequenced an event in the shared log stores it at once when
    /// nothing of the log before it is still unread here, instead of waiting to read it back.
    /// Otherwise it changes nothing and gives `parts` back; whoever then reads the event from
    /// the log applies it as usual, and reading it again once it is here changes nothing.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn apply_next(&self, parts: EventParts) -> Result<Result<Arc<Event>, EventParts>, HubError> {
        self.apply_when(parts, true)
    }

    /// [`apply`](Self::apply) and [`apply_next`](Self::apply_next): `Err(parts)` when the event
    /// is not taken.
    fn apply_when(
        &self,
        mut parts: EventParts,
        next_only: bool,
    ) -> Result<Result<Arc<Event>, EventParts>, HubError> {
        let position = parts.position;
        if next_only && self.head.load(Ordering::Acquire) + 1 != position {
            // Checked again under the lock; this spares the topic lookup when it cannot be.
            return Ok(Err(parts));
        }
        let entry = self.find_or_insert(&parts.topic);
        parts.epoch = self.epoch;
        let (event, queue) = {
            let mut sequencer = self.sequencer.lock();
            if position <= sequencer.last || (next_only && sequencer.last + 1 != position) {
                return Ok(Err(parts));
            }
            if sequencer.last == 0 {
                // The first entry this copy sees: whatever came before it was never seen here.
                self.unseen_through.fetch_max(position - 1, Ordering::AcqRel);
            }
            // The shared log accepted it: it takes its slot whatever the limit says.
            self.count(&entry, false)?;
            let unseen = self.unseen_through.load(Ordering::Acquire);
            let pushed = entry.push_sequenced(unseen, parts);
            sequencer.last = position;
            self.head.store(position, Ordering::Release);
            pushed
        };
        self.budget.admit(queue.map(|front| (front, &entry)));
        if let Some(notifier) = self.notifier.get() {
            notifier.committed(event.topic());
        }
        Ok(Ok(event))
    }

    /// Declares that this copy never saw the shared log's entries up to `position` (it passed
    /// over an unreadable one): a topic later met with a jump in `seq` may have lost events
    /// there, so its readers from before `position` get a gap.
    pub fn mark_unseen_through(&self, position: u64) {
        self.unseen_through.fetch_max(position, Ordering::AcqRel);
    }

    /// Declares that the shared log lost entries up to `position` before this copy read them
    /// (trimmed while this node was away): a reader from before `position` may have missed
    /// events of any topic, including topics with no event left to show a jump in `seq`, so
    /// every such reader gets an uncertain [`Gap`](crate::Gap) (a reset) on every topic.
    pub fn mark_lost_through(&self, position: u64) {
        self.unseen_through.fetch_max(position, Ordering::AcqRel);
        // Topics created from now on start from it; those held now are raised one by one.
        self.horizon.fetch_max(position, Ordering::AcqRel);
        for entry in &self.topics {
            let mut ring = entry.value().ring.write();
            ring.uncertain_through = ring.uncertain_through.max(position);
        }
    }

    /// The `seq` of the newest event of every topic held (topics with no event yet are left
    /// out). A shared-store backend uses it to restore the store's counters after the store lost
    /// them.
    pub fn last_seqs(&self) -> Vec<(TopicName, u64)> {
        self.topics
            .iter()
            .filter_map(|entry| {
                let next = entry.value().ring.read().next_seq;
                (next > 1).then(|| (entry.key().clone(), next - 1))
            })
            .collect()
    }

    /// The record of `name` for a publisher: it takes a slot toward the topic limit.
    fn topic_entry(&self, name: &TopicName) -> Result<Arc<MemoryTopic>, HubError> {
        let topic = match self.topics.get(name.as_str()) {
            Some(topic) => Arc::clone(&topic),
            // Checked before inserting too, so a refused publish leaves no record behind.
            None if self.counted.load(Ordering::Acquire) >= self.max_topics => {
                return Err(HubError::TopicLimit { limit: self.max_topics });
            }
            None => self.find_or_insert(name),
        };
        if let Err(err) = self.count(&topic, true) {
            drop(topic);
            self.unwatch(name);
            return Err(err);
        }
        Ok(topic)
    }

    /// Gives `topic` its slot toward the topic limit, unless it has one; with `limit`, only
    /// while fewer than `max_topics` are taken.
    fn count(&self, topic: &MemoryTopic, limit: bool) -> Result<(), HubError> {
        if topic.counted.load(Ordering::Acquire) {
            return Ok(());
        }
        if limit {
            let max = self.max_topics;
            let taken = self
                .counted
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
            if taken.is_err() {
                return Err(HubError::TopicLimit { limit: max });
            }
        } else {
            self.counted.fetch_add(1, Ordering::AcqRel);
        }
        if topic.counted.swap(true, Ordering::AcqRel) {
            // Another publisher gave it its slot meanwhile.
            self.counted.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }

    fn find_or_insert(&self, name: &TopicName) -> Arc<MemoryTopic> {
        if let Some(topic) = self.topics.get(name.as_str()) {
            return Arc::clone(&topic);
        }
        let entry = self.topics.entry(name.clone()).or_insert_with(|| {
            Arc::new(MemoryTopic::new(
                name.clone(),
                self.limit,
                Arc::clone(&self.budget),
                self.head.load(Ordering::Acquire),
                self.horizon.load(Ordering::Acquire),
            ))
        });
        Arc::clone(&entry)
    }

    fn append_now(&self, request: AppendRequest) -> Result<Published, HubError> {
        let topic = self.topic_entry(&request.topic)?;
        let timestamp_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Only keyed publishes read the monotonic clock, and only when keys are on.
        let key = request
            .idempotency_key
            .filter(|_| !self.idempotency_window.is_zero() && self.max_idempotency_keys > 0)
            .map(|key| (Arc::new(KeyId { topic: topic.name.clone(), key }), Instant::now()));
        let (event, queue) = {
            let mut sequencer = self.sequencer.lock();
            if let Some((id, now)) = &key {
                sequencer.keys.expire(*now, &self.budget);
                if let Some(original) = sequencer.keys.get(id) {
                    return Ok(Published::Replayed(Replay {
                        topic: request.topic,
                        seq: original.seq,
                        position: original.position,
                        epoch: self.epoch,
                    }));
                }
            }
            let position = sequencer.last + 1;
            if !sequencer.continued.is_empty()
                && let Some(last_seq) = sequencer.continued.remove(&request.topic)
            {
                // The topic's events up to `last_seq` were published before a restart.
                let mut ring = topic.ring.write();
                ring.next_seq = ring.next_seq.max(last_seq + 1);
            }
            if let (Some((id, _)), Some(journal)) = (&key, &self.journal) {
                // Before the push: from then on a reader may see the event. The sequencer's
                // lock keeps the topic's next `seq` as read here.
                let seq = topic.ring.read().next_seq;
                journal.record(timestamp_ms, &id.topic, &id.key, seq, position);
            }
            let pushed = topic.push(EventParts {
                topic: request.topic,
                event_type: request.event_type,
                data: request.data,
                seq: 0,
                position,
                epoch: self.epoch,
                timestamp_ms,
                from: request.from,
                latest_key: request.latest_key,
            });
            sequencer.last = position;
            if let Some((id, now)) = key {
                let expires = now + self.idempotency_window;
                sequencer.keys.insert(
                    id,
                    Original { seq: pushed.0.seq(), position },
                    expires,
                    self.max_idempotency_keys,
                    &self.budget,
                );
            }
            // Release pairs with the Acquire in `head()`: whoever sees this head sees the event.
            self.head.store(position, Ordering::Release);
            pushed
        };
        // Outside the sequencer's lock: publishes to other topics need not wait for eviction.
        self.budget.admit(queue.map(|front| (front, &topic)));
        if let Some(notifier) = self.notifier.get() {
            notifier.committed(event.topic());
        }
        Ok(Published::New(event))
    }

    fn restore_now(&self, topic: &TopicName, last_seq: u64, last_position: u64) -> Result<(), HubError> {
        let entry = self.topic_entry(topic)?;
        let mut sequencer = self.sequencer.lock();
        if last_position > sequencer.last {
            // The epoch used positions up to here before this storage started: hand out none of
            // them again, and treat them as a stretch this storage never saw.
            sequencer.last = last_position;
            self.head.store(last_position, Ordering::Release);
            self.horizon.fetch_max(last_position, Ordering::AcqRel);
            for other in &self.topics {
                let mut ring = other.value().ring.write();
                ring.uncertain_through = ring.uncertain_through.max(last_position);
            }
        }
        let mut ring = entry.ring.write();
        let current = ring.next_seq - 1;
        if current != last_seq {
            if current > 0 {
                return Err(HubError::RestoreConflict { topic: topic.clone(), current, requested: last_seq });
            }
            ring.next_seq = last_seq + 1;
            // Its newest event was at `last_position`: a reader from before it missed at least
            // that, and one after it missed nothing of the topic before the restart (all this
            // storage knew of that stretch was that it might have).
            ring.evicted_through = ring.evicted_through.max(last_position);
            if ring.uncertain_through <= self.resumed_floor {
                ring.uncertain_through = ring.uncertain_through.min(last_position);
            }
        }
        // Until the topic's next publish, also where a sweep of its empty record cannot reach.
        let kept = sequencer.continued.entry(topic.clone()).or_default();
        *kept = (*kept).max(last_seq);
        Ok(())
    }
}

/// Default of [`MemoryStorage::idempotency`]'s window.
pub(crate) const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(300);
/// Default of [`MemoryStorage::idempotency`]'s key bound.
pub(crate) const DEFAULT_MAX_IDEMPOTENCY_KEYS: usize = 100_000;

/// What the sequencer lock guards: the last position handed out and the idempotency keys.
struct Sequencer {
    last: u64,
    keys: KeyMap,
    /// The newest `seq` the key journal holds of each topic from before a restart, or a
    /// [restore](Storage::restore_topic) gave: its next new event is numbered after it (taken
    /// at that publish, whatever swept the topic's empty record meanwhile).
    continued: HashMap<TopicName, u64>,
}

impl Storage for MemoryStorage {
    fn epoch(&self) -> Epoch {
        self.epoch
    }

    fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn topic(&self, topic: &TopicName) -> Result<Arc<dyn TopicLog>, HubError> {
        Ok(self.topic_entry(topic)?)
    }

    fn watch(&self, topic: &TopicName) -> Result<Arc<dyn TopicLog>, HubError> {
        Ok(self.find_or_insert(topic))
    }

    fn unwatch(&self, topic: &TopicName) {
        // Under the shard's lock, so nobody takes the record between the check and the removal;
        // a record without a slot never held an event (a publish counts it first).
        self.topics.remove_if(topic.as_str(), |_, record| {
            Arc::strong_count(record) == 1 && !record.counted.load(Ordering::Acquire)
        });
    }

    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<Published, HubError>> {
        Box::pin(future::ready(self.append_now(request)))
    }

    fn restore_topic(&self, topic: &TopicName, last_seq: u64, last_position: u64) -> Result<(), HubError> {
        self.restore_now(topic, last_seq, last_position)
    }

    fn attach(&self, notifier: Notifier) {
        // A storage serves one hub; a second attach keeps the first hub's notifier.
        let _ = self.notifier.set(notifier);
    }

    fn sweep(&self) -> usize {
        if !self.idempotency_window.is_zero() {
            self.sequencer.lock().keys.expire(Instant::now(), &self.budget);
        }
        let mut forgotten = 0;
        let names: Vec<TopicName> = self.topics.iter().map(|e| e.key().clone()).collect();
        for name in names {
            // remove_if holds the shard lock, so nobody can clone the Arc between the check
            // and the removal; a strong count of 1 means only this map holds the topic.
            let removed = self.topics.remove_if(name.as_str(), |_, topic| {
                topic.expire();
                Arc::strong_count(topic) == 1 && topic.ring.read().events.is_empty()
            });
            if let Some((_, topic)) = removed {
                self.horizon.fetch_max(topic.last_position.load(Ordering::Acquire), Ordering::AcqRel);
                if topic.counted.load(Ordering::Acquire) {
                    self.counted.fetch_sub(1, Ordering::AcqRel);
                }
                forgotten += 1;
            }
        }
        self.budget.compact(self.topics.len());
        forgotten
    }

    fn topic_count(&self) -> usize {
        self.counted.load(Ordering::Acquire)
    }

    fn history_use(&self) -> HistoryUse {
        HistoryUse::new(self.budget.used(), self.budget.max(), self.budget.evicted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Data;

    #[tokio::test(start_paused = true)]
    async fn the_budget_queue_stays_bounded_by_the_topics_held() {
        let limit = HistoryLimit::default().max_age(Some(Duration::from_secs(1)));
        let storage = MemoryStorage::new(limit, 10_000);
        for round in 0..5 {
            for n in 0..1000 {
                let request = AppendRequest {
                    topic: TopicName::new(&format!("r{round}.{n}")).expect("topic"),
                    event_type: "message".into(),
                    data: Data::from(serde_json::json!(n)),
                    from: None,
                    idempotency_key: None,
                    latest_key: None,
                };
                storage.append_now(request).expect("append");
            }
            // Every topic expires and is forgotten, each leaving its queue entry behind.
            tokio::time::advance(Duration::from_secs(2)).await;
            assert_eq!(storage.sweep(), 1000);
            let queued = storage.budget.queue_len();
            assert!(queued <= 2 * storage.topics.len() + 64, "round {round}: {queued} queued");
        }
        assert_eq!(storage.history_use().bytes, 0, "expired events gave their bytes back");
    }
}
