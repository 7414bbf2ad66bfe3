//! `pushgate-bench`: drives identical open-loop load through short polling, long polling,
//! Server-Sent Events and WebSocket against a pushgate gateway (started as a child process) or
//! another push server (a target profile), and reports what each transport costs and delivers.
//! The transports run one after another, each against a fresh server; with `--concurrent` they
//! run at the same time against one server (`--subscribers` per transport on the same topics,
//! one publisher), each accounted apart, the server's CPU and memory shared (see
//! `scenario`). See `docs/benchmarks.md` for what the numbers mean and how they were taken.

mod accounting;
mod charts;
mod cli;
mod conn;
mod http;
mod payload;
mod procstat;
mod profile;
mod publisher;
mod report;
mod scenario;
mod server;
mod subscriber;

use std::path::Path;

use anyhow::Context as _;
use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::report::TransportReport;

/// The four transports, in the order they run by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// Short polling: one request per poll interval.
    Poll,
    /// Long polling: a request held until there is something to answer.
    Longpoll,
    /// Server-Sent Events.
    Sse,
    /// WebSocket.
    Ws,
}

impl Transport {
    /// All four.
    pub(crate) const ALL: [Self; 4] = [Self::Poll, Self::Longpoll, Self::Sse, Self::Ws];

    /// The name used on the command line and in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Longpoll => "longpoll",
            Self::Sse => "sse",
            Self::Ws => "ws",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Charts(args)) => charts_from_files(&args.out, &args.inputs),
        Some(Command::Run(args)) => run(*args),
        None => run(cli.run),
    }
}

fn run(args: cli::RunArgs) -> anyhow::Result<()> {
    args.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reports = runtime.block_on(scenario::run_all(&args))?;
    // Subscriber tasks are done; dropping the runtime now would wait on nothing.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    println!("{}", report::table(&reports));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&reports)?;
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &args.charts {
        for file in charts::render(dir, &reports)? {
            eprintln!("wrote {}", file.display());
        }
    }
    Ok(())
}

fn charts_from_files(out: &Path, inputs: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let mut reports: Vec<TransportReport> = Vec::new();
    for input in inputs {
        let text =
            std::fs::read_to_string(input).with_context(|| format!("cannot read {}", input.display()))?;
        let mut more: Vec<TransportReport> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a pushgate-bench --json file", input.display()))?;
        reports.append(&mut more);
    }
    for file in charts::render(out, &reports)? {
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}
