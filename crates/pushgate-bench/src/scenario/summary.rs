//! A run's figures turned into one report per transport group: each group's own deliveries,
//! latency, requests and bytes, beside the server's figures of the whole run, divided by the
//! deliveries, requests and connections of all its groups.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::accounting::Tally;
use crate::cli::RunArgs;
use crate::procstat;
use crate::publisher::Outcome;
use crate::report::{self, TransportReport};
use crate::server::Server;
use crate::subscriber::Record;

use super::{Group, Target};

/// Client CPU (percent of all cores) from which the bench calls itself the bottleneck.
const CLIENT_BOUND_PERCENT: f64 = 90.0;

/// What the groups of a run share: the scenario as run, the publisher's outcome and the
/// server's and the client's figures over the measured window.
pub(super) struct RunFigures {
    pub(super) outcome: Outcome,
    pub(super) expected_per_group: u64,
    pub(super) window: f64,
    /// Server CPU over the window, seconds.
    pub(super) server_cpu: Option<f64>,
    pub(super) idle_before: Option<procstat::Usage>,
    pub(super) idle_after: Option<procstat::Usage>,
    pub(super) end_usage: Option<procstat::Usage>,
    pub(super) client_cpu_percent: f64,
    pub(super) client_bound: bool,
    pub(super) cores: usize,
    pub(super) load_average: [Option<f64>; 2],
    /// Notes about the run as a whole, repeated in each group's report.
    pub(super) notes: Vec<String>,
}

impl RunFigures {
    /// Judges the run as a whole: whether the bench, not the server, limited it, and notes on
    /// whatever else may have (a busy machine, a late or refused publisher).
    pub(super) fn judge(&mut self) {
        let Self { outcome, window, cores, client_cpu_percent, .. } = self;
        let (cores, client_cpu_percent) = (*cores, *client_cpu_percent);
        let server_cpu_percent = self.server_cpu.map(|cpu| cpu / (*window * cores as f64) * 100.0);
        self.client_bound = client_cpu_percent >= CLIENT_BOUND_PERCENT
            || server_cpu_percent
                .is_some_and(|server| client_cpu_percent + server >= 95.0 && client_cpu_percent > server);
        let notes = &mut self.notes;
        if self.client_bound {
            notes.push(format!(
                "client-bound: the bench used {client_cpu_percent:.0}% of the {cores} cores{}; latency here measures \
                 the client as much as the server",
                server_cpu_percent.map_or(String::new(), |s| format!(" and the server {s:.0}%"))
            ));
        }
        // The run's own two processes account for a load of about 2 at most on a busy run.
        if let Some(load) =
            self.load_average.into_iter().flatten().reduce(f64::max).filter(|l| *l > cores as f64 + 1.0)
        {
            notes.push(format!(
                "the machine was busy (load average up to {load:.1} on {cores} cores): other processes competed for the CPU"
            ));
        }
        if outcome.max_lateness > Duration::from_millis(10) {
            let lateness_us = u64::try_from(outcome.max_lateness.as_micros()).unwrap_or(u64::MAX);
            notes.push(format!(
                "the publisher ran up to {} behind schedule (counted in the latency)",
                report::micros(lateness_us)
            ));
        }
        if outcome.refused > 0 || outcome.error.is_some() {
            notes.push(format!(
                "{} publishes refused{}",
                outcome.refused,
                outcome.error.as_ref().map_or(String::new(), |e| format!("; {e}"))
            ));
        }
    }
}

/// Sums over all groups of a run, the divisors of the shared server's figures.
pub(super) struct Totals {
    pub(super) delivered: u64,
    pub(super) connected: usize,
    pub(super) window_requests: u64,
}

/// One group's report: its own deliveries, latency, requests and bytes; the server's figures of
/// the whole run (divided by the deliveries and connections of all groups).
#[allow(clippy::too_many_arguments)] // Each is a different part of the run; a struct would only rename them.
pub(super) fn group_report(
    args: &RunArgs,
    target: &Target,
    server: &Server,
    run: &RunFigures,
    totals: &Totals,
    group_of: Option<Vec<String>>,
    group: &Group,
    records: &[Record],
    tally: Tally,
    mut notes: Vec<String>,
) -> TransportReport {
    let n = args.subscribers as usize;
    let shared = &group.shared;
    let (mut bytes_read, mut bytes_written, mut requests, mut bad_statuses, mut reconnects) = (0, 0, 0, 0, 0);
    for record in records {
        bytes_read += record.read;
        bytes_written += record.written;
        requests += record.requests;
        bad_statuses += record.bad_statuses;
        reconnects += record.reconnects;
    }
    notes.extend(run.notes.iter().cloned());
    let failed = group.failed();
    if failed > 0 {
        notes.push(format!(
            "{failed} subscribers failed or were cut off; first: {}",
            shared.first_error().unwrap_or_default()
        ));
    }
    if tally.delivered < run.expected_per_group && tally.lost == 0 {
        notes.push(
            "fewer deliveries than owed, yet nothing lost: some subscribers were not collected".to_owned(),
        );
    }
    let connected = group.connected();
    let delivered = tally.delivered as f64;
    let latency = shared.latency();
    let rss_per_connection = run
        .idle_before
        .zip(run.idle_after)
        .map(|(before, after)| (after.rss_bytes as f64 - before.rss_bytes as f64) / totals.connected as f64);
    let server_cpu_us_per = |count: f64| run.server_cpu.and_then(|cpu| report::ratio(cpu * 1e6, count));
    let setup_bytes = shared.setup_bytes.load(Ordering::Relaxed);
    TransportReport {
        transport: group.transport.name().to_owned(),
        target: target.label.clone(),
        delivered: tally.delivered,
        lost: tally.lost,
        duplicated: tally.duplicated,
        out_of_order: tally.out_of_order,
        latency_us: report::latency(&latency),
        requests_per_message: report::ratio((group.window_requests + connected as u64) as f64, delivered),
        bytes_per_message: report::ratio((group.window_bytes + setup_bytes) as f64, delivered),
        server_cpu_seconds: run.server_cpu,
        server_cpu_us_per_delivery: server_cpu_us_per(totals.delivered as f64),
        server_peak_rss_bytes: run.end_usage.map(|u| u.peak_rss_bytes),
        rss_per_connection_bytes: rss_per_connection,
        connect_us: report::setup(&shared.connect_times()),
        client_cpu_percent: run.client_cpu_percent,
        subscribers: n,
        topics: args.topics as usize,
        rate: args.rate,
        payload_bytes: args.payload,
        duration_s: args.duration.0.as_secs_f64(),
        poll_interval_s: args.poll_interval.0.as_secs_f64(),
        published: run.outcome.sent,
        publish_refused: run.outcome.refused,
        publisher_max_lateness_us: u64::try_from(run.outcome.max_lateness.as_micros()).unwrap_or(u64::MAX),
        expected: run.expected_per_group,
        invalid: tally.invalid,
        connected,
        failed,
        first_error: shared.first_error(),
        requests,
        bad_statuses,
        reconnects,
        bytes_read,
        bytes_written,
        server_cpu_us_per_request: server_cpu_us_per(totals.window_requests as f64),
        server_rss_idle_before_bytes: run.idle_before.map(|u| u.rss_bytes),
        server_rss_idle_after_bytes: run.idle_after.map(|u| u.rss_bytes),
        window_s: run.window,
        offered_deliveries_per_second: run.expected_per_group as f64 / args.duration.0.as_secs_f64(),
        client_cores: run.cores,
        load_average: run.load_average,
        client_bound: run.client_bound,
        notes,
        latency_cdf: report::cdf(&latency),
        concurrent: group_of.is_some(),
        group_of: group_of.unwrap_or_default(),
        server_pid: server.pid,
    }
}
