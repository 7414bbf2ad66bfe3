//! The idempotency keys an in-memory storage remembers: bounded by a window, a count, and a
//! share of the storage's memory budget, to which each key is charged while remembered.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

use crate::budget::Budget;
use crate::topic::TopicName;

/// A key is scoped to its topic.
#[derive(Hash, PartialEq, Eq)]
pub(crate) struct KeyId {
    pub(crate) topic: TopicName,
    pub(crate) key: Box<str>,
}

#[derive(Clone, Copy)]
pub(crate) struct Original {
    pub(crate) seq: u64,
    pub(crate) position: u64,
}

impl KeyId {
    /// What remembering this key holds: the key, its `Arc` (the topic name is the topic
    /// record's), its slots in the map and the queue (with their spare capacity), and the
    /// allocator's headers.
    fn cost(&self) -> usize {
        const OVERHEAD: usize = 16
            + std::mem::size_of::<KeyId>()
            + 16
            + 2 * (std::mem::size_of::<(Arc<KeyId>, Original)>() + 1)
            + 2 * std::mem::size_of::<(Instant, Arc<KeyId>, u64)>();
        OVERHEAD + self.key.len()
    }
}

/// Idempotency keys in the order they were taken, which is also the order they expire in (one
/// window for all). Keys are shared between the map and the queue, so each is stored once.
#[derive(Default)]
pub(crate) struct KeyMap {
    by_key: HashMap<Arc<KeyId>, Original>,
    order: VecDeque<(Instant, Arc<KeyId>, u64)>,
    /// What the keys in `order` cost, all charged to the budget.
    bytes: usize,
}

impl KeyMap {
    pub(crate) fn get(&self, id: &KeyId) -> Option<Original> {
        self.by_key.get(id).copied()
    }

    /// Remembers `id` (allocated by the caller, outside the sequencer's lock) until `expires`,
    /// forgetting the oldest keys while more than `max` are remembered or they take more than
    /// their share of `budget`.
    pub(crate) fn insert(
        &mut self,
        id: Arc<KeyId>,
        original: Original,
        expires: Instant,
        max: usize,
        budget: &Budget,
    ) {
        let cost = id.cost();
        budget.add(cost);
        self.bytes += cost;
        self.by_key.insert(Arc::clone(&id), original);
        self.order.push_back((expires, id, original.position));
        while self.by_key.len() > max || (self.bytes > budget.key_share() && self.order.len() > 1) {
            self.pop_oldest(budget);
        }
    }

    /// Forgets keys whose window has passed.
    pub(crate) fn expire(&mut self, now: Instant, budget: &Budget) {
        while self.order.front().is_some_and(|(expires, ..)| *expires <= now) {
            self.pop_oldest(budget);
        }
    }

    fn pop_oldest(&mut self, budget: &Budget) {
        if let Some((_, id, position)) = self.order.pop_front() {
            let cost = id.cost();
            budget.sub(cost);
            self.bytes -= cost;
            // A key taken again after it expired has a newer entry; leave that one.
            if self.by_key.get(&*id).is_some_and(|o| o.position == position) {
                self.by_key.remove(&*id);
            }
        }
    }
}
