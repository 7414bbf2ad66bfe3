//! One run per transport, each in the same phases:
//!
//! 1. the server: a fresh gateway child (or the external target, checked for health);
//! 2. its memory, idle; then every subscriber connects (setup time measured per subscriber);
//! 3. the server confirms it counts them all (the profile's `[ready]` page), then an idle
//!    phase, at whose end the memory is read again: the difference per connection;
//! 4. the measured window: open-loop publishing for `--duration`, then a drain until every
//!    acknowledged publish reached every subscriber of its topic or `--drain` passed;
//! 5. the subscribers stop and report; loss, duplicates and reordering are counted from their
//!    sequence numbers.

use std::io::IsTerminal as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

use crate::Transport;
use crate::accounting::Tally;
use crate::cli::RunArgs;
use crate::procstat;
use crate::profile::{self, Endpoint, Profile};
use crate::publisher::{self, Plan, Progress};
use crate::report::{self, TransportReport};
use crate::server::{self, Server};
use crate::subscriber::{self, Record, Shared, Spec};

/// Client CPU (percent of all cores) from which the bench calls itself the bottleneck.
const CLIENT_BOUND_PERCENT: f64 = 90.0;
/// How long stopped subscribers get to hand in their records.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server gets to count every subscriber.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the load is aimed at.
#[derive(Debug)]
enum Kind {
    /// Start this gateway binary for each transport.
    Child(PathBuf),
    /// A server already running.
    External { endpoint: Endpoint, pid: Option<u32> },
}

#[derive(Debug)]
struct Target {
    profile: Arc<Profile>,
    label: String,
    kind: Kind,
}

impl Target {
    fn from_args(args: &RunArgs) -> anyhow::Result<Self> {
        let profile = match &args.target_profile {
            Some(path) => Profile::load(path)?,
            None => Profile::pushgate(),
        };
        let kind = if args.url.is_some() || args.target_profile.is_some() {
            let endpoint = Endpoint::parse(args.url.as_deref().unwrap_or(&profile.url))?;
            let pid = args.server_pid.or_else(|| {
                let path = profile.pid_file.as_ref()?;
                let pid = std::fs::read_to_string(path).ok()?.trim().parse().ok();
                if pid.is_none() {
                    eprintln!(
                        "warning: no process id in {}: no server CPU or memory figures",
                        path.display()
                    );
                }
                pid
            });
            Kind::External { endpoint, pid }
        } else {
            Kind::Child(server::gateway_binary(args.server_bin.as_deref())?)
        };
        let label = args.label.clone().unwrap_or_else(|| profile.name.clone());
        Ok(Self { profile: Arc::new(profile), label, kind })
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::Child(bin) => format!("{} (a fresh child per transport: {})", self.label, bin.display()),
            Kind::External { endpoint, pid: Some(pid) } => {
                format!("{} at {} (pid {pid})", self.label, endpoint.host)
            }
            Kind::External { endpoint, pid: None } => {
                format!("{} at {} (no pid: no server CPU or memory figures)", self.label, endpoint.host)
            }
        }
    }
}

/// The process id in `path`, if it holds one.
fn read_pid(path: &std::path::Path) -> Option<u32> {
    let pid = std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse().ok());
    if pid.is_none() {
        eprintln!("warning: no process id in {}: no server CPU or memory figures", path.display());
    }
    pid
}

/// The progress bar, or plain lines when stderr is not a terminal.
struct Ui {
    bar: ProgressBar,
    visible: bool,
}

impl Ui {
    fn new() -> Self {
        let visible = std::io::stderr().is_terminal();
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(1), target);
        let style = ProgressStyle::with_template("{prefix:>9} {spinner} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Self { bar, visible }
    }

    fn phase(&self, prefix: &str, len: u64) {
        self.bar.set_prefix(prefix.to_owned());
        self.bar.set_length(len.max(1));
        self.bar.set_position(0);
        self.bar.set_message("");
    }

    fn log(&self, line: String) {
        if self.visible {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

/// Runs every transport of `args` in turn and returns their reports.
pub(crate) async fn run_all(args: &RunArgs) -> anyhow::Result<Vec<TransportReport>> {
    let needed = u64::from(args.subscribers) + 256;
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("cannot raise the open-files limit")?;
    if limit < needed {
        bail!(
            "the open-files limit is {limit}, below the {needed} that {} subscribers need: raise it (ulimit -Hn)",
            args.subscribers
        );
    }
    let target = Target::from_args(args)?;
    profile::require(&target.profile, &args.transports)?;
    let ui = Ui::new();
    let per_topic = f64::from(args.subscribers) / f64::from(args.topics);
    ui.log(format!(
        "pushgate-bench: {} subscribers on {} topics; {} publishes/s of {} B for {:?} (~{:.0} deliveries/s); \
         poll interval {:?}; target {}",
        args.subscribers,
        args.topics,
        args.rate,
        args.payload,
        args.duration.0,
        args.rate * per_topic,
        args.poll_interval.0,
        target.describe()
    ));
    let mut reports = Vec::new();
    for (run_index, transport) in args.transports.iter().enumerate() {
        let report = run_transport(args, &target, *transport, run_index, &ui)
            .await
            .with_context(|| format!("{} run failed", transport.name()))?;
        ui.log(format!(
            "{:>9}: delivered {} of {}, lost {}, p99 {}, server CPU {}",
            transport.name(),
            report.delivered,
            report.expected,
            report.lost,
            report::micros(report.latency_us.p99),
            report.server_cpu_us_per_delivery.map_or("-".to_owned(), |v| format!("{v:.2} µs/delivery")),
        ));
        reports.push(report);
    }
    ui.bar.finish_and_clear();
    Ok(reports)
}

async fn run_transport(
    args: &RunArgs,
    target: &Target,
    transport: Transport,
    run_index: usize,
    ui: &Ui,
) -> anyhow::Result<TransportReport> {
    let server = match &target.kind {
        Kind::Child(bin) => Server::spawn(bin, args.subscribers as usize + server::CONNECTION_MARGIN).await?,
        Kind::External { endpoint, pid } => {
            let mut pid = *pid;
            if let (Some(stop), Some(start)) = (&target.profile.stop_command, &target.profile.start_command) {
                server::run_command(stop).await?;
                server::run_command(start).await?;
                if let Some(fresh) = target.profile.pid_file.as_deref().and_then(read_pid) {
                    pid = Some(fresh);
                }
            }
            let server = Server::external(endpoint.clone(), pid);
            if let Some(health) = &target.profile.health {
                server.wait_healthy(health).await?;
            }
            server
        }
    };
    let result = measure(args, target, transport, run_index, &server, ui).await;
    let stopped = server.stop().await;
    let report = result?;
    stopped.context("stopping the gateway")?;
    Ok(report)
}

/// How many subscribers the server reports, summed over the run's topics when the page is
/// per topic.
async fn ready_count(server: &Server, profile: &Profile, topics: &[Arc<str>]) -> Option<u64> {
    let ready = profile.ready.as_ref()?;
    let paths: Vec<String> = if ready.path.contains("{topic}") {
        topics.iter().map(|topic| profile::fill(&ready.path, topic, "")).collect()
    } else {
        vec![ready.path.clone()]
    };
    let mut total = 0;
    for path in paths {
        let response =
            crate::conn::get(server.endpoint.addr, &server.endpoint.host, &path, Duration::from_secs(5))
                .await
                .ok()?;
        total += profile::number_after(&String::from_utf8_lossy(&response.body), &ready.number_after)?;
    }
    Some(total)
}

#[allow(clippy::too_many_lines)] // The phases read best in order, in one place.
async fn measure(
    args: &RunArgs,
    target: &Target,
    transport: Transport,
    run_index: usize,
    server: &Server,
    ui: &Ui,
) -> anyhow::Result<TransportReport> {
    let n = args.subscribers as usize;
    let topic_count = args.topics as usize;
    // Fresh names per run, so an external server's retained messages of earlier runs never count.
    let run_id = format!("{:x}", subscriber::now_us() % 0xfff_ffff);
    let topics: Vec<Arc<str>> =
        (0..topic_count).map(|k| Arc::from(format!("pgb{run_id}.{}.{k}", transport.name()))).collect();
    let plan = Plan {
        rate: args.rate,
        duration: args.duration.0,
        topics: topics.clone(),
        payload: args.payload,
        connections: args.publish_connections as usize,
    };
    // Each source address gets at most ~8,000 of the ~28,000 ephemeral ports, and each run
    // (and each bench process) its own addresses, so ports still in TIME_WAIT from an earlier
    // run never run short.
    let per_run = args.source_addrs.map_or_else(|| n.div_ceil(8_000), usize::from).max(1);
    let first_source = 2 + (std::process::id() as usize * 7 + run_index * per_run) % (240 - per_run);

    sleep(Duration::from_millis(300)).await;
    let idle_before = server.usage();

    // Connect.
    ui.phase("connect", n as u64);
    let shared = Arc::new(Shared::new(args.setup_concurrency as usize));
    let mut tasks = JoinSet::new();
    for index in 0..n {
        let spec = Spec {
            index,
            transport,
            topic: (index % topic_count) as u32,
            topic_name: topics[index % topic_count].clone(),
            source: Ipv4Addr::new(127, 0, 0, (first_source + index % per_run) as u8),
            seq_limit: plan.seq_limit(),
            poll_interval: args.poll_interval.0,
            endpoint: server.endpoint.clone(),
            profile: target.profile.clone(),
        };
        tasks.spawn(subscriber::run(spec, shared.clone()));
    }
    let deadline = Instant::now() + subscriber::SETUP_TIMEOUT + Duration::from_millis(n as u64);
    let started = Instant::now();
    loop {
        let done = shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        ui.bar.set_position(done as u64);
        if done >= n || Instant::now() > deadline {
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    let mut notes = Vec::new();
    ui.log(format!("{:>9}: {connected} of {n} subscribed in {:.1?}", transport.name(), started.elapsed()));
    if connected == 0 {
        shared.stop.cancel();
        bail!("no subscriber could subscribe: {}", shared.first_error().unwrap_or_default());
    }

    // Ready and idle.
    if transport != Transport::Poll && target.profile.ready.is_some() {
        ui.phase("ready", connected as u64);
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut counted = 0;
        while Instant::now() < deadline {
            counted = ready_count(server, &target.profile, &topics).await.unwrap_or(0);
            ui.bar.set_position(counted);
            if counted >= connected as u64 {
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        if counted < connected as u64 {
            notes.push(format!(
                "the server counted only {counted} of {connected} subscribers before publishing"
            ));
        }
    }
    ui.phase("idle", 1);
    sleep(args.idle.0).await;
    let idle_after = server.usage();

    // The measured window.
    let total = plan.total();
    ui.phase("publish", total);
    let progress = Arc::new(Progress::default());
    let publish_stop = CancellationToken::new();
    let cpu_start = server.usage().map(|u| u.cpu_seconds);
    let self_start = procstat::self_cpu_seconds();
    let requests_start = shared.requests.load(Ordering::Relaxed);
    let bytes_start = shared.wire_bytes.load(Ordering::Relaxed);
    let load_start = procstat::load_average();
    let window_start = Instant::now();
    let publishing = tokio::spawn(publisher::run(
        plan.clone(),
        server.endpoint.clone(),
        target.profile.clone(),
        progress.clone(),
        publish_stop.clone(),
    ));
    let publish_end = window_start + args.duration.0;
    let answers_deadline = publish_end + args.drain.0 + Duration::from_secs(10);
    while !publishing.is_finished() && Instant::now() < answers_deadline {
        ui.bar.set_position(progress.sent.load(Ordering::Relaxed));
        ui.bar.set_message(format!("delivered {}", shared.delivered.load(Ordering::Relaxed)));
        sleep(Duration::from_millis(100)).await;
    }
    publish_stop.cancel();
    let outcome = publishing.await.context("the publisher panicked")??;
    let mut subscribers_of = vec![0u64; topic_count];
    for index in 0..n {
        subscribers_of[index % topic_count] += 1;
    }
    let expected: u64 = outcome
        .acknowledged
        .iter()
        .zip(&subscribers_of)
        .map(|(acked, subscribers)| acked.len() * subscribers)
        .sum();
    let extra = if transport == Transport::Poll { args.poll_interval.0 } else { Duration::ZERO };
    let drain_deadline = publish_end.max(Instant::now()) + args.drain.0 + extra;
    ui.phase("drain", expected);
    while Instant::now() < drain_deadline {
        let delivered = shared.delivered.load(Ordering::Relaxed);
        ui.bar.set_position(delivered);
        if delivered >= expected || shared.failed.load(Ordering::Relaxed) >= n {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let window = window_start.elapsed().as_secs_f64();
    let load_end = procstat::load_average();
    let end_usage = server.usage();
    let client_cpu = procstat::self_cpu_seconds() - self_start;
    let window_requests = shared.requests.load(Ordering::Relaxed) - requests_start;
    let window_bytes = shared.wire_bytes.load(Ordering::Relaxed) - bytes_start;

    // Stop and collect.
    shared.stop.cancel();
    let mut records: Vec<Record> = Vec::with_capacity(n);
    let collected = timeout(COLLECT_TIMEOUT, async {
        while let Some(result) = tasks.join_next().await {
            if let Ok(record) = result {
                records.push(record);
            }
        }
    })
    .await;
    if collected.is_err() {
        tasks.abort_all();
        notes.push(format!(
            "{} subscribers did not stop in time; their deliveries are not counted",
            n - records.len()
        ));
    }

    let mut tally = Tally::default();
    let (mut bytes_read, mut bytes_written, mut requests, mut bad_statuses, mut reconnects) = (0, 0, 0, 0, 0);
    let empty = Default::default();
    for record in &records {
        tally.add(&record.tracker, outcome.acknowledged.get(record.topic as usize).unwrap_or(&empty));
        bytes_read += record.read;
        bytes_written += record.written;
        requests += record.requests;
        bad_statuses += record.bad_statuses;
        reconnects += record.reconnects;
    }
    let delivered = tally.delivered as f64;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let client_cpu_percent = client_cpu / (window * cores as f64) * 100.0;
    let server_cpu = cpu_start.zip(end_usage.map(|u| u.cpu_seconds)).map(|(start, end)| end - start);
    let server_cpu_percent = server_cpu.map(|cpu| cpu / (window * cores as f64) * 100.0);
    let client_bound = client_cpu_percent >= CLIENT_BOUND_PERCENT
        || server_cpu_percent
            .is_some_and(|server| client_cpu_percent + server >= 95.0 && client_cpu_percent > server);
    if client_bound {
        notes.push(format!(
            "client-bound: the bench used {client_cpu_percent:.0}% of the {cores} cores{}; latency here measures \
             the client as much as the server",
            server_cpu_percent.map_or(String::new(), |s| format!(" and the server {s:.0}%"))
        ));
    }
    // The run's own two processes account for a load of about 2 at most on a busy run.
    if let Some(load) =
        load_start.into_iter().chain(load_end).reduce(f64::max).filter(|l| *l > cores as f64 + 1.0)
    {
        notes.push(format!(
            "the machine was busy (load average up to {load:.1} on {cores} cores): other processes competed for the CPU"
        ));
    }
    let lateness_us = u64::try_from(outcome.max_lateness.as_micros()).unwrap_or(u64::MAX);
    if outcome.max_lateness > Duration::from_millis(10) {
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
    let failed = shared.failed.load(Ordering::Relaxed);
    if failed > 0 {
        notes.push(format!(
            "{failed} subscribers failed or were cut off; first: {}",
            shared.first_error().unwrap_or_default()
        ));
    }
    if tally.delivered < expected && tally.lost == 0 {
        notes.push(
            "fewer deliveries than owed, yet nothing lost: some subscribers were not collected".to_owned(),
        );
    }
    let latency = shared.latency();
    let rss_per_connection = idle_before
        .zip(idle_after)
        .map(|(before, after)| (after.rss_bytes as f64 - before.rss_bytes as f64) / connected as f64);
    let server_cpu_us_per = |count: f64| server_cpu.and_then(|cpu| report::ratio(cpu * 1e6, count));
    let setup_bytes = shared.setup_bytes.load(Ordering::Relaxed);
    Ok(TransportReport {
        transport: transport.name().to_owned(),
        target: target.label.clone(),
        delivered: tally.delivered,
        lost: tally.lost,
        duplicated: tally.duplicated,
        out_of_order: tally.out_of_order,
        latency_us: report::latency(&latency),
        requests_per_message: report::ratio((window_requests + connected as u64) as f64, delivered),
        bytes_per_message: report::ratio((window_bytes + setup_bytes) as f64, delivered),
        server_cpu_seconds: server_cpu,
        server_cpu_us_per_delivery: server_cpu_us_per(delivered),
        server_peak_rss_bytes: end_usage.map(|u| u.peak_rss_bytes),
        rss_per_connection_bytes: rss_per_connection,
        connect_us: report::setup(&shared.connect_times()),
        client_cpu_percent,
        subscribers: n,
        topics: topic_count,
        rate: args.rate,
        payload_bytes: args.payload,
        duration_s: args.duration.0.as_secs_f64(),
        poll_interval_s: args.poll_interval.0.as_secs_f64(),
        published: outcome.sent,
        publish_refused: outcome.refused,
        publisher_max_lateness_us: lateness_us,
        expected,
        invalid: tally.invalid,
        connected,
        failed,
        first_error: shared.first_error(),
        requests,
        bad_statuses,
        reconnects,
        bytes_read,
        bytes_written,
        server_cpu_us_per_request: server_cpu_us_per(window_requests as f64),
        server_rss_idle_before_bytes: idle_before.map(|u| u.rss_bytes),
        server_rss_idle_after_bytes: idle_after.map(|u| u.rss_bytes),
        window_s: window,
        offered_deliveries_per_second: expected as f64 / args.duration.0.as_secs_f64(),
        client_cores: cores,
        load_average: [load_start, load_end],
        client_bound,
        notes,
        latency_cdf: report::cdf(&latency),
    })
}
