//! The idempotency keys an in-memory storage remembers: bounded by a window and a count.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

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

/// Idempotency keys in the order they were taken, which is also the order they expire in (one
/// window for all). Keys are shared between the map and the queue, so each is stored once.
#[derive(Default)]
pub(crate) struct KeyMap {
    by_key: HashMap<Arc<KeyId>, Original>,
    order: VecDeque<(Instant, Arc<KeyId>, u64)>,
}

impl KeyMap {
    pub(crate) fn get(&self, id: &KeyId) -> Option<Original> {
        self.by_key.get(id).copied()
    }

    /// Remembers `id` (allocated by the caller, outside the sequencer's lock) until `expires`.
    pub(crate) fn insert(&mut self, id: Arc<KeyId>, original: Original, expires: Instant, max: usize) {
        self.by_key.insert(Arc::clone(&id), original);
        self.order.push_back((expires, id, original.position));
        while self.by_key.len() > max {
            self.pop_oldest();
        }
    }

    /// Forgets keys whose window has passed.
    pub(crate) fn expire(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(expires, ..)| *expires <= now) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, id, position)) = self.order.pop_front() {
            // A key taken again after it expired has a newer entry; leave that one.
            if self.by_key.get(&*id).is_some_and(|o| o.position == position) {
                self.by_key.remove(&*id);
            }
        }
    }
}
