//! The Server-Sent Events client: one streaming `GET /v1/sse`, read with [`SseReader`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;

use super::{Transport, TransportClient, content_type, subscribe_query};
use crate::feed::{self, Delivery, Feed, FeedSender, Received, TaskFeed, Traffic};
use crate::server::rejected;
use crate::sse::{SseMessage, SseReader};

/// How long the response headers may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Subscribes with one streaming `GET /v1/sse?topic=…`, sending a starting cursor the way a
/// reconnecting `EventSource` does: in the `Last-Event-ID` header.
///
/// `event: reset` becomes [`Delivery::Reset`]; `event: error` ends the feed with an error naming
/// the code; every other message is an event. Unlike `EventSource`, the feed does not reconnect
/// by itself when the stream ends: a test sees the end as an error and reconnects explicitly
/// with [`Feed::cursor`].
#[derive(Debug)]
pub struct SseClient {
    http: reqwest::Client,
    traffic: Arc<Traffic>,
}

impl SseClient {
    /// A new client.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, traffic: Arc::default() })
    }

    async fn open(
        &self,
        base_url: &str,
        topics: &[&str],
        cursor: Option<&str>,
    ) -> anyhow::Result<Box<dyn Feed>> {
        let url = format!("{base_url}/v1/sse?{}", subscribe_query(topics, None, &[]));
        let mut request = self.http.get(&url).header(http::header::ACCEPT, "text/event-stream");
        if let Some(cursor) = cursor {
            request = request.header("last-event-id", cursor);
        }
        self.traffic.request();
        let response = tokio::time::timeout(CONNECT_TIMEOUT, request.send())
            .await
            .map_err(|_| anyhow!("GET /v1/sse: no response headers within {CONNECT_TIMEOUT:?}"))?
            .context("GET /v1/sse")?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(rejected("GET /v1/sse".to_owned(), response).await.into());
        }
        let media_type = content_type(response.headers()).unwrap_or_default();
        if !media_type.starts_with("text/event-stream") {
            bail!("GET /v1/sse answered 200 with Content-Type {media_type:?}, not text/event-stream");
        }
        let traffic = Arc::clone(&self.traffic);
        let bytes = response.bytes_stream().inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                traffic.received(chunk.len());
            }
        });
        let (sender, deliveries) = feed::channel();
        let reader = tokio::spawn(run(SseReader::new(bytes), sender));
        Ok(Box::new(TaskFeed::new(Transport::Sse, cursor.map(str::to_owned), deliveries, reader)))
    }
}

impl TransportClient for SseClient {
    fn transport(&self) -> Transport {
        Transport::Sse
    }

    fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    fn connect_url<'a>(
        &'a self,
        base_url: &'a str,
        topics: &'a [&'a str],
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Box<dyn Feed>>> {
        Box::pin(self.open(base_url, topics, cursor))
    }
}

/// Reads the stream until it ends or the feed is dropped.
async fn run(mut reader: SseReader, sender: FeedSender) {
    loop {
        let item = match reader.next().await {
            None => Err(anyhow!("the SSE stream ended")),
            Some(Err(error)) => Err(error),
            Some(Ok(message)) => received(message),
        };
        let last = item.is_err();
        if sender.send(item).await.is_err() || last {
            return;
        }
    }
}

/// What one message means to the feed.
fn received(message: SseMessage) -> anyhow::Result<Received> {
    let data: serde_json::Value = serde_json::from_str(&message.data)
        .with_context(|| format!("`event: {}` data is not JSON: {}", message.event, message.data))?;
    let cursor = (!message.id.is_empty()).then_some(message.id);
    let delivery = match message.event.as_str() {
        "reset" => Delivery::Reset(data),
        "error" => bail!("the server sent `event: error` with {data}"),
        _ => Delivery::Event(data),
    };
    Ok(Received { delivery, cursor })
}
