//! SSE streams as the gateway serves them, outside hyper (`server/lite.rs`): the head, the
//! frames straight on the socket, JSON errors, presence following the socket, the idle timeout
//! and the connection limit. Raw sockets, so the bytes on the wire are what is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use pushgate::Config;
use pushgate_hub::{Hub, NewEvent, TopicName};
use pushgate_testkit::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

async fn start(config: Config) -> TestServer {
    TestServer::start_with(config).await.expect("the gateway")
}

/// Sends `request` (a request line and headers) on a new connection.
async fn send(addr: SocketAddr, request: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Reads until `needle` has arrived (bounded); returns everything read.
async fn read_until(stream: &mut TcpStream, seen: &mut String, needle: &str) {
    timeout(BOUND, async {
        while !seen.contains(needle) {
            let mut buf = [0_u8; 4096];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before {needle:?}: {seen:?}");
            seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"));
}

/// Reads to the end of the connection (bounded); returns what was read.
async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    timeout(BOUND, stream.read_to_end(&mut all)).await.expect("the server closes").unwrap();
    String::from_utf8(all).unwrap()
}

async fn wait_presence(hub: &Hub, topic: &str, n: usize) {
    let topic = TopicName::new(topic).unwrap();
    let deadline = Instant::now() + BOUND;
    while hub.presence(&topic).total != n {
        assert!(Instant::now() < deadline, "expected {n} readers of {topic}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const SSE_REQUEST: &str = "GET /v1/sse?topic=t HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";

#[tokio::test]
async fn a_stream_is_written_on_the_socket_and_ends_with_the_connection() {
    let server = start(Config::default()).await;
    let mut stream = send(server.addr(), SSE_REQUEST).await;
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "retry: 2000\n\n").await;
    let (head, _) = seen.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for line in ["content-type: text/event-stream", "cache-control: no-cache", "connection: close", "date: "]
    {
        assert!(head.contains(line), "{line:?} missing from {head}");
    }
    // Delimited by the close: no chunk sizes between the frames.
    assert!(!head.contains("transfer-encoding") && !head.contains("content-length"), "{head}");

    wait_presence(server.hub(), "t", 1).await;
    let event =
        server.hub().publish(&TopicName::new("t").unwrap(), NewEvent::new(serde_json::json!(7))).await;
    let id = event.unwrap().cursor().to_string();
    read_until(&mut stream, &mut seen, &format!("id: {id}\nevent: message\ndata: {{")).await;

    // Shutdown: the stream's last frame says why, then the server closes the connection.
    let stopped = tokio::spawn(server.shutdown());
    let rest = read_to_end(&mut stream).await;
    assert!(format!("{seen}{rest}").contains("event: error\ndata: {\"code\":\"shutting_down\""), "{rest:?}");
    stopped.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_a_length_then_the_close() {
    let server = start(Config::default()).await;
    let cases = [
        // An error from the handler keeps the connection alive (keep_alive.rs), unless asked.
        (
            "GET /v1/sse?topic=t&cursor=junk HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "400 Bad Request",
            "invalid_cursor",
        ),
        ("GET /v1/sse HTTP/1.0\r\nHost: x\r\n\r\n", "400 Bad Request", "no_topics"),
        // A head that does not parse is answered, and the connection closed.
        (
            "GET /v1/sse?topic=t HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            "400 Bad Request",
            "malformed_request",
        ),
    ];
    for (request, status, code) in cases {
        let mut stream = send(server.addr(), request).await;
        let answer = read_to_end(&mut stream).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{request:?}: {head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], code, "{request:?}: {body}");
    }
}

#[tokio::test]
async fn presence_follows_the_socket() {
    let server = start(Config::default()).await;
    let first = send(server.addr(), SSE_REQUEST).await;
    let second = send(server.addr(), SSE_REQUEST).await;
    wait_presence(server.hub(), "t", 2).await;
    // Nothing is written to a quiet stream: the server notices the close by reading.
    drop(first);
    wait_presence(server.hub(), "t", 1).await;
    drop(second);
    wait_presence(server.hub(), "t", 0).await;
}

#[tokio::test]
async fn heartbeats_keep_a_quiet_stream_past_the_idle_timeout() {
    let idle = Duration::from_secs(3);
    let config = Config::default()
        .with_sse_heartbeat(Duration::from_secs(1))
        .with_longpoll_timeout(Duration::from_secs(1))
        .with_longpoll_max_timeout(Duration::from_secs(1))
        .with_idle_timeout(idle);
    let server = start(config).await;
    let mut stream = send(server.addr(), SSE_REQUEST).await;
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "retry: 2000\n\n").await;
    // Written outside hyper, the heartbeats still count as activity for the idle timer.
    let started = Instant::now();
    while started.elapsed() < idle + Duration::from_secs(1) {
        let before = seen.matches(": hb\n\n").count();
        read_until(&mut stream, &mut seen, &": hb\n\n".repeat(before + 1)).await;
    }
    wait_presence(server.hub(), "t", 1).await;
}

#[tokio::test]
async fn a_stream_holds_its_connection_slot() {
    let server = start(Config::default().with_max_connections(1)).await;
    let mut stream = send(server.addr(), SSE_REQUEST).await;
    read_until(&mut stream, &mut String::new(), "retry: ").await;
    let mut over = send(server.addr(), SSE_REQUEST).await;
    let answer = read_to_end(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("\"overloaded\""), "{answer}");
}

#[tokio::test]
async fn the_retry_hint_is_the_configured_one() {
    let server = start(Config::default().with_sse_retry(Duration::from_millis(7500))).await;
    let mut stream = send(server.addr(), SSE_REQUEST).await;
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\r\n\r\n").await;
    read_until(&mut stream, &mut seen, "\n\n").await;
    let body = seen.split_once("\r\n\r\n").unwrap().1;
    assert!(body.starts_with("retry: 7500\n\n"), "{body:?}");
}
