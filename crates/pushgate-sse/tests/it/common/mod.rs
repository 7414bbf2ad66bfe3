//! Test support: the SSE router served on 127.0.0.1 port 0, a reqwest client, and readers for
//! the stream as parsed events (WHATWG rules, via eventsource-stream) or as raw text.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event as SseEvent, Eventsource};
use futures_util::{Stream, StreamExt};
use pushgate_hub::{Hub, TopicName};
use pushgate_sse::SseConfig;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    pub hub: Hub,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

/// Serves `pushgate_sse::router(hub, config)` on a fresh port.
pub async fn start(hub: Hub, config: SseConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, hub, config)
}

/// Serves on `listener` (for tests that need socket options on it).
pub fn serve(listener: tokio::net::TcpListener, hub: Hub, config: SseConfig) -> Server {
    let addr = listener.local_addr().unwrap();
    let app = pushgate_sse::router(hub.clone(), config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Server { hub, addr, client }
}

impl Server {
    pub fn url(&self, query: &str) -> String {
        format!("http://{}/v1/sse?{query}", self.addr)
    }

    /// Sends `GET /v1/sse?<query>`, with a `Last-Event-ID` header when given, and waits for the
    /// response head.
    pub async fn get(&self, query: &str, last_event_id: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(query)).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        tokio::time::timeout(WAIT, request.send()).await.expect("response head in time").unwrap()
    }

    /// Opens a stream that must succeed, as parsed events.
    pub async fn events(&self, query: &str, last_event_id: Option<&str>) -> Events {
        let response = self.get(query, last_event_id).await;
        assert_eq!(response.status(), 200);
        events(response)
    }

    /// Polls presence until `label`'s count is `want`.
    pub async fn wait_presence(&self, topic: &str, label: &str, want: usize) {
        let topic = TopicName::new(topic).unwrap();
        let count =
            |hub: &Hub| hub.presence(&topic).by_label.iter().find(|(l, _)| l == label).map_or(0, |(_, n)| *n);
        let waited = tokio::time::timeout(WAIT, async {
            while count(&self.hub) != want {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "presence of {label} on {topic} is {}, want {want}", count(&self.hub));
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A stream's events as a browser's EventSource would dispatch them.
pub struct Events {
    inner: Pin<Box<dyn Stream<Item = SseEvent> + Send>>,
}

pub fn events(response: reqwest::Response) -> Events {
    let bytes: ByteStream = Box::pin(response.bytes_stream());
    Events { inner: Box::pin(bytes.eventsource().map(|event| event.expect("well-formed SSE"))) }
}

impl Events {
    /// The next event, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(WAIT, self.inner.next()).await.expect("an event or the end in time")
    }

    /// The next event, which must exist.
    pub async fn event(&mut self) -> SseEvent {
        self.next().await.expect("stream still open")
    }
}

/// A stream as raw text, for what a parser hides (`retry:`, comments).
pub struct Raw {
    inner: ByteStream,
    pub text: String,
    /// How long one read may wait (virtual time in paused tests).
    pub wait: Duration,
}

pub fn raw(response: reqwest::Response) -> Raw {
    Raw { inner: Box::pin(response.bytes_stream()), text: String::new(), wait: WAIT }
}

impl Raw {
    /// Reads until the text received so far contains `needle` after what earlier calls consumed;
    /// returns the text up to and including it.
    pub async fn read_until(&mut self, needle: &str) -> String {
        loop {
            if let Some(at) = self.text.find(needle) {
                let rest = self.text.split_off(at + needle.len());
                return std::mem::replace(&mut self.text, rest);
            }
            let chunk = tokio::time::timeout(self.wait, self.inner.next())
                .await
                .expect("data in time")
                .expect("stream still open")
                .unwrap();
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

pub fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}
