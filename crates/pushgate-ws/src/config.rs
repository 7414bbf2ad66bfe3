//! Limits and timers of the WebSocket transport, and how they map onto tungstenite's own config.

use std::sync::Arc;
use std::time::Duration;

use pushgate_http::{Authorize, PublishRate, Refusals};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::origin::AllowedOrigins;

/// Configuration of [`router`](crate::router): message limits, buffer sizes, heartbeat and
/// backlog. Every setting has a default suited to many mostly idle connections.
///
/// tungstenite's own defaults (64 MiB messages, 128 KiB read and write buffers, an unbounded
/// write buffer) are meant for a few busy peers; here a connection costs a few KiB at rest.
///
/// ```
/// use std::time::Duration;
/// use pushgate_ws::WsConfig;
///
/// let config = WsConfig::default()
///     .max_message_size(16 * 1024)
///     .ping_interval(Duration::from_secs(20))
///     .pong_timeout(Duration::from_secs(10))
///     .max_backlog(256);
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct WsConfig {
    pub(crate) max_message_size: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) max_write_buffer_size: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) max_backlog: usize,
    pub(crate) coalesce: Duration,
    pub(crate) auto_batch: bool,
    pub(crate) close_timeout: Duration,
    pub(crate) publish_rate: PublishRate,
    pub(crate) refusals: Refusals,
    pub(crate) authorize: Arc<dyn Authorize>,
    pub(crate) auth_timeout: Duration,
    pub(crate) allowed_origins: AllowedOrigins,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            read_buffer_size: 1024,
            write_buffer_size: 8 * 1024,
            // One default-sized event (the hub's 1 MiB data limit plus its envelope) must fit
            // behind a full write buffer; see `max_write_buffer_size`.
            max_write_buffer_size: 1024 * 1024 + 64 * 1024,
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(30),
            max_backlog: 1024,
            coalesce: Duration::ZERO,
            auto_batch: false,
            close_timeout: Duration::from_secs(5),
            publish_rate: PublishRate::default(),
            refusals: Refusals::default(),
            authorize: pushgate_http::allow_all(),
            auth_timeout: Duration::from_secs(10),
            allowed_origins: AllowedOrigins::default(),
        }
    }
}

impl WsConfig {
    /// Largest message a client may send, in bytes (default 64 KiB). A bigger one closes the
    /// connection with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.max(1);
        self
    }

    /// Largest single frame a client may send, in bytes (default 64 KiB); a message may be
    /// split into several frames, but never exceeds [`max_message_size`](Self::max_message_size).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes.max(1);
        self
    }

    /// Bytes read from the socket at a time (default 1 KiB). tungstenite allocates this buffer
    /// when the connection opens and keeps it for its life, and clients mostly send small
    /// frames (subscribe changes, Pongs), so it stays small; bigger messages grow it up to the
    /// message limit.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(256);
        self
    }

    /// Frames are gathered up to this many bytes before a write to the socket (default 8 KiB);
    /// every batch of events is flushed at its end regardless. tungstenite allocates the buffer
    /// only when a frame is written and then keeps its capacity: an idle connection holds
    /// none, one that has written a burst holds up to this plus one frame.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Most bytes tungstenite may hold for one connection while the socket is not writable
    /// (default 1 MiB + 64 KiB). It must exceed [`write_buffer_size`](Self::write_buffer_size)
    /// plus the largest frame sent: an event frame is its data plus about 300 bytes, and data is
    /// bounded by the hub's `max_data_bytes`. An event too large to fit closes the connection
    /// with 1011.
    pub fn max_write_buffer_size(mut self, bytes: usize) -> Self {
        self.max_write_buffer_size = bytes;
        self
    }

    /// How often the server sends a protocol-level Ping (default 30 s).
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every.max(Duration::from_millis(1));
        self
    }

    /// How long a Ping may go unanswered before the connection is closed with 1001
    /// (default 30 s). Only a Pong echoing the payload of the Ping last flushed to the socket
    /// answers it. A connection whose socket takes nothing (no frame accepted, no flush
    /// completed) for this long while frames wait is closed with 1001 too: its client stopped
    /// reading.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Most live events a connection may fall behind (published, not yet taken by the
    /// connection because its socket is full) before it is closed with 4008, slow consumer
    /// (default 1,024); the client resumes from its last event's `id`. Replaying the history a
    /// cursor asks for does not count: only eviction can cut a replay short.
    pub fn max_backlog(mut self, events: usize) -> Self {
        self.max_backlog = events.max(1);
        self
    }

    /// Hold a connection's events for up to this long after the first arrives, then hand all
    /// of them to the socket with one flush (default zero: each as soon as it is read). Trades
    /// that much latency for fewer writes, which are most of the CPU a server spends per
    /// event. More than a batch goes out in several flushes when the window ends, and the
    /// backlog limit is checked then; Pings, Pongs and replies to client frames are not
    /// delayed; on shutdown the connection closes with 1001 at once, as without a window, and
    /// what is held is not sent (the client resumes from its last id). See
    /// [`SubscribeOptions::coalesce`].
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

    /// How long a closing connection waits for its Close frame to be written and answered
    /// before the socket is dropped (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// How fast one connection may send `publish` frames (default 100 a second, bursts of 200;
    /// [`PublishRate::UNLIMITED`] for no limit). A publish over the rate is answered with an
    /// error frame `rate_limited` and not published; the connection stays open.
    ///
    /// Used only when the upgrade request carries no [`PublishAllowance`] in its extensions:
    /// the gateway's accept loop puts its client's there (one per client address, shared by
    /// all its connections and its HTTP publishes), and connections then take their tokens
    /// from it instead.
    ///
    /// [`PublishAllowance`]: pushgate_http::PublishAllowance
    pub fn publish_rate(mut self, rate: PublishRate) -> Self {
        self.publish_rate = rate;
        self
    }

    /// Where the connections count what they refuse (publishes over the rate, messages over
    /// the size limit), for the embedder's metrics. Default: counters nobody reads.
    pub fn refusals(mut self, refusals: Refusals) -> Self {
        self.refusals = refusals;
        self
    }

    /// Who may subscribe to and publish on which topics (default: everyone, everything).
    ///
    /// The token comes from the upgrade request (`?token=` or `Authorization: Bearer`; an
    /// invalid one is refused with HTTP 401 before upgrading) or from an `auth` frame
    /// (`{"type":"auth","token":"…"}`, answered `{"type":"authed","expires":<unix s>}`), which
    /// may be sent again at any time to replace the token before it expires. A `subscribe` or
    /// `publish` frame the token does not allow gets an `error` frame (`topic_forbidden`,
    /// `token_required`, …) and the connection stays. When the token expires without a
    /// refresh, the connection is closed with 4401.
    pub fn authorize(mut self, authorize: Arc<dyn Authorize>) -> Self {
        self.authorize = authorize;
        self
    }

    /// Under an enforced [`authorize`](Self::authorize) policy, how long a connection that
    /// opened with no token may stay without sending an `auth` frame or subscribing to a topic
    /// open to anonymous clients; then it is closed with 4408 (default 10 s).
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.auth_timeout = timeout;
        self
    }

    /// Which web pages may open a connection, by their `Origin` (default: same origin only).
    /// An upgrade from any other page is refused with `403 origin_forbidden`; one without an
    /// `Origin` header (not a browser) is allowed.
    pub fn allowed_origins(mut self, origins: AllowedOrigins) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// tungstenite's view of these limits. Its constructor panics unless the write-buffer cap
    /// exceeds the write buffer, so the cap is raised to keep that true.
    pub(crate) fn tungstenite(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_write_buffer_size(self.max_write_buffer_size.max(self.write_buffer_size.saturating_add(1)))
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size.min(self.max_message_size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_small_and_bounded() {
        let ws = WsConfig::default().tungstenite();
        assert_eq!(ws.max_message_size, Some(64 * 1024));
        assert_eq!(ws.max_frame_size, Some(64 * 1024));
        assert!(ws.read_buffer_size <= 1024);
        assert!(ws.write_buffer_size <= 8 * 1024);
        assert!(ws.max_write_buffer_size > ws.write_buffer_size + (1 << 20));
        assert!(ws.max_write_buffer_size < 4 << 20);
    }

    #[test]
    fn the_write_cap_always_exceeds_the_write_buffer() {
        let ws = WsConfig::default().write_buffer_size(8192).max_write_buffer_size(100).tungstenite();
        assert!(ws.max_write_buffer_size > ws.write_buffer_size);
        let frames = WsConfig::default().max_message_size(10).max_frame_size(1000).tungstenite();
        assert_eq!(frames.max_frame_size, Some(10));
    }
}
