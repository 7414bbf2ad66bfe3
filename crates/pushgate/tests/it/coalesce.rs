//! The `coalesce` window through the gateway: SSE, WebSocket and long-poll subscribers get
//! events published within the window together (one socket read, one WebSocket flush, one
//! answer), in order, and a shutdown during a window ends it at once: SSE and long poll deliver
//! what they held, a WebSocket closes with 1001 as it would without a window.
//!
//! Assertions are on grouping, not speed: the window is 200 ms and the events are 10 ms
//! apart, so without the window the first event would arrive alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt as _;
use pushgate::Config;
use pushgate_testkit::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

/// An SSE stream read from a raw socket, so that each `read` is one delivery from the server.
struct RawSse {
    socket: TcpStream,
}

impl RawSse {
    async fn open(server: &TestServer, topic: &str) -> Self {
        let mut socket = TcpStream::connect(server.addr()).await.unwrap();
        let request =
            format!("GET /v1/sse?topic={topic} HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Self { socket };
        // The response head and the `retry:` frame.
        let mut seen = String::new();
        while !seen.contains("retry:") {
            seen.push_str(&raw.read().await);
        }
        assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
        raw
    }

    /// One read from the socket, as text; empty at the end of the stream.
    async fn read(&mut self) -> String {
        let mut buf = vec![0u8; 64 * 1024];
        let n = timeout(BOUND, self.socket.read(&mut buf)).await.unwrap().unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// The next read that carries anything but heartbeats.
    async fn read_frames(&mut self) -> String {
        loop {
            let text = self.read().await;
            if text.is_empty() || text.lines().any(|line| !line.is_empty() && !line.starts_with(':')) {
                return text;
            }
        }
    }
}

/// The event data of each `message` frame in `text`, in order.
fn sse_data(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|frame| frame.contains("event: message"))
        .filter_map(|frame| frame.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(|data| serde_json::from_str::<Value>(data).unwrap()["data"].clone())
        .collect()
}

async fn open_ws(
    server: &TestServer,
    topic: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{}/v1/ws?topic={topic}", server.addr());
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next text frame of type `event` or, on a close, `None`; with its arrival time.
async fn next_ws_event(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> Option<(Value, Instant)> {
    timeout(BOUND, async {
        loop {
            match ws.next().await? {
                Ok(Message::Text(text)) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["type"] == "event" {
                        return Some((frame["data"].clone(), Instant::now()));
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap()
}

/// A long poll of `topic` from now, parked until answered.
fn long_poll(server: &TestServer, topic: &str) -> JoinHandle<Value> {
    let request = server.http().get(server.url(&format!("/v1/longpoll?topic={topic}&timeout=20")));
    tokio::spawn(async move {
        let response = request.timeout(BOUND * 3).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    })
}

async fn wait_for_readers(server: &TestServer, topic: &str, n: usize) {
    let topic = pushgate_hub::TopicName::new(topic).unwrap();
    let deadline = Instant::now() + BOUND;
    while server.hub().presence(&topic).total < n {
        assert!(Instant::now() < deadline, "expected {n} readers of {topic}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Publishes 1, 2, 3 to `t`, `gap` apart, from a task of its own; resolves to the time of
/// the first publish.
fn publish_spaced(server: &TestServer, gap: Duration) -> JoinHandle<Instant> {
    let hub = server.hub().clone();
    let topic = pushgate_hub::TopicName::new("t").unwrap();
    tokio::spawn(async move {
        let first = Instant::now();
        for value in 1..=3 {
            if value > 1 {
                tokio::time::sleep(gap).await;
            }
            hub.publish(&topic, pushgate_hub::NewEvent::new(json!(value))).await.unwrap();
        }
        first
    })
}

fn config(window: Duration) -> Config {
    Config::default().with_coalesce(window).with_demo_db(None)
}

#[tokio::test]
async fn events_within_the_window_arrive_together_on_every_transport() {
    let window = Duration::from_millis(200);
    let server = TestServer::start_with(config(window)).await.unwrap();
    let mut sse = RawSse::open(&server, "t").await;
    let mut ws = open_ws(&server, "t").await;
    let poll = long_poll(&server, "t");
    wait_for_readers(&server, "t", 3).await;

    let publishing = publish_spaced(&server, Duration::from_millis(10));
    // Both clients read as the server writes.
    let (read, arrivals) = tokio::join!(sse.read_frames(), async {
        let mut arrivals = Vec::new();
        for expected in 1..=3 {
            let (data, at) = next_ws_event(&mut ws).await.unwrap();
            assert_eq!(data, json!(expected));
            arrivals.push(at);
        }
        arrivals
    });
    let first = publishing.await.unwrap();

    // SSE: one read holds all three frames, in order.
    assert_eq!(sse_data(&read), [json!(1), json!(2), json!(3)], "one read: {read:?}");

    // WebSocket: all three, in order, close together, none before most of the window passed.
    assert!(
        arrivals[0] >= first + window * 3 / 4,
        "the first event came {:?} after its publish",
        arrivals[0] - first
    );
    let spread = arrivals[2] - arrivals[0];
    assert!(spread < Duration::from_millis(50), "arrivals spread over {spread:?}");

    // Long poll: one answer with all three.
    let answer = timeout(BOUND, poll).await.unwrap().unwrap();
    let data: Vec<&Value> = answer["events"].as_array().unwrap().iter().map(|e| &e["data"]).collect();
    assert_eq!(data, [&json!(1), &json!(2), &json!(3)], "{answer}");

    drop((sse, ws));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_window_the_first_event_goes_out_alone() {
    let server = TestServer::start_with(config(Duration::ZERO)).await.unwrap();
    let mut sse = RawSse::open(&server, "t").await;
    let poll = long_poll(&server, "t");
    wait_for_readers(&server, "t", 2).await;
    // Far apart, so that even a slow reader reads the first before the second is written.
    let publishing = publish_spaced(&server, Duration::from_millis(300));
    assert_eq!(sse_data(&sse.read_frames().await), [json!(1)]);
    publishing.await.unwrap();
    let answer = timeout(BOUND, poll).await.unwrap().unwrap();
    assert_eq!(answer["events"].as_array().unwrap().len(), 1, "{answer}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_long_poll_that_is_behind_is_answered_at_once() {
    let server = TestServer::start_with(config(Duration::from_secs(1))).await.unwrap();
    let published = server.publish("t", json!(0)).await.unwrap();
    server.publish("t", json!(1)).await.unwrap();
    let started = Instant::now();
    let url = server.url("/v1/longpoll?topic=t&cursor=") + &published.id;
    let answer: Value = server.http().get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["events"].as_array().unwrap().len(), 1, "{answer}");
    // Not held for the window: well under a second even on a loaded machine.
    assert!(started.elapsed() < Duration::from_millis(900), "took {:?}", started.elapsed());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_during_a_window_delivers_what_it_held_then_ends() {
    // The longest window allowed; the shutdown comes well inside it.
    let window = Duration::from_secs(1);
    let server = TestServer::start_with(config(window)).await.unwrap();
    let mut sse = RawSse::open(&server, "t").await;
    let mut ws = open_ws(&server, "t").await;
    let poll = long_poll(&server, "t");
    wait_for_readers(&server, "t", 3).await;

    server.publish("t", json!(7)).await.unwrap();
    // Let every subscriber read the event and open its window.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hub = server.hub().clone();
    let stopping = Instant::now();
    let shutdown = tokio::spawn(server.shutdown());

    let mut text = String::new();
    loop {
        let read = sse.read().await;
        if read.is_empty() {
            break;
        }
        text.push_str(&read);
    }
    assert_eq!(sse_data(&text), [json!(7)], "{text}");
    assert!(text.contains("event: error") && text.contains("shutting_down"), "{text}");
    // A WebSocket closes with 1001 as soon as the hub closes, as without a window; the held
    // event goes out first only if the connection happened to take it before (its client
    // resumes from its last event's id either way).
    if let Some((data, _)) = next_ws_event(&mut ws).await {
        assert_eq!(data, json!(7));
        assert!(next_ws_event(&mut ws).await.is_none());
    }
    drop((sse, ws));
    let answer = timeout(BOUND, poll).await.unwrap().unwrap();
    assert_eq!(answer["events"][0]["data"], json!(7), "{answer}");
    assert!(hub.is_closed());
    // The window was cut short: the held event did not wait for the rest of it.
    assert!(stopping.elapsed() < window, "delivered {:?} after shutdown", stopping.elapsed());
    timeout(BOUND, shutdown).await.unwrap().unwrap().unwrap();
}
