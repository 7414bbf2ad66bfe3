//! Resets: what a reader is told when history it asked for is gone.

use crate::cursor::Epoch;
use crate::topic::TopicName;

/// The reader's cursor could not be honoured exactly: some events after it are no longer
/// retained, or it belongs to another epoch. Delivered before any event, never silently.
///
/// Reading continues from the oldest event still retained in each listed topic.
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::{Cursor, Epoch, FetchOptions, Hub, NewEvent, ResetReason, TopicName};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
/// let hub = Hub::new();
/// let topic = TopicName::new("prices")?;
/// hub.publish(&topic, NewEvent::new(serde_json::json!(1))).await?;
/// // A cursor from a previous run of the gateway:
/// let stale = Cursor::at(Epoch::from_u32(hub.epoch().as_u32() ^ 1), 7);
/// let batch = hub.fetch(&[topic.clone()], stale, &FetchOptions::default()).await?;
/// let reset = batch.reset.expect("told, not silent");
/// assert!(matches!(reset.reason(), ResetReason::EpochChanged { .. }));
/// assert_eq!(reset.topics()[0].topic, topic);
/// assert_eq!(batch.events.len(), 1); // then replays what is retained
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    reason: ResetReason,
    topics: Vec<TopicReset>,
}

impl Reset {
    pub(crate) fn new(reason: ResetReason, topics: Vec<TopicReset>) -> Self {
        Self { reason, topics }
    }

    /// Adds what was found missing later in the same read, one entry per topic: a topic found
    /// missing again (more was evicted meanwhile) adds its count and resumes later.
    pub(crate) fn with_more(mut self, more: Vec<TopicReset>) -> Self {
        for topic in more {
            match self.topics.iter_mut().find(|t| t.topic == topic.topic) {
                Some(earlier) => {
                    earlier.missed = Missed {
                        at_least: earlier.missed.at_least + topic.missed.at_least,
                        at_most: earlier.missed.at_most.zip(topic.missed.at_most).map(|(a, b)| a + b),
                    };
                    earlier.resume_seq = earlier.resume_seq.max(topic.resume_seq);
                }
                None => self.topics.push(topic),
            }
        }
        self
    }

    /// Why the cursor could not be honoured.
    pub fn reason(&self) -> &ResetReason {
        &self.reason
    }

    /// The topics affected, each with how much is known to be lost.
    pub fn topics(&self) -> &[TopicReset] {
        &self.topics
    }
}

/// Why a [`Reset`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetReason {
    /// The cursor is older than the retained history of the listed topics.
    Expired,
    /// The cursor is from another epoch (history was lost, e.g. the hub restarted); every topic
    /// of the read is listed and nothing is known about what was missed.
    EpochChanged {
        /// The epoch the cursor named.
        cursor: Epoch,
        /// The hub's current epoch.
        current: Epoch,
    },
}

/// One topic of a [`Reset`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicReset {
    /// The topic.
    pub topic: TopicName,
    /// How many of its events the reader missed.
    pub missed: Missed,
    /// The `seq` of the first event the reader will get from this topic (possibly one not yet
    /// published).
    pub resume_seq: u64,
}

impl TopicReset {
    pub(crate) fn new(topic: TopicName, missed: Missed, resume_seq: u64) -> Self {
        Self { topic, missed, resume_seq }
    }
}

/// A count of missed events, as precisely as the hub knows it.
///
/// ```
/// use pushgate_hub::Missed;
///
/// assert_eq!(Missed::exactly(3).exact(), Some(3));
/// assert_eq!(Missed::UNKNOWN.exact(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Missed {
    /// At least this many were missed (0 when it is only possible that some were).
    pub at_least: u64,
    /// At most this many, when a bound is known.
    pub at_most: Option<u64>,
}

impl Missed {
    /// Nothing is known (a cursor from another epoch).
    pub const UNKNOWN: Missed = Missed { at_least: 0, at_most: None };

    /// Exactly `n` missed.
    pub const fn exactly(n: u64) -> Self {
        Self { at_least: n, at_most: Some(n) }
    }

    /// Between `at_least` and `at_most` missed.
    pub const fn between(at_least: u64, at_most: u64) -> Self {
        Self { at_least, at_most: Some(at_most) }
    }

    /// The exact count, when it is known.
    pub fn exact(&self) -> Option<u64> {
        (self.at_most == Some(self.at_least)).then_some(self.at_least)
    }
}
