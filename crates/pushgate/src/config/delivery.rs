//! How the four transports deliver: answer sizes and long-poll waits, the SSE heartbeat, the
//! coalescing window, and the WebSocket message and buffer sizes.

use std::time::Duration;

use super::{ByteSize, ConfigError, Publishing, TimeSpan, nonzero};

/// The WebSocket transport's default write-buffer cap (`WsConfig::max_write_buffer_size`):
/// one default-sized event behind a full write buffer. The gateway never goes below it.
const WS_DEFAULT_MAX_WRITE_BUFFER: usize = (1 << 20) + (64 << 10);
/// Room for a frame's envelope and the write buffer's own batch, next to two events' data.
const WS_WRITE_BUFFER_SLACK: usize = 64 << 10;
/// The largest `max_body_bytes` whose write-buffer need can be counted.
const MAX_BODY_BYTES_LIMIT: usize = (usize::MAX - WS_WRITE_BUFFER_SLACK) / 2;

/// The longest coalescing window: it is latency added to every delivery, so anything longer
/// is a mistake (`1s` meant as `1ms`), not a trade-off.
const MAX_COALESCE: Duration = Duration::from_secs(1);

section! {
    /// How the transports deliver.
    pub struct Delivery {
        /// About how many bytes of events one poll or long-poll answer holds (always at least
        /// one event; the cursor continues after a cut).
        #[arg(long, env = "PUSHGATE_MAX_ANSWER_BYTES", value_name = "BYTES")]
        pub max_answer_bytes: ByteSize = ByteSize::from(pushgate_http::DEFAULT_MAX_ANSWER_BYTES),

        /// Long-poll wait when the request names no `timeout` (e.g. 25s, 1m).
        #[arg(long, env = "PUSHGATE_LONGPOLL_TIMEOUT", value_name = "DURATION")]
        pub longpoll_timeout: TimeSpan = TimeSpan::secs(25),

        /// Longest long-poll wait, whatever the request asks.
        #[arg(long, env = "PUSHGATE_LONGPOLL_MAX_TIMEOUT", value_name = "DURATION")]
        pub longpoll_max_timeout: TimeSpan = TimeSpan::secs(120),

        /// Interval of the SSE `: hb` comment that keeps idle streams open.
        #[arg(long, env = "PUSHGATE_SSE_HEARTBEAT", value_name = "DURATION")]
        pub sse_heartbeat: TimeSpan = TimeSpan::secs(15),

        /// The SSE `retry:` hint at the start of every stream: how long a browser waits before
        /// reconnecting a stream that ended.
        #[arg(long, env = "PUSHGATE_SSE_RETRY", value_name = "DURATION")]
        pub sse_retry: TimeSpan = TimeSpan::secs(2),

        /// Hold each SSE, WebSocket and long-poll subscriber's events this long after the first
        /// arrives, then write them together (one write, one long-poll answer): fewer writes,
        /// for up to this much added latency. 0 writes each event at once; at most 1s.
        #[arg(long, env = "PUSHGATE_COALESCE", value_name = "DURATION")]
        pub coalesce: TimeSpan = TimeSpan::millis(0),

        /// Batch SSE and WebSocket deliveries on their own when they fall behind: a subscriber
        /// whose oldest unread event waited 5 ms or more pauses a quarter of that (at most
        /// 50 ms) before its next read, so that one write carries more events. Off by default:
        /// past the knee the gateway batches without it (docs/benchmarks.md); --coalesce wins
        /// when set.
        #[arg(long, env = "PUSHGATE_AUTO_BATCH")]
        pub auto_batch: bool,

        /// Largest WebSocket message accepted from a client (close 1009 beyond).
        #[arg(long, env = "PUSHGATE_WS_MAX_MESSAGE_BYTES", value_name = "BYTES")]
        pub ws_max_message_bytes: ByteSize = ByteSize::kib(64),

        /// Most bytes a WebSocket connection may hold unsent while its peer is not reading.
        /// It must hold two of the largest events: at least 2 × --max-body-bytes + 64KiB,
        /// which is what is used when not given (and never less than 1MiB + 64KiB).
        #[arg(long, env = "PUSHGATE_WS_MAX_WRITE_BUFFER_BYTES", value_name = "BYTES")]
        pub ws_max_write_buffer_bytes: Option<ByteSize>,
    }
}

impl Delivery {
    /// Sizes and the heartbeat are positive; the long-poll default is within its maximum; the
    /// coalescing window is short; the WebSocket write buffer holds two of `publishing`'s
    /// largest events.
    pub(super) fn check(&self, publishing: &Publishing) -> Result<(), ConfigError> {
        nonzero([
            ("max_answer_bytes", *self.max_answer_bytes == 0),
            ("ws_max_message_bytes", *self.ws_max_message_bytes == 0),
            ("sse_heartbeat", self.sse_heartbeat.is_zero()),
        ])?;
        if self.longpoll_timeout > self.longpoll_max_timeout {
            return Err(ConfigError::LongPollDefaultAboveMax {
                default: *self.longpoll_timeout,
                max: *self.longpoll_max_timeout,
            });
        }
        if *self.coalesce > MAX_COALESCE {
            return Err(ConfigError::CoalesceTooLong { value: *self.coalesce, limit: MAX_COALESCE });
        }
        let body = *publishing.max_body_bytes;
        if body > MAX_BODY_BYTES_LIMIT {
            return Err(ConfigError::BodyLimitTooLarge { value: body, limit: MAX_BODY_BYTES_LIMIT });
        }
        let needed = ws_write_buffer_need(body);
        if let Some(value) = self.ws_max_write_buffer_bytes
            && *value < needed
        {
            return Err(ConfigError::WsWriteBufferTooSmall { value: *value, needed });
        }
        Ok(())
    }

    /// The longest a connection is silent on purpose: a long poll held to its maximum, or an
    /// SSE stream between heartbeats (up to twice the interval, see `SseConfig::heartbeat`).
    pub(super) fn longest_silence(&self) -> Duration {
        (*self.longpoll_max_timeout).max(self.sse_heartbeat.saturating_mul(2))
    }

    /// The WebSocket write-buffer cap the gateway uses with `publishing`'s body limit:
    /// [`ws_max_write_buffer_bytes`](Self::ws_max_write_buffer_bytes) when set, else
    /// `2 × max_body_bytes + 64 KiB`, never below the transport's default of 1 MiB + 64 KiB.
    /// One event frame is its data (at most `max_body_bytes`, the hub's data limit) plus a
    /// small envelope, and the buffer must take a whole frame while the previous one may still
    /// be in it.
    ///
    /// ```
    /// let config = pushgate::Config::default().with_max_body_bytes(3 << 20);
    /// assert_eq!(config.delivery.ws_write_buffer_cap(&config.publishing), (6 << 20) + (64 << 10));
    /// let config = pushgate::Config::default();
    /// assert_eq!(config.delivery.ws_write_buffer_cap(&config.publishing), (2 << 20) + (64 << 10));
    /// ```
    pub fn ws_write_buffer_cap(&self, publishing: &Publishing) -> usize {
        self.ws_max_write_buffer_bytes
            .map_or_else(|| ws_write_buffer_need(*publishing.max_body_bytes), usize::from)
    }
}

/// The smallest write-buffer cap that holds two event frames of `max_body_bytes` of data.
fn ws_write_buffer_need(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_mul(2).saturating_add(WS_WRITE_BUFFER_SLACK).max(WS_DEFAULT_MAX_WRITE_BUFFER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn the_websocket_write_buffer_holds_two_of_the_largest_events() {
        let cap = |config: &Config| config.delivery.ws_write_buffer_cap(&config.publishing);
        assert_eq!(cap(&Config::default()), 2 * (1 << 20) + (64 << 10));
        // Small bodies never take the cap below the transport's default.
        assert_eq!(cap(&Config::default().with_max_body_bytes(1000)), WS_DEFAULT_MAX_WRITE_BUFFER);
        let large = Config::default().with_max_body_bytes(3 << 20);
        assert_eq!(cap(&large), (6 << 20) + (64 << 10));

        let needed = (6 << 20) + (64 << 10);
        assert_eq!(
            large.clone().with_ws_max_write_buffer_bytes(Some(2 << 20)).validate(),
            Err(ConfigError::WsWriteBufferTooSmall { value: 2 << 20, needed })
        );
        let explicit = large.with_ws_max_write_buffer_bytes(Some(8 << 20));
        assert_eq!(explicit.validate(), Ok(()));
        assert_eq!(cap(&explicit), 8 << 20);
    }
}
