//! The server under test: a `pushgate` child the bench starts (so its CPU and memory are
//! measured apart from the client's), or a server already running, known by its URL and,
//! optionally, its process id.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};

use crate::conn;
use crate::procstat::{self, Usage};
use crate::profile::Endpoint;

/// How long a server gets to answer its health check after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the gateway child gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections the gateway child may hold besides the subscribers: the publisher's, health and
/// readiness checks.
pub(crate) const CONNECTION_MARGIN: usize = 100;

/// A server under test.
#[derive(Debug)]
pub(crate) struct Server {
    /// Where it listens.
    pub(crate) endpoint: Arc<Endpoint>,
    /// Its (master) process, if known.
    pub(crate) pid: Option<u32>,
    child: Option<Child>,
    log: Option<PathBuf>,
}

/// The `pushgate` binary: `explicit`, or the one next to this executable (the same target
/// directory; tests run from `deps/`, one level below).
pub(crate) fn gateway_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(path.is_file(), "--server-bin {}: no such file", path.display());
        return Ok(path.to_owned());
    }
    let exe = std::env::current_exe().context("cannot find the bench's own executable")?;
    let dir = exe.parent().context("the bench's executable has no directory")?;
    for candidate in [dir.join("pushgate"), dir.join("../pushgate")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no pushgate binary next to {}: build both with `cargo build --release -p pushgate -p pushgate-bench`, \
         or give --server-bin PATH or --url URL",
        exe.display()
    )
}

/// Runs a profile's start or stop command to completion (at most the start timeout).
pub(crate) async fn run_command(argv: &[String]) -> anyhow::Result<()> {
    let (program, args) = argv.split_first().context("an empty command")?;
    let output = tokio::time::timeout(
        START_TIMEOUT,
        Command::new(program).args(args).stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await
    .with_context(|| format!("{program} did not finish within {START_TIMEOUT:?}"))?
    .with_context(|| format!("cannot run {program}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{program} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Server {
    /// Starts `bin serve --listen 127.0.0.1:<free port> --no-demo --max-connections <n>`
    /// (without `--no-demo` if this gateway does not know it) and waits for `/healthz`.
    ///
    /// The per-client limits are turned off: every subscriber connects from 127.0.0.x, far
    /// more than the default per-IP limit, and the publisher pipelines its whole rate over a
    /// few keep-alive connections. They are set through the environment, which a gateway that
    /// predates them ignores (an unknown flag would stop it).
    pub(crate) async fn spawn(bin: &Path, max_connections: usize) -> anyhow::Result<Self> {
        for no_demo in [true, false] {
            let port = free_port()?;
            let endpoint = Arc::new(Endpoint::parse(&format!("http://127.0.0.1:{port}"))?);
            let log = std::env::temp_dir().join(format!("pushgate-bench-{}-{port}.log", std::process::id()));
            let file =
                std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
            let mut command = Command::new(bin);
            command.args(["serve", "--listen", &endpoint.host]);
            if no_demo {
                command.arg("--no-demo");
            }
            command
                .args(["--max-connections", &max_connections.to_string()])
                .env("PUSHGATE_MAX_CONNECTIONS_PER_IP", "0")
                .env("PUSHGATE_PUBLISH_RATE", "0")
                .stdin(Stdio::null())
                .stdout(file.try_clone()?)
                .stderr(file)
                .kill_on_drop(true);
            let mut child = command.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
            let pid = child.id();
            let deadline = Instant::now() + START_TIMEOUT;
            // Bounded by the deadline; each pass waits 50 ms.
            loop {
                if let Some(status) = child.try_wait()? {
                    let tail = log_tail(&log);
                    if no_demo && tail.contains("--no-demo") {
                        break;
                    }
                    bail!("{} exited ({status}) before answering /healthz:\n{tail}", bin.display());
                }
                let health =
                    conn::get(endpoint.addr, &endpoint.host, "/healthz", Duration::from_secs(1)).await;
                if health.is_ok_and(|response| response.head.status == 200) {
                    return Ok(Self { endpoint, pid, child: Some(child), log: Some(log) });
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} did not answer /healthz within {START_TIMEOUT:?}:\n{}",
                        bin.display(),
                        log_tail(&log)
                    );
                }
                sleep(Duration::from_millis(50)).await;
            }
        }
        bail!("{} refused its command line", bin.display())
    }

    /// A server someone else runs.
    pub(crate) fn external(endpoint: Endpoint, pid: Option<u32>) -> Self {
        Self { endpoint: Arc::new(endpoint), pid, child: None, log: None }
    }

    /// Waits until `path` answers 200 (bounded by the start timeout).
    pub(crate) async fn wait_healthy(&self, path: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let response =
                conn::get(self.endpoint.addr, &self.endpoint.host, path, Duration::from_secs(2)).await;
            match response {
                Ok(response) if response.head.status == 200 => return Ok(()),
                Ok(response) if Instant::now() > deadline => bail!("{path}: status {}", response.head.status),
                Err(err) if Instant::now() > deadline => {
                    bail!("the server at {} does not answer {path}: {err}", self.endpoint.host)
                }
                _ => sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// CPU and memory of the server's process tree, if its pid is known.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.pid.map(|pid| procstat::usage(&procstat::process_tree(pid)))
    }

    /// Stops a child with SIGTERM (then SIGKILL after a timeout); leaves an external server be.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        if let Some(pid) = child.id().and_then(|pid| rustix::process::Pid::from_raw(pid as i32)) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                child.kill().await?;
            }
        }
        if let Some(log) = self.log.take() {
            let _ = std::fs::remove_file(log);
        }
        Ok(())
    }
}
