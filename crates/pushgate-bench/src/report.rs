//! The results of one transport's run: the JSON record (`--json`), the terminal table, and the
//! figures derived from raw counts.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency percentiles, µs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Latency {
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

/// Connection-setup percentiles, µs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Setup {
    pub(crate) p50: u64,
    pub(crate) p99: u64,
}

/// One transport against one target: the object written per transport to `--json`.
///
/// Server figures are `null` when the server's process is unknown (`--url` without
/// `--server-pid`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TransportReport {
    pub(crate) transport: String,
    /// The profile name (`pushgate`, `nchan`, or `--label`).
    pub(crate) target: String,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) out_of_order: u64,
    pub(crate) latency_us: Latency,
    pub(crate) requests_per_message: Option<f64>,
    pub(crate) bytes_per_message: Option<f64>,
    pub(crate) server_cpu_seconds: Option<f64>,
    pub(crate) server_cpu_us_per_delivery: Option<f64>,
    pub(crate) server_peak_rss_bytes: Option<u64>,
    pub(crate) rss_per_connection_bytes: Option<f64>,
    pub(crate) connect_us: Setup,
    /// The bench's own CPU over the measured window, percent of all the machine's cores.
    pub(crate) client_cpu_percent: f64,

    // Beyond the fields the issue names: the scenario and what explains the numbers.
    pub(crate) subscribers: usize,
    pub(crate) topics: usize,
    pub(crate) rate: f64,
    pub(crate) payload_bytes: usize,
    pub(crate) duration_s: f64,
    pub(crate) poll_interval_s: f64,
    /// Publishes written, and how many the server refused.
    pub(crate) published: u64,
    pub(crate) publish_refused: u64,
    /// The worst delay of a publish behind its schedule (counted in the latency).
    pub(crate) publisher_max_lateness_us: u64,
    /// Deliveries owed: each acknowledged publish times the subscribers of its topic.
    pub(crate) expected: u64,
    /// Stamps that were malformed, for another topic or out of range.
    pub(crate) invalid: u64,
    /// Subscriptions established, and subscribers that failed or were cut off.
    pub(crate) connected: usize,
    pub(crate) failed: usize,
    pub(crate) first_error: Option<String>,
    /// Subscriber HTTP requests (a WebSocket upgrade or an SSE request counts as one).
    pub(crate) requests: u64,
    pub(crate) bad_statuses: u64,
    pub(crate) reconnects: u64,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    /// Server CPU per subscriber request (short poll's figure of merit; publishes included).
    pub(crate) server_cpu_us_per_request: Option<f64>,
    /// Server memory before the subscribers connected and once they all had (idle).
    pub(crate) server_rss_idle_before_bytes: Option<u64>,
    pub(crate) server_rss_idle_after_bytes: Option<u64>,
    /// The measured window (first publish to end of drain), seconds.
    pub(crate) window_s: f64,
    /// Deliveries owed per second of publishing: the load offered.
    pub(crate) offered_deliveries_per_second: f64,
    pub(crate) client_cores: usize,
    /// The machine's one-minute load average when publishing started and when the window
    /// ended: other processes competing for the cores show here.
    pub(crate) load_average: [Option<f64>; 2],
    /// The bench, not the server, limited this run.
    pub(crate) client_bound: bool,
    pub(crate) notes: Vec<String>,
    /// The latency distribution: `[µs, percentile]` points, for charts.
    pub(crate) latency_cdf: Vec<[f64; 2]>,
    /// This transport ran at the same time as the others of `group_of`, against one server
    /// (`--concurrent`): the server figures (CPU, CPU per delivery and per request, memory per
    /// connection, peak memory) are the shared run's, divided by the deliveries, requests and
    /// connections of all its groups; client CPU is the bench's for the whole run.
    #[serde(default)]
    pub(crate) concurrent: bool,
    /// The transports of that run, in the order given (empty when run alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) group_of: Vec<String>,
    /// The server's (master) process id, when known: one child per run, so the groups of a
    /// concurrent run share it.
    #[serde(default)]
    pub(crate) server_pid: Option<u32>,
}

/// Percentiles of a latency histogram.
pub(crate) fn latency(histogram: &Histogram<u64>) -> Latency {
    if histogram.is_empty() {
        return Latency::default();
    }
    Latency {
        p50: histogram.value_at_quantile(0.5),
        p90: histogram.value_at_quantile(0.9),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        max: histogram.max(),
    }
}

/// Setup percentiles.
pub(crate) fn setup(histogram: &Histogram<u64>) -> Setup {
    if histogram.is_empty() {
        return Setup::default();
    }
    Setup { p50: histogram.value_at_quantile(0.5), p99: histogram.value_at_quantile(0.99) }
}

/// `[µs, percentile]` points of the distribution, denser in the tail.
pub(crate) fn cdf(histogram: &Histogram<u64>) -> Vec<[f64; 2]> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let mut quantiles: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
    quantiles.extend((1..10).map(|i| 0.99 + f64::from(i) / 1000.0));
    quantiles.extend((1..10).map(|i| 0.999 + f64::from(i) / 10_000.0));
    quantiles.push(1.0);
    quantiles.iter().map(|q| [histogram.value_at_quantile(*q) as f64, q * 100.0]).collect()
}

/// `a / b`, or `None` when `b` is zero.
pub(crate) fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// A duration in µs for humans: `850µs`, `12.3ms`, `1.24s`.
pub(crate) fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..10_000 => format!("{:.2}ms", us as f64 / 1e3),
        10_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// A byte count for humans: `812B`, `10.4KB`, `3.1MB` (decimal units).
pub(crate) fn bytes(value: f64) -> String {
    if value < 1e3 {
        format!("{value:.0}B")
    } else if value < 1e6 {
        format!("{:.1}KB", value / 1e3)
    } else {
        format!("{:.1}MB", value / 1e6)
    }
}

/// A server-CPU figure derived from `cpu_seconds` of measured CPU, written with only the digits
/// the measurement supports: `/proc` counts CPU in clock ticks (10 ms), so a run that measured
/// 0.07 s cannot tell 7.00 from 7.49 µs and prints `7`, while 30 s of CPU supports `9.81`.
pub(crate) fn cpu_figure(value: f64, cpu_seconds: Option<f64>) -> String {
    let tick = 1.0 / crate::procstat::ticks_per_second();
    let relative = cpu_seconds.filter(|cpu| *cpu > 0.0).map_or(1.0, |cpu| tick / cpu);
    // One significant digit per factor of ten of precision, at least one and at most four.
    let digits = (-relative.log10()).floor().clamp(1.0, 4.0) as i32;
    let magnitude = if value > 0.0 { value.abs().log10().floor() as i32 } else { 0 };
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{value:.decimals$}")
}

fn opt(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "-".to_owned(), format)
}

/// How a concurrent run is named in the table: its transports joined by `+`.
fn run_name(report: &TransportReport) -> String {
    report.group_of.join("+")
}

/// The terminal table: one row per report (a transport of a concurrent run is marked `*`), a
/// footnote per concurrent run, then the notes (a note the groups of a run share, once).
pub(crate) fn table(reports: &[TransportReport]) -> String {
    let header = [
        "target",
        "transport",
        "delivered",
        "lost",
        "dup",
        "ooo",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "req/msg",
        "B/msg",
        "srv CPU",
        "µs/deliv",
        "RSS/conn",
        "peak RSS",
        "setup p50/p99",
        "client CPU",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.target.clone(),
                if r.concurrent { format!("{}*", r.transport) } else { r.transport.clone() },
                r.delivered.to_string(),
                r.lost.to_string(),
                r.duplicated.to_string(),
                r.out_of_order.to_string(),
                micros(r.latency_us.p50),
                micros(r.latency_us.p90),
                micros(r.latency_us.p99),
                micros(r.latency_us.p999),
                micros(r.latency_us.max),
                opt(r.requests_per_message, |v| format!("{v:.3}")),
                opt(r.bytes_per_message, |v| format!("{v:.0}")),
                opt(r.server_cpu_seconds, |v| format!("{v:.2}s")),
                opt(r.server_cpu_us_per_delivery, |v| cpu_figure(v, r.server_cpu_seconds)),
                opt(r.rss_per_connection_bytes, bytes),
                opt(r.server_peak_rss_bytes.map(|v| v as f64), bytes),
                format!("{}/{}", micros(r.connect_us.p50), micros(r.connect_us.p99)),
                format!("{:.0}%{}", r.client_cpu_percent, if r.client_bound { " (!)" } else { "" }),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let cells: Vec<String> =
            cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:>width$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    };
    line(&mut out, header.to_vec());
    for row in &rows {
        line(&mut out, row.iter().map(String::as_str).collect());
    }
    let mut runs: Vec<(&str, String)> = Vec::new();
    for report in reports.iter().filter(|r| r.concurrent) {
        let run = (report.target.as_str(), run_name(report));
        if !runs.contains(&run) {
            runs.push(run);
        }
    }
    for (target, run) in &runs {
        let _ = writeln!(
            out,
            "* {target} {run}: one run, at the same time, against one server; srv CPU, peak RSS and \
             client CPU are the run's, µs/deliv = server CPU / deliveries of all its transports, \
             RSS/conn = memory growth / connections of all its transports"
        );
    }
    let mut printed: Vec<(String, &str)> = Vec::new();
    for report in reports {
        for note in &report.notes {
            // A note every group of a concurrent run has is about the run: printed once, under
            // its name. A group's own note is under its transport.
            let of_run = report.concurrent
                && reports
                    .iter()
                    .filter(|r| r.concurrent && r.target == report.target && r.group_of == report.group_of)
                    .all(|r| r.notes.contains(note));
            let who = if of_run {
                format!("{} {}", report.target, run_name(report))
            } else {
                format!("{} {}", report.target, report.transport)
            };
            if of_run && printed.iter().any(|(w, n)| *w == who && *n == note.as_str()) {
                continue;
            }
            let _ = writeln!(out, "{who}: {note}");
            printed.push((who, note));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_figures_keep_only_the_digits_the_run_measured() {
        // 100 ticks a second on Linux: 0.07 s is 7 ticks, good to one digit.
        assert_eq!(crate::procstat::ticks_per_second(), 100.0);
        assert_eq!(cpu_figure(7.0, Some(0.07)), "7");
        assert_eq!(cpu_figure(19.0, Some(1.9)), "19");
        assert_eq!(cpu_figure(9.8123, Some(30.0)), "9.81");
        assert_eq!(cpu_figure(0.3312, Some(300.0)), "0.3312");
        assert_eq!(cpu_figure(123.4, Some(5.0)), "123");
        // Without a CPU figure only one digit is known.
        assert_eq!(cpu_figure(4.2, None), "4");
    }

    #[test]
    fn percentiles_and_cdf_come_from_the_histogram() {
        let mut histogram = crate::subscriber::histogram();
        for us in 1..=1000 {
            histogram.record(us).unwrap();
        }
        let latency = latency(&histogram);
        assert_eq!((latency.p50, latency.p99, latency.max), (500, 990, 1000));
        let cdf = cdf(&histogram);
        assert_eq!(cdf.last(), Some(&[1000.0, 100.0]));
        assert!(cdf.windows(2).all(|pair| pair[0][0] <= pair[1][0] && pair[0][1] < pair[1][1]));
        assert_eq!(micros(1_500), "1.50ms");
        assert_eq!(bytes(10_240.0), "10.2KB");
        assert_eq!(ratio(1.0, 0.0), None);
    }

    /// A `--json` file written before `--concurrent` existed (sse then ws, one after another).
    /// A result file written before `--concurrent` existed (the knee run of the first pass), kept
    /// here because the results in docs/ are overwritten by every benchmark run.
    const EARLIER_RUN: &str = include_str!("../testdata/knee-pushgate-before-concurrent.json");

    #[test]
    fn earlier_json_reads_as_runs_of_one_transport() {
        let reports: Vec<TransportReport> = serde_json::from_str(EARLIER_RUN).unwrap();
        assert!(reports.len() >= 2);
        assert!(reports.iter().all(|r| !r.concurrent && r.group_of.is_empty() && r.server_pid.is_none()));
        let json = serde_json::to_value(&reports[0]).unwrap();
        assert_eq!(json["concurrent"], false);
        assert!(json.get("group_of").is_none());
    }

    #[test]
    fn a_concurrent_run_is_marked_and_its_shared_notes_are_printed_once() {
        let mut reports: Vec<TransportReport> = serde_json::from_str(EARLIER_RUN).unwrap();
        reports.truncate(2);
        let group_of = vec![reports[0].transport.clone(), reports[1].transport.clone()];
        for report in &mut reports {
            report.concurrent = true;
            report.group_of = group_of.clone();
            report.notes = vec!["the machine was busy".to_owned()];
        }
        reports[1].notes.push("3 subscribers failed".to_owned());
        let json = serde_json::to_value(&reports[0]).unwrap();
        assert_eq!(json["concurrent"], true);
        assert_eq!(json["group_of"], serde_json::json!(group_of));
        let table = table(&reports);
        let run = group_of.join("+");
        assert!(table.contains(&format!("{}*", group_of[0])), "{table}");
        assert!(table.contains(&format!("{}*", group_of[1])), "{table}");
        assert_eq!(table.matches(&format!("* pushgate {run}: one run")).count(), 1, "{table}");
        assert_eq!(table.matches("the machine was busy").count(), 1, "{table}");
        let own = format!("pushgate {}: 3 subscribers failed", group_of[1]);
        assert_eq!(table.matches(&own).count(), 1, "{table}");
        assert_eq!(table.matches(&format!("pushgate {run}: the machine was busy")).count(), 1, "{table}");
    }
}
