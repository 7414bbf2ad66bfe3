//! The gateway's own API over a real socket: publish, presence, the JSON 404, and the
//! transports mounted next to them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use pushgate::Config;
use pushgate_testkit::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

/// A gateway on port 0 (the testkit's); stops when the returned server is dropped.
async fn start(config: Config) -> (SocketAddr, TestServer) {
    let server = TestServer::start_with(config).await.unwrap();
    (server.addr(), server)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(BOUND).build().unwrap()
}

async fn publish(addr: SocketAddr, topic: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let response = client()
        .post(format!("http://{addr}/v1/publish/{topic}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(response.headers()[reqwest::header::CONTENT_TYPE], "application/json");
    (status, response.json().await.unwrap())
}

async fn get_json(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    let response = client().get(format!("http://{addr}{path}")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn published_events_get_seq_and_id_and_reach_the_polling_transports() {
    let (addr, _stop) = start(Config::default()).await;
    let (status, first) = publish(addr, "chat", r#"{"data":{"text":"hi"}}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["topic"], "chat");
    assert_eq!(first["seq"], 1);
    let id = first["id"].as_str().unwrap().to_owned();

    let (status, second) = publish(addr, "chat", r#"{"event":"alert","data":null}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["seq"], 2);
    assert_eq!(second.as_object().unwrap().len(), 3, "only topic, seq and id: {second}");

    let (status, polled) = get_json(addr, &format!("/v1/poll?topic=chat&cursor={id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(polled["events"][0]["event"], "alert");
    assert_eq!(polled["events"][0]["data"], Value::Null);
    assert_eq!(polled["events"][0]["id"], second["id"]);

    let (status, longpolled) = get_json(addr, "/v1/longpoll?topic=chat&cursor=oldest&timeout=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(longpolled["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn publish_errors_are_json_with_stable_codes() {
    let (addr, _stop) = start(Config::default().with_max_body_bytes(1024)).await;
    let cases: [(&str, String, StatusCode, &str); 8] = [
        ("bad%20topic", r#"{"data":1}"#.to_owned(), StatusCode::BAD_REQUEST, "invalid_topic"),
        ("chat", "{not json".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("chat", "[1,2]".to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("chat", r#"{"event":"x"}"#.to_owned(), StatusCode::BAD_REQUEST, "invalid_json"),
        ("chat", String::new(), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            "chat",
            r#"{"event":"no spaces","data":1}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_event_type",
        ),
        ("chat", format!(r#"{{"data":"{}"}}"#, "x".repeat(2000)), StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        (
            "chat",
            format!(r#"{{"data":"{}"}}"#, "x".repeat(1024 - 10)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
    ];
    for (topic, body, status, code) in cases {
        let (got, error) = publish(addr, topic, body.clone()).await;
        assert_eq!(got, status, "{topic} {body:.40}: {error}");
        assert_eq!(error["error"]["code"], code, "{topic} {body:.40}: {error}");
        assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A body of exactly the limit is accepted.
    let exact = format!(r#"{{"data":"{}"}}"#, "x".repeat(1024 - 11));
    assert_eq!(exact.len(), 1024);
    assert_eq!(publish(addr, "chat", exact).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_too() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let (addr, _stop) = start(Config::default().with_max_body_bytes(1024)).await;
    // A chunked body declares no length, so the limit is enforced while reading.
    let data = format!(r#"{{"data":"{}"}}"#, "x".repeat(1500));
    let request = format!(
        "POST /v1/publish/chat HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{data}\r\n0\r\n\r\n",
        data.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(BOUND, stream.read_to_end(&mut response)).await.unwrap().unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
    assert!(response.contains(r#"{"error":{"code":"too_large","#), "{response}");
}

#[tokio::test]
async fn presence_counts_parked_long_polls_per_transport() {
    let (addr, _stop) = start(Config::default()).await;
    let (status, empty) = get_json(addr, "/v1/presence/room").await;
    assert_eq!(status, StatusCode::OK);
    let empty_answer = json!({
        "topic": "room", "total": 0, "by_transport": {}, "transports": {},
        "users": [], "users_total": 0, "users_truncated": false, "nodes": 1,
    });
    assert_eq!(empty, empty_answer);

    let poll = tokio::spawn(async move { get_json(addr, "/v1/longpoll?topic=room&timeout=30").await });
    let deadline = Instant::now() + BOUND;
    loop {
        let (_, presence) = get_json(addr, "/v1/presence/room").await;
        if presence["total"] == 1 && presence["by_transport"] == json!({"longpoll": 1}) {
            break;
        }
        assert!(Instant::now() < deadline, "the parked poll was not counted: {presence}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    publish(addr, "room", r#"{"data":"wake"}"#).await;
    let (status, answer) = timeout(BOUND, poll).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["events"][0]["data"], "wake");

    let (status, error) = get_json(addr, "/v1/presence/no%20such").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "invalid_topic");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let (addr, _stop) = start(Config::default()).await;
    let (status, error) = get_json(addr, "/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "not_found");

    let response = client().delete(format!("http://{addr}/v1/publish/chat")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "method_not_allowed");

    let (status, health) = get_json(addr, "/healthz").await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok", "sources": []})));
}

#[tokio::test]
async fn topic_limits_come_from_the_config() {
    let (addr, _stop) = start(Config::default().with_max_topics_per_subscription(2)).await;
    let (status, error) = get_json(addr, "/v1/poll?topics=a,b,c").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "too_many_topics");
    assert_eq!(get_json(addr, "/v1/poll?topics=a,b").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_body_trickled_slower_than_the_deadline_is_408_and_the_connection_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let deadline = Duration::from_secs(1);
    let (addr, _stop) = start(Config::default().with_body_read_timeout(deadline)).await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"POST /v1/publish/chat HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One byte every 300 ms: 100 bytes would take 30 s.
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });

    let mut response = Vec::new();
    let read = timeout(BOUND, reader.read_to_end(&mut response)).await;
    trickle.abort();
    let took = started.elapsed();
    let response = String::from_utf8_lossy(&response);
    assert!(read.is_ok(), "the connection was not closed within {BOUND:?}: {response}");
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    assert!(response.contains(r#"{"error":{"code":"request_timeout","#), "{response}");
    assert!(response.to_ascii_lowercase().contains("connection: close"), "{response}");
    assert!(took >= deadline - Duration::from_millis(100) && took < deadline * 3, "answered after {took:?}");

    // A prompt publish on another connection is unaffected.
    assert_eq!(publish(addr, "chat", r#"{"data":1}"#).await.0, StatusCode::OK);
}

#[tokio::test]
async fn poll_answers_keep_to_the_answer_budget() {
    let (addr, _stop) = start(Config::default().with_max_answer_bytes(2 << 20)).await;
    for i in 0..3 {
        let body = format!(r#"{{"data":"{i}{}"}}"#, "x".repeat(1_000_000));
        assert_eq!(publish(addr, "big", body).await.0, StatusCode::OK);
    }
    for path in ["/v1/poll?topic=big&cursor=oldest", "/v1/longpoll?topic=big&cursor=oldest&timeout=1"] {
        let (status, answer) = get_json(addr, path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["events"].as_array().unwrap().len(), 2, "{path}");
    }
}
