//! The `ETag` of a poll answer and the `If-None-Match` check that turns an idle poll into a
//! `304`. Every poll request computes one, so the tag is written on the stack.

use http::HeaderValue;
use pushgate_hub::{Batch, Cursor, TopicName};

use crate::text::{CURSOR_TEXT_LEN, StackText};
use crate::wire::reset_json;

/// The longest tag: `"ev.`, four cursors each followed by `.`, the 16-digit hash of the events
/// between the first and the last and its `.`, the 16-digit topic-set hash, `.reset.` and its
/// 16-digit hash, the closing `"`.
const TAG_LEN: usize = 4 + 4 * (CURSOR_TEXT_LEN + 1) + 17 + 16 + 7 + 16 + 1;

/// An answer's tag, quoted.
pub(crate) type Tag = StackText<TAG_LEN>;

/// The answer's tag; `.` separates its fields since no cursor contains one.
pub(crate) fn etag(topics: &[TopicName], request_cursor: Cursor, batch: &Batch) -> Tag {
    let mut tag = Tag::new();
    match (batch.events.first(), batch.events.last()) {
        // Nothing new and the cursor unchanged: the answer an idle poller gets over and over.
        (None, _) if batch.reset.is_none() && request_cursor == batch.cursor => {
            tag.push(b"\"idle.");
        }
        (Some(first), Some(last)) => {
            tag.push(b"\"ev.");
            for cursor in [request_cursor, first.cursor(), last.cursor()] {
                tag.push_cursor(cursor);
                tag.push(b".");
            }
            // The first and the last do not say which events lie between them: a latest-value
            // answer skips some that the full answer from the same cursor holds.
            if batch.events.len() > 2 {
                let between = batch.events.iter().fold(Fnv::default(), |hash, event| match event.cursor() {
                    Cursor::At { position, .. } => hash.write(&position.to_le_bytes()),
                    _ => hash,
                });
                tag.push_hex(between.finish(), 16);
                tag.push(b".");
            }
        }
        _ => {
            tag.push(b"\"to.");
            tag.push_cursor(request_cursor);
            tag.push(b".");
        }
    }
    tag.push_cursor(batch.cursor);
    tag.push(b".");
    tag.push_hex(topic_set_hash(topics), 16);
    if let Some(reset) = &batch.reset {
        let reset = Fnv::default().write(reset_json(reset).to_string().as_bytes()).finish();
        tag.push(b".reset.");
        tag.push_hex(reset, 16);
    }
    tag.push(b"\"");
    tag
}

/// Whether any of the `If-None-Match` header values lists `etag`. The comparison is weak, as
/// RFC 9110 asks for this header (`W/"x"` matches `"x"`); `*` is deliberately not a match.
pub(crate) fn if_none_match<'a>(values: impl IntoIterator<Item = &'a HeaderValue>, etag: &[u8]) -> bool {
    values
        .into_iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag.strip_prefix(b"W/").unwrap_or(tag) == etag)
}

/// A hash of the set of `topics`: order and repetition do not change it.
fn topic_set_hash(topics: &[TopicName]) -> u64 {
    // `,` cannot occur in a topic name, so it separates names unambiguously.
    if let [only] = topics {
        // Most polls name one topic: no sorting, no allocation.
        return Fnv::default().write(only.as_str().as_bytes()).write(b",").finish();
    }
    let mut sorted: Vec<&str> = topics.iter().map(TopicName::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.iter().fold(Fnv::default(), |hash, topic| hash.write(topic.as_bytes()).write(b",")).finish()
}

/// 64-bit FNV-1a: tiny, and unlike `std`'s hasher the same in every process and Rust release,
/// so a tag never depends on which build or instance issued it.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(self, bytes: &[u8]) -> Self {
        Self(bytes.iter().fold(self.0, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)))
    }

    fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_its_reference_values() {
        assert_eq!(Fnv::default().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv::default().write(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv::default().write(b"foo").finish(), 0xdcb2_7518_fed9_d577);
    }

    #[test]
    fn one_topic_hashes_as_a_set_of_one() {
        let a = TopicName::new("a").expect("topic");
        assert_eq!(topic_set_hash(&[a.clone()]), topic_set_hash(&[a.clone(), a]));
    }

    #[test]
    fn if_none_match_lists_are_split_trimmed_and_weak() {
        let tag = b"\"idle.x\"";
        let matches = |value: &'static str| if_none_match([&HeaderValue::from_static(value)], tag);
        assert!(matches("\"idle.x\""));
        assert!(matches("\"a\" , W/\"idle.x\""));
        assert!(!matches("*"));
        assert!(!matches("\"idle.y\""));
        assert!(!if_none_match([], tag));
    }
}
