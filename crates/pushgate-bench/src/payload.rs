//! What the publisher puts in each message and how a receiver finds it again.
//!
//! Every published payload is a JSON object holding a stamp, `"pgb":[topic,seq,sent_us]`, and
//! padding up to the requested size:
//!
//! ```text
//! {"pgb":[3,1742,1763750000123456],"pad":"xxxxxxxx…"}
//! ```
//!
//! `topic` is the topic's index in the run, `seq` its per-topic sequence number (1, 2, 3, …) and
//! `sent_us` the time the publish was scheduled, in µs since the Unix epoch. Receivers do not
//! parse the transport's framing as JSON: they scan the complete part of what arrived for the
//! `"pgb":[` marker, which survives any envelope (pushgate's event object, nchan's raw body) and
//! any reordering of keys (pushgate re-serialises `data` with sorted keys).

/// The marker that starts a stamp.
pub(crate) const MARKER: &[u8] = b"\"pgb\":[";

/// One stamp read back from a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The topic's index in the run.
    pub(crate) topic: u32,
    /// The per-topic sequence number, from 1.
    pub(crate) seq: u64,
    /// When the publish was scheduled, µs since the Unix epoch.
    pub(crate) sent_us: u64,
}

/// The payload for one publish: the stamp, then padding so that the whole is `size` bytes
/// (or just the stamp when `size` is smaller than that).
pub(crate) fn build(stamp: Stamp, size: usize) -> String {
    let mut text = format!("{{\"pgb\":[{},{},{}]", stamp.topic, stamp.seq, stamp.sent_us);
    const PAD_OPEN: &str = ",\"pad\":\"";
    // The padding member costs its own punctuation: `,"pad":"` and `"}`.
    let fixed = text.len() + PAD_OPEN.len() + 2;
    if size > fixed {
        text.push_str(PAD_OPEN);
        text.extend(std::iter::repeat_n('x', size - fixed));
        text.push('"');
    }
    text.push('}');
    text
}

/// Calls `found` for every complete stamp in `text`, in order; returns how many markers were
/// malformed (a marker not followed by three comma-separated integers and `]`).
pub(crate) fn scan(text: &[u8], mut found: impl FnMut(Stamp)) -> u64 {
    let mut malformed = 0;
    for start in memchr::memmem::find_iter(text, MARKER) {
        match parse_stamp(&text[start + MARKER.len()..]) {
            Some(stamp) => found(stamp),
            None => malformed += 1,
        }
    }
    malformed
}

/// `topic,seq,sent_us]` at the start of `text`.
fn parse_stamp(text: &[u8]) -> Option<Stamp> {
    let mut numbers = [0u64; 3];
    let mut at = 0;
    for (i, number) in numbers.iter_mut().enumerate() {
        let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 {
            return None;
        }
        *number = std::str::from_utf8(&text[at..at + digits]).ok()?.parse().ok()?;
        at += digits;
        let expected = if i == 2 { b']' } else { b',' };
        if text.get(at) != Some(&expected) {
            return None;
        }
        at += 1;
    }
    Some(Stamp { topic: u32::try_from(numbers[0]).ok()?, seq: numbers[1], sent_us: numbers[2] })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp { topic: 3, seq: 1742, sent_us: 1_763_750_000_123_456 };

    #[test]
    fn payloads_have_the_requested_size_and_parse_as_json() {
        for size in [0, 10, 45, 46, 100, 1000] {
            let text = build(STAMP, size);
            let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(value["pgb"][1], 1742);
            let minimum = build(STAMP, 0).len();
            assert_eq!(text.len(), size.max(minimum), "size {size}: {text}");
        }
    }

    #[test]
    fn stamps_are_found_inside_any_envelope() {
        let event = format!(
            "data: {{\"topic\":\"t\",\"seq\":9,\"data\":{},\"ts\":1}}\n\n",
            build(STAMP, 100).replace("{\"pgb\"", "{\"a\":1,\"pgb\"")
        );
        let mut stamps = Vec::new();
        let poll_answer = format!("{{\"events\":[{0},{0}],\"cursor\":\"x\"}}", build(STAMP, 60));
        assert_eq!(scan(event.as_bytes(), |s| stamps.push(s)), 0);
        assert_eq!(scan(poll_answer.as_bytes(), |s| stamps.push(s)), 0);
        assert_eq!(stamps, [STAMP; 3]);
    }

    #[test]
    fn cut_or_damaged_stamps_are_counted_not_guessed() {
        let mut stamps = Vec::new();
        assert_eq!(scan(b"\"pgb\":[3,17", |s| stamps.push(s)), 1);
        assert_eq!(scan(b"\"pgb\":[3,-1,5]", |s| stamps.push(s)), 1);
        assert_eq!(scan(b"\"pgb\":[99999999999,1,5]", |s| stamps.push(s)), 1);
        assert!(stamps.is_empty());
    }
}
