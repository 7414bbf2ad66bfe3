//! A private `redis-server` per test: on a free port of 127.0.0.1, keeping nothing on disk,
//! killed when dropped, and restartable (empty) on the same port to test outages.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A `redis-server` child process, killed on drop. Tests never touch a shared Redis.
///
/// Fails with a clear message (never skips) when `redis-server` is not on `PATH`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING`.
    ///
    /// # Errors
    /// When `redis-server` is missing or does not come up within 10 s.
    pub async fn start() -> anyhow::Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let mut server = Self { child: None, port };
        server.spawn().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL) and waits for it to exit: everything it held is gone.
    ///
    /// # Errors
    /// When the process cannot be killed.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.context("killing redis-server")?;
        }
        Ok(())
    }

    /// Starts it again, empty, on the same port (after [`kill`](Self::kill)).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        self.spawn().await
    }

    /// Runs one command (inline protocol, arguments without spaces) and returns the raw reply.
    ///
    /// # Errors
    /// When it cannot connect or the reply does not come within 5 s.
    pub async fn command(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut stream = TcpStream::connect(self.addr()).await?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).await?;
        let mut reply = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut reply)).await??;
        Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
                "redis-server is not on PATH: these tests need a real Redis (apt-get install redis-server)"
            ),
            Err(err) => return Err(err).context("starting redis-server"),
        };
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(reply) = self.command(&["PING"]).await
                && reply.starts_with("+PONG")
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("redis-server on port {} did not answer PING within 10 s", self.port);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
