//! The JSON messages of `/v1/ws`. Every message is a JSON text frame, an object with a `type`.
//!
//! Client → server: [`ClientFrame`] (`subscribe`, `unsubscribe`, `publish`, `ping`, `auth`).
//! Server → client: [`ServerFrame`] (`event`, `reset`, `subscribed`, `published`, `error`,
//! `pong`, `authed`).
//!
//! Frames are read in two steps, the `type` first and then the frame of that type, rather than
//! as one serde-tagged enum: serde buffers a tagged enum's fields, and buffered fields lose
//! [`RawValue`]'s exact JSON text, which event data must keep.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::{Cursor, ErrorObject, EventObject, PublishedObject, ResetObject};

/// `{"type":"subscribe","topics":[…],"cursor"?:"…","presence"?:true,"latest"?:true}`: add
/// topics; `cursor` overrides the connection's position; `presence` asks for the topics' join
/// and leave notices; `latest` reads them latest value only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeFrame {
    /// Topics to add.
    pub topics: Vec<String>,
    /// Where to continue from (cursor text); the connection's position when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Whether to receive the topics' join and leave notices (`presence` frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<bool>,
    /// Whether to read the frame's topics latest value only (`false`, in full, when absent).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub latest: bool,
}

/// `{"type":"unsubscribe","topics":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeFrame {
    /// Topics to remove.
    pub topics: Vec<String>,
}

/// `{"type":"publish","topic","event"?,"data","idempotency_key"?}`, answered with `published`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishFrame {
    /// The topic.
    pub topic: String,
    /// The event type; `"message"` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The value; required (an explicit `null` is a value, told apart from an absent field).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
    /// Refused by the server when present: it sets the sender itself.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub from: Option<Box<RawValue>>,
    /// The same key on the same topic within the idempotency window publishes nothing and is
    /// answered with the original event's numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// What the event is the newest value of, for readers that read latest value only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `{"type":"ping","id":…}`, answered with a `pong` carrying the same `id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingFrame {
    /// Any JSON value, kept as its text so the pong echoes it exactly; `null` when absent.
    #[serde(default = "null")]
    pub id: Box<RawValue>,
}

fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

/// `{"type":"auth","token":"…"}`: authenticate, or replace the token before it expires.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFrame {
    /// The token.
    pub token: String,
}

impl std::fmt::Debug for AuthFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token is a secret: logs of frames must not hold it.
        f.debug_struct("AuthFrame").finish_non_exhaustive()
    }
}

/// Tells an explicit `null` (a value) from an absent field.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

/// A frame from client to server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientFrame {
    /// `subscribe`.
    Subscribe(SubscribeFrame),
    /// `unsubscribe`.
    Unsubscribe(UnsubscribeFrame),
    /// `publish`.
    Publish(PublishFrame),
    /// `ping`.
    Ping(PingFrame),
    /// `auth`.
    Auth(AuthFrame),
}

/// Why a text frame is not a frame this version reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The text is not JSON.
    #[error("frame is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The JSON is not an object with a string `type`.
    #[error("a frame is a JSON object with a string `type`")]
    NoType,
    /// The `type` is not one this version knows.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// The frame of a known `type` does not have that type's fields.
    #[error("{error}")]
    Invalid {
        /// The frame's `type`.
        kind: String,
        /// What serde found wrong.
        error: serde_json::Error,
    },
}

impl FrameError {
    /// The frame's `type`, when it had one.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::UnknownType(kind) | Self::Invalid { kind, .. } => Some(kind),
            Self::NotJson(_) | Self::NoType => None,
        }
    }
}

/// The `type` of a frame, read alone. A repeated member counts as its last value, as in a
/// [`serde_json::Map`].
fn frame_kind(text: &str) -> Result<String, FrameError> {
    serde_json::from_str::<IgnoredAny>(text).map_err(FrameError::NotJson)?;
    let members: BTreeMap<String, &RawValue> = serde_json::from_str(text).map_err(|_| FrameError::NoType)?;
    let kind = members.get("type").ok_or(FrameError::NoType)?;
    serde_json::from_str::<String>(kind.get()).map_err(|_| FrameError::NoType)
}

fn frame_of<'a, T: Deserialize<'a>>(kind: &str, text: &'a str) -> Result<T, FrameError> {
    serde_json::from_str(text).map_err(|error| FrameError::Invalid { kind: kind.to_owned(), error })
}

impl ClientFrame {
    /// Reads one text frame. Unknown fields are ignored, so clients may send more than this
    /// version reads.
    ///
    /// ```
    /// use pushgate_protocol::ws::ClientFrame;
    ///
    /// let ClientFrame::Publish(publish) = ClientFrame::parse(r#"{"type":"publish","topic":"t","data":1.50}"#)? else {
    ///     panic!("a publish frame")
    /// };
    /// assert_eq!(publish.data.map(|data| data.get().to_owned()).as_deref(), Some("1.50"));
    /// # Ok::<(), pushgate_protocol::ws::FrameError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let kind = frame_kind(text)?;
        Ok(match kind.as_str() {
            "subscribe" => Self::Subscribe(frame_of(&kind, text)?),
            "unsubscribe" => Self::Unsubscribe(frame_of(&kind, text)?),
            "publish" => Self::Publish(frame_of(&kind, text)?),
            "ping" => Self::Ping(frame_of(&kind, text)?),
            "auth" => Self::Auth(frame_of(&kind, text)?),
            _ => return Err(FrameError::UnknownType(kind)),
        })
    }

    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Subscribe(_) => "subscribe",
            Self::Unsubscribe(_) => "unsubscribe",
            Self::Publish(_) => "publish",
            Self::Ping(_) => "ping",
            Self::Auth(_) => "auth",
        }
    }

    /// The frame's JSON text.
    ///
    /// ```
    /// use pushgate_protocol::ws::{ClientFrame, SubscribeFrame};
    ///
    /// let frame = ClientFrame::Subscribe(SubscribeFrame { topics: vec!["t".into()], cursor: None, presence: None, latest: false });
    /// assert_eq!(frame.to_json(), r#"{"type":"subscribe","topics":["t"]}"#);
    /// ```
    pub fn to_json(&self) -> String {
        let kind = self.kind();
        match self {
            Self::Subscribe(frame) => encode(kind, frame),
            Self::Unsubscribe(frame) => encode(kind, frame),
            Self::Publish(frame) => encode(kind, frame),
            Self::Ping(frame) => encode(kind, frame),
            Self::Auth(frame) => encode(kind, frame),
        }
    }
}

/// `{"type":"subscribed","topics":[…],"cursor":"…"}`: the connection's topics now, and its cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedFrame {
    /// Every topic the connection is subscribed to.
    pub topics: Vec<String>,
    /// The connection's position.
    pub cursor: Cursor,
}

/// `{"type":"error","error":{"code","message"},"request":<type or null>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// What went wrong.
    pub error: ErrorObject,
    /// The `type` of the client frame it answers; `null` when unknown or none.
    pub request: Option<String>,
}

/// `{"type":"pong","id":…}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PongFrame {
    /// The ping's `id`, as sent.
    pub id: Box<RawValue>,
}

impl PartialEq for PongFrame {
    fn eq(&self, other: &Self) -> bool {
        self.id.get() == other.id.get()
    }
}

/// `{"type":"authed","expires":<unix seconds or null>}`, the answer to an `auth` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthedFrame {
    /// When the token expires, in seconds since the Unix epoch.
    pub expires: Option<u64>,
}

/// A frame from server to client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerFrame {
    /// `event`: the event object's fields.
    Event(EventObject),
    /// `reset`: the reset object's fields.
    Reset(ResetObject),
    /// `subscribed`.
    Subscribed(SubscribedFrame),
    /// `published`: the answer to a `publish`.
    Published(PublishedObject),
    /// `error`.
    Error(ErrorFrame),
    /// `pong`.
    Pong(PongFrame),
    /// `authed`.
    Authed(AuthedFrame),
    /// A `type` this version does not know (a newer server's); clients skip it.
    Other(String),
}

impl ServerFrame {
    /// Reads one text frame from the server.
    ///
    /// ```
    /// use pushgate_protocol::ws::ServerFrame;
    ///
    /// let frame = ServerFrame::parse(r#"{"type":"authed","expires":null}"#)?;
    /// assert!(matches!(frame, ServerFrame::Authed(authed) if authed.expires.is_none()));
    /// # Ok::<(), pushgate_protocol::ws::FrameError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let kind = frame_kind(text)?;
        Ok(match kind.as_str() {
            "event" => Self::Event(frame_of(&kind, text)?),
            "reset" => Self::Reset(frame_of(&kind, text)?),
            "subscribed" => Self::Subscribed(frame_of(&kind, text)?),
            "published" => Self::Published(frame_of(&kind, text)?),
            "error" => Self::Error(frame_of(&kind, text)?),
            "pong" => Self::Pong(frame_of(&kind, text)?),
            "authed" => Self::Authed(frame_of(&kind, text)?),
            _ => Self::Other(kind),
        })
    }
}

/// The close codes of the server's own reasons (RFC 6455's private range), besides the standard
/// 1000 (normal), 1001 (going away: shutting down, ping timeout), 1002, 1007, 1009 and 1011.
pub mod close {
    /// The connection's backlog overflowed: reconnect with the last cursor.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The connection's token expired and was not refreshed: reconnect with a fresh token.
    pub const TOKEN_EXPIRED: u16 = 4401;
    /// Auth is required and no `auth` frame came within the auth timeout.
    pub const AUTH_TIMEOUT: u16 = 4408;
    /// The application's server disconnected the connection (server API): do not reconnect.
    pub const DISCONNECTED: u16 = 4410;
    /// The user's tokens were revoked (server API): reconnect only with a fresh token.
    pub const TOKEN_REVOKED: u16 = 4411;
}

/// `{"type":"<kind>",…the fields of frame…}`: how every frame is written.
pub fn encode(kind: &str, frame: &impl Serialize) -> String {
    // These structs hold strings, numbers and JSON values only: serializing cannot fail, and
    // an empty object is the harmless answer if it ever did.
    let object = serde_json::to_string(frame).unwrap_or_else(|_| "{}".to_owned());
    tagged(kind, &object)
}

/// Puts `"type":"<kind>"` in front of the fields of the JSON object text `object`.
///
/// ```
/// assert_eq!(pushgate_protocol::ws::tagged("pong", r#"{"id":1}"#), r#"{"type":"pong","id":1}"#);
/// assert_eq!(pushgate_protocol::ws::tagged("x", "{}"), r#"{"type":"x"}"#);
/// ```
pub fn tagged(kind: &str, object: &str) -> String {
    let fields = object.strip_prefix('{').unwrap_or(object);
    let mut out = String::with_capacity(12 + kind.len() + fields.len());
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push('"');
    // An empty object (`{}`) has no fields to separate from.
    if fields != "}" {
        out.push(',');
    }
    out.push_str(fields);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_read_back_what_they_write() {
        for text in [
            r#"{"type":"subscribe","topics":["a","b"],"cursor":"oldest"}"#,
            r#"{"type":"unsubscribe","topics":["a"]}"#,
            r#"{"type":"publish","topic":"a","event":"e","data":{"n":1e-400},"idempotency_key":"k"}"#,
            r#"{"type":"publish","topic":"a","data":null}"#,
            r#"{"type":"ping","id":"x"}"#,
            r#"{"type":"auth","token":"secret"}"#,
        ] {
            let frame = ClientFrame::parse(text).expect(text);
            assert_eq!(frame.to_json(), text);
        }
        let ClientFrame::Publish(absent) =
            ClientFrame::parse(r#"{"type":"publish","topic":"a"}"#).expect("parses")
        else {
            panic!("publish")
        };
        assert!(absent.data.is_none(), "an absent `data` is not a null one");
        assert!(
            !format!("{:?}", ClientFrame::parse(r#"{"type":"auth","token":"secret"}"#).expect("auth"))
                .contains("secret")
        );
    }

    #[test]
    fn frames_that_are_not_frames_say_why() {
        assert!(matches!(ClientFrame::parse("{"), Err(FrameError::NotJson(_))));
        for text in ["[\"subscribe\"]", "null", r#"{"type":1}"#, "{}", r#"{"type":"a","type":2}"#] {
            assert!(matches!(ClientFrame::parse(text), Err(FrameError::NoType)), "{text}");
        }
        assert!(
            matches!(ClientFrame::parse(r#"{"type":"nope"}"#), Err(FrameError::UnknownType(kind)) if kind == "nope")
        );
        let invalid = ClientFrame::parse(r#"{"type":"subscribe"}"#).expect_err("no topics");
        assert_eq!(invalid.kind(), Some("subscribe"));
    }

    #[test]
    fn server_frames_read_back_what_they_write() {
        let subscribed = SubscribedFrame { topics: vec!["a".into()], cursor: Cursor::Oldest };
        assert_eq!(
            ServerFrame::parse(&encode("subscribed", &subscribed)).expect("parses"),
            ServerFrame::Subscribed(subscribed)
        );
        let error = ErrorFrame { error: ErrorObject::new(crate::ErrorCode::NoTopics, "m"), request: None };
        assert_eq!(ServerFrame::parse(&encode("error", &error)).expect("parses"), ServerFrame::Error(error));
        assert_eq!(
            ServerFrame::parse(r#"{"type":"new","x":1}"#).expect("parses"),
            ServerFrame::Other("new".into())
        );
    }
}
