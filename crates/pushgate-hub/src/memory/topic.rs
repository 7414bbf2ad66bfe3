//! One topic's record in an in-memory storage: its ring of retained events, and the reads,
//! evictions and budget bookkeeping on it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::time::Instant;

use super::HistoryLimit;
use crate::budget::{Budget, Front};
use crate::event::{Event, EventParts};
use crate::storage::{Gap, TopicLog, TopicRead};
use crate::topic::TopicName;

pub(crate) struct MemoryTopic {
    /// The topic's name, shared by its events and idempotency keys (one allocation per topic).
    pub(super) name: TopicName,
    limit: HistoryLimit,
    budget: Arc<Budget>,
    /// Whether it takes a slot toward the topic limit: it was published to (or restored). A
    /// record without one was made for readers only, and holds no event.
    pub(super) counted: AtomicBool,
    /// The head when this record was created: events of the topic at or before it may have
    /// been held by an earlier record (swept) or never seen here.
    created_at: u64,
    pub(super) last_position: AtomicU64,
    pub(super) ring: RwLock<Ring>,
}

pub(super) struct Ring {
    pub(super) events: VecDeque<Arc<Event>>,
    pub(super) next_seq: u64,
    /// Position of the newest evicted event, 0 if none was.
    pub(super) evicted_through: u64,
    /// Readers from before this position may have missed events of the topic (it was forgotten
    /// and created again, or events of it were never seen here).
    pub(super) uncertain_through: u64,
    bytes: usize,
    /// Whether the budget's queue has an entry for this topic (it has while it holds events).
    queued: bool,
}

/// A topic in the budget's queue, by the position of its oldest event (a lower bound: events
/// leave for the topic's own limits too).
pub(crate) struct Oldest {
    pub(crate) position: u64,
    pub(crate) topic: Weak<MemoryTopic>,
}

impl Ring {
    fn evict_front(&mut self) {
        if let Some(event) = self.events.pop_front() {
            self.evicted_through = event.position();
            self.bytes -= event.approx_size();
            event.release();
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
    /// A record with no event yet, made when the storage's head was `head`; readers from before
    /// `uncertain_through` may have missed events of an earlier record of the topic.
    pub(super) fn new(
        name: TopicName,
        limit: HistoryLimit,
        budget: Arc<Budget>,
        head: u64,
        uncertain_through: u64,
    ) -> Self {
        Self {
            name,
            limit,
            budget,
            counted: AtomicBool::new(false),
            created_at: head,
            last_position: AtomicU64::new(0),
            ring: RwLock::new(Ring {
                events: VecDeque::new(),
                next_seq: 1,
                evicted_through: 0,
                uncertain_through,
                bytes: 0,
                queued: false,
            }),
        }
    }

    /// Assigns the topic sequence number and stores the event; called under the sequencer lock.
    /// Returns it, and where the topic's oldest event is if the budget's queue must learn of it.
    pub(super) fn push(&self, mut parts: EventParts) -> (Arc<Event>, Option<u64>) {
        let mut ring = self.ring.write();
        parts.seq = ring.next_seq;
        parts.topic = self.name.clone();
        let event = Arc::new(Event::retained(parts, &self.budget));
        ring.next_seq += 1;
        let queue = self.store(&mut ring, &event);
        (event, queue)
    }

    /// Stores an event whose `seq` was assigned elsewhere; called under the sequencer lock.
    /// `unseen_through` is the copy's [`MemoryStorage::unseen_through`]. Returns as
    /// [`push`](Self::push) does.
    pub(super) fn push_sequenced(
        &self,
        unseen_through: u64,
        mut parts: EventParts,
    ) -> (Arc<Event>, Option<u64>) {
        let mut ring = self.ring.write();
        parts.topic = self.name.clone();
        let event = Arc::new(Event::retained(parts, &self.budget));
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
        let queue = self.store(&mut ring, &event);
        (event, queue)
    }

    fn store(&self, ring: &mut Ring, event: &Arc<Event>) -> Option<u64> {
        let position = event.position();
        self.budget.stored(position);
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
        if ring.queued {
            return None;
        }
        ring.queued = true;
        ring.events.front().map(|e| e.position())
    }

    /// Evicts the topic's oldest event for the budget, if the queue's entry for it (at
    /// `position`) is current and it is older than `newest`, the hub's newest event.
    pub(crate) fn evict_oldest(&self, position: u64, newest: u64) -> Front {
        let mut ring = self.ring.write();
        let Some(front) = ring.events.front().map(|e| e.position()) else {
            ring.queued = false;
            return Front::Empty;
        };
        if front > position {
            return Front::At(front);
        }
        if front >= newest {
            return Front::Newest;
        }
        ring.evict_front();
        let next = ring.events.front().map(|e| e.position());
        ring.queued = next.is_some();
        Front::Evicted(next)
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
    use crate::cursor::Epoch;
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
                    latest_key: None,
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
