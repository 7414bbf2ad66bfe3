//! HTTP vocabulary shared by pushgate's transports, and nothing else: how a subscribe request
//! names its topics and cursor, how hub errors become statuses with a JSON body, and the JSON
//! of one event, which is identical on every transport.
//!
//! Transport logic (when to answer, how to frame a stream) stays in the transport crates; what
//! two of them would otherwise write twice lives here.

mod answer;
mod error;
mod etag;
mod query;
mod text;
mod wire;

pub use answer::{AnswerLimits, PollRequest};
pub use error::{ApiError, ErrorCode};
pub use query::{BatchLimit, DEFAULT_MAX_ANSWER_BYTES, Query, SubscribeParams};
pub use wire::{batch_body, event_json, render_batch, reset_json};
