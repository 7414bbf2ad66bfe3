//! The value types of durations and sizes: parsed from what users write in flags, `PUSHGATE_*`
//! variables and the configuration file (`25s`, `500ms`, `2m`, `1MiB`; a bare number is seconds
//! or bytes), and written back the same way (`--help` defaults, `--print-config`).
//!
//! Hand-written rather than `humantime`/`bytesize`: those reject a bare number (humantime) or
//! print `1.0 MiB` (bytesize), and both syntaxes are what users already write and read here.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::time::Duration;

/// Why a value is not a duration or a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a whole number with an optional unit ({units}), got {text:?}")]
pub struct UnitError {
    text: String,
    units: &'static str,
}

/// A duration: a whole number with an optional unit `ms`, `s` (the default), `m` or `h`.
///
/// ```
/// use pushgate::config::TimeSpan;
/// use std::time::Duration;
///
/// assert_eq!(*"25".parse::<TimeSpan>()?, Duration::from_secs(25));
/// assert_eq!(*"500ms".parse::<TimeSpan>()?, Duration::from_millis(500));
/// assert_eq!(TimeSpan::from(Duration::from_secs(120)).to_string(), "2m");
/// assert!("soon".parse::<TimeSpan>().is_err());
/// # Ok::<(), pushgate::config::UnitError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeSpan(Duration);

impl TimeSpan {
    /// `seconds` seconds.
    pub const fn secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }

    /// `millis` milliseconds.
    pub const fn millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }
}

const DURATION_UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];

impl FromStr for TimeSpan {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let millis = parse_with_units(text, &DURATION_UNITS, 1000)
            .ok_or_else(|| UnitError { text: text.to_owned(), units: "ms, s, m, h" })?;
        Ok(Self(Duration::from_millis(millis)))
    }
}

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        write_with_units(f, millis, &DURATION_UNITS, "s")
    }
}

impl Deref for TimeSpan {
    type Target = Duration;

    fn deref(&self) -> &Duration {
        &self.0
    }
}

impl From<Duration> for TimeSpan {
    fn from(duration: Duration) -> Self {
        Self(duration)
    }
}

impl From<TimeSpan> for Duration {
    fn from(span: TimeSpan) -> Self {
        span.0
    }
}

/// A size in bytes: a whole number with an optional unit `B`, `KiB`, `MiB` or `GiB`.
///
/// ```
/// use pushgate::config::ByteSize;
///
/// assert_eq!(*"65536".parse::<ByteSize>()?, 65536);
/// assert_eq!(*"64KiB".parse::<ByteSize>()?, 65536);
/// assert_eq!(ByteSize::from(1 << 20).to_string(), "1MiB");
/// # Ok::<(), pushgate::config::UnitError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(usize);

impl ByteSize {
    /// `n` KiB.
    pub const fn kib(n: usize) -> Self {
        Self(n << 10)
    }

    /// `n` MiB.
    pub const fn mib(n: usize) -> Self {
        Self(n << 20)
    }
}

const SIZE_UNITS: [(&str, u64); 4] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)];

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_with_units(text, &SIZE_UNITS, 1)
            .and_then(|n| usize::try_from(n).ok())
            .map(Self)
            .ok_or_else(|| UnitError { text: text.to_owned(), units: "B, KiB, MiB, GiB" })
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_with_units(f, self.0 as u64, &SIZE_UNITS, "")
    }
}

impl Deref for ByteSize {
    type Target = usize;

    fn deref(&self) -> &usize {
        &self.0
    }
}

impl From<usize> for ByteSize {
    fn from(bytes: usize) -> Self {
        Self(bytes)
    }
}

impl From<ByteSize> for usize {
    fn from(size: ByteSize) -> Self {
        size.0
    }
}

/// Durations and sizes are written as the flags take them (`"25s"`, `"1MiB"`).
impl serde::Serialize for TimeSpan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `text` as a number times its unit's factor (`bare` without a unit); `None` if malformed.
fn parse_with_units(text: &str, units: &[(&str, u64)], bare: u64) -> Option<u64> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" => bare,
        unit => units.iter().find(|(name, _)| *name == unit)?.1,
    };
    number.checked_mul(factor)
}

/// Writes `value` in the largest unit that divides it exactly (`zero_unit` after a zero).
fn write_with_units(
    f: &mut fmt::Formatter<'_>,
    value: u64,
    units: &[(&str, u64)],
    zero_unit: &str,
) -> fmt::Result {
    if value == 0 {
        return write!(f, "0{zero_unit}");
    }
    let (name, factor) =
        units.iter().find(|(_, factor)| value.is_multiple_of(*factor)).copied().unwrap_or(("", 1));
    let name = if name == "B" { "" } else { name };
    write!(f, "{}{name}", value / factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip() {
        for text in ["0s", "25s", "2m", "1h", "1500ms", "90s"] {
            assert_eq!(text.parse::<TimeSpan>().map(|s| s.to_string()).as_deref(), Ok(text));
        }
        for text in ["0", "1MiB", "64KiB", "1000", "2GiB"] {
            assert_eq!(text.parse::<ByteSize>().map(|s| s.to_string()).as_deref(), Ok(text));
        }
        for bad in ["", "s", "-1", "1.5s", "10 parsecs", "99999999999999999999h"] {
            assert!(bad.parse::<TimeSpan>().is_err(), "{bad:?}");
        }
        assert_eq!("1 MiB".parse::<ByteSize>(), Ok(ByteSize::mib(1)));
    }
}
