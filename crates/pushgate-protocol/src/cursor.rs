//! Cursors and epochs: where a reader stands in the hub's single, hub-wide order of events.
//!
//! Every event gets a hub-wide *position* when it is published (besides its per-topic `seq`).
//! Positions strictly increase across all topics, so one number says "I have seen everything up
//! to here" for any set of topics. A cursor is that number plus the [`Epoch`] it belongs to:
//! positions of one epoch mean nothing in another, and the epoch changes whenever history is
//! lost (an in-memory hub restarts, a backing store is replaced).
//!
//! The text form is `<epoch as 8 hex digits>-<position in hex>`, e.g. `9f03c1d2-2a`: URL-safe,
//! short enough to repeat on every SSE event, and the same on every transport. It is opaque to
//! clients; only the hub parses it. Two keywords stand beside it: `now` (only events published
//! from here on) and `oldest` (everything still retained).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;

/// Identifies one lifetime of a hub's history.
///
/// A cursor from another epoch is never compared by position: a subscriber presenting one gets
/// a reset (see the reset object, [`ResetObject`](crate::ResetObject)) and replays what is retained.
///
/// ```
/// use pushgate_protocol::Epoch;
///
/// let epoch = Epoch::from_u32(0x9f03c1d2);
/// assert_eq!(epoch.to_string(), "9f03c1d2");
/// assert_ne!(Epoch::random(), Epoch::random());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Epoch(u32);

impl Epoch {
    /// Wraps a known epoch value, for example one a storage backend keeps durably.
    ///
    /// ```
    /// # use pushgate_protocol::Epoch;
    /// assert_eq!(Epoch::from_u32(7).as_u32(), 7);
    /// ```
    pub const fn from_u32(value: u32) -> Self {
        Self(value)
    }

    /// The raw value.
    ///
    /// ```
    /// # use pushgate_protocol::Epoch;
    /// assert_eq!(Epoch::from_u32(1).as_u32(), 1);
    /// ```
    pub const fn as_u32(self) -> u32 {
        self.0
    }

    /// A fresh epoch, different from any earlier one with overwhelming likelihood.
    ///
    /// std's `RandomState` is seeded from the OS once per process; mixing in the time and a
    /// counter keeps epochs of several hubs in one process apart too.
    ///
    /// ```
    /// # use pushgate_protocol::Epoch;
    /// let a = Epoch::random();
    /// let b = Epoch::random();
    /// assert_ne!(a, b);
    /// ```
    pub fn random() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(elapsed.as_nanos());
        }
        hasher.write_u32(std::process::id());
        let bits = hasher.finish();
        Self((bits ^ (bits >> 32)) as u32)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Where a subscription or a poll starts reading.
///
/// ```
/// use pushgate_protocol::{Cursor, Epoch};
///
/// assert_eq!("now".parse::<Cursor>()?, Cursor::Now);
/// assert_eq!("oldest".parse::<Cursor>()?, Cursor::Oldest);
/// let at = Cursor::At { epoch: Epoch::from_u32(0x9f03c1d2), position: 42 };
/// assert_eq!(at.to_string(), "9f03c1d2-2a");
/// assert_eq!("9f03c1d2-2a".parse::<Cursor>()?, at);
/// assert!("9f03c1d2".parse::<Cursor>().is_err());
/// # Ok::<(), pushgate_protocol::CursorError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Cursor {
    /// Only events published after the read starts. The default.
    #[default]
    Now,
    /// Every event still retained, then live ones. Never reports a reset: asking for the oldest
    /// retained event is asking to skip whatever is gone.
    Oldest,
    /// Right after the event at `position` of `epoch`.
    At {
        /// The history lifetime the position belongs to.
        epoch: Epoch,
        /// The hub-wide position of the last event seen; 0 is "before the first event".
        position: u64,
    },
}

/// Why a string is not a [`Cursor`].
///
/// ```
/// use pushgate_protocol::{Cursor, CursorError};
///
/// assert_eq!("".parse::<Cursor>(), Err(CursorError::Empty));
/// assert_eq!("zz".parse::<Cursor>(), Err(CursorError::Malformed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// The string is empty.
    #[error("cursor is empty")]
    Empty,
    /// The string is neither a keyword nor a cursor this hub issued.
    #[error("cursor is malformed: expected `now`, `oldest` or a cursor returned by the server")]
    Malformed,
}

const EPOCH_DIGITS: usize = 8;
/// Longest text form: 8 epoch digits, the dash, 16 position digits.
const MAX_CURSOR_LEN: usize = EPOCH_DIGITS + 1 + 16;

impl Cursor {
    /// A cursor right after `position` in `epoch`.
    ///
    /// ```
    /// # use pushgate_protocol::{Cursor, Epoch};
    /// let c = Cursor::at(Epoch::from_u32(1), 5);
    /// assert_eq!(c.to_string(), "00000001-5");
    /// ```
    pub const fn at(epoch: Epoch, position: u64) -> Self {
        Self::At { epoch, position }
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "" => Err(CursorError::Empty),
            "now" => Ok(Self::Now),
            "oldest" => Ok(Self::Oldest),
            _ => parse_position(text).ok_or(CursorError::Malformed),
        }
    }
}

fn parse_position(text: &str) -> Option<Cursor> {
    if text.len() > MAX_CURSOR_LEN {
        return None;
    }
    let (epoch, position) = text.split_once('-')?;
    // Only the canonical form the hub prints is accepted, so one position has one spelling
    // (a cursor is also an HTTP cache key on the polling transports).
    let canonical_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if epoch.len() != EPOCH_DIGITS || position.is_empty() || !canonical_hex(epoch) {
        return None;
    }
    if !canonical_hex(position) || (position.len() > 1 && position.starts_with('0')) {
        return None;
    }
    Some(Cursor::At {
        epoch: Epoch(u32::from_str_radix(epoch, 16).ok()?),
        position: u64::from_str_radix(position, 16).ok()?,
    })
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Now => f.write_str("now"),
            Self::Oldest => f.write_str("oldest"),
            Self::At { epoch, position } => write!(f, "{epoch}-{position:x}"),
        }
    }
}

/// A cursor travels as its text (`"now"`, `"oldest"`, `"9f03c1d2-2a"`).
impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes() {
        for (epoch, position) in [(0, 0), (u32::MAX, u64::MAX), (1, 1)] {
            let cursor = Cursor::at(Epoch::from_u32(epoch), position);
            let text = cursor.to_string();
            assert!(text.len() <= MAX_CURSOR_LEN);
            assert_eq!(text.parse::<Cursor>(), Ok(cursor));
            let json = serde_json::to_string(&cursor).expect("serialize");
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Cursor>(&json).expect("deserialize"), cursor);
        }
        assert!(serde_json::from_str::<Cursor>("\"junk\"").is_err());
    }

    #[test]
    fn rejects_non_canonical_and_hostile_forms() {
        for bad in [
            "9F03C1D2-2a",
            "9f03c1d2-02a",
            "9f03c1d2-",
            "-2a",
            "9f03c1d-2a",
            "9f03c1d2-2a-1",
            "9f03c1d2-10000000000000000",
            "9f03c1d2-+2a",
            "NOW",
            "9f03c1d2_2a",
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(CursorError::Malformed), "{bad:?}");
        }
    }
}
