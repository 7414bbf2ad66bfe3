//! Properties of the text clients send the hub: cursors and topic names, over generated and
//! arbitrary strings, seeded with the malformed ones clients send. A bounded number of cases
//! runs in `cargo test` (`PROPTEST_CASES` for more).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use proptest::prelude::*;
use pushgate_hub::{Cursor, CursorError, Epoch, MAX_TOPIC_LEN, TopicName};

/// Cursors that must be refused: the canonical form is the only spelling of a position.
const BAD_CURSORS: &[&str] = &[
    "",
    " ",
    "now ",
    "NOW",
    "Oldest",
    "0",
    "-",
    "00000001",
    "00000001-",
    "-5",
    "00000001-05",
    "00000001-00",
    "00000001-+5",
    "00000001--5",
    "00000001-5-6",
    "0000001-5",
    "000000001-5",
    "0000000G-5",
    "0000000A-5",
    "00000001-A",
    "00000001-10000000000000000",
    "00000001-ffffffffffffffff0",
    "00000001-\u{662}",
    "\u{0}",
];

fn cursor() -> impl Strategy<Value = Cursor> {
    prop_oneof![
        Just(Cursor::Now),
        Just(Cursor::Oldest),
        (any::<u32>(), any::<u64>())
            .prop_map(|(epoch, position)| Cursor::at(Epoch::from_u32(epoch), position)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

    /// Every cursor the hub writes reads back as itself.
    #[test]
    fn cursors_round_trip(cursor in cursor()) {
        prop_assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
    }

    /// Any string is a cursor only in its one canonical spelling, and never panics.
    #[test]
    fn a_string_is_a_cursor_only_as_the_hub_writes_it(text in prop_oneof![".{0,30}", "[0-9a-fA-F-]{0,30}", "[0-9a-f]{8}-[0-9a-f]{1,17}"]) {
        match text.parse::<Cursor>() {
            Ok(cursor) => prop_assert_eq!(cursor.to_string(), text),
            Err(error) => prop_assert!(matches!(error, CursorError::Empty | CursorError::Malformed)),
        }
    }

    /// A topic name is `[A-Za-z0-9_.:-]{1,128}`, exactly.
    #[test]
    fn topic_names_are_exactly_the_documented_alphabet(name in prop_oneof![".{0,140}", "[A-Za-z0-9_.:-]{0,140}"]) {
        let allowed = !name.is_empty()
            && name.len() <= MAX_TOPIC_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        match TopicName::new(&name) {
            Ok(topic) => {
                prop_assert!(allowed, "{:?} was accepted", name);
                prop_assert_eq!(topic.as_str(), name.as_str());
            }
            Err(_) => prop_assert!(!allowed, "{:?} was refused", name),
        }
    }
}

#[test]
fn malformed_cursors_are_refused() {
    for text in BAD_CURSORS {
        assert!(text.parse::<Cursor>().is_err(), "{text:?}");
    }
    assert_eq!("00000001-ffffffffffffffff".parse::<Cursor>(), Ok(Cursor::at(Epoch::from_u32(1), u64::MAX)));
}
