//! The Rust client of pushgate: follow topics over WebSocket, Server-Sent Events, long poll or
//! short poll, and publish over HTTP.
//!
//! It keeps the browser client's semantics: a [`Subscription`] is a [`Stream`](futures_util::Stream)
//! of [`Item`]s (events, and resets surfaced as values when history was lost), resumes from the
//! last event's cursor after every reconnect (so nothing is lost or repeated), waits a
//! full-jitter exponential backoff between failed attempts ([`Backoff`]), sends a token as
//! `Authorization: Bearer` and, when the server says it expired, asks a refresh callback for a
//! fresh one and reconnects at once. The wire types are `pushgate-protocol`'s, re-exported as
//! [`protocol`].
//!
//! ```no_run
//! use futures_util::StreamExt as _;
//! use pushgate_client::{Client, Item, SubscribeOptions, Transport};
//!
//! # async fn run() -> Result<(), pushgate_client::Error> {
//! let client = Client::builder("http://127.0.0.1:8080").token("…").build()?;
//! let mut orders = client.subscribe(["db.orders"], SubscribeOptions::default().transport(Transport::Sse));
//! while let Some(item) = orders.next().await {
//!     match item? {
//!         Item::Event(event) => println!("{} #{}: {}", event.topic, event.seq, event.data.get()),
//!         Item::Reset(reset) => println!("missed events: {reset:?}; reload"),
//!         _ => {}
//!     }
//! }
//! let published = client.publish("chat", &serde_json::json!({"text": "hi"})).idempotency_key("msg-1").send().await?;
//! println!("published as {}", published.id);
//! # Ok(()) }
//! ```
//!
//! Plain `http://` only for now: put TLS in front (a local proxy) or use the browser client for
//! `https://`.

mod backoff;
mod error;
mod fetch;
mod poll;
mod sse;
mod subscription;
mod ws;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
pub use pushgate_protocol as protocol;
use pushgate_protocol::{Cursor, IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, PublishedObject};
use serde::Serialize;

pub use backoff::Backoff;
pub use error::Error;
pub use subscription::{Item, Subscription};

/// The four ways to subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transport {
    /// `GET /v1/ws`, upgraded: one connection, events pushed as frames. The default.
    #[default]
    WebSocket,
    /// `GET /v1/sse`: one streaming response.
    Sse,
    /// `GET /v1/longpoll`, repeated: each request held until there is something.
    LongPoll,
    /// `GET /v1/poll`, repeated every poll interval.
    Poll,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 4] = [Self::WebSocket, Self::Sse, Self::LongPoll, Self::Poll];
}

/// How a [`Subscription`] starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// The transport (WebSocket by default).
    pub transport: Transport,
    /// Where to start: after this cursor (a previous run's [`Subscription::cursor`]); `None`
    /// is `now`, only events published from here on.
    pub cursor: Option<Cursor>,
}

impl SubscribeOptions {
    /// Subscribe over `transport`.
    #[must_use]
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Start after `cursor`.
    #[must_use]
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.cursor = Some(cursor);
        self
    }
}

type RefreshFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
type RefreshFn = Arc<dyn Fn() -> RefreshFuture + Send + Sync>;

/// What every request and subscription of a client shares.
pub(crate) struct Inner {
    base: String,
    http: fetch::Http,
    token: Mutex<Option<String>>,
    refresh: Option<RefreshFn>,
    backoff: Backoff,
    poll_interval: Duration,
    long_poll_wait: Duration,
    idle_timeout: Duration,
}

impl Inner {
    fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_token(&self, token: Option<String>) {
        *self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = token;
    }

    /// A fresh token from the refresh callback; `None` without one.
    async fn refresh(&self) -> Option<Result<(), Error>> {
        let refresh = self.refresh.as_ref()?;
        Some(match refresh().await {
            Ok(token) => {
                self.set_token(Some(token));
                Ok(())
            }
            Err(err) => Err(Error::Refresh(err)),
        })
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    base: String,
    token: Option<String>,
    refresh: Option<RefreshFn>,
    backoff: Backoff,
    poll_interval: Duration,
    long_poll_wait: Duration,
    idle_timeout: Duration,
}

impl ClientBuilder {
    /// Send `token` with every request (`Authorization: Bearer`).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// When the server says the token expired (or is missing, invalid or revoked), call
    /// `refresh` for a fresh one and retry with it; an error from it ends the subscription.
    #[must_use]
    pub fn refresh_token<F, Fut, E>(mut self, refresh: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let refresh = Arc::new(refresh);
        self.refresh = Some(Arc::new(move || {
            let future = refresh();
            Box::pin(async move { future.await.map_err(|err| err.to_string()) })
        }));
        self
    }

    /// The wait between failed attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Short poll: the time between polls (1 s by default).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Long poll: how long the server holds a request (25 s by default; the server caps it).
    #[must_use]
    pub fn long_poll_wait(mut self, wait: Duration) -> Self {
        self.long_poll_wait = wait;
        self
    }

    /// SSE and WebSocket: how long a silent connection counts as alive (90 s by default; the
    /// server sends a heartbeat or a ping well within that).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The client. Fails for a URL that is not `http://host[:port][/prefix]`.
    pub fn build(self) -> Result<Client, Error> {
        let base = self.base.trim_end_matches('/').to_owned();
        if base.starts_with("https://") {
            return Err(Error::Config(format!("{base}: this client speaks plain http:// only")));
        }
        if !base.starts_with("http://") || base.len() == "http://".len() {
            return Err(Error::Config(format!("{base}: expected http://host[:port]")));
        }
        Ok(Client {
            inner: Arc::new(Inner {
                base,
                http: fetch::client(),
                token: Mutex::new(self.token),
                refresh: self.refresh,
                backoff: self.backoff,
                poll_interval: self.poll_interval,
                long_poll_wait: self.long_poll_wait,
                idle_timeout: self.idle_timeout,
            }),
        })
    }
}

/// A client of one gateway. Cloning is cheap; clones share the token and the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.inner.base).finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the gateway at `base_url` (`http://host:port`), with defaults.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        Self::builder(base_url).build()
    }

    /// A builder for a client of the gateway at `base_url`.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base: base_url.to_owned(),
            token: None,
            refresh: None,
            backoff: Backoff::default(),
            poll_interval: Duration::from_secs(1),
            long_poll_wait: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(90),
        }
    }

    /// Replaces the token (`None`: send none) for the next requests and reconnects.
    pub fn set_token(&self, token: Option<String>) {
        self.inner.set_token(token);
    }

    /// Follows `topics`. Must be called within a tokio runtime: the subscription is a task.
    pub fn subscribe<T: Into<String>>(
        &self,
        topics: impl IntoIterator<Item = T>,
        options: SubscribeOptions,
    ) -> Subscription {
        let topics = topics.into_iter().map(Into::into).collect();
        Subscription::start(Arc::clone(&self.inner), topics, options.cursor, options.transport)
    }

    /// A publish of `data` to `topic`; [`Publish::send`] sends it.
    pub fn publish<'a, T: Serialize + ?Sized>(&'a self, topic: &'a str, data: &'a T) -> Publish<'a, T> {
        Publish { client: self, topic, data, event: None, idempotency_key: None }
    }
}

/// One publish, built by [`Client::publish`].
#[must_use = "a publish does nothing until it is sent"]
pub struct Publish<'a, T: ?Sized> {
    client: &'a Client,
    topic: &'a str,
    data: &'a T,
    event: Option<&'a str>,
    idempotency_key: Option<&'a str>,
}

impl<'a, T: Serialize + ?Sized> Publish<'a, T> {
    /// The event type (`message` when not given).
    pub fn event_type(mut self, event: &'a str) -> Self {
        self.event = Some(event);
        self
    }

    /// Sends an `Idempotency-Key`: the same key on the same topic within the server's window
    /// publishes once, and a repeat is answered with the original's numbers (`replayed`).
    pub fn idempotency_key(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// `POST /v1/publish/{topic}`; with a refresh callback, a refused token is refreshed and
    /// the publish sent once more.
    pub async fn send(self) -> Result<PublishedObject, Error> {
        #[derive(Serialize)]
        struct Body<'a, T: ?Sized> {
            #[serde(skip_serializing_if = "Option::is_none")]
            event: Option<&'a str>,
            data: &'a T,
        }
        let body = serde_json::to_vec(&Body { event: self.event, data: self.data })
            .map_err(|err| Error::Config(format!("the data does not serialize: {err}")))?;
        let body = Bytes::from(body);
        let inner = &self.client.inner;
        let topic = percent_encoding::utf8_percent_encode(self.topic, percent_encoding::NON_ALPHANUMERIC);
        let url = format!("{}/v1/publish/{topic}", inner.base);
        let mut refreshed = false;
        loop {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(key) = self.idempotency_key {
                let value = HeaderValue::from_str(key).map_err(|_| {
                    Error::Config("the idempotency key is not a valid header value".to_owned())
                })?;
                headers.insert(IDEMPOTENCY_KEY_HEADER, value);
            }
            let token = inner.token();
            let request = fetch::request(Method::POST, &url, token.as_deref(), headers, body.clone())?;
            let response = fetch::send(&inner.http, request).await?;
            let status = response.status().as_u16();
            let replayed = response.headers().get(IDEMPOTENT_REPLAYED_HEADER).is_some_and(|v| v == "true");
            let answer = fetch::body(response).await?;
            if status == 200 {
                let mut published: PublishedObject = serde_json::from_slice(&answer).map_err(|err| {
                    Error::Connection(format!("a publish answer that is not the protocol's: {err}"))
                })?;
                published.replayed |= replayed;
                return Ok(published);
            }
            let error = Error::from_answer(status, &answer);
            if !refreshed && error.retry() == error::Retry::Refresh {
                refreshed = true;
                match inner.refresh().await {
                    Some(Ok(())) => continue,
                    Some(Err(refresh)) => return Err(refresh),
                    None => {}
                }
            }
            return Err(error);
        }
    }
}
