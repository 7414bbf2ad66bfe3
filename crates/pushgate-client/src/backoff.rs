//! Full-jitter exponential backoff, as the browser client waits: a random delay between zero
//! and min(max, base × 2^attempt), so that clients cut off together do not come back together.

use std::time::Duration;

use pushgate_protocol::Epoch;

/// How long to wait between failed attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay (0.5 s by default).
    pub base: Duration,
    /// The largest ceiling (30 s by default).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The ceiling of the delay before retry number `attempt` (0 for the first).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(2_u32.saturating_pow(attempt.min(31))).min(self.max)
    }

    /// A delay drawn uniformly from zero to [`ceiling`](Self::ceiling).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(random_unit())
    }
}

/// A number in [0, 1): the 32 random bits of a fresh epoch (std's per-process random seed mixed
/// with a counter and the time), enough to spread reconnects, with no random-number crate.
fn random_unit() -> f64 {
    f64::from(Epoch::random().as_u32()) / f64::from(u32::MAX).next_up()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_a_doubling_ceiling_that_stops_at_the_maximum() {
        let backoff = Backoff::default();
        assert_eq!(backoff.ceiling(0), Duration::from_millis(500));
        assert_eq!(backoff.ceiling(3), Duration::from_secs(4));
        assert_eq!(backoff.ceiling(40), Duration::from_secs(30));
        let delays: Vec<_> = (0..200).map(|_| backoff.delay(2)).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_secs(2)));
        // Jittered: not all the same, and spread over the range.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(500)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(1500)));
    }
}
