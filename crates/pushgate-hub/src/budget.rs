//! The hub-wide byte budget of an in-memory storage: what its retained history costs, and the
//! eviction that keeps that cost within [`MemoryStorage::history_max_bytes`].
//!
//! **What is counted.** Every retained event, at what it really holds: its payload, type and
//! sender, the `Event` itself and its allocations (see [`EVENT_OVERHEAD`]); every encoding a
//! transport caches on it ([`Event::encoded`]: one per wire format, each about the size of the
//! payload again), charged when it is made; and every idempotency key remembered for its window.
//! An event's topic name is shared with its topic's record, so it costs nothing per event.
//! Records of topics themselves are bounded by the topic limit instead.
//!
//! **Eviction.** After every append (and when an encoding pushes the total over), the globally
//! oldest events go first, whatever their topic, until the total is within the budget again. The
//! newest event of the hub is never evicted, so every publish is readable at least once.
//! Idempotency keys take at most a quarter of the budget; past that the oldest keys are
//! forgotten first (as past the key count), so events always keep three quarters.
//!
//! **Bookkeeping.** A min-heap holds one entry per topic that has events, keyed by the position
//! of its oldest event, holding the topic weakly (a forgotten topic's entry is skipped). Events
//! also leave a topic for its own limits (count, age, bytes), which only moves its oldest event
//! forward: an entry's key is a lower bound, and a popped entry found stale is pushed back with
//! the topic's real oldest position. Each append costs a counter update and, while over budget,
//! `O(log topics)` per event evicted; the heap is bounded by the topics held (entries of
//! forgotten topics are dropped when popped, and compacted away at [`Budget::compact`]). The
//! heap has its own lock, taken after the append's sequencer lock is released, so eviction
//! does not lengthen the critical section every publish waits on; readers take neither lock.
//!
//! [`MemoryStorage::history_max_bytes`]: crate::MemoryStorage::history_max_bytes
//! [`Event::encoded`]: crate::Event::encoded

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, MutexGuard};

use crate::memory::{MemoryTopic, Oldest};

/// The default of [`MemoryStorage::history_max_bytes`](crate::MemoryStorage::history_max_bytes):
/// 128 MiB, what a small machine (1 GiB of RAM, shared with connections, the kernel's socket
/// buffers and the topics' own records) can give to history. It is also nchan's default shared
/// memory size, the same role in the server most operators compare with.
pub const DEFAULT_HISTORY_MAX_BYTES: usize = 128 << 20;

/// What a retained event holds besides its payload, type and sender: the `Arc<Event>` allocation
/// (counts and the struct), the ring's slot for it (with the ring's spare capacity), the
/// payload's shared-buffer header, and the allocator's header on each of its allocations.
pub(crate) const EVENT_OVERHEAD: usize = 16 + std::mem::size_of::<crate::event::Event>() + 16 + 32 + 4 * 16;

/// What one cached encoding holds besides its bytes: the shared-buffer header, the allocator's
/// header, and the spare capacity encoders leave when they size their buffer up front.
pub(crate) const ENCODING_OVERHEAD: usize = 32 + 16 + 96;

/// The share of the budget idempotency keys may take: a quarter.
const KEY_SHARE: usize = 4;

/// An in-memory storage's budget: the bytes its history holds, and the queue eviction takes
/// the oldest events from.
pub(crate) struct Budget {
    max: usize,
    used: AtomicUsize,
    /// Events evicted to keep within the budget.
    evicted: AtomicU64,
    /// The newest position stored: never evicted by the budget.
    newest: AtomicU64,
    queue: Mutex<BinaryHeap<Oldest>>,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            used: AtomicUsize::new(0),
            evicted: AtomicU64::new(0),
            newest: AtomicU64::new(0),
            queue: Mutex::new(BinaryHeap::new()),
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// The most bytes idempotency keys may take.
    pub(crate) fn key_share(&self) -> usize {
        self.max / KEY_SHARE
    }

    fn over(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.max
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Notes that the event at `position` was stored, the newest of the hub; called under the
    /// storage's sequencer lock, so positions arrive in order.
    pub(crate) fn stored(&self, position: u64) {
        self.newest.store(position, Ordering::Release);
    }

    /// After an append: queues `topic` (whose oldest event is at `position`) if its append made
    /// it hold events again, then evicts the oldest events while over budget.
    pub(crate) fn admit(&self, queue_topic: Option<(u64, &Arc<MemoryTopic>)>) {
        if queue_topic.is_none() && !self.over() {
            return;
        }
        let mut queue = self.queue.lock();
        if let Some((position, topic)) = queue_topic {
            queue.push(Oldest::new(position, Arc::downgrade(topic)));
        }
        self.evict(&mut queue);
    }

    /// Evicts while over budget, unless another thread is evicting already (it goes on until
    /// the budget holds). For the delivery path, where a cached encoding pushed the total over:
    /// it never waits for the lock.
    pub(crate) fn try_enforce(&self) {
        if self.over()
            && let Some(mut queue) = self.queue.try_lock()
        {
            self.evict(&mut queue);
        }
    }

    fn evict(&self, queue: &mut MutexGuard<'_, BinaryHeap<Oldest>>) {
        let newest = self.newest.load(Ordering::Acquire);
        while self.over() {
            let Some(oldest) = queue.pop() else { break };
            let Some(topic) = oldest.topic.upgrade() else { continue };
            match topic.evict_oldest(oldest.position, newest) {
                Front::Empty => {}
                Front::At(position) => queue.push(Oldest::new(position, oldest.topic)),
                Front::Newest => {
                    queue.push(oldest);
                    break;
                }
                Front::Evicted(next) => {
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                    if let Some(position) = next {
                        queue.push(Oldest::new(position, oldest.topic));
                    }
                }
            }
        }
    }

    /// Drops the entries of forgotten topics once they outnumber the `live` topics: each
    /// forgotten topic leaves at most one, so this costs `O(1)` per topic forgotten, amortized.
    pub(crate) fn compact(&self, live: usize) {
        let mut queue = self.queue.lock();
        if queue.len() > 2 * live + 64 {
            queue.retain(|entry| entry.topic.strong_count() > 0);
        }
    }
}

#[cfg(test)]
impl Budget {
    pub(crate) fn queue_len(&self) -> usize {
        self.queue.lock().len()
    }
}

/// What [`MemoryTopic::evict_oldest`] found at the front of a topic.
pub(crate) enum Front {
    /// The topic holds no event (its entry is dropped).
    Empty,
    /// Its oldest event is at this position, newer than the entry said: nothing evicted.
    At(u64),
    /// Its oldest event is the hub's newest: nothing may be evicted.
    Newest,
    /// The oldest event was evicted; the next one, if any, is at this position.
    Evicted(Option<u64>),
}

impl PartialEq for Oldest {
    fn eq(&self, other: &Self) -> bool {
        self.position == other.position
    }
}

impl Eq for Oldest {}

impl PartialOrd for Oldest {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Oldest {
    /// Reversed: the heap's greatest element is the oldest position.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.position.cmp(&self.position)
    }
}

impl Oldest {
    fn new(position: u64, topic: Weak<MemoryTopic>) -> Self {
        Self { position, topic }
    }
}

/// What an event (or a remembered key) is charged to its storage's budget, released when it
/// leaves history. Events read from a tier, or built by hand, carry none.
pub(crate) struct Charge {
    budget: Option<Arc<Budget>>,
    /// The bytes charged now, or [`RELEASED`].
    bytes: AtomicUsize,
}

/// A charge whose event left history: what is cached on it from then on is not counted.
const RELEASED: usize = usize::MAX;

impl Charge {
    pub(crate) const fn none() -> Self {
        Self { budget: None, bytes: AtomicUsize::new(RELEASED) }
    }

    /// Charges `bytes` to `budget`.
    pub(crate) fn new(budget: &Arc<Budget>, bytes: usize) -> Self {
        budget.add(bytes);
        Self { budget: Some(Arc::clone(budget)), bytes: AtomicUsize::new(bytes) }
    }

    /// Charges `bytes` more (an encoding cached on a retained event), evicting if that passes
    /// the budget; nothing once the event has left history.
    pub(crate) fn add(&self, bytes: usize) {
        let Some(budget) = &self.budget else { return };
        // Added to the budget first, so its total never drops below what its events hold.
        budget.add(bytes);
        let charged = self.bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            (held != RELEASED).then(|| held + bytes)
        });
        if charged.is_err() {
            budget.sub(bytes);
            return;
        }
        budget.try_enforce();
    }

    /// Gives back everything charged; later calls and [`add`](Self::add)s do nothing.
    pub(crate) fn release(&self) {
        let Some(budget) = &self.budget else { return };
        let held = self.bytes.swap(RELEASED, Ordering::AcqRel);
        if held != RELEASED {
            budget.sub(held);
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.release();
    }
}
