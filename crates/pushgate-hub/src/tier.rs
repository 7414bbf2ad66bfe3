//! History tiers: deeper stores of past events (a Redis log, a database outbox) that a read
//! asks, when memory no longer holds what it needs, before it reports a reset.
//!
//! The public contract is documented on [`HistoryTier`], since this module is private; the rest
//! is the hub's side: one bounded read across the configured tiers, and what it found missing.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::cursor::Epoch;
use crate::error::HubError;
use crate::event::Event;
use crate::topic::TopicName;

/// A deeper store of this hub's past events, asked for what memory lost before a reader is
/// told it missed anything. Register tiers with [`HubBuilder::tier`](crate::HubBuilder::tier);
/// several are asked in the order given.
///
/// The hub calls [`read`](Self::read) only on a gap: a subscription or fetch whose cursor is
/// older than what memory holds of some topic (or an event it had not read yet was evicted).
/// It asks for the missing range of those topics, delivers what the tier has merged with the
/// other topics' events in the hub's single position order, and reports a [`Reset`](crate::Reset)
/// (or, to a live subscriber, [`RecvError::Lagged`](crate::RecvError::Lagged)) only for what no
/// tier holds. Reads come in chunks of at most the reader's batch limit, so a backfill is
/// bounded in memory however far back it reaches.
///
/// An answer says two things ([`TierEvents`]): the events, and how far back the tier is
/// complete for each topic. A tier that fails or does not answer within the hub's
/// [`tier_timeout`](crate::HubBuilder::tier_timeout) is treated as holding nothing: the read
/// resets as it would without tiers, and [`Stats::tier_failures`](crate::Stats::tier_failures)
/// counts it.
///
/// The future is `'static`: clone what it needs (a pool, an `Arc` of the data) into it.
///
/// ```
/// use std::sync::Arc;
/// use futures_util::future::BoxFuture;
/// use pushgate_hub::{Event, HistoryTier, HubError, TierEvents, TierRead};
///
/// /// A log kept from position `trimmed_through` on, as a capped stream is.
/// struct Log { events: Arc<Vec<Arc<Event>>>, trimmed_through: u64 }
///
/// impl HistoryTier for Log {
///     fn read(&self, r: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>> {
///         let (events, trimmed_through) = (Arc::clone(&self.events), self.trimmed_through);
///         Box::pin(async move {
///             let found = events
///                 .iter()
///                 .filter(|e| e.epoch() == r.epoch && r.topics.contains(e.topic()))
///                 .filter(|e| e.position() > r.after && e.position() <= r.upto)
///                 .take(r.limit)
///                 .cloned()
///                 .collect();
///             // Everything after the trim point is here; nothing at or before it.
///             Ok(TierEvents::new(found).missing_through(trimmed_through))
///         })
///     }
/// }
/// # let _: Arc<dyn HistoryTier> = Arc::new(Log { events: Arc::default(), trimmed_through: 0 });
/// ```
pub trait HistoryTier: Send + Sync + 'static {
    /// Events of `request.topics` with `request.after < position <= request.upto` in
    /// `request.epoch`, in position order: all of them, or exactly the first `request.limit`
    /// when there are more (the hub continues after the last one). Each event keeps the numbers
    /// it was published with (topic, `seq`, position, epoch, timestamp, type, data, sender).
    ///
    /// # Errors
    /// Whatever the store reports; the hub then reads on as if the tier held nothing.
    fn read(&self, request: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>>;
}

/// What the hub asks of a [`HistoryTier`].
///
/// ```
/// use pushgate_hub::{Epoch, TierRead, TopicName};
///
/// let request = TierRead::new(Epoch::from_u32(1), vec![TopicName::new("t")?], 10, 500, 256);
/// assert_eq!((request.after, request.upto, request.limit), (10, 500, 256));
/// # Ok::<(), pushgate_hub::InvalidTopic>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierRead {
    /// The epoch every returned event must belong to. A tier holding another epoch holds
    /// nothing for this request.
    pub epoch: Epoch,
    /// The topics asked for, sorted and deduplicated.
    pub topics: Vec<TopicName>,
    /// Positions after this one...
    pub after: u64,
    /// ...up to and including this one.
    pub upto: u64,
    /// The most events to return.
    pub limit: usize,
}

impl TierRead {
    /// A request; the hub builds them, this is for testing a tier on its own.
    ///
    /// ```
    /// # use pushgate_hub::{Epoch, TierRead, TopicName};
    /// let request = TierRead::new(Epoch::from_u32(1), vec![TopicName::new("b")?, TopicName::new("a")?], 0, 9, 1);
    /// assert_eq!(request.topics[0].as_str(), "a");
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn new(epoch: Epoch, mut topics: Vec<TopicName>, after: u64, upto: u64, limit: usize) -> Self {
        topics.sort_unstable();
        topics.dedup();
        Self { epoch, topics, after, upto, limit: limit.max(1) }
    }
}

/// A [`HistoryTier`]'s answer: the events, and how far back it is complete.
///
/// By default an answer claims the tier holds *every* event of the requested topics in the
/// requested range (so the events returned are all there were, up to the limit). A tier that
/// lost older events (trimmed, retention) says so with
/// [`missing_through`](Self::missing_through) for all topics or
/// [`topic_missing_through`](Self::topic_missing_through) for one: it holds none of a topic's
/// events at or before that position, and every one after it. A topic the tier does not keep
/// at all is missing through `u64::MAX` (see [`nothing`](Self::nothing)). A claim of
/// completeness is what lets the hub skip the reset, so claim only what you know.
///
/// ```
/// use pushgate_hub::{TierEvents, TopicName};
///
/// let a = TopicName::new("a")?;
/// let answer = TierEvents::new(Vec::new()).missing_through(100).topic_missing_through(a.clone(), 250);
/// assert_eq!(answer.held_after(&a), 250);
/// assert_eq!(answer.held_after(&TopicName::new("b")?), 100);
/// assert_eq!(TierEvents::nothing().held_after(&a), u64::MAX);
/// # Ok::<(), pushgate_hub::InvalidTopic>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TierEvents {
    events: Vec<Arc<Event>>,
    missing_through: u64,
    topics_missing: Vec<(TopicName, u64)>,
}

impl TierEvents {
    /// The events found, in position order; the tier claims it holds everything else asked for.
    ///
    /// ```
    /// # use pushgate_hub::{TierEvents, TopicName};
    /// assert!(TierEvents::new(Vec::new()).events().is_empty());
    /// assert_eq!(TierEvents::new(Vec::new()).held_after(&TopicName::new("a")?), 0);
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn new(events: Vec<Arc<Event>>) -> Self {
        Self { events, missing_through: 0, topics_missing: Vec::new() }
    }

    /// An answer holding nothing of any topic (another epoch, or none of these topics).
    ///
    /// ```
    /// # use pushgate_hub::{TierEvents, TopicName};
    /// assert_eq!(TierEvents::nothing().held_after(&TopicName::new("a")?), u64::MAX);
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn nothing() -> Self {
        Self::new(Vec::new()).missing_through(u64::MAX)
    }

    /// The tier holds no event of any topic at or before `position` (a log trimmed there).
    ///
    /// ```
    /// # use pushgate_hub::{TierEvents, TopicName};
    /// assert_eq!(TierEvents::new(Vec::new()).missing_through(7).held_after(&TopicName::new("a")?), 7);
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn missing_through(mut self, position: u64) -> Self {
        self.missing_through = self.missing_through.max(position);
        self
    }

    /// The tier holds no event of `topic` at or before `position` (`u64::MAX`: none at all).
    ///
    /// ```
    /// # use pushgate_hub::{TierEvents, TopicName};
    /// let a = TopicName::new("a")?;
    /// assert_eq!(TierEvents::new(Vec::new()).topic_missing_through(a.clone(), 9).held_after(&a), 9);
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn topic_missing_through(mut self, topic: TopicName, position: u64) -> Self {
        self.topics_missing.push((topic, position));
        self
    }

    /// The events.
    ///
    /// ```
    /// # use pushgate_hub::TierEvents;
    /// assert_eq!(TierEvents::default().events().len(), 0);
    /// ```
    pub fn events(&self) -> &[Arc<Event>] {
        &self.events
    }

    /// The position after which the answer claims every event of `topic` (in the range asked).
    ///
    /// ```
    /// # use pushgate_hub::{TierEvents, TopicName};
    /// assert_eq!(TierEvents::default().held_after(&TopicName::new("a")?), 0);
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn held_after(&self, topic: &TopicName) -> u64 {
        self.topics_missing
            .iter()
            .filter(|(t, _)| t == topic)
            .fold(self.missing_through, |held, (_, position)| held.max(*position))
    }
}

/// The tiers of a hub and how long a read of them may take.
pub(crate) struct Tiers {
    pub(crate) tiers: Vec<Arc<dyn HistoryTier>>,
    pub(crate) timeout: Duration,
}

/// One chunk the hub asks of its tiers: the given topics (sorted) after `after`, each up to its
/// own bound (past which memory holds the topic).
pub(crate) struct ChunkRequest {
    pub(crate) epoch: Epoch,
    pub(crate) topics: Vec<(TopicName, u64)>,
    pub(crate) after: u64,
    pub(crate) limit: usize,
}

/// What the tiers hold of a [`ChunkRequest`].
#[derive(Debug)]
pub(crate) struct Chunk {
    /// Events of the requested topics, each within its bound, in position order, all at or
    /// before `through`.
    pub(crate) events: Vec<Arc<Event>>,
    /// How far this chunk covers: everything the tiers hold up to here is in `events`.
    pub(crate) through: u64,
    /// Per requested topic (same order), the position through which no tier holds it (at most
    /// its bound; `after` or less when it is complete), and the `seq` of its first event a tier
    /// holds after that, if one was found.
    pub(crate) missing: Vec<(u64, Option<u64>)>,
}

#[derive(Debug, thiserror::Error)]
enum TierFault {
    #[error("a history tier answered {limit} events, none in the range asked")]
    OutOfRange { limit: usize },
    #[error("no history tier answered within {0:?}")]
    Timeout(Duration),
}

/// Reads one chunk from the tiers, within their timeout.
pub(crate) fn read_chunk(
    tiers: &Arc<Tiers>,
    request: ChunkRequest,
) -> BoxFuture<'static, Result<Chunk, HubError>> {
    let tiers = Arc::clone(tiers);
    Box::pin(async move {
        let timeout = tiers.timeout;
        match tokio::time::timeout(timeout, read_tiers(&tiers.tiers, request)).await {
            Ok(result) => result,
            Err(_) => Err(HubError::Storage(Box::new(TierFault::Timeout(timeout)))),
        }
    })
}

/// Asks each tier in turn for what the ones before it lack, then, for a topic that is not
/// complete and has no event in the chunk, for the `seq` it resumes at.
async fn read_tiers(tiers: &[Arc<dyn HistoryTier>], request: ChunkRequest) -> Result<Chunk, HubError> {
    let ChunkRequest { epoch, topics, after, limit } = request;
    let find = |topic: &TopicName| topics.binary_search_by(|(t, _)| t.cmp(topic)).ok();
    // Per topic, the part no tier has answered for yet: (after, open].
    let mut open: Vec<u64> = topics.iter().map(|(_, bound)| *bound).collect();
    let mut through = open.iter().copied().max().unwrap_or(after);
    let mut events = Vec::new();
    for tier in tiers {
        let ask: Vec<TopicName> = topics
            .iter()
            .zip(&open)
            .filter(|(_, open)| **open > after)
            .map(|((t, _), _)| t.clone())
            .collect();
        let Some(upto) = open.iter().copied().filter(|&o| o > after).max() else { break };
        let answer = tier.read(TierRead { epoch, topics: ask, after, upto, limit }).await?;
        let mut last = None;
        for event in &answer.events {
            let position = event.position();
            if position <= after || position > upto {
                continue;
            }
            last = last.max(Some(position));
            let Some(i) = find(event.topic()) else { continue };
            if event.epoch() == epoch && position <= open[i] && position > answer.held_after(event.topic()) {
                events.push(Arc::clone(event));
            }
        }
        if answer.events.len() >= limit {
            // A full answer: there may be more after its last event, which bounds the chunk.
            through = through.min(last.ok_or(HubError::Storage(Box::new(TierFault::OutOfRange { limit })))?);
        }
        for ((topic, _), open) in topics.iter().zip(open.iter_mut()) {
            *open = (*open).min(answer.held_after(topic).max(after));
        }
    }
    events.retain(|e| e.position() <= through);
    events.sort_unstable_by_key(|e| e.position());
    events.dedup_by_key(|e| e.position());
    let mut missing = Vec::with_capacity(topics.len());
    for ((topic, bound), open) in topics.iter().zip(&open) {
        let mut first = events.iter().find(|e| e.topic() == topic).map(|e| e.seq());
        if *open > after && first.is_none() && open < bound {
            first = first_after(tiers, epoch, topic, *open, *bound).await?;
        }
        missing.push((*open, first));
    }
    Ok(Chunk { events, through, missing })
}

/// The `seq` of the first event of `topic` any tier holds in `(after, upto]`.
async fn first_after(
    tiers: &[Arc<dyn HistoryTier>],
    epoch: Epoch,
    topic: &TopicName,
    after: u64,
    upto: u64,
) -> Result<Option<u64>, HubError> {
    let mut first: Option<(u64, u64)> = None;
    for tier in tiers {
        let answer =
            tier.read(TierRead { epoch, topics: vec![topic.clone()], after, upto, limit: 1 }).await?;
        let found = answer.events.iter().find(|e| {
            e.topic() == topic && e.epoch() == epoch && e.position() > after && e.position() <= upto
        });
        if let Some(event) = found
            && first.is_none_or(|(position, _)| event.position() < position)
        {
            first = Some((event.position(), event.seq()));
        }
    }
    Ok(first.map(|(_, seq)| seq))
}
