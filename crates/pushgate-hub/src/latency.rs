//! Readers per label: how many are live, how many fetches were answered, and how long events
//! took from publish to hand-over (the delivery latency histogram).
//!
//! Each label (`"sse"`, `"ws"`, `"longpoll"`, …) has one [`LabelStats`] shared by all its
//! readers, found once when a subscription starts (or per fetch) and kept, so the hot path
//! touches only atomics. A batch handed to a reader costs one clock read and one atomic add per
//! run of events that fall in the same bucket (usually one), not one per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::event::Event;
use crate::registry::Label;

/// Upper bounds of the latency buckets, in microseconds. Event timestamps are whole
/// milliseconds, so the first bucket is 1 ms: finer ones could not be told apart.
const BOUNDS_US: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// Upper bounds of the buckets of [`LatencyHistogram`], in seconds.
pub const LATENCY_BUCKETS: [f64; 13] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The delivery latencies of one label: time from an event's publish timestamp to its
/// hand-over to a reader (a subscription's `recv`, a fetch's answer).
///
/// The timestamp is the publishing node's wall clock in whole milliseconds, so a latency is
/// exact to about 1 ms on one node (and off by the clock difference across nodes).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// Deliveries per bucket, not cumulative: `counts[i]` for latencies up to
    /// [`LATENCY_BUCKETS`]`[i]` (and above the previous bound); the last entry holds those above
    /// the largest bound.
    pub counts: Vec<u64>,
    /// Sum of all latencies, in seconds.
    pub sum_seconds: f64,
    /// Deliveries recorded (the sum of `counts`).
    pub count: u64,
}

/// What [`Hub::stats_by_label`](crate::Hub::stats_by_label) reports for one label.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LabelStats {
    /// The label (`"sse"`, `"ws"`, `"longpoll"`, …).
    pub label: String,
    /// Live readers now: subscriptions, and fetches waiting for an event.
    pub live: u64,
    /// Fetches answered (short and long polls) since the hub was built.
    pub fetches: u64,
    /// Delivery latencies; its `count` is the events delivered to this label's readers.
    pub latency: LatencyHistogram,
}

/// The live counters of one label.
pub(crate) struct LabelCounters {
    label: Label,
    live: AtomicU64,
    fetches: AtomicU64,
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl LabelCounters {
    pub(crate) fn new(label: Label) -> Self {
        Self {
            label,
            live: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn label(&self) -> &Label {
        &self.label
    }

    pub(crate) fn joined(&self) {
        self.live.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn left(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn fetched(&self) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the latency of each of `events`, handed to a reader now; returns the first's,
    /// in microseconds (0 for none), so a reader learns how far behind it is without reading
    /// the clock again.
    pub(crate) fn delivered(&self, events: &[Arc<Event>]) -> u64 {
        if events.is_empty() {
            return 0;
        }
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut sum = 0u64;
        // Consecutive events of a batch were mostly published close together: add up runs of
        // the same bucket locally and touch the shared counter once per run.
        let mut run: Option<(usize, u64)> = None;
        let mut first = None;
        for event in events {
            let latency = now_us.saturating_sub(event.timestamp_ms().saturating_mul(1000));
            sum = sum.saturating_add(latency);
            first.get_or_insert(latency);
            let bucket = BOUNDS_US.partition_point(|bound| *bound < latency);
            run = match run {
                Some((b, n)) if b == bucket => Some((b, n + 1)),
                Some((b, n)) => {
                    self.buckets[b].fetch_add(n, Ordering::Relaxed);
                    Some((bucket, 1))
                }
                None => Some((bucket, 1)),
            };
        }
        if let Some((b, n)) = run {
            self.buckets[b].fetch_add(n, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(sum, Ordering::Relaxed);
        first.unwrap_or(0)
    }

    pub(crate) fn snapshot(&self) -> LabelStats {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let count = counts.iter().sum();
        LabelStats {
            label: self.label.to_string(),
            live: self.live.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
            latency: LatencyHistogram {
                counts,
                // Microseconds to seconds; precision lost past 2^53 µs (285 years) is fine.
                #[allow(clippy::cast_precision_loss)]
                sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
                count,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::Epoch;
    use crate::event::{Data, EventParts};
    use crate::topic::TopicName;

    fn published_ago(ms: u64) -> Arc<Event> {
        let now_ms =
            u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
        Arc::new(Event::from_parts(EventParts {
            topic: TopicName::new("t").unwrap(),
            event_type: "message".into(),
            data: Data::from(serde_json::json!(1)),
            seq: 1,
            position: 1,
            epoch: Epoch::from_u32(1),
            timestamp_ms: now_ms - ms,
            from: None,
            latest_key: None,
        }))
    }

    #[test]
    fn latencies_land_in_their_buckets() {
        let counters = LabelCounters::new(Label::Borrowed("sse"));
        let batch = [published_ago(20), published_ago(20), published_ago(3_000), published_ago(60_000)];
        counters.delivered(&batch);
        counters.delivered(&[]);
        let stats = counters.snapshot();
        assert_eq!(stats.label, "sse");
        assert_eq!(stats.latency.count, 4);
        assert_eq!(stats.latency.counts.len(), LATENCY_BUCKETS.len() + 1);
        // 20 ms (plus the test's own time, well under 5 ms) is in the 25 ms bucket.
        assert_eq!(stats.latency.counts[4], 2, "{:?}", stats.latency.counts);
        // 3 s is in the 5 s bucket; 60 s is above every bound.
        assert_eq!(stats.latency.counts[11], 1, "{:?}", stats.latency.counts);
        assert_eq!(stats.latency.counts[13], 1, "{:?}", stats.latency.counts);
        assert!(stats.latency.sum_seconds >= 63.04 && stats.latency.sum_seconds < 63.1);
    }

    #[test]
    fn the_public_bounds_match_the_internal_ones() {
        for (us, s) in BOUNDS_US.iter().zip(LATENCY_BUCKETS) {
            #[allow(clippy::cast_precision_loss)]
            let seconds = *us as f64 / 1e6;
            assert!((seconds - s).abs() < 1e-12, "{us} µs vs {s} s");
        }
    }

    #[test]
    fn live_readers_and_fetches_are_counted() {
        let counters = LabelCounters::new(Label::Borrowed("longpoll"));
        counters.joined();
        counters.joined();
        counters.left();
        counters.fetched();
        let stats = counters.snapshot();
        assert_eq!((stats.live, stats.fetches, stats.latency.count), (1, 1, 0));
    }
}
