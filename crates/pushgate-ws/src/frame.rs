//! The JSON messages of `/v1/ws`, without I/O: client frames (the protocol's, from
//! `pushgate_protocol::ws`) validated into [`ClientFrame`], and every server frame encoded.
//!
//! Every message is a JSON text frame with a `type`. A client frame that cannot be understood
//! becomes a [`BadFrame`], which the connection answers with an `error` frame and survives.

use std::sync::LazyLock;

use bytes::Bytes;
use pushgate_http::{ApiError, ErrorCode, event_json, reset_json};
use pushgate_hub::{Cursor, Data, EncodingSlot, Event, NewEvent, Published, Reset, TopicName};
use pushgate_protocol::PublishedObject;
use pushgate_protocol::ws::{
    self, AuthFrame, AuthedFrame, ClientFrame as WireFrame, ErrorFrame, FrameError, PingFrame, PongFrame,
    PublishFrame, SubscribeFrame, SubscribedFrame, UnsubscribeFrame,
};
use serde_json::Value;
use serde_json::value::RawValue;

/// The cache slot of this transport's event frame: encoded once per event, shared by every
/// WebSocket subscriber.
static EVENT_FRAME: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);

/// A client frame, validated.
#[derive(Debug)]
pub(crate) enum ClientFrame {
    /// Add `topics`; `cursor` overrides the connection's position; `presence` turns join and
    /// leave notices on or off; `latest` reads them latest value only.
    Subscribe { topics: Vec<TopicName>, cursor: Option<Cursor>, presence: Option<bool>, latest: bool },
    /// Remove `topics`.
    Unsubscribe { topics: Vec<TopicName> },
    /// Publish `event` to `topic`.
    Publish { topic: TopicName, event: NewEvent },
    /// Application-level ping; answered with a `pong` carrying the same `id`.
    Ping { id: Box<RawValue> },
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

/// Parses one text frame from the client.
pub(crate) fn parse(text: &str) -> Result<ClientFrame, BadFrame> {
    let frame = WireFrame::parse(text).map_err(|err| {
        let request = err.kind().map(str::to_owned);
        let message = match &err {
            // serde quotes the values it rejects, and a token is a secret: say what was wrong only.
            FrameError::Invalid { kind, .. } if kind == "auth" => {
                r#"an auth frame is {"type":"auth","token":"<string>"}"#.to_owned()
            }
            FrameError::UnknownType(kind) => format!(
                "unknown frame type {kind:?}, expected one of `subscribe`, `unsubscribe`, `publish`, `ping`, `auth`"
            ),
            other => other.to_string(),
        };
        BadFrame { request, error: ApiError::new(ErrorCode::InvalidJson, message) }
    })?;
    let request = frame.kind();
    validate(frame).map_err(|error| BadFrame { request: Some(request.to_owned()), error })
}

fn validate(frame: WireFrame) -> Result<ClientFrame, ApiError> {
    Ok(match frame {
        WireFrame::Subscribe(SubscribeFrame { topics, cursor, presence, latest }) => {
            let cursor = match cursor.as_deref() {
                None | Some("") => None,
                Some(text) => Some(text.parse::<Cursor>().map_err(|err| {
                    ApiError::new(ErrorCode::InvalidCursor, format!("{err} (got {text:?})"))
                })?),
            };
            ClientFrame::Subscribe { topics: topic_names(&topics)?, cursor, presence, latest }
        }
        WireFrame::Unsubscribe(UnsubscribeFrame { topics }) => {
            ClientFrame::Unsubscribe { topics: topic_names(&topics)? }
        }
        WireFrame::Publish(PublishFrame { topic, event, data, from, idempotency_key, key }) => {
            if from.is_some() {
                return Err(ApiError::new(
                    ErrorCode::InvalidJson,
                    "`from` is set by the server from the connection's credentials; a client cannot give it",
                ));
            }
            let data = data.ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidJson, "`data` is required (null is a value)")
            })?;
            // The data's own text, numbers and all: the frame parser kept it raw.
            let data = Data::from_json(data.get())
                .map_err(|err| ApiError::new(ErrorCode::InvalidJson, format!("`data`: {err}")))?;
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
        WireFrame::Ping(PingFrame { id }) => ClientFrame::Ping { id },
        WireFrame::Auth(AuthFrame { token }) => ClientFrame::Auth { token },
        _ => return Err(ApiError::new(ErrorCode::InvalidJson, "a frame this server does not read")),
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

/// `{"type":"event",…event object fields…}`, encoded once per event and shared.
pub(crate) fn event(event: &Event) -> Bytes {
    event.encoded(&EVENT_FRAME, |event| tagged("event", &event_json(event)))
}

/// `{"type":"presence","event":"join"|"leave",…}`: a join or leave notice
/// ([`presence_json`](pushgate_http::presence_json)).
pub(crate) fn presence(change: &pushgate_hub::PresenceChange) -> Bytes {
    tagged("presence", pushgate_http::presence_json(change).to_string().as_bytes())
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
    // The event and reset objects are written from strings, so they are UTF-8.
    Bytes::from(ws::tagged(kind, std::str::from_utf8(object).unwrap_or("{}")))
}

/// `{"type":"subscribed","topics":[…],"cursor":"…"}`.
pub(crate) fn subscribed<'a>(topics: impl Iterator<Item = &'a TopicName>, cursor: Cursor) -> Bytes {
    let topics = topics.map(|topic| topic.as_str().to_owned()).collect();
    to_bytes("subscribed", &SubscribedFrame { topics, cursor })
}

/// `{"type":"published","topic","seq","id"}`, the answer to a `publish` frame; with
/// `"replayed":true` when its `idempotency_key` was seen before and these are the original
/// event's numbers (nothing was published this time).
pub(crate) fn published(published: &Published) -> Bytes {
    to_bytes(
        "published",
        &PublishedObject {
            topic: published.topic().as_str().to_owned(),
            seq: published.seq(),
            id: published.cursor(),
            replayed: published.is_replay(),
        },
    )
}

/// `{"type":"error","error":{"code","message"},"request":<type or null>}`.
pub(crate) fn error(request: Option<&str>, error: &ApiError) -> Bytes {
    to_bytes("error", &ErrorFrame { error: error.to_object(), request: request.map(str::to_owned) })
}

/// `{"type":"pong","id":…}`, the answer to a `ping` frame.
pub(crate) fn pong(id: &RawValue) -> Bytes {
    to_bytes("pong", &PongFrame { id: id.to_owned() })
}

/// `{"type":"authed","expires":<unix seconds or null>}`, the answer to an `auth` frame.
pub(crate) fn authed(expires: Option<u64>) -> Bytes {
    to_bytes("authed", &AuthedFrame { expires })
}

fn to_bytes(kind: &str, frame: &impl serde::Serialize) -> Bytes {
    Bytes::from(ws::encode(kind, frame))
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
        assert_eq!(id.get(), r#"{"n":[1]}"#);
        let Ok(ClientFrame::Ping { id }) = parse(r#"{"type":"ping"}"#) else { panic!("ping") };
        assert_eq!(id.get(), "null");
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
        let id = RawValue::from_string("12345678901234567890.5".to_owned()).unwrap();
        assert_eq!(&pong(&id)[..], br#"{"type":"pong","id":12345678901234567890.5}"#);
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
