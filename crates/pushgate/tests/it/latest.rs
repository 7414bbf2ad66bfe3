//! Latest value only through the gateway: events published with a `key`, read by a reader that
//! is behind, come as the newest value of each key (and every event without a key), on poll
//! and long poll (`latest=1`, or a topic named by `--latest-topics`) and on SSE and WebSocket
//! streams (`latest=1`, the `subscribe` frame's `latest`); the cursor passes what was skipped,
//! and readers that did not ask get every event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use pushgate::Config;
use pushgate_testkit::{SseReader, TestServer};
use serde_json::{Value, json};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const BOUND: Duration = Duration::from_secs(10);

/// `(key, data)` in publish order: two keys and one event without a key.
const TICKS: [(Option<&str>, i64); 6] = [
    (Some("AAPL"), 1),
    (Some("MSFT"), 2),
    (Some("AAPL"), 3),
    (None, 4),
    (Some("MSFT"), 5),
    (Some("AAPL"), 6),
];

/// What a latest-only reader from before the ticks gets: the newest of each key, and the event
/// without one, in publish order.
const LATEST: [i64; 3] = [4, 5, 6];

async fn publish(server: &TestServer, topic: &str, key: Option<&str>, data: i64) {
    let body = match key {
        Some(key) => json!({"data": data, "key": key}),
        None => json!({"data": data}),
    };
    let response =
        server.http().post(server.url(&format!("/v1/publish/{topic}"))).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn publish_ticks(server: &TestServer, topic: &str) {
    for (key, data) in TICKS {
        publish(server, topic, key, data).await;
    }
}

async fn get_json(server: &TestServer, path: &str) -> (u16, Value) {
    let response = timeout(BOUND, server.http().get(server.url(path)).send()).await.unwrap().unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn data_of(events: &Value) -> Vec<i64> {
    events.as_array().unwrap().iter().map(|e| e["data"].as_i64().unwrap()).collect()
}

fn config() -> Config {
    Config::default().with_demo_db(None).with_latest_topics(vec!["prices.*".into()])
}

#[tokio::test]
async fn polls_answer_the_newest_value_of_each_key() {
    let server = TestServer::start_with(config()).await.unwrap();
    publish_ticks(&server, "prices.eu").await;
    publish_ticks(&server, "news").await;

    // A topic of the policy: every poller reads it latest-only.
    let (status, answer) = get_json(&server, "/v1/poll?topic=prices.eu&cursor=oldest").await;
    assert_eq!(status, 200);
    assert_eq!(data_of(&answer["events"]), LATEST);
    let seqs: Vec<u64> =
        answer["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [4, 5, 6], "seq jumps over what was skipped");
    assert_eq!(answer["events"][2]["key"], "AAPL");
    assert!(answer["events"][0].get("key").is_none());
    // The cursor passes everything skipped: nothing more to read of the topic.
    let cursor = answer["cursor"].as_str().unwrap();
    let (_, again) = get_json(&server, &format!("/v1/poll?topic=prices.eu&cursor={cursor}")).await;
    assert_eq!(data_of(&again["events"]), [0i64; 0]);

    // Another topic: every event, unless the request asks.
    let (_, all) = get_json(&server, "/v1/poll?topic=news&cursor=oldest").await;
    assert_eq!(data_of(&all["events"]), [1, 2, 3, 4, 5, 6]);
    let (status, latest) =
        get_json(&server, "/v1/longpoll?topic=news&cursor=oldest&latest=1&timeout=5").await;
    assert_eq!(status, 200);
    assert_eq!(data_of(&latest["events"]), LATEST);

    let (status, refused) = get_json(&server, "/v1/poll?topic=news&latest=yes").await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], "invalid_parameter");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streams_deliver_the_newest_value_of_each_key_then_follow_live() {
    let server = TestServer::start_with(config()).await.unwrap();
    publish_ticks(&server, "t").await;

    let response =
        server.http().get(server.url("/v1/sse?topic=t&cursor=oldest&latest=1")).send().await.unwrap();
    let mut sse = SseReader::from_response(response);
    let url = format!("ws://{}/v1/ws", server.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let subscribe = json!({"type": "subscribe", "topics": ["t"], "cursor": "oldest", "latest": true});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    // A plain stream of the same topic gets every event.
    let response = server.http().get(server.url("/v1/sse?topic=t&cursor=oldest")).send().await.unwrap();
    let mut plain = SseReader::from_response(response);

    let mut sse_got = Vec::new();
    let mut ws_got = Vec::new();
    let mut plain_got = Vec::new();
    let mut live_sent = false;
    timeout(BOUND, async {
        while sse_got.len() < 4 || ws_got.len() < 4 || plain_got.len() < 7 {
            tokio::select! {
                Some(message) = sse.next(), if sse_got.len() < 4 => {
                    let message = message.unwrap();
                    if message.event == "message" {
                        let event: Value = serde_json::from_str(&message.data).unwrap();
                        sse_got.push(event["data"].as_i64().unwrap());
                    }
                }
                Some(frame) = ws.next(), if ws_got.len() < 4 => {
                    if let Message::Text(text) = frame.unwrap() {
                        let frame: Value = serde_json::from_str(&text).unwrap();
                        if frame["type"] == "event" {
                            ws_got.push(frame["data"].as_i64().unwrap());
                        }
                    }
                }
                Some(message) = plain.next(), if plain_got.len() < 7 => {
                    let message = message.unwrap();
                    if message.event == "message" {
                        let event: Value = serde_json::from_str(&message.data).unwrap();
                        plain_got.push(event["data"].as_i64().unwrap());
                    }
                }
            }
            // Once all three caught up, one live event: a reader that keeps up skips nothing.
            if !live_sent && sse_got.len() == 3 && ws_got.len() == 3 && plain_got.len() == 6 {
                live_sent = true;
                publish(&server, "t", Some("AAPL"), 7).await;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(sse_got, [4, 5, 6, 7]);
    assert_eq!(ws_got, [4, 5, 6, 7]);
    assert_eq!(plain_got, [1, 2, 3, 4, 5, 6, 7]);
    drop((sse, ws, plain));
    server.shutdown().await.unwrap();
}
