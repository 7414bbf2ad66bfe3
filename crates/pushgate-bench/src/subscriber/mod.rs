//! Subscribers: one task per simulated client, on one of the four transports. Each counts its
//! own deliveries ([`SeqTracker`]) and socket bytes, records latencies into shared histograms,
//! and returns its record when the run's stop token fires.
//!
//! These clients stay hand-written rather than `pushgate-client`: the bench counts bytes at the
//! socket (the client's hyper and tungstenite hide them), scans the raw bytes for its payload
//! stamps ([`payload::scan`](crate::payload), the same for every transport and for other
//! servers' envelopes) instead of parsing each event object (at 18,000 subscribers a serde parse
//! of every event would load the bench's own cores, which share the machine with the gateway),
//! and must see a lost event or a dropped connection as such, where the client would reconnect
//! and resume.

mod poll;
mod sse;
mod ws;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::Transport;
use crate::accounting::{Arrival, SeqTracker};
use crate::payload;
use crate::profile::{Endpoint, Profile};

/// Latency histograms are sharded so subscribers on different threads rarely share a lock.
const LATENCY_SHARDS: usize = 16;
/// Highest latency recorded exactly: one hour, in µs (larger values are clamped to it).
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// How long one subscriber may take to connect and subscribe before it counts as failed.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Microseconds since the Unix epoch, the clock of the payload stamps.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A histogram of microseconds from 1 µs to an hour, three significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|err| panic!("histogram bounds: {err}"))
}

/// State shared by every subscriber of one transport group in a run (all of a run's
/// subscribers unless `--concurrent` runs several transports at once; then each group has its
/// own, and the groups share the stop token and the setup gate).
#[derive(Debug)]
pub(crate) struct Shared {
    latency: Vec<Mutex<Histogram<u64>>>,
    connect: Mutex<Histogram<u64>>,
    /// Distinct deliveries so far (all subscribers).
    pub(crate) delivered: AtomicU64,
    /// Subscribers whose subscription is established.
    pub(crate) connected: AtomicUsize,
    /// Subscribers that failed or were disconnected.
    pub(crate) failed: AtomicUsize,
    /// HTTP requests made so far (a WebSocket upgrade counts as one).
    pub(crate) requests: AtomicU64,
    /// Bytes read and written at the subscribers' sockets so far.
    pub(crate) wire_bytes: AtomicU64,
    /// Bytes each subscription took to set up (request and answer head, or upgrade), summed.
    pub(crate) setup_bytes: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Fires when the run ends.
    pub(crate) stop: CancellationToken,
    /// Bounds the connection setups in flight, so the server's accept queue never overflows.
    pub(crate) setup_gate: Arc<Semaphore>,
}

impl Shared {
    /// Counters for one group, ended by `stop`, its setups bounded by `setup_gate` (which the
    /// run's groups share, so `--setup-concurrency` holds for the whole run).
    pub(crate) fn new(stop: CancellationToken, setup_gate: Arc<Semaphore>) -> Self {
        Self {
            latency: (0..LATENCY_SHARDS).map(|_| Mutex::new(histogram())).collect(),
            connect: Mutex::new(histogram()),
            delivered: AtomicU64::new(0),
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
            setup_bytes: AtomicU64::new(0),
            first_error: Mutex::new(None),
            stop,
            setup_gate,
        }
    }

    /// All latency shards merged.
    pub(crate) fn latency(&self) -> Histogram<u64> {
        let mut total = histogram();
        for shard in &self.latency {
            // Same bounds everywhere, so adding cannot fail.
            let _ = total.add(&*shard.lock());
        }
        total
    }

    /// The connection-setup histogram.
    pub(crate) fn connect_times(&self) -> Histogram<u64> {
        self.connect.lock().clone()
    }

    /// The first failure any subscriber reported.
    pub(crate) fn first_error(&self) -> Option<String> {
        self.first_error.lock().clone()
    }

    /// Marks a subscription established `started.elapsed()` after its connect began, having
    /// taken `setup_bytes` on the wire.
    fn established(&self, started: Instant, setup_bytes: u64) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.connect.lock().saturating_record(us.max(1));
        self.connected.fetch_add(1, Ordering::Relaxed);
        self.setup_bytes.fetch_add(setup_bytes, Ordering::Relaxed);
    }

    /// Counts one subscriber request.
    fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().get_or_insert(what);
    }
}

/// Everything a subscriber task needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// Its index among its group's subscribers.
    pub(crate) index: usize,
    /// The transport.
    pub(crate) transport: Transport,
    /// Its topic's index.
    pub(crate) topic: u32,
    /// Its topic's name.
    pub(crate) topic_name: Arc<str>,
    /// The source address it connects from.
    pub(crate) source: Ipv4Addr,
    /// Sequence numbers at or above this cannot have been published.
    pub(crate) seq_limit: u64,
    /// Short polling interval.
    pub(crate) poll_interval: Duration,
    /// The server.
    pub(crate) endpoint: Arc<Endpoint>,
    /// How to talk to it.
    pub(crate) profile: Arc<Profile>,
}

/// What one subscriber reports at the end.
#[derive(Debug)]
pub(crate) struct Record {
    /// Its topic's index.
    pub(crate) topic: u32,
    /// Its deliveries.
    pub(crate) tracker: SeqTracker,
    /// Bytes read from its sockets.
    pub(crate) read: u64,
    /// Bytes written to its sockets.
    pub(crate) written: u64,
    /// HTTP requests it made (a WebSocket upgrade counts as one).
    pub(crate) requests: u64,
    /// Answers with an unexpected status.
    pub(crate) bad_statuses: u64,
    /// Connections it had to open again after the server closed one.
    pub(crate) reconnects: u64,
}

/// Reports a connection's byte counters to [`Shared::wire_bytes`] as they grow, so the run can
/// count the bytes of its measured window alone.
#[derive(Debug, Default)]
struct Meter {
    reported: u64,
}

impl Meter {
    fn update(&mut self, shared: &Shared, total: u64) {
        shared.wire_bytes.fetch_add(total.saturating_sub(self.reported), Ordering::Relaxed);
        self.reported = self.reported.max(total);
    }
}

/// Turns received text into deliveries: finds the stamps, tracks sequence numbers, records
/// latencies.
#[derive(Debug)]
struct Receiver {
    shared: Arc<Shared>,
    shard: usize,
    topic: u32,
    tracker: SeqTracker,
    latencies: Vec<u64>,
}

impl Receiver {
    fn new(shared: Arc<Shared>, spec: &Spec) -> Self {
        Self {
            shared,
            shard: spec.index % LATENCY_SHARDS,
            topic: spec.topic,
            tracker: SeqTracker::new(spec.seq_limit),
            latencies: Vec::new(),
        }
    }

    /// Accounts every stamp in `text`, which arrived at `received_us`.
    fn receive(&mut self, text: &[u8], received_us: u64) {
        let Self { tracker, latencies, topic, .. } = self;
        let malformed = payload::scan(text, |stamp| {
            if stamp.topic != *topic {
                tracker.invalid += 1;
            } else if tracker.record(stamp.seq) == Arrival::New {
                latencies.push(received_us.saturating_sub(stamp.sent_us).max(1));
            }
        });
        tracker.invalid += malformed;
        if !latencies.is_empty() {
            let mut shard = self.shared.latency[self.shard].lock();
            for latency in latencies.iter() {
                shard.saturating_record(*latency);
            }
            drop(shard);
            self.shared.delivered.fetch_add(latencies.len() as u64, Ordering::Relaxed);
            latencies.clear();
        }
    }

    fn into_record(self, read: u64, written: u64, requests: u64) -> Record {
        Record {
            topic: self.topic,
            tracker: self.tracker,
            read,
            written,
            requests,
            bad_statuses: 0,
            reconnects: 0,
        }
    }
}

/// Runs one subscriber until the stop token fires, then returns its record.
pub(crate) async fn run(spec: Spec, shared: Arc<Shared>) -> Record {
    match spec.transport {
        Transport::Poll | Transport::Longpoll => poll::run(spec, shared).await,
        Transport::Sse => sse::run(spec, shared).await,
        Transport::Ws => ws::run(spec, shared).await,
    }
}
