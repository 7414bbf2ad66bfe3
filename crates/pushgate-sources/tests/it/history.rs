//! What the tailer records on each published outbox row (topic, epoch, position, `seq`,
//! timestamp) and what that gives, on each database: the outbox answers a cursor older than the
//! hub's memory (a history tier), a restarted hub resuming its epoch continues each topic's
//! `seq`, a change published again after a crash is a replay of the original rather than a
//! second event, and `install` upgrades an outbox made before these columns.
//! PostgreSQL and MariaDB fail when unreachable (skip visibly with `PUSHGATE_SKIP_DB=1`).
#![cfg(all(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::{Running, TempSqlite, data, increasing_ids, next_events, require_db, unique_prefix};
use pushgate_hub::{Cursor, Epoch, FetchOptions, HistoryLimit, Hub, Item, TopicName};
use pushgate_sources::{Source, SourceConfig, SourceNames, SourceState, TableSpec, install};
use serde_json::json;
use sqlx::{MySqlPool, PgPool, SqlitePool};

/// The application's side of one test: a table `<prefix>t (id, n)` with triggers, in its own
/// names, on one of the three databases.
struct Db {
    url: String,
    names: SourceNames,
    table: String,
    pool: Pool,
    _file: Option<TempSqlite>,
}

enum Pool {
    Pg(PgPool),
    My(MySqlPool),
    Lite(SqlitePool),
}

impl Db {
    /// `kind` is `postgres`, `mysql` or `sqlite`; `None` when the server is unreachable (skipped).
    async fn new(kind: &str) -> Option<Self> {
        let prefix = unique_prefix("hi");
        let table = format!("{prefix}t");
        let (url, pool, file) = match kind {
            "postgres" => {
                let url = std::env::var("PUSHGATE_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
                if !require_db(&url).await {
                    return None;
                }
                let pool = Pool::Pg(PgPool::connect(&url).await.unwrap());
                (url, pool, None)
            }
            "mysql" => {
                let url = std::env::var("PUSHGATE_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
                if !require_db(&url).await {
                    return None;
                }
                let pool = Pool::My(MySqlPool::connect(&url).await.unwrap());
                (url, pool, None)
            }
            _ => {
                let file = TempSqlite::new("hi");
                let url = format!("{}?mode=rwc", file.url());
                let pool = Pool::Lite(SqlitePool::connect(&url).await.unwrap());
                (file.url(), pool, Some(file))
            }
        };
        let db = Self { url, names: SourceNames::with_prefix(&prefix).unwrap(), table, pool, _file: file };
        db.sql(&format!("CREATE TABLE {} (id INTEGER PRIMARY KEY, n INTEGER)", db.table)).await;
        Some(db)
    }

    async fn install(&self) -> Vec<String> {
        install(&self.url, &self.names, &[TableSpec::new(&self.table).unwrap()], false).await.unwrap()
    }

    async fn sql(&self, statement: &str) {
        match &self.pool {
            Pool::Pg(pool) => drop(sqlx::raw_sql(statement).execute(pool).await.unwrap()),
            Pool::My(pool) => drop(sqlx::raw_sql(statement).execute(pool).await.unwrap()),
            Pool::Lite(pool) => drop(sqlx::raw_sql(statement).execute(pool).await.unwrap()),
        }
    }

    async fn count(&self, query: &str) -> i64 {
        match &self.pool {
            Pool::Pg(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
            Pool::My(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
            Pool::Lite(pool) => sqlx::query_scalar(query).fetch_one(pool).await.unwrap(),
        }
    }

    /// `n` inserts, one statement (ids `from..from + n`).
    async fn insert(&self, from: i64, n: i64) {
        let values: Vec<String> = (from..from + n).map(|id| format!("({id}, {id})")).collect();
        self.sql(&format!("INSERT INTO {} (id, n) VALUES {}", self.table, values.join(", "))).await;
    }

    fn topic(&self) -> TopicName {
        TopicName::new(&format!("db.{}", self.table)).unwrap()
    }

    fn config(&self) -> SourceConfig {
        SourceConfig::new(&self.url)
            .names(self.names.clone())
            .poll_interval(Duration::from_millis(50))
            .lease_timeout(Duration::from_secs(2))
    }

    fn outbox(&self) -> &str {
        self.names.outbox()
    }

    async fn cleanup(self) {
        pushgate_sources::uninstall(&self.url, &self.names, None, false).await.unwrap();
        self.sql(&format!("DROP TABLE {}", self.table)).await;
    }
}

/// A hub keeping only `memory` events per topic, resuming `resume` when given, with the outbox
/// of `db` as its history tier.
fn hub(memory: usize, resume: Option<(Epoch, u64)>, db: &Db) -> Hub {
    let mut builder = Hub::builder().history(HistoryLimit::default().max_events(memory));
    if let Some((epoch, floor)) = resume {
        builder = builder.resume(epoch, floor);
    }
    builder.tier(Source::new(db.config()).unwrap().history_tier()).build()
}

/// Every recorded row matches the event it became, and a cursor older than memory is answered
/// from the outbox (no reset), on every transport's read path (subscription and fetch).
async fn published_changes_are_recorded_and_served_as_history(kind: &str) {
    let Some(db) = Db::new(kind).await else { return };
    db.install().await;
    let hub = hub(10, None, &db);
    let mut live = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let running = Running::start(db.config(), &hub).await;
    db.insert(1, 30).await;
    let events = next_events(&mut live, 30).await;
    increasing_ids(&events);
    common::eventually("every change is marked", async || {
        db.count(&format!("SELECT count(*) FROM {} WHERE published_at IS NULL", db.outbox())).await == 0
    })
    .await;
    let recorded = db
        .count(&format!(
            "SELECT count(*) FROM {} WHERE topic = '{}' AND hub_epoch = {} AND hub_seq = id - (SELECT min(id) - 1 FROM {0}) \
             AND hub_position IS NOT NULL AND hub_ts > 0",
            db.outbox(),
            db.topic(),
            hub.epoch().as_u32()
        ))
        .await;
    assert_eq!(recorded, 30, "each row records its topic, epoch and seq");

    // Memory holds the last 10; a reader from before the first gets all 30 from the outbox.
    let oldest = Cursor::at(hub.epoch(), events[0].position() - 1);
    let mut sub = hub.subscribe(&[db.topic()], oldest).unwrap();
    let replayed = next_events(&mut sub, 30).await;
    for (a, b) in replayed.iter().zip(&events) {
        assert_eq!((a.seq(), a.position(), a.data().as_str()), (b.seq(), b.position(), b.data().as_str()));
        assert_eq!((a.type_name(), a.timestamp_ms()), (b.type_name(), b.timestamp_ms()));
    }
    let batch = hub.fetch(&[db.topic()], oldest, &FetchOptions::default().limit(100)).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    assert_eq!(batch.events.len(), 30);

    // Retention took the first 5: a reader from before them is told it missed exactly those.
    db.sql(&format!("DELETE FROM {} WHERE hub_seq <= 5", db.outbox())).await;
    let mut sub = hub.subscribe(&[db.topic()], oldest).unwrap();
    match tokio::time::timeout(common::WAIT, sub.recv()).await.unwrap().unwrap() {
        Item::Reset(reset) => assert_eq!(reset.topics()[0].resume_seq, 6, "{reset:?}"),
        other => panic!("expected a reset, got {other:?}"),
    }
    assert_eq!(next_events(&mut sub, 25).await[0].seq(), 6);
    running.stop().await;
    db.cleanup().await;
}

/// A hub restarted on the same epoch (as the gateway does with its state file) continues each
/// topic's `seq` from the outbox, and a reader from before the restart misses nothing.
async fn a_restarted_hub_continues_from_the_outbox(kind: &str) {
    let Some(db) = Db::new(kind).await else { return };
    db.install().await;
    let epoch = Epoch::random();
    let first = hub(1000, Some((epoch, 0)), &db);
    let mut sub = first.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let running = Running::start(db.config(), &first).await;
    db.insert(1, 5).await;
    let before = next_events(&mut sub, 5).await;
    running.stop().await;
    first.close();

    // The restart: same epoch, positions above the last one, memory empty.
    let floor = before[4].position() + 1000;
    let second = hub(1000, Some((epoch, floor)), &db);
    let running = Running::start(db.config(), &second).await;
    let mut resumed = second.subscribe(&[db.topic()], before[1].cursor()).unwrap();
    db.insert(6, 2).await;
    let after = next_events(&mut resumed, 5).await;
    let seqs: Vec<u64> = after.iter().map(|e| e.seq()).collect();
    assert_eq!(seqs, [3, 4, 5, 6, 7], "3..5 from the outbox, then the new ones numbered on");
    assert!(after[3].position() > floor);
    assert_eq!(data(&after[4])["new"]["id"], json!(7));
    running.stop().await;
    second.close();
    db.cleanup().await;
}

/// A topic quiet long enough for the hub to forget it (its events expired, no reader held it)
/// goes on with the next `seq`, not 1: the tailer restores it before publishing again, as
/// `Hub::restore_topic` asks. A reader that had the last event before the quiet spell gets the
/// new one as the next, with no reset (a client that drops `seq` it has seen would lose it).
async fn a_topic_the_hub_forgot_while_quiet_continues_its_seq(kind: &str) {
    let Some(db) = Db::new(kind).await else { return };
    db.install().await;
    let history = HistoryLimit::default().max_age(Some(Duration::from_millis(50)));
    let hub = Hub::builder()
        .history(history)
        .resume(Epoch::random(), 0)
        .tier(Source::new(db.config()).unwrap().history_tier())
        .build();
    let running = Running::start(db.config(), &hub).await;
    db.insert(1, 3).await;
    let mut last = None;
    common::eventually("three changes published", async || {
        let batch = hub.fetch(&[db.topic()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
        last = batch.events.last().cloned();
        batch.events.len() == 3
    })
    .await;
    let last = last.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(hub.sweep() >= 1, "its events expired and nobody reads it: the hub forgot it");
    db.insert(4, 1).await;
    let mut sub = hub.subscribe(&[db.topic()], last.cursor()).unwrap();
    let next = next_events(&mut sub, 1).await;
    assert_eq!((next[0].seq(), data(&next[0])["new"]["id"].clone()), (4, json!(4)));
    running.stop().await;
    db.cleanup().await;
}

/// Changes the hub took but the outbox still lists as unpublished (a crash between the two)
/// are published again with the same idempotency keys: the hub answers each with the original
/// and stores nothing twice.
async fn changes_published_again_are_replays(kind: &str) {
    let Some(db) = Db::new(kind).await else { return };
    db.install().await;
    let hub = hub(1000, None, &db);
    let mut sub = hub.subscribe(&[db.topic()], Cursor::Now).unwrap();
    let running = Running::start(db.config(), &hub).await;
    db.insert(1, 3).await;
    let first = next_events(&mut sub, 3).await;
    running.stop().await;
    // As if the tailer had died before marking them.
    db.sql(&format!("UPDATE {} SET published_at = NULL", db.outbox())).await;
    let running = Running::start(db.config(), &hub).await;
    db.insert(4, 1).await;
    let next = next_events(&mut sub, 1).await;
    assert_eq!(data(&next[0])["new"]["id"], json!(4), "the three again would have come first");
    assert_eq!(next[0].seq(), 4);
    assert_eq!(hub.stats().replayed, 3);
    common::assert_quiet(&mut sub, Duration::from_millis(200)).await;
    running.stop().await;
    let positions = db
        .count(&format!(
            "SELECT count(DISTINCT hub_position) FROM {} WHERE hub_position <= {}",
            db.outbox(),
            first[2].position()
        ))
        .await;
    assert_eq!(positions, 3, "the replays recorded the original positions");
    db.cleanup().await;
}

/// An outbox made before the hub columns gets them from `install`, in place, keeping its rows;
/// the dry run shows the upgrade, and a second install has nothing left to add.
async fn install_upgrades_an_old_outbox_in_place(kind: &str) {
    let Some(db) = Db::new(kind).await else { return };
    let (id, text, stamp) = match kind {
        "postgres" => ("id BIGSERIAL PRIMARY KEY", "jsonb", "timestamptz"),
        "mysql" => ("id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY", "LONGTEXT", "DATETIME(6)"),
        _ => ("id INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "TEXT"),
    };
    // The outbox as the previous release created it.
    db.sql(&format!(
        "CREATE TABLE {} ({id}, table_name VARCHAR(64) NOT NULL, op VARCHAR(6) NOT NULL, new_row {text}, \
         old_row {text}, changed_at {stamp}, published_at {stamp})",
        db.outbox()
    ))
    .await;
    db.sql(&format!(
        "INSERT INTO {} (table_name, op, new_row) VALUES ('{}', 'insert', '{{\"id\": 0}}')",
        db.outbox(),
        db.table
    ))
    .await;
    let plan = install(&db.url, &db.names, &[TableSpec::new(&db.table).unwrap()], true).await.unwrap();
    let alters: Vec<&String> = plan.iter().filter(|s| s.starts_with("ALTER TABLE")).collect();
    assert!(!alters.is_empty() && alters.iter().any(|s| s.contains("hub_position")), "{plan:#?}");
    let plan = db.install().await;
    assert!(plan.iter().any(|s| s.starts_with("ALTER TABLE")));
    assert!(
        !install(&db.url, &db.names, &[], true).await.unwrap().iter().any(|s| s.starts_with("ALTER TABLE")),
        "nothing left to upgrade"
    );
    // The old row survived and the tailer publishes it (and the next) into the new columns.
    let hub = hub(1000, None, &db);
    let mut sub = hub.subscribe(&[db.topic()], Cursor::Oldest).unwrap();
    let running = Running::start(db.config(), &hub).await;
    db.insert(1, 1).await;
    let events = next_events(&mut sub, 2).await;
    assert_eq!((data(&events[0])["new"]["id"].clone(), events[1].seq()), (json!(0), 2));
    running.stop().await;
    assert_eq!(db.count(&format!("SELECT count(*) FROM {} WHERE hub_seq IS NOT NULL", db.outbox())).await, 2);
    db.cleanup().await;
}

/// A database never prepared by `install` makes the tailer say so, naming the missing table and
/// `pushgate db install`, rather than fail each attempt with the database's own error; `install`
/// then lets it go live.
async fn a_database_never_installed_says_to_install(kind: &str) {
    let Some(db) = Db::new(kind).await else { return };
    let hub = hub(1000, None, &db);
    let running = Running::spawn(db.config(), &hub);
    running
        .wait_for(common::WAIT, "told to install", |state| {
            matches!(state, SourceState::Retrying { error, .. }
                if error.contains("pushgate db install") && error.contains(db.names.watch()))
        })
        .await;
    db.install().await;
    running.wait_live().await;
    running.stop().await;
    db.cleanup().await;
}

macro_rules! on_every_database {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $test() { super::$test("postgres").await })*
        }
        mod mysql {
            $(#[tokio::test] async fn $test() { super::$test("mysql").await })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::$test("sqlite").await })*
        }
    };
}

on_every_database!(
    published_changes_are_recorded_and_served_as_history,
    a_restarted_hub_continues_from_the_outbox,
    changes_published_again_are_replays,
    a_topic_the_hub_forgot_while_quiet_continues_its_seq,
    install_upgrades_an_old_outbox_in_place,
    a_database_never_installed_says_to_install,
);
