//! The MariaDB/MySQL source against a real server (`PUSHGATE_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`). Each test installs into its own tables and names, and
//! fails when the server is unreachable (skips visibly with `PUSHGATE_SKIP_DB=1`).
#![cfg(feature = "mysql")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::{
    Running, WAIT, assert_quiet, data, eventually, increasing_ids, large_text, leader_and_standby,
    next_event, next_events, require_db, test_hub, topic, unique_prefix,
};
use pushgate_hub::{Cursor, FetchOptions, TopicName};
use pushgate_sources::{SourceConfig, SourceNames, SourceState, TableSpec, install, uninstall};
use serde_json::{Value, json};
use sqlx::MySqlPool;

/// One test's database objects: its table, its outbox/watch/trigger names, and a pool playing
/// the application.
struct Fixture {
    url: String,
    names: SourceNames,
    table: String,
    app: MySqlPool,
}

impl Fixture {
    /// Creates the test's table with `columns`, or returns `None` (the test is skipped, with
    /// `PUSHGATE_SKIP_DB=1`) when the server is unreachable.
    async fn new(columns: &str) -> Option<Self> {
        let url =
            std::env::var("PUSHGATE_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        if !require_db(&url).await {
            return None;
        }
        let prefix = unique_prefix("my");
        let app = MySqlPool::connect(&url).await.unwrap();
        let fixture =
            Self { names: SourceNames::with_prefix(&prefix).unwrap(), table: format!("{prefix}t"), url, app };
        let create =
            format!("CREATE TABLE `{}` ({columns}) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4", fixture.table);
        fixture.exec(&create).await;
        Some(fixture)
    }

    fn topic(&self) -> TopicName {
        topic(&format!("db.{}", self.table))
    }

    async fn install(&self) -> Vec<String> {
        install(&self.url, &self.names, &[TableSpec::new(&self.table).unwrap()], false).await.unwrap()
    }

    fn config(&self, poll_interval: Duration) -> SourceConfig {
        SourceConfig::new(&self.url).names(self.names.clone()).poll_interval(poll_interval)
    }

    async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(&self.app).await.unwrap();
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.app).await.unwrap()
    }

    /// How many changes the outbox holds that are not published yet.
    async fn unpublished(&self) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM `{}` WHERE published_at IS NULL", self.names.outbox()))
            .await
    }

    async fn cleanup(&self) {
        uninstall(&self.url, &self.names, None, false).await.unwrap();
        self.exec(&format!("DROP TABLE IF EXISTS `{}`", self.table)).await;
    }
}

/// An event's type and data.
fn parts(event: &pushgate_hub::Event) -> (String, Value) {
    (event.type_name().to_owned(), data(event))
}

#[tokio::test]
async fn changes_arrive_with_json_types() {
    let columns = "id INT PRIMARY KEY, n INT, big BIGINT, score DOUBLE, price DECIMAL(10,2), body TEXT, \
                   flag TINYINT(1), at DATETIME(3), ts TIMESTAMP(6) NULL, day DATE, raw BLOB, doc JSON, \
                   nothing INT NULL";
    let Some(db) = Fixture::new(columns).await else { return };

    // A dry run changes nothing; a real install may be repeated.
    let spec = [TableSpec::new(&db.table).unwrap()];
    let dry = install(&db.url, &db.names, &spec, true).await.unwrap();
    assert!(dry.iter().any(|sql| sql.contains("TRIGGER")), "{dry:#?}");
    let outbox_tables = format!(
        "SELECT COUNT(*) FROM information_schema.tables WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{}'",
        db.names.outbox()
    );
    assert_eq!(db.scalar(&outbox_tables).await, 0);
    assert_eq!(db.install().await, dry);
    db.install().await;

    let hub = test_hub();
    let mut sub = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let running = Running::start(db.config(Duration::from_millis(50)), &hub).await;

    // A writer in another time zone: TIMESTAMP values arrive in UTC.
    let mut conn = db.app.acquire().await.unwrap();
    sqlx::raw_sql("SET time_zone = '+02:00'").execute(&mut *conn).await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO `{}` VALUES (1, -7, 9007199254740993, 0.1, 12.5, ?, TRUE, '2024-01-02 03:04:05.123', \
         '2024-01-02 05:04:05.5', '2024-02-29', X'00FF', '{{\"a\": [1, true, null]}}', NULL)",
        db.table
    ))
    .bind("q\"uo'te\\ \nnew line, ünïcödé 😀")
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let row = json!({
        "id": 1, "n": -7, "big": 9007199254740993_i64, "score": 0.1, "price": exact("12.50"),
        "body": "q\"uo'te\\ \nnew line, ünïcödé 😀", "flag": true, "at": "2024-01-02T03:04:05.123",
        "ts": "2024-01-02T03:04:05.500000Z", "day": "2024-02-29", "raw": "AP8=",
        "doc": {"a": [1, true, null]}, "nothing": null
    });
    let (kind, insert) = parts(&*next_event(&mut sub).await);
    assert_eq!(kind, "insert");
    assert!(insert["id"].is_i64(), "{insert}");
    assert_eq!(
        insert,
        json!({"table": db.table, "op": "insert", "id": insert["id"], "new": row, "old": null})
    );

    db.exec(&format!(
        "UPDATE `{}` SET flag = FALSE, n = NULL, raw = X'', price = -0.05 WHERE id = 1",
        db.table
    ))
    .await;
    let (kind, update) = parts(&*next_event(&mut sub).await);
    assert_eq!(kind, "update");
    let mut updated = row.clone();
    updated["flag"] = json!(false);
    updated["n"] = Value::Null;
    updated["raw"] = json!("");
    updated["price"] = json!(-0.05);
    assert_eq!(update["new"], updated);
    assert_eq!(update["old"], row);
    assert!(update["id"].as_i64() > insert["id"].as_i64());

    db.exec(&format!("DELETE FROM `{}` WHERE id = 1", db.table)).await;
    let (kind, delete) = parts(&*next_event(&mut sub).await);
    assert_eq!(kind, "delete");
    assert_eq!((&delete["op"], &delete["new"], &delete["old"]), (&json!("delete"), &Value::Null, &updated));

    running.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn backlog_arrives_once_in_order() {
    let Some(db) = Fixture::new("id INT PRIMARY KEY, n INT NOT NULL").await else { return };
    db.install().await;
    // 1,000 changes while no source runs: 500 inserts, then 500 updates of the same rows.
    for chunk in 0..5 {
        let values: Vec<String> = (1..=100).map(|i| format!("({0}, {0})", chunk * 100 + i)).collect();
        db.exec(&format!("INSERT INTO `{}` (id, n) VALUES {}", db.table, values.join(", "))).await;
    }
    for id in 1..=500 {
        db.exec(&format!("UPDATE `{}` SET n = n + 1000 WHERE id = {id}", db.table)).await;
    }
    assert_eq!(db.unpublished().await, 1000);

    let hub = test_hub();
    let mut sub = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let running = Running::start(db.config(Duration::from_millis(50)), &hub).await;
    let events = next_events(&mut sub, 1000).await;
    assert_eq!(increasing_ids(&events).len(), 1000);
    for (i, event) in events.iter().enumerate() {
        let (kind, data) = parts(event);
        let (want_kind, want_n) = if i < 500 { ("insert", i + 1) } else { ("update", i - 499 + 1000) };
        assert_eq!((kind.as_str(), &data["new"]["n"]), (want_kind, &json!(want_n)), "change {i}: {data}");
    }
    eventually("every change is marked published", async || db.unpublished().await == 0).await;
    running.stop().await;

    // A second source finds nothing left to publish.
    let running = Running::start(db.config(Duration::from_millis(20)), &hub).await;
    assert_quiet(&mut sub, Duration::from_millis(500)).await;
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn late_commit_is_not_skipped() {
    let Some(db) = Fixture::new("id INT PRIMARY KEY").await else { return };
    db.install().await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let running = Running::start(db.config(Duration::from_millis(20)), &hub).await;

    // T1 takes the lower outbox id (a simple INSERT takes its AUTO_INCREMENT value at once) but
    // commits after T2.
    let mut t1 = db.app.begin().await.unwrap();
    sqlx::raw_sql(&format!("INSERT INTO `{}` (id) VALUES (1)", db.table)).execute(&mut *t1).await.unwrap();
    let mut t2 = db.app.begin().await.unwrap();
    sqlx::raw_sql(&format!("INSERT INTO `{}` (id) VALUES (2)", db.table)).execute(&mut *t2).await.unwrap();
    t2.commit().await.unwrap();
    let second = data(&*next_event(&mut sub).await);
    assert_eq!(second["new"]["id"], 2);
    // Let the tailer go round a few more times past T1's still invisible row.
    tokio::time::sleep(Duration::from_millis(200)).await;
    t1.commit().await.unwrap();
    let first = data(&*next_event(&mut sub).await);
    assert_eq!(first["new"]["id"], 1);
    assert!(first["id"].as_i64() < second["id"].as_i64(), "T1 should hold the lower id: {first} {second}");

    running.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn large_text_arrives_intact() {
    let Some(db) = Fixture::new("id INT PRIMARY KEY, body MEDIUMTEXT").await else { return };
    db.install().await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let running = Running::start(db.config(Duration::from_millis(50)), &hub).await;

    let body = large_text(100 * 1024);
    sqlx::query(&format!("INSERT INTO `{}` VALUES (1, ?)", db.table))
        .bind(&body)
        .execute(&db.app)
        .await
        .unwrap();
    let received = data(&*next_event(&mut sub).await);
    assert_eq!(received["new"]["body"].as_str().map(str::len), Some(body.len()));
    assert_eq!(received["new"]["body"], body);

    running.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn quiesce_publishes_pending_changes_first() {
    let Some(db) = Fixture::new("id INT PRIMARY KEY").await else { return };
    db.install().await;
    let hub = test_hub();
    // A poll interval long enough that only `quiesce` can publish what is written below.
    let running = Running::start(db.config(Duration::from_secs(3600)), &hub).await;
    // The tailer looks at the outbox once right after going live; nothing shows when that
    // look is over, so give it time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.exec(&format!("INSERT INTO `{}` (id) VALUES (1), (2), (3)", db.table)).await;
    assert_eq!(db.unpublished().await, 3);

    let guard =
        tokio::time::timeout(Duration::from_secs(15), running.source.quiesce(&hub)).await.unwrap().unwrap();
    let cursor = guard.cursor();
    let topics = [db.topic()];
    let published = hub.fetch(&topics, Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    let ids: Vec<Value> = published.events.iter().map(|e| data(e)["new"]["id"].clone()).collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3)]);
    let after = hub.fetch(&topics, cursor, &FetchOptions::default()).await.unwrap();
    assert!(after.events.is_empty(), "the cursor is not after the pending changes");
    drop(guard);

    running.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn reinstall_after_alter_table_adds_columns() {
    let Some(db) = Fixture::new("id INT PRIMARY KEY").await else { return };
    db.install().await;
    db.exec(&format!("ALTER TABLE `{}` ADD COLUMN label VARCHAR(20), ADD COLUMN ok BOOLEAN", db.table)).await;
    db.install().await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let running = Running::start(db.config(Duration::from_millis(50)), &hub).await;

    db.exec(&format!("INSERT INTO `{}` VALUES (1, 'x', FALSE)", db.table)).await;
    assert_eq!(data(&*next_event(&mut sub).await)["new"], json!({"id": 1, "label": "x", "ok": false}));

    // Uninstalling one table removes its triggers only.
    let removed = uninstall(&db.url, &db.names, Some(&[db.table.clone()]), false).await.unwrap();
    assert!(removed.iter().all(|sql| !sql.contains("DROP TABLE")), "{removed:#?}");
    let triggers = format!(
        "SELECT COUNT(*) FROM information_schema.triggers \
         WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = '{}'",
        db.table
    );
    assert_eq!(db.scalar(&triggers).await, 0);

    running.stop().await;
    db.cleanup().await;
}

/// A JSON number exactly as written: decimals keep their digits (and trailing zeros) end to end.
fn exact(number: &str) -> serde_json::Value {
    serde_json::from_str(number).expect("a JSON number")
}

/// Two tailers of one database, each into its own hub: one leads (the named lock
/// `pushgate:<database>.<outbox>` on a session of its own), the other stands by. When the
/// leader's lease session is killed, it stops publishing and the standby takes over; when that
/// one then dies, the first takes over again.
#[tokio::test]
async fn the_lease_moves_when_its_holder_is_cut_off_or_dies() {
    let Some(db) = Fixture::new("id INT PRIMARY KEY").await else { return };
    db.install().await;
    let config = db.config(Duration::from_millis(50)).lease_timeout(Duration::from_secs(2));
    let (a, b) = leader_and_standby(config.clone(), config).await;
    let mut at_a = a.hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let mut at_b = b.hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    db.exec(&format!("INSERT INTO `{}` VALUES (1), (2)", db.table)).await;
    increasing_ids(&next_events(&mut at_a, 2).await);
    assert_quiet(&mut at_b, Duration::from_millis(300)).await;

    // Cut off: A's lease session is killed, which releases the lock.
    let lock = format!("pushgate:test.{}", db.names.outbox());
    let holder = db.scalar(&format!("SELECT IS_USED_LOCK('{lock}')")).await;
    db.exec(&format!("KILL {holder}")).await;
    b.wait_for(Duration::from_secs(2), "live after A was cut off", SourceState::is_live).await;
    a.wait_for(WAIT, "standing by", |state| *state == SourceState::Standby).await;
    db.exec(&format!("INSERT INTO `{}` VALUES (3), (4)", db.table)).await;
    increasing_ids(&next_events(&mut at_b, 2).await);
    assert_quiet(&mut at_a, Duration::from_millis(300)).await;

    // B dies: A takes over.
    b.crash().await;
    a.wait_for(Duration::from_secs(2), "live after B died", SourceState::is_live).await;
    db.exec(&format!("INSERT INTO `{}` VALUES (5)", db.table)).await;
    assert_eq!(data(&*next_event(&mut at_a).await)["new"]["id"], json!(5));
    a.stop().await;
    db.cleanup().await;
}
