//! A real gateway on `127.0.0.1:0`, for tests that talk to it over sockets.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, bail};
use pushgate_hub::Hub;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::feed::Rejected;

/// How long [`TestServer::shutdown`] waits for the server to stop, and how long any one HTTP
/// request of the helpers here may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// The gateway's router served on a free local port, with the hub it serves.
///
/// Dropping the server closes its hub (which ends streams and parked polls) and stops it;
/// [`shutdown`](Self::shutdown) does the same and waits until it stopped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    base_url: String,
    hub: Hub,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), pushgate::ServeError>>>,
}

/// The answer to `POST /v1/publish/{topic}`: where the event went.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Published {
    /// The topic it was published to.
    pub topic: String,
    /// Its place in the topic.
    pub seq: u64,
    /// The cursor that resumes right after it (the event object's `id`).
    pub id: String,
}

impl TestServer {
    /// Starts a gateway with the default configuration and a fresh hub.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the HTTP client cannot be built.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(pushgate::Config::default()).await
    }

    /// Starts a gateway with `config` and the hub it describes (`config.build_hub()`). Its listen
    /// address is ignored: the server listens on `127.0.0.1:0`.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the HTTP client cannot be built.
    pub async fn start_with(config: pushgate::Config) -> anyhow::Result<Self> {
        let hub = config.build_hub();
        Self::start_with_hub(hub, config).await
    }

    /// Starts a gateway serving `hub` with `config` (its listen address is ignored).
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the HTTP client cannot be built.
    pub async fn start_with_hub(hub: Hub, config: pushgate::Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // The gateway's own accept loop (header-read timeout, connection limit, drain), so the
        // suite exercises what the binary runs.
        let (stop, stopped) = oneshot::channel::<()>();
        let served = hub.clone();
        let task = tokio::spawn(async move {
            // A dropped sender stops the server too.
            let shutdown = async {
                stopped.await.ok();
            };
            pushgate::serve_hub_on(listener, served, &config, shutdown).await
        });
        Ok(Self {
            addr,
            base_url: format!("http://{addr}"),
            hub,
            http: http_client()?,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub the server serves: publish to it directly, or read its presence and stats.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// A plain HTTP client for this server (no proxy, 5 s timeout per request).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base_url` followed by `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// Publishes `data` with the default event type through `POST /v1/publish/{topic}`.
    ///
    /// # Errors
    ///
    /// A [`Rejected`] when the server answers with an error status; otherwise when the request
    /// fails or the answer is not `{"topic","seq","id"}`.
    pub async fn publish(&self, topic: &str, data: serde_json::Value) -> anyhow::Result<Published> {
        self.publish_body(topic, serde_json::json!({ "data": data })).await
    }

    /// Publishes `data` as an event of type `event_type` through `POST /v1/publish/{topic}`.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish).
    pub async fn publish_as(
        &self,
        topic: &str,
        event_type: &str,
        data: serde_json::Value,
    ) -> anyhow::Result<Published> {
        self.publish_body(topic, serde_json::json!({ "event": event_type, "data": data })).await
    }

    async fn publish_body(&self, topic: &str, body: serde_json::Value) -> anyhow::Result<Published> {
        let path = format!("/v1/publish/{}", encode_path_segment(topic));
        let response = self
            .http
            .post(self.url(&path))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        if !response.status().is_success() {
            return Err(rejected(format!("POST {path}"), response).await.into());
        }
        let text = response.text().await.with_context(|| format!("reading the answer to POST {path}"))?;
        serde_json::from_str(&text).with_context(|| format!("POST {path} answered {text}"))
    }

    /// Closes the hub, stops accepting connections and waits (at most 5 s) until every
    /// connection the server tracks has ended.
    ///
    /// # Errors
    ///
    /// When the server does not stop in time (some connection outlived the hub), or failed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.hub.close();
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        let Some(task) = self.task.take() else { return Ok(()) };
        match tokio::time::timeout(DEADLINE, task).await {
            Err(_) => bail!("the server did not stop within {DEADLINE:?} of shutdown"),
            Ok(joined) => joined.context("the server task panicked")?.context("the server failed"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.hub.close();
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The HTTP client every helper uses: no proxy (tests talk to 127.0.0.1), bounded requests.
fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder().no_proxy().timeout(DEADLINE).build().context("building the HTTP client")
}

/// Reads an error answer into a [`Rejected`].
pub(crate) async fn rejected(request: String, response: reqwest::Response) -> Rejected {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = match response.text().await {
        Ok(body) => body,
        Err(error) => format!("<body unreadable: {error}>"),
    };
    Rejected { request, status, content_type, body }
}

/// Percent-encodes one path segment (topics in tests may be deliberately invalid).
fn encode_path_segment(segment: &str) -> String {
    // form_urlencoded writes spaces as `+`, which a path does not decode; spell them out.
    form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}
