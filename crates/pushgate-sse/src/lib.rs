//! Server-Sent Events for pushgate: `GET /v1/sse` streams a subscription as `text/event-stream`.
//!
//! ```text
//! retry: 2000
//!
//! id: 9f03c1d2-2a
//! event: message
//! data: {"topic":"chat","seq":3,"id":"9f03c1d2-2a","event":"message","data":{},"ts":1763750000000}
//!
//! : hb
//!
//! ```
//!
//! - Each event's `id:` is its cursor, so a browser's automatic reconnect (with
//!   `Last-Event-ID`) resumes exactly after the last event it saw; other clients pass `?cursor=`
//!   or `?last_event_id=`.
//! - A cursor the hub cannot honour exactly yields `event: reset` first, with an `id:` to resume
//!   from.
//! - After an interval of silence ([`SseConfig::heartbeat`]), a `: hb` comment keeps proxies from
//!   closing the stream.
//! - A subscriber whose backlog overflows gets `event: error` with code `slow_consumer`, and the
//!   stream ends; on [`Hub::close`](pushgate_hub::Hub::close) the code is `shutting_down`.
//! - With [`SseConfig::authorize`], a stream opens only for a client allowed to subscribe to its
//!   topics (its token, `?token=` or `Authorization: Bearer`, or what the policy makes of its
//!   cookies), holds its grant while it lives, and ends with `event: error` code `token_expired`
//!   when the grant expires.
//! - Errors before the stream starts (bad topic or cursor, no topics, …) are the usual JSON error
//!   answers of `pushgate-http`.
//!
//! Each event's frame is encoded once and shared by all subscribers; events that are ready
//! together (up to [`SseConfig::batch_size`]) are joined into chunks of at most
//! [`SseConfig::max_chunk_bytes`], and a frame too large to join is written as the shared buffer
//! itself.

mod body;
mod config;
mod endpoint;
mod framing;

pub use config::SseConfig;
pub use endpoint::router;
