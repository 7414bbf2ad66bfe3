//! How the SSE endpoint behaves: heartbeats, the reconnect hint, and per-subscriber bounds.

use std::sync::Arc;
use std::time::Duration;

use pushgate_http::Authorize;

/// Settings for [`router`](crate::router).
///
/// ```
/// use std::time::Duration;
/// use pushgate_sse::SseConfig;
///
/// let config = SseConfig::default()
///     .heartbeat(Duration::from_secs(30))
///     .retry(Duration::from_secs(5))
///     .max_backlog(Some(10_000))
///     .batch_size(128)
///     .max_chunk_bytes(32 * 1024);
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct SseConfig {
    pub(crate) heartbeat: Duration,
    pub(crate) retry: Duration,
    pub(crate) max_backlog: Option<usize>,
    pub(crate) batch_size: usize,
    pub(crate) max_chunk_bytes: usize,
    pub(crate) coalesce: Duration,
    pub(crate) auto_batch: bool,
    pub(crate) authorize: Arc<dyn Authorize>,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_millis(2000),
            max_backlog: Some(1024),
            batch_size: 64,
            max_chunk_bytes: crate::framing::DEFAULT_MAX_CHUNK_BYTES,
            coalesce: Duration::ZERO,
            auto_batch: false,
            authorize: pushgate_http::allow_all(),
        }
    }
}

impl SseConfig {
    /// A `: hb` comment goes out at the end of every interval of this length in which nothing
    /// else was sent, so proxies and the client's idle timers do not close the stream: a
    /// stream is never silent for two intervals. Default 15 s; [`Duration::ZERO`] sends none.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// The `retry:` hint at the start of every stream: how long a browser waits before
    /// reconnecting after the stream ends. Default 2 s; sent in whole milliseconds.
    pub fn retry(mut self, after: Duration) -> Self {
        self.retry = after;
        self
    }

    /// How many events may wait for one subscriber before it is cut off with a
    /// `slow_consumer` error (see [`SubscribeOptions::max_backlog`]). Default `Some(1024)`;
    /// `None` defers to the hub's own limit, if any.
    ///
    /// Only live events count: while a stream replays the history its cursor asked for
    /// (everything published before it subscribed), the hub exempts it from this limit, and
    /// only eviction from history can cut the replay short. A client resuming far back is
    /// therefore not cut off at once, nor again each time it returns with the same cursor.
    ///
    /// [`SubscribeOptions::max_backlog`]: pushgate_hub::SubscribeOptions::max_backlog
    pub fn max_backlog(mut self, n: Option<usize>) -> Self {
        self.max_backlog = n;
        self
    }

    /// At most this many events are read from the hub at once (default 64, at least 1); the
    /// next are read only once these are written. Events that are ready together are joined
    /// into chunks of up to [`max_chunk_bytes`](Self::max_chunk_bytes) rather than written one
    /// by one.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Largest chunk built by joining event frames (default 64 KiB). Joining is the one copy
    /// a stream makes of its events, so this bounds the memory a subscriber holds beyond the
    /// shared, encoded-once frames: a frame that does not fit is written on its own, as the
    /// buffer all subscribers share. `0` never joins.
    pub fn max_chunk_bytes(mut self, bytes: usize) -> Self {
        self.max_chunk_bytes = bytes;
        self
    }

    /// Hold a stream's events for up to this long after the first arrives, then write all of
    /// them at once (default zero: write each as soon as it is read). Trades that much latency
    /// for fewer, larger writes: the CPU a server spends per event is mostly its write
    /// syscall. More than a [`batch_size`](Self::batch_size) goes out in several chunks
    /// when the window ends, and the backlog limit is checked then; heartbeats are not
    /// delayed; on shutdown what is held goes out at once, before the `shutting_down` frame. See [`SubscribeOptions::coalesce`].
    ///
    /// [`SubscribeOptions::coalesce`]: pushgate_hub::SubscribeOptions::coalesce
    pub fn coalesce(mut self, window: Duration) -> Self {
        self.coalesce = window;
        self
    }

    /// Batch on its own when a subscriber falls behind (default off): see
    /// [`SubscribeOptions::auto_batch`]. A [`coalesce`](Self::coalesce) window wins when set.
    ///
    /// [`SubscribeOptions::auto_batch`]: pushgate_hub::SubscribeOptions::auto_batch
    pub fn auto_batch(mut self, on: bool) -> Self {
        self.auto_batch = on;
        self
    }

    /// Who may subscribe to which topics (default: everyone, everything). A stream is checked
    /// when it opens, with the request's token (`?token=`, which is all `EventSource` can send,
    /// or `Authorization: Bearer`); a refusal is `401`/`403` JSON. When the token expires the
    /// stream sends `event: error` with code `token_expired` and ends: the client reconnects
    /// with a fresh token and its last event id.
    pub fn authorize(mut self, authorize: Arc<dyn Authorize>) -> Self {
        self.authorize = authorize;
        self
    }
}
