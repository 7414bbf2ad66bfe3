//! The embedded demo over real sockets: writes through `/demo/…` arrive as change events on
//! `db.users` and `db.orders`; a snapshot and its cursor miss nothing while writes go on; a
//! database source that cannot connect shows on `/healthz` without stopping anything. Served by
//! `serve_on`, not `TestServer`: the demo's outbox is the hub's history tier only on that path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pushgate::{Config, ServeError};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Every wait for one thing in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

/// A gateway with the demo on a database file in a directory of its own.
struct Gateway {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
    _dir: TempDir,
}

impl Gateway {
    async fn start(config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = config.with_demo_db(Some(dir.path().join("demo.db")));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            pushgate::serve_on(listener, &config, async {
                stopped.await.ok();
            })
            .await
        });
        Self { addr, stop: Some(stop), task, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the gateway and checks that it returns in time and without error.
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).ok();
        timeout(BOUND, &mut self.task).await.expect("the gateway stops in time").unwrap().unwrap();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(BOUND).build().unwrap()
}

/// Sends a request with an optional JSON body; returns the status and the JSON answer (null
/// when empty).
async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = client().request(method, url);
    if let Some(body) = body {
        request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
    (status, value)
}

async fn get(url: &str) -> (StatusCode, Value) {
    call(reqwest::Method::GET, url, None).await
}

/// An SSE stream, parsed just enough for these tests: the `event:` and `data:` of each event.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(gateway: &Gateway, topic: &str, cursor: &str) -> Self {
        let response = client()
            .get(gateway.url(&format!("/v1/sse?topic={topic}&cursor={cursor}")))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        Self { response, buffer: String::new() }
    }

    /// The next event's type and event object, within [`BOUND`].
    async fn next(&mut self) -> (String, Value) {
        timeout(BOUND, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|line| line.strip_prefix(name))
                            .map(|v| v.trim_start().to_owned())
                    };
                    if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                        return (event, serde_json::from_str(&data).unwrap());
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.unwrap().expect("the stream goes on");
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an event within the bound")
    }

    /// The next change: its op (also the event type) and its `data`, checked against `table`.
    async fn change(&mut self, table: &str) -> (String, Value) {
        let (event_type, event) = self.next().await;
        let change = event["data"].clone();
        assert_eq!(event["topic"], format!("db.{table}"));
        assert_eq!(change["table"], table);
        assert_eq!(change["op"], event_type.as_str());
        assert!(change["id"].is_u64(), "the outbox id is a number: {change}");
        (event_type, change)
    }
}

/// The snapshot of `table`: its rows and the cursor to follow it from.
async fn snapshot(gateway: &Gateway, table: &str) -> (Vec<Value>, String) {
    let (status, body) = get(&gateway.url(&format!("/demo/{table}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["rows"].as_array().unwrap().clone(), body["cursor"].as_str().unwrap().to_owned())
}

/// Creates a row, changes it, deletes it, and checks each event on the table's topic.
async fn crud_arrives_as_events(gateway: &Gateway, table: &str, create: Value, change: Value) -> Value {
    let (rows, cursor) = snapshot(gateway, table).await;
    assert_eq!(rows, Vec::<Value>::new());
    let mut sse = Sse::open(gateway, &format!("db.{table}"), &cursor).await;

    let (status, row) =
        call(reqwest::Method::POST, &gateway.url(&format!("/demo/{table}")), Some(create)).await;
    assert_eq!(status, StatusCode::CREATED, "{row}");
    let (op, data) = sse.change(table).await;
    assert_eq!((op.as_str(), &data["new"], &data["old"]), ("insert", &row, &Value::Null));

    let url = gateway.url(&format!("/demo/{table}/{}", row["id"]));
    let (status, changed) = call(reqwest::Method::PUT, &url, Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (op, data) = sse.change(table).await;
    assert_eq!((op.as_str(), &data["new"], &data["old"]), ("update", &changed, &row));
    assert_eq!(get(&url).await, (StatusCode::OK, changed.clone()));

    let (status, _) = call(reqwest::Method::DELETE, &url, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (op, data) = sse.change(table).await;
    assert_eq!((op.as_str(), &data["new"], &data["old"]), ("delete", &Value::Null, &changed));

    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, error) = call(method, &url, None).await;
        assert_eq!((status, &error["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));
    }
    let (status, _) = call(reqwest::Method::PUT, &url, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    row
}

#[tokio::test]
async fn writes_through_the_demo_api_arrive_as_change_events() {
    let gateway = Gateway::start(Config::default()).await;

    let user = crud_arrives_as_events(
        &gateway,
        "users",
        json!({"name": "Ada", "email": "ada@example.com"}),
        json!({"active": false, "email": null}),
    )
    .await;
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["active"], true, "booleans are true/false: {user}");
    assert!(user["id"].is_i64() && user["created_at"].as_str().unwrap().ends_with('Z'), "{user}");

    let order = crud_arrives_as_events(
        &gateway,
        "orders",
        json!({"item": "Tea", "amount": 12.5, "user_id": 1, "urgent": true}),
        json!({"status": "paid", "amount": 3}),
    )
    .await;
    assert_eq!(
        (&order["item"], &order["amount"], &order["user_id"], &order["status"], &order["urgent"]),
        (&json!("Tea"), &json!(12.5), &json!(1), &json!("new"), &json!(true))
    );
    gateway.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let gateway = Gateway::start(Config::default()).await;
    let users = gateway.url("/demo/users");
    for body in
        [json!({}), json!({"name": 3}), json!({"name": "A", "admin": true}), json!({"name": "A", "id": 7})]
    {
        let (status, error) = call(reqwest::Method::POST, &users, Some(body.clone())).await;
        assert_eq!(
            (status, &error["error"]["code"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_json")),
            "{body}"
        );
    }
    let (status, error) = call(reqwest::Method::PUT, &gateway.url("/demo/users/abc"), Some(json!({}))).await;
    assert_eq!((status, &error["error"]["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_parameter")));
    let (status, error) = get(&gateway.url("/demo/accounts")).await;
    assert_eq!((status, &error["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));
    let (status, error) = call(reqwest::Method::PATCH, &gateway.url("/demo/users/1"), None).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::METHOD_NOT_ALLOWED, &json!("method_not_allowed"))
    );
    gateway.stop().await;
}

/// A client following `users` by the snapshot pattern: rows by id, changed by events.
struct Follower {
    rows: BTreeMap<i64, Value>,
    cursor: String,
}

impl Follower {
    async fn start(gateway: &Gateway) -> Self {
        let (rows, cursor) = snapshot(gateway, "users").await;
        let rows = rows.into_iter().map(|row| (row["id"].as_i64().unwrap(), row)).collect::<BTreeMap<_, _>>();
        Self { rows, cursor }
    }

    /// Applies what `/v1/poll` has after the cursor: upserts of `new`, removals of `old`.
    async fn poll(&mut self, gateway: &Gateway) {
        let url = gateway.url(&format!("/v1/poll?topic=db.users&cursor={}", self.cursor));
        let (status, answer) = get(&url).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(answer.get("reset").is_none(), "history was lost: {answer}");
        for event in answer["events"].as_array().unwrap() {
            let change = &event["data"];
            match change["op"].as_str().unwrap() {
                "insert" | "update" => {
                    self.rows.insert(change["new"]["id"].as_i64().unwrap(), change["new"].clone());
                }
                "delete" => {
                    self.rows.remove(&change["old"]["id"].as_i64().unwrap());
                }
                op => panic!("unexpected op {op}"),
            }
        }
        self.cursor = answer["cursor"].as_str().unwrap().to_owned();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_and_its_cursor_miss_nothing_while_rows_change() {
    let gateway = Arc::new(Gateway::start(Config::default()).await);
    let writing = Arc::new(AtomicBool::new(true));

    // Inserts, updates and deletes through the REST API as fast as it answers.
    let writer = tokio::spawn({
        let (gateway, writing) = (Arc::clone(&gateway), Arc::clone(&writing));
        async move {
            let users = gateway.url("/demo/users");
            let mut ids = Vec::new();
            for i in 0..150 {
                let (status, row) =
                    call(reqwest::Method::POST, &users, Some(json!({"name": format!("user {i}")}))).await;
                assert_eq!(status, StatusCode::CREATED, "{row}");
                ids.push(row["id"].as_i64().unwrap());
                if i % 3 == 0 {
                    let url = format!("{users}/{}", ids[ids.len() / 2]);
                    let body = json!({"name": format!("renamed {i}"), "active": i % 2 == 0});
                    assert_eq!(call(reqwest::Method::PUT, &url, Some(body)).await.0, StatusCode::OK);
                }
                if i % 5 == 0 {
                    let id = ids.remove(ids.len() / 3);
                    let status = call(reqwest::Method::DELETE, &format!("{users}/{id}"), None).await.0;
                    assert_eq!(status, StatusCode::NO_CONTENT);
                }
            }
            writing.store(false, Ordering::SeqCst);
        }
    });

    // Followers that take their snapshot at different moments of the writing, and keep up.
    let mut followers = Vec::new();
    for start_after in [0, 30, 100, 250, 500] {
        let (gateway, writing) = (Arc::clone(&gateway), Arc::clone(&writing));
        followers.push(tokio::spawn(async move {
            sleep(Duration::from_millis(start_after)).await;
            let mut follower = Follower::start(&gateway).await;
            while writing.load(Ordering::SeqCst) {
                follower.poll(&gateway).await;
                sleep(Duration::from_millis(20)).await;
            }
            follower
        }));
    }
    timeout(Duration::from_secs(30), writer).await.expect("the writer finishes").unwrap();

    let (rows, _) = snapshot(&gateway, "users").await;
    let expected: BTreeMap<i64, Value> =
        rows.into_iter().map(|row| (row["id"].as_i64().unwrap(), row)).collect();
    assert_eq!(expected.len(), 150 - 30, "150 inserted, 30 deleted");
    for (n, follower) in followers.into_iter().enumerate() {
        let mut follower = timeout(BOUND, follower).await.unwrap().unwrap();
        // The last changes reach the hub within a poll interval or two of their commit.
        let deadline = Instant::now() + BOUND;
        while follower.rows != expected && Instant::now() < deadline {
            follower.poll(&gateway).await;
            sleep(Duration::from_millis(20)).await;
        }
        let missing: Vec<_> = expected.keys().filter(|id| !follower.rows.contains_key(id)).collect();
        let extra: Vec<_> = follower.rows.keys().filter(|id| !expected.contains_key(id)).collect();
        let stale: Vec<_> =
            expected.iter().filter(|(id, row)| follower.rows.get(id).is_some_and(|r| r != *row)).collect();
        assert!(
            missing.is_empty() && extra.is_empty() && stale.is_empty(),
            "follower {n}: missing {missing:?}, extra {extra:?}, stale {stale:?}"
        );
    }
    Arc::into_inner(gateway).expect("nothing else holds the gateway").stop().await;
}

#[tokio::test]
async fn a_source_that_cannot_connect_shows_on_healthz_and_stops_nothing() {
    let unreachable = "postgres://root:secret@127.0.0.1:1/test";
    let config = Config::default()
        .with_sources(vec![unreachable.to_owned()])
        .with_drain_timeout(Duration::from_secs(2));
    let gateway = Gateway::start(config).await;

    // sqlx retries a refused connection until its pool's acquire timeout (10 s for
    // PostgreSQL) before the first failure is reported; until then the source is connecting.
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let (status, health) = get(&gateway.url("/healthz")).await;
        assert_eq!(status, StatusCode::OK, "the process is alive: {health}");
        assert_eq!(health["status"], "degraded", "a source is not live: {health}");
        let sources = health["sources"].as_array().unwrap();
        assert_eq!(sources.len(), 2, "the source and the demo's: {health}");
        assert!(["connecting", "retrying"].contains(&sources[0]["state"].as_str().unwrap()), "{health}");
        if sources[0]["state"] == "retrying" && sources[1]["state"] == "live" {
            break health;
        }
        assert!(Instant::now() < deadline, "expected the source retrying and the demo live: {health}");
        sleep(Duration::from_millis(100)).await;
    };
    let source = &health["sources"][0];
    assert_eq!(source["url"], "postgres://root:***@127.0.0.1:1/test", "the password is hidden");
    assert!(!source["error"].as_str().unwrap().is_empty(), "{source}");
    assert!(source["attempt"].as_u64().unwrap() >= 1, "{source}");
    assert!(health["sources"][1]["url"].as_str().unwrap().ends_with("demo.db"), "{health}");

    // The demo goes on.
    let (rows, cursor) = snapshot(&gateway, "users").await;
    assert!(rows.is_empty());
    let mut sse = Sse::open(&gateway, "db.users", &cursor).await;
    let (status, row) =
        call(reqwest::Method::POST, &gateway.url("/demo/users"), Some(json!({"name": "Ada"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, change) = sse.change("users").await;
    assert_eq!(change["new"], row);
    drop(sse);
    gateway.stop().await;
}

#[tokio::test]
async fn without_sources_or_demo_healthz_is_ok_and_lists_none() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        pushgate::serve_on(listener, &Config::default(), async {
            stopped.await.ok();
        })
        .await
    });
    let (status, health) = get(&format!("http://{addr}/healthz")).await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok", "sources": []})));
    let (status, _) = get(&format!("http://{addr}/demo/users")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no demo unless configured");
    stop.send(()).ok();
    timeout(BOUND, task).await.unwrap().unwrap().unwrap();
}
