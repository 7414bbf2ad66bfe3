//! One run per transport, or with `--concurrent` one run of all the transports at once (a group
//! of `--subscribers` per transport, on the same topics, fed by the one publisher), each run in
//! the same phases:
//!
//! 1. the server: a fresh gateway child (or the external target, checked for health, restarted
//!    first when its profile says how);
//! 2. its memory, idle; then every subscriber of every group connects (setup time measured per
//!    subscriber);
//! 3. the server confirms it counts them all (the profile's `[ready]` page), then an idle
//!    phase, at whose end the memory is read again: the difference per connection (of all
//!    groups);
//! 4. the measured window: open-loop publishing for `--duration`, then a drain until every
//!    acknowledged publish reached every subscriber of its topic or `--drain` passed;
//! 5. the subscribers stop and report; loss, duplicates, reordering and latency are counted per
//!    group from their sequence numbers. The server's CPU and memory are the run's, shared by
//!    its groups: CPU per delivery divides by the deliveries of all groups.

mod layout;
mod summary;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::Semaphore;
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

use self::layout::Layout;
use self::summary::{RunFigures, Totals, group_report};

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

    fn describe(&self, concurrent: bool) -> String {
        let per = if concurrent { "run" } else { "transport" };
        match &self.kind {
            Kind::Child(bin) => format!("{} (a fresh child per {per}: {})", self.label, bin.display()),
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

/// Runs every transport of `args` in turn (or, with `--concurrent`, all at once) and returns
/// their reports, one per transport.
pub(crate) async fn run_all(args: &RunArgs) -> anyhow::Result<Vec<TransportReport>> {
    let groups = if args.concurrent { args.transports.len() } else { 1 };
    let subscribers = u64::from(args.subscribers) * groups as u64;
    let needed = subscribers + 256;
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("cannot raise the open-files limit")?;
    if limit < needed {
        bail!(
            "the open-files limit is {limit}, below the {needed} that {subscribers} subscribers need: raise it (ulimit -Hn)"
        );
    }
    let target = Target::from_args(args)?;
    profile::require(&target.profile, &args.transports)?;
    let ui = Ui::new();
    let per_topic = f64::from(args.subscribers) / f64::from(args.topics);
    let shape = if args.concurrent {
        format!(
            "{} subscribers per transport ({} at once)",
            args.subscribers,
            args.transports.iter().map(|t| t.name()).collect::<Vec<_>>().join(" + ")
        )
    } else {
        format!("{} subscribers", args.subscribers)
    };
    ui.log(format!(
        "pushgate-bench: {shape} on {} topics; {} publishes/s of {} B for {:?} (~{:.0} deliveries/s{}); \
         poll interval {:?}; target {}",
        args.topics,
        args.rate,
        args.payload,
        args.duration.0,
        args.rate * per_topic * groups as f64,
        if args.concurrent { " in all" } else { "" },
        args.poll_interval.0,
        target.describe(args.concurrent)
    ));
    let runs: Vec<&[Transport]> = if args.concurrent {
        vec![&args.transports[..]]
    } else {
        args.transports.iter().map(std::slice::from_ref).collect()
    };
    let mut reports = Vec::new();
    for (run_index, transports) in runs.into_iter().enumerate() {
        let names: Vec<&str> = transports.iter().map(|t| t.name()).collect();
        let run = run_once(args, &target, transports, run_index, &ui)
            .await
            .with_context(|| format!("{} run failed", names.join("+")))?;
        for report in &run {
            ui.log(format!(
                "{:>9}: delivered {} of {}, lost {}, p99 {}, server CPU {}",
                report.transport,
                report.delivered,
                report.expected,
                report.lost,
                report::micros(report.latency_us.p99),
                report.server_cpu_us_per_delivery.map_or("-".to_owned(), |v| {
                    format!("{} µs/delivery", report::cpu_figure(v, report.server_cpu_seconds))
                }),
            ));
        }
        reports.extend(run);
    }
    ui.bar.finish_and_clear();
    Ok(reports)
}

/// One run against one server: a fresh gateway child, or the external target (restarted when
/// its profile says how), loaded by a group of subscribers per transport at once.
async fn run_once(
    args: &RunArgs,
    target: &Target,
    transports: &[Transport],
    run_index: usize,
    ui: &Ui,
) -> anyhow::Result<Vec<TransportReport>> {
    let server = match &target.kind {
        Kind::Child(bin) => {
            let connections = args.subscribers as usize * transports.len() + server::CONNECTION_MARGIN;
            Server::spawn(bin, connections).await?
        }
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
    let result = measure(args, target, transports, run_index, &server, ui).await;
    let stopped = server.stop().await;
    let reports = result?;
    stopped.context("stopping the gateway")?;
    Ok(reports)
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

/// One transport's subscribers in a run, with their own counters.
struct Group {
    transport: Transport,
    shared: Arc<Shared>,
    tasks: JoinSet<Record>,
    /// Subscriber requests and socket bytes when the measured window began, then during it.
    window_requests: u64,
    window_bytes: u64,
}

impl Group {
    fn connected(&self) -> usize {
        self.shared.connected.load(Ordering::Relaxed)
    }

    fn failed(&self) -> usize {
        self.shared.failed.load(Ordering::Relaxed)
    }

    fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }
}

#[allow(clippy::too_many_lines)] // The phases read best in order, in one place.
async fn measure(
    args: &RunArgs,
    target: &Target,
    transports: &[Transport],
    run_index: usize,
    server: &Server,
    ui: &Ui,
) -> anyhow::Result<Vec<TransportReport>> {
    let n = args.subscribers as usize;
    let topic_count = args.topics as usize;
    let layout = Layout::new(
        transports.len(),
        n,
        topic_count,
        args.source_addrs.map(usize::from),
        run_index,
        std::process::id(),
    );
    let names: Vec<&str> = transports.iter().map(|t| t.name()).collect();
    // Fresh names per run, so an external server's retained messages of earlier runs never count.
    let run_id = format!("{:x}", subscriber::now_us() % 0xfff_ffff);
    let topics: Vec<Arc<str>> =
        (0..topic_count).map(|k| Arc::from(format!("pgb{run_id}.{}.{k}", names.join("-")))).collect();
    let plan = Plan {
        rate: args.rate,
        duration: args.duration.0,
        topics: topics.clone(),
        payload: args.payload,
        connections: args.publish_connections as usize,
    };

    sleep(Duration::from_millis(300)).await;
    let idle_before = server.usage();

    // Connect, the groups interleaved so they grow together.
    ui.phase("connect", layout.total() as u64);
    let stop = CancellationToken::new();
    let setup_gate = Arc::new(Semaphore::new(args.setup_concurrency as usize));
    let mut groups: Vec<Group> = transports
        .iter()
        .map(|&transport| Group {
            transport,
            shared: Arc::new(Shared::new(stop.clone(), setup_gate.clone())),
            tasks: JoinSet::new(),
            window_requests: 0,
            window_bytes: 0,
        })
        .collect();
    for index in 0..n {
        for (g, group) in groups.iter_mut().enumerate() {
            let topic = layout.topic(index);
            let spec = Spec {
                index,
                transport: group.transport,
                topic: topic as u32,
                topic_name: topics[topic].clone(),
                source: layout.source(g, index),
                seq_limit: plan.seq_limit(),
                poll_interval: args.poll_interval.0,
                endpoint: server.endpoint.clone(),
                profile: target.profile.clone(),
            };
            group.tasks.spawn(subscriber::run(spec, group.shared.clone()));
        }
    }
    let deadline = Instant::now() + subscriber::SETUP_TIMEOUT + Duration::from_millis(layout.total() as u64);
    let started = Instant::now();
    loop {
        let done: usize = groups.iter().map(|g| g.connected() + g.failed()).sum();
        ui.bar.set_position(done as u64);
        if done >= layout.total() || Instant::now() > deadline {
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let mut notes: Vec<Vec<String>> = vec![Vec::new(); groups.len()];
    for group in &groups {
        ui.log(format!(
            "{:>9}: {} of {n} subscribed in {:.1?}",
            group.transport.name(),
            group.connected(),
            started.elapsed()
        ));
        if group.connected() == 0 {
            stop.cancel();
            bail!(
                "no {} subscriber could subscribe: {}",
                group.transport.name(),
                group.shared.first_error().unwrap_or_default()
            );
        }
    }

    // Ready and idle: the server must count the held subscriptions of every group (a short
    // poller holds none).
    let held: usize = groups.iter().filter(|g| g.transport != Transport::Poll).map(Group::connected).sum();
    if held > 0 && target.profile.ready.is_some() {
        ui.phase("ready", held as u64);
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut counted = 0;
        while Instant::now() < deadline {
            counted = ready_count(server, &target.profile, &topics).await.unwrap_or(0);
            ui.bar.set_position(counted);
            if counted >= held as u64 {
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        if counted < held as u64 {
            let note = format!("the server counted only {counted} of {held} subscribers before publishing");
            notes.iter_mut().for_each(|group_notes| group_notes.push(note.clone()));
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
    for group in &mut groups {
        group.window_requests = group.shared.requests.load(Ordering::Relaxed);
        group.window_bytes = group.shared.wire_bytes.load(Ordering::Relaxed);
    }
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
        let delivered: u64 = groups.iter().map(Group::delivered).sum();
        ui.bar.set_message(format!("delivered {delivered}"));
        sleep(Duration::from_millis(100)).await;
    }
    publish_stop.cancel();
    let outcome = publishing.await.context("the publisher panicked")??;
    let expected_per_group: u64 = outcome
        .acknowledged
        .iter()
        .zip(layout.subscribers_per_topic())
        .map(|(acked, subscribers)| acked.len() * subscribers)
        .sum();
    let polling = groups.iter().any(|g| g.transport == Transport::Poll);
    let extra = if polling { args.poll_interval.0 } else { Duration::ZERO };
    let drain_deadline = publish_end.max(Instant::now()) + args.drain.0 + extra;
    ui.phase("drain", expected_per_group * groups.len() as u64);
    while Instant::now() < drain_deadline {
        ui.bar.set_position(groups.iter().map(Group::delivered).sum());
        if groups.iter().all(|g| g.delivered() >= expected_per_group || g.failed() >= n) {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let window = window_start.elapsed().as_secs_f64();
    let load_end = procstat::load_average();
    let end_usage = server.usage();
    let client_cpu = procstat::self_cpu_seconds() - self_start;
    for group in &mut groups {
        group.window_requests = group.shared.requests.load(Ordering::Relaxed) - group.window_requests;
        group.window_bytes = group.shared.wire_bytes.load(Ordering::Relaxed) - group.window_bytes;
    }

    // Stop and collect.
    stop.cancel();
    let mut records: Vec<Vec<Record>> = groups.iter().map(|_| Vec::with_capacity(n)).collect();
    let collected = timeout(COLLECT_TIMEOUT, async {
        for (group, records) in groups.iter_mut().zip(&mut records) {
            while let Some(result) = group.tasks.join_next().await {
                if let Ok(record) = result {
                    records.push(record);
                }
            }
        }
    })
    .await;
    if collected.is_err() {
        for ((group, records), group_notes) in groups.iter_mut().zip(&records).zip(&mut notes) {
            group.tasks.abort_all();
            if records.len() < n {
                group_notes.push(format!(
                    "{} subscribers did not stop in time; their deliveries are not counted",
                    n - records.len()
                ));
            }
        }
    }

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut run = RunFigures {
        outcome,
        expected_per_group,
        window,
        server_cpu: cpu_start.zip(end_usage.map(|u| u.cpu_seconds)).map(|(start, end)| end - start),
        idle_before,
        idle_after,
        end_usage,
        client_cpu_percent: client_cpu / (window * cores as f64) * 100.0,
        client_bound: false,
        cores,
        load_average: [load_start, load_end],
        notes: Vec::new(),
    };
    run.judge();
    let tallies: Vec<Tally> = records
        .iter()
        .map(|records| {
            let mut tally = Tally::default();
            let empty = Default::default();
            for record in records {
                tally.add(
                    &record.tracker,
                    run.outcome.acknowledged.get(record.topic as usize).unwrap_or(&empty),
                );
            }
            tally
        })
        .collect();
    let totals = Totals {
        delivered: tallies.iter().map(|t| t.delivered).sum(),
        connected: groups.iter().map(Group::connected).sum(),
        window_requests: groups.iter().map(|g| g.window_requests).sum(),
    };
    let concurrent = args.concurrent.then(|| names.iter().map(|&name| name.to_owned()).collect());
    Ok(groups
        .iter()
        .zip(records)
        .zip(tallies)
        .zip(notes)
        .map(|(((group, records), tally), notes)| {
            group_report(
                args,
                target,
                server,
                &run,
                &totals,
                concurrent.clone(),
                group,
                &records,
                tally,
                notes,
            )
        })
        .collect())
}
