//! `GET /v1/poll` over a real socket with a real HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use pushgate_hub::{Cursor, Epoch, HistoryLimit, Hub, NewEvent, TopicName};
use pushgate_poll::{PollConfig, router};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Serves the poll router for `hub` on 127.0.0.1 port 0; the server lives as long as the test runtime.
async fn serve(hub: &Hub, config: PollConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(hub.clone(), config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap()
}

async fn publish(hub: &Hub, topic: &str, data: Value) {
    hub.publish(&TopicName::new(topic).unwrap(), NewEvent::new(data)).await.unwrap();
}

async fn get_json(addr: SocketAddr, query: &str) -> (StatusCode, Value) {
    let response = client().get(format!("http://{addr}/v1/poll?{query}")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn receives_events_after_the_cursor_and_keeps_an_idle_cursor() {
    let hub = Hub::new();
    let addr = serve(&hub, PollConfig::default()).await;

    let (status, first) = get_json(addr, "topic=chat").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["events"], json!([]));
    let cursor = first["cursor"].as_str().unwrap().to_owned();
    assert!(first.get("reset").is_none());

    publish(&hub, "chat", json!({"text": "hi"})).await;
    publish(&hub, "other", json!(0)).await;
    publish(&hub, "chat", json!({"text": "there"})).await;

    let (status, body) = get_json(addr, &format!("topic=chat&cursor={cursor}")).await;
    assert_eq!(status, StatusCode::OK);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["topic"], "chat");
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["event"], "message");
    assert_eq!(events[0]["data"], json!({"text": "hi"}));
    assert_eq!(events[1]["seq"], 2);
    assert_eq!(body["cursor"], events[1]["id"]);

    // Nothing new: the cursor comes back unchanged.
    let next = body["cursor"].as_str().unwrap();
    let (_, idle) = get_json(addr, &format!("topic=chat&cursor={next}")).await;
    assert_eq!(idle["events"], json!([]));
    assert_eq!(idle["cursor"], next);

    // `topics=` and repeated `topic=` are one subscription in one order.
    let (_, both) = get_json(addr, "topics=chat,other&cursor=oldest").await;
    let seen: Vec<_> = both["events"].as_array().unwrap().iter().map(|e| e["topic"].clone()).collect();
    assert_eq!(seen, [json!("chat"), json!("other"), json!("chat")]);
}

#[tokio::test]
async fn limit_paginates_and_is_capped() {
    let hub = Hub::new();
    let addr = serve(&hub, PollConfig::default().limit(pushgate_http::BatchLimit::new(3, 3))).await;
    for i in 1..=5 {
        publish(&hub, "t", json!(i)).await;
    }

    let (_, page1) = get_json(addr, "topic=t&cursor=oldest&limit=2").await;
    let seqs = |body: &Value| {
        body["events"].as_array().unwrap().iter().map(|e| e["seq"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(seqs(&page1), [json!(1), json!(2)]);
    let (_, page2) =
        get_json(addr, &format!("topic=t&cursor={}&limit=100", page1["cursor"].as_str().unwrap())).await;
    assert_eq!(seqs(&page2), [json!(3), json!(4), json!(5)], "limit=100 is capped at the maximum of 3");
    let (_, page3) = get_json(addr, &format!("topic=t&cursor={}", page2["cursor"].as_str().unwrap())).await;
    assert_eq!(seqs(&page3), Vec::<Value>::new());
    assert_eq!(page3["cursor"], page2["cursor"]);
}

#[tokio::test]
async fn an_idle_poll_with_its_etag_gets_304_until_something_is_published() {
    let hub = Hub::new();
    let addr = serve(&hub, PollConfig::default()).await;
    let (_, first) = get_json(addr, "topic=t").await;
    let url = format!("http://{addr}/v1/poll?topic=t&cursor={}", first["cursor"].as_str().unwrap());

    let idle = client().get(&url).send().await.unwrap();
    assert_eq!(idle.status(), StatusCode::OK);
    let etag = idle.headers()[reqwest::header::ETAG].clone();

    let cached =
        client().get(&url).header(reqwest::header::IF_NONE_MATCH, etag.clone()).send().await.unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cached.headers()[reqwest::header::ETAG], etag);
    assert!(cached.bytes().await.unwrap().is_empty());

    publish(&hub, "t", json!("new")).await;
    let fresh = client().get(&url).header(reqwest::header::IF_NONE_MATCH, etag).send().await.unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    let body: Value = fresh.json().await.unwrap();
    assert_eq!(body["events"][0]["data"], "new");
}

#[tokio::test]
async fn a_cursor_from_another_epoch_gets_a_reset_then_the_retained_events() {
    let hub = Hub::builder().history(HistoryLimit::default().max_events(2)).build();
    let addr = serve(&hub, PollConfig::default()).await;
    for i in 1..=3 {
        publish(&hub, "t", json!(i)).await;
    }
    let stale = Cursor::at(Epoch::from_u32(hub.epoch().as_u32() ^ 1), 1);

    let (status, body) = get_json(addr, &format!("topic=t&cursor={stale}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["reset"]["reason"], "epoch_changed");
    assert_eq!(body["reset"]["topics"][0]["topic"], "t");
    assert_eq!(body["reset"]["topics"][0]["missed"], json!({"at_least": 0, "at_most": null}));
    assert_eq!(body["reset"]["topics"][0]["resume_seq"], 2);
    let seqs: Vec<_> = body["events"].as_array().unwrap().iter().map(|e| e["seq"].clone()).collect();
    assert_eq!(seqs, [json!(2), json!(3)]);

    // Resuming from the answer's cursor is exact: no second reset.
    let (_, next) = get_json(addr, &format!("topic=t&cursor={}", body["cursor"].as_str().unwrap())).await;
    assert!(next.get("reset").is_none());
    assert_eq!(next["events"], json!([]));
}

#[tokio::test]
async fn bad_requests_are_400_with_a_json_error() {
    let hub = Hub::new();
    let addr = serve(&hub, PollConfig::default()).await;
    for (query, code) in [
        ("", "no_topics"),
        ("topic=", "invalid_topic"),
        ("topic=a%20b", "invalid_topic"),
        ("topic=t&cursor=junk", "invalid_cursor"),
        ("topic=t&cursor=00000000-zz", "invalid_cursor"),
        ("topic=t&limit=many", "invalid_parameter"),
    ] {
        let response = client().get(format!("http://{addr}/v1/poll?{query}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.headers()[reqwest::header::CONTENT_TYPE], "application/json", "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{query}");
    }

    let ahead = Cursor::at(hub.epoch(), 99);
    let (status, body) = get_json(addr, &format!("topic=t&cursor={ahead}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "cursor_ahead");
}

#[tokio::test]
async fn a_closed_hub_answers_503_shutting_down() {
    let hub = Hub::new();
    let addr = serve(&hub, PollConfig::default()).await;
    hub.close();
    let (status, body) = get_json(addr, "topic=t").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "shutting_down");
}

#[tokio::test]
async fn a_large_backlog_is_paged_by_the_answer_budget() {
    // Eight events of about 1 MB; history keeps them all.
    let hub = Hub::builder().history(HistoryLimit::default().max_bytes(64 << 20)).build();
    let addr = serve(&hub, PollConfig::default().max_bytes(2 << 20)).await;
    for i in 0..8 {
        publish(&hub, "big", json!(format!("{i}{}", "x".repeat(1_000_000)))).await;
    }

    let mut cursor = "oldest".to_owned();
    let mut seen = Vec::new();
    for _ in 0..8 {
        let response =
            client().get(format!("http://{addr}/v1/poll?topic=big&cursor={cursor}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.bytes().await.unwrap();
        assert!(bytes.len() < 3 << 20, "an answer of {} bytes passes the 2 MiB budget", bytes.len());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let events = body["events"].as_array().unwrap();
        if seen.is_empty() {
            assert_eq!(events.len(), 2, "the first answer holds two events");
        }
        if events.is_empty() {
            break;
        }
        seen.extend(events.iter().map(|e| e["seq"].as_u64().unwrap()));
        cursor = body["cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, (1..=8).collect::<Vec<_>>(), "following the cursor yields every event once");
}
