//! HTTP vocabulary shared by pushgate's transports, and nothing else: how a subscribe request
//! names its topics and cursor, how hub errors become statuses with a JSON body, the JSON
//! of one event, which is identical on every transport, the limits the gateway and the
//! WebSocket transport both apply (the publish rate, the refusal counters), and the seam of
//! access control ([`Authorize`]): how a request's token is found and what a refusal looks like.
//!
//! Transport logic (when to answer, how to frame a stream) stays in the transport crates; what
//! two of them would otherwise write twice lives here.

mod answer;
mod auth;
mod error;
mod etag;
mod presence;
mod query;
mod rate;
mod refusal;
mod text;
mod wire;

pub use answer::{AnswerLimits, PollAnswer, PollRequest, answer_request};
pub use auth::{
    Action, AllowAll, AuthError, AuthRequest, Authorize, Check, ClientInfo, Cut, Cutoff, Grant, Switch,
    allow_all, token_from,
};
pub use error::{ApiError, ErrorCode, status_of};
pub use presence::{DEFAULT_POLL_INTERVAL, MAX_POLL_INTERVAL_SECS, presence_hold, wants_presence};
pub use query::{BatchLimit, DEFAULT_MAX_ANSWER_BYTES, Query, SubscribeParams};
pub use rate::{PublishAllowance, PublishRate, TokenBucket};
pub use refusal::{Refusal, Refusals};
pub use wire::{batch_body, event_json, presence_json, render_batch, reset_json, reset_object};
