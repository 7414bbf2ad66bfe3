//! pushgate's wire vocabulary, with no HTTP framework in it: what travels between a pushgate
//! gateway and its clients, defined once for the gateway, its transports and the clients.
//!
//! - [`EventObject`] and [`write_event_object`]: the event object every transport carries;
//! - [`ResetObject`]: what a reader is told when events were missed;
//! - [`ErrorCode`], [`ErrorObject`], [`ErrorBody`]: error answers, their stable codes and the
//!   HTTP status of each (as a number);
//! - [`Cursor`] and [`Epoch`]: where a reader stands, and the cursor's text form;
//! - [`params`]: the subscribe query (topics, cursor, token) and its precedence rules;
//! - [`PollBody`]: the answer of the polling transports;
//! - [`PublishBody`], [`PublishedObject`]: publishing over HTTP;
//! - [`ws`]: the WebSocket frames, client → server and server → client;
//! - [`sse`]: the SSE event names beside the events' own types.
//!
//! The crate depends on serde and serde_json only (with `raw_value`, never
//! `arbitrary_precision`): event data stays the JSON text the publisher sent, whatever the host
//! program's features. docs/protocol.md describes the same wire for people.

mod cursor;
mod error;
mod event;
pub mod params;
mod poll;
mod publish;
mod reset;
pub mod ws;

pub use cursor::{Cursor, CursorError, Epoch};
pub use error::{ErrorBody, ErrorCode, ErrorObject, UnknownErrorCode};
pub use event::{EventObject, EventParts, write_event_object};
pub use poll::PollBody;
pub use publish::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, PublishBody, PublishedObject};
pub use reset::{Missed, ResetObject, ResetReason, ResetTopic};

/// The SSE stream (`GET /v1/sse`): each event is a frame `id: <cursor>`, `event: <its type>`,
/// `data: <event object>`; besides events, the server sends these.
pub mod sse {
    /// `event: reset`, `id: <cursor to resume from>`, `data: <reset object>`.
    pub const RESET: &str = "reset";
    /// `event: error`, `data: <error object>`: the last frame of a stream the server ends.
    pub const ERROR: &str = "error";
}
