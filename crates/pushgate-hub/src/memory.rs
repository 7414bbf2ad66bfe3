//! The in-process storage: history in bounded per-topic rings, positions from one counter.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::future::{self, BoxFuture};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use crate::cursor::Epoch;
use crate::error::HubError;
use crate::event::{Event, EventParts};
use crate::idempotency::{KeyId, KeyMap, Original};
use crate::publish::{Published, Replay};
use crate::storage::{AppendRequest, Gap, Notifier, Storage, TopicLog, TopicRead};
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
            sequencer: Mutex::new(Sequencer { last: 0, keys: KeyMap::default() }),
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            max_idempotency_keys: DEFAULT_MAX_IDEMPOTENCY_KEYS,
            resumed_floor: 0,
            head: AtomicU64::new(0),
            topics: DashMap::new(),
            horizon: AtomicU64::new(0),
            unseen_through: AtomicU64::new(0),
            notifier: OnceLock::new(),
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
    /// Readers from before that bound get an uncertain [`Gap`] rather than silence; a reader
    /// positioned at or after it (a live subscriber that started after the record was created)
    /// missed nothing.
    ///
    /// The topic limit is not enforced here: the shared log has already accepted the event, and
    /// a copy that skipped it would break the head's promise.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for a bounded copy.
    pub fn apply(&self, mut parts: EventParts) -> Result<Option<Arc<Event>>, HubError> {
        let entry = match self.topics.get(parts.topic.as_str()) {
            Some(entry) => Arc::clone(&entry),
            None => self.insert_topic(&parts.topic),
        };
        let position = parts.position;
        parts.epoch = self.epoch;
        let event = {
            let mut sequencer = self.sequencer.lock();
            if position <= sequencer.last {
                return Ok(None);
            }
            if sequencer.last == 0 {
                // The first entry this copy sees: whatever came before it was never seen here.
                self.unseen_through.fetch_max(position - 1, Ordering::AcqRel);
            }
            let unseen = self.unseen_through.load(Ordering::Acquire);
            let event = entry.push_sequenced(unseen, parts);
            sequencer.last = position;
            self.head.store(position, Ordering::Release);
            event
        };
        if let Some(notifier) = self.notifier.get() {
            notifier.committed(event.topic());
        }
        Ok(Some(event))
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
    /// every such reader gets an uncertain [`Gap`] (a reset) on every topic.
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

    fn topic_entry(&self, name: &TopicName) -> Result<Arc<MemoryTopic>, HubError> {
        if let Some(topic) = self.topics.get(name.as_str()) {
            return Ok(Arc::clone(&topic));
        }
        if self.topics.len() >= self.max_topics {
            return Err(HubError::TopicLimit { limit: self.max_topics });
        }
        Ok(self.insert_topic(name))
    }

    fn insert_topic(&self, name: &TopicName) -> Arc<MemoryTopic> {
        let entry = self.topics.entry(name.clone()).or_insert_with(|| {
            Arc::new(MemoryTopic {
                limit: self.limit,
                created_at: self.head.load(Ordering::Acquire),
                last_position: AtomicU64::new(0),
                ring: RwLock::new(Ring {
                    events: VecDeque::new(),
                    next_seq: 1,
                    evicted_through: 0,
                    uncertain_through: self.horizon.load(Ordering::Acquire),
                    bytes: 0,
                }),
            })
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
            .map(|key| (Arc::new(KeyId { topic: request.topic.clone(), key }), Instant::now()));
        let event = {
            let mut sequencer = self.sequencer.lock();
            if let Some((id, now)) = &key {
                sequencer.keys.expire(*now);
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
            let event = topic.push(EventParts {
                topic: request.topic,
                event_type: request.event_type,
                data: request.data,
                seq: 0,
                position,
                epoch: self.epoch,
                timestamp_ms,
                from: request.from,
            });
            sequencer.last = position;
            if let Some((id, now)) = key {
                let expires = now + self.idempotency_window;
                sequencer.keys.insert(
                    id,
                    Original { seq: event.seq(), position },
                    expires,
                    self.max_idempotency_keys,
                );
            }
            // Release pairs with the Acquire in `head()`: whoever sees this head sees the event.
            self.head.store(position, Ordering::Release);
            event
        };
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
        if current == last_seq {
            return Ok(());
        }
        if current > 0 {
            return Err(HubError::RestoreConflict { topic: topic.clone(), current, requested: last_seq });
        }
        ring.next_seq = last_seq + 1;
        // Its newest event was at `last_position`: a reader from before it missed at least that,
        // and one after it missed nothing of the topic before the restart (all this storage
        // knew of that stretch was that it might have).
        ring.evicted_through = ring.evicted_through.max(last_position);
        if ring.uncertain_through <= self.resumed_floor {
            ring.uncertain_through = ring.uncertain_through.min(last_position);
        }
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
            self.sequencer.lock().keys.expire(Instant::now());
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
                forgotten += 1;
            }
        }
        forgotten
    }

    fn topic_count(&self) -> usize {
        self.topics.len()
    }
}

struct MemoryTopic {
    limit: HistoryLimit,
    /// The head when this record was created: events of the topic at or before it may have
    /// been held by an earlier record (swept) or never seen here.
    created_at: u64,
    last_position: AtomicU64,
    ring: RwLock<Ring>,
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    next_seq: u64,
    /// Position of the newest evicted event, 0 if none was.
    evicted_through: u64,
    /// Readers from before this position may have missed events of the topic (it was forgotten
    /// and created again, or events of it were never seen here).
    uncertain_through: u64,
    bytes: usize,
}

impl Ring {
    fn evict_front(&mut self) {
        if let Some(event) = self.events.pop_front() {
            self.evicted_through = event.position();
            self.bytes -= event.approx_size();
        }
    }

    fn evict_expired(&mut self, max_age: Duration, now: Instant) {
        while self.events.front().is_some_and(|e| now.saturating_duration_since(e.stored_at()) > max_age) {
            self.evict_front();
        }
    }

    fn resume_seq(&self) -> u64 {
        self.events.front().map_or(self.next_seq, |e| e.seq())
    }
}

impl MemoryTopic {
    /// Assigns the topic sequence number and stores the event; called under the sequencer lock.
    fn push(&self, mut parts: EventParts) -> Arc<Event> {
        let mut ring = self.ring.write();
        parts.seq = ring.next_seq;
        let event = Arc::new(Event::from_parts(parts));
        ring.next_seq += 1;
        self.store(&mut ring, &event);
        event
    }

    /// Stores an event whose `seq` was assigned elsewhere; called under the sequencer lock.
    /// `unseen_through` is the copy's [`MemoryStorage::unseen_through`].
    fn push_sequenced(&self, unseen_through: u64, parts: EventParts) -> Arc<Event> {
        let mut ring = self.ring.write();
        let event = Arc::new(Event::from_parts(parts));
        if event.seq() > ring.next_seq {
            // Earlier events of the topic never reached this copy. Every entry applied while
            // this record existed went into it, so they sit at or before its creation or where
            // the copy saw nothing; a reader from after both missed none of them (bounding by
            // this position instead would cut off every live subscriber of a topic new here).
            // What is still held predates the hole; dropping it keeps "resume from the oldest
            // retained" true.
            while !ring.events.is_empty() {
                ring.evict_front();
            }
            let bound = self.created_at.max(unseen_through).min(event.position() - 1);
            ring.uncertain_through = ring.uncertain_through.max(bound);
        }
        ring.next_seq = event.seq() + 1;
        self.store(&mut ring, &event);
        event
    }

    fn store(&self, ring: &mut Ring, event: &Arc<Event>) {
        let position = event.position();
        ring.bytes += event.approx_size();
        ring.events.push_back(Arc::clone(event));
        while ring.events.len() > self.limit.max_events
            || (ring.bytes > self.limit.max_bytes && ring.events.len() > 1)
        {
            ring.evict_front();
        }
        if let Some(max_age) = self.limit.max_age {
            ring.evict_expired(max_age, event.stored_at());
        }
        self.last_position.store(position, Ordering::Release);
    }
}

/// How many events [`index_after`] looks at from the newest end before it searches.
const SCAN_FROM_END: usize = 8;

/// The index of the first event of `events` (in position order) after `position`.
///
/// A live reader asks for what came after the last event it read, which is nearly always one
/// of the newest few; and `upto` is normally the head, past every event. So this looks back
/// from the newest end for a few events and only then binary-searches: on the hot path a read
/// touches the one or two events it returns instead of the ten or so (each its own allocation,
/// often a cache miss) that a binary search over a full ring of 1,000 probes, twice.
fn index_after(events: &VecDeque<Arc<Event>>, position: u64) -> usize {
    let len = events.len();
    for i in (len.saturating_sub(SCAN_FROM_END)..len).rev() {
        if events[i].position() <= position {
            return i + 1;
        }
    }
    events.partition_point(|e| e.position() <= position)
}

impl TopicLog for MemoryTopic {
    fn last_position(&self) -> u64 {
        self.last_position.load(Ordering::Acquire)
    }

    fn read(&self, after: u64, upto: u64, limit: usize, out: &mut Vec<Arc<Event>>) -> TopicRead {
        let ring = self.ring.read();
        let gap = if ring.evicted_through > after {
            Some(Gap { resume_seq: ring.resume_seq(), evicted_through: ring.evicted_through, certain: true })
        } else if after < ring.uncertain_through {
            Some(Gap {
                resume_seq: ring.resume_seq(),
                evicted_through: ring.uncertain_through,
                certain: false,
            })
        } else {
            None
        };
        let start = index_after(&ring.events, after);
        let end = index_after(&ring.events, upto);
        let available = end.saturating_sub(start);
        let take = available.min(limit);
        out.extend(ring.events.range(start..start + take).cloned());
        TopicRead { gap, remaining: available - take }
    }

    fn expire(&self) {
        let Some(max_age) = self.limit.max_age else { return };
        let now = Instant::now();
        let expired = |ring: &Ring| {
            ring.events.front().is_some_and(|e| now.saturating_duration_since(e.stored_at()) > max_age)
        };
        if expired(&self.ring.read()) {
            self.ring.write().evict_expired(max_age, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Data;

    fn ring(positions: &[u64]) -> VecDeque<Arc<Event>> {
        positions
            .iter()
            .map(|&position| {
                Arc::new(Event::from_parts(EventParts {
                    topic: TopicName::new("t").expect("topic"),
                    event_type: "message".into(),
                    data: Data::from(serde_json::json!(null)),
                    seq: position,
                    position,
                    epoch: Epoch::from_u32(1),
                    timestamp_ms: 0,
                    from: None,
                }))
            })
            .collect()
    }

    #[test]
    fn index_after_agrees_with_a_binary_search_everywhere() {
        for len in [0_u64, 1, 2, 7, 8, 9, 30] {
            // Every third position, so some positions fall between events.
            let events = ring(&(1..=len).map(|i| i * 3).collect::<Vec<_>>());
            for position in 0..=len * 3 + 2 {
                let expected = events.partition_point(|e| e.position() <= position);
                assert_eq!(index_after(&events, position), expected, "len {len}, position {position}");
            }
        }
    }
}
