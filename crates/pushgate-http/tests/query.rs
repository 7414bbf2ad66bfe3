//! Properties of the subscribe request every transport parses: the query string, its topics,
//! its cursor and the `Last-Event-ID` header, over generated and arbitrary input seeded with
//! the malformed queries clients send. A bounded number of cases runs in `cargo test`
//! (`PROPTEST_CASES` for more).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use pushgate_http::{BatchLimit, ErrorCode, Query, SubscribeParams};
use pushgate_hub::{Cursor, TopicName};

/// Queries that must be answered (parsed, or refused with a code), not a panic.
const CORPUS: &[&str] = &[
    "",
    "&",
    "&&&=&=",
    "topic",
    "topic=",
    "topic=%",
    "topic=%zz",
    "topic=%ff%fe",
    "topic=a%00b",
    "topic=a&topic=a&topic=a",
    "topics=,,,",
    "topics=a,,b,",
    "topics=a%2Cb",
    "topic=a&cursor=",
    "topic=a&cursor=%20",
    "topic=a&cursor=now&cursor=junk",
    "topic=a&last_event_id=00000001-1",
    "topic=a&limit=-1&timeout=1e9",
    "topic=a&limit=18446744073709551616",
    "topic=a+b",
    "=&=&topic=%E2%80%8B",
];

/// A query of `topic`, `topics`, `cursor`, `last_event_id` and other pairs, form-encoded.
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let name =
        prop::sample::select(&["topic", "topics", "cursor", "last_event_id", "limit", "token", "x"][..]);
    let value = prop_oneof![
        4 => "[A-Za-z0-9_.:-]{1,10}",
        2 => "[a-z]{1,4}(,[a-z]{0,4}){0,3}",
        1 => Just("now".to_owned()),
        1 => Just("oldest".to_owned()),
        1 => "[0-9a-f]{8}-[0-9a-f]{1,3}",
        2 => ".{0,12}",
    ];
    prop::collection::vec((name.prop_map(str::to_owned), value), 0..6)
}

fn encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

    /// Any query string parses, never panics; form-encoded pairs come back as they were.
    #[test]
    fn queries_decode_to_their_pairs(pairs in pairs(), raw in ".{0,40}") {
        let _ = Query::parse(Some(&raw));
        let query = Query::parse(Some(&encode(&pairs)));
        for name in ["topic", "topics", "cursor", "x"] {
            let expected: Vec<&str> = pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
            prop_assert_eq!(query.all(name).collect::<Vec<_>>(), expected);
        }
    }

    /// Topics are every `topic` and every non-empty item of `topics`, in order, each valid;
    /// the cursor is the first non-empty of the header, `cursor`, `last_event_id`; anything
    /// else is `invalid_topic` or `invalid_cursor`.
    #[test]
    fn subscribe_params_follow_the_protocol(pairs in pairs(), header in prop::option::of("[0-9a-f]{8}-[0-9a-f]{1,3}|now|.{0,6}")) {
        let query = Query::parse(Some(&encode(&pairs)));
        let names: Vec<&str> = pairs
            .iter()
            .filter(|(n, _)| n == "topic")
            .map(|(_, v)| v.as_str())
            .chain(pairs.iter().filter(|(n, _)| n == "topics").flat_map(|(_, v)| v.split(',')).filter(|t| !t.is_empty()))
            .collect();
        let cursor_text = [header.as_deref(), query.get("cursor"), query.get("last_event_id")]
            .into_iter()
            .flatten()
            .find(|text| !text.is_empty());
        let topics_ok = names.iter().all(|name| TopicName::new(name).is_ok());
        let cursor = cursor_text.map(str::parse::<Cursor>);
        match SubscribeParams::from_query(&query, header.as_deref()) {
            Ok(params) => {
                prop_assert!(topics_ok);
                prop_assert_eq!(params.topics.iter().map(TopicName::as_str).collect::<Vec<_>>(), names);
                prop_assert_eq!(Some(params.cursor), cursor.unwrap_or(Ok(Cursor::Now)).ok());
            }
            Err(error) if !topics_ok => prop_assert_eq!(error.code(), ErrorCode::InvalidTopic),
            Err(error) => {
                prop_assert_eq!(error.code(), ErrorCode::InvalidCursor);
                prop_assert!(matches!(cursor, Some(Err(_))));
            }
        }
    }

    /// A `Last-Event-ID` of any bytes: used when it is a cursor, `invalid_cursor` otherwise
    /// (also when it is not ASCII), never ignored.
    #[test]
    fn any_last_event_id_is_a_cursor_or_invalid(bytes in prop::collection::vec(any::<u8>(), 0..24)) {
        let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", value);
        let query = Query::parse(Some("topic=a&cursor=oldest"));
        let result = SubscribeParams::from_request(&query, &headers);
        match std::str::from_utf8(&bytes).ok().filter(|text| text.bytes().all(|b| b.is_ascii() && b != 0x7f)) {
            Some("") => prop_assert_eq!(result.map(|p| p.cursor).ok(), Some(Cursor::Oldest)),
            Some(text) => match text.parse::<Cursor>() {
                Ok(cursor) => prop_assert_eq!(result.map(|p| p.cursor).ok(), Some(cursor)),
                Err(_) => prop_assert_eq!(result.err().map(|e| e.code()), Some(ErrorCode::InvalidCursor)),
            },
            None => prop_assert_eq!(result.err().map(|e| e.code()), Some(ErrorCode::InvalidCursor)),
        }
    }

    /// Counts and durations in the query: a number in range, or `invalid_parameter`.
    #[test]
    fn limits_and_timeouts_are_numbers_or_invalid(value in ".{0,24}|[0-9]{1,25}") {
        let query = Query::parse(Some(&encode(&[("limit".to_owned(), value.clone()), ("timeout".to_owned(), value)])));
        match BatchLimit::new(100, 500).from_query(&query) {
            Ok(limit) => prop_assert!((1..=500).contains(&limit)),
            Err(error) => prop_assert_eq!(error.code(), ErrorCode::InvalidParameter),
        }
        match query.seconds("timeout", 120) {
            Ok(seconds) => prop_assert!(seconds.is_none_or(|s| s.as_secs() <= 120)),
            Err(error) => prop_assert_eq!(error.code(), ErrorCode::InvalidParameter),
        }
    }
}

#[test]
fn the_corpus_is_parsed_or_refused_with_a_code() {
    for raw in CORPUS {
        let query = Query::parse(Some(raw));
        match SubscribeParams::from_query(&query, None) {
            Ok(params) => assert!(params.topics.iter().all(|topic| !topic.as_str().is_empty()), "{raw}"),
            Err(error) => {
                assert!(
                    [ErrorCode::InvalidTopic, ErrorCode::InvalidCursor].contains(&error.code()),
                    "{raw}: {error}"
                )
            }
        }
        let _ = (BatchLimit::default().from_query(&query), query.seconds("timeout", 120));
    }
}
