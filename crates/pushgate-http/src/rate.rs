//! Publish rate limits: a token bucket per client address.
//!
//! A publish takes a token or is refused with `rate_limited` and how long until a token is
//! back. The bucket is pure (the caller passes the time), so it is tested without a clock.
//!
//! The allowance belongs to the client's address, not to one connection: otherwise a client
//! reconnecting in a loop would get a fresh burst each time. The gateway's accept loop keeps
//! one [`PublishAllowance`] per address (IPv6: per /64), shared by all of its connections, and
//! puts it into each request's extensions; the HTTP publish API and the WebSocket transport
//! (for `publish` frames) take their tokens from it. A WebSocket router served without that
//! accept loop finds none and falls back to one allowance per connection.
//!
//! Not `governor`: its limiters read their own clock (tests need its fake one), its keyed store
//! would sit beside the accept loop's per-address map (which also counts connections and groups
//! IPv6 by /64) instead of replacing it, and it brings a dozen crates for these fifty lines.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many publishes a connection may make: `per_second` on average, with bursts of up to
/// `burst`. A zero rate turns the limit off.
///
/// ```
/// use pushgate_http::PublishRate;
///
/// let rate = PublishRate::new(100, 200);
/// assert!(rate.is_limited());
/// assert!(!PublishRate::UNLIMITED.is_limited());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishRate {
    per_second: u32,
    burst: u32,
}

impl PublishRate {
    /// No limit.
    pub const UNLIMITED: Self = Self { per_second: 0, burst: 0 };

    /// `per_second` publishes a second on average (0: no limit), bursts of `burst` (at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self { per_second, burst: burst.max(1) }
    }

    /// Whether publishes are limited at all.
    pub fn is_limited(self) -> bool {
        self.per_second > 0
    }

    /// A full bucket.
    pub fn bucket(self, now: Instant) -> TokenBucket {
        TokenBucket { rate: self, tokens: f64::from(self.burst), updated: now }
    }
}

impl Default for PublishRate {
    /// 100 a second, bursts of 200.
    fn default() -> Self {
        Self::new(100, 200)
    }
}

/// A publish allowance (one client's, or one connection's); see [`PublishRate`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use pushgate_http::PublishRate;
///
/// let start = Instant::now();
/// let mut bucket = PublishRate::new(10, 2).bucket(start);
/// assert!(bucket.try_take(start).is_ok());
/// assert!(bucket.try_take(start).is_ok());
/// // Empty: the next token comes back after 1/10 s.
/// assert_eq!(bucket.try_take(start), Err(Duration::from_millis(100)));
/// assert!(bucket.try_take(start + Duration::from_millis(100)).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: PublishRate,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// Takes one token at `now`, or returns how long until one is back.
    ///
    /// # Errors
    /// The wait until the next token, when the bucket is empty.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        if !self.rate.is_limited() {
            return Ok(());
        }
        let per_second = f64::from(self.rate.per_second);
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(self.rate.burst));
        self.updated = now;
        // A small tolerance keeps float rounding from refusing a token that is due exactly now.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }

    /// Whether the bucket has refilled to its burst by `now` (always, without a limit): it is
    /// then no different from a new one and may be forgotten.
    pub fn is_full(&self, now: Instant) -> bool {
        if !self.rate.is_limited() {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * f64::from(self.rate.per_second) >= f64::from(self.rate.burst) - 1e-9
    }
}

/// A [`TokenBucket`] shared by every connection of one client (cheap to clone: clones share
/// the bucket). The gateway puts its client's allowance into each request's extensions.
///
/// ```
/// use std::time::Instant;
/// use pushgate_http::{PublishAllowance, PublishRate};
///
/// let now = Instant::now();
/// let first = PublishAllowance::new(PublishRate::new(1, 1), now);
/// let second = first.clone();
/// assert!(first.try_take(now).is_ok());
/// assert!(second.try_take(now).is_err(), "the clones share one bucket");
/// ```
#[derive(Debug, Clone)]
pub struct PublishAllowance(Arc<Mutex<TokenBucket>>);

impl PublishAllowance {
    /// A full allowance at `rate`.
    pub fn new(rate: PublishRate, now: Instant) -> Self {
        Self(Arc::new(Mutex::new(rate.bucket(now))))
    }

    /// Takes one token at `now`, or returns how long until one is back.
    ///
    /// # Errors
    /// The wait until the next token, when the bucket is empty.
    pub fn try_take(&self, now: Instant) -> Result<(), Duration> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).try_take(now)
    }

    /// Whether the bucket has refilled to its burst by `now`; see [`TokenBucket::is_full`].
    pub fn is_full(&self, now: Instant) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).is_full(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_average_rate() {
        let start = Instant::now();
        let mut bucket = PublishRate::new(100, 200).bucket(start);
        for i in 0..200 {
            assert!(bucket.try_take(start).is_ok(), "publish {i} of the burst");
        }
        let wait = bucket.try_take(start).expect_err("the burst is spent");
        assert_eq!(wait, Duration::from_millis(10));
        // One second later, 100 more and no more.
        let later = start + Duration::from_secs(1);
        for i in 0..100 {
            assert!(bucket.try_take(later).is_ok(), "publish {i} after a second");
        }
        assert!(bucket.try_take(later).is_err());
        // A long pause refills to the burst, not beyond.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..200 {
            assert!(bucket.try_take(much_later).is_ok());
        }
        assert!(bucket.try_take(much_later).is_err());
    }

    #[test]
    fn a_bucket_is_full_again_once_refilled() {
        let start = Instant::now();
        let mut bucket = PublishRate::new(10, 5).bucket(start);
        assert!(bucket.is_full(start));
        assert!(bucket.try_take(start).is_ok());
        assert!(!bucket.is_full(start));
        assert!(!bucket.is_full(start + Duration::from_millis(50)));
        assert!(bucket.is_full(start + Duration::from_millis(100)));
        assert!(PublishRate::UNLIMITED.bucket(start).is_full(start));
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let start = Instant::now();
        let mut bucket = PublishRate::new(0, 1).bucket(start);
        for _ in 0..10_000 {
            assert!(bucket.try_take(start).is_ok());
        }
    }
}
