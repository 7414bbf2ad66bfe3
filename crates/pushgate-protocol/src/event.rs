//! The event object every transport carries: `{"topic","seq","id","event","data","ts"}`, plus
//! `"from"` (who published it) when the publisher was identified.
//!
//! Servers write it with [`write_event_object`], by hand rather than through serde: topics and
//! event types are restricted to characters that need no JSON escaping, the id is a cursor, and
//! `data` is already compact JSON, so the object is a few concatenations, done once per event
//! and shared by every subscriber; only the sender, any UTF-8, goes through the JSON string
//! escaper. Clients read it as an [`EventObject`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Cursor;

/// One event as a client receives it.
///
/// `data` is kept as the JSON text the server sent, so numbers keep every digit whatever the
/// host program's `serde_json` features; [`data_as`](Self::data_as) reads it into any type.
///
/// ```
/// use pushgate_protocol::{Cursor, Epoch, EventObject, EventParts, write_event_object};
///
/// let id = Cursor::at(Epoch::from_u32(1), 7);
/// let text = write_event_object(&EventParts {
///     topic: "db.orders", seq: 3, id, event: "insert", data: r#"{"total":12.50}"#, ts: 1700000000000, from: None,
///     key: None,
/// });
/// let event: EventObject = serde_json::from_str(&text)?;
/// assert_eq!((event.topic.as_str(), event.seq, event.id), ("db.orders", 3, id));
/// assert_eq!(event.data.get(), r#"{"total":12.50}"#);
/// #[derive(serde::Deserialize)] struct Order { total: f64 }
/// assert_eq!(event.data_as::<Order>()?.total, 12.5);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventObject {
    /// The topic it was published to.
    pub topic: String,
    /// Its place in its topic: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// Its cursor: resume right after it with this.
    pub id: Cursor,
    /// Its type (`"message"` unless the publisher named one).
    pub event: String,
    /// The published JSON value, as text.
    pub data: Box<RawValue>,
    /// When the hub stored it, in milliseconds since the Unix epoch.
    pub ts: u64,
    /// Who published it, when the publisher was identified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// What the event is the newest value of, for readers that read latest value only; absent
    /// when the publisher gave no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl EventObject {
    /// `data` read into `T`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.get())
    }
}

impl PartialEq for EventObject {
    fn eq(&self, other: &Self) -> bool {
        (&self.topic, self.seq, self.id, &self.event, self.data.get(), self.ts, &self.from, &self.key)
            == (
                &other.topic,
                other.seq,
                other.id,
                &other.event,
                other.data.get(),
                other.ts,
                &other.from,
                &other.key,
            )
    }
}

/// What [`write_event_object`] writes: the fields of one event, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct EventParts<'a> {
    /// A validated topic name (`[A-Za-z0-9_.:-]`, so written unescaped).
    pub topic: &'a str,
    /// The event's `seq`.
    pub seq: u64,
    /// The event's cursor.
    pub id: Cursor,
    /// A validated event type (`[A-Za-z0-9_.:-]`, so written unescaped).
    pub event: &'a str,
    /// Compact JSON text.
    pub data: &'a str,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
    /// The sender, any UTF-8 (escaped).
    pub from: Option<&'a str>,
    /// The latest-value key, any UTF-8 (escaped).
    pub key: Option<&'a str>,
}

/// The event object's JSON text.
pub fn write_event_object(parts: &EventParts<'_>) -> String {
    use std::fmt::Write as _;
    // Serializing a string cannot fail; `null` keeps the object valid if it ever did.
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "null".to_owned());
    let from = parts.from.map(quoted);
    let key = parts.key.map(quoted);
    let extra = from.as_ref().map_or(0, |f| f.len() + 8) + key.as_ref().map_or(0, |k| k.len() + 7);
    let mut out = String::with_capacity(96 + parts.data.len() + parts.topic.len() + extra);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"{{"topic":"{}","seq":{},"id":"{}","event":"{}","data":{},"ts":{}"#,
        parts.topic, parts.seq, parts.id, parts.event, parts.data, parts.ts
    );
    if let Some(from) = from {
        out.push_str(r#","from":"#);
        out.push_str(&from);
    }
    if let Some(key) = key {
        out.push_str(r#","key":"#);
        out.push_str(&key);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Epoch;

    #[test]
    fn the_written_object_reads_back_with_serde_and_keeps_numbers() {
        let parts = EventParts {
            topic: "t",
            seq: 1,
            id: Cursor::at(Epoch::from_u32(0xabc), 0x10),
            event: "message",
            data: r#"{"n":12345678901234567890.12,"tiny":1e-400}"#,
            ts: 5,
            from: Some("Zoë \"z\"\n"),
            key: Some("k\"1"),
        };
        let text = write_event_object(&parts);
        let event: EventObject = serde_json::from_str(&text).expect("parses");
        assert_eq!(event.data.get(), parts.data);
        assert_eq!(event.from.as_deref(), parts.from);
        assert_eq!(event.key.as_deref(), parts.key);
        assert_eq!(event.id, parts.id);
        // Serde writes the same object back (field for field).
        let again: EventObject =
            serde_json::from_str(&serde_json::to_string(&event).expect("ser")).expect("de");
        assert_eq!(again, event);
        let anonymous = write_event_object(&EventParts { from: None, key: None, ..parts });
        assert!(!anonymous.contains("from") && !anonymous.contains("key"), "{anonymous}");
    }
}
