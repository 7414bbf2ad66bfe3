//! SQLite: triggers build each row image with `json_object`, enumerating the columns at install
//! time; blobs go through `hex()`, and booleans and `YYYY-MM-DD HH:MM:SS` timestamps are fixed
//! in Rust from the declared column types. The tailer polls the outbox.
//!
//! SQLite is dynamically typed, so the triggers are written never to fail the application's
//! write: a blob stored in a column not declared as one (where `json_object` would raise "JSON
//! cannot hold BLOB values") is rendered as text instead.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::SourceError;
use crate::model::{
    ColumnKind, HUB_COLUMNS, HistoryRow, Mark, OutboxRow, RecordedRow, SourceNames, TableSpec, TopicBounds,
    Watched, topic_bounds_queries, validate_identifier,
};

pub(crate) type Pool = sqlx::SqlitePool;

/// `strftime` format of the timestamps kept in the outbox: ISO-8601 UTC with milliseconds, so
/// text order is time order.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// An outbox row as selected: id, table, op, new row, old row.
type PendingRow = (i64, String, String, Option<String>, Option<String>);

/// Most rows marked by one `UPDATE` (six parameters each, under SQLite's oldest limit of 999).
const MARKS_PER_STATEMENT: usize = 150;

/// Opens `url`, creating the file if missing, in WAL mode (the application and the tailer read
/// and write concurrently) with a busy timeout (SQLite has one writer at a time).
pub(crate) async fn connect(url: &str) -> Result<Pool, SourceError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(pool)
}

pub(crate) async fn install_plan(
    pool: &Pool,
    names: &SourceNames,
    tables: &[TableSpec],
) -> Result<Vec<String>, SourceError> {
    let outbox = ident(names.outbox());
    let watch = ident(names.watch());
    let index = format!("{}_pending", names.outbox());
    validate_identifier(&index)?;
    let history = format!("{}_history", names.outbox());
    validate_identifier(&history)?;
    let mut plan = vec![format!(
        "CREATE TABLE IF NOT EXISTS {outbox} (\n  id INTEGER PRIMARY KEY AUTOINCREMENT,\n  table_name TEXT NOT NULL,\n  \
         op TEXT NOT NULL,\n  new_row TEXT,\n  old_row TEXT,\n  changed_at TEXT NOT NULL DEFAULT ({NOW}),\n  \
         published_at TEXT,\n  topic TEXT,\n  hub_epoch INTEGER,\n  hub_position INTEGER,\n  hub_seq INTEGER,\n  \
         hub_ts INTEGER\n)"
    )];
    // An outbox installed before the hub columns existed gets them (SQLite has no
    // `ADD COLUMN IF NOT EXISTS`, so the plan looks first).
    let present = if table_exists(pool, names.outbox()).await? {
        columns(pool, names.outbox()).await?.into_iter().map(|(name, _)| name).collect()
    } else {
        Vec::new()
    };
    for column in HUB_COLUMNS {
        if !present.is_empty() && !present.iter().any(|c| c == column) {
            let kind = if column == "topic" { "TEXT" } else { "INTEGER" };
            plan.push(format!("ALTER TABLE {outbox} ADD COLUMN {column} {kind}"));
        }
    }
    plan.extend([
        format!("CREATE INDEX IF NOT EXISTS {} ON {outbox} (published_at, id)", ident(&index)),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {outbox} (topic, hub_epoch, hub_position)",
            ident(&history)
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {watch} (\n  table_name TEXT PRIMARY KEY,\n  topic TEXT NOT NULL,\n  \
             installed_at TEXT NOT NULL DEFAULT ({NOW})\n)"
        ),
    ]);
    for spec in tables {
        let table = spec.table();
        let columns = columns(pool, table).await?;
        if columns.is_empty() {
            return Err(SourceError::NoSuchTable(table.to_owned()));
        }
        plan.push(format!(
            "INSERT INTO {watch} (table_name, topic, installed_at) VALUES ({}, {}, {NOW})\n  \
             ON CONFLICT (table_name) DO UPDATE SET topic = excluded.topic, installed_at = excluded.installed_at",
            literal(table),
            literal(&spec.topic_name()),
        ));
        // A plain function rather than a closure: a closure taking `&str`, alive across the next
        // iteration's `.await`, makes this future not `Send` (a rustc limitation with
        // higher-ranked closures in async fns).
        let captures = [
            ("ins", "INSERT", "insert", row_image(&columns, "NEW"), "NULL".to_owned()),
            ("upd", "UPDATE", "update", row_image(&columns, "NEW"), row_image(&columns, "OLD")),
            ("del", "DELETE", "delete", "NULL".to_owned(), row_image(&columns, "OLD")),
        ];
        for (suffix, event, op, new_row, old_row) in captures {
            let trigger = ident(&names.trigger(table, suffix)?);
            plan.push(format!("DROP TRIGGER IF EXISTS {trigger}"));
            plan.push(format!(
                "CREATE TRIGGER {trigger} AFTER {event} ON {} FOR EACH ROW BEGIN\n  \
                 INSERT INTO {outbox} (table_name, op, new_row, old_row) VALUES ({}, '{op}', {new_row}, {old_row});\nEND",
                ident(table),
                literal(table),
            ));
        }
    }
    Ok(plan)
}

/// `json_object(...)` of every column of `record` (`NEW` or `OLD`).
fn row_image(columns: &[(String, String)], record: &str) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|(name, declared)| format!("{}, {}", literal(name), column_json(record, name, declared)))
        .collect();
    format!("json_object(\n    {})", pairs.join(",\n    "))
}

pub(crate) async fn uninstall_plan(
    pool: &Pool,
    names: &SourceNames,
    tables: Option<&[String]>,
) -> Result<Vec<String>, SourceError> {
    let watch_exists = table_exists(pool, names.watch()).await?;
    let targets: Vec<String> = match tables {
        Some(tables) => tables.to_vec(),
        None => {
            // Every watched table, and any table still carrying one of our triggers (a watch
            // row deleted by hand must not leave triggers writing into a dropped outbox).
            let mut all: Vec<String> = if watch_exists {
                watched_tables(pool, names).await?.into_iter().map(|(table, _)| table).collect()
            } else {
                Vec::new()
            };
            let triggers: Vec<(String, String)> =
                sqlx::query_as("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
                    .fetch_all(pool)
                    .await?;
            for (trigger, table) in triggers {
                let ours = ["ins", "upd", "del"]
                    .iter()
                    .any(|suffix| names.trigger(&table, suffix).is_ok_and(|name| name == trigger));
                if ours && !all.contains(&table) {
                    all.push(table);
                }
            }
            all
        }
    };
    let mut plan = Vec::new();
    for table in &targets {
        validate_identifier(table)?;
        for suffix in ["ins", "upd", "del"] {
            plan.push(format!("DROP TRIGGER IF EXISTS {}", ident(&names.trigger(table, suffix)?)));
        }
    }
    match tables {
        Some(tables) if watch_exists => {
            for table in tables {
                plan.push(format!(
                    "DELETE FROM {} WHERE table_name = {}",
                    ident(names.watch()),
                    literal(table)
                ));
            }
        }
        Some(_) => {}
        None => {
            plan.push(format!("DROP TABLE IF EXISTS {}", ident(names.outbox())));
            plan.push(format!("DROP TABLE IF EXISTS {}", ident(names.watch())));
        }
    }
    Ok(plan)
}

/// How a transaction that writes starts: it takes the write lock at `BEGIN`, waiting for it
/// within the busy timeout. A deferred transaction that read first and then writes fails at
/// once with `database is locked` when another connection committed meanwhile (SQLite cannot
/// upgrade a stale read snapshot), which the busy timeout does not cover.
const WRITE_TRANSACTION: &str = "BEGIN IMMEDIATE";

/// Runs `statements` in one transaction: SQLite's DDL is transactional, so an install either
/// happens whole or not at all.
pub(crate) async fn execute(pool: &Pool, statements: &[String]) -> Result<(), SourceError> {
    let mut tx = pool.begin_with(WRITE_TRANSACTION).await?;
    for statement in statements {
        // Through the concrete connection: `raw_sql(..).execute(&mut *tx)` is generic over the
        // executor, and rustc then cannot prove this future `Send`.
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(statement)).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn watched(pool: &Pool, names: &SourceNames) -> Result<Vec<Watched>, SourceError> {
    let mut watched = Vec::new();
    for (table, topic) in watched_tables(pool, names).await? {
        let fixes: HashMap<String, ColumnKind> = columns(pool, &table)
            .await?
            .into_iter()
            .filter_map(|(name, declared)| Some((name, column_kind(&declared)?)))
            .collect();
        watched.push(Watched { table, topic, fixes });
    }
    Ok(watched)
}

pub(crate) async fn fetch_pending(
    pool: &Pool,
    names: &SourceNames,
    limit: i64,
) -> Result<Vec<OutboxRow>, SourceError> {
    let sql = format!(
        "SELECT id, table_name, op, new_row, old_row FROM {} WHERE published_at IS NULL ORDER BY id LIMIT ?",
        ident(names.outbox())
    );
    let rows: Vec<PendingRow> = sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(id, table, op, new_row, old_row)| OutboxRow { id, table, op, new_row, old_row })
        .collect())
}

/// Marks the rows of `marks` published, recording where each went in the hub: one `UPDATE …
/// FROM (VALUES …)` per chunk, all in one transaction.
pub(crate) async fn mark_published(
    pool: &Pool,
    names: &SourceNames,
    marks: &[Mark],
) -> Result<(), SourceError> {
    let mut tx = pool.begin_with(WRITE_TRANSACTION).await?;
    for chunk in marks.chunks(MARKS_PER_STATEMENT) {
        let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "WITH m (id, topic, epoch, position, seq, ts) AS (VALUES {values}) \
             UPDATE {outbox} SET published_at = {NOW}, topic = m.topic, hub_epoch = m.epoch, \
             hub_position = m.position, hub_seq = m.seq, hub_ts = m.ts FROM m WHERE {outbox}.id = m.id",
            outbox = ident(names.outbox())
        );
        let mut query = sqlx::query(&sql);
        for mark in chunk {
            let hub = mark.hub.as_ref();
            query = query
                .bind(mark.id)
                .bind(hub.map(|h| h.topic.clone()))
                .bind(hub.map(|h| h.epoch))
                .bind(hub.map(|h| h.position))
                .bind(hub.map(|h| h.seq))
                .bind(hub.map(|h| h.ts));
        }
        sqlx::Executor::execute(&mut *tx, query).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The database file's full path (SQLite is one machine), or a random name for a database in
/// memory, which no other process can open.
pub(crate) async fn identity(pool: &Pool) -> Result<Vec<String>, SourceError> {
    let file: Option<String> =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(pool)
            .await?;
    Ok(vec![match file.filter(|file| !file.is_empty()) {
        Some(file) => file,
        None => format!("memory {:?}", std::collections::hash_map::RandomState::new()),
    }])
}

/// Each topic's newest `seq` and position recorded in `epoch`.
pub(crate) async fn last_seqs(
    pool: &Pool,
    names: &SourceNames,
    epoch: i64,
) -> Result<Vec<(String, i64, i64)>, SourceError> {
    let sql = format!(
        "SELECT topic, max(hub_seq), max(hub_position) FROM {} \
         WHERE hub_epoch = ? AND hub_position IS NOT NULL GROUP BY topic",
        ident(names.outbox())
    );
    Ok(sqlx::query_as(&sql).bind(epoch).fetch_all(pool).await?)
}

/// The recorded changes of `topics` in `epoch` within `(after, upto]`, in position order.
pub(crate) async fn history(
    pool: &Pool,
    names: &SourceNames,
    epoch: i64,
    topics: &[String],
    (after, upto): (i64, i64),
    limit: i64,
) -> Result<Vec<HistoryRow>, SourceError> {
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, table_name, op, new_row, old_row, topic, hub_seq, hub_position, hub_ts FROM {} \
         WHERE topic IN ({}) AND hub_epoch = ? AND hub_position > ? AND hub_position <= ? \
         ORDER BY hub_position LIMIT ?",
        ident(names.outbox()),
        vec!["?"; topics.len()].join(", ")
    );
    let mut query = sqlx::query_as::<_, RecordedRow>(&sql);
    for topic in topics {
        query = query.bind(topic);
    }
    let rows = query.bind(epoch).bind(after).bind(upto).bind(limit).fetch_all(pool).await?;
    Ok(rows.into_iter().map(HistoryRow::from).collect())
}

/// What the outbox holds of `topic` in `epoch` around `after`.
pub(crate) async fn topic_bounds(
    pool: &Pool,
    names: &SourceNames,
    epoch: i64,
    topic: &str,
    after: i64,
) -> Result<TopicBounds, SourceError> {
    let [before, first] = topic_bounds_queries(&ident(names.outbox()));
    Ok(TopicBounds {
        before: sqlx::query_as(&before).bind(topic).bind(epoch).bind(after).fetch_optional(pool).await?,
        first: sqlx::query_as(&first).bind(topic).bind(epoch).fetch_optional(pool).await?,
    })
}

pub(crate) async fn last_id(pool: &Pool, names: &SourceNames) -> Result<Option<i64>, SourceError> {
    let sql = format!("SELECT max(id) FROM {}", ident(names.outbox()));
    Ok(sqlx::query_scalar(&sql).fetch_one(pool).await?)
}

pub(crate) async fn pending_through(pool: &Pool, names: &SourceNames, id: i64) -> Result<bool, SourceError> {
    let sql =
        format!("SELECT id FROM {} WHERE published_at IS NULL AND id <= ? LIMIT 1", ident(names.outbox()));
    let found: Option<i64> = sqlx::query_scalar(&sql).bind(id).fetch_optional(pool).await?;
    Ok(found.is_some())
}

pub(crate) async fn prune(
    pool: &Pool,
    names: &SourceNames,
    older_than: Duration,
) -> Result<u64, SourceError> {
    let sql = format!(
        "DELETE FROM {} WHERE published_at IS NOT NULL AND published_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
        ident(names.outbox())
    );
    let modifier = format!("-{:.3} seconds", older_than.as_secs_f64());
    Ok(sqlx::query(&sql).bind(modifier).execute(pool).await?.rows_affected())
}

/// How a column's declared type needs its JSON fixed, by SQLite's own reading of type names
/// (a declared type is free text; `BOOLEAN`, `DATETIME` and `BLOB` are conventions).
fn column_kind(declared: &str) -> Option<ColumnKind> {
    let declared = declared.to_ascii_uppercase();
    if declared.contains("BLOB") {
        Some(ColumnKind::HexBlob)
    } else if declared.contains("BOOL") {
        Some(ColumnKind::Bool)
    } else if declared.contains("DATE") || declared.contains("TIME") {
        Some(ColumnKind::SpacedDateTime)
    } else {
        None
    }
}

/// The trigger's expression for one column of the `NEW` or `OLD` record.
fn column_json(record: &str, column: &str, declared: &str) -> String {
    let value = format!("{record}.{}", ident(column));
    if column_kind(declared) == Some(ColumnKind::HexBlob) {
        format!("CASE WHEN {value} IS NULL THEN NULL ELSE hex({value}) END")
    } else {
        format!("CASE WHEN typeof({value}) = 'blob' THEN CAST({value} AS TEXT) ELSE {value} END")
    }
}

/// The columns of `table` and their declared types, in table order (empty if no such table).
async fn columns(pool: &Pool, table: &str) -> Result<Vec<(String, String)>, SourceError> {
    if !table_exists(pool, table).await? {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as("SELECT name, type FROM pragma_table_info(?) ORDER BY cid")
        .bind(table)
        .fetch_all(pool)
        .await?)
}

async fn table_exists(pool: &Pool, table: &str) -> Result<bool, SourceError> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE")
            .bind(table)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

/// `(table, topic)` of every watched table.
async fn watched_tables(pool: &Pool, names: &SourceNames) -> Result<Vec<(String, String)>, SourceError> {
    let sql = format!("SELECT table_name, topic FROM {} ORDER BY table_name", ident(names.watch()));
    Ok(sqlx::query_as(&sql).fetch_all(pool).await?)
}

/// A quoted identifier. Names are validated before they get here; quoting is the second fence.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
