//! The PostgreSQL source against the real server (`PUSHGATE_POSTGRES_URL`, default
//! `postgres://root@127.0.0.1:5432/test`): every test installs into its own tables and outbox,
//! runs a `Source` into a `Hub`, and asserts on the events subscribers receive.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use pushgate_hub::{Cursor, FetchOptions, HistoryLimit, Hub, Item, Subscription, TopicName};
use pushgate_sources::{Source, SourceConfig, SourceNames, SourceState, TableSpec, install, uninstall};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Bound of every wait for an event.
const WAIT: Duration = Duration::from_secs(15);

fn url() -> String {
    std::env::var("PUSHGATE_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// A connection pool for the test's own SQL, or None (the test is skipped, with
/// `PUSHGATE_SKIP_DB=1`) when the server is unreachable; see `common::skip`.
async fn require_db(url: &str) -> Option<PgPool> {
    // One attempt (a pool would retry a refused connection until its timeout), bounded.
    let probe = timeout(Duration::from_secs(5), PgConnection::connect(url)).await;
    match probe {
        Ok(Ok(connection)) => {
            connection.close().await.unwrap();
            Some(PgPool::connect(url).await.unwrap())
        }
        Ok(Err(err)) => {
            common::skip::database_unreachable(&format!("postgres at {url}"), &err.to_string());
            None
        }
        Err(_) => {
            common::skip::database_unreachable(&format!("postgres at {url}"), "no answer in 5 s");
            None
        }
    }
}

/// One test's table, outbox and watch table, named after the test and this process; removed
/// on drop, also when the test fails.
struct Fixture {
    pool: PgPool,
    names: SourceNames,
    table: String,
}

impl Fixture {
    /// Creates `<prefix>items` with `columns` and installs the triggers. None when skipped.
    async fn new(test: &str, columns: &str) -> Option<Self> {
        let pool = require_db(&url()).await?;
        let names = SourceNames::with_prefix(&format!("pgt_{test}_{}_", std::process::id())).unwrap();
        let table = format!("{}items", names.prefix());
        let fixture = Self { pool, names, table };
        fixture.sql(&format!("DROP TABLE IF EXISTS {0}; CREATE TABLE {0} ({columns})", fixture.table)).await;
        install(&url(), &fixture.names, &[TableSpec::new(&fixture.table).unwrap()], false).await.unwrap();
        Some(fixture)
    }

    async fn sql(&self, statement: &str) {
        sqlx::raw_sql(statement).execute(&self.pool).await.unwrap();
    }

    fn topic(&self) -> TopicName {
        TopicName::new(&format!("db.{}", self.table)).unwrap()
    }

    fn source(&self, url: &str, poll_interval: Duration) -> Arc<Source> {
        let config = SourceConfig::new(url).names(self.names.clone()).poll_interval(poll_interval);
        Arc::new(Source::new(config).unwrap())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Drop runs outside any async context we could await in: clean up on a thread of its own.
        let (names, table) = (self.names.clone(), self.table.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                uninstall(&url(), &names, None, false).await.unwrap();
                let pool = PgPool::connect(&url()).await.unwrap();
                sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {table}")).execute(&pool).await.unwrap();
                pool.close().await;
            });
        });
        let outcome = cleanup.join();
        if !std::thread::panicking() {
            outcome.unwrap();
        }
    }
}

fn hub() -> Hub {
    Hub::builder().history(HistoryLimit::default().max_events(10_000)).build()
}

/// Runs `source` into `hub` until the hub closes.
fn run(source: &Arc<Source>, hub: &Hub) -> JoinHandle<()> {
    let (source, hub) = (Arc::clone(source), hub.clone());
    tokio::spawn(async move { source.run(hub).await })
}

/// The next change: its event type and data.
async fn next(subscription: &mut Subscription) -> (String, Value) {
    let item = timeout(WAIT, subscription.recv()).await.expect("no change arrived in time").unwrap();
    let Item::Event(event) = item else { panic!("unexpected {item:?}") };
    (event.type_name().to_owned(), event.data().to_value().unwrap())
}

#[tokio::test]
async fn changes_arrive_with_json_types() {
    let columns = "id integer PRIMARY KEY, big bigint, f double precision, n numeric(12,3), t text, \
                   b boolean, ts timestamp(3), tz timestamptz, j jsonb, js json, bin bytea, nothing text";
    let Some(db) = Fixture::new("types", columns).await else { return };
    let hub = hub();
    let mut changes = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let source = db.source(&url(), Duration::from_millis(100));
    let task = run(&source, &hub);

    let text = "quote \" apostrophe ' backslash \\ newline \n tab \t unicode \u{e9}\u{4e2d}\u{1F600}";
    sqlx::query(&format!(
        "INSERT INTO {} VALUES (1, 9007199254740993, 0.25, 1234.500, $1, true, '2024-02-29 23:59:58.125', \
         '2024-03-01 01:02:03+02', '{{\"k\": [1, \"two\", null, {{\"x\": false}}]}}', '{{\"n\": 1.5}}', $2, NULL)",
        db.table
    ))
    .bind(text)
    .bind(&[0u8, 1, 2, 254, 255, b'\n'][..])
    .execute(&db.pool)
    .await
    .unwrap();
    let (kind, insert) = next(&mut changes).await;
    assert_eq!(kind, "insert");
    let row = json!({
        "id": 1, "big": 9007199254740993_i64, "f": 0.25, "n": exact("1234.500"), "t": text, "b": true,
        "ts": "2024-02-29T23:59:58.125", "tz": "2024-02-29T23:02:03+00:00",
        "j": {"k": [1, "two", null, {"x": false}]}, "js": {"n": 1.5}, "bin": "AAEC/v8K", "nothing": null,
    });
    assert_eq!(insert["table"], json!(db.table));
    assert_eq!(insert["op"], json!("insert"));
    assert!(insert["id"].is_i64(), "{insert}");
    assert_eq!(insert["new"], row);
    assert_eq!(insert["old"], Value::Null);

    db.sql(&format!("UPDATE {} SET b = false, nothing = 'x', bin = '\\x' WHERE id = 1", db.table)).await;
    let (kind, update) = next(&mut changes).await;
    assert_eq!((kind.as_str(), update["op"].as_str()), ("update", Some("update")));
    assert!(update["id"].as_i64() > insert["id"].as_i64());
    assert_eq!(update["old"], row);
    let mut updated = row.clone();
    updated["b"] = json!(false);
    updated["nothing"] = json!("x");
    updated["bin"] = json!("");
    assert_eq!(update["new"], updated);

    db.sql(&format!("DELETE FROM {}", db.table)).await;
    let (kind, delete) = next(&mut changes).await;
    assert_eq!(kind, "delete");
    assert_eq!(delete["new"], Value::Null);
    assert_eq!(delete["old"], updated);

    hub.close();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_backlog_arrives_in_order_exactly_once() {
    let Some(db) = Fixture::new("backlog", "id integer PRIMARY KEY, note text").await else { return };
    // 1,000 changes while no source runs: 600 inserts, 300 updates, 100 deletes.
    db.sql(&format!("INSERT INTO {} SELECT g, 'n' || g FROM generate_series(1, 600) g", db.table)).await;
    db.sql(&format!("UPDATE {} SET note = 'changed' WHERE id <= 300", db.table)).await;
    db.sql(&format!("DELETE FROM {} WHERE id > 500", db.table)).await;

    let hub = hub();
    let mut changes = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let source = db.source(&url(), Duration::from_millis(100));
    let task = run(&source, &hub);
    let mut ids = Vec::new();
    let mut ops = Vec::new();
    for _ in 0..1000 {
        let (kind, data) = next(&mut changes).await;
        ids.push(data["id"].as_i64().unwrap());
        ops.push(kind);
    }
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "published out of outbox order");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);
    let count = |op: &str| ops.iter().filter(|kind| *kind == op).count();
    assert_eq!((count("insert"), count("update"), count("delete")), (600, 300, 100));
    assert_eq!(ops[599..601], ["insert", "update"]);
    hub.close();
    timeout(WAIT, task).await.unwrap().unwrap();

    // A second source finds nothing left: the first thing it publishes is a new change.
    let hub = self::hub();
    let mut changes = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let task = run(&db.source(&url(), Duration::from_millis(100)), &hub);
    db.sql(&format!("INSERT INTO {} VALUES (1001, 'marker')", db.table)).await;
    let (kind, data) = next(&mut changes).await;
    assert_eq!((kind.as_str(), &data["new"]["note"]), ("insert", &json!("marker")));
    assert!(data["id"].as_i64().unwrap() > *ids.last().unwrap());
    hub.close();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_late_commit_is_not_skipped() {
    let Some(db) = Fixture::new("late", "id integer PRIMARY KEY, note text").await else { return };
    let hub = hub();
    let mut changes = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let task = run(&db.source(&url(), Duration::from_millis(100)), &hub);

    // T1 takes the lower outbox id but commits after T2, whose change is published first.
    let mut t1 = db.pool.begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {} VALUES (1, 'first in, last out')", db.table))
        .execute(&mut *t1)
        .await
        .unwrap();
    let mut t2 = db.pool.begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {} VALUES (2, 'second in, first out')", db.table))
        .execute(&mut *t2)
        .await
        .unwrap();
    t2.commit().await.unwrap();
    let (_, second) = next(&mut changes).await;
    assert_eq!(second["new"]["id"], json!(2));
    // The tailer has moved past T1's id by now; T1 commits late.
    t1.commit().await.unwrap();
    let (_, first) = next(&mut changes).await;
    assert_eq!(first["new"]["id"], json!(1));
    assert!(first["id"].as_i64() < second["id"].as_i64(), "T1 did not hold the lower outbox id");

    hub.close();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_100_kb_text_arrives_intact() {
    let Some(db) = Fixture::new("large", "id integer PRIMARY KEY, body text").await else { return };
    let hub = hub();
    let mut changes = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let task = run(&db.source(&url(), Duration::from_millis(100)), &hub);
    let body: String = (0..100_000).map(|i| ['a', 'Z', '"', '\n', '\u{e9}', '7'][i % 6]).collect();
    sqlx::query(&format!("INSERT INTO {} VALUES (1, $1)", db.table))
        .bind(&body)
        .execute(&db.pool)
        .await
        .unwrap();
    let (_, data) = next(&mut changes).await;
    assert_eq!(data["new"]["body"].as_str().map(str::len), Some(body.len()));
    assert_eq!(data["new"]["body"], json!(body));
    hub.close();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn quiesce_publishes_what_is_pending() {
    let Some(db) = Fixture::new("quiesce", "id integer PRIMARY KEY").await else { return };
    let hub = hub();
    let ids = |batch: &pushgate_hub::Batch| -> Vec<Value> {
        batch.events.iter().map(|event| event.data().to_value().unwrap()["new"]["id"].clone()).collect()
    };
    let options = FetchOptions::default().limit(100);

    // No tailer runs: the changes are certainly pending when quiesce is called.
    let source = db.source(&url(), Duration::from_secs(60));
    db.sql(&format!("INSERT INTO {} SELECT generate_series(1, 25)", db.table)).await;
    let guard = timeout(WAIT, source.quiesce(&hub)).await.unwrap().unwrap();
    let cursor = guard.cursor();
    let published = hub.fetch(&[db.topic()], Cursor::Oldest, &options).await.unwrap();
    assert_eq!(ids(&published), (1..=25).map(|id| json!(id)).collect::<Vec<_>>());
    assert!(hub.fetch(&[db.topic()], cursor, &options).await.unwrap().events.is_empty());
    drop(guard);

    // With the tailer running (and polling slowly), the same holds for the next changes.
    let task = run(&source, &hub);
    db.sql(&format!("INSERT INTO {} SELECT generate_series(26, 30)", db.table)).await;
    let guard = timeout(WAIT, source.quiesce(&hub)).await.unwrap().unwrap();
    let after_first = hub.fetch(&[db.topic()], cursor, &options).await.unwrap();
    assert_eq!(ids(&after_first), (26..=30).map(|id| json!(id)).collect::<Vec<_>>());
    assert!(hub.fetch(&[db.topic()], guard.cursor(), &options).await.unwrap().events.is_empty());
    drop(guard);
    hub.close();
    timeout(WAIT, task).await.unwrap().unwrap();
}

/// PostgreSQL only: the `LISTEN` connection's backend is terminated, and changes made right
/// after still arrive; the listener comes back on a new backend.
#[tokio::test]
async fn killing_the_listen_backend_loses_nothing() {
    let Some(db) = Fixture::new("listen", "id integer PRIMARY KEY").await else { return };
    // Only this test's connections carry this name, so only its listener is terminated.
    let app = format!("pushgate_test_listen_{}", std::process::id());
    let source_url =
        format!("{}{}application_name={app}", url(), if url().contains('?') { '&' } else { '?' });
    let hub = hub();
    let mut changes = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let task = run(&db.source(&source_url, Duration::from_millis(200)), &hub);
    db.sql(&format!("INSERT INTO {} VALUES (0)", db.table)).await;
    assert_eq!(next(&mut changes).await.1["new"]["id"], json!(0));

    let listeners = "SELECT pid FROM pg_stat_activity \
                     WHERE query ILIKE 'LISTEN%' AND datname = current_database() AND application_name = $1";
    let before: Vec<i32> = sqlx::query_scalar(listeners).bind(&app).fetch_all(&db.pool).await.unwrap();
    assert_eq!(before.len(), 1, "expected one LISTEN backend, found {before:?}");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(before[0])
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(killed);
    for id in 1..=5 {
        db.sql(&format!("INSERT INTO {} VALUES ({id})", db.table)).await;
    }
    for id in 1..=5 {
        assert_eq!(next(&mut changes).await.1["new"]["id"], json!(id));
    }

    // The listener is back, on another backend, and changes keep arriving.
    let mut after = Vec::new();
    for _ in 0..100 {
        after = sqlx::query_scalar(listeners).bind(&app).fetch_all(&db.pool).await.unwrap();
        // The killed backend may linger in pg_stat_activity for a moment.
        if !after.is_empty() && !after.contains(&before[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(after.len(), 1, "the listener did not come back");
    assert_ne!(after[0], before[0]);
    db.sql(&format!("INSERT INTO {} VALUES (6)", db.table)).await;
    assert_eq!(next(&mut changes).await.1["new"]["id"], json!(6));

    hub.close();
    timeout(WAIT, task).await.unwrap().unwrap();
}

/// A JSON number exactly as written: decimals keep their digits (and trailing zeros) end to end.
fn exact(number: &str) -> serde_json::Value {
    serde_json::from_str(number).expect("a JSON number")
}

/// Two tailers of one database, each into its own hub: one leads (an advisory lock on a
/// session of its own), the other stands by. When the server ends the leader's lease session,
/// the leader stops publishing and the standby takes over; when that one then dies, the first
/// takes over again. Each change reaches the hub of exactly the node leading when it was made.
#[tokio::test]
async fn the_lease_moves_when_its_holder_is_cut_off_or_dies() {
    let Some(db) = Fixture::new("lease", "id integer PRIMARY KEY").await else { return };
    let name = |role: &str| format!("pgt_lease_{role}_{}", std::process::id());
    let config = |role: &str| {
        let url = format!(
            "{}{}application_name={}",
            url(),
            if url().contains('?') { '&' } else { '?' },
            name(role)
        );
        SourceConfig::new(url)
            .names(db.names.clone())
            .poll_interval(Duration::from_millis(100))
            .lease_timeout(Duration::from_secs(2))
    };
    let (a, b) = common::leader_and_standby(config("a"), config("b")).await;
    let mut at_a = a.hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let mut at_b = b.hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    db.sql(&format!("INSERT INTO {} VALUES (1), (2)", db.table)).await;
    common::increasing_ids(&common::next_events(&mut at_a, 2).await);
    common::assert_quiet(&mut at_b, Duration::from_millis(300)).await;

    // Cut off: the server ends A's lease session, which releases the lock.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity s USING (pid) \
         WHERE l.locktype = 'advisory' AND l.granted AND s.application_name = $1",
    )
    .bind(name("a"))
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(ended, [true], "A's lease session");
    b.wait_for(Duration::from_secs(2), "live after A was cut off", SourceState::is_live).await;
    a.wait_for(WAIT, "standing by", |state| *state == SourceState::Standby).await;
    db.sql(&format!("INSERT INTO {} VALUES (3), (4)", db.table)).await;
    common::increasing_ids(&common::next_events(&mut at_b, 2).await);
    common::assert_quiet(&mut at_a, Duration::from_millis(300)).await;

    // B dies: A takes over.
    b.crash().await;
    a.wait_for(Duration::from_secs(2), "live after B died", SourceState::is_live).await;
    db.sql(&format!("INSERT INTO {} VALUES (5)", db.table)).await;
    assert_eq!(next(&mut at_a).await.1["new"]["id"], json!(5));
    a.stop().await;
}
