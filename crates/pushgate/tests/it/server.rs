//! The gateway's accept loop over real sockets: header-read timeout, connection limit and
//! graceful shutdown. The server is started by hand, not on `TestServer`, because the shutdown
//! under test must close the hub itself (`TestServer` closes it before stopping the server), and
//! `serve_on` and `serve_hub_on` are tested as they are called.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use pushgate::{Config, ServeError};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
}

async fn start(config: Config) -> Server {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        pushgate::serve_on(listener, &config, async {
            stopped.await.ok();
        })
        .await
    });
    Server { addr, stop, task }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(BOUND).build().unwrap()
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_client_that_sends_no_headers_is_disconnected_after_the_header_read_timeout() {
    let server = start(Config::default().with_header_read_timeout(Duration::from_secs(1))).await;

    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let connected = Instant::now();

    timeout(BOUND, read_until_closed(&mut silent)).await.expect("the silent client was disconnected");
    timeout(BOUND, read_until_closed(&mut partial)).await.expect("the slow client was disconnected");
    let after = connected.elapsed();
    assert!(after >= Duration::from_millis(900), "disconnected after {after:?}, before the timeout");

    // A prompt client is served as usual.
    let response = client().get(format!("http://{}/healthz", server.addr)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(server.stop);
}

#[tokio::test]
async fn connections_over_the_limit_are_answered_503_overloaded() {
    let server = start(Config::default().with_max_connections(1)).await;

    let holder = TcpStream::connect(server.addr).await.unwrap();
    // Wait until the holder is surely accepted before the next connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    extra.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let answer = timeout(BOUND, read_until_closed(&mut extra)).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    let body: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "overloaded");

    // Once the holder leaves, its slot is free again.
    drop(holder);
    let deadline = Instant::now() + BOUND;
    loop {
        let response = client().get(format!("http://{}/healthz", server.addr)).send().await;
        if response.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was not reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server.stop);
}

#[tokio::test]
async fn a_burst_of_connections_over_the_limit_is_answered_503_every_one() {
    // More than the 64 answered at once before, fewer than the test listener's backlog (128).
    const BURST: usize = 100;
    let server = start(Config::default().with_max_connections(1).with_max_connections_per_ip(0)).await;
    let mut holder = pushgate_testkit::RawHttp::connect(server.addr).await.unwrap();
    holder.send("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    assert_eq!(holder.answer().await.unwrap().status, 200);

    // All connected before any sends its request, so every refusal waits for its request at
    // the same time.
    let connects = (0..BURST).map(|_| TcpStream::connect(server.addr));
    let mut burst = futures_util::future::try_join_all(connects).await.unwrap();
    let deadline = Instant::now() + BOUND;
    loop {
        holder.send("GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let metrics = holder.answer().await.unwrap().body;
        let accepted = metrics
            .lines()
            .find_map(|line| line.strip_prefix("pushgate_connections_accepted_total "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if accepted >= (BURST + 1) as f64 {
            break;
        }
        assert!(Instant::now() < deadline, "the burst was not accepted in time: {accepted}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answers = burst.iter_mut().map(|stream| async move {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        String::from_utf8(read_until_closed(stream).await).unwrap()
    });
    let answers = timeout(BOUND, futures_util::future::join_all(answers)).await.expect("answered in time");
    let unanswered = answers.iter().filter(|answer| !answer.starts_with("HTTP/1.1 503 ")).count();
    assert_eq!(
        unanswered,
        0,
        "of {BURST} refused connections, {unanswered} got no 503: {:?}",
        answers.iter().find(|a| !a.starts_with("HTTP/1.1 503 "))
    );
    assert!(answers.iter().all(|answer| answer.contains(r#""code":"overloaded""#)));
    drop(server.stop);
}

#[tokio::test]
async fn shutdown_answers_parked_long_polls_and_ends_within_the_drain_time() {
    let drain = Duration::from_secs(3);
    let server = start(Config::default().with_drain_timeout(drain)).await;
    let addr = server.addr;
    let first: Value =
        client().get(format!("http://{addr}/v1/poll?topic=t")).send().await.unwrap().json().await.unwrap();
    let cursor = first["cursor"].as_str().unwrap().to_owned();

    let url = format!("http://{addr}/v1/longpoll?topic=t&cursor={cursor}&timeout=60");
    let poll = tokio::spawn(async move {
        let response = client().get(url).send().await.unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    });
    let deadline = Instant::now() + BOUND;
    loop {
        let presence: Value =
            client().get(format!("http://{addr}/v1/presence/t")).send().await.unwrap().json().await.unwrap();
        if presence["total"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the long poll never parked: {presence}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopping = Instant::now();
    server.stop.send(()).unwrap();
    let (status, body) = timeout(BOUND, poll).await.expect("the parked poll was answered").unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"events": [], "cursor": cursor}));
    timeout(drain, server.task).await.expect("the server ended within the drain time").unwrap().unwrap();
    assert!(stopping.elapsed() < drain);

    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn shutdown_cuts_connections_that_do_not_finish_within_the_drain_time() {
    let drain = Duration::from_secs(1);
    let server = start(Config::default().with_drain_timeout(drain)).await;

    // A publish whose body never arrives keeps its request in flight.
    let mut stuck = TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(b"POST /v1/publish/t HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"data\":")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let stopping = Instant::now();
    server.stop.send(()).unwrap();
    timeout(BOUND, server.task).await.expect("the server ended").unwrap().unwrap();
    let took = stopping.elapsed();
    assert!(took >= Duration::from_millis(900) && took < BOUND, "stopped after {took:?}");
    timeout(BOUND, read_until_closed(&mut stuck)).await.expect("the stuck connection was closed");
}

#[tokio::test]
async fn an_invalid_config_is_refused_before_serving() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let config = Config::default().with_longpoll_timeout(Duration::from_secs(600));
    let result = pushgate::serve_on(listener, &config, std::future::pending()).await;
    assert!(matches!(result, Err(ServeError::Config(_))), "{result:?}");
}

#[tokio::test]
async fn serve_hub_on_serves_the_callers_hub_and_closes_it_on_shutdown() {
    let config = Config::default();
    let hub = config.build_hub();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let hub = hub.clone();
        async move {
            pushgate::serve_hub_on(listener, hub, &config, async {
                stopped.await.ok();
            })
            .await
        }
    });

    let topic = pushgate_hub::TopicName::new("direct").unwrap();
    hub.publish(&topic, pushgate_hub::NewEvent::new(json!("from the hub"))).await.unwrap();
    let polled: Value = client()
        .get(format!("http://{addr}/v1/poll?topic=direct&cursor=oldest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polled["events"][0]["data"], "from the hub");

    stop.send(()).unwrap();
    timeout(BOUND, task).await.unwrap().unwrap().unwrap();
    assert!(hub.is_closed());
}
