//! The Redis log as the hub's deeper history tier: a cursor older than a node's memory history
//! but inside the stream's retention ([`RedisOptions::history_events`](crate::RedisOptions::history_events))
//! is answered from the stream with `XRANGE`, without a reset.
//!
//! The stream holds every topic interleaved, so a read scans the requested position range in
//! chunks and keeps the requested topics' events: memory stays bounded by a chunk and the
//! hub's limit, and the scan by the range (at most the stream's length). Completeness is read
//! from the stream itself: it holds every entry after its first retained one, so the answer
//! claims the range after that; what lies before it was trimmed and is reported missing. A trim
//! that passes the range while it is read is noticed (the first entry moved) and the read is
//! done again.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use pushgate_hub::{Event, HistoryTier, HubError, Storage, TierEvents, TierRead};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;

use crate::Shared;
use crate::tail::{Entry, entry_position, first_position};

/// Stream entries read per `XRANGE` while scanning.
const CHUNK: usize = 1000;
/// Reads started again because a trim passed them, before giving up (the hub then resets).
const ATTEMPTS: usize = 3;

/// The history tier over a [`RedisStorage`](crate::RedisStorage)'s log.
pub(crate) struct LogTier {
    pub(crate) shared: Arc<Shared>,
}

impl HistoryTier for LogTier {
    fn read(&self, request: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            if request.epoch != shared.replica.epoch() {
                return Ok(TierEvents::nothing());
            }
            let Some(mut connection) = shared.connection() else {
                return Err(HubError::Unavailable { reason: "redis: not connected".to_owned() });
            };
            for _ in 0..ATTEMPTS {
                if let Some(answer) = attempt(&shared, &mut connection, &request).await.map_err(storage)? {
                    return Ok(answer);
                }
            }
            Err(HubError::Unavailable {
                reason: "redis: the log was trimmed faster than it could be read".to_owned(),
            })
        })
    }
}

fn storage(err: redis::RedisError) -> HubError {
    HubError::Storage(Box::new(err))
}

/// One read of the range; `None` when a trim passed it meanwhile.
async fn attempt(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
    request: &TierRead,
) -> redis::RedisResult<Option<TierEvents>> {
    // Everything after the oldest retained entry is there; what came before it is gone.
    let first = first_position(shared, connection).await?;
    let missing_through = match first {
        Some(first) => first.saturating_sub(1),
        // Empty: the log holds nothing of the range (trimmed away, or never written here).
        None => return Ok(Some(TierEvents::nothing())),
    };
    let mut after = request.after.max(missing_through);
    let mut events: Vec<Arc<Event>> = Vec::new();
    while after < request.upto && events.len() < request.limit {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&shared.keys.log)
            .arg(format!("({after}-0"))
            .arg(format!("{}-0", request.upto))
            .arg("COUNT")
            .arg(CHUNK)
            .query_async(connection)
            .await?;
        let Some(last) = reply.ids.last().and_then(entry_position) else { break };
        for entry in &reply.ids {
            // Markers, unreadable entries and entries of an earlier epoch hold no event of this one.
            let Ok(entry) = Entry::parse(entry) else { continue };
            if entry.epoch != request.epoch || request.topics.binary_search(&entry.topic).is_err() {
                continue;
            }
            events.push(Arc::new(Event::from_parts(entry.into_parts())));
            if events.len() == request.limit {
                break;
            }
        }
        if reply.ids.len() < CHUNK {
            break;
        }
        after = last;
    }
    // A trim that passed what was read meanwhile may have taken entries from under the scan.
    let now = first_position(shared, connection).await?.map_or(u64::MAX, |p| p.saturating_sub(1));
    if now > missing_through && now > request.after {
        return Ok(None);
    }
    Ok(Some(TierEvents::new(events).missing_through(missing_through)))
}
