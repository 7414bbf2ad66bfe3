//! `GET /healthz` over a real socket: once through the library's `serve_on`,
//! once through the built `pushgate` binary, which must also exit 0 on SIGTERM.

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, timeout};

/// How long the binary may take to start answering, and to exit after SIGTERM.
const PROCESS_DEADLINE: Duration = Duration::from_secs(10);

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")
}

/// Asserts that `GET /healthz` on `addr` answers 200 with `{"status":"ok"}`.
async fn assert_healthy(client: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<()> {
    let response = client.get(format!("http://{addr}/healthz")).send().await.context("GET /healthz")?;
    ensure!(response.status() == reqwest::StatusCode::OK, "status {}", response.status());
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(content_type == "application/json", "content-type {content_type:?}");
    let body: serde_json::Value = response.json().await.context("reading the JSON body")?;
    ensure!(body == serde_json::json!({ "status": "ok" }), "body {body}");
    Ok(())
}

#[tokio::test]
async fn library_serves_healthz_and_index_then_stops_on_shutdown() -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async {
            // A dropped sender stops the server too, so a failing test cannot hang it.
            stopped.await.ok();
        };
        pushgate::serve_on(listener, &pushgate::Config::default(), shutdown).await
    });

    let client = client()?;
    assert_healthy(&client, addr).await?;

    let index = client.get(format!("http://{addr}/")).send().await?;
    ensure!(index.status() == reqwest::StatusCode::OK, "GET / status {}", index.status());
    let page = index.text().await?;
    ensure!(page.contains("<title>pushgate</title>"), "GET / body {page}");

    stop.send(()).ok();
    let served = timeout(Duration::from_secs(5), server)
        .await
        .context("serve_on did not return after shutdown")?
        .context("the server task panicked")?;
    served.context("serve_on failed")?;
    Ok(())
}

#[tokio::test]
async fn serve_reports_an_address_it_cannot_bind() -> anyhow::Result<()> {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = taken.local_addr()?;
    let config = pushgate::Config::default().with_listen(addr);
    match pushgate::serve(config, std::future::ready(())).await {
        Err(pushgate::ServeError::Bind { addr: reported, .. }) => {
            ensure!(reported == addr, "reported {reported}, expected {addr}");
            Ok(())
        }
        other => bail!("expected ServeError::Bind, got {other:?}"),
    }
}

/// Kills the child process if the test ends before it exited.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

/// Returns a port that was free a moment ago. Another process could take it
/// before the binary binds it; that race is accepted for this one test.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

async fn wait_for_exit(child: &mut Child, deadline: Instant) -> anyhow::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            bail!("pushgate did not exit within {PROCESS_DEADLINE:?}");
        }
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn binary_serves_healthz_and_exits_zero_on_sigterm() -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let child = Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(["serve", "--listen", &addr.to_string()])
        .env_remove("PUSHGATE_LISTEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the pushgate binary")?;
    let mut child = KillOnDrop(child);
    if let Err(error) = healthy_then_stops_on_sigterm(&mut child.0, addr).await {
        // The log usually says why (an address in use, a panic), so show it.
        child.0.kill().ok();
        let mut log = String::new();
        if let Some(mut stderr) = child.0.stderr.take() {
            stderr.read_to_string(&mut log).ok();
        }
        return Err(error.context(format!("pushgate's stderr:\n{log}")));
    }
    Ok(())
}

async fn healthy_then_stops_on_sigterm(child: &mut Child, addr: SocketAddr) -> anyhow::Result<()> {
    let client = client()?;
    let deadline = Instant::now() + PROCESS_DEADLINE;
    loop {
        match assert_healthy(&client, addr).await {
            Ok(()) => break,
            Err(error) if Instant::now() >= deadline => {
                return Err(error.context(format!("not healthy within {PROCESS_DEADLINE:?}")));
            }
            Err(_) => {
                if let Some(status) = child.try_wait()? {
                    bail!("pushgate exited early with {status}");
                }
                sleep(Duration::from_millis(50)).await;
            }
        }
    }

    let kill =
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().context("running kill")?;
    ensure!(kill.success(), "kill -TERM failed with {kill}");

    let status = wait_for_exit(child, Instant::now() + PROCESS_DEADLINE).await?;
    ensure!(status.success(), "pushgate exited with {status} after SIGTERM");
    Ok(())
}
