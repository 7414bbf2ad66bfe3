//! What a subscription yields, whatever the transport: deliveries, a resumable cursor, traffic
//! counters, and the error a rejected subscribe request becomes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::Transport;

/// One thing a subscription delivers, as the JSON the protocol defines.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The event object `{"topic","seq","id","event","data","ts"}` (on WebSocket: the `event`
    /// frame without its `type` field).
    Event(serde_json::Value),
    /// The reset object `{"reason","topics":[…]}` (on WebSocket: the `reset` frame without
    /// its `type` field).
    Reset(serde_json::Value),
}

impl Delivery {
    /// The event object, or `None` for a reset.
    pub fn event(&self) -> Option<&serde_json::Value> {
        match self {
            Self::Event(event) => Some(event),
            Self::Reset(_) => None,
        }
    }
}

/// A live subscription over one transport.
///
/// Dropping a feed disconnects it (closes its connection and stops its polling loop).
pub trait Feed: Send {
    /// The transport this feed reads.
    fn transport(&self) -> Transport;

    /// The next delivery, waiting at most `timeout`.
    ///
    /// `Ok(None)` means nothing arrived in time; the feed stays usable. An error means the feed
    /// ended (the server closed the stream, sent an error, or answered a poll with an error
    /// status; a [`Rejected`] inside says which) and every later call fails too.
    fn next(&mut self, timeout: Duration) -> BoxFuture<'_, anyhow::Result<Option<Delivery>>>;

    /// Where to resume after everything [`next`](Self::next) returned so far: the `id` of the
    /// last event (SSE: the last event id, which a reset also sets), or the last poll answer's
    /// `cursor` once all of its events were returned. Before anything arrived, the cursor the
    /// feed was opened with, or the one the first poll answered.
    fn cursor(&self) -> Option<&str>;
}

/// A subscribe (or poll) request the server answered with an error status instead of a feed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{request} was rejected with {status} ({content_type:?}): {body}")]
pub struct Rejected {
    /// The request, as `METHOD /path`.
    pub request: String,
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` of the answer, when there was one.
    pub content_type: Option<String>,
    /// The body, as text (for WebSocket: what arrived with the status line and headers).
    pub body: String,
}

impl Rejected {
    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// `error.code` of a protocol error body `{"error":{"code","message"}}`.
    pub fn code(&self) -> Option<String> {
        self.json()?.pointer("/error/code")?.as_str().map(str::to_owned)
    }
}

/// Requests made and payload bytes received by a client (all its feeds together).
///
/// Bytes are what the application reads: HTTP bodies (poll answers, the SSE stream) and
/// WebSocket message payloads; headers and framing are not counted.
#[derive(Debug, Default)]
pub struct Traffic {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Traffic {
    /// HTTP requests sent so far, a WebSocket handshake included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Payload bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, n: usize) {
        self.bytes.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests, {} bytes", self.requests(), self.bytes())
    }
}

/// A delivery and the cursor that resumes right after it (`None`: the cursor does not move).
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) delivery: Delivery,
    pub(crate) cursor: Option<String>,
}

/// How many deliveries a feed's reader may hold before the reader waits for the test: enough
/// for any test, and bounded so a runaway server cannot fill memory.
pub(crate) const FEED_BUFFER: usize = 1024;

/// The sending side of a [`TaskFeed`]: what the transport's reader task writes to.
pub(crate) type FeedSender = mpsc::Sender<anyhow::Result<Received>>;

/// The one [`Feed`] implementation: a reader task per feed (the transport-specific part) sends
/// deliveries into a bounded channel that [`Feed::next`] reads with a timeout. Receiving from the
/// channel is cancel-safe, so a timed-out `next` loses nothing.
pub(crate) struct TaskFeed {
    transport: Transport,
    deliveries: mpsc::Receiver<anyhow::Result<Received>>,
    cursor: Option<String>,
    reader: JoinHandle<()>,
    ended: bool,
}

impl TaskFeed {
    /// A feed starting at `cursor`, reading what `reader` (already spawned) sends.
    pub(crate) fn new(
        transport: Transport,
        cursor: Option<String>,
        deliveries: mpsc::Receiver<anyhow::Result<Received>>,
        reader: JoinHandle<()>,
    ) -> Self {
        Self { transport, deliveries, cursor, reader, ended: false }
    }
}

impl Drop for TaskFeed {
    fn drop(&mut self) {
        // The reader owns the connection: stopping it is the disconnect.
        self.reader.abort();
    }
}

impl Feed for TaskFeed {
    fn transport(&self) -> Transport {
        self.transport
    }

    fn next(&mut self, timeout: Duration) -> BoxFuture<'_, anyhow::Result<Option<Delivery>>> {
        Box::pin(async move {
            if self.ended {
                return Err(anyhow!("{} feed already ended", self.transport));
            }
            match tokio::time::timeout(timeout, self.deliveries.recv()).await {
                Err(_elapsed) => Ok(None),
                Ok(Some(Ok(received))) => {
                    if let Some(cursor) = received.cursor {
                        self.cursor = Some(cursor);
                    }
                    Ok(Some(received.delivery))
                }
                Ok(Some(Err(error))) => {
                    self.ended = true;
                    Err(error)
                }
                Ok(None) => {
                    self.ended = true;
                    Err(anyhow!("{} feed ended without a reason", self.transport))
                }
            }
        })
    }

    fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// A new feed channel, bounded by [`FEED_BUFFER`].
pub(crate) fn channel() -> (FeedSender, mpsc::Receiver<anyhow::Result<Received>>) {
    mpsc::channel(FEED_BUFFER)
}
