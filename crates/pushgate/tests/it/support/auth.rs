//! What the auth tests share: tokens signed with the test keys of `pushgate-auth/testdata`, a
//! small HTTP server in the test standing for the application or the identity provider, and
//! requests to the gateway that return the status and the error code.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Every await in these tests is bounded by this.
pub(crate) const STEP: Duration = Duration::from_secs(10);

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// A file of `pushgate-auth/testdata`.
pub(crate) fn key_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pushgate-auth/testdata").join(name)
}

/// A token with `claims`, signed with the private key `name` (`rsa1`, `ec256`, …) for
/// `algorithm`, naming `kid`.
pub(crate) fn signed(
    claims: &Value,
    algorithm: Algorithm,
    name: &str,
    kid: Option<&str>,
) -> anyhow::Result<String> {
    let pem = std::fs::read(key_path(&format!("{name}.key")))?;
    let key = match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem)?,
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem)?,
        _ => EncodingKey::from_rsa_pem(&pem)?,
    };
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    Ok(encode(&header, claims, &key)?)
}

/// An HS256 token with `claims`.
pub(crate) fn hs256(claims: &Value, secret: &str) -> anyhow::Result<String> {
    Ok(encode(&Header::default(), claims, &EncodingKey::from_secret(secret.as_bytes())?)?)
}

pub(crate) fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().timeout(STEP).build()?)
}

/// Status and error code (empty for a success) of an answer.
pub(crate) async fn outcome(response: reqwest::Response) -> anyhow::Result<(u16, String)> {
    let status = response.status().as_u16();
    if status < 300 {
        return Ok((status, String::new()));
    }
    let body: Value = response.json().await?;
    Ok((status, body["error"]["code"].as_str().unwrap_or_default().to_owned()))
}

/// A request's status and error code.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, String)> {
    outcome(request.send().await?).await
}

/// A small HTTP server in the test: answers each request with `answer(method, path, body)`,
/// and keeps every request (path and JSON body) for the test to look at.
pub(crate) struct Stub {
    pub(crate) addr: SocketAddr,
    pub(crate) seen: Arc<Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the stub answers: status, JSON body, and how long to wait first.
pub(crate) type Answer = (u16, Value, Duration);

impl Stub {
    pub(crate) async fn start(
        answer: impl Fn(&str, &Value) -> Answer + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, answer, None).await
    }

    /// The same over TLS with the certificate of `tests/testdata/tls` (for 127.0.0.1).
    pub(crate) async fn start_tls(
        answer: impl Fn(&str, &Value) -> Answer + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject as _;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/tls");
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(dir.join("app.crt"))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("app.key"))?;
        #[allow(deprecated)] // the test's TLS stub, like the gateway's client, uses ring
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, answer, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        answer: impl Fn(&str, &Value) -> Answer + Send + Sync + 'static,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = (Arc::new(answer), Arc::clone(&seen));
        let app = axum::Router::new().fallback(
            move |method: http::Method, uri: http::Uri, body: axum::body::Bytes| {
                let (answer, seen) = state.clone();
                async move {
                    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let path = format!("{method} {}", uri.path());
                    seen.lock().map(|mut seen| seen.push((path.clone(), json.clone()))).ok();
                    let (status, body, delay) = answer(&path, &json);
                    tokio::time::sleep(delay).await;
                    let status =
                        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                    (status, [(http::header::CONTENT_TYPE, "application/json")], body.to_string())
                }
            },
        );
        let task = tokio::spawn(async move {
            match tls {
                None => {
                    axum::serve(listener, app).await.ok();
                }
                Some(acceptor) => loop {
                    let Ok((stream, _)) = listener.accept().await else { return };
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(stream).await else { return };
                        let service = hyper_util::service::TowerToHyperService::new(app);
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await
                            .ok();
                    });
                },
            }
        });
        Ok(Self { addr, seen, task })
    }

    /// The requests seen so far whose path is `path` (`POST /auth`).
    pub(crate) fn requests(&self, path: &str) -> Vec<Value> {
        let seen = self.seen.lock().map(|seen| seen.clone()).unwrap_or_default();
        seen.into_iter().filter(|(p, _)| p == path).map(|(_, body)| body).collect()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An address nothing listens on.
pub(crate) async fn closed_port() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?)
}

// WebSocket.

/// Opens `/v1/ws?query` with `headers`; the HTTP refusal (status and code) when refused.
pub(crate) async fn ws_open(
    addr: SocketAddr,
    query: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Result<Ws, (u16, String)>> {
    let mut request = format!("ws://{addr}/v1/ws?{query}").into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes())?, value.parse()?);
    }
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request)).await? {
        Ok((ws, _)) => Ok(Ok(ws)),
        Err(tungstenite::Error::Http(response)) => {
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default())?;
            Ok(Err((
                response.status().as_u16(),
                body["error"]["code"].as_str().unwrap_or_default().to_owned(),
            )))
        }
        Err(other) => bail!("upgrade failed: {other}"),
    }
}

pub(crate) async fn ws_send(ws: &mut Ws, value: Value) -> anyhow::Result<()> {
    tokio::time::timeout(STEP, ws.send(Message::text(value.to_string()))).await??;
    Ok(())
}

/// The next text frame as JSON, skipping control frames.
pub(crate) async fn ws_next(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        match tokio::time::timeout(STEP, ws.next()).await.context("no frame in time")? {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => bail!("expected a text frame, got {other:?}"),
        }
    }
}

/// The next frame of `kind` (`event`, `published`, …), skipping the others.
pub(crate) async fn ws_next_of(ws: &mut Ws, kind: &str) -> anyhow::Result<Value> {
    loop {
        let frame = ws_next(ws).await?;
        if frame["type"] == kind {
            return Ok(frame);
        }
    }
}

/// The `pushgate` binary, killed when dropped, with its stderr lines collected.
pub(crate) struct Binary {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Binary {
    /// Starts `pushgate serve` on port 0 with `args`, logging everything as JSON; returns it
    /// and its address, read from the "listening" line.
    pub(crate) fn start(args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<(Self, SocketAddr)> {
        use std::io::BufRead as _;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pushgate"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PUSHGATE_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--no-demo", "--log-format", "json"])
            .args(args)
            .envs(envs.iter().copied())
            // Even asking for tungstenite's traces by name gets none.
            .env("RUST_LOG", "trace,tungstenite=trace")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("stderr")?;
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let binary = Self { child, lines };
        loop {
            let line = binary.lines.recv_timeout(STEP).context("no listening line")?;
            let object: Value = serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
            if object["fields"]["message"] == "listening" {
                let addr = object["fields"]["addr"].as_str().context("addr")?.parse()?;
                return Ok((binary, addr));
            }
        }
    }

    /// Every line logged so far.
    pub(crate) fn logged(&self) -> String {
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}
