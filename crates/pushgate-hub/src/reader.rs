//! The read step shared by subscriptions and fetches: gather what is new in each topic, merge
//! into position order, and notice gaps.

use std::sync::Arc;

use crate::cursor::{Cursor, Epoch};
use crate::error::HubError;
use crate::event::Event;
use crate::reset::{Missed, Reset, ResetReason, TopicReset};
use crate::storage::{Gap, Storage, TopicLog};
use crate::topic::TopicName;

struct TopicState {
    name: TopicName,
    log: Arc<dyn TopicLog>,
    /// Positions at or below this were reported missing; reading starts after it.
    floor: u64,
    /// The `seq` this reader expects next from the topic, once it has seen one of its events.
    expected: Option<u64>,
}

/// A reader's per-topic state over one storage.
pub(crate) struct Reader {
    topics: Vec<TopicState>,
    /// The storage's [`Storage::max_lead`].
    max_lead: u64,
}

/// What one read step found besides the events it appended.
pub(crate) struct Step {
    /// Where the reader stands after the events appended.
    pub(crate) cursor: u64,
    /// Events in range, delivered or not (the reader's backlog when the step began).
    pub(crate) backlog: usize,
}

/// Where a read starts, and the reset to report before anything else.
pub(crate) struct Start {
    pub(crate) position: u64,
    pub(crate) reset: Option<Reset>,
}

impl Reader {
    /// Resolves the logs of `topics`, deduplicated, within `max_topics`.
    pub(crate) fn new(
        storage: &dyn Storage,
        topics: &[TopicName],
        max_topics: usize,
    ) -> Result<Self, HubError> {
        let mut names: Vec<&TopicName> = topics.iter().collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return Err(HubError::NoTopics);
        }
        if names.len() > max_topics {
            return Err(HubError::TooManyTopics { count: names.len(), limit: max_topics });
        }
        let topics = names
            .into_iter()
            .map(|name| {
                Ok(TopicState { name: name.clone(), log: storage.topic(name)?, floor: 0, expected: None })
            })
            .collect::<Result<_, HubError>>()?;
        Ok(Self { topics, max_lead: storage.max_lead() })
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &TopicName> {
        self.topics.iter().map(|t| &t.name)
    }

    /// Turns `cursor` into a start position and the reset it implies, moving each topic's floor
    /// past history that is gone so later steps do not report it again.
    pub(crate) fn start(&mut self, cursor: Cursor, epoch: Epoch, head: u64) -> Result<Start, HubError> {
        let (position, reason) = match cursor {
            Cursor::Now => return Ok(Start { position: head, reset: None }),
            Cursor::Oldest => (0, None),
            Cursor::At { epoch: theirs, .. } if theirs != epoch => {
                (0, Some(ResetReason::EpochChanged { cursor: theirs, current: epoch }))
            }
            Cursor::At { position, .. } if position > head.saturating_add(self.max_lead) => {
                return Err(HubError::CursorAhead { position, head });
            }
            // Issued by another node of a shared store: nothing to read until the head passes it.
            Cursor::At { position, .. } if position > head => return Ok(Start { position, reset: None }),
            Cursor::At { position, .. } => (position, Some(ResetReason::Expired)),
        };
        let mut reset_topics = Vec::new();
        let mut none = Vec::new();
        for topic in &mut self.topics {
            topic.log.expire();
            let gap = topic.log.read(position, position, 0, &mut none).gap;
            if let Some(gap) = gap {
                topic.floor = gap.evicted_through;
            }
            match (reason, gap) {
                (Some(ResetReason::EpochChanged { .. }), gap) => {
                    let resume_seq = gap.map_or(1, |g| g.resume_seq);
                    reset_topics.push(TopicReset::new(topic.name.clone(), Missed::UNKNOWN, resume_seq));
                }
                (Some(ResetReason::Expired), Some(gap)) => {
                    reset_topics.push(TopicReset::new(topic.name.clone(), missed(gap, None), gap.resume_seq));
                }
                _ => {}
            }
        }
        let reset = match reason {
            Some(reason) if !reset_topics.is_empty() => Some(Reset::new(reason, reset_topics)),
            _ => None,
        };
        Ok(Start { position, reset })
    }

    /// Appends to `out`, in position order, at most `limit` events (and about `max_bytes` of
    /// payload, but always at least one event) after `cursor` and up to `head`. Returns the gaps
    /// found since the last step in `gaps`.
    pub(crate) fn step(
        &mut self,
        cursor: u64,
        head: u64,
        limit: usize,
        max_bytes: usize,
        out: &mut Vec<Arc<Event>>,
        gaps: &mut Vec<TopicReset>,
    ) -> Step {
        let first = out.len();
        let mut backlog = 0;
        // The newest position this step may deliver: a topic cut short by `limit` must not let
        // the cursor pass its first unreturned event.
        let mut cap = head;
        for topic in &mut self.topics {
            let after = cursor.max(topic.floor);
            if topic.log.last_position() <= after {
                continue;
            }
            let before = out.len();
            let read = topic.log.read(after, head, limit, out);
            backlog += out.len() - before + read.remaining;
            if read.remaining > 0 {
                cap = cap.min(out.last().map_or(after, |e| e.position()));
            }
            if let Some(gap) = read.gap {
                gaps.push(TopicReset::new(topic.name.clone(), missed(gap, topic.expected), gap.resume_seq));
                topic.floor = gap.evicted_through;
                topic.expected = None;
            }
        }
        if out.len() - first > 1 && self.topics.len() > 1 {
            out[first..].sort_unstable_by_key(|e| e.position());
        }
        let mut keep = out[first..].partition_point(|e| e.position() <= cap);
        let mut next = cap;
        if keep > limit {
            keep = limit;
            next = out[first + keep - 1].position();
        }
        let mut bytes = 0usize;
        if let Some(over) = out[first..first + keep].iter().position(|e| {
            bytes = bytes.saturating_add(e.approx_size());
            bytes > max_bytes
        }) {
            // The first event always goes, or one large event could never be delivered.
            keep = over.max(1);
            next = out[first + keep - 1].position();
        }
        out.truncate(first + keep);
        if let [topic] = self.topics.as_mut_slice() {
            // One topic (most readers): its newest event is the last, no name comparisons.
            if let Some(last) = out[first..].last() {
                topic.expected = Some(last.seq() + 1);
            }
        } else {
            for event in &out[first..] {
                if let Some(topic) = self.topics.iter_mut().find(|t| t.name == *event.topic()) {
                    topic.expected = Some(event.seq() + 1);
                }
            }
        }
        Step { cursor: next, backlog }
    }
}

fn missed(gap: Gap, expected: Option<u64>) -> Missed {
    match expected {
        Some(expected) => Missed::exactly(gap.resume_seq.saturating_sub(expected)),
        None if gap.certain => Missed::between(1, gap.resume_seq.saturating_sub(1).max(1)),
        None => Missed::UNKNOWN,
    }
}
