//! `GET /healthz` over a real socket: once through the library's `serve_on`,
//! once through the built `pushgate` binary, which must also exit 0 on SIGTERM; and
//! the binary with no arguments at all, which runs the demo. Not on `TestServer`: `serve_on`
//! itself is under test here.

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
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

/// Asserts that `GET /healthz` on `addr` answers 200 with `{"status":"ok","sources":[…]}`:
/// every source (the demo's, if on) is live.
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
    ensure!(body["status"] == "ok" && body["sources"].is_array(), "body {body}");
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
    ensure!(page.contains("<title>pushgate"), "GET / body {page}");

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
    // The demo is on, so its database goes to a directory of its own.
    let dir = tempfile::tempdir()?;
    let child = pushgate_command(dir.path())
        .args(["serve", "--listen", &addr.to_string()])
        .spawn()
        .context("starting the pushgate binary")?;
    let mut child = KillOnDrop(child);
    let result = healthy_then_stops_on_sigterm(&mut child.0, addr).await;
    with_log(&mut child.0, result)
}

/// The built binary, run in `dir` with no `PUSHGATE_*` setting or `RUST_LOG` from the
/// environment, logging to a pipe.
fn pushgate_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
    command.current_dir(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PUSHGATE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// `result`, with the child's log added to an error: it usually says why (an address in use,
/// a panic).
fn with_log(child: &mut Child, result: anyhow::Result<()>) -> anyhow::Result<()> {
    if let Err(error) = result {
        child.kill().ok();
        let mut log = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            stderr.read_to_string(&mut log).ok();
        }
        return Err(error.context(format!("pushgate's stderr:\n{log}")));
    }
    Ok(())
}

#[tokio::test]
async fn binary_without_arguments_runs_the_demo_in_its_working_directory() -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let dir = tempfile::tempdir()?;
    // No arguments: the address comes from the environment, as a deployment would set it.
    let child = pushgate_command(dir.path())
        .env("PUSHGATE_LISTEN", addr.to_string())
        .spawn()
        .context("starting the pushgate binary")?;
    let mut child = KillOnDrop(child);
    let result = demo_works_then_stops_on_sigterm(&mut child.0, addr, dir.path()).await;
    with_log(&mut child.0, result)
}

async fn demo_works_then_stops_on_sigterm(
    child: &mut Child,
    addr: SocketAddr,
    dir: &Path,
) -> anyhow::Result<()> {
    let client = client()?;
    let deadline = Instant::now() + PROCESS_DEADLINE;
    let snapshot: serde_json::Value = loop {
        match client.get(format!("http://{addr}/demo/users")).send().await {
            Ok(response) if response.status() == reqwest::StatusCode::OK => break response.json().await?,
            Ok(response) => bail!("GET /demo/users answered {}", response.status()),
            Err(error) if Instant::now() >= deadline => {
                return Err(
                    anyhow::Error::new(error).context(format!("not serving within {PROCESS_DEADLINE:?}"))
                );
            }
            Err(_) => {
                if let Some(status) = child.try_wait()? {
                    bail!("pushgate exited early with {status}");
                }
                sleep(Duration::from_millis(50)).await;
            }
        }
    };
    ensure!(dir.join("pushgate-demo.db").is_file(), "no pushgate-demo.db in the working directory");
    ensure!(snapshot["rows"] == serde_json::json!([]), "a new demo database is empty: {snapshot}");

    // A row written through the demo API comes back as an event from the snapshot's cursor.
    let cursor = snapshot["cursor"].as_str().context("the snapshot has a cursor")?;
    let created = client.post(format!("http://{addr}/demo/users")).body(r#"{"name":"Ada"}"#).send().await?;
    ensure!(created.status() == reqwest::StatusCode::CREATED, "POST /demo/users: {}", created.status());
    let poll = format!("http://{addr}/v1/poll?topic=db.users&cursor={cursor}");
    let deadline = Instant::now() + PROCESS_DEADLINE;
    loop {
        let answer: serde_json::Value = client.get(&poll).send().await?.json().await?;
        if answer["events"][0]["data"]["new"]["name"] == "Ada" {
            break;
        }
        ensure!(Instant::now() < deadline, "no insert event within {PROCESS_DEADLINE:?}: {answer}");
        sleep(Duration::from_millis(50)).await;
    }

    let kill =
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().context("running kill")?;
    ensure!(kill.success(), "kill -TERM failed with {kill}");
    let status = wait_for_exit(child, Instant::now() + PROCESS_DEADLINE).await?;
    ensure!(status.success(), "pushgate exited with {status} after SIGTERM");
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
