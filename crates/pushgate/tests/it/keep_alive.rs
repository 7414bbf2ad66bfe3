//! Keep-alive connections of pollers as the lite loop serves them outside hyper
//! (`server/lite.rs`): several requests on one connection, pipelining, the hand-over to hyper
//! of a request that is not a poll, closing, bad heads, clients that go away while parked,
//! shutdown, and the timeouts. Raw sockets where the bytes on the wire are what is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use pushgate::Config;
use pushgate_hub::{NewEvent, TopicName};
use pushgate_testkit::{RawAnswer, RawHttp, TestServer};
use reqwest::header;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::timeout;

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

/// A raw connection to `server`, whose answers fail the test when they do not come.
struct Raw(RawHttp);

impl Raw {
    async fn open(server: &TestServer) -> Self {
        Self(RawHttp::connect(server.addr()).await.unwrap())
    }

    async fn send(&mut self, bytes: &str) {
        self.0.send(bytes).await.unwrap();
    }

    async fn answer(&mut self) -> RawAnswer {
        self.0.answer().await.unwrap()
    }

    async fn closed(&mut self) {
        self.0.closed().await.unwrap();
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

async fn publish(server: &TestServer, topic: &str, data: serde_json::Value) {
    server.hub().publish(&TopicName::new(topic).unwrap(), NewEvent::new(data)).await.unwrap();
}

/// `/metrics` on a connection of its own.
async fn metrics(server: &TestServer) -> String {
    let mut raw = Raw::open(server).await;
    raw.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    raw.answer().await.body
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A server whose own timers (heartbeat, long-poll wait) fire within a second, so only the
/// timeout under test decides when a connection closes; `idle` is its idle timeout.
fn short_timeouts(idle: Duration) -> Config {
    Config::default()
        .with_sse_heartbeat(Duration::from_secs(1))
        .with_longpoll_timeout(Duration::from_secs(1))
        .with_longpoll_max_timeout(Duration::from_secs(1))
        .with_idle_timeout(idle)
}

const LONGPOLL_SUBSCRIPTIONS: &str = r#"pushgate_subscriptions{transport="longpoll"}"#;

async fn wait_metric(server: &TestServer, name: &str, value: f64) {
    let waited = timeout(BOUND, async {
        while sample(&metrics(server).await, name) != value {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{name} never reached {value}");
}

#[tokio::test]
async fn polls_and_long_polls_share_one_keep_alive_connection() {
    let origin = "https://app.example";
    let server =
        TestServer::start_with(Config::default().with_cors_origins(vec![origin.into()])).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(1).build().unwrap();
    let accepted = |text: &str| sample(text, "pushgate_connections_accepted_total");
    let before = accepted(&metrics(&server).await);

    publish(&server, "k", serde_json::json!(1)).await;
    let first = client.get(server.url("/v1/poll?topic=k&cursor=oldest")).header(header::ORIGIN, origin);
    let first = first.send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], origin, "CORS still applies");
    let etag = first.headers()[header::ETAG].clone();
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["events"][0]["data"], 1, "{first}");
    let cursor = first["cursor"].as_str().unwrap().to_owned();

    for _ in 0..3 {
        let again =
            client.get(server.url(&format!("/v1/poll?topic=k&cursor={cursor}"))).send().await.unwrap();
        let etag = again.headers()[header::ETAG].clone();
        assert_eq!(again.status(), 200);
        let same = client.get(server.url(&format!("/v1/poll?topic=k&cursor={cursor}")));
        let same = same.header(header::IF_NONE_MATCH, etag).send().await.unwrap();
        assert_eq!(same.status(), 304, "the ETag still works");
        assert!(same.bytes().await.unwrap().is_empty());
    }
    let stale = client.get(server.url("/v1/poll?topic=k&cursor=oldest")).header(header::IF_NONE_MATCH, etag);
    assert_eq!(stale.send().await.unwrap().status(), 304, "the same answer again");

    let parked = client.get(server.url(&format!("/v1/longpoll?topic=k&cursor={cursor}&timeout=20"))).send();
    let parked = tokio::spawn(parked);
    // Counted, because each read is a connection of its own.
    let mut reads = 0.0;
    let waited = timeout(BOUND, async {
        loop {
            reads += 1.0;
            if sample(&metrics(&server).await, LONGPOLL_SUBSCRIPTIONS) == 1.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(waited.await.is_ok(), "the long poll never parked");
    publish(&server, "k", serde_json::json!(2)).await;
    let woken: serde_json::Value = parked.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(woken["events"][0]["data"], 2, "{woken}");
    let timed_out = client.get(server.url("/v1/longpoll?topic=k&cursor=now&timeout=1")).send().await.unwrap();
    assert_eq!(timed_out.status(), 200);

    // Each /metrics read is a connection of its own; the client's requests took one more.
    let after = accepted(&metrics(&server).await);
    assert_eq!(after - before, 1.0 + reads + 1.0, "one client connection");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start().await.unwrap();
    publish(&server, "p", serde_json::json!("one")).await;
    let mut raw = Raw::open(&server).await;
    let two = format!(
        "{}{}",
        get("/v1/poll?topic=p&cursor=oldest"),
        get("/v1/longpoll?topic=p&cursor=now&timeout=1")
    );
    raw.send(&two).await;
    let first = raw.answer().await;
    assert_eq!(first.status, 200);
    assert!(first.body.contains(r#""data":"one""#), "{first:?}");
    assert_eq!(first.header("connection"), None, "kept alive");
    assert!(first.header("date").is_some_and(|date| date.ends_with(" gmt")), "{first:?}");
    let second = raw.answer().await;
    assert_eq!(second.status, 200);
    assert!(second.body.contains(r#""events":[]"#), "the long poll timed out: {second:?}");

    // A head that arrives in pieces is put together.
    let request = get("/v1/poll?topic=p&cursor=oldest");
    let (start, rest) = request.split_at(20);
    raw.send(start).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    raw.send(rest).await;
    let third = raw.answer().await;
    assert!(third.body.contains(r#""data":"one""#), "{third:?}");
}

#[tokio::test]
async fn a_request_and_the_clients_half_close_together_get_the_answer_then_the_close() {
    // The close that comes with the request (a client that sends one request and shuts down
    // its side) and one that comes after it must both end the connection once it is answered.
    // A header-read timeout longer than the test's bound, so it cannot close what was missed.
    let config = Config::default().with_header_read_timeout(BOUND * 6);
    let server = TestServer::start_with(config).await.unwrap();
    publish(&server, "h", serde_json::json!("half")).await;
    for pause in [Duration::ZERO, Duration::from_millis(50)] {
        let mut raw = Raw::open(&server).await;
        raw.send(&get("/v1/poll?topic=h&cursor=oldest")).await;
        tokio::time::sleep(pause).await;
        raw.0.stream().shutdown().await.unwrap();
        let answer = raw.answer().await;
        assert_eq!(answer.status, 200, "after {pause:?}");
        assert!(answer.body.contains(r#""data":"half""#), "{answer:?}");
        raw.closed().await;
    }
}

#[tokio::test]
async fn a_request_sent_while_a_long_poll_is_parked_is_answered_after_it() {
    let server = TestServer::start().await.unwrap();
    let mut raw = Raw::open(&server).await;
    raw.send(&get("/v1/longpoll?topic=q&cursor=now&timeout=20")).await;
    wait_metric(&server, LONGPOLL_SUBSCRIPTIONS, 1.0).await;
    raw.send(&get("/v1/poll?topic=q&cursor=oldest")).await;
    publish(&server, "q", serde_json::json!("woke")).await;
    let parked = raw.answer().await;
    assert!(parked.body.contains(r#""data":"woke""#), "{parked:?}");
    let next = raw.answer().await;
    assert_eq!(next.status, 200);
    assert!(next.body.contains(r#""data":"woke""#), "{next:?}");
}

#[tokio::test]
async fn a_publish_after_a_poll_is_handed_to_hyper_with_nothing_lost() {
    let server = TestServer::start().await.unwrap();
    let mut raw = Raw::open(&server).await;
    // The poll and the publish in one write: the publish's bytes are already read when the
    // loop finds it is not its request.
    let body = r#"{"data":"handed"}"#;
    let publish = format!(
        "POST /v1/publish/h HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw.send(&format!("{}{publish}", get("/v1/poll?topic=h&cursor=oldest"))).await;
    let poll = raw.answer().await;
    assert_eq!(poll.status, 200);
    assert!(poll.body.contains(r#""events":[]"#), "{poll:?}");
    let published = raw.answer().await;
    assert_eq!(published.status, 200, "{published:?}");
    raw.send(&get("/v1/poll?topic=h&cursor=oldest")).await;
    let seen = raw.answer().await;
    assert!(seen.body.contains(r#""data":"handed""#), "{seen:?}");

    // A WebSocket upgrade after a poll goes to hyper as well.
    let mut raw = Raw::open(&server).await;
    raw.send(&get("/v1/poll?topic=h&cursor=oldest")).await;
    assert_eq!(raw.answer().await.status, 200);
    raw.send(
        "GET /v1/ws?topic=h HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    let upgraded = raw.answer().await;
    assert_eq!(upgraded.status, 101, "{upgraded:?}");
}

#[tokio::test]
async fn connection_close_and_http_1_0_close_after_the_answer() {
    let server = TestServer::start().await.unwrap();
    for request in [
        "GET /v1/poll?topic=c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /v1/longpoll?topic=c&cursor=now&timeout=1 HTTP/1.0\r\n\r\n",
    ] {
        let mut raw = Raw::open(&server).await;
        raw.send(request).await;
        let answer = raw.answer().await;
        assert_eq!(answer.status, 200, "{request:?}");
        assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
        raw.closed().await;
    }
    let mut raw = Raw::open(&server).await;
    raw.send("GET /v1/poll?topic=c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
    assert_eq!(raw.answer().await.header("connection"), Some("keep-alive"));
    raw.send("GET /v1/poll?topic=c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
    assert_eq!(raw.answer().await.status, 200, "HTTP/1.0 kept alive when asked");
}

#[tokio::test]
async fn bad_heads_get_a_json_error_then_the_close() {
    let server = TestServer::start().await.unwrap();
    let huge = format!("GET /v1/poll?topic=b HTTP/1.1\r\nCookie: {}\r\n\r\n", "a".repeat(17 * 1024));
    let cases = [
        (huge.as_str(), 431, "headers_too_large"),
        ("GET /v1/poll?topic=b HTTP/1.1\r\nBad Header\r\n\r\n", 400, "malformed_request"),
    ];
    for (request, status, code) in cases {
        let mut raw = Raw::open(&server).await;
        // After a good request, so the error comes from the keep-alive loop's later heads too.
        raw.send(&format!("{}{request}", get("/v1/poll?topic=b"))).await;
        assert_eq!(raw.answer().await.status, 200);
        let answer = raw.answer().await;
        assert_eq!(answer.status, status, "{answer:?}");
        assert_eq!(answer.header("connection"), Some("close"));
        let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(json["error"]["code"], code, "{json}");
        raw.closed().await;
    }
}

#[tokio::test]
async fn a_parked_long_poll_whose_client_leaves_drops_its_subscription() {
    let server = TestServer::start().await.unwrap();
    let mut raw = Raw::open(&server).await;
    raw.send(&get("/v1/poll?topic=gone")).await;
    assert_eq!(raw.answer().await.status, 200);
    raw.send(&get("/v1/longpoll?topic=gone&cursor=now&timeout=60")).await;
    wait_metric(&server, LONGPOLL_SUBSCRIPTIONS, 1.0).await;
    drop(raw);
    wait_metric(&server, LONGPOLL_SUBSCRIPTIONS, 0.0).await;
}

#[tokio::test]
async fn shutdown_answers_a_parked_long_poll_and_closes() {
    let server = TestServer::start().await.unwrap();
    let mut raw = Raw::open(&server).await;
    raw.send(&get("/v1/longpoll?topic=s&cursor=now&timeout=60")).await;
    wait_metric(&server, LONGPOLL_SUBSCRIPTIONS, 1.0).await;
    let (stopped, answer) = tokio::join!(server.shutdown(), async {
        let answer = raw.answer().await;
        raw.closed().await;
        answer
    });
    stopped.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains(r#""events":[]"#), "{answer:?}");
}

#[tokio::test]
async fn idle_and_slow_keep_alive_connections_are_closed() {
    let config = short_timeouts(Duration::from_secs(3)).with_header_read_timeout(Duration::from_secs(1));
    let server = TestServer::start_with(config).await.unwrap();
    let mut raw = Raw::open(&server).await;
    raw.send(&get("/v1/poll?topic=i")).await;
    assert_eq!(raw.answer().await.status, 200);
    raw.closed().await;

    // A head begun and not finished: closed after the header-read timeout, before the idle one.
    let mut raw = Raw::open(&server).await;
    raw.send(&get("/v1/poll?topic=i")).await;
    assert_eq!(raw.answer().await.status, 200);
    raw.send("GET /v1/poll?topic=i HTTP/1.1\r\nHo").await;
    let started = tokio::time::Instant::now();
    raw.closed().await;
    assert!(started.elapsed() < Duration::from_secs(3), "closed by the header-read timeout");
}

#[tokio::test]
async fn a_client_that_stops_reading_a_large_answer_is_closed_after_the_idle_timeout() {
    // No kernel timeout here: only the server's idle timer can end the stalled write.
    let config = short_timeouts(Duration::from_secs(3))
        .with_tcp_user_timeout(Duration::ZERO)
        .with_max_answer_bytes(64 << 20);
    let server = TestServer::start_with(config).await.unwrap();
    let big = "x".repeat(512 * 1024);
    for _ in 0..64 {
        publish(&server, "big", serde_json::json!(big)).await;
    }
    // A small receive window, so the socket buffers hold only a little of the answer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.addr()).await.unwrap();
    // Several MiB of answer, more than the socket buffers hold; then read nothing.
    stream.write_all(get("/v1/poll?topic=big&cursor=oldest&limit=64").as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Closed by now: reading gets what was buffered, then the end of the stream (or a reset),
    // not the rest of the answer.
    let mut read = Vec::new();
    let drained = timeout(BOUND, async {
        let mut buf = vec![0_u8; 64 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            read.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(drained.is_ok(), "the stalled connection was never closed");
    let head_len = read.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&read[..head_len]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a content-length");
    assert!(length > 4 << 20, "an answer larger than the socket buffers ({length} bytes)");
    assert!(
        read.len() < head_len + length,
        "the whole answer was written after the client had stopped reading for over the idle timeout"
    );
}

#[tokio::test]
async fn a_later_request_of_hyper_s_with_many_headers_is_hyper_s_to_judge() {
    let server = TestServer::start().await.unwrap();
    let mut raw = Raw::open(&server).await;
    // More header lines than the lite loop parses, fewer than hyper's limit.
    let headers: String = (0..80).map(|i| format!("X-Trace-{i}: {i}\r\n")).collect();
    raw.send(&format!("{}GET /metrics HTTP/1.1\r\nHost: x\r\n{headers}\r\n", get("/v1/poll?topic=h"))).await;
    assert_eq!(raw.answer().await.status, 200);
    let metrics = raw.answer().await;
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(metrics.body.contains("pushgate_connections_accepted_total"), "{metrics:?}");
}

#[tokio::test]
async fn a_kept_alive_connection_waits_for_its_next_request_for_the_header_read_timeout() {
    // As on hyper's connections (and as `header_read_timeout` is documented): not the idle timeout.
    let config = short_timeouts(Duration::from_secs(6)).with_header_read_timeout(Duration::from_secs(1));
    let server = TestServer::start_with(config).await.unwrap();
    let mut raw = Raw::open(&server).await;
    raw.send(&get("/v1/poll?topic=w")).await;
    assert_eq!(raw.answer().await.status, 200);
    let started = tokio::time::Instant::now();
    raw.closed().await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "closed by the header-read timeout, not the idle one"
    );
}
