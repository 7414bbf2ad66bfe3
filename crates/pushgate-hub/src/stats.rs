//! The hub's counters: kept with atomics as the hub goes, read as a [`Stats`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::HubError;

/// A snapshot of the hub's counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events published since the hub was built.
    pub published: u64,
    /// Event deliveries (one per event per reader, subscriptions and fetches alike).
    pub delivered: u64,
    /// Subscribers cut off for lagging.
    pub lagged: u64,
    /// Resets reported (subscriptions and fetches).
    pub resets: u64,
    /// Live subscriptions now.
    pub subscribers: u64,
    /// Topics that take a slot toward the topic limit now: published to (or restored) and not
    /// forgotten yet. Topics only readers named take none.
    pub topics: u64,
    /// Subscriptions and fetches refused for naming more topics than allowed
    /// ([`HubError::TooManyTopics`]).
    pub refused_too_many_topics: u64,
    /// Publishes refused for data over the limit ([`HubError::DataTooLarge`]).
    pub refused_data_too_large: u64,
    /// Publishes whose idempotency key had been used: answered with the original, not stored.
    pub replayed: u64,
    /// Reads of the history tiers (one per chunk of a backfill).
    pub tier_reads: u64,
    /// Events read from the history tiers.
    pub tier_events: u64,
    /// Tier reads that failed or timed out, so the gap was reported as without tiers.
    pub tier_failures: u64,
    /// Bytes the retained history holds (events, their cached encodings, idempotency keys);
    /// see [`HubBuilder::history_max_bytes`](crate::HubBuilder::history_max_bytes).
    pub history_bytes: u64,
    /// The budget `history_bytes` is kept within; 0 for a storage that keeps none.
    pub history_max_bytes: u64,
    /// Events evicted to keep history within its budget.
    pub history_evicted: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) lagged: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) subscribers: AtomicU64,
    pub(crate) refused_too_many_topics: AtomicU64,
    pub(crate) refused_data_too_large: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) tier_reads: AtomicU64,
    pub(crate) tier_events: AtomicU64,
    pub(crate) tier_failures: AtomicU64,
}

impl Counters {
    /// Counts `err` when it is a refusal by a limit.
    pub(crate) fn refused(&self, err: &HubError) {
        match err {
            HubError::TooManyTopics { .. } => &self.refused_too_many_topics,
            HubError::DataTooLarge { .. } => &self.refused_data_too_large,
            _ => return,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn delivered(&self, n: usize) {
        self.delivered.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn lagged(&self) {
        self.lagged.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn subscribed(&self) {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn unsubscribed(&self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
    /// Counts one tier read and what it gave.
    pub(crate) fn tier_read<T>(&self, answer: &Result<crate::tier::Chunk, T>) {
        self.tier_reads.fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(chunk) => self.tier_events.fetch_add(chunk.events.len() as u64, Ordering::Relaxed),
            Err(_) => self.tier_failures.fetch_add(1, Ordering::Relaxed),
        };
    }
}
