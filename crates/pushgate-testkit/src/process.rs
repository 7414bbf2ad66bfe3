//! The gateway as a real process: the built `pushgate` binary on a port the OS picks, its log
//! kept line by line, killed (`SIGKILL`, as a crash) or stopped (`SIGTERM`) by its pid.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// How long a gateway may take to log `listening`.
const START: Duration = Duration::from_secs(20);

/// A `pushgate serve` child process, killed on drop. Every line it logs (as JSON) is kept.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
    base_url: String,
    logs: Arc<Mutex<Vec<String>>>,
    logged: watch::Receiver<usize>,
}

impl GatewayProcess {
    /// Runs `binary serve --listen 127.0.0.1:0 --log-format json <args>` in `dir` (where the
    /// demo database and the state file go by default), with no `PUSHGATE_*` variable of this
    /// process, and waits until it listens.
    ///
    /// # Errors
    /// When it cannot be started, or exits or stays silent for 20 s before listening.
    pub async fn start(binary: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PUSHGATE_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("the gateway's stderr")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (count, logged) = watch::channel(0);
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        // Reads the log to the end, so the child never blocks on a full pipe.
        tokio::spawn({
            let logs = Arc::clone(&logs);
            async move {
                let mut addr_tx = Some(addr_tx);
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(object) = serde_json::from_str::<serde_json::Value>(&line)
                        && object["fields"]["message"] == "listening"
                        && let (Some(tx), Some(addr)) = (addr_tx.take(), object["fields"]["addr"].as_str())
                    {
                        let _ = tx.send(addr.to_owned());
                    }
                    let n = {
                        let mut logs = logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        logs.push(line);
                        logs.len()
                    };
                    count.send_replace(n);
                }
            }
        });
        let addr: SocketAddr = match tokio::time::timeout(START, addr_rx).await {
            Ok(Ok(addr)) => addr.parse().with_context(|| format!("a listening address: {addr}"))?,
            Ok(Err(_)) => bail!("the gateway exited before listening; its log:\n{}", joined(&logs)),
            Err(_) => bail!("the gateway did not listen within {START:?}; its log:\n{}", joined(&logs)),
        };
        Ok(Self { child, addr, base_url: format!("http://{addr}"), logs, logged })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (to read `/proc/<pid>/status`, say); `None` once it exited.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until it exits by itself.
    ///
    /// # Errors
    /// When it cannot be waited for.
    pub async fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.child.wait().await.context("waiting for the gateway")
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url` and `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Every line logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Waits until a logged line contains every one of `needles`, and returns it.
    ///
    /// # Errors
    /// When none does within `timeout` (the error holds the log).
    pub async fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> anyhow::Result<String> {
        let mut logged = self.logged.clone();
        let found = tokio::time::timeout(timeout, async {
            loop {
                if let Some(line) =
                    self.logs().into_iter().find(|line| needles.iter().all(|n| line.contains(n)))
                {
                    return Some(line);
                }
                if logged.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match found {
            Ok(Some(line)) => Ok(line),
            _ => bail!("no log line with {needles:?} within {timeout:?}; the log:\n{}", joined(&self.logs)),
        }
    }

    /// `SIGKILL`: no drain, connections just drop, as in a crash. Waits until it is gone.
    ///
    /// # Errors
    /// When the process cannot be killed.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the gateway")
    }

    /// `SIGTERM` (by its pid): the graceful shutdown. Waits until it exits, at most `timeout`.
    ///
    /// # Errors
    /// When the signal cannot be sent or the process outlives `timeout`.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().context("the gateway already exited")?;
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
        anyhow::ensure!(status.success(), "kill -TERM {pid}: {status}");
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .context("the gateway did not exit")?
            .map_err(Into::into)
    }
}

fn joined(logs: &Mutex<Vec<String>>) -> String {
    logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).join("\n")
}
