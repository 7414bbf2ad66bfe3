//! The JSON messages of `/v1/ws`, without I/O: client frames parsed into [`ClientFrame`], and
//! every server frame encoded.
//!
//! Every message is a JSON text frame with a `type`. A client frame that cannot be understood
//! becomes a [`BadFrame`], which the connection answers with an `error` frame and survives.

use std::sync::LazyLock;

use bytes::{BufMut, Bytes, BytesMut};
use pushgate_http::{ApiError, ErrorCode, event_json, reset_json};
use pushgate_hub::{Cursor, EncodingSlot, Event, NewEvent, Published, Reset, TopicName};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The cache slot of this transport's event frame: encoded once per event, shared by every
/// WebSocket subscriber.
static EVENT_FRAME: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);

/// A client frame, validated.
#[derive(Debug)]
pub(crate) enum ClientFrame {
    /// Add `topics`; `cursor` overrides the connection's position; `latest` reads them latest
    /// value only.
    Subscribe { topics: Vec<TopicName>, cursor: Option<Cursor>, latest: bool },
    /// Remove `topics`.
    Unsubscribe { topics: Vec<TopicName> },
    /// Publish `event` to `topic`.
    Publish { topic: TopicName, event: NewEvent },
    /// Application-level ping; answered with a `pong` carrying the same `id`.
    Ping { id: Value },
    /// Authenticate, or replace the token before it expires.
    Auth { token: String },
}

/// A client frame that could not be understood: the `error` frame's contents.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadFrame {
    /// The offending frame's `type`, when it had one.
    pub(crate) request: Option<String>,
    /// What was wrong.
    pub(crate) error: ApiError,
}

/// The wire shape of client frames, before topics and cursors are validated. Unknown fields
/// are ignored so that clients may send more than this version reads.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawFrame {
    Subscribe {
        topics: Vec<String>,
        #[serde(default)]
        cursor: Option<String>,
        #[serde(default)]
        latest: bool,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
    Publish {
        topic: String,
        #[serde(default)]
        event: Option<String>,
        #[serde(default, deserialize_with = "present")]
        data: Option<Value>,
        /// Refused when present: the server sets the sender.
        #[serde(default, deserialize_with = "present")]
        from: Option<Value>,
        /// The same key on the same topic within the idempotency window publishes nothing and
        /// answers the original event's numbers.
        #[serde(default)]
        idempotency_key: Option<String>,
        /// What the event is the newest value of, for latest-only readers.
        #[serde(default)]
        key: Option<String>,
    },
    Ping {
        #[serde(default)]
        id: Value,
    },
    Auth {
        token: String,
    },
}

/// Tells an explicit `null` (a value to publish) from an absent field.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Parses one text frame from the client.
pub(crate) fn parse(text: &str) -> Result<ClientFrame, BadFrame> {
    let value: Value = serde_json::from_str(text)
        .map_err(|err| bad(None, ErrorCode::InvalidJson, format!("frame is not JSON: {err}")))?;
    let request = match value.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => {
            return Err(bad(
                None,
                ErrorCode::InvalidJson,
                "a frame is a JSON object with a string `type`".to_owned(),
            ));
        }
    };
    let raw = RawFrame::deserialize(value).map_err(|err| {
        // serde quotes the values it rejects, and a token is a secret: say what was wrong only.
        let message = if request == "auth" {
            r#"an auth frame is {"type":"auth","token":"<string>"}"#.to_owned()
        } else {
            err.to_string()
        };
        bad(Some(&request), ErrorCode::InvalidJson, message)
    })?;
    validate(raw).map_err(|error| BadFrame { request: Some(request), error })
}

fn validate(raw: RawFrame) -> Result<ClientFrame, ApiError> {
    Ok(match raw {
        RawFrame::Subscribe { topics, cursor, latest } => {
            let cursor = match cursor.as_deref() {
                None | Some("") => None,
                Some(text) => Some(text.parse::<Cursor>().map_err(|err| {
                    ApiError::new(ErrorCode::InvalidCursor, format!("{err} (got {text:?})"))
                })?),
            };
            ClientFrame::Subscribe { topics: topic_names(&topics)?, cursor, latest }
        }
        RawFrame::Unsubscribe { topics } => ClientFrame::Unsubscribe { topics: topic_names(&topics)? },
        RawFrame::Publish { topic, event, data, from, idempotency_key, key } => {
            if from.is_some() {
                return Err(ApiError::new(
                    ErrorCode::InvalidJson,
                    "`from` is set by the server from the connection's credentials; a client cannot give it",
                ));
            }
            let data = data.ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidJson, "`data` is required (null is a value)")
            })?;
            let mut new = NewEvent::new(data);
            if let Some(event_type) = event {
                new = new.event_type(event_type);
            }
            if let Some(key) = idempotency_key {
                new = new.idempotency_key(key);
            }
            if let Some(key) = key {
                new = new.latest_key(key);
            }
            ClientFrame::Publish { topic: topic_name(&topic)?, event: new }
        }
        RawFrame::Ping { id } => ClientFrame::Ping { id },
        RawFrame::Auth { token } => ClientFrame::Auth { token },
    })
}

fn topic_names(names: &[String]) -> Result<Vec<TopicName>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::new(ErrorCode::NoTopics, "`topics` names no topic"));
    }
    names.iter().map(|name| topic_name(name)).collect()
}

fn topic_name(name: &str) -> Result<TopicName, ApiError> {
    TopicName::new(name)
        .map_err(|err| ApiError::new(ErrorCode::InvalidTopic, format!("topic {name:?}: {err}")))
}

fn bad(request: Option<&str>, code: ErrorCode, message: String) -> BadFrame {
    BadFrame { request: request.map(str::to_owned), error: ApiError::new(code, message) }
}

/// `{"type":"event",…event object fields…}`, encoded once per event and shared.
pub(crate) fn event(event: &Event) -> Bytes {
    event.encoded(&EVENT_FRAME, |event| tagged("event", &event_json(event)))
}

/// `{"type":"reset",…reset object fields…}`.
pub(crate) fn reset(reset: &Reset) -> Bytes {
    tagged("reset", reset_json(reset).to_string().as_bytes())
}

/// Reset frames for resets read from several starting points: one frame per reason, with the
/// topics of all resets of that reason (each topic appears in one reset only).
pub(crate) fn resets(resets: &[Reset]) -> Vec<Bytes> {
    let mut merged: Vec<Value> = Vec::new();
    for reset in resets {
        let value = reset_json(reset);
        match merged.iter_mut().find(|m| m["reason"] == value["reason"]) {
            Some(into) => {
                if let (Some(topics), Some(more)) =
                    (into["topics"].as_array_mut(), value["topics"].as_array())
                {
                    topics.extend(more.iter().cloned());
                }
            }
            None => merged.push(value),
        }
    }
    merged.iter().map(|value| tagged("reset", value.to_string().as_bytes())).collect()
}

/// Puts `"type":"<kind>"` in front of the fields of the JSON object `object`.
fn tagged(kind: &str, object: &[u8]) -> Bytes {
    let fields = object.strip_prefix(b"{").unwrap_or(object);
    let mut out = BytesMut::with_capacity(12 + kind.len() + fields.len());
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\"");
    // An empty object (`{}`) has no fields to separate from.
    if fields != b"}" {
        out.put_u8(b',');
    }
    out.put_slice(fields);
    out.freeze()
}

#[derive(Serialize)]
struct Subscribed<'a> {
    r#type: &'static str,
    topics: Vec<&'a str>,
    cursor: String,
}

/// `{"type":"subscribed","topics":[…],"cursor":"…"}`.
pub(crate) fn subscribed<'a>(topics: impl Iterator<Item = &'a TopicName>, cursor: Cursor) -> Bytes {
    let topics = topics.map(TopicName::as_str).collect();
    to_bytes(&Subscribed { r#type: "subscribed", topics, cursor: cursor.to_string() })
}

#[derive(Serialize)]
struct PublishedFrame<'a> {
    r#type: &'static str,
    topic: &'a str,
    seq: u64,
    id: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replayed: bool,
}

/// `{"type":"published","topic","seq","id"}`, the answer to a `publish` frame; with
/// `"replayed":true` when its `idempotency_key` was seen before and these are the original
/// event's numbers (nothing was published this time).
pub(crate) fn published(published: &Published) -> Bytes {
    to_bytes(&PublishedFrame {
        r#type: "published",
        topic: published.topic().as_str(),
        seq: published.seq(),
        id: published.cursor().to_string(),
        replayed: published.is_replay(),
    })
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    r#type: &'static str,
    error: Value,
    request: Option<&'a str>,
}

/// `{"type":"error","error":{"code","message"},"request":<type or null>}`.
pub(crate) fn error(request: Option<&str>, error: &ApiError) -> Bytes {
    to_bytes(&ErrorFrame { r#type: "error", error: error.to_value(), request })
}

#[derive(Serialize)]
struct Pong<'a> {
    r#type: &'static str,
    id: &'a Value,
}

/// `{"type":"pong","id":…}`, the answer to a `ping` frame.
pub(crate) fn pong(id: &Value) -> Bytes {
    to_bytes(&Pong { r#type: "pong", id })
}

#[derive(Serialize)]
struct Authed {
    r#type: &'static str,
    expires: Option<u64>,
}

/// `{"type":"authed","expires":<unix seconds or null>}`, the answer to an `auth` frame.
pub(crate) fn authed(expires: Option<u64>) -> Bytes {
    to_bytes(&Authed { r#type: "authed", expires })
}

fn to_bytes(frame: &impl Serialize) -> Bytes {
    // These structs hold strings, numbers and JSON values only: serializing cannot fail, and
    // an empty object is the harmless answer if it ever did.
    serde_json::to_vec(frame).map(Bytes::from).unwrap_or_else(|_| Bytes::from_static(b"{}"))
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_hub::{Hub, NewEvent};
    use serde_json::json;

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn bad_frame(text: &str) -> BadFrame {
        match parse(text) {
            Err(bad) => bad,
            Ok(frame) => panic!("{text} parsed as {frame:?}"),
        }
    }

    #[test]
    fn a_client_cannot_name_the_sender_of_what_it_publishes() {
        let bad = parse(r#"{"type":"publish","topic":"t","data":1,"from":"admin"}"#).unwrap_err();
        assert_eq!((bad.request.as_deref(), bad.error.code()), (Some("publish"), ErrorCode::InvalidJson));
        assert!(bad.error.message().contains("`from`"));
    }

    #[test]
    fn parses_each_client_frame() {
        let Ok(ClientFrame::Subscribe { topics, cursor, .. }) =
            parse(r#"{"type":"subscribe","topics":["a","b"],"cursor":"oldest","extra":1}"#)
        else {
            panic!("subscribe")
        };
        assert_eq!(topics.iter().map(TopicName::as_str).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(cursor, Some(Cursor::Oldest));

        let Ok(ClientFrame::Subscribe { cursor: None, .. }) = parse(r#"{"type":"subscribe","topics":["a"]}"#)
        else {
            panic!("subscribe without cursor")
        };
        let Ok(ClientFrame::Unsubscribe { topics }) = parse(r#"{"type":"unsubscribe","topics":["a"]}"#)
        else {
            panic!("unsubscribe")
        };
        assert_eq!(topics.len(), 1);

        let Ok(ClientFrame::Publish { topic, event }) =
            parse(r#"{"type":"publish","topic":"t","event":"tick","data":{"n":1}}"#)
        else {
            panic!("publish")
        };
        assert_eq!((topic.as_str(), event.type_name(), event.data().as_str()), ("t", "tick", r#"{"n":1}"#));

        let Ok(ClientFrame::Publish { event, .. }) = parse(r#"{"type":"publish","topic":"t","data":null}"#)
        else {
            panic!("publish null")
        };
        assert_eq!((event.type_name(), event.data().as_str()), ("message", "null"));

        let Ok(ClientFrame::Ping { id }) = parse(r#"{"type":"ping","id":{"n":[1]}}"#) else { panic!("ping") };
        assert_eq!(id, json!({"n": [1]}));
        let Ok(ClientFrame::Ping { id: Value::Null }) = parse(r#"{"type":"ping"}"#) else { panic!("ping") };
        let Ok(ClientFrame::Auth { token }) = parse(r#"{"type":"auth","token":"t.o.k"}"#) else {
            panic!("auth")
        };
        assert_eq!(token, "t.o.k");
        assert_eq!(&authed(Some(7))[..], br#"{"type":"authed","expires":7}"#);
        // A rejected token is not quoted back.
        let bad = bad_frame(r#"{"type":"auth","token":12345678}"#);
        assert!(!bad.error.message().contains("12345678"), "{}", bad.error.message());
    }

    #[test]
    fn bad_frames_name_the_request_and_the_code() {
        let cases = [
            ("not json", None, ErrorCode::InvalidJson),
            ("[1,2]", None, ErrorCode::InvalidJson),
            (r#"{"topics":["a"]}"#, None, ErrorCode::InvalidJson),
            (r#"{"type":7}"#, None, ErrorCode::InvalidJson),
            (r#"{"type":"shout"}"#, Some("shout"), ErrorCode::InvalidJson),
            (r#"{"type":"subscribe"}"#, Some("subscribe"), ErrorCode::InvalidJson),
            (r#"{"type":"subscribe","topics":"a"}"#, Some("subscribe"), ErrorCode::InvalidJson),
            (r#"{"type":"subscribe","topics":[]}"#, Some("subscribe"), ErrorCode::NoTopics),
            (r#"{"type":"subscribe","topics":["a b"]}"#, Some("subscribe"), ErrorCode::InvalidTopic),
            (
                r#"{"type":"subscribe","topics":["a"],"cursor":"x"}"#,
                Some("subscribe"),
                ErrorCode::InvalidCursor,
            ),
            (r#"{"type":"unsubscribe","topics":["é"]}"#, Some("unsubscribe"), ErrorCode::InvalidTopic),
            (r#"{"type":"publish","topic":"t"}"#, Some("publish"), ErrorCode::InvalidJson),
            (r#"{"type":"publish","topic":"","data":1}"#, Some("publish"), ErrorCode::InvalidTopic),
        ];
        for (text, request, code) in cases {
            let bad = bad_frame(text);
            assert_eq!((bad.request.as_deref(), bad.error.code()), (request, code), "{text}");
        }
    }

    #[tokio::test]
    async fn an_event_frame_is_the_event_object_with_a_type_in_front_encoded_once() {
        let hub = Hub::new();
        let topic = TopicName::new("chat").unwrap();
        let published = hub.publish(&topic, NewEvent::new(json!({"text": "hi"}))).await.unwrap();
        let frame = event(&published);
        assert!(frame.starts_with(br#"{"type":"event","topic":"chat","seq":1,"#));
        let mut expected = json_of(&event_json(&published));
        expected["type"] = json!("event");
        assert_eq!(json_of(&frame), expected);
        // Shared, not re-encoded: the same buffer comes back.
        assert_eq!(event(&published).as_ptr(), frame.as_ptr());
    }

    #[test]
    fn tagging_handles_empty_objects() {
        assert_eq!(&tagged("x", b"{}")[..], br#"{"type":"x"}"#);
        assert_eq!(&tagged("x", br#"{"a":1}"#)[..], br#"{"type":"x","a":1}"#);
    }

    #[test]
    fn reply_frames() {
        let a = TopicName::new("a").unwrap();
        assert_eq!(
            json_of(&subscribed([&a].into_iter(), Cursor::Now)),
            json!({"type": "subscribed", "topics": ["a"], "cursor": "now"})
        );
        assert_eq!(
            &subscribed(std::iter::empty(), Cursor::Oldest)[..],
            br#"{"type":"subscribed","topics":[],"cursor":"oldest"}"#
        );
        assert_eq!(&pong(&json!(7))[..], br#"{"type":"pong","id":7}"#);
        let err = ApiError::new(ErrorCode::InvalidTopic, "no");
        assert_eq!(
            &error(Some("subscribe"), &err)[..],
            br#"{"type":"error","error":{"code":"invalid_topic","message":"no"},"request":"subscribe"}"#
        );
        assert_eq!(json_of(&error(None, &err))["request"], Value::Null);
    }

    #[tokio::test]
    async fn published_and_reset_frames() {
        let hub =
            pushgate_hub::Hub::builder().history(pushgate_hub::HistoryLimit::default().max_events(1)).build();
        let topic = TopicName::new("t").unwrap();
        let mut first = None;
        for n in 0..3 {
            let event =
                hub.publish(&topic, NewEvent::new(json!(n)).idempotency_key(format!("k{n}"))).await.unwrap();
            first.get_or_insert(event);
        }
        let first = first.unwrap();
        let answer = Published::New(first.clone());
        assert_eq!(
            json_of(&published(&answer)),
            json!({"type": "published", "topic": "t", "seq": 1, "id": first.cursor().to_string()})
        );
        // The same key again: the original numbers, marked as a replay.
        let again =
            hub.publish_idempotent(&topic, NewEvent::new(json!(0)).idempotency_key("k0")).await.unwrap();
        assert_eq!(
            json_of(&published(&again)),
            json!({"type": "published", "topic": "t", "seq": 1, "id": first.cursor().to_string(), "replayed": true})
        );
        let batch =
            hub.fetch(&[topic], first.cursor(), &pushgate_hub::FetchOptions::default()).await.unwrap();
        let stale = batch.reset.expect("a reset");
        let frame = reset(&stale);
        assert!(frame.starts_with(br#"{"type":"reset","reason":"expired","#));
        let mut expected = reset_json(&stale);
        expected["type"] = json!("reset");
        assert_eq!(json_of(&frame), expected);

        // Resets of one reason from reads of other topics become one frame.
        let other = TopicName::new("u").unwrap();
        for n in 0..3 {
            hub.publish(&other, NewEvent::new(json!(n))).await.unwrap();
        }
        let more = hub.fetch(&[other], first.cursor(), &pushgate_hub::FetchOptions::default()).await.unwrap();
        let frames = resets(&[stale.clone(), more.reset.unwrap()]);
        assert_eq!(frames.len(), 1);
        let merged = json_of(&frames[0]);
        assert_eq!(merged["reason"], "expired");
        let topics: Vec<_> =
            merged["topics"].as_array().unwrap().iter().map(|t| t["topic"].clone()).collect();
        assert_eq!(topics, [json!("t"), json!("u")]);
        assert_eq!(resets(&[stale.clone()]), [frame]);
    }
}
