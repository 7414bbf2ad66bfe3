//! The read step shared by subscriptions and fetches: gather what is new in each topic, merge
//! into position order, and notice gaps.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::cursor::{Cursor, Epoch};
use crate::error::HubError;
use crate::event::Event;
use crate::reset::{Missed, Reset, ResetReason, TopicReset};
use crate::storage::{Gap, Storage, TopicLog};
use crate::tier::{Chunk, ChunkRequest};
use crate::topic::TopicName;

struct TopicState {
    name: TopicName,
    log: Arc<dyn TopicLog>,
    /// Reading memory starts after this: positions at or below it were reported missing, or are
    /// being read from the tiers.
    floor: u64,
    /// The `seq` this reader expects next from the topic, once it has seen one of its events.
    expected: Option<u64>,
    /// Read latest value only: see [`crate::latest`].
    latest: bool,
}

/// A reader's per-topic state over one storage.
pub(crate) struct Reader {
    /// The logs come from it ([`Storage::watch`]) and go back to it when the reader is dropped.
    storage: Arc<dyn Storage>,
    topics: Vec<TopicState>,
    /// The storage's [`Storage::max_lead`].
    max_lead: u64,
    /// Whether the hub has history tiers: a gap is then asked of them before it is reported.
    tiered: bool,
    /// A gap being read from the tiers; boxed, so readers without one pay a pointer.
    backfill: Option<Box<Backfill>>,
    /// Whether any topic is read latest-only.
    latest: bool,
}

/// The topics whose events memory lost after the reader's cursor, and what the tiers gave of
/// them so far.
struct Backfill {
    /// Sorted by index, hence by name.
    topics: Vec<BackfillTopic>,
    /// The `topics` the outstanding request asked for, in its order.
    asked: Vec<usize>,
    /// Events the tiers gave and the reader has not delivered yet, in position order.
    pending: VecDeque<Arc<Event>>,
    /// How far the tier answers so far reach: memory is read up to here, no further, until the
    /// next answer.
    read_through: u64,
}

struct BackfillTopic {
    /// Index into [`Reader::topics`].
    index: usize,
    /// Memory lacks the topic's events at or before this position.
    through: u64,
    /// The gap as memory reported it.
    gap: Gap,
    /// Events at or before this were reported missing; none is delivered.
    reported_through: u64,
}

/// What one read step found besides the events it appended.
pub(crate) struct Step {
    /// Where the reader stands after the events appended.
    pub(crate) cursor: u64,
    /// Events in range, delivered or not (the reader's backlog when the step began).
    pub(crate) backlog: usize,
    /// Nothing more can be read before the tiers answer [`Reader::tier_request`]; hand the
    /// answer to [`Reader::supply`] and step again.
    pub(crate) tier: bool,
}

/// Where a read starts, and the reset to report before anything else.
pub(crate) struct Start {
    pub(crate) position: u64,
    pub(crate) reset: Option<Reset>,
}

impl Reader {
    /// Resolves the logs of `topics`, deduplicated, within `max_topics`. With `tiered`, gaps
    /// are read from the hub's tiers before they are reported. The topics `latest` names are
    /// read latest value only.
    pub(crate) fn new(
        storage: &Arc<dyn Storage>,
        topics: &[TopicName],
        max_topics: usize,
        tiered: bool,
        latest: impl Fn(&TopicName) -> bool,
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
        let mut reader = Self {
            storage: Arc::clone(storage),
            topics: Vec::with_capacity(names.len()),
            max_lead: storage.max_lead(),
            tiered,
            backfill: None,
            latest: false,
        };
        for name in names {
            // On an error, dropping the reader gives back the logs watched so far.
            let log = storage.watch(name)?;
            let latest = latest(name);
            reader.latest |= latest;
            reader.topics.push(TopicState { name: name.clone(), log, floor: 0, expected: None, latest });
        }
        Ok(reader)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &TopicName> {
        self.topics.iter().map(|t| &t.name)
    }

    /// The topics read latest value only.
    pub(crate) fn latest_names(&self) -> impl Iterator<Item = &TopicName> {
        self.topics.iter().filter(|t| t.latest).map(|t| &t.name)
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
        let mut backfill = Vec::new();
        for (index, topic) in self.topics.iter_mut().enumerate() {
            topic.log.expire();
            let gap = topic.log.read(position, position, 0, &mut none).gap;
            if let Some(gap) = gap {
                topic.floor = gap.evicted_through;
            }
            match (reason, gap) {
                (Some(ResetReason::Expired), Some(gap)) if self.tiered => {
                    backfill.push(BackfillTopic {
                        index,
                        through: gap.evicted_through,
                        gap,
                        reported_through: position,
                    });
                }
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
        if !backfill.is_empty() {
            self.backfill = Some(Box::new(Backfill {
                topics: backfill,
                asked: Vec::new(),
                pending: VecDeque::new(),
                read_through: position,
            }));
        }
        let reset = match reason {
            Some(reason) if !reset_topics.is_empty() => Some(Reset::new(reason, reset_topics)),
            _ => None,
        };
        Ok(Start { position, reset })
    }

    /// Appends to `out`, in position order, at most `limit` events (and about `max_bytes` of
    /// payload, but always at least one event) after `cursor` and up to `head`. Returns the gaps
    /// found since the last step in `gaps`; a tiered reader reports none there, but asks for a
    /// tier read instead ([`Step::tier`]).
    pub(crate) fn step(
        &mut self,
        cursor: u64,
        head: u64,
        limit: usize,
        max_bytes: usize,
        out: &mut Vec<Arc<Event>>,
        gaps: &mut Vec<TopicReset>,
    ) -> Step {
        let mut upto = head;
        if let Some(backfill) = &self.backfill {
            if backfill.pending.is_empty() && cursor >= backfill.read_through {
                if backfill.topics.iter().any(|t| t.through > cursor.max(t.reported_through)) {
                    return Step { cursor, backlog: 0, tier: true };
                }
                self.backfill = None;
            } else {
                upto = backfill.read_through.min(head);
            }
        }
        let first = out.len();
        let mut backlog = 0;
        // The newest position this step may deliver: a topic cut short by `limit` must not let
        // the cursor pass its first unreturned event.
        let mut cap = upto;
        let mut found_gap = false;
        for (index, topic) in self.topics.iter_mut().enumerate() {
            let after = cursor.max(topic.floor);
            if topic.log.last_position() <= after {
                continue;
            }
            let before = out.len();
            let read = topic.log.read(after, upto, limit, out);
            backlog += out.len() - before + read.remaining;
            if read.remaining > 0 {
                cap = cap.min(out.last().map_or(after, |e| e.position()));
            }
            if let Some(gap) = read.gap {
                if self.tiered {
                    note_gap(&mut self.backfill, index, gap, after, cursor);
                    found_gap = true;
                } else {
                    gaps.push(TopicReset::new(
                        topic.name.clone(),
                        missed(gap, topic.expected),
                        gap.resume_seq,
                    ));
                    topic.expected = None;
                }
                topic.floor = gap.evicted_through;
            }
        }
        if found_gap {
            // Nothing after the cursor goes out before the tiers were asked for what is missing.
            out.truncate(first);
            return Step { cursor, backlog, tier: true };
        }
        let mut from_tiers = 0;
        if let Some(backfill) = &self.backfill {
            for event in backfill.pending.iter().take_while(|e| e.position() <= cap) {
                out.push(Arc::clone(event));
                from_tiers += 1;
            }
            backlog += backfill.pending.len();
        }
        if out.len() - first > 1 && (self.topics.len() > 1 || from_tiers > 0) {
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
        if let Some(backfill) = &mut self.backfill {
            while backfill.pending.front().is_some_and(|e| e.position() <= next) {
                backfill.pending.pop_front();
            }
        }
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
        // The cursor still moves past what is skipped; `expected` is unaffected, since the
        // newest event of each topic is never skipped.
        self.conflate(out, first);
        Step { cursor: next, backlog, tier: false }
    }

    /// Skips, in `events[first..]`, what a newer event of the same key replaces in the topics
    /// read latest-only; returns how many.
    pub(crate) fn conflate(&self, events: &mut Vec<Arc<Event>>, first: usize) -> usize {
        if !self.latest {
            return 0;
        }
        crate::latest::conflate(events, first, |topic| {
            match self.topics.binary_search_by(|t| t.name.cmp(topic)) {
                Ok(index) => self.topics[index].latest,
                Err(_) => false,
            }
        })
    }

    /// Whether any topic is read latest value only.
    pub(crate) fn reads_latest(&self) -> bool {
        self.latest
    }

    /// Whether a gap is being read from the tiers.
    pub(crate) fn backfilling(&self) -> bool {
        self.backfill.is_some()
    }

    /// The tier read the last [`step`](Self::step) asked for: the gap topics after `cursor`.
    pub(crate) fn tier_request(&mut self, epoch: Epoch, cursor: u64, limit: usize) -> ChunkRequest {
        let mut topics = Vec::new();
        if let Some(backfill) = &mut self.backfill {
            backfill.asked.clear();
            for (k, wanted) in backfill.topics.iter().enumerate() {
                if wanted.through > cursor.max(wanted.reported_through) {
                    backfill.asked.push(k);
                    topics.push((self.topics[wanted.index].name.clone(), wanted.through));
                }
            }
        }
        ChunkRequest { epoch, topics, after: cursor, limit }
    }

    /// Takes the tiers' answer to [`tier_request`](Self::tier_request) (made at `cursor`), or
    /// their failure. What no tier holds is appended to `losses`, as a reset would list it. A
    /// failure ends the backfill: every gap topic's missing range is then a loss, as without
    /// tiers.
    pub(crate) fn supply(
        &mut self,
        cursor: u64,
        answer: Result<Chunk, HubError>,
        losses: &mut Vec<TopicReset>,
    ) {
        let Some(backfill) = self.backfill.as_deref_mut() else { return };
        let chunk = match answer {
            Ok(chunk) => chunk,
            Err(err) => {
                tracing::debug!(error = %err, "history tier failed; reporting the gap");
                for wanted in &backfill.topics {
                    if wanted.through > cursor.max(wanted.reported_through) {
                        let topic = &mut self.topics[wanted.index];
                        let gap = wanted.gap;
                        losses.push(TopicReset::new(
                            topic.name.clone(),
                            missed(gap, topic.expected),
                            gap.resume_seq,
                        ));
                        topic.expected = None;
                    }
                }
                self.backfill = None;
                return;
            }
        };
        for (&k, &(missing_through, first)) in backfill.asked.iter().zip(&chunk.missing) {
            let wanted = &mut backfill.topics[k];
            let missing_through = missing_through.min(wanted.through);
            if missing_through <= cursor.max(wanted.reported_through) {
                continue;
            }
            let topic = &mut self.topics[wanted.index];
            let held_none = missing_through >= wanted.through;
            let resume_seq =
                if held_none { wanted.gap.resume_seq } else { first.unwrap_or(wanted.gap.resume_seq) };
            if let Some(missed) = tier_missed(wanted.gap, topic.expected, resume_seq, held_none) {
                losses.push(TopicReset::new(topic.name.clone(), missed, resume_seq));
                topic.expected = None;
            }
            wanted.reported_through = missing_through;
        }
        let topics = &self.topics;
        let wanted = &backfill.topics;
        backfill.pending = chunk
            .events
            .into_iter()
            .filter(|event| {
                wanted.iter().any(|w| {
                    topics[w.index].name == *event.topic()
                        && event.position() > w.reported_through
                        && event.position() <= w.through
                })
            })
            .collect();
        backfill.read_through = chunk.through.max(cursor);
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        for TopicState { name, log, .. } in self.topics.drain(..) {
            // A topic that has held events keeps its slot whatever its readers do: skip the
            // storage's map for it (most reads).
            let unpublished = log.last_position() == 0;
            drop(log);
            if unpublished {
                self.storage.unwatch(&name);
            }
        }
    }
}

/// Adds `index`'s gap to the backfill (starting one), and makes it ask the tiers again from
/// `cursor`: what was read from them did not cover this topic.
fn note_gap(backfill: &mut Option<Box<Backfill>>, index: usize, gap: Gap, after: u64, cursor: u64) {
    let backfill = backfill.get_or_insert_with(|| {
        Box::new(Backfill {
            topics: Vec::new(),
            asked: Vec::new(),
            pending: VecDeque::new(),
            read_through: cursor,
        })
    });
    match backfill.topics.iter_mut().find(|t| t.index == index) {
        Some(wanted) => {
            wanted.through = wanted.through.max(gap.evicted_through);
            wanted.gap = Gap { certain: wanted.gap.certain || gap.certain, ..gap };
        }
        None => {
            // `after` is past the cursor only when what lies between was reported missing.
            backfill.topics.push(BackfillTopic {
                index,
                through: gap.evicted_through,
                gap,
                reported_through: after,
            });
            backfill.topics.sort_unstable_by_key(|t| t.index);
        }
    }
    backfill.pending.clear();
    backfill.read_through = cursor;
}

/// What a reader missed of a topic whose events no tier holds through some position, when the
/// first event it will get has `seq` `resume_seq`; `None` when that is nothing.
fn tier_missed(gap: Gap, expected: Option<u64>, resume_seq: u64, held_none: bool) -> Option<Missed> {
    match expected {
        Some(expected) => (resume_seq > expected).then(|| Missed::exactly(resume_seq - expected)),
        None if !gap.certain => Some(Missed::UNKNOWN),
        // Memory evicted at least one event after the cursor and no tier holds any of them.
        None if held_none => Some(missed(Gap { resume_seq, ..gap }, None)),
        // The tiers hold part of the range; what they lack may hold no event of the topic.
        None => Some(Missed::between(0, resume_seq.saturating_sub(1))),
    }
}

fn missed(gap: Gap, expected: Option<u64>) -> Missed {
    match expected {
        Some(expected) => Missed::exactly(gap.resume_seq.saturating_sub(expected)),
        None if gap.certain => Missed::between(1, gap.resume_seq.saturating_sub(1).max(1)),
        None => Missed::UNKNOWN,
    }
}
