//! The SQLite source against real database files under the temp dir: every test installs into
//! its own file, tables and outbox names, runs a `Source` into a `Hub`, and asserts on the
//! events subscribers receive.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::str::FromStr;
use std::time::Duration;

use common::{
    Running, TempSqlite, WAIT, assert_quiet, data, eventually, increasing_ids, large_text,
    leader_and_standby, next_event, next_events, require_db, test_hub, topic, unique_prefix,
};
use pushgate_hub::{Cursor, FetchOptions, Hub, TopicName};
use pushgate_sources::{
    Source, SourceConfig, SourceError, SourceNames, SourceState, TableSpec, install, uninstall,
};
use serde_json::json;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use tokio::time::timeout;

/// One test's database file, names and table.
struct Fixture {
    file: TempSqlite,
    pool: SqlitePool,
    names: SourceNames,
    table: String,
}

impl Fixture {
    /// A fresh database with `<prefix>items (columns)`, installed.
    async fn new(columns: &str) -> Self {
        let file = TempSqlite::new("sq");
        assert!(require_db(&file.url()).await);
        let options = SqliteConnectOptions::from_str(&file.url())
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.unwrap();
        let names = SourceNames::with_prefix(&unique_prefix("sq")).unwrap();
        let table = format!("{}items", names.prefix());
        let fixture = Self { file, pool, names, table };
        fixture.sql(&format!("CREATE TABLE {} ({columns})", fixture.table)).await;
        fixture.install(&[TableSpec::new(&fixture.table).unwrap()]).await;
        fixture
    }

    fn url(&self) -> String {
        self.file.url()
    }

    async fn install(&self, tables: &[TableSpec]) -> Vec<String> {
        install(&self.url(), &self.names, tables, false).await.unwrap()
    }

    async fn sql(&self, statement: &str) {
        sqlx::raw_sql(statement).execute(&self.pool).await.unwrap();
    }

    async fn count(&self, query: &str) -> i64 {
        sqlx::query_scalar(query).fetch_one(&self.pool).await.unwrap()
    }

    async fn unpublished(&self) -> i64 {
        self.count(&format!("SELECT count(*) FROM \"{}\" WHERE published_at IS NULL", self.names.outbox()))
            .await
    }

    fn topic(&self) -> TopicName {
        topic(&format!("db.{}", self.table))
    }

    fn config(&self) -> SourceConfig {
        SourceConfig::new(self.url()).names(self.names.clone()).poll_interval(Duration::from_millis(50))
    }

    /// Uninstalls everything, checks nothing of ours is left, and drops the table.
    async fn cleanup(self) {
        uninstall(&self.url(), &self.names, None, false).await.unwrap();
        let left = self
            .count(&format!(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE '{}%' AND name <> '{}'",
                self.names.prefix(),
                self.table
            ))
            .await;
        assert_eq!(left, 0, "uninstall left objects behind");
        self.sql(&format!("DROP TABLE {}", self.table)).await;
        self.pool.close().await;
    }
}

const TYPED_COLUMNS: &str = "id INTEGER PRIMARY KEY, small INTEGER, big BIGINT, ratio DOUBLE, price DECIMAL(10,2), \
     name TEXT, active BOOLEAN, seen_at TIMESTAMP, note TEXT, payload BLOB";

#[tokio::test]
async fn changes_arrive_with_json_types() {
    let fx = Fixture::new(TYPED_COLUMNS).await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    let running = Running::start(fx.config(), &hub).await;

    sqlx::query(&format!(
        "INSERT INTO {} (id, small, big, ratio, price, name, active, seen_at, note, payload) \
         VALUES (1, ?, ?, ?, 12.25, ?, ?, ?, ?, ?)",
        fx.table
    ))
    .bind(42_i32)
    .bind(9_007_199_254_740_993_i64)
    .bind(1.5_f64)
    .bind("héllo \"wörld\"")
    .bind(true)
    .bind("2024-05-06 07:08:09.123")
    .bind(None::<String>)
    .bind(vec![0_u8, 1, 2, 254, 255])
    .execute(&fx.pool)
    .await
    .unwrap();
    let inserted = json!({"id": 1, "small": 42, "big": 9_007_199_254_740_993_i64, "ratio": 1.5, "price": 12.25,
        "name": "héllo \"wörld\"", "active": true, "seen_at": "2024-05-06T07:08:09.123", "note": null,
        "payload": "AAEC/v8="});
    let event = next_event(&mut sub).await;
    assert_eq!((event.topic().as_str(), event.type_name()), (fx.topic().as_str(), "insert"));
    let insert = data(&event);
    assert!(insert["id"].is_i64(), "the outbox id is a number: {insert}");
    assert_eq!(
        insert,
        json!({"table": fx.table, "op": "insert", "id": insert["id"], "new": inserted, "old": null})
    );

    // A blob written into a TEXT column must not fail the application's write.
    fx.sql(&format!(
        "UPDATE {} SET active = false, name = 'second', payload = NULL, big = -big, note = X'6869' WHERE id = 1",
        fx.table
    ))
    .await;
    let updated = json!({"id": 1, "small": 42, "big": -9_007_199_254_740_993_i64, "ratio": 1.5, "price": 12.25,
        "name": "second", "active": false, "seen_at": "2024-05-06T07:08:09.123", "note": "hi", "payload": null});
    let event = next_event(&mut sub).await;
    assert_eq!(event.type_name(), "update");
    let update = data(&event);
    assert_eq!(
        update,
        json!({"table": fx.table, "op": "update", "id": update["id"], "new": updated, "old": inserted})
    );

    fx.sql(&format!("DELETE FROM {} WHERE id = 1", fx.table)).await;
    let event = next_event(&mut sub).await;
    assert_eq!(event.type_name(), "delete");
    let delete = data(&event);
    assert_eq!(
        delete,
        json!({"table": fx.table, "op": "delete", "id": delete["id"], "new": null, "old": updated})
    );
    assert!(insert["id"].as_i64() < update["id"].as_i64() && update["id"].as_i64() < delete["id"].as_i64());

    running.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn a_backlog_arrives_in_order_exactly_once() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY, n INTEGER NOT NULL").await;
    // 1,000 changes while no source runs: 500 inserts, 300 updates, 200 deletes.
    let mut tx = fx.pool.begin().await.unwrap();
    for i in 0..500 {
        sqlx::query(&format!("INSERT INTO {} (id, n) VALUES (?, 0)", fx.table))
            .bind(i)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for i in 0..300 {
        sqlx::query(&format!("UPDATE {} SET n = n + 1 WHERE id = ?", fx.table))
            .bind(i)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for i in 300..500 {
        sqlx::query(&format!("DELETE FROM {} WHERE id = ?", fx.table))
            .bind(i)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(fx.unpublished().await, 1000);

    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    let running = Running::start(fx.config(), &hub).await;
    let events = next_events(&mut sub, 1000).await;
    assert_eq!(increasing_ids(&events).len(), 1000);
    let ops: Vec<&str> = events.iter().map(|e| e.type_name()).collect();
    assert_eq!(ops, [vec!["insert"; 500], vec!["update"; 300], vec!["delete"; 200]].concat());
    assert_quiet(&mut sub, Duration::from_millis(300)).await;
    running.stop().await;
    assert_eq!(fx.unpublished().await, 0);

    // A second source finds nothing left to publish, and still publishes what comes next.
    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    let running = Running::start(fx.config(), &hub).await;
    assert_quiet(&mut sub, Duration::from_millis(500)).await;
    fx.sql(&format!("INSERT INTO {} (id, n) VALUES (1000, 1)", fx.table)).await;
    let event = next_event(&mut sub).await;
    assert_eq!(data(&event)["new"], json!({"id": 1000, "n": 1}));
    assert!(data(&event)["id"].as_i64() > data(&events[999])["id"].as_i64());

    running.stop().await;
    fx.cleanup().await;
}

/// SQLite has one writer at a time, so two transactions cannot commit out of id order; what it
/// allows is the other half: a write transaction left open across many polls is not skipped
/// once it commits.
#[tokio::test]
async fn a_late_commit_is_not_skipped() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY, label TEXT").await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    let running = Running::start(fx.config(), &hub).await;

    fx.sql(&format!("INSERT INTO {} VALUES (1, 'before')", fx.table)).await;
    let before = next_event(&mut sub).await;

    let mut t1 = fx.pool.acquire().await.unwrap();
    sqlx::raw_sql(&format!("BEGIN IMMEDIATE; INSERT INTO {} VALUES (2, 'late')", fx.table))
        .execute(&mut *t1)
        .await
        .unwrap();
    // The tailer polls every 50 ms and sees nothing while T1 is open.
    assert_quiet(&mut sub, Duration::from_millis(500)).await;
    sqlx::raw_sql("COMMIT").execute(&mut *t1).await.unwrap();
    drop(t1);
    let late = next_event(&mut sub).await;
    assert_eq!(data(&late)["new"], json!({"id": 2, "label": "late"}));
    assert!(data(&late)["id"].as_i64() > data(&before)["id"].as_i64());

    fx.sql(&format!("INSERT INTO {} VALUES (3, 'after')", fx.table)).await;
    assert_eq!(data(&*next_event(&mut sub).await)["new"]["label"], "after");

    running.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn a_large_text_arrives_intact() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY, body TEXT").await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    let running = Running::start(fx.config(), &hub).await;

    let body = large_text(100 * 1024);
    sqlx::query(&format!("INSERT INTO {} VALUES (1, ?)", fx.table))
        .bind(&body)
        .execute(&fx.pool)
        .await
        .unwrap();
    let event = next_event(&mut sub).await;
    assert_eq!(data(&event)["new"]["body"].as_str(), Some(body.as_str()));

    running.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn quiesce_publishes_pending_changes_and_returns_a_cursor_after_them() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY, label TEXT").await;
    let hub = test_hub();
    // A tailer that, after its first pass, would not look again for an hour.
    let running = Running::start(fx.config().poll_interval(Duration::from_secs(3600)), &hub).await;
    // That first pass comes right after it goes live; nothing shows when it is over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    for id in 1..=3 {
        fx.sql(&format!("INSERT INTO {} VALUES ({id}, 'pending')", fx.table)).await;
    }
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    assert_eq!(fx.unpublished().await, 3);

    let guard = running.source.quiesce(&hub).await.unwrap();
    let cursor = guard.cursor();
    // Published before quiesce returned...
    let published = hub.fetch(&[fx.topic()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    assert_eq!(published.events.len(), 3);
    assert_eq!(fx.unpublished().await, 0);
    // ...and the cursor is after them.
    assert_eq!(cursor, published.events[2].cursor());
    let after = hub.fetch(&[fx.topic()], cursor, &FetchOptions::default()).await.unwrap();
    assert!(after.events.is_empty());
    drop(guard);
    assert_eq!(next_events(&mut sub, 3).await.len(), 3);

    // A subscriber starting from the cursor gets exactly what comes later.
    let mut from_cursor = hub.subscribe(&[fx.topic()], cursor).unwrap();
    fx.sql(&format!("INSERT INTO {} VALUES (4, 'later')", fx.table)).await;
    let guard = running.source.quiesce(&hub).await.unwrap();
    let later = next_event(&mut from_cursor).await;
    assert_eq!(data(&later)["new"], json!({"id": 4, "label": "later"}));
    assert_eq!(guard.cursor(), later.cursor());
    drop(guard);

    running.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn quiesce_pauses_the_tailer_and_works_without_one() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY").await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();

    // No tailer running: quiesce publishes by itself.
    fx.sql(&format!("INSERT INTO {} VALUES (1)", fx.table)).await;
    let idle = Source::new(fx.config()).unwrap();
    let guard = idle.quiesce(&hub).await.unwrap();
    let first = next_event(&mut sub).await;
    assert_eq!(guard.cursor(), first.cursor());
    drop(guard);
    drop(idle);

    // While the guard is held, a running tailer publishes nothing.
    let running = Running::start(fx.config(), &hub).await;
    let guard = running.source.quiesce(&hub).await.unwrap();
    fx.sql(&format!("INSERT INTO {} VALUES (2)", fx.table)).await;
    assert_quiet(&mut sub, Duration::from_millis(400)).await;
    drop(guard);
    assert_eq!(data(&*next_event(&mut sub).await)["new"], json!({"id": 2}));

    running.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn tables_installed_later_and_custom_topics_are_picked_up() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY").await;
    let hub = test_hub();
    let running = Running::start(fx.config(), &hub).await;

    let other = format!("{}others", fx.names.prefix());
    fx.sql(&format!("CREATE TABLE {other} (id INTEGER PRIMARY KEY, ok BOOLEAN)")).await;
    fx.install(&[TableSpec::new(&other).unwrap().topic("custom.others").unwrap()]).await;
    let mut sub = hub.subscribe(&[topic("custom.others")], Cursor::Now).unwrap();
    fx.sql(&format!("INSERT INTO {other} VALUES (1, 1)")).await;
    let event = next_event(&mut sub).await;
    assert_eq!(data(&event)["new"], json!({"id": 1, "ok": true}));

    // After ALTER TABLE, a re-install brings the new column (and its type fix).
    fx.sql(&format!("ALTER TABLE {other} ADD COLUMN flag BOOLEAN")).await;
    fx.install(&[TableSpec::new(&other).unwrap().topic("custom.others").unwrap()]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the tailer's list of tables may be a second old
    fx.sql(&format!("UPDATE {other} SET flag = 0")).await;
    let event = next_event(&mut sub).await;
    assert_eq!(data(&event)["new"], json!({"id": 1, "ok": true, "flag": false}));

    running.stop().await;
    uninstall(&fx.url(), &fx.names, Some(&[other.clone()]), false).await.unwrap();
    fx.sql(&format!("DROP TABLE {other}")).await;
    fx.cleanup().await;
}

#[tokio::test]
async fn a_malformed_change_is_skipped_without_stalling() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY").await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    fx.sql(&format!(
        "INSERT INTO \"{}\" (table_name, op, new_row) VALUES ('{}', 'insert', '{{not json')",
        fx.names.outbox(),
        fx.table
    ))
    .await;
    fx.sql(&format!("INSERT INTO {} VALUES (1)", fx.table)).await;
    let running = Running::start(fx.config(), &hub).await;
    assert_eq!(data(&*next_event(&mut sub).await)["new"], json!({"id": 1}));
    // Both marked, the bad one too, right after the batch.
    eventually("both changes are marked published", async || fx.unpublished().await == 0).await;
    running.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn published_changes_are_pruned_after_retention() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY").await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    let running = Running::start(fx.config().retention(Duration::ZERO), &hub).await;
    for id in 1..=3 {
        fx.sql(&format!("INSERT INTO {} VALUES ({id})", fx.table)).await;
    }
    next_events(&mut sub, 3).await;
    let outbox = format!("SELECT count(*) FROM \"{}\"", fx.names.outbox());
    eventually("the outbox is pruned", async || fx.count(&outbox).await == 0).await;
    running.stop().await;
    fx.cleanup().await;
}

#[tokio::test]
async fn install_plans_and_errors() {
    let file = TempSqlite::new("sq");
    let names = SourceNames::with_prefix(&unique_prefix("sq")).unwrap();
    let missing = TableSpec::new("no_such_table").unwrap();
    let err = install(&file.url(), &names, &[missing], false).await.unwrap_err();
    assert!(matches!(err, SourceError::NoSuchTable(ref t) if t == "no_such_table"), "{err}");

    // A dry run returns the SQL and changes nothing.
    let plan = install(&file.url(), &names, &[], true).await.unwrap();
    assert!(plan[0].starts_with(&format!("CREATE TABLE IF NOT EXISTS \"{}\"", names.outbox())), "{plan:?}");
    let pool = SqlitePool::connect(&file.url()).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master").fetch_one(&pool).await.unwrap();
    assert_eq!(tables, 0);
    // Uninstalling what was never installed is harmless.
    uninstall(&file.url(), &names, None, false).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn uninstalled_tables_write_without_capture() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY").await;
    uninstall(&fx.url(), &fx.names, Some(&[fx.table.clone()]), false).await.unwrap();
    fx.sql(&format!("INSERT INTO {} VALUES (1)", fx.table)).await;
    let outbox = format!("SELECT count(*) FROM \"{}\"", fx.names.outbox());
    assert_eq!(fx.count(&outbox).await, 0);
    let watch = format!("SELECT count(*) FROM \"{}\"", fx.names.watch());
    assert_eq!(fx.count(&watch).await, 0);
    fx.cleanup().await;
}

#[tokio::test]
async fn failures_show_in_state_and_run_ends_with_the_hub() {
    // A file in a directory that does not exist cannot be opened.
    let url = "sqlite:/nonexistent-pushgate-dir/x.db";
    let source = std::sync::Arc::new(Source::new(SourceConfig::new(url)).unwrap());
    assert_eq!(source.state(), SourceState::Connecting);
    assert_eq!(source.url_redacted(), url);
    let hub = Hub::new();
    let task = tokio::spawn({
        let (source, hub) = (source.clone(), hub.clone());
        async move { source.run(hub).await }
    });
    eventually(
        "the source reports retrying",
        async || matches!(source.state(), SourceState::Retrying { attempt, .. } if attempt >= 2),
    )
    .await;
    assert!(source.state().to_string().starts_with("retrying (attempt "), "{}", source.state());
    hub.close();
    tokio::time::timeout(WAIT, task).await.expect("run ends once the hub closes").unwrap();

    assert!(matches!(Source::new(SourceConfig::new("redis://x")), Err(SourceError::Config(_))));
    if !cfg!(feature = "mysql") {
        let err = Source::new(SourceConfig::new("mariadb://u:p@h/db")).unwrap_err();
        assert!(err.to_string().contains("`mysql` feature"), "{err}");
    }
}

#[tokio::test]
async fn run_ends_promptly_when_the_hub_closes() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY").await;
    let hub = test_hub();
    let source =
        std::sync::Arc::new(Source::new(fx.config().poll_interval(Duration::from_secs(3600))).unwrap());
    let task = tokio::spawn({
        let (source, hub) = (source.clone(), hub.clone());
        async move { source.run(hub).await }
    });
    eventually("the source is live", async || source.state().is_live()).await;
    hub.close();
    tokio::time::timeout(Duration::from_secs(2), task).await.expect("run ends at once").unwrap();
    fx.cleanup().await;
}

/// Two processes on one SQLite file: the first holds the lease file's lock and publishes, the
/// second stands by, its snapshots wait for the leader, and it takes over when the leader dies.
#[tokio::test]
async fn one_tailer_leads_and_the_standby_takes_over_when_it_dies() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY").await;
    let config = fx.config().lease_timeout(Duration::from_secs(2));
    let (leader, standby) = leader_and_standby(config.clone(), config).await;
    let mut at_leader = leader.hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    let mut at_standby = standby.hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    fx.sql(&format!("INSERT INTO {} (id) VALUES (1), (2), (3)", fx.table)).await;
    let first = increasing_ids(&next_events(&mut at_leader, 3).await);
    assert_quiet(&mut at_standby, Duration::from_millis(300)).await;

    // A snapshot on the standby publishes nothing itself: it waits until the leader has.
    fx.sql(&format!("INSERT INTO {} (id) VALUES (4)", fx.table)).await;
    let guard = timeout(WAIT, standby.source.quiesce(&standby.hub)).await.unwrap().unwrap();
    assert_eq!(fx.unpublished().await, 0);
    drop(guard);
    assert_eq!(data(&*next_event(&mut at_leader).await)["new"]["id"], json!(4));
    assert_quiet(&mut at_standby, Duration::from_millis(200)).await;

    leader.crash().await;
    standby.wait_for(Duration::from_secs(2), "live after the leader died", SourceState::is_live).await;
    fx.sql(&format!("INSERT INTO {} (id) VALUES (5), (6)", fx.table)).await;
    let after = increasing_ids(&next_events(&mut at_standby, 2).await);
    assert!(after[0] > first[2], "{first:?} then {after:?}");
    assert_quiet(&mut at_standby, Duration::from_millis(200)).await;
    standby.stop().await;
    fx.cleanup().await;
}

/// An outbox of an earlier release (without the hub columns) stops the tailer before it
/// publishes anything it could not mark, saying what to do; `install` repairs it.
#[tokio::test]
async fn an_outdated_outbox_is_reported_until_installed_again() {
    let fx = Fixture::new("id INTEGER PRIMARY KEY").await;
    fx.sql(&format!("DROP INDEX \"{}_history\"", fx.names.outbox())).await;
    for column in ["topic", "hub_epoch", "hub_position", "hub_seq", "hub_ts"] {
        fx.sql(&format!("ALTER TABLE \"{}\" DROP COLUMN {column}", fx.names.outbox())).await;
    }
    fx.sql(&format!("INSERT INTO {} VALUES (1)", fx.table)).await;
    let hub = test_hub();
    let mut sub = hub.subscribe(&[fx.topic()], Cursor::Now).unwrap();
    let running = Running::spawn(fx.config(), &hub);
    running
        .wait_for(WAIT, "told to install again", |state| {
            matches!(state, SourceState::Retrying { error, .. } if error.contains("pushgate db install"))
        })
        .await;
    assert_quiet(&mut sub, Duration::from_millis(200)).await;
    fx.install(&[TableSpec::new(&fx.table).unwrap()]).await;
    assert_eq!(data(&*next_event(&mut sub).await)["new"]["id"], json!(1));
    running.stop().await;
    fx.cleanup().await;
}
