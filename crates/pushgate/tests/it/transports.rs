//! The streaming transports through the gateway's own accept loop: a WebSocket upgrade works,
//! and shutdown ends SSE streams and closes WebSockets with 1001 within the drain time. Started
//! by hand, not on `TestServer`, which closes the hub itself before stopping the server: here
//! the server's own drain must.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt as _;
use pushgate::{Config, ServeError};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

async fn start(config: Config) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<Result<(), ServeError>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        pushgate::serve_on(listener, &config, async {
            stopped.await.ok();
        })
        .await
    });
    (addr, stop, task)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(BOUND * 2).build().unwrap()
}

/// Waits (bounded) until `topic` has `n` live readers.
async fn readers(addr: SocketAddr, topic: &str, n: u64) {
    let deadline = Instant::now() + BOUND;
    loop {
        let presence: Value = client()
            .get(format!("http://{addr}/v1/presence/{topic}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if presence["total"] == n {
            return;
        }
        assert!(Instant::now() < deadline, "expected {n} readers: {presence}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shutdown_ends_sse_streams_and_closes_websockets_with_1001() {
    let drain = Duration::from_secs(3);
    let (addr, stop, task) = start(Config::default().with_drain_timeout(drain)).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?topic=t")).await.unwrap();
    let mut sse = client()
        .get(format!("http://{addr}/v1/sse?topic=t"))
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.headers()[reqwest::header::CONTENT_TYPE], "text/event-stream");
    readers(addr, "t", 2).await;

    // A published event reaches the WebSocket through the upgraded connection.
    client().post(format!("http://{addr}/v1/publish/t")).body(r#"{"data":"hello"}"#).send().await.unwrap();
    let event = timeout(BOUND, async {
        loop {
            let Message::Text(text) = ws.next().await.unwrap().unwrap() else { continue };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == "event" {
                return frame;
            }
        }
    })
    .await
    .expect("the event arrived");
    assert_eq!(event["data"], "hello");

    let stopping = Instant::now();
    stop.send(()).unwrap();

    let close = timeout(BOUND, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("the WebSocket was closed");
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));

    let rest = timeout(BOUND, async {
        let mut text = Vec::new();
        while let Some(chunk) = sse.chunk().await.unwrap() {
            text.extend_from_slice(&chunk);
        }
        String::from_utf8(text).unwrap()
    })
    .await
    .expect("the SSE stream ended");
    assert!(rest.contains("shutting_down"), "{rest}");

    drop(ws);
    timeout(drain, task).await.expect("the server ended within the drain time").unwrap().unwrap();
    assert!(stopping.elapsed() < drain);
}

#[tokio::test]
async fn an_upgraded_websocket_keeps_its_connection_slot() {
    let (addr, _stop, _task) = start(Config::default().with_max_connections(1)).await;
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?topic=t")).await.unwrap();

    let response = client().get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");

    drop(ws);
    let deadline = Instant::now() + BOUND;
    loop {
        let response = client().get(format!("http://{addr}/healthz")).send().await;
        if response.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
            break;
        }
        assert!(Instant::now() < deadline, "the WebSocket's slot was not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_event_near_a_raised_body_limit_reaches_a_websocket() {
    // A 2 MiB event is above the WebSocket transport's default write-buffer cap (1 MiB +
    // 64 KiB), so the gateway must derive the cap from the body limit.
    let config = Config::default().with_max_body_bytes(3 << 20);
    let (addr, _stop, _task) = start(config).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?topic=big")).await.unwrap();
    readers(addr, "big", 1).await;

    let data = "x".repeat(2 << 20);
    let published = client()
        .post(format!("http://{addr}/v1/publish/big"))
        .body(format!(r#"{{"data":"{data}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), reqwest::StatusCode::OK);

    let event = timeout(BOUND, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["type"] == "event" {
                        return frame;
                    }
                }
                Some(Ok(Message::Close(frame))) => panic!("the WebSocket was closed: {frame:?}"),
                Some(Ok(_)) => {}
                other => panic!("expected the event, got {other:?}"),
            }
        }
    })
    .await
    .expect("the event arrived");
    assert_eq!(event["data"].as_str().map(str::len), Some(2 << 20));
}
