//! A private `redis-server` per test: on a free port of 127.0.0.1, keeping nothing on disk,
//! killed when dropped, and restartable (empty) on the same port to test outages. Extra
//! arguments make it a TLS server or a replica; [`RedisSentinel`] watches a master and fails it
//! over.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
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
    args: Vec<String>,
    /// Its working directory, new at every start: a replica writes the data it syncs there,
    /// and a server loads a `dump.rdb` it finds there at start (even with saving off).
    dir: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING`.
    ///
    /// # Errors
    /// When `redis-server` is missing or does not come up within 10 s.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Vec::new()).await
    }

    /// Starts one with extra `redis-server` arguments: `--replicaof 127.0.0.1 <port>` for a
    /// replica, `--tls-port <port> --tls-cert-file …` for TLS (the plain port stays open for
    /// [`command`](Self::command)).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with(args: Vec<String>) -> anyhow::Result<Self> {
        let mut server = Self { child: None, port: free_port()?, args, dir: None };
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

    /// Starts it again, empty, on the same port with other extra arguments (a killed master
    /// coming back as a replica of the one promoted in its place).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart_with(&mut self, args: Vec<String>) -> anyhow::Result<()> {
        self.kill().await?;
        self.args = args;
        self.spawn().await
    }

    /// Runs one command (arguments without spaces) and returns the raw reply.
    ///
    /// # Errors
    /// When it cannot connect or the reply does not come within 5 s.
    pub async fn command(&self, args: &[&str]) -> anyhow::Result<String> {
        command(self.port, args).await
    }

    /// Waits until this server, a replica, has a live link to its master.
    ///
    /// # Errors
    /// When the link is not up within 10 s.
    pub async fn wait_for_master_link(&self) -> anyhow::Result<()> {
        wait_until(&format!("the replica on port {} to sync", self.port), async || {
            Ok(self.command(&["INFO", "replication"]).await?.contains("master_link_status:up"))
        })
        .await
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut args = vec![
            "--dir".to_owned(),
            dir.path().display().to_string(),
            "--port".to_owned(),
            self.port.to_string(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--save".to_owned(),
            String::new(),
            "--appendonly".to_owned(),
            "no".to_owned(),
            // Replicas sync at once instead of after the default 5 s wait for more of them.
            "--repl-diskless-sync-delay".to_owned(),
            "0".to_owned(),
            "--repl-diskless-load".to_owned(),
            "on-empty-db".to_owned(),
        ];
        args.extend(self.args.iter().cloned());
        self.child = Some(spawn_redis(&args, None)?);
        self.dir = Some(dir);
        wait_for_ping(self.port).await
    }
}

/// A Redis Sentinel (`redis-server --sentinel`) watching one master, with a quorum of 1 and
/// short timeouts so that a failover takes about a second. Killed on drop.
#[derive(Debug)]
pub struct RedisSentinel {
    _child: Child,
    port: u16,
    master: String,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    /// Starts one watching the master named `master` on `127.0.0.1:<master_port>`: it marks the
    /// master down after `down_after` without an answer and then promotes a replica.
    ///
    /// # Errors
    /// When it does not come up within 10 s.
    pub async fn start(master: &str, master_port: u16, down_after: Duration) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let down_after = down_after.as_millis();
        let config = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {master} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {master} {down_after}\n\
             sentinel failover-timeout {master} {failover}\n\
             sentinel parallel-syncs {master} 1\n",
            dir = dir.path().display(),
            failover = (down_after * 4).max(1000),
        );
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, config)?;
        let child = spawn_redis(&["--sentinel".to_owned()], Some(&path))?;
        wait_for_ping(port).await?;
        Ok(Self { _child: child, port, master: master.to_owned(), _dir: dir })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs one command (arguments without spaces) and returns the raw reply.
    ///
    /// # Errors
    /// When it cannot connect or the reply does not come within 5 s.
    pub async fn command(&self, args: &[&str]) -> anyhow::Result<String> {
        command(self.port, args).await
    }

    /// The port of the master it names now.
    ///
    /// # Errors
    /// When it cannot be asked or names none.
    pub async fn master_port(&self) -> anyhow::Result<u16> {
        let reply = self.command(&["SENTINEL", "get-master-addr-by-name", &self.master]).await?;
        // *2 $9 127.0.0.1 $4 6379: the port is the last line.
        let port = reply.lines().rfind(|l| !l.is_empty()).context("no reply")?;
        port.trim().parse().with_context(|| format!("no master port in {reply:?}"))
    }

    /// Waits until it knows at least one replica of the master (failover needs one).
    ///
    /// # Errors
    /// When it does not within 10 s.
    pub async fn wait_for_replica(&self) -> anyhow::Result<()> {
        wait_until("the sentinel to see a replica", async || {
            let reply = self.command(&["SENTINEL", "replicas", &self.master]).await?;
            Ok(reply.contains("master-link-status") && !reply.contains("s_down"))
        })
        .await
    }

    /// Waits until it names the master on `port`.
    ///
    /// # Errors
    /// When it does not within 10 s.
    pub async fn wait_for_master(&self, port: u16) -> anyhow::Result<()> {
        wait_until(&format!("the sentinel to name port {port} the master"), async || {
            Ok(self.master_port().await.ok() == Some(port))
        })
        .await
    }
}

/// A port no one listens on now.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

fn spawn_redis(args: &[String], config: Option<&Path>) -> anyhow::Result<Child> {
    let mut command = Command::new("redis-server");
    if let Some(config) = config {
        command.arg(config);
    }
    let child = command
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    match child {
        Ok(child) => Ok(child),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!("redis-server is not on PATH: these tests need a real Redis (apt-get install redis-server)")
        }
        Err(err) => Err(err).context("starting redis-server"),
    }
}

async fn wait_for_ping(port: u16) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(reply) = command(port, &["PING"]).await
            && reply.starts_with("+PONG")
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("redis-server on port {port} did not answer PING within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if check().await.unwrap_or(false) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn command(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).await?;
    let mut reply = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut reply)).await??;
    Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
}
