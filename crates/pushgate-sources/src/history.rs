//! The outbox as a hub history tier: what the tailer published stays in the outbox for the
//! source's retention, with the epoch, position, `seq` and timestamp it got in the hub, so a
//! reader whose cursor is older than the hub's memory is answered from there instead of being
//! told it missed something.
//!
//! A read ([`HistoryTier::read`]) asks for the changes of some topics in a position range of
//! one epoch. The tier answers with the recorded changes, rebuilt into the events they were,
//! and claims completeness per topic only where the outbox proves it: the recorded `seq`s run
//! without a hole from the reader's last event of the topic (still recorded at or before the
//! range's start) or from the topic's first event of the epoch (`seq` 1). Where the outbox lost
//! older changes to retention, or the topic has events the source did not publish (a hole in
//! `seq`), it says it holds nothing up to there, and the hub reports that part as missed.
//!
//! The numbers are recorded when a batch is marked published, just after the hub took it: a
//! read first waits until every change in the outbox when it began is marked (at most
//! [`MARKED_WITHIN`]), so the events it is asked about, all published before, are recorded.
//! Past that (no tailer is running, or a takeover is under way) it answers that it holds
//! nothing, and the hub resets as it would without the outbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use pushgate_hub::{Epoch, Event, EventParts, HistoryTier, HubError, TierEvents, TierRead, TopicName};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::backend::{Backend, Dialect};
use crate::change::change_event;
use crate::error::SourceError;
use crate::model::{ColumnKind, HistoryRow, SourceNames};

/// How long a read waits for the changes pending when it began to be marked published; within
/// the hub's tier timeout (5 s by default).
const MARKED_WITHIN: Duration = Duration::from_secs(2);

/// How often a read looks whether they are.
const MARKED_EVERY: Duration = Duration::from_millis(20);

/// A source's outbox, read as a [`HistoryTier`]; made by
/// [`Source::history_tier`](crate::Source::history_tier). It connects a small pool of its own
/// on the first read, so it serves on every node, the leader's and the standbys'.
pub(crate) struct OutboxTier {
    inner: Arc<Inner>,
}

struct Inner {
    dialect: Dialect,
    url: String,
    names: SourceNames,
    pool: OnceCell<Backend>,
}

impl OutboxTier {
    pub(crate) fn new(dialect: Dialect, url: String, names: SourceNames) -> Self {
        Self { inner: Arc::new(Inner { dialect, url, names, pool: OnceCell::new() }) }
    }
}

impl HistoryTier for OutboxTier {
    fn read(&self, request: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.read(request).await.map_err(|error| HubError::Storage(Box::new(error))) })
    }
}

impl Inner {
    async fn read(&self, request: TierRead) -> Result<TierEvents, SourceError> {
        let backend = self.pool.get_or_try_init(|| Backend::connect(self.dialect, &self.url)).await?;
        if !self.all_marked(backend).await? {
            return Ok(TierEvents::nothing());
        }
        let epoch = i64::from(request.epoch.as_u32());
        let (after, upto) = (position(request.after), position(request.upto));
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        let topics: Vec<String> = request.topics.iter().map(|t| t.as_str().to_owned()).collect();
        let rows = backend.history(&self.names, epoch, &topics, (after, upto), limit).await?;

        let mut answer = Vec::with_capacity(rows.len());
        let mut missing = Vec::new();
        for topic in &request.topics {
            let bounds = backend.topic_bounds(&self.names, epoch, topic.as_str(), after).await?;
            let mut expect = match (bounds.before, bounds.first) {
                // The reader's last event of the topic is recorded: continue from it.
                (Some((seq, _)), _) => seq + 1,
                // The topic's first event of the epoch is recorded: nothing before it existed.
                (None, Some((1, _))) => 1,
                // Retention took the older ones: nothing held before the oldest left.
                (None, Some((seq, first))) => {
                    missing.push((topic.clone(), u64::try_from(first - 1).unwrap_or(0)));
                    seq
                }
                // Nothing of this topic in this epoch: not a topic of this source, or all gone.
                (None, None) => {
                    missing.push((topic.clone(), u64::MAX));
                    continue;
                }
            };
            for row in rows.iter().filter(|row| row.topic == topic.as_str()) {
                if row.seq != expect {
                    // A hole: events of the topic this outbox does not have come before this one.
                    missing.push((topic.clone(), u64::try_from(row.position - 1).unwrap_or(0)));
                }
                expect = row.seq + 1;
            }
        }
        let fixes = self.fixes(backend, &rows).await?;
        for row in rows {
            answer.push(Arc::new(event(row, request.epoch, &fixes)?));
        }
        let events = missing.into_iter().fold(TierEvents::new(answer), |events, (topic, through)| {
            events.topic_missing_through(topic, through)
        });
        Ok(events)
    }

    /// Waits until every change in the outbox now is marked published; false if that takes
    /// longer than [`MARKED_WITHIN`].
    async fn all_marked(&self, backend: &Backend) -> Result<bool, SourceError> {
        let Some(last) = backend.last_id(&self.names).await? else { return Ok(true) };
        let deadline = Instant::now() + MARKED_WITHIN;
        while backend.pending_through(&self.names, last).await? {
            if Instant::now() >= deadline {
                tracing::debug!(
                    outbox = self.names.outbox(),
                    "pushgate source history: changes still unmarked"
                );
                return Ok(false);
            }
            tokio::time::sleep(MARKED_EVERY).await;
        }
        Ok(true)
    }

    /// The column fixes of the tables `rows` come from (SQLite's; none elsewhere), read now:
    /// a history read is rare enough not to cache them.
    async fn fixes(
        &self,
        backend: &Backend,
        rows: &[HistoryRow],
    ) -> Result<HashMap<String, HashMap<String, ColumnKind>>, SourceError> {
        if rows.is_empty() || self.dialect != Dialect::Sqlite {
            return Ok(HashMap::new());
        }
        Ok(backend
            .watched(&self.names)
            .await?
            .into_iter()
            .map(|watched| (watched.table, watched.fixes))
            .collect())
    }
}

/// The event a recorded change was, with the numbers it was published with.
fn event(
    recorded: HistoryRow,
    epoch: Epoch,
    fixes: &HashMap<String, HashMap<String, ColumnKind>>,
) -> Result<Event, SourceError> {
    let none = HashMap::new();
    let change = change_event(&recorded.row, fixes.get(&recorded.row.table).unwrap_or(&none))?;
    let topic = TopicName::new(&recorded.topic).map_err(|error| SourceError::MalformedRow {
        id: recorded.row.id,
        reason: format!("recorded topic {:?}: {error}", recorded.topic),
    })?;
    let number = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Event::from_parts(EventParts {
        topic,
        event_type: recorded.row.op.into_boxed_str(),
        data: change.data().clone(),
        seq: number(recorded.seq),
        position: number(recorded.position),
        epoch,
        timestamp_ms: number(recorded.ts),
        from: None,
        latest_key: None,
    }))
}

/// A hub position as the outbox stores it.
fn position(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}
