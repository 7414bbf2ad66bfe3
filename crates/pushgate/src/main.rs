//! The `pushgate` command: parses the command line, installs the tracing
//! subscriber, and runs the gateway from the library until ctrl-c or SIGTERM, or
//! prepares a database for it (`pushgate db`).

use std::future::Future;
use std::io::IsTerminal as _;
use std::num::NonZeroUsize;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use pushgate::cli::{DbCommand, LogFormat, ServeArgs};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// pushgate: a push gateway that delivers ordered events to clients over short polling, long
/// polling, Server-Sent Events and WebSocket. With no subcommand it serves, with the options below:
/// with none at all, it also runs the demo on an SQLite file (./pushgate-demo.db).
#[derive(Debug, Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Logging: set RUST_LOG to a tracing filter such as `debug` or \
                  `pushgate=trace`; the default level is `info`. Logs go to stderr.\n\
                  Options come from flags, then PUSHGATE_* environment variables, then the \
                  --config file, then defaults; --print-config shows the result."
)]
struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    command: Option<Command>,
    /// The options of `serve`, also accepted without the subcommand.
    #[command(flatten)]
    serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until ctrl-c (SIGINT) or SIGTERM, then drain connections and exit 0.
    Serve(Box<ServeArgs>),
    /// Prepare a database for `--source` (install the outbox and triggers), or clean it up.
    Db {
        /// What to do.
        #[command(subcommand)]
        command: DbCommand,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Not anyhow's `Debug`, which adds a backtrace when RUST_BACKTRACE is set: a user's
            // mistake (a port in use, an unreachable Redis, a bad file) is one line.
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The runtime `serve` and `db` run on: `worker_threads` threads, else one per CPU core.
fn runtime(worker_threads: Option<NonZeroUsize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = worker_threads {
        builder.worker_threads(threads.get());
    }
    builder.build().context("cannot start the async runtime")
}

/// `error` and its causes on one line, `: `-separated; a cause whose text its parent already
/// shows (errors that print their source in their own message) is not repeated, and line
/// breaks inside a message become spaces.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Parses the command line and runs what it asks for.
fn run() -> anyhow::Result<()> {
    // The `--config` file's values become the defaults of the options it sets.
    let (matches, file) = pushgate::cli::parse(Cli::command())?;
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    let (args, serve_matches) = match cli.command {
        Some(Command::Serve(args)) => (*args, matches.subcommand_matches("serve").unwrap_or(&matches)),
        Some(Command::Db { command }) => {
            install_tracing_subscriber(LogFormat::Text);
            print!("{}", runtime(None)?.block_on(command.run())?);
            return Ok(());
        }
        None => (cli.serve, &matches),
    };
    let args = args.resolve(serve_matches, file.as_ref())?;
    // What `serve` checks first; `--print-config` prints nothing that `serve` would refuse.
    args.config.validate().map_err(pushgate::ServeError::from)?;
    if args.print_config {
        print!("{}", args.to_toml()?);
        return Ok(());
    }
    install_tracing_subscriber(args.log_format);
    runtime(args.worker_threads)?.block_on(async {
        let threads = tokio::runtime::Handle::current().metrics().num_workers();
        tracing::info!(worker_threads = threads, "runtime started");
        pushgate::serve(args.config, shutdown_signal()?).await?;
        Ok(())
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`; tungstenite never below `debug`):
/// as text, in colour only on a terminal, or as one JSON object a line.
fn install_tracing_subscriber(format: LogFormat) {
    let mut filter = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into()).from_env_lossy();
    // tungstenite traces every WebSocket message it reads, and an `auth` frame carries a
    // token: tokens must never reach the logs, so its traces are never written.
    for target in ["tungstenite", "tokio_tungstenite"] {
        if let Ok(directive) = format!("{target}=debug").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Returns a future that completes on the first SIGINT or SIGTERM.
///
/// The handlers are registered here, before serving starts, so a failure to
/// register is an error at startup rather than a gateway that cannot be
/// stopped cleanly.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT, shutting down"),
            _ = terminate.recv() => tracing::info!("received SIGTERM, shutting down"),
        }
    })
}
