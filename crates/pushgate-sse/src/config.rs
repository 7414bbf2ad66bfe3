//! How the SSE endpoint behaves: heartbeats, the reconnect hint, and per-subscriber bounds.

use std::time::Duration;

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
///     .batch_size(128);
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct SseConfig {
    pub(crate) heartbeat: Duration,
    pub(crate) retry: Duration,
    pub(crate) max_backlog: Option<usize>,
    pub(crate) batch_size: usize,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_millis(2000),
            max_backlog: Some(1024),
            batch_size: 64,
        }
    }
}

impl SseConfig {
    /// After this much silence the stream sends a `: hb` comment, so proxies and the client's
    /// idle timers do not close it. Default 15 s; [`Duration::ZERO`] sends none.
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
    /// Events replayed from history count too: a subscription starting further back than this
    /// ends at once, and its client should resume from a later cursor.
    ///
    /// [`SubscribeOptions::max_backlog`]: pushgate_hub::SubscribeOptions::max_backlog
    pub fn max_backlog(mut self, n: Option<usize>) -> Self {
        self.max_backlog = n;
        self
    }

    /// At most this many events go into one write to the socket (default 64, at least 1).
    /// Events that are ready together are sent as one chunk rather than one write each.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }
}
