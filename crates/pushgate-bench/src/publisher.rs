//! The open-loop publisher: publish number `i` is due at `start + i / rate` and is written when
//! due, whether or not earlier ones were answered (requests are pipelined on a few keep-alive
//! connections), so a slow server cannot slow the load down and hide its latency.
//!
//! Each message's stamp carries its *scheduled* time, so if the publisher itself runs late the
//! lateness is counted as latency, not hidden; the report gives the worst lateness.
//!
//! A topic always uses the same connection, so its publishes reach the server in order.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt as _;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::accounting::SeqSet;
use crate::conn::{self, HttpConn};
use crate::http;
use crate::payload::{self, Stamp};
use crate::profile::{self, Endpoint, Profile};
use crate::subscriber::now_us;

/// Most publishes written in one batch (one write per connection).
const MAX_BATCH: u64 = 10_000;

/// What to publish.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Publishes per second.
    pub(crate) rate: f64,
    /// How long to publish.
    pub(crate) duration: Duration,
    /// The run's topics; publish `i` goes to topic `i % topics.len()`.
    pub(crate) topics: Vec<Arc<str>>,
    /// Payload size in bytes.
    pub(crate) payload: usize,
    /// Keep-alive connections to publish on.
    pub(crate) connections: usize,
}

impl Plan {
    /// Publishes in the whole run.
    pub(crate) fn total(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round() as u64
    }

    /// The highest sequence number any topic can get, plus one.
    pub(crate) fn seq_limit(&self) -> u64 {
        self.total() / self.topics.len().max(1) as u64 + 2
    }
}

/// What happened to the publishes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Per topic: the sequence numbers the server acknowledged with a 2xx.
    pub(crate) acknowledged: Vec<SeqSet>,
    /// Publishes written.
    pub(crate) sent: u64,
    /// Publishes answered with another status.
    pub(crate) refused: u64,
    /// The worst time a publish was written after it was due.
    pub(crate) max_lateness: Duration,
    /// The first failure, if any.
    pub(crate) error: Option<String>,
}

/// Live counters for the progress bar.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Publishes written so far.
    pub(crate) sent: AtomicU64,
}

/// One pipelined connection's bookkeeping: what was sent and not yet answered, in order.
#[derive(Debug, Default)]
struct InFlight {
    queue: Mutex<VecDeque<(u32, u64)>>,
}

/// Publishes `plan` to `endpoint` as `profile` says; returns once every publish is answered,
/// or `stop` fires.
pub(crate) async fn run(
    plan: Plan,
    endpoint: Arc<Endpoint>,
    profile: Arc<Profile>,
    progress: Arc<Progress>,
    stop: CancellationToken,
) -> anyhow::Result<Outcome> {
    let topics = plan.topics.len().max(1);
    let connections = plan.connections.clamp(1, topics);
    let acknowledged = Arc::new(Mutex::new(vec![SeqSet::default(); topics]));
    let refused = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = watch::channel(false);
    let mut writers = Vec::new();
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let stream = conn::connect(endpoint.addr, Ipv4Addr::LOCALHOST).await?;
        let (read, write) = stream.into_split();
        let in_flight = Arc::new(InFlight::default());
        let (tx, rx) = mpsc::channel::<Batch>(64);
        writers.push((tx, tokio::spawn(write_loop(write, rx, in_flight.clone()))));
        readers.spawn(read_loop(
            HttpConn::new(read),
            in_flight,
            acknowledged.clone(),
            refused.clone(),
            done_rx.clone(),
            stop.clone(),
        ));
    }
    let schedule = Schedule {
        paths: plan.topics.iter().map(|topic| profile::fill(&profile.publish.path, topic, "")).collect(),
        plan: plan.clone(),
        endpoint: endpoint.clone(),
        profile: profile.clone(),
    };
    let senders: Vec<mpsc::Sender<Batch>> = writers.iter().map(|(tx, _)| tx.clone()).collect();
    let scheduler_stop = stop.clone();
    let scheduler_progress = progress.clone();
    let (result_tx, result_rx) = tokio::sync::oneshot::channel();
    // A thread of its own: tokio's timer wheel has a 1 ms resolution, which would add up to a
    // millisecond to every stamped latency; a sleeping thread wakes within tens of µs.
    std::thread::Builder::new()
        .name("publish-schedule".to_owned())
        .spawn(move || {
            let result = schedule.run(&senders, &scheduler_progress, &scheduler_stop);
            drop(senders);
            let _ = result_tx.send(result);
        })
        .context("cannot start the publishing thread")?;
    let (max_lateness, mut error) =
        result_rx.await.unwrap_or((Duration::ZERO, Some("the schedule thread died".to_owned())));
    let mut sent = 0;
    // The write halves are kept open until every answer is in: dropping one half-closes the
    // connection, and a server may then drop the answers still queued.
    let mut open_halves = Vec::new();
    for (tx, writer) in writers {
        drop(tx);
        match writer.await {
            Ok((written, half, result)) => {
                sent += written;
                open_halves.push(half);
                if let Err(err) = result {
                    error = error.or(Some(format!("publish: {err}")));
                }
            }
            Err(err) => error = error.or(Some(format!("publish writer: {err}"))),
        }
    }
    let _ = done_tx.send(true);
    while let Some(result) = readers.join_next().await {
        if let Ok(Err(err)) = result {
            error = error.or(Some(format!("publish answers: {err}")));
        }
    }
    drop(open_halves);
    let acknowledged = std::mem::take(&mut *acknowledged.lock());
    Ok(Outcome { acknowledged, sent, refused: refused.load(Ordering::Relaxed), max_lateness, error })
}

/// The publishing schedule, run on its own thread.
struct Schedule {
    plan: Plan,
    paths: Vec<String>,
    endpoint: Arc<Endpoint>,
    profile: Arc<Profile>,
}

impl Schedule {
    /// Hands every publish to its connection's writer when due; returns the worst lateness and
    /// the first failure.
    fn run(
        &self,
        senders: &[mpsc::Sender<Batch>],
        progress: &Progress,
        stop: &CancellationToken,
    ) -> (Duration, Option<String>) {
        let plan = &self.plan;
        let topics = plan.topics.len().max(1);
        let connections = senders.len().max(1);
        let total = plan.total();
        let mut seqs = vec![0u64; topics];
        let mut max_lateness = Duration::ZERO;
        let start = std::time::Instant::now();
        let start_us = now_us();
        let due = |i: u64| Duration::from_secs_f64(i as f64 / plan.rate);
        let mut i = 0;
        // Each pass hands over every publish due by now (at least one), so it ends after
        // `total` publishes; `stop` ends it early.
        while i < total && !stop.is_cancelled() {
            let wait = (start + due(i)).saturating_duration_since(std::time::Instant::now());
            // Sleeping in slices keeps `stop` responsive.
            std::thread::sleep(wait.min(Duration::from_millis(100)));
            let now = std::time::Instant::now();
            if start + due(i) > now {
                continue;
            }
            let mut batches: Vec<Batch> = (0..connections).map(|_| Batch::default()).collect();
            let first = i;
            while i < total && i - first < MAX_BATCH && start + due(i) <= now {
                let topic = (i % topics as u64) as usize;
                seqs[topic] += 1;
                let offset = due(i);
                let stamp = Stamp {
                    topic: topic as u32,
                    seq: seqs[topic],
                    sent_us: start_us + u64::try_from(offset.as_micros()).unwrap_or(u64::MAX),
                };
                let body =
                    self.profile.publish.body.replace("{payload}", &payload::build(stamp, plan.payload));
                let batch = &mut batches[topic % connections];
                batch.bytes.extend(http::request(
                    "POST",
                    &self.paths[topic],
                    &self.endpoint.host,
                    &[],
                    Some((&self.profile.publish.content_type, body.as_bytes())),
                ));
                batch.publishes.push((stamp.topic, stamp.seq));
                max_lateness = max_lateness.max(now.saturating_duration_since(start + offset));
                i += 1;
            }
            for (batch, tx) in batches.into_iter().zip(senders) {
                if batch.publishes.is_empty() {
                    continue;
                }
                let count = batch.publishes.len() as u64;
                // Blocks when the writer is 64 batches behind: the server is not reading.
                if tx.blocking_send(batch).is_err() {
                    return (max_lateness, Some("a publishing connection failed".to_owned()));
                }
                progress.sent.fetch_add(count, Ordering::Relaxed);
            }
        }
        (max_lateness, None)
    }
}

/// Publishes written together on one connection.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    publishes: Vec<(u32, u64)>,
}

/// Writes batches as they come; returns how many publishes it wrote, the write half (still
/// open) and how writing ended.
async fn write_loop(
    mut write: OwnedWriteHalf,
    mut batches: mpsc::Receiver<Batch>,
    in_flight: Arc<InFlight>,
) -> (u64, OwnedWriteHalf, std::io::Result<()>) {
    let mut written = 0;
    // Ends when the scheduler drops its sender; each batch is bounded.
    while let Some(batch) = batches.recv().await {
        // Queued before writing, so an answer never arrives before its entry.
        in_flight.queue.lock().extend(&batch.publishes);
        if let Err(err) = write.write_all(&batch.bytes).await {
            return (written, write, Err(err));
        }
        written += batch.publishes.len() as u64;
    }
    (written, write, Ok(()))
}

/// Reads the answers in order and records which publishes were acknowledged; ends when the
/// writer is done and nothing is outstanding, or at `stop`.
async fn read_loop(
    mut conn: HttpConn<OwnedReadHalf>,
    in_flight: Arc<InFlight>,
    acknowledged: Arc<Mutex<Vec<SeqSet>>>,
    refused: Arc<AtomicU64>,
    mut done: watch::Receiver<bool>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    // Each pass reads one answer or notices the end; `stop` bounds it in time.
    loop {
        let finished = *done.borrow();
        if finished && in_flight.queue.lock().is_empty() {
            return Ok(());
        }
        let response = tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            response = conn.read_response() => response?,
            _ = done.changed(), if !finished => continue,
        };
        let Some((topic, seq)) = in_flight.queue.lock().pop_front() else {
            return Err(std::io::Error::other("an answer to a publish that was not sent"));
        };
        if (200..300).contains(&response.head.status) {
            if let Some(set) = acknowledged.lock().get_mut(topic as usize) {
                set.insert(seq);
            }
        } else {
            refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}
