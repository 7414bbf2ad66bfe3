//! The answer of the polling transports (`GET /v1/poll`, `GET /v1/longpoll`):
//! `{"events":[…],"cursor":"…"}`, plus `"reset":{…}` when there is one.

use serde::{Deserialize, Serialize};

use crate::{Cursor, EventObject, ResetObject};

/// A poll answer as a client reads it. Poll again with `cursor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollBody {
    /// The events after the request's cursor, in order.
    pub events: Vec<EventObject>,
    /// Where the next poll starts.
    pub cursor: Cursor,
    /// Present when events were missed before these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetObject>,
}
