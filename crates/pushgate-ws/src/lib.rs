//! WebSocket transport for pushgate: `GET /v1/ws` (RFC 6455), on tokio-tungstenite.
//!
//! A connection holds one subscription (one position in the hub's order, one set of topics),
//! optionally opened from the query (`?topic=…&cursor=…`, errors answered as HTTP 400 before
//! upgrading), and changed by `subscribe`/`unsubscribe` frames without losing or repeating
//! events of the topics that stay (a `subscribe` with a cursor starts only the added topics
//! there). Every message is a JSON text frame with a `type`:
//!
//! ```text
//! → {"type":"subscribe","topics":["chat"],"cursor":"9f03c1d2-2a"}
//! ← {"type":"subscribed","topics":["chat"],"cursor":"9f03c1d2-2a"}
//! ← {"type":"event","topic":"chat","seq":3,"id":"9f03c1d2-2b","event":"message","data":{"text":"hi"},"ts":1763750000000}
//! → {"type":"publish","topic":"chat","data":{"text":"yo"}}
//! ← {"type":"published","topic":"chat","seq":4,"id":"9f03c1d2-2c"}
//! → {"type":"ping","id":1}
//! ← {"type":"pong","id":1}
//! → {"type":"shout"}
//! ← {"type":"error","error":{"code":"invalid_json","message":"…"},"request":"shout"}
//! ```
//!
//! - An event frame is the shared event object with `"type":"event"` in front, encoded once per
//!   event for all subscribers; events that are ready together are written back to back and
//!   flushed once. A cursor the hub cannot honour exactly yields a `reset` frame first.
//! - A bad frame gets an `error` frame; the connection stays open. So does a `publish` over
//!   the client's publish allowance (`rate_limited`, nothing published: the
//!   [`PublishAllowance`](pushgate_http::PublishAllowance) the server put into the upgrade
//!   request's extensions, shared by the client's connections, else one per connection at
//!   [`WsConfig::publish_rate`]) and a
//!   `subscribe` that would follow too many topics (`too_many_topics`, the old set goes on).
//!   Refusals by a limit are counted in [`WsConfig::refusals`].
//! - Close codes: 1001 when the hub closes (shutdown), when a protocol Ping goes unanswered for
//!   [`WsConfig::pong_timeout`] (unsolicited Pongs answer nothing), or when the socket takes
//!   nothing for as long while frames wait; 1009 for a message over
//!   [`WsConfig::max_message_size`]; 4008 when a slow client falls more than [`WsConfig::max_backlog`] live events behind (it
//!   reconnects with its last event's `id`); 1011 on an internal error; 1002/1007 for protocol
//!   violations.
//! - Auth ([`WsConfig::authorize`]): a token in the upgrade's query or an
//!   `{"type":"auth","token":"…"}` frame, answered `{"type":"authed","expires":…}` and
//!   repeatable to refresh it; a forbidden `subscribe` or `publish` gets an `error` frame; an
//!   invalid token in the query is HTTP 401 before upgrading. Close codes 4401 when the token
//!   expires unrefreshed, 4408 when no token came within [`WsConfig::auth_timeout`].
//! - Upgrades from web pages are checked against [`WsConfig::allowed_origins`] (default: same
//!   origin), refused with HTTP 403 `origin_forbidden`.
//! - Memory per connection is bounded: small read and write buffers, a capped write buffer, at
//!   most one batch of shared, already-encoded events queued; unread events stay in the hub.

mod auth;
mod close;
mod config;
mod connection;
mod endpoint;
mod frame;
mod handshake;
mod origin;
mod outbox;
mod reopen;
mod woken;

pub use config::WsConfig;
pub use endpoint::router;
pub use origin::{AllowedOrigins, InvalidOrigin, Origin};
