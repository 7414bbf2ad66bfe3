//! Scale-out with Redis: two gateway processes (the built binary, `--redis`) and a private
//! `redis-server` per test. An event published on one node reaches subscribers on the other over
//! every transport; clients of a killed node resume on the other with their cursor and miss
//! nothing; a Redis restart is reported on `/readyz`, refuses publishes meanwhile, keeps
//! connections, and is caught up after.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, ensure};
use futures_util::{SinkExt as _, StreamExt as _};
use pushgate_testkit::{Delivery, Feed, GatewayProcess, RedisServer, Transport};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

/// A gateway node on `redis`.
async fn node(redis: &RedisServer) -> anyhow::Result<GatewayProcess> {
    node_with(redis, &[]).await
}

/// A gateway node on `redis`, with extra `pushgate serve` arguments.
async fn node_with(redis: &RedisServer, extra: &[&str]) -> anyhow::Result<GatewayProcess> {
    let url = redis.url();
    let args: Vec<&str> =
        ["--no-demo", "--redis", url.as_str()].into_iter().chain(extra.iter().copied()).collect();
    // With Redis and no demo, the gateway writes nothing in its working directory.
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_pushgate"));
    GatewayProcess::start(binary, &std::env::temp_dir(), &args).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// Publishes over HTTP; returns the status and the JSON answer.
async fn publish(node: &GatewayProcess, topic: &str, data: Value) -> anyhow::Result<(u16, Value)> {
    let response =
        http().post(node.url(&format!("/v1/publish/{topic}"))).json(&json!({ "data": data })).send().await?;
    Ok((response.status().as_u16(), response.json().await?))
}

async fn publish_ok(node: &GatewayProcess, topic: &str, data: Value) -> Value {
    let (status, body) = publish(node, topic, data).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn readyz(node: &GatewayProcess) -> (u16, Value) {
    let response = http().get(node.url("/readyz")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn until_ready(node: &GatewayProcess, ready: bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = readyz(node).await;
        if (status == 200) == ready {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz stayed {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The position in an event id `<epoch>-<hex position>`.
fn position(id: &str) -> u64 {
    u64::from_str_radix(id.rsplit_once('-').unwrap().1, 16).unwrap()
}

/// Reads events from `feed` until it has `seq` `upto`; fails on a reset, a duplicate, a gap or
/// an error. `next_seq` is the seq expected next.
async fn read_through(feed: &mut Box<dyn Feed>, next_seq: &mut u64, upto: u64) -> anyhow::Result<()> {
    while *next_seq <= upto {
        match feed.next(WAIT).await? {
            Some(Delivery::Event(event)) => {
                ensure!(
                    event["seq"] == *next_seq,
                    "{}: expected seq {next_seq}, got {event}",
                    feed.transport()
                );
                *next_seq += 1;
            }
            Some(Delivery::Reset(reset)) => bail!("{}: unexpected reset {reset}", feed.transport()),
            None => bail!("{}: nothing for {WAIT:?} while waiting for seq {next_seq}", feed.transport()),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_on_one_node_reaches_the_other_over_every_transport() {
    let redis = RedisServer::start().await.unwrap();
    let a = node(&redis).await.unwrap();
    let b = node(&redis).await.unwrap();
    for transport in Transport::ALL {
        let topic = format!("room.{transport}");
        let client = transport.client().unwrap();
        let mut feed = client.connect_url(b.base_url(), &[topic.as_str()], None).await.unwrap();
        let mut sent = Vec::new();
        for i in 1..=3 {
            sent.push(publish_ok(&a, &topic, json!({ "n": i })).await);
        }
        for published in &sent {
            let delivery = feed.next(WAIT).await.unwrap();
            let Some(Delivery::Event(event)) = delivery else { panic!("{transport}: got {delivery:?}") };
            assert_eq!(event["id"], published["id"], "{transport}: same position on both nodes");
            assert_eq!(event["seq"], published["seq"], "{transport}");
            assert_eq!(event["topic"], topic.as_str(), "{transport}");
        }
    }
    // And the other way round, from a WebSocket publish frame on B to a poll on A.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws{}/v1/ws", &b.base_url()[4..])).await.unwrap();
    let poll = Transport::Poll.client().unwrap();
    let mut feed = poll.connect_url(a.base_url(), &["back"], None).await.unwrap();
    ws.send(Message::text(json!({"type": "publish", "topic": "back", "data": 1}).to_string())).await.unwrap();
    let answer = next_ws_json(&mut ws).await;
    assert_eq!(answer["type"], "published", "{answer}");
    let delivery = feed.next(WAIT).await.unwrap();
    assert_eq!(
        delivery.as_ref().and_then(Delivery::event).map(|e| e["id"].clone()),
        Some(answer["id"].clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_resume_on_the_other_and_miss_nothing() {
    const TOTAL: u64 = 60;
    let redis = RedisServer::start().await.unwrap();
    let mut a = node(&redis).await.unwrap();
    let b = node(&redis).await.unwrap();
    let clients: Vec<_> = Transport::ALL.iter().map(|t| t.client().unwrap()).collect();
    let mut feeds = Vec::new();
    for client in &clients {
        feeds.push(client.connect_url(a.base_url(), &["stream"], None).await.unwrap());
    }
    // A steady publisher on B, through the kill and after it.
    let publisher = {
        let b_url = b.base_url().to_owned();
        tokio::spawn(async move {
            let client = http();
            for i in 1..=TOTAL {
                let response = client
                    .post(format!("{b_url}/v1/publish/stream"))
                    .json(&json!({ "data": i }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut next = vec![1u64; feeds.len()];
    for (feed, next) in feeds.iter_mut().zip(&mut next) {
        read_through(feed, next, 10).await.unwrap();
    }
    a.kill().await.unwrap();
    for (i, (client, next)) in clients.iter().zip(&mut next).enumerate() {
        let feed = &mut feeds[i];
        // Whatever the feed had received before the kill still counts; then it ends.
        loop {
            match feed.next(WAIT).await {
                Ok(Some(Delivery::Event(event))) => {
                    assert_eq!(event["seq"], *next, "{}: {event}", feed.transport());
                    *next += 1;
                }
                Ok(other) => panic!("{}: expected the feed to end, got {other:?}", feed.transport()),
                Err(_) => break,
            }
        }
        let cursor = feed.cursor().expect("a cursor to resume from").to_owned();
        let mut resumed = client.connect_url(b.base_url(), &["stream"], Some(&cursor)).await.unwrap();
        read_through(&mut resumed, next, TOTAL).await.unwrap();
        // Nothing more than the publisher sent.
        assert!(resumed.next(Duration::from_millis(300)).await.unwrap().is_none());
    }
    publisher.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_reported_refuses_publishes_keeps_connections_and_is_caught_up() {
    let mut redis = RedisServer::start().await.unwrap();
    let a = node(&redis).await.unwrap();
    let b = node(&redis).await.unwrap();
    let clients: Vec<_> = Transport::ALL.iter().map(|t| t.client().unwrap()).collect();
    let mut feeds = Vec::new();
    // Half the subscribers on each node.
    for (i, client) in clients.iter().enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        feeds.push(client.connect_url(node.base_url(), &["live"], None).await.unwrap());
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws{}/v1/ws", &b.base_url()[4..])).await.unwrap();
    let mut ids = Vec::new();
    for i in 1..=5 {
        let node = if i % 2 == 0 { &a } else { &b };
        ids.push(publish_ok(node, "live", json!(i)).await["id"].as_str().unwrap().to_owned());
    }
    let mut next = vec![1u64; feeds.len()];
    for (feed, next) in feeds.iter_mut().zip(&mut next) {
        read_through(feed, next, 5).await.unwrap();
    }

    redis.kill().await.unwrap();
    for node in [&a, &b] {
        let body = until_ready(node, false).await;
        assert_eq!(body["ready"], false);
        assert!(body["reasons"].to_string().contains("redis"), "{body}");
        assert_eq!(body["redis"]["connected"], false, "{body}");
        let (status, body) = publish(node, "live", json!("refused")).await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
    }
    ws.send(Message::text(json!({"type": "publish", "topic": "live", "data": "refused"}).to_string()))
        .await
        .unwrap();
    let answer = next_ws_json(&mut ws).await;
    assert_eq!(
        (answer["type"].as_str(), answer["error"]["code"].as_str()),
        (Some("error"), Some("unavailable"))
    );
    let metrics = http().get(a.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pushgate_redis_connected 0"), "{metrics}");
    // The subscribers stay connected, and got nothing while Redis was down.
    for feed in &mut feeds {
        assert!(feed.next(Duration::from_millis(200)).await.unwrap().is_none(), "{}", feed.transport());
    }

    redis.restart().await.unwrap();
    for node in [&a, &b] {
        until_ready(node, true).await;
    }
    for i in 6..=10 {
        let node = if i % 2 == 0 { &a } else { &b };
        let published = publish_ok(node, "live", json!(i)).await;
        assert_eq!(published["seq"], i, "seq goes on where it was: {published}");
        ids.push(published["id"].as_str().unwrap().to_owned());
    }
    let positions: Vec<u64> = ids.iter().map(|id| position(id)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "positions keep increasing: {positions:?}");
    let epochs: BTreeMap<&str, ()> = ids.iter().map(|id| (id.split_once('-').unwrap().0, ())).collect();
    assert_eq!(epochs.len(), 1, "one epoch throughout: {ids:?}");
    for (feed, next) in feeds.iter_mut().zip(&mut next) {
        read_through(feed, next, 10).await.unwrap();
        assert!(feed.next(Duration::from_millis(200)).await.unwrap().is_none(), "no duplicate");
    }
    let metrics = http().get(b.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pushgate_redis_connected 1"), "{metrics}");
    let applied = format!("pushgate_redis_applied_position {}", positions[9]);
    assert!(metrics.contains(&applied), "{applied} in\n{metrics}");
}

async fn next_ws_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_finding_another_epoch_in_redis_refuses_publishes_and_exits_with_an_error() {
    let redis = RedisServer::start().await.unwrap();
    let mut a = node(&redis).await.unwrap();
    let old = publish_ok(&a, "t", json!(1)).await;
    // The store was replaced under the node.
    assert_eq!(redis.command(&["SET", "pushgate:epoch", "00000001"]).await.unwrap().trim(), "+OK");
    let (status, body) = publish(&a, "t", json!(2)).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("unavailable")), "{body}");
    let exit = tokio::time::timeout(Duration::from_secs(30), a.wait()).await.unwrap().unwrap();
    assert!(!exit.success(), "the node must exit with an error, so its supervisor restarts it: {exit}");
    // Restarted, a node adopts the store's epoch; an old cursor then gets a reset.
    let b = node(&redis).await.unwrap();
    let published = publish_ok(&b, "t", json!(3)).await;
    assert!(published["id"].as_str().unwrap().starts_with("00000001-"), "{published}");
    let url = b.url(&format!("/v1/poll?topic=t&cursor={}", old["id"].as_str().unwrap()));
    let answer: Value = http().get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["reset"]["reason"], "epoch_changed", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_limit_reaches_the_redis_storage_and_counts_every_node_s_topics() {
    use pushgate_hub::{HubError, NewEvent, TopicName};
    let redis = RedisServer::start().await.unwrap();
    let config = pushgate::Config::default().with_redis(Some(redis.url())).with_max_topics(2);
    let (a, _) = config.connect_hub().await.unwrap();
    let (b, state_b) = pushgate::Config::default().with_redis(Some(redis.url())).connect_hub().await.unwrap();
    let topic = |name: &str| TopicName::new(name).unwrap();
    a.publish(&topic("one"), NewEvent::new(json!(1))).await.unwrap();
    // A topic published on the other node counts on this one too.
    let two = b.publish(&topic("two"), NewEvent::new(json!(2))).await.unwrap();
    let state_b = state_b.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.stats().topics < 2 {
        assert!(tokio::time::Instant::now() < deadline, "a never applied b's topic");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(state_b.applied_position() >= two.position());
    let err = a.publish(&topic("three"), NewEvent::new(json!(3))).await.unwrap_err();
    assert!(matches!(err, HubError::TopicLimit { limit: 2 }), "{err:?}");
    // B, on the default limit, still takes it.
    b.publish(&topic("three"), NewEvent::new(json!(3))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_older_than_memory_resumes_from_the_redis_log_on_every_transport() {
    let redis = RedisServer::start().await.unwrap();
    let a = node_with(&redis, &["--history-events", "10"]).await.unwrap();
    let b = node_with(&redis, &["--history-events", "10"]).await.unwrap();
    let first = publish_ok(&a, "deep", json!(1)).await;
    for i in 2..=100 {
        publish_ok(&a, "deep", json!(i)).await;
    }
    // Each node keeps 10 in memory; a client that saw only seq 1 gets seq 2 to 100 from the
    // Redis log, on the other node, with no reset.
    let cursor = first["id"].as_str().unwrap();
    for transport in Transport::ALL {
        let client = transport.client().unwrap();
        let mut feed = client.connect_url(b.base_url(), &["deep"], Some(cursor)).await.unwrap();
        let mut next_seq = 2;
        read_through(&mut feed, &mut next_seq, 100).await.unwrap();
    }
}

/// An `Idempotency-Key` repeated on the other node (a retry through another node of the load
/// balancer) publishes nothing there: the original numbers come back, marked as a replay, over
/// HTTP and from a WebSocket `publish` frame, and a subscriber gets the event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_publish_repeated_on_the_other_node_is_published_once() {
    let redis = RedisServer::start().await.unwrap();
    let a = node(&redis).await.unwrap();
    let b = node(&redis).await.unwrap();
    let sse = Transport::Sse.client().unwrap();
    let mut feed = sse.connect_url(b.base_url(), &["orders"], None).await.unwrap();
    let send = |node: &GatewayProcess, key: &str, n: u64| {
        http()
            .post(node.url("/v1/publish/orders"))
            .header("idempotency-key", key)
            .json(&json!({ "data": { "n": n } }))
            .send()
    };
    let first = send(&a, "order-1", 1).await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none(), "the first publish is no replay");
    let first: Value = first.json().await.unwrap();
    // The retry carries another body by mistake: the key decides, nothing is published.
    let again = send(&b, "order-1", 2).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the original topic, seq and id");
    // The same key from a WebSocket publish frame, on either node.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws{}/v1/ws", &a.base_url()[4..])).await.unwrap();
    let frame = json!({"type": "publish", "topic": "orders", "data": 3, "idempotency_key": "order-1"});
    ws.send(Message::text(frame.to_string())).await.unwrap();
    let answer = next_ws_json(&mut ws).await;
    assert_eq!(answer["type"], "published", "{answer}");
    assert_eq!(
        (&answer["seq"], &answer["id"], &answer["replayed"]),
        (&first["seq"], &first["id"], &json!(true))
    );
    // Another key is another event; a bad key is refused.
    let second: Value = send(&b, "order-2", 4).await.unwrap().json().await.unwrap();
    assert_eq!(second["seq"], 2, "{second}");
    let bad = send(&a, "", 5).await.unwrap();
    assert_eq!(bad.status(), 400);
    for (seq, n) in [(1, 1), (2, 4)] {
        let delivery = feed.next(WAIT).await.unwrap();
        let Some(Delivery::Event(event)) = delivery else { panic!("got {delivery:?}") };
        assert_eq!((event["seq"].as_u64(), &event["data"]["n"]), (Some(seq), &json!(n)), "{event}");
    }
    assert!(feed.next(Duration::from_millis(300)).await.unwrap().is_none(), "nothing more was published");
}
