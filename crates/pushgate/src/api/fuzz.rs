//! Properties of publish-body parsing over generated bodies and arbitrary bytes, seeded with the
//! bad bodies clients send; a bounded number of cases runs in `cargo test` (`PROPTEST_CASES`
//! for more). The hub judges the event type and the data's size afterwards.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

/// Bodies that must be refused with `400 invalid_json`, not a panic.
const CORPUS: &[&[u8]] = &[
    b"",
    b"\xef\xbb\xbf{\"data\":1}",
    b"{\"data\":1}x",
    b"{\"data\":1",
    b"{\"data\":\"\\ud800\"}",
    b"{\"data\":\"\xff\"}",
    b"{\"data\":1,\"data\":2,\"x\":3}",
    b"{\"event\":null,\"data\":1}",
    b"{\"event\":[\"a\"],\"data\":1}",
    b"{\"Data\":1}",
    b"[{\"data\":1}]",
    b"\"data\"",
    b"null",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
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

/// An object with some of `data`, `event` and other members.
fn body() -> impl Strategy<Value = Map<String, Value>> {
    let member = prop_oneof![
        4 => Just("data".to_owned()),
        3 => Just("event".to_owned()),
        1 => prop::sample::select(&["evnet", "Data", "type", ""][..]).prop_map(str::to_owned),
    ];
    let event = prop_oneof![3 => "[a-z.]{1,8}".prop_map(Value::from), 1 => json_value()];
    prop::collection::vec((member, json_value(), event), 0..4).prop_map(|members| {
        members
            .into_iter()
            .map(|(name, value, event)| {
                let value = if name == "event" { event } else { value };
                (name, value)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

    /// Any bytes: an event or `invalid_json`, never a panic.
    #[test]
    fn any_body_is_an_event_or_invalid_json(body in prop::collection::vec(any::<u8>(), 0..128)) {
        if let Err(error) = parse_publish(&body, false) {
            prop_assert_eq!(error.code(), ErrorCode::InvalidJson);
        }
    }

    /// An object is accepted exactly when it has `data`, a string `event` or none, and nothing
    /// else; the event then carries both unchanged.
    #[test]
    fn an_object_is_accepted_exactly_when_it_is_a_publish(members in body()) {
        let text = Value::Object(members.clone()).to_string();
        let event_ok = members.get("event").is_none_or(Value::is_string);
        let valid = members.contains_key("data") && event_ok && members.keys().all(|k| k == "data" || k == "event");
        match parse_publish(text.as_bytes(), false) {
            Ok(event) => {
                prop_assert!(valid, "{} was accepted", text);
                let data: Value = serde_json::from_str(event.data().as_str()).unwrap_or(Value::Null);
                prop_assert_eq!(&data, &members["data"]);
                let expected = members.get("event").and_then(Value::as_str).unwrap_or("message");
                prop_assert_eq!(event.type_name(), expected);
            }
            Err(error) => {
                prop_assert!(!valid, "{} was refused: {}", text, error);
                prop_assert_eq!(error.code(), ErrorCode::InvalidJson);
            }
        }
    }
}

#[test]
fn the_corpus_is_refused_as_invalid_json() {
    for body in CORPUS {
        let refused = parse_publish(body, false).err().map(|error| error.code());
        assert_eq!(refused, Some(ErrorCode::InvalidJson), "{}", String::from_utf8_lossy(body));
    }
    // Nested deeper than serde_json follows: refused, not a stack overflow.
    let deep = format!(r#"{{"data":{}1{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse_publish(deep.as_bytes(), false).err().map(|e| e.code()), Some(ErrorCode::InvalidJson));
    assert!(parse_publish(json!({"data": {"deep": [[[1]]]}}).to_string().as_bytes(), false).is_ok());
}
