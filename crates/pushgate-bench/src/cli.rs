//! The command line.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::Transport;

/// pushgate-bench: replaces transport folklore with measurements. It drives the same open-loop
/// load (publishes on a fixed schedule, whatever the deliveries do) through short polling, long
/// polling, Server-Sent Events and WebSocket, one after another (or at once, --concurrent), and
/// reports per transport:
/// deliveries, loss, duplicates and reordering counted from sequence numbers, delivery latency
/// percentiles, requests and bytes per message, server CPU per delivery and memory per
/// connection.
#[derive(Debug, Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "By default a `pushgate` gateway is started as a child process for each transport \
                  (found next to this executable, or --server-bin), or once for all of them with \
                  --concurrent; --url or --target-profile aim at a server already running instead. \
                  Everything stays on 127.0.0.0/8.\n\
                  Example: pushgate-bench --transports sse,ws --subscribers 18000 --topics 100 --rate 100 --json out.json\n\
                  At once: pushgate-bench --transports sse,ws --subscribers 1000 --topics 1 --rate 50 --concurrent \
                  (1,000 SSE + 1,000 WebSocket subscribers, 100,000 deliveries/s)"
)]
pub(crate) struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// The options of `run`, also accepted without the subcommand.
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the scenario (the default).
    Run(Box<RunArgs>),
    /// Draw the charts of earlier runs from their --json files (several targets side by side).
    Charts(ChartsArgs),
}

/// `charts` options.
#[derive(Debug, Args)]
pub(crate) struct ChartsArgs {
    /// Directory to write the SVG and PNG files to.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// JSON files written by `--json`.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) inputs: Vec<PathBuf>,
}

/// `run` options: the scenario, the target, the outputs.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// Transports to run, one after another on identical load (or at once: --concurrent).
    #[arg(long, value_delimiter = ',', default_value = "poll,longpoll,sse,ws")]
    pub(crate) transports: Vec<Transport>,
    /// Run the transports at the same time, in one run against one server (one gateway child,
    /// or one restart of a profile's server): --subscribers per transport, on the same topics,
    /// fed by one publisher. Deliveries and latency are reported per transport; server CPU and
    /// memory are the shared run's (per delivery and per connection of all transports).
    #[arg(long)]
    pub(crate) concurrent: bool,
    /// Concurrent subscribers (per transport); subscriber i follows topic i mod topics.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub(crate) subscribers: u32,
    /// Topics the publishes are spread over, round robin.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub(crate) topics: u32,
    /// Publishes per second, sent on schedule whatever the deliveries do (open loop). Each
    /// reaches subscribers/topics subscribers.
    #[arg(long, default_value_t = 1000.0)]
    pub(crate) rate: f64,
    /// Size of each published payload (a JSON object), bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub(crate) payload: usize,
    /// How long to publish (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "30s")]
    pub(crate) duration: Span,
    /// Interval between a short poller's requests.
    #[arg(long, default_value = "1s")]
    pub(crate) poll_interval: Span,
    /// Idle time with every subscriber connected before publishing starts; server memory per
    /// connection is measured at its end.
    #[arg(long, default_value = "2s")]
    pub(crate) idle: Span,
    /// After the last publish, how long to wait for deliveries still due (short polling waits
    /// one poll interval more).
    #[arg(long, default_value = "5s")]
    pub(crate) drain: Span,
    /// The pushgate binary to start (default: `pushgate` next to this executable).
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    pub(crate) server_bin: Option<PathBuf>,
    /// Load a server already running at this base URL (http://127.0.0.x:port) instead of
    /// starting one.
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Process id of that server (its children, such as nginx workers, are included) for
    /// server CPU and memory figures.
    #[arg(long, value_name = "PID")]
    pub(crate) server_pid: Option<u32>,
    /// A TOML file with the URL templates of another push server (see profiles/nchan.toml);
    /// implies a server already running.
    #[arg(long, value_name = "FILE", conflicts_with = "server_bin")]
    pub(crate) target_profile: Option<PathBuf>,
    /// Name of the target in reports and charts (default: the profile's name).
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Write the results here, one JSON object per transport in an array (a concurrent run's
    /// have `"concurrent": true` and `"group_of"`: its transports).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Write charts (SVG and PNG) into this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) charts: Option<PathBuf>,
    /// Connection setups in flight at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) setup_concurrency: u32,
    /// 127.0.0.x source addresses per run (default: one per 8,000 subscribers), each bound
    /// before connecting, so ephemeral ports never run short.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=60))]
    pub(crate) source_addrs: Option<u8>,
    /// Keep-alive connections the publisher pipelines its requests on.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) publish_connections: u32,
}

/// A duration on the command line: a number with an optional unit `ms`, `s` (the default),
/// `m` or `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span(pub(crate) Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 =
            number.parse().map_err(|_| format!("{text:?}: expected a number and ms, s, m or h"))?;
        let seconds = match unit.trim() {
            "ms" => number / 1000.0,
            "" | "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h)")),
        };
        Duration::try_from_secs_f64(seconds).map(Self).map_err(|err| format!("{text:?}: {err}"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl RunArgs {
    /// Refuses scenarios that cannot be measured meaningfully or would not end in bounded time.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.transports.is_empty(), "--transports: name at least one");
        if self.concurrent {
            let mut seen = Vec::new();
            for transport in &self.transports {
                anyhow::ensure!(
                    !seen.contains(transport),
                    "--concurrent: {} is named twice in --transports (each transport is one group)",
                    transport.name()
                );
                seen.push(*transport);
            }
        }
        anyhow::ensure!(
            self.topics <= self.subscribers,
            "--topics must not exceed --subscribers (a topic nobody follows measures nothing)"
        );
        anyhow::ensure!(self.rate > 0.0 && self.rate <= 1_000_000.0, "--rate must be in (0, 1000000]");
        anyhow::ensure!(self.payload <= 1 << 20, "--payload must be at most 1 MiB");
        anyhow::ensure!(
            self.duration.0 >= Duration::from_millis(100) && self.duration.0 <= Duration::from_secs(3600),
            "--duration must be between 100ms and 1h"
        );
        anyhow::ensure!(
            self.poll_interval.0 >= Duration::from_millis(10)
                && self.poll_interval.0 <= Duration::from_secs(60),
            "--poll-interval must be between 10ms and 60s"
        );
        anyhow::ensure!(self.idle.0 <= Duration::from_secs(600), "--idle must be at most 10m");
        anyhow::ensure!(self.drain.0 <= Duration::from_secs(600), "--drain must be at most 10m");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_take_units() {
        assert_eq!("30s".parse::<Span>().unwrap().0, Duration::from_secs(30));
        assert_eq!("30".parse::<Span>().unwrap().0, Duration::from_secs(30));
        assert_eq!("250ms".parse::<Span>().unwrap().0, Duration::from_millis(250));
        assert_eq!("1.5m".parse::<Span>().unwrap().0, Duration::from_secs(90));
        assert!("soon".parse::<Span>().is_err());
        assert!("5 parsecs".parse::<Span>().is_err());
    }

    #[test]
    fn defaults_are_the_documented_scenario() {
        let cli = Cli::try_parse_from(["pushgate-bench"]).unwrap();
        let run = cli.run;
        assert_eq!(run.transports, Transport::ALL);
        assert_eq!((run.subscribers, run.topics, run.rate, run.payload), (1000, 10, 1000.0, 100));
        assert_eq!((run.duration.0, run.poll_interval.0), (Duration::from_secs(30), Duration::from_secs(1)));
        run.check().unwrap();
        let charts = Cli::try_parse_from(["pushgate-bench", "charts", "--out", "d", "a.json"]).unwrap();
        assert!(matches!(charts.command, Some(Command::Charts(_))));
        assert!(Cli::try_parse_from(["pushgate-bench", "--transports", "sse,carrier-pigeon"]).is_err());
        assert!(!run.concurrent);
    }

    #[test]
    fn concurrent_groups_are_distinct_transports() {
        let parse = |transports: &str| {
            Cli::try_parse_from(["pushgate-bench", "--concurrent", "--transports", transports]).unwrap().run
        };
        let run = parse("sse,ws");
        assert!(run.concurrent);
        run.check().unwrap();
        assert!(parse("sse,ws,sse").check().is_err());
    }
}
