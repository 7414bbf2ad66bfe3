//! The server API against a real gateway process: disconnecting a user or a topic ends its SSE
//! streams (`event: error`, `disconnected`), WebSockets (close 4410) and parked long polls
//! (`410 disconnected`) and nobody else's; revoking a user's tokens refuses them (`401
//! token_revoked`) and ends the connections opened with them; the topic list pages; the events
//! read is a poll's answer without being a subscriber; `/v1/cursor` is after everything
//! published, and with a database source after every committed row, so clients loading rows
//! while writes go on end equal to a final `SELECT`. The same across two nodes over Redis,
//! at the end of this file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use futures_util::StreamExt as _;
use pushgate_testkit::GatewayProcess;
use serde_json::{Value, json};
use support::auth::{STEP, Ws, hs256, http, now};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "integration-test secret, 32 bytes+";
const ADMIN: &str = "admin-key-for-servers";

/// A gateway process with auth: tokens signed with [`SECRET`], the admin key [`ADMIN`].
async fn gateway(extra: &[&str]) -> anyhow::Result<GatewayProcess> {
    let args: Vec<&str> = ["--no-demo", "--jwt-secret", SECRET, "--admin-key", ADMIN, "--jwt-leeway", "0s"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    GatewayProcess::start(std::path::Path::new(env!("CARGO_BIN_EXE_pushgate")), &std::env::temp_dir(), &args)
        .await
}

/// A token of `user`, issued `age` seconds ago, allowed to subscribe to `user:<user>` and
/// `room.*`.
fn token(user: &str, age: u64) -> String {
    let claims = json!({"exp": now() + 600, "iat": now() - age, "sub": user, "subscribe": [format!("user:{user}"), "room.*"]});
    hs256(&claims, SECRET).unwrap()
}

/// `POST`s to the server API with `key`; the status and the JSON answer.
async fn server_post(node: &GatewayProcess, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = http().unwrap().post(node.url(path)).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get_json(node: &GatewayProcess, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = http().unwrap().get(node.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn publish(node: &GatewayProcess, topic: &str, data: Value) -> Value {
    let (status, body) =
        server_post(node, &format!("/v1/publish/{topic}"), Some(ADMIN), json!({ "data": data })).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until `topic` has `count` live readers on `node`, as the topic list says.
async fn until_readers(node: &GatewayProcess, topic: &str, count: u64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let (_, page) = get_json(node, "/v1/server/topics?limit=1000", Some(ADMIN)).await;
        let found = page["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["topic"] == topic)
            .map_or(0, |t| t["subscribers"].as_u64().unwrap_or(0));
        if found == count {
            return Ok(());
        }
        ensure!(tokio::time::Instant::now() < deadline, "{topic} has {found} readers, not {count}: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An open SSE stream.
struct Sse(reqwest::Response, String);

impl Sse {
    async fn open(node: &GatewayProcess, topic: &str, token: &str) -> anyhow::Result<Self> {
        let response = http()?
            .get(node.url(&format!("/v1/sse?topic={topic}&token={token}")))
            .timeout(Duration::from_secs(60))
            .send()
            .await?;
        ensure!(response.status() == 200, "SSE refused: {}", response.status());
        Ok(Self(response, String::new()))
    }

    /// Reads until `needle` shows up; the text read so far.
    async fn until(&mut self, needle: &str) -> anyhow::Result<&str> {
        let deadline = tokio::time::Instant::now() + STEP;
        while !self.1.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, self.0.chunk())
                .await
                .with_context(|| format!("no {needle:?} in time; got {:?}", self.1))??
                .with_context(|| format!("the stream ended without {needle:?}: {:?}", self.1))?;
            self.1.push_str(&String::from_utf8_lossy(&chunk));
        }
        Ok(&self.1)
    }

    /// The code of the `event: error` frame that ends the stream.
    async fn error_code(&mut self) -> anyhow::Result<String> {
        let text = self.until("event: error\ndata: ").await?.to_owned();
        let data = text.split("event: error\ndata: ").nth(1).context("error frame")?;
        let data = match data.split_once('\n') {
            Some((line, _)) => line.to_owned(),
            None => {
                self.until("\n\n").await?.split("event: error\ndata: ").nth(1).unwrap_or_default().to_owned()
            }
        };
        let value: Value = serde_json::from_str(data.trim())?;
        // Nothing follows the error frame: the stream ends.
        let rest = tokio::time::timeout(STEP, self.0.chunk()).await??;
        ensure!(rest.is_none(), "the stream went on after its error: {rest:?}");
        Ok(value["code"].as_str().unwrap_or_default().to_owned())
    }
}

async fn ws(node: &GatewayProcess, topic: &str, token: &str) -> anyhow::Result<Ws> {
    let url = format!("ws://{}/v1/ws?topic={topic}&token={token}", node.addr());
    let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url)).await??;
    Ok(ws)
}

/// The close code and reason the server ends `ws` with.
async fn ws_close(ws: &mut Ws) -> anyhow::Result<(u16, String)> {
    loop {
        match tokio::time::timeout(STEP, ws.next()).await.context("no close in time")? {
            Some(Ok(Message::Close(Some(frame)))) => {
                return Ok((frame.code.into(), frame.reason.to_string()));
            }
            Some(Ok(Message::Close(None))) | None => bail!("closed without a code"),
            Some(Ok(_)) => {}
            Some(Err(err)) => bail!("{err}"),
        }
    }
}

/// A parked long poll of `topic`; resolves to its status and error code.
fn long_poll(node: &GatewayProcess, topic: &str, token: &str) -> tokio::task::JoinHandle<(u16, String)> {
    let url = node.url(&format!("/v1/longpoll?topic={topic}&cursor=now&timeout=30&token={token}"));
    tokio::spawn(async move {
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
        let response = client.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
    })
}

async fn joined(poll: tokio::task::JoinHandle<(u16, String)>) -> (u16, String) {
    tokio::time::timeout(STEP, poll).await.expect("the long poll is answered").unwrap()
}

#[tokio::test]
async fn the_server_api_takes_the_admin_key_only() -> anyhow::Result<()> {
    let node = gateway(&[]).await?;
    let user = token("42", 0);
    for (key, status, code) in [(None, 401, "token_required"), (Some(user.as_str()), 401, "invalid_token")] {
        let (got, body) = server_post(&node, "/v1/server/users/42/disconnect", key, json!({})).await;
        assert_eq!((got, body["error"]["code"].as_str().unwrap()), (status, code));
        let (got, body) = get_json(&node, "/v1/server/topics", key).await;
        assert_eq!((got, body["error"]["code"].as_str().unwrap()), (status, code));
    }
    // Without an admin key the server API is off.
    let open = GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_pushgate")),
        &std::env::temp_dir(),
        &["--no-demo"],
    )
    .await?;
    let (got, body) = server_post(&open, "/v1/server/topics/room.a/disconnect", Some(ADMIN), json!({})).await;
    assert_eq!((got, body["error"]["code"].as_str().unwrap()), (404, "not_found"));
    Ok(())
}

#[tokio::test]
async fn disconnecting_a_user_ends_its_streams_websockets_and_long_polls_and_nobody_elses()
-> anyhow::Result<()> {
    let node = gateway(&[]).await?;
    let (ada, bob) = (token("42", 0), token("7", 0));
    let mut sse = Sse::open(&node, "user:42", &ada).await?;
    let mut socket = ws(&node, "room.a", &ada).await?;
    let parked = long_poll(&node, "user:42", &ada);
    let mut other = Sse::open(&node, "user:7", &bob).await?;
    let mut other_ws = ws(&node, "room.a", &bob).await?;
    until_readers(&node, "user:42", 2).await?;
    until_readers(&node, "room.a", 2).await?;

    let (status, body) = server_post(&node, "/v1/server/users/42/disconnect", Some(ADMIN), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"user": "42", "disconnected": 3}));
    assert_eq!(sse.error_code().await?, "disconnected");
    let (code, reason) = ws_close(&mut socket).await?;
    assert_eq!(code, 4410, "{reason}");
    assert_eq!(joined(parked).await, (410, "disconnected".to_owned()));

    // The other user's connections go on.
    publish(&node, "user:7", json!("still here")).await;
    other.until("still here").await?;
    publish(&node, "room.a", json!("room too")).await;
    let frame = tokio::time::timeout(STEP, other_ws.next()).await?.context("open")??;
    assert!(frame.to_text()?.contains("room too"), "{frame:?}");
    // And the disconnected user may come back.
    let mut again = Sse::open(&node, "user:42", &ada).await?;
    publish(&node, "user:42", json!("welcome back")).await;
    again.until("welcome back").await?;
    assert_eq!(
        server_post(&node, "/v1/server/users/nobody/disconnect", Some(ADMIN), json!({})).await.1["disconnected"],
        0
    );
    Ok(())
}

#[tokio::test]
async fn disconnecting_a_topic_ends_its_readers_on_every_transport() -> anyhow::Result<()> {
    let node = gateway(&[]).await?;
    let ada = token("42", 0);
    let mut sse = Sse::open(&node, "room.b", &ada).await?;
    let mut socket = ws(&node, "room.b", &ada).await?;
    let parked = long_poll(&node, "room.b", &ada);
    let mut elsewhere = Sse::open(&node, "room.c", &ada).await?;
    until_readers(&node, "room.b", 3).await?;
    until_readers(&node, "room.c", 1).await?;

    let (status, body) =
        server_post(&node, "/v1/server/topics/room.b/disconnect", Some(ADMIN), json!({})).await;
    assert_eq!((status, body), (200, json!({"topic": "room.b", "disconnected": 3})));
    assert_eq!(sse.error_code().await?, "disconnected");
    assert_eq!(ws_close(&mut socket).await?.0, 4410);
    assert_eq!(joined(parked).await, (410, "disconnected".to_owned()));
    until_readers(&node, "room.b", 0).await?;

    publish(&node, "room.c", json!("unaffected")).await;
    elsewhere.until("unaffected").await?;
    let mut later = Sse::open(&node, "room.b", &ada).await?;
    publish(&node, "room.b", json!("later readers are not affected")).await;
    later.until("later readers are not affected").await?;
    Ok(())
}

#[tokio::test]
async fn revoking_a_users_tokens_refuses_them_and_ends_their_connections() -> anyhow::Result<()> {
    let node = gateway(&[]).await?;
    let (old, other) = (token("42", 60), token("7", 60));
    let mut sse = Sse::open(&node, "user:42", &old).await?;
    let mut socket = ws(&node, "room.r", &old).await?;
    let parked = long_poll(&node, "user:42", &old);
    let mut bob = Sse::open(&node, "user:7", &other).await?;
    until_readers(&node, "user:42", 2).await?;

    let before = now() - 30;
    let (status, body) = server_post(
        &node,
        "/v1/server/users/42/revoke",
        Some(ADMIN),
        json!({"issued_before": before, "token_lifetime": 3600}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"user": "42", "issued_before": before, "until": before + 3600}));
    assert_eq!(sse.error_code().await?, "token_revoked");
    assert_eq!(ws_close(&mut socket).await?.0, 4411);
    assert_eq!(joined(parked).await, (401, "token_revoked".to_owned()));

    // The old token is refused from now on; one issued after the time, and other users', are not.
    let (status, body) = get_json(&node, &format!("/v1/poll?topic=user:42&token={old}"), None).await;
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (401, "token_revoked"));
    let fresh = token("42", 0);
    assert_eq!(get_json(&node, &format!("/v1/poll?topic=user:42&token={fresh}"), None).await.0, 200);
    publish(&node, "user:7", json!("bob goes on")).await;
    bob.until("bob goes on").await?;

    // Bad requests.
    for bad in
        [json!({"issued_before": "now"}), json!({"ttl": 5}), json!({"issued_before": 1, "token_lifetime": 1})]
    {
        let (status, body) = server_post(&node, "/v1/server/users/42/revoke", Some(ADMIN), bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    Ok(())
}

#[tokio::test]
async fn topics_are_listed_with_their_subscribers_a_page_at_a_time() -> anyhow::Result<()> {
    let node = gateway(&[]).await?;
    let ada = token("42", 0);
    let mut open = Vec::new();
    for (n, topic) in ["room.t1", "room.t2", "room.t3", "room.t4", "room.t5"].into_iter().enumerate() {
        for _ in 0..=n {
            open.push(Sse::open(&node, topic, &ada).await?);
        }
    }
    let _socket = ws(&node, "room.t5", &ada).await?;
    until_readers(&node, "room.t5", 6).await?;
    let mut seen = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let (status, page) =
            get_json(&node, &format!("/v1/server/topics?limit=2&after={after}"), Some(ADMIN)).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let topics = page["topics"].as_array().context("topics")?;
        assert!(topics.len() <= 2);
        for topic in topics {
            seen.push((topic["topic"].as_str().unwrap().to_owned(), topic["subscribers"].as_u64().unwrap()));
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    let expected: Vec<(String, u64)> =
        [("room.t1", 1), ("room.t2", 2), ("room.t3", 3), ("room.t4", 4), ("room.t5", 6)]
            .map(|(t, n)| (t.to_owned(), n))
            .to_vec();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);
    let (_, page) = get_json(&node, "/v1/server/topics?after=room.t4", Some(ADMIN)).await;
    assert_eq!(page["topics"][0]["by_transport"], json!({"sse": 5, "ws": 1}));
    assert_eq!(page["next"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn events_are_read_as_a_poll_answers_them_without_subscribing() -> anyhow::Result<()> {
    let node = gateway(&[]).await?;
    let first = publish(&node, "room.h", json!(1)).await;
    publish(&node, "room.h", json!(2)).await;
    publish(&node, "room.h", json!(3)).await;
    let (status, read) = get_json(&node, "/v1/server/events?topic=room.h&cursor=oldest", Some(ADMIN)).await;
    assert_eq!(status, 200, "{read}");
    let ada = token("42", 0);
    let (_, polled) =
        get_json(&node, &format!("/v1/poll?topic=room.h&cursor=oldest&token={ada}"), None).await;
    assert_eq!(read, polled, "the same answer as a poll");
    assert_eq!(read["events"].as_array().unwrap().len(), 3);
    let from = first["id"].as_str().unwrap();
    let (_, page) =
        get_json(&node, &format!("/v1/server/events?topic=room.h&cursor={from}&limit=1"), Some(ADMIN)).await;
    assert_eq!(page["events"][0]["data"], 2);
    // A reader of nothing: the topic has no subscriber.
    let (_, topics) = get_json(&node, "/v1/server/topics", Some(ADMIN)).await;
    assert_eq!(topics["topics"], json!([]));
    let (status, _) = get_json(&node, "/v1/server/events?topic=room.h", Some(&ada)).await;
    assert_eq!(status, 401, "a user's token is not the admin key");
    Ok(())
}

#[tokio::test]
async fn the_cursor_is_after_everything_published_and_takes_the_right_to_subscribe() -> anyhow::Result<()> {
    let node = gateway(&[]).await?;
    let ada = token("42", 0);
    publish(&node, "room.x", json!("before")).await;
    publish(&node, "room.y", json!("before too")).await;
    let (status, body) =
        get_json(&node, &format!("/v1/cursor?topic=room.x&topic=room.y&token={ada}"), None).await;
    assert_eq!(status, 200, "{body}");
    let cursor = body["cursor"].as_str().context("cursor")?.to_owned();
    let (_, nothing) =
        get_json(&node, &format!("/v1/poll?topic=room.x&topic=room.y&cursor={cursor}&token={ada}"), None)
            .await;
    assert_eq!(nothing["events"], json!([]), "nothing published is after the cursor");
    publish(&node, "room.y", json!("after")).await;
    let (_, after) =
        get_json(&node, &format!("/v1/poll?topic=room.x&topic=room.y&cursor={cursor}&token={ada}"), None)
            .await;
    assert_eq!(
        after["events"].as_array().map(|e| e.iter().map(|e| e["data"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("after")])
    );

    for (path, status, code) in [
        ("/v1/cursor?topic=room.x".to_owned(), 401, "token_required"),
        (format!("/v1/cursor?topic=user:7&token={ada}"), 403, "topic_forbidden"),
        (format!("/v1/cursor?token={ada}"), 400, "no_topics"),
    ] {
        let (got, body) = get_json(&node, &path, None).await;
        assert_eq!((got, body["error"]["code"].as_str().unwrap()), (status, code), "{path}");
    }
    assert_eq!(get_json(&node, "/v1/cursor?topic=user:7", Some(ADMIN)).await.0, 200, "the admin key may");
    Ok(())
}

/// An application loading its rows while the table is written: it asks `/v1/cursor` first,
/// then reads the rows itself (`SELECT`), then follows the events from the cursor, applying
/// each by key. Every client ends with what a final `SELECT` reads.
#[tokio::test]
async fn clients_loading_rows_while_they_are_written_end_equal_to_a_final_select() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("demo.db");
    let node = GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_pushgate")),
        dir.path(),
        &["--demo-db", db.to_str().context("path")?],
    )
    .await?;
    // The demo made its table and triggers; the test writes as the application would.
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(&db).busy_timeout(Duration::from_secs(10));
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
    let deadline = tokio::time::Instant::now() + STEP;
    while sqlx::query("SELECT 1 FROM orders LIMIT 1").fetch_optional(&pool).await.is_err() {
        ensure!(tokio::time::Instant::now() < deadline, "the demo made no orders table");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let writing = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn({
        let (pool, writing) = (pool.clone(), Arc::clone(&writing));
        async move {
            let mut n = 0u64;
            while writing.load(Ordering::Acquire) {
                n += 1;
                sqlx::query("INSERT INTO orders (item, status) VALUES (?, 'new')")
                    .bind(format!("item {n}"))
                    .execute(&pool)
                    .await?;
                sqlx::query("UPDATE orders SET status = ? WHERE id = (SELECT id FROM orders ORDER BY random() LIMIT 1)")
                    .bind(format!("status {n}"))
                    .execute(&pool)
                    .await?;
                if n.is_multiple_of(3) {
                    sqlx::query(
                        "DELETE FROM orders WHERE id = (SELECT id FROM orders ORDER BY random() LIMIT 1)",
                    )
                    .execute(&pool)
                    .await?;
                }
            }
            anyhow::Ok(n)
        }
    });

    let mut clients = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, body) = get_json(&node, "/v1/cursor?topic=db.orders", None).await;
        let cursor = body["cursor"].as_str().context("cursor")?.to_owned();
        let rows = select(&pool).await?;
        clients.push((cursor, rows));
    }
    writing.store(false, Ordering::Release);
    let writes = writer.await??;
    ensure!(writes > 20, "only {writes} rounds of writes");
    // Every change is published by the time this answers.
    get_json(&node, "/v1/cursor?topic=db.orders", None).await;
    let expected = select(&pool).await?;

    for (n, (mut cursor, mut rows)) in clients.into_iter().enumerate() {
        loop {
            let (status, page) =
                get_json(&node, &format!("/v1/poll?topic=db.orders&cursor={cursor}&limit=1000"), None).await;
            assert_eq!(status, 200, "{page}");
            ensure!(page["reset"].is_null(), "history lost: {page}");
            let events = page["events"].as_array().context("events")?;
            if events.is_empty() {
                break;
            }
            for event in events {
                let data = &event["data"];
                match data["op"].as_str() {
                    Some("delete") => {
                        rows.remove(&data["old"]["id"].as_i64().context("id")?);
                    }
                    _ => {
                        let new = &data["new"];
                        let row = (
                            new["item"].as_str().unwrap_or_default().to_owned(),
                            new["status"].as_str().unwrap_or_default().to_owned(),
                        );
                        rows.insert(new["id"].as_i64().context("id")?, row);
                    }
                }
            }
            cursor = page["cursor"].as_str().context("cursor")?.to_owned();
        }
        assert_eq!(rows, expected, "client {n} differs from the final SELECT");
    }

    // A row committed just before the request is published before the cursor it answers.
    for n in 0..5 {
        let (_, before) = get_json(&node, "/v1/cursor?topic=db.orders", None).await;
        let item = format!("just committed {n}");
        sqlx::query("INSERT INTO orders (item) VALUES (?)").bind(&item).execute(&pool).await?;
        let (_, after) = get_json(&node, "/v1/cursor?topic=db.orders", None).await;
        let (from, to) =
            (before["cursor"].as_str().context("cursor")?, after["cursor"].as_str().context("cursor")?);
        let (_, page) = get_json(&node, &format!("/v1/poll?topic=db.orders&cursor={from}"), None).await;
        let event = page["events"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["data"]["new"]["item"] == item.as_str()));
        let id =
            event.with_context(|| {
                format!("{item:?} is not published by the time /v1/cursor answers: {page}")
            })?["id"]
                .clone();
        ensure!(
            position(id.as_str().context("id")?) <= position(to),
            "{item:?} ({id}) is after the cursor {to}"
        );
    }
    Ok(())
}

/// The position of a cursor or event id, `<epoch>-<hex position>`.
fn position(cursor: &str) -> u64 {
    u64::from_str_radix(cursor.rsplit('-').next().unwrap_or_default(), 16).unwrap_or(u64::MAX)
}

async fn select(pool: &sqlx::SqlitePool) -> anyhow::Result<BTreeMap<i64, (String, String)>> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, item, status FROM orders").fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(id, item, status)| (id, (item, status))).collect())
}

// Two nodes on one Redis.

/// Two gateway nodes on a private `redis-server`, each following the server API's relay.
async fn cluster() -> anyhow::Result<(pushgate_testkit::RedisServer, GatewayProcess, GatewayProcess)> {
    let redis = pushgate_testkit::RedisServer::start().await?;
    let url = redis.url();
    let a = gateway(&["--redis", &url]).await?;
    let b = gateway(&["--redis", &url]).await?;
    until_relayed(&redis, 2).await?;
    Ok((redis, a, b))
}

/// Waits until `nodes` nodes follow the relay channel.
async fn until_relayed(redis: &pushgate_testkit::RedisServer, nodes: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let answer = redis.command(&["PUBSUB", "NUMSUB", "pushgate:server"]).await?;
        // `*2 $15 pushgate:server :<n>` in RESP.
        let count = answer.lines().filter_map(|line| line.trim().strip_prefix(':')).next_back();
        if count.and_then(|n| n.parse::<usize>().ok()) == Some(nodes) {
            return Ok(());
        }
        ensure!(tokio::time::Instant::now() < deadline, "relay subscribers: {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_disconnect_asked_of_one_node_ends_connections_on_the_other() -> anyhow::Result<()> {
    let (_redis, a, b) = cluster().await?;
    let ada = token("42", 0);
    let mut sse = Sse::open(&b, "user:42", &ada).await?;
    let mut socket = ws(&b, "room.a", &ada).await?;
    let parked = long_poll(&b, "user:42", &ada);
    let mut reader = Sse::open(&b, "room.z", &ada).await?;
    let mut other_ws = ws(&b, "room.z", &token("7", 0)).await?;
    until_readers(&b, "user:42", 2).await?;
    until_readers(&b, "room.z", 2).await?;

    let (status, body) = server_post(&a, "/v1/server/users/42/disconnect", Some(ADMIN), json!({})).await;
    assert_eq!((status, body), (200, json!({"user": "42", "disconnected": 0})), "none on the node asked");
    assert_eq!(sse.error_code().await?, "disconnected");
    assert_eq!(ws_close(&mut socket).await?.0, 4410);
    assert_eq!(joined(parked).await, (410, "disconnected".to_owned()));

    // `reader` is user 42's too: cut with the rest. The topic's other reader goes on until
    // the topic is disconnected.
    assert_eq!(reader.error_code().await?, "disconnected");
    until_readers(&b, "room.z", 1).await?;
    let (status, _) = server_post(&a, "/v1/server/topics/room.z/disconnect", Some(ADMIN), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(ws_close(&mut other_ws).await?.0, 4410);
    until_readers(&b, "room.z", 0).await?;
    Ok(())
}

#[tokio::test]
async fn a_revocation_holds_on_every_node_and_on_nodes_started_later() -> anyhow::Result<()> {
    let (redis, a, b) = cluster().await?;
    let old = token("42", 60);
    let mut sse = Sse::open(&b, "user:42", &old).await?;
    until_readers(&b, "user:42", 1).await?;
    let before = now() - 30;
    let (status, body) = server_post(
        &a,
        "/v1/server/users/42/revoke",
        Some(ADMIN),
        json!({"issued_before": before, "token_lifetime": 600}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sse.error_code().await?, "token_revoked");
    for node in [&a, &b] {
        let (status, body) = get_json(node, &format!("/v1/poll?topic=user:42&token={old}"), None).await;
        assert_eq!((status, body["error"]["code"].as_str().unwrap()), (401, "token_revoked"));
    }
    // Kept in Redis until every such token has expired.
    let ttl = redis.command(&["PTTL", "pushgate:revoked:42"]).await?;
    let ttl: i64 = ttl.trim().trim_start_matches(':').parse().with_context(|| format!("PTTL {ttl:?}"))?;
    assert!((500_000..=600_000).contains(&ttl), "ttl {ttl} ms");
    let c = gateway(&["--redis", &redis.url()]).await?;
    let (status, body) = get_json(&c, &format!("/v1/poll?topic=user:42&token={old}"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap()),
        (401, "token_revoked"),
        "a node started later"
    );
    let fresh = token("42", 0);
    assert_eq!(get_json(&c, &format!("/v1/poll?topic=user:42&token={fresh}"), None).await.0, 200);
    Ok(())
}
