//! The WebSocket client: `GET /v1/ws?topic=…&cursor=…` upgraded, then JSON text frames.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{Transport, TransportClient, content_type, json_object, subscribe_query};
use crate::feed::{self, Delivery, Feed, FeedSender, Received, Rejected, TaskFeed, Traffic};

/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Subscribes through the upgrade request's query (`?topic=…&cursor=…`), so the connection starts
/// subscribed; the client sends no frames of its own.
///
/// An `event` frame becomes [`Delivery::Event`] and a `reset` frame [`Delivery::Reset`], each
/// without its `type` field; `subscribed`, `pong` and `published` frames are skipped; an `error`
/// frame, a close frame or the end of the connection ends the feed with an error that says which
/// (a close frame's code and reason included).
#[derive(Debug, Default)]
pub struct WsClient {
    traffic: Arc<Traffic>,
}

impl WsClient {
    /// A new client.
    pub fn new() -> Self {
        Self::default()
    }

    async fn open(
        &self,
        base_url: &str,
        topics: &[&str],
        cursor: Option<&str>,
    ) -> anyhow::Result<Box<dyn Feed>> {
        let Some(authority) = base_url.strip_prefix("http://") else {
            bail!("the WebSocket client speaks plain ws:// only, not to {base_url}");
        };
        let url = format!("ws://{authority}/v1/ws?{}", subscribe_query(topics, cursor, &[]));
        self.traffic.request();
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| anyhow!("GET /v1/ws: no handshake within {HANDSHAKE_TIMEOUT:?}"))?;
        let socket = match handshake {
            Ok((socket, _response)) => socket,
            Err(tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                return Err(Rejected {
                    request: "GET /v1/ws (upgrade)".to_owned(),
                    status: response.status().as_u16(),
                    content_type: content_type(response.headers()),
                    body: body.into_owned(),
                }
                .into());
            }
            Err(error) => return Err(anyhow::Error::new(error).context("GET /v1/ws (upgrade)")),
        };
        let (sender, deliveries) = feed::channel();
        let reader = tokio::spawn(run(socket, Arc::clone(&self.traffic), sender));
        Ok(Box::new(TaskFeed::new(Transport::Ws, cursor.map(str::to_owned), deliveries, reader)))
    }
}

impl TransportClient for WsClient {
    fn transport(&self) -> Transport {
        Transport::Ws
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

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads frames until the connection ends or the feed is dropped. Pings are answered by
/// tungstenite while reading.
async fn run(mut socket: Socket, traffic: Arc<Traffic>, sender: FeedSender) {
    loop {
        let item = match socket.next().await {
            None => Err(anyhow!("the WebSocket connection ended without a close frame")),
            Some(Err(error)) => Err(anyhow::Error::new(error).context("reading the WebSocket")),
            Some(Ok(Message::Text(text))) => {
                traffic.received(text.len());
                match frame(&text) {
                    Ok(None) => continue,
                    Ok(Some(received)) => Ok(received),
                    Err(error) => Err(error),
                }
            }
            Some(Ok(Message::Binary(bytes))) => {
                traffic.received(bytes.len());
                Err(anyhow!("unexpected binary frame of {} bytes", bytes.len()))
            }
            Some(Ok(Message::Close(close))) => Err(match close {
                Some(close) => {
                    anyhow!("the server closed the WebSocket: {} {:?}", close.code, close.reason.as_str())
                }
                None => anyhow!("the server closed the WebSocket without a code"),
            }),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
        };
        let last = item.is_err();
        if sender.send(item).await.is_err() || last {
            return;
        }
    }
}

/// What one text frame means to the feed; `None` for frames it does not deliver.
fn frame(text: &str) -> anyhow::Result<Option<Received>> {
    let mut object = json_object("a WebSocket frame", text)?;
    let Some(serde_json::Value::String(kind)) = object.remove("type") else {
        bail!("a WebSocket frame without a string `type`: {text}");
    };
    let delivery = match kind.as_str() {
        "event" => {
            let id = object.get("id").and_then(|id| id.as_str()).map(str::to_owned);
            return Ok(Some(Received { delivery: Delivery::Event(object.into()), cursor: id }));
        }
        "reset" => Delivery::Reset(object.into()),
        "subscribed" | "pong" | "published" => return Ok(None),
        "error" => bail!("the server sent an error frame: {text}"),
        other => bail!("a WebSocket frame of unknown type {other:?}: {text}"),
    };
    Ok(Some(Received { delivery, cursor: None }))
}
