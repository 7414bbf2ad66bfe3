//! Presence end to end, with real processes: the built `pushgate` binary and, for a cluster, a
//! private `redis-server`.
//!
//! - `/v1/presence` sums every live node's readers (per transport, and their users) and stops
//!   counting a `SIGKILL`ed node within 15 s;
//! - short pollers that name their `client` are counted while they poll, and only then;
//! - join and leave events, asked for with `presence=1`, on SSE, WebSocket and long poll.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use jsonwebtoken::{EncodingKey, Header, encode};
use pushgate_testkit::{GatewayProcess, RedisServer, SseReader};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "presence-test secret, 32 bytes or more";
const ADMIN_KEY: &str = "presence-admin-key";
/// Every wait for one thing.
const WAIT: Duration = Duration::from_secs(10);

fn binary() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_pushgate"))
}

/// A gateway with auth on (tokens signed with [`SECRET`], `room` open to anonymous readers)
/// and `extra` arguments.
async fn gateway(extra: &[&str]) -> GatewayProcess {
    let args: Vec<&str> =
        ["--no-demo", "--jwt-secret", SECRET, "--admin-key", ADMIN_KEY, "--anonymous-subscribe", "room"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
    GatewayProcess::start(binary(), &std::env::temp_dir(), &args).await.unwrap()
}

/// A token of `user`, allowed to read `room`.
fn token(user: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
    let claims = json!({ "sub": user, "exp": exp, "subscribe": ["room"] });
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap()).unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(WAIT).build().unwrap()
}

/// `GET /v1/presence/room` on `node`, as the admin.
async fn presence(node: &GatewayProcess) -> Value {
    let response = http().get(node.url("/v1/presence/room")).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Asks `node` until its presence satisfies `wanted`, for at most `within`; the last answer.
async fn presence_until(node: &GatewayProcess, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let answer = presence(node).await;
        if wanted(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "presence never became as expected; last: {answer}");
        sleep(Duration::from_millis(200)).await;
    }
}

/// An open SSE stream on `room` (with `token`, and `more` query), kept until dropped.
async fn sse(node: &GatewayProcess, token: Option<&str>, more: &str) -> reqwest::Response {
    let auth = token.map(|t| format!("&token={t}")).unwrap_or_default();
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(node.url(&format!("/v1/sse?topic=room{auth}{more}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket subscribed to `room` with `token`, once the server confirmed the subscription.
async fn ws(node: &GatewayProcess, token: Option<&str>) -> Ws {
    let auth = token.map(|t| format!("&token={t}")).unwrap_or_default();
    let url = format!("ws{}/v1/ws?topic=room{auth}", &node.base_url()[4..]);
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_sums_every_node_lists_users_and_drops_a_killed_node() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let cluster = ["--redis", url.as_str(), "--redis-presence-interval", "2s"];
    let a = gateway(&cluster).await;
    let mut b = gateway(&cluster).await;

    let (alice, bob) = (token("alice"), token("bob"));
    let _a_sse = sse(&a, Some(&alice), "").await;
    let _a_ws = ws(&a, Some(&bob)).await;
    let _b_sse = sse(&b, None, "").await;
    let _b_ws = ws(&b, Some(&alice)).await;

    // Each node counts its own readers at once and the other's after its next report.
    for node in [&a, &b] {
        let answer = presence_until(node, WAIT, |p| p["total"] == 4).await;
        assert_eq!(answer["transports"], json!({"sse": 2, "ws": 2}), "{answer}");
        assert_eq!(answer["by_transport"], answer["transports"], "the older name stays");
        assert_eq!(answer["users"], json!(["alice", "bob"]), "alice on both nodes counts once: {answer}");
        assert_eq!(answer["users_total"], 2, "{answer}");
        assert_eq!(answer["users_truncated"], false, "{answer}");
        assert_eq!(answer["nodes"], 2, "{answer}");
    }

    b.kill().await.unwrap();
    let killed = Instant::now();
    let answer = presence_until(&a, Duration::from_secs(15), |p| p["total"] == 2).await;
    assert!(killed.elapsed() <= Duration::from_secs(15), "took {:?}", killed.elapsed());
    assert_eq!(answer["transports"], json!({"sse": 1, "ws": 1}), "{answer}");
    assert_eq!(answer["users"], json!(["alice", "bob"]), "{answer}");
    assert_eq!(answer["nodes"], 1, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_pollers_naming_their_client_are_counted_while_they_poll() {
    let node = gateway(&[]).await;
    let poll = |query: String| {
        let url = node.url(&format!("/v1/poll?topic=room&{query}"));
        async move { http().get(url).send().await.unwrap() }
    };
    // Without a client id a short poll cannot be told from the next one: not counted.
    assert_eq!(poll(String::new()).await.status(), 200);
    assert_eq!(presence(&node).await["total"], 0);

    // Two tabs polling every second, one of them as user carol; each is counted once however
    // often it polls.
    let carol = token("carol");
    for _ in 0..3 {
        assert_eq!(poll("client=tab-1&interval=1".into()).await.status(), 200);
        assert_eq!(poll(format!("client=tab-2&interval=1&token={carol}")).await.status(), 200);
    }
    let answer = presence(&node).await;
    assert_eq!(answer["total"], 2, "{answer}");
    assert_eq!(answer["transports"], json!({"poll": 2}), "{answer}");
    assert_eq!(answer["users"], json!(["carol"]), "{answer}");

    // tab-2 keeps polling; tab-1 stops and is gone after two intervals.
    let stopped = Instant::now();
    let answer = loop {
        assert_eq!(poll(format!("client=tab-2&interval=1&token={carol}")).await.status(), 200);
        let answer = presence(&node).await;
        if answer["total"] == 1 || stopped.elapsed() > WAIT {
            break answer;
        }
        sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(answer["total"], 1, "{answer}");
    assert!(stopped.elapsed() >= Duration::from_millis(1900), "gone too soon: {:?}", stopped.elapsed());
    assert_eq!(answer["users"], json!(["carol"]), "{answer}");
    presence_until(&node, Duration::from_secs(5), |p| p["total"] == 0).await;

    // A client id is bounded in length and characters.
    for bad in ["client=a%20b", &format!("client={}", "x".repeat(65)), "client=ok&interval=soon"] {
        let response = poll(bad.to_owned()).await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_parameter", "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poller_naming_its_client_is_counted_between_its_polls() {
    let node = gateway(&[]).await;
    let dave = token("dave");
    let url = node.url(&format!("/v1/longpoll?topic=room&timeout=1&client=lp-1&interval=1&token={dave}"));
    // Parked, then answered empty after a second: counted throughout, once.
    let parked = tokio::spawn({
        let url = url.clone();
        async move { http().get(url).send().await.unwrap().status() }
    });
    let answer = presence_until(&node, WAIT, |p| p["total"] == 1).await;
    assert_eq!(answer["transports"], json!({"longpoll": 1}), "{answer}");
    assert_eq!(answer["users"], json!(["dave"]), "{answer}");
    assert_eq!(parked.await.unwrap(), 200);
    // Between two polls it still counts (for two intervals), then no more.
    assert_eq!(presence(&node).await["total"], 1);
    presence_until(&node, Duration::from_secs(5), |p| p["total"] == 0).await;
}

/// The next SSE message of type `event` on `stream` (others passed over); its data. (A notice
/// has no `id:`, so the last event id stays the last event's: none in this test's notices.)
async fn next_sse(stream: &mut SseReader, event: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no {event} frame"))
            .expect("the stream ended")
            .unwrap();
        if message.event == event {
            if event.starts_with("pushgate.") {
                assert_eq!(message.id, "", "a notice carries no id: {message:?}");
            }
            return serde_json::from_str(&message.data).unwrap();
        }
    }
}

/// The next WebSocket frame of type `kind`.
async fn next_ws(ws: &mut Ws, kind: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame"))
            .expect("the socket closed")
            .unwrap();
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == kind {
                return frame;
            }
        }
    }
}

/// A notice's members, without `topic` (always `room` here).
fn notice(event: &str, user: Option<&str>, transport: &str, total: u64) -> Value {
    json!({ "event": event, "topic": "room", "user": user, "transport": transport, "total": total })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_reach_the_readers_that_asked_on_sse_websocket_and_long_poll() {
    let node = gateway(&[]).await;
    // An anonymous SSE reader asking for notices sees its own join first.
    let mut watcher = SseReader::from_response(sse(&node, None, "&presence=1").await);
    assert_eq!(next_sse(&mut watcher, "pushgate.join").await, notice("join", None, "sse", 1));

    // Bob asks in his WebSocket subscribe frame.
    let bob = token("bob");
    let url = format!("ws{}/v1/ws?token={bob}", &node.base_url()[4..]);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let subscribe = json!({"type": "subscribe", "topics": ["room"], "presence": true});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let mut own = next_ws(&mut ws, "presence").await;
    assert_eq!(own.as_object_mut().unwrap().remove("type"), Some(json!("presence")));
    assert_eq!(own, notice("join", Some("bob"), "ws", 2));
    assert_eq!(next_sse(&mut watcher, "pushgate.join").await, notice("join", Some("bob"), "ws", 2));

    // Alice reads without asking; her stream dropping (a tab that crashed) is her leave.
    let alice = sse(&node, Some(&token("alice")), "").await;
    let joined = notice("join", Some("alice"), "sse", 3);
    assert_eq!(next_sse(&mut watcher, "pushgate.join").await, joined);
    let mut frame = next_ws(&mut ws, "presence").await;
    frame.as_object_mut().unwrap().remove("type");
    assert_eq!(frame, joined);
    drop(alice);
    let left = notice("leave", Some("alice"), "sse", 2);
    assert_eq!(next_sse(&mut watcher, "pushgate.leave").await, left);
    let mut frame = next_ws(&mut ws, "presence").await;
    frame.as_object_mut().unwrap().remove("type");
    assert_eq!(frame, left);

    // A parked long poll that asked is answered with the notice, its cursor unmoved.
    let parked = tokio::spawn({
        let url = node.url("/v1/longpoll?topic=room&presence=1&timeout=10&cursor=oldest");
        async move { http().get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    });
    presence_until(&node, WAIT, |p| p["transports"]["longpoll"] == 1).await;
    let _carol = sse(&node, Some(&token("carol")), "").await;
    let answer = parked.await.unwrap();
    assert_eq!(answer["events"], json!([]), "{answer}");
    assert_eq!(answer["presence"], json!([notice("join", Some("carol"), "sse", 4)]), "{answer}");

    // Notices are not events: the first event is still `seq` 1, and nobody can publish one.
    let published: Value = http()
        .post(node.url("/v1/publish/room"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"data": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(published["seq"], 1, "{published}");
    let event = next_sse(&mut watcher, "message").await;
    assert_eq!(event["seq"], 1, "{event}");
    let forged = http()
        .post(node.url("/v1/publish/room"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"event": "pushgate.leave", "data": {"user": "bob"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_that_stops_leaves_two_intervals_after_its_last_poll() {
    let node = gateway(&[]).await;
    let mut watcher = SseReader::from_response(sse(&node, None, "&presence=1").await);
    assert_eq!(next_sse(&mut watcher, "pushgate.join").await, notice("join", None, "sse", 1));
    let erin = token("erin");
    let url = node.url(&format!("/v1/poll?topic=room&client=tab-e&interval=1&token={erin}"));
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);
    assert_eq!(next_sse(&mut watcher, "pushgate.join").await, notice("join", Some("erin"), "poll", 2));
    // Polls within its interval keep it present without another join.
    sleep(Duration::from_millis(500)).await;
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);
    let last_poll = Instant::now();
    // Then it stops, as a closed tab does: it leaves two intervals later, with nobody asking.
    let left = next_sse(&mut watcher, "pushgate.leave").await;
    assert_eq!(left, notice("leave", Some("erin"), "poll", 1));
    let after = last_poll.elapsed();
    assert!(after >= Duration::from_millis(1900) && after < Duration::from_secs(4), "left after {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_on_one_node_reach_the_readers_of_another() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let cluster = ["--redis", url.as_str(), "--redis-presence-interval", "1s"];
    let a = gateway(&cluster).await;
    let b = gateway(&cluster).await;
    let mut watcher = SseReader::from_response(sse(&a, None, "&presence=1").await);
    assert_eq!(next_sse(&mut watcher, "pushgate.join").await["user"], Value::Null, "its own join first");
    // A's watcher is in A's report before Bob joins on B, so B's total counts it.
    presence_until(&b, WAIT, |p| p["total"] == 1).await;

    let bob = sse(&b, Some(&token("bob")), "").await;
    assert_eq!(next_sse(&mut watcher, "pushgate.join").await, notice("join", Some("bob"), "sse", 2));
    drop(bob);
    assert_eq!(next_sse(&mut watcher, "pushgate.leave").await, notice("leave", Some("bob"), "sse", 1));
}
