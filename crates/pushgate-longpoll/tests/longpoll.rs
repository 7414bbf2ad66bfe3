//! `GET /v1/longpoll` over a real socket with a real HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use pushgate_hub::{Hub, NewEvent, TopicName};
use pushgate_longpoll::{LongPollConfig, router};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

async fn serve(hub: &Hub) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(hub.clone(), LongPollConfig::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(BOUND * 2).build().unwrap()
}

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

/// Starts a long poll in the background; its answer is the task's output.
fn spawn_poll(addr: SocketAddr, query: String) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    tokio::spawn(async move {
        let response = client().get(format!("http://{addr}/v1/longpoll?{query}")).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    })
}

/// Waits (bounded) until `topic` has `n` parked long polls.
async fn parked(hub: &Hub, topic_name: &str, n: usize) {
    let deadline = Instant::now() + BOUND;
    loop {
        let presence = hub.presence(&topic(topic_name));
        let count = presence.by_label.iter().find(|(l, _)| l == "longpoll").map_or(0, |(_, c)| *c);
        if count == n {
            return;
        }
        assert!(Instant::now() < deadline, "{n} parked long poll(s) expected, presence is {presence:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn current_cursor(addr: SocketAddr, topic: &str) -> String {
    let response =
        client().get(format!("http://{addr}/v1/longpoll?topic={topic}&timeout=0")).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    body["cursor"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_parked_poll_is_answered_as_soon_as_an_event_is_published() {
    let hub = Hub::new();
    let addr = serve(&hub).await;
    let cursor = current_cursor(addr, "t").await;

    let poll = spawn_poll(addr, format!("topic=t&cursor={cursor}&timeout=60"));
    parked(&hub, "t", 1).await;
    assert_eq!(hub.presence(&topic("t")).total, 1);

    let published = Instant::now();
    hub.publish(&topic("t"), NewEvent::new(json!({"n": 1}))).await.unwrap();
    let (status, body) = timeout(BOUND, poll).await.expect("answered promptly").unwrap();
    assert!(published.elapsed() < BOUND);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["events"][0]["data"], json!({"n": 1}));
    assert_eq!(body["cursor"], body["events"][0]["id"]);
    parked(&hub, "t", 0).await;
}

#[tokio::test]
async fn waiting_events_are_answered_at_once_in_one_batch() {
    let hub = Hub::new();
    let addr = serve(&hub).await;
    let cursor = current_cursor(addr, "t").await;
    for i in 1..=3 {
        hub.publish(&topic("t"), NewEvent::new(json!(i))).await.unwrap();
    }
    let (status, body) =
        timeout(BOUND, spawn_poll(addr, format!("topic=t&cursor={cursor}&timeout=60&limit=2")))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(status, StatusCode::OK);
    let seqs: Vec<_> = body["events"].as_array().unwrap().iter().map(|e| e["seq"].clone()).collect();
    assert_eq!(seqs, [json!(1), json!(2)]);
}

#[tokio::test]
async fn a_timeout_answers_200_with_no_events_and_the_same_cursor() {
    let hub = Hub::new();
    let addr = serve(&hub).await;
    let cursor = current_cursor(addr, "t").await;

    let started = Instant::now();
    let (status, body) = timeout(BOUND, spawn_poll(addr, format!("topic=t&cursor={cursor}&timeout=1")))
        .await
        .unwrap()
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"events": [], "cursor": cursor}));
    assert!(waited >= Duration::from_millis(900), "answered after {waited:?}, before the timeout");
    parked(&hub, "t", 0).await;
}

#[tokio::test]
async fn closing_the_hub_answers_parked_polls_at_once_and_refuses_new_ones() {
    let hub = Hub::new();
    let addr = serve(&hub).await;
    let cursor = current_cursor(addr, "t").await;
    let polls: Vec<_> =
        (0..2).map(|_| spawn_poll(addr, format!("topic=t&cursor={cursor}&timeout=60"))).collect();
    parked(&hub, "t", 2).await;

    hub.close();
    for poll in polls {
        let (status, body) = timeout(BOUND, poll).await.expect("answered promptly on close").unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"events": [], "cursor": cursor}));
    }

    let (status, body) = timeout(BOUND, spawn_poll(addr, "topic=t".to_owned())).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "shutting_down");
}

#[tokio::test]
async fn a_client_that_gives_up_is_no_longer_counted() {
    let hub = Hub::new();
    let addr = serve(&hub).await;
    let impatient =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(300)).build().unwrap();
    let result = impatient.get(format!("http://{addr}/v1/longpoll?topic=gone&timeout=60")).send().await;
    assert!(result.is_err(), "the client gave up before the poll's timeout");
    // Well before the poll's 60 s timeout: the dropped request unregistered at once.
    parked(&hub, "gone", 0).await;
}

#[tokio::test]
async fn bad_requests_are_400_with_a_json_error() {
    let hub = Hub::new();
    let addr = serve(&hub).await;
    for (query, code) in [
        ("timeout=1", "no_topics"),
        ("topic=a/b", "invalid_topic"),
        ("topic=t&cursor=yesterday", "invalid_cursor"),
        ("topic=t&timeout=soon", "invalid_parameter"),
        ("topic=t&timeout=-1", "invalid_parameter"),
        ("topic=t&limit=0", "invalid_parameter"),
    ] {
        let (status, body) = timeout(BOUND, spawn_poll(addr, query.to_owned())).await.unwrap().unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
}

#[tokio::test]
async fn a_large_backlog_is_paged_by_the_answer_budget() {
    let hub = pushgate_hub::Hub::builder()
        .history(pushgate_hub::HistoryLimit::default().max_bytes(64 << 20))
        .build();
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(hub.clone(), LongPollConfig::default().max_bytes(2 << 20));
    tokio::spawn(async move { axum::serve(listener, app).await });
    for i in 0..8 {
        let data = json!(format!("{i}{}", "x".repeat(1_000_000)));
        hub.publish(&topic("big"), NewEvent::new(data)).await.unwrap();
    }

    let mut cursor = "oldest".to_owned();
    let mut seen = Vec::new();
    while seen.len() < 8 {
        let url = format!("http://{addr}/v1/longpoll?topic=big&cursor={cursor}&timeout=1");
        let bytes = client().get(url).send().await.unwrap().bytes().await.unwrap();
        assert!(bytes.len() < 3 << 20, "an answer of {} bytes passes the 2 MiB budget", bytes.len());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let events = body["events"].as_array().unwrap();
        assert_eq!(events.len(), 2, "each answer holds two events: {}", seen.len());
        seen.extend(events.iter().map(|e| e["seq"].as_u64().unwrap()));
        cursor = body["cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, (1..=8).collect::<Vec<_>>(), "following the cursor yields every event once");
}
