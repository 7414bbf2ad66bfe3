//! The gateway's limits over real sockets: connections in total and per IP address, the
//! publish rate per connection (HTTP and WebSocket), topics per subscription and message
//! size; each refusal with its code and its count in `/metrics`, and the per-transport
//! metrics (subscriptions, fetches, delivery latency) while real clients are connected.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use futures_util::{SinkExt as _, StreamExt as _};
use pushgate::Config;
use pushgate_testkit::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// Bound on any one exchange with the server.
const BOUND: Duration = Duration::from_secs(5);

/// A gateway on 127.0.0.1, port 0, with `config` (on its Redis when it names one); stopped when
/// dropped.
async fn start(config: Config) -> TestServer {
    let (hub, _redis) = config.connect_hub().await.expect("the hub");
    TestServer::start_with_hub(hub, config).await.expect("the gateway")
}

/// A TCP connection to `addr` from the local address `from` (any of 127.0.0.0/8).
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((from, 0))).expect("bind the client side");
    timeout(BOUND, socket.connect(addr)).await.expect("connect in time").expect("connect")
}

/// One HTTP/1.1 response read off a keep-alive connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn code(&self) -> String {
        let body: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        body["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// An HTTP/1.1 connection on which requests are sent one at a time (no client pool that might
/// open another connection: the limits under test are per connection).
struct Conn {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    async fn open(from: Ipv4Addr, addr: SocketAddr) -> Self {
        let (reader, writer) = connect_from(from, addr).await.into_split();
        Self { reader: BufReader::new(reader), writer }
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        self.send(&format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n")).await
    }

    async fn publish(&mut self, topic: &str, body: &str) -> anyhow::Result<Answer> {
        let request = format!(
            "POST /v1/publish/{topic} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send(&request).await
    }

    async fn send(&mut self, request: &str) -> anyhow::Result<Answer> {
        self.writer.write_all(request.as_bytes()).await?;
        timeout(BOUND, read_answer(&mut self.reader)).await.context("no answer in time")?
    }
}

async fn read_answer(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> anyhow::Result<Answer> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            bail!("the connection closed after {head:?}");
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split(' ').nth(1).context("no status")?.parse()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .context("no content-length")?
        .parse()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Answer { status, head, body: String::from_utf8(body)? })
}

/// A request on a new connection that the server is expected to answer and close (a refused
/// connection): everything it sent back.
async fn refused_answer(from: Ipv4Addr, addr: SocketAddr) -> String {
    let mut stream = connect_from(from, addr).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n").await.expect("write");
    let mut answer = Vec::new();
    timeout(BOUND, stream.read_to_end(&mut answer)).await.expect("closed in time").expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// `/metrics` over a new connection from 127.0.0.3 (an address no test fills).
async fn metrics(addr: SocketAddr) -> String {
    let answer = Conn::open(Ipv4Addr::new(127, 0, 0, 3), addr).await.get("/metrics").await.expect("metrics");
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

/// The value of the sample `name` (labels included) in `text`; 0 when absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn refused(text: &str, reason: &str) -> f64 {
    sample(text, &format!("pushgate_refused_total{{reason=\"{reason}\"}}"))
}

/// Waits until `/metrics` satisfies `ready`.
async fn metrics_until(addr: SocketAddr, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let polled = timeout(BOUND, async {
        loop {
            let text = metrics(addr).await;
            if ready(&text) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    polled.unwrap_or_else(|_| panic!("/metrics never showed {what}"))
}

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[tokio::test]
async fn connections_over_the_per_ip_limit_get_429_and_other_addresses_still_connect() {
    let server = start(Config::default().with_max_connections_per_ip(2)).await;
    let addr = server.addr();
    // Two served connections from 127.0.0.1 fill its share (each answered, so each is counted).
    let mut first = Conn::open(LOCAL, addr).await;
    let mut second = Conn::open(LOCAL, addr).await;
    assert_eq!(first.get("/healthz").await.unwrap().status, 200);
    assert_eq!(second.get("/healthz").await.unwrap().status, 200);

    let answer = refused_answer(LOCAL, addr).await;
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    assert!(answer.contains(r#""code":"too_many_connections_from_ip""#), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");

    // Another address has its own count, and the connections held keep working.
    let mut other = Conn::open(OTHER, addr).await;
    assert_eq!(other.get("/healthz").await.unwrap().status, 200);
    assert_eq!(first.get("/healthz").await.unwrap().status, 200);

    // A closed connection gives its slot back.
    drop(second);
    let reconnected = timeout(BOUND, async {
        loop {
            let mut conn = Conn::open(LOCAL, addr).await;
            if let Ok(answer) = conn.get("/healthz").await {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a slot came back");
    assert_eq!(reconnected.status, 200);

    let text = metrics(addr).await;
    assert_eq!(refused(&text, "connections_per_ip"), 1.0, "{text}");
    assert_eq!(refused(&text, "connections"), 0.0, "{text}");
}

#[tokio::test]
async fn connections_over_the_total_limit_get_503_and_are_counted() {
    let server = start(Config::default().with_max_connections(1)).await;
    let addr = server.addr();
    let mut held = Conn::open(LOCAL, addr).await;
    assert_eq!(held.get("/healthz").await.unwrap().status, 200);
    let answer = refused_answer(OTHER, addr).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains(r#""code":"overloaded""#), "{answer}");
    // `/metrics` on the one connection there is.
    let text = held.get("/metrics").await.unwrap().body;
    assert_eq!(refused(&text, "connections"), 1.0, "{text}");
    assert_eq!(refused(&text, "connections_per_ip"), 0.0, "{text}");
}

#[tokio::test]
async fn http_publishes_over_the_rate_get_429_while_other_addresses_and_subscribers_go_on() {
    let config = Config::default().with_publish_rate(1).with_publish_burst(3);
    let server = start(config).await;
    let addr = server.addr();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut stream = client.get(format!("http://{addr}/v1/sse?topic=news")).send().await.unwrap();

    let mut fast = Conn::open(LOCAL, addr).await;
    for n in 0..3 {
        let answer = fast.publish("news", &format!(r#"{{"data":{n}}}"#)).await.unwrap();
        assert_eq!(answer.status, 200, "publish {n} of the burst: {answer:?}");
    }
    let answer = fast.publish("news", r#"{"data":"one too many"}"#).await.unwrap();
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.code(), "rate_limited");
    assert_eq!(answer.header("retry-after"), Some("1"), "{}", answer.head);

    // The refused connection is still open (its next answer is another 429, not a closed
    // socket); another connection from the same address shares the allowance, and another
    // address has its own.
    assert_eq!(fast.publish("news", r#"{"data":"again"}"#).await.unwrap().status, 429);
    let mut same = Conn::open(LOCAL, addr).await;
    assert_eq!(same.publish("news", r#"{"data":"same address"}"#).await.unwrap().status, 429);
    let mut other = Conn::open(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    assert_eq!(other.publish("news", r#"{"data":"other"}"#).await.unwrap().status, 200);

    // The subscriber got every accepted publish and none of the refused ones.
    let mut text = String::new();
    timeout(BOUND, async {
        while text.matches("\ndata: ").count() + usize::from(text.starts_with("data: ")) < 4 {
            let chunk = stream.chunk().await.expect("chunk").expect("stream open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("four events did not arrive: {text}"));
    assert!(text.contains(r#""data":"other""#), "{text}");
    assert!(!text.contains("one too many") && !text.contains("again"), "{text}");
    assert!(!text.contains("same address"), "{text}");

    let metrics = metrics(addr).await;
    assert_eq!(refused(&metrics, "rate_limited"), 3.0, "{metrics}");
}

#[tokio::test]
async fn the_admin_key_is_never_rate_limited() {
    // A backend feeding a ticker publishes with the admin key from one address (issue 14).
    let config = Config::default()
        .with_publish_rate(1)
        .with_publish_burst(2)
        .with_admin_key(Some(pushgate::Secret::new("server-key")))
        .with_anonymous_publish(vec!["*".into()]);
    let server = start(config).await;
    let addr = server.addr();
    let mut backend = Conn::open(LOCAL, addr).await;
    for n in 0..20 {
        let body = format!(r#"{{"data":{n}}}"#);
        let request = format!(
            "POST /v1/publish/ticker HTTP/1.1\r\nhost: test\r\nauthorization: Bearer server-key\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = backend.send(&request).await.unwrap();
        assert_eq!(answer.status, 200, "admin publish {n}: {answer:?}");
    }
    // The admin's publishes took nothing from the address's allowance: an anonymous client on
    // the same address still has its burst, and then is limited.
    let mut anonymous = Conn::open(LOCAL, addr).await;
    for n in 0..2 {
        assert_eq!(anonymous.publish("ticker", &format!(r#"{{"data":{n}}}"#)).await.unwrap().status, 200);
    }
    let answer = anonymous.publish("ticker", r#"{"data":"over"}"#).await.unwrap();
    assert_eq!((answer.status, answer.code()), (429, "rate_limited".to_owned()), "{answer:?}");
}

/// A request from a proxy: `request`'s head with `X-Forwarded-For: forwarded` added.
fn forwarded(request: &str, forwarded: &str) -> String {
    request.replacen("\r\n", &format!("\r\nx-forwarded-for: {forwarded}\r\n"), 1)
}

fn publish_request(topic: &str, body: &str) -> String {
    format!(
        "POST /v1/publish/{topic} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_limited_per_forwarded_address() {
    let config = Config::default()
        .with_trusted_proxies(vec!["127.0.0.1".into()])
        .with_max_connections_per_ip(1)
        .with_publish_rate(1)
        .with_publish_burst(2);
    let server = start(config).await;
    let addr = server.addr();

    // One upstream connection carries several clients' publishes: each has its own allowance.
    let mut upstream = Conn::open(LOCAL, addr).await;
    for n in 0..2 {
        let answer = upstream
            .send(&forwarded(&publish_request("t", &format!(r#"{{"data":{n}}}"#)), "203.0.113.1"))
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let answer =
        upstream.send(&forwarded(&publish_request("t", r#"{"data":"over"}"#), "203.0.113.1")).await.unwrap();
    assert_eq!((answer.status, answer.code()), (429, "rate_limited".to_owned()), "{answer:?}");
    let answer = upstream
        .send(&forwarded(&publish_request("t", r#"{"data":"other"}"#), "1.2.3.4, 203.0.113.2"))
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "another client behind the proxy: {answer:?}");

    // The proxy's own connections are not limited per address (the limit is 1), but each
    // forwarded client holds its one slot while its request is served: a parked long poll...
    let mut parked = Conn::open(LOCAL, addr).await;
    let long_poll =
        forwarded("GET /v1/longpoll?topic=p&timeout=30 HTTP/1.1\r\nhost: test\r\n\r\n", "203.0.113.3");
    parked.writer.write_all(long_poll.as_bytes()).await.unwrap();
    metrics_until(addr, "the long poll parked", |t| {
        sample(t, r#"pushgate_subscriptions{transport="longpoll"}"#) == 1.0
    })
    .await;
    let mut other = Conn::open(LOCAL, addr).await;
    let poll = "GET /v1/poll?topic=p HTTP/1.1\r\nhost: test\r\n\r\n";
    let answer = other.send(&forwarded(poll, "203.0.113.3")).await.unwrap();
    assert_eq!(
        (answer.status, answer.code()),
        (429, "too_many_connections_from_ip".to_owned()),
        "{answer:?}"
    );
    assert_eq!(answer.header("retry-after"), Some("1"), "{}", answer.head);
    // A publish is a request like any other, served by hyper: refused the same way.
    let answer = other.send(&forwarded(&publish_request("p", r#"{"data":1}"#), "203.0.113.3")).await.unwrap();
    assert_eq!(
        (answer.status, answer.code()),
        (429, "too_many_connections_from_ip".to_owned()),
        "{answer:?}"
    );
    // ... and the refused request left the proxy's connection open for the next one.
    assert_eq!(other.send(&forwarded(poll, "203.0.113.4")).await.unwrap().status, 200);

    // ... and a WebSocket, for as long as it is open.
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/v1/ws?topic=w"),
    )
    .unwrap();
    request.headers_mut().insert("x-forwarded-for", http::HeaderValue::from_static("203.0.113.5"));
    let (mut socket, _) = timeout(BOUND, tokio_tungstenite::connect_async(request)).await.unwrap().unwrap();
    let answer = other.send(&forwarded(poll, "203.0.113.5")).await.unwrap();
    assert_eq!(answer.status, 429, "{answer:?}");
    socket.close(None).await.unwrap();
    drop(socket);
    drop(parked);
    for client in ["203.0.113.5", "203.0.113.3"] {
        let freed = timeout(BOUND, async {
            loop {
                let answer = other.send(&forwarded(poll, client)).await.unwrap();
                if answer.status == 200 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        assert!(freed.await.is_ok(), "{client}'s slot came back when its connection closed");
    }
    let text = metrics(addr).await;
    assert_eq!(refused(&text, "connections_per_ip"), 3.0, "{text}");
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let config = Config::default()
        .with_trusted_proxies(vec!["10.0.0.0/8".into()])
        .with_max_connections_per_ip(1)
        .with_publish_rate(1)
        .with_publish_burst(2);
    let server = start(config).await;
    let addr = server.addr();
    let mut spoofer = Conn::open(LOCAL, addr).await;
    for (n, claimed) in ["203.0.113.1", "203.0.113.2"].into_iter().enumerate() {
        let answer = spoofer
            .send(&forwarded(&publish_request("t", &format!(r#"{{"data":{n}}}"#)), claimed))
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    // A new address in the header brings no fresh allowance: the peer's is spent.
    let answer =
        spoofer.send(&forwarded(&publish_request("t", r#"{"data":"over"}"#), "203.0.113.3")).await.unwrap();
    assert_eq!((answer.status, answer.code()), (429, "rate_limited".to_owned()), "{answer:?}");
    // And the peer's connections are counted at accept, whatever they forward.
    let answer = refused_answer(LOCAL, addr).await;
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
}

/// A WebSocket to `path`, and a reader of its next JSON frame.
async fn websocket(
    addr: SocketAddr,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let (socket, _) = timeout(BOUND, tokio_tungstenite::connect_async(format!("ws://{addr}{path}")))
        .await
        .expect("handshake in time")
        .expect("handshake");
    socket
}

async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message =
            timeout(BOUND, socket.next()).await.expect("a frame in time").expect("open").expect("ok");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON frame"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn websocket_publishes_over_the_rate_get_an_error_frame_and_the_connection_stays_open() {
    let config = Config::default().with_publish_rate(1).with_publish_burst(2);
    let server = start(config).await;
    let addr = server.addr();
    let mut listener = websocket(addr, "/v1/ws?topic=room").await;
    let mut publisher = websocket(addr, "/v1/ws").await;
    for n in 0..3 {
        let frame = json!({"type": "publish", "topic": "room", "data": n}).to_string();
        publisher.send(Message::text(frame)).await.unwrap();
    }
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(next_json(&mut publisher).await);
    }
    assert_eq!(replies[0]["type"], "published", "{replies:?}");
    assert_eq!(replies[1]["type"], "published", "{replies:?}");
    assert_eq!(replies[2]["type"], "error", "{replies:?}");
    assert_eq!(replies[2]["error"]["code"], "rate_limited", "{replies:?}");
    assert_eq!(replies[2]["request"], "publish", "{replies:?}");

    // Still open: it answers a ping.
    publisher.send(Message::text(r#"{"type":"ping","id":7}"#)).await.unwrap();
    assert_eq!(next_json(&mut publisher).await, json!({"type": "pong", "id": 7}));
    // The listener got the two accepted publishes, in order.
    for n in 0..2 {
        let event = next_json(&mut listener).await;
        assert_eq!((event["type"].clone(), event["data"].clone()), (json!("event"), json!(n)), "{event}");
    }
    let text = metrics(addr).await;
    assert_eq!(refused(&text, "rate_limited"), 1.0, "{text}");
}

/// A `redis-server` process stopped with SIGSTOP (so Redis calls hang, as on an overloaded
/// server), continued when dropped.
struct Paused(String);

impl Paused {
    async fn pause(redis: &pushgate_testkit::RedisServer) -> Self {
        let info = redis.command(&["INFO", "server"]).await.unwrap();
        let pid = info
            .lines()
            .find_map(|line| line.trim().strip_prefix("process_id:"))
            .expect("INFO server names the process")
            .to_owned();
        let status = std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        assert!(status.success(), "SIGSTOP {pid}");
        Self(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

#[tokio::test]
async fn a_websocket_publish_waiting_for_redis_holds_up_nothing_else_on_its_connection() {
    let redis = pushgate_testkit::RedisServer::start().await.unwrap();
    let server = start(Config::default().with_redis(Some(redis.url()))).await;
    let addr = server.addr();
    let mut socket = websocket(addr, "/v1/ws?topic=room").await;
    let publish = |n: u32| Message::text(json!({"type": "publish", "topic": "room", "data": n}).to_string());
    socket.send(publish(0)).await.unwrap();
    let mut frames = vec![next_json(&mut socket).await, next_json(&mut socket).await];
    frames.sort_by_key(|frame| frame["type"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        (frames[0]["type"].clone(), frames[0]["data"].clone()),
        (json!("event"), json!(0)),
        "{frames:?}"
    );
    assert_eq!(frames[1]["type"], "published", "{frames:?}");

    // Redis hangs: this publish waits (for the script timeout at least)...
    let paused = Paused::pause(&redis).await;
    socket.send(publish(1)).await.unwrap();
    // ... while the connection goes on answering. Inline, the publish's answer (an error after
    // the timeout) would come first.
    socket.send(Message::text(r#"{"type":"ping","id":7}"#)).await.unwrap();
    assert_eq!(next_json(&mut socket).await, json!({"type": "pong", "id": 7}));
    socket.send(Message::text(r#"{"type":"subscribe","topics":["other"]}"#)).await.unwrap();
    let subscribed = next_json(&mut socket).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    // A WebSocket Ping is answered too.
    socket.send(Message::Ping(b"alive".to_vec().into())).await.unwrap();
    let pong = loop {
        match timeout(BOUND, socket.next()).await.expect("a frame in time").expect("open").expect("ok") {
            Message::Pong(payload) => break payload,
            Message::Text(text) => panic!("answered before the pong: {text}"),
            _ => {}
        }
    };
    assert_eq!(&pong[..], b"alive");

    // Once Redis is back, the publish is answered (published, or refused as unavailable).
    drop(paused);
    let answer = timeout(Duration::from_secs(15), async {
        loop {
            let frame = next_json(&mut socket).await;
            if frame["type"] != "event" {
                break frame;
            }
        }
    })
    .await
    .expect("the publish is answered");
    let published = answer["type"] == "published";
    let unavailable = answer["type"] == "error" && answer["request"] == "publish";
    assert!(published || unavailable, "{answer}");
}

#[tokio::test]
async fn reconnecting_does_not_reset_the_publish_allowance_of_an_address() {
    // One token a second, so none comes back during the test.
    let config = Config::default().with_publish_rate(1).with_publish_burst(3);
    let server = start(config).await;
    let addr = server.addr();
    let publish = |n: u32| format!(r#"{{"data":{n}}}"#);

    // The burst is spent over three connections in turn, each closed before the next.
    for n in 0..3 {
        let mut conn = Conn::open(LOCAL, addr).await;
        let answer = conn.publish("news", &publish(n)).await.unwrap();
        assert_eq!(answer.status, 200, "publish {n}: {answer:?}");
    }
    let mut again = Conn::open(LOCAL, addr).await;
    let answer = again.publish("news", &publish(3)).await.unwrap();
    assert_eq!((answer.status, answer.code()), (429, "rate_limited".to_owned()), "{answer:?}");
    drop(again);

    // A WebSocket from the same address (the client connects from 127.0.0.1) shares the
    // allowance, and so does its next incarnation.
    for _ in 0..2 {
        let mut socket = websocket(addr, "/v1/ws").await;
        let frame = json!({"type": "publish", "topic": "news", "data": "ws"}).to_string();
        socket.send(Message::text(frame)).await.unwrap();
        let reply = next_json(&mut socket).await;
        assert_eq!(
            (reply["type"].as_str(), reply["error"]["code"].as_str()),
            (Some("error"), Some("rate_limited"))
        );
        socket.close(None).await.unwrap();
    }

    // Another address has its own allowance, over HTTP and WebSocket.
    let mut other = Conn::open(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    assert_eq!(other.publish("news", &publish(4)).await.unwrap().status, 200);
    let text = metrics(addr).await;
    assert_eq!(refused(&text, "rate_limited"), 3.0, "{text}");
}

#[tokio::test]
async fn topics_per_subscription_are_limited_on_every_transport() {
    let server = start(Config::default().with_max_topics_per_subscription(2)).await;
    let addr = server.addr();
    let mut conn = Conn::open(LOCAL, addr).await;
    for path in ["/v1/poll", "/v1/longpoll", "/v1/sse"] {
        let answer = conn.get(&format!("{path}?topic=a&topic=b&topic=c&timeout=1")).await.unwrap();
        assert_eq!((answer.status, answer.code()), (400, "too_many_topics".to_owned()), "{path}: {answer:?}");
    }

    // A WebSocket may follow two topics; a subscribe frame that would make three is refused
    // with an error frame, and the two topics go on.
    let mut socket = websocket(addr, "/v1/ws?topic=a&topic=b").await;
    socket.send(Message::text(r#"{"type":"subscribe","topics":["c"]}"#)).await.unwrap();
    let reply = next_json(&mut socket).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["error"]["code"], "too_many_topics", "{reply}");
    assert_eq!(reply["request"], "subscribe", "{reply}");
    assert_eq!(conn.publish("b", r#"{"data":"still here"}"#).await.unwrap().status, 200);
    let event = next_json(&mut socket).await;
    assert_eq!((event["topic"].clone(), event["data"].clone()), (json!("b"), json!("still here")));

    let text = metrics(addr).await;
    assert_eq!(refused(&text, "too_many_topics"), 4.0, "{text}");
}

#[tokio::test]
async fn messages_over_the_size_limits_are_refused_413_or_closed_1009() {
    let config = Config::default().with_max_body_bytes(1000).with_ws_max_message_bytes(1000);
    let server = start(config).await;
    let addr = server.addr();
    let mut conn = Conn::open(LOCAL, addr).await;
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(2000));
    let answer = conn.publish("t", &big).await.unwrap();
    assert_eq!((answer.status, answer.code()), (413, "too_large".to_owned()), "{answer:?}");

    let mut socket = websocket(addr, "/v1/ws").await;
    let frame = json!({"type": "publish", "topic": "t", "data": "x".repeat(2000)}).to_string();
    socket.send(Message::text(frame)).await.unwrap();
    let closed = timeout(BOUND, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("expected a Close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("closed in time")
    .expect("a close frame");
    assert_eq!(u16::from(closed.code), 1009, "{closed:?}");

    let text =
        metrics_until(addr, "two message_too_large refusals", |t| refused(t, "message_too_large") >= 2.0)
            .await;
    assert_eq!(refused(&text, "message_too_large"), 2.0, "{text}");
}

#[tokio::test]
async fn metrics_show_subscriptions_per_transport_and_delivery_latency() -> anyhow::Result<()> {
    let server = start(Config::default()).await;
    let addr = server.addr();
    let client = reqwest::Client::builder().no_proxy().timeout(BOUND * 2).build()?;
    let mut sse = client.get(format!("http://{addr}/v1/sse?topic=live")).send().await?;
    let mut ws = websocket(addr, "/v1/ws?topic=live").await;
    let longpoll = tokio::spawn({
        let client = client.clone();
        async move {
            client.get(format!("http://{addr}/v1/longpoll?topic=live&timeout=8")).send().await?.text().await
        }
    });
    let text = metrics_until(addr, "one subscription per transport", |t| {
        ["sse", "ws", "longpoll"]
            .iter()
            .all(|tr| sample(t, &format!("pushgate_subscriptions{{transport=\"{tr}\"}}")) == 1.0)
    })
    .await;
    ensure!(sample(&text, "pushgate_subscribers") == 2.0, "{text}");

    let mut conn = Conn::open(LOCAL, addr).await;
    ensure!(conn.publish("live", r#"{"data":1}"#).await?.status == 200);
    let answered = timeout(BOUND, longpoll).await??;
    ensure!(answered?.contains(r#""data":1"#));
    let event = next_json(&mut ws).await;
    ensure!(event["data"] == 1, "{event}");
    let mut seen = String::new();
    while !seen.contains("data: ") {
        let chunk = timeout(BOUND, sse.chunk()).await??.context("stream open")?;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    ensure!(conn.get("/v1/poll?topic=live&cursor=oldest").await?.status == 200);

    let text = metrics_until(addr, "a delivery per transport", |t| {
        ["sse", "ws", "longpoll", "poll"].iter().all(|tr| {
            sample(t, &format!("pushgate_delivery_latency_seconds_count{{transport=\"{tr}\"}}")) == 1.0
        })
    })
    .await;
    // The long poll was answered, so it is no longer a live reader; the streams still are.
    ensure!(sample(&text, r#"pushgate_subscriptions{transport="longpoll"}"#) == 0.0, "{text}");
    ensure!(sample(&text, r#"pushgate_subscriptions{transport="sse"}"#) == 1.0, "{text}");
    ensure!(sample(&text, r#"pushgate_fetches_total{transport="poll"}"#) == 1.0, "{text}");
    ensure!(sample(&text, r#"pushgate_fetches_total{transport="longpoll"}"#) == 1.0, "{text}");
    // Each delivery is within the 10 s bucket and its latency is counted in the sum.
    for transport in ["sse", "ws", "longpoll"] {
        let within = sample(
            &text,
            &format!("pushgate_delivery_latency_seconds_bucket{{le=\"10.0\",transport=\"{transport}\"}}"),
        );
        let within = if within == 0.0 {
            sample(
                &text,
                &format!("pushgate_delivery_latency_seconds_bucket{{transport=\"{transport}\",le=\"10.0\"}}"),
            )
        } else {
            within
        };
        ensure!(within == 1.0, "{transport}: {text}");
    }
    ensure!(text.contains("# TYPE pushgate_delivery_latency_seconds histogram"), "{text}");
    drop((sse, ws));
    metrics_until(addr, "the streams gone", |t| {
        sample(t, r#"pushgate_subscriptions{transport="sse"}"#) == 0.0
            && sample(t, r#"pushgate_subscriptions{transport="ws"}"#) == 0.0
    })
    .await;
    Ok(())
}
