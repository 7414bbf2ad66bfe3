//! The gateway binary as a child process, for tests that need a process of its own: several
//! nodes, a kill, or the memory of the gateway alone.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// How long the gateway may take to log that it listens.
const START: Duration = Duration::from_secs(10);

/// `pushgate serve` on a port the OS picked, without the demo, killed on drop.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
    base_url: String,
}

impl GatewayProcess {
    /// Starts `program` (the built `pushgate`, `env!("CARGO_BIN_EXE_pushgate")` in its tests) as
    /// `serve --listen 127.0.0.1:0 --no-demo --log-format json` followed by `args`, with no
    /// `PUSHGATE_*` setting from the environment; returns once it logged its address.
    ///
    /// # Errors
    ///
    /// When it cannot be started, or exits or stays silent for 10 s before listening.
    pub async fn start(program: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PUSHGATE_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--no-demo", "--log-format", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stderr = child.stderr.take().context("the gateway's stderr")?;
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        // Reads the log to the end, so the child never blocks on a full pipe.
        tokio::spawn(async move {
            let mut addr_tx = Some(addr_tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(object) = serde_json::from_str::<Value>(&line) else { continue };
                if object["fields"]["message"] == "listening"
                    && let (Some(tx), Some(addr)) = (addr_tx.take(), object["fields"]["addr"].as_str())
                {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = match tokio::time::timeout(START, addr_rx).await {
            Ok(Ok(addr)) => addr.parse().with_context(|| format!("a listening address: {addr}"))?,
            Ok(Err(_)) => bail!("the gateway exited before listening"),
            Err(_) => bail!("the gateway did not log `listening` within {START:?}"),
        };
        Ok(Self { child, addr, base_url: format!("http://{addr}") })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Its process id (to read `/proc/<pid>/status`, say).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until it exits by itself.
    ///
    /// # Errors
    ///
    /// When it cannot be waited for.
    pub async fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.child.wait().await.context("waiting for the gateway")
    }

    /// SIGKILL: no drain, connections just drop, as in a crash.
    ///
    /// # Errors
    ///
    /// When the process cannot be killed or waited for.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the gateway")
    }
}
