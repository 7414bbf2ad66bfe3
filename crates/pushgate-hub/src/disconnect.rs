//! Topic disconnects: the application's server ending every reader of a topic on purpose
//! ([`Hub::disconnect`](crate::Hub::disconnect)).
//!
//! A disconnect takes the next number of a hub-wide count and is remembered with it for a
//! while; each reader notes the count when it starts and, when the count has moved, looks
//! for a disconnect of one of its topics numbered after its own. A reader that finds none
//! costs one atomic load per read. The readers of the topic are woken at once, so the
//! memory window only needs to cover a reader busy with something else for a moment.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::topic::TopicName;

/// How long a disconnect is remembered for readers that have not looked yet.
const KEEP: Duration = Duration::from_secs(60);
/// The most disconnects remembered at once, whatever their age: bounded memory whatever the
/// server API is asked.
const MAX_KEPT: usize = 4096;

/// The recent topic disconnects.
#[derive(Default)]
pub(crate) struct Disconnects {
    count: AtomicU64,
    recent: Mutex<VecDeque<(u64, TopicName, Instant)>>,
}

impl Disconnects {
    /// The count a new reader starts from.
    pub(crate) fn now(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Records a disconnect of `topic`; its readers must be woken after this returns.
    pub(crate) fn disconnect(&self, topic: &TopicName) {
        let now = Instant::now();
        let mut recent = self.recent.lock();
        while recent.front().is_some_and(|(_, _, at)| now.duration_since(*at) > KEEP)
            || recent.len() >= MAX_KEPT
        {
            recent.pop_front();
        }
        // Under the lock: a reader that sees the new count finds the entry.
        let number = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        recent.push_back((number, topic.clone(), now));
    }

    /// Whether one of `topics` was disconnected since the count `seen`, which is moved to now.
    pub(crate) fn check<'a>(&self, seen: &mut u64, topics: impl Iterator<Item = &'a TopicName>) -> bool {
        let count = self.count.load(Ordering::Acquire);
        if count == *seen {
            return false;
        }
        let after = std::mem::replace(seen, count);
        let recent = self.recent.lock();
        let mut newer = recent.iter().filter(|(number, _, _)| *number > after);
        // Topics are few per reader; disconnects since its last look are fewer still.
        let names: Vec<&TopicName> = topics.collect();
        newer.any(|(_, topic, _)| names.contains(&topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_disconnects_of_its_topics_after_it_started_once() {
        let disconnects = Disconnects::default();
        let (a, b) = (TopicName::new("a").unwrap(), TopicName::new("b").unwrap());
        disconnects.disconnect(&a);
        let mut seen = disconnects.now();
        assert!(!disconnects.check(&mut seen, [&a].into_iter()), "before it started");
        disconnects.disconnect(&b);
        assert!(!disconnects.check(&mut seen, [&a].into_iter()), "another topic");
        disconnects.disconnect(&a);
        assert!(disconnects.check(&mut seen, [&b, &a].into_iter()));
        assert!(!disconnects.check(&mut seen, [&a].into_iter()), "seen once");
    }

    #[test]
    fn memory_is_bounded() {
        let disconnects = Disconnects::default();
        let topic = TopicName::new("t").unwrap();
        for _ in 0..MAX_KEPT * 2 {
            disconnects.disconnect(&topic);
        }
        assert_eq!(disconnects.recent.lock().len(), MAX_KEPT);
    }
}
