//! The delay between reconnection attempts of the hub's backends (the Redis storage's tail, the
//! database sources' tailers): exponential, capped, with full jitter, so that the gateway nodes
//! that lost the same server do not come back to it in lockstep.
//!
//! Not the `backon` crate: its jitter adds up to one more delay on top of the capped one (so the
//! cap is not a bound), and its retry combinators wrap one fallible call, where these loops run
//! sessions that last and reset the delay once a session got going.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Reconnection delays: attempt `n` waits a uniform random time up to `min · 2ⁿ`, capped at
/// `max`, but at least `min`.
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::Backoff;
///
/// let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
/// let mut backoff = Backoff::new(min, max);
/// for _ in 0..40 {
///     let delay = backoff.next_delay();
///     assert!(min <= delay && delay <= max);
/// }
/// backoff.reset();
/// assert!(backoff.next_delay() <= 2 * min);
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays between `min` and `max` (`max` below `min` counts as `min`).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max: max.max(min), failures: 0 }
    }

    /// The delay before the next attempt; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let cap = self.min.saturating_mul(1u32 << self.failures.min(16)).min(self.max);
        cap.mul_f64(random_unit()).max(self.min)
    }

    /// The failures counted since the last [`reset`](Self::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts over from `min`: a connection got going.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A random number in `[0, 1)`, from std's randomly keyed hasher (good enough for jitter).
fn random_unit() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_vary() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
        let mut backoff = Backoff::new(min, max);
        for failures in 1..40u32 {
            let delay = backoff.next_delay();
            assert_eq!(backoff.failures(), failures);
            assert!(delay >= min && delay <= max, "{failures}: {delay:?}");
            assert!(delay <= min.saturating_mul(1 << failures.min(16)).max(min), "{failures}: {delay:?}");
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff.next_delay()).collect();
        assert!(spread.len() > 40, "jitter should vary");
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert!(backoff.next_delay() <= 2 * min);
    }
}
