//! What a publisher may send: the body size and deadline of `POST /v1/publish`, and the publish
//! rate of one client address.

use super::{ByteSize, ConfigError, TimeSpan, nonzero};

section! {
    /// Publish bodies and the publish rate.
    pub struct Publishing {
        /// Largest publish body (e.g. 1048576, 512KiB, 1MiB); larger ones get `413 too_large`.
        /// It also bounds an event's data in the hub, and so the WebSocket write buffer.
        #[arg(long, env = "PUSHGATE_MAX_BODY_BYTES", value_name = "BYTES")]
        pub max_body_bytes: ByteSize = ByteSize::mib(1),

        /// Time a client has to send a publish body once its headers are in; a slower one gets
        /// `408 request_timeout` and the connection is closed.
        #[arg(long, env = "PUSHGATE_BODY_READ_TIMEOUT", value_name = "DURATION")]
        pub body_read_timeout: TimeSpan = TimeSpan::secs(10),

        /// Publishes a second one client address (IPv6: one /64) may make on average, HTTP and
        /// WebSocket together over all its connections; more get `429 rate_limited` (with
        /// `Retry-After`) or a `rate_limited` error frame. 0: no limit. Publishes from inside
        /// the process (database sources, the demo) are never limited.
        #[arg(long, env = "PUSHGATE_PUBLISH_RATE", value_name = "N")]
        pub publish_rate: u32 = 100,

        /// Publishes one client address may make at once above --publish-rate (the token
        /// bucket's size).
        #[arg(long, env = "PUSHGATE_PUBLISH_BURST", value_name = "N")]
        pub publish_burst: u32 = 200,

        /// How long a publish's `Idempotency-Key` (a WebSocket publish's `idempotency_key`) is
        /// remembered on its topic: the same key again within it, on any node with --redis,
        /// publishes nothing and answers the original `{"topic","seq","id"}`. 0 turns it off.
        #[arg(long, env = "PUSHGATE_IDEMPOTENCY_WINDOW", value_name = "DURATION")]
        pub idempotency_window: TimeSpan = TimeSpan::secs(300),
    }
}

impl Publishing {
    /// Bodies and deadlines are positive; a rate has a burst.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        nonzero([
            ("max_body_bytes", *self.max_body_bytes == 0),
            ("body_read_timeout", self.body_read_timeout.is_zero()),
            ("publish_burst", self.publish_rate > 0 && self.publish_burst == 0),
        ])
    }

    /// The publish rate of one client address.
    ///
    /// ```
    /// assert!(pushgate::Config::default().publishing.rate().is_limited());
    /// assert!(!pushgate::Config::default().with_publish_rate(0).publishing.rate().is_limited());
    /// ```
    pub fn rate(&self) -> pushgate_http::PublishRate {
        pushgate_http::PublishRate::new(self.publish_rate, self.publish_burst)
    }
}
