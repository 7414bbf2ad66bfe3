//! Publishing over HTTP: `POST /v1/publish/{topic}` with a [`PublishBody`], answered with a
//! [`PublishedObject`] (also the fields of the WebSocket `published` frame).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Cursor;

/// The header that makes a publish idempotent: the same key on the same topic within the
/// server's window publishes nothing and answers the original event's numbers.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The header (`true`) on the answer to a publish whose idempotency key was seen before.
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";

/// The body of `POST /v1/publish/{topic}`: `{"event"?: "<type>", "data": <any JSON>}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishBody {
    /// The event type; `"message"` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The value to publish (`null` is a value).
    pub data: Box<RawValue>,
    /// The sender; only the application's own server (the admin key, or no auth) may name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// What the event is the newest value of, for readers that read latest value only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What a publish is answered with: the event's topic, `seq` and cursor; `replayed` when an
/// idempotency key was seen before and these are the original event's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedObject {
    /// The topic.
    pub topic: String,
    /// The event's `seq`.
    pub seq: u64,
    /// The event's cursor.
    pub id: Cursor,
    /// Nothing was published this time: the key was seen before (over HTTP the
    /// [`IDEMPOTENT_REPLAYED_HEADER`] says it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}
