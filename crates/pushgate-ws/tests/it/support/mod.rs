//! Test helpers: a real server on 127.0.0.1 port 0 and real tokio-tungstenite clients, with
//! every wait bounded.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test module uses a subset

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pushgate_hub::{Event, Hub, NewEvent, TopicName};
use pushgate_ws::WsConfig;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single step of a test may take.
pub(crate) const STEP: Duration = Duration::from_secs(5);

pub(crate) type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Serves `pushgate_ws::router` on `listener`; returns its address.
pub(crate) fn serve_on(listener: TcpListener, hub: &Hub, config: WsConfig) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let app = pushgate_ws::router(hub.clone(), config);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Serves `pushgate_ws::router` on a fresh port.
pub(crate) async fn serve(hub: &Hub, config: WsConfig) -> SocketAddr {
    serve_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), hub, config)
}

pub(crate) fn url(addr: SocketAddr, query: &str) -> String {
    if query.is_empty() { format!("ws://{addr}/v1/ws") } else { format!("ws://{addr}/v1/ws?{query}") }
}

/// Opens a WebSocket to `/v1/ws?query`.
pub(crate) async fn connect(addr: SocketAddr, query: &str) -> Client {
    let (client, response) =
        bounded(tokio_tungstenite::connect_async(url(addr, query))).await.expect("websocket handshake");
    assert_eq!(response.status(), 101);
    client
}

pub(crate) async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(STEP, future).await.expect("step timed out")
}

pub(crate) fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

pub(crate) async fn publish(hub: &Hub, name: &str, data: Value) -> Arc<Event> {
    hub.publish(&topic(name), NewEvent::new(data)).await.unwrap()
}

/// The event frame a client must receive for `event`: the shared event object plus a type.
pub(crate) fn event_frame(event: &Event) -> Value {
    let mut value: Value = serde_json::from_slice(&pushgate_http::event_json(event)).unwrap();
    value["type"] = Value::from("event");
    value
}

pub(crate) async fn send(client: &mut Client, value: Value) {
    bounded(client.send(Message::text(value.to_string()))).await.unwrap();
}

/// The next text frame, as JSON; Ping and Pong frames are skipped.
pub(crate) async fn next_json(client: &mut Client) -> Value {
    loop {
        match bounded(client.next()).await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the server's Close frame; returns its code (`None` if the stream ended without one).
pub(crate) async fn close_code(client: &mut Client) -> Option<u16> {
    loop {
        match bounded(client.next()).await {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// The number of live "ws" readers of `name`.
pub(crate) fn ws_presence(hub: &Hub, name: &str) -> usize {
    hub.presence(&topic(name)).by_label.iter().find(|(label, _)| label == "ws").map_or(0, |(_, n)| *n)
}

/// Waits until `condition` holds, checking every 10 ms, for at most [`STEP`].
pub(crate) async fn eventually(mut condition: impl FnMut() -> bool) {
    bounded(async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
