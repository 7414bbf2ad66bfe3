//! Properties of client-frame parsing over generated frames and arbitrary text, seeded with the
//! bad frames clients send (not JSON, no `type`, deep nesting, huge numbers, tokens where they
//! do not belong); a bounded number of cases runs in `cargo test` (`PROPTEST_CASES` for more).
//! RFC 6455 framing below the JSON (masking, fragments, control frames, sizes) is
//! tungstenite's, whose limits the connection sets.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// Frames clients have sent that must be answered with an `error` frame, not a panic.
const CORPUS: &[&str] = &[
    "",
    "{",
    "null",
    "[]",
    "\"subscribe\"",
    "{}",
    r#"{"type":1}"#,
    r#"{"type":"nope"}"#,
    r#"{"type":"subscribe"}"#,
    r#"{"type":"subscribe","topics":[]}"#,
    r#"{"type":"subscribe","topics":"a"}"#,
    r#"{"type":"subscribe","topics":["bad topic"]}"#,
    r#"{"type":"subscribe","topics":["a"],"cursor":"yesterday"}"#,
    r#"{"type":"subscribe","topics":["a"],"cursor":1}"#,
    r#"{"type":"publish","topic":"a"}"#,
    r#"{"type":"publish","topic":"a","event":5,"data":1}"#,
    r#"{"type":"publish","topic":"","data":1}"#,
    r#"{"type":"auth"}"#,
    r#"{"type":"auth","token":["secret-token"]}"#,
    r#"{"type":"ping","id":1e999999}"#,
    r#"{"type":"ping","id":123456789012345678901234567890}"#,
    "{\"type\":\"ping\",\"id\":\"\\ud800\"}",
    r#"{"type":"subscribe","type":"publish","topics":["a"]}"#,
];

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn topic() -> impl Strategy<Value = Value> {
    prop_oneof![4 => "[A-Za-z0-9_.:-]{1,12}".prop_map(Value::from), 1 => json_value()]
}

/// A frame of one of the five kinds, with fields that are mostly of the right shape.
fn frame() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(&["subscribe", "unsubscribe", "publish", "ping", "auth", "other"][..]);
    let cursor = prop_oneof![
        Just(None),
        Just(Some(json!("now"))),
        Just(Some(json!("oldest"))),
        "[0-9a-f]{8}-[0-9a-f]{1,4}".prop_map(|c| Some(Value::from(c))),
        json_value().prop_map(Some),
    ];
    (kind, prop::collection::vec(topic(), 0..4), cursor, json_value(), prop::option::of(json_value()))
        .prop_map(|(kind, topics, cursor, data, event)| {
            let mut frame = json!({ "type": kind });
            match kind {
                "subscribe" | "unsubscribe" => {
                    frame["topics"] = Value::from(topics);
                    if let Some(cursor) = cursor {
                        frame["cursor"] = cursor;
                    }
                }
                "publish" => {
                    frame["topic"] = topics.into_iter().next().unwrap_or(Value::Null);
                    frame["data"] = data;
                    if let Some(event) = event {
                        frame["event"] = event;
                    }
                }
                "ping" => frame["id"] = data,
                "auth" => frame["token"] = event.unwrap_or(Value::Null),
                _ => frame["data"] = data,
            }
            frame
        })
}

/// What a frame may be refused with.
const CODES: [&str; 4] = ["invalid_json", "invalid_topic", "invalid_cursor", "no_topics"];

fn check(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(ClientFrame::Subscribe { topics, .. } | ClientFrame::Unsubscribe { topics }) => {
            prop_assert!(!topics.is_empty());
        }
        Ok(_) => {}
        Err(bad) => {
            prop_assert!(CODES.contains(&bad.error.code().as_str()), "{:?}", bad);
            // The answer names the frame's type only when it had a string one. Frames whose other
            // fields a `Value` cannot hold (lone surrogates, numbers past f64) are read type
            // first, so their answer may name the type, which is then literally in the text.
            let value: Option<Value> = serde_json::from_str(text).ok();
            let kind = value.as_ref().and_then(|v| v.get("type")).and_then(Value::as_str);
            match (&value, bad.request.as_deref()) {
                (None, Some(request)) => prop_assert!(text.contains(&format!("\"{request}\"")), "{:?}", bad),
                _ => prop_assert_eq!(bad.request.as_deref(), kind),
            }
            // A token is never echoed.
            if kind == Some("auth") {
                prop_assert!(!bad.error.message().contains("secret"), "{:?}", bad);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

    /// Every text frame is understood or refused with a known code, never a panic.
    #[test]
    fn any_text_gets_a_frame_or_an_error(text in ".{0,64}") {
        check(&text)?;
    }

    /// Frames of the right shape are understood as what they say, wrong fields refused.
    #[test]
    fn generated_frames_are_understood_or_refused(frame in frame()) {
        let text = frame.to_string();
        check(&text)?;
        if let Ok(parsed) = parse(&text) {
            let kind = frame["type"].as_str().unwrap_or_default();
            // Data and ids as sent: their numbers are not read back through f64.
            let (data, id) = (frame["data"].to_string(), frame["id"].to_string());
            let matches = match parsed {
                ClientFrame::Subscribe { .. } => kind == "subscribe",
                ClientFrame::Unsubscribe { .. } => kind == "unsubscribe",
                ClientFrame::Publish { topic, event } => {
                    kind == "publish"
                        && frame["topic"] == topic.as_str()
                        && event.data().as_str() == data
                }
                ClientFrame::Ping { id: ping } => kind == "ping" && ping.get() == id,
                ClientFrame::Auth { token } => kind == "auth" && frame["token"] == token.as_str(),
            };
            prop_assert!(matches, "{} parsed as something else", text);
        }
    }
}

#[test]
fn the_corpus_is_refused_or_understood_without_a_panic() {
    for text in CORPUS {
        if let Err(error) = check(text) {
            panic!("{text}: {error}");
        }
    }
    // Nested deeper than serde_json follows: refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(bad_of(&deep), "invalid_json");
    let deep_data =
        format!(r#"{{"type":"publish","topic":"a","data":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
    assert_eq!(bad_of(&deep_data), "invalid_json");
}

fn bad_of(text: &str) -> &'static str {
    match parse(text) {
        Err(bad) => bad.error.code().as_str(),
        Ok(frame) => panic!("{text:.40} parsed as {frame:?}"),
    }
}
