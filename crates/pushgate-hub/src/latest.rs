//! Latest value only ("conflation"): for a reader that is behind, an event of a topic it reads
//! this way is skipped when a newer event of the same topic and [key](crate::NewEvent::latest_key)
//! is in the same read. A reader that keeps up reads one event at a time and skips nothing; one
//! that is behind gets the newest value of each key at once.
//!
//! Which topics a reader reads this way is its own choice
//! ([`SubscribeOptions::latest`](crate::SubscribeOptions::latest),
//! [`FetchOptions::latest`](crate::FetchOptions::latest)) or the hub's
//! ([`HubBuilder::latest_topics`](crate::HubBuilder::latest_topics)); the reader works it out
//! once per topic when it is made, and the read step ([`crate::reader`]) skips.

use std::collections::HashSet;
use std::sync::Arc;

use crate::event::Event;
use crate::topic::TopicName;

/// The hub's policy: which topics every reader reads latest-only.
pub(crate) type TopicPolicy = Arc<dyn Fn(&TopicName) -> bool + Send + Sync>;

/// A reader's own choice of topics to read latest-only.
#[derive(Debug, Clone, Default)]
pub(crate) enum Choice {
    /// Only what the hub's policy names.
    #[default]
    Policy,
    /// Every topic of the reader.
    All,
    /// These topics (and what the policy names).
    Topics(Arc<[TopicName]>),
}

impl Choice {
    fn covers(&self, topic: &TopicName) -> bool {
        match self {
            Self::Policy => false,
            Self::All => true,
            Self::Topics(topics) => topics.contains(topic),
        }
    }
}

/// Whether a reader with `choice` reads `topic` latest-only under the hub's `policy`.
pub(crate) fn applies(choice: &Choice, policy: Option<&TopicPolicy>, topic: &TopicName) -> bool {
    choice.covers(topic) || policy.is_some_and(|policy| policy(topic))
}

/// Removes from `events[first..]` every event of a topic `latest` names that has a key, when
/// a later event of the same topic has the same key. The survivors keep their order, and the
/// last event of each topic always survives (nothing after it shares its key). Returns how
/// many were removed.
pub(crate) fn conflate(
    events: &mut Vec<Arc<Event>>,
    first: usize,
    latest: impl Fn(&TopicName) -> bool,
) -> usize {
    let batch = &events[first..];
    if batch.len() < 2 {
        return 0;
    }
    let mut skip: Vec<bool> = Vec::new();
    {
        let mut newer: HashSet<(&TopicName, &str)> = HashSet::new();
        for (index, event) in batch.iter().enumerate().rev() {
            let Some(key) = event.latest_key() else { continue };
            if !latest(event.topic()) {
                continue;
            }
            if !newer.insert((event.topic(), key)) {
                if skip.is_empty() {
                    skip = vec![false; batch.len()];
                }
                skip[index] = true;
            }
        }
    }
    if skip.is_empty() {
        return 0;
    }
    let before = events.len();
    let mut index = 0;
    events.retain(|_| {
        let keep = index < first || !skip[index - first];
        index += 1;
        keep
    });
    before - events.len()
}
