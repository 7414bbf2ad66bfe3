//! PostgreSQL: one trigger function per watched table writes `to_jsonb` of the row into a
//! `jsonb` outbox and `NOTIFY`s the channel named like the outbox; the tailer `LISTEN`s only to
//! wake up early and still polls at its interval.
//!
//! Everything is installed into the installing connection's current schema (the first existing
//! schema of its `search_path`; watched tables must live there too), and the trigger function
//! names its objects with that schema. The function runs
//! - `SECURITY DEFINER`, as the installing role: the application's roles need no grant on the
//!   outbox, and a write never fails for want of one; with `search_path = pg_catalog, pg_temp`,
//!   as such functions should, so no other schema's objects can stand in for built-ins;
//! - with `timezone = 'UTC'`, so `timestamptz` values read the same whoever wrote the row.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use crate::error::SourceError;
use crate::model::{
    HUB_COLUMNS, HistoryRow, Mark, OutboxRow, RecordedRow, SourceNames, TableSpec, TopicBounds, Watched,
    validate_identifier,
};

pub(crate) type Pool = sqlx::PgPool;

/// `jsonb_build_object` takes at most 100 arguments: overlay bytea columns 40 at a time.
const OVERLAY_CHUNK: usize = 40;

/// Key of the advisory lock that serializes installs and uninstalls: two concurrent
/// `CREATE TABLE IF NOT EXISTS` of one table can otherwise both try to create it.
const INSTALL_LOCK: i64 = 0x7075_7368_6761_7465; // "pushgate"

pub(crate) async fn connect(url: &str) -> Result<Pool, SourceError> {
    let mut options: PgConnectOptions =
        url.parse().map_err(|err| SourceError::Config(format!("PostgreSQL URL: {err}")))?;
    // Name the connections so an operator can find them in pg_stat_activity.
    if options.get_application_name().is_none() {
        options = options.application_name("pushgate");
    }
    // One direct attempt first: a pool retries a refused connection until its acquire timeout
    // and then reports only "pool timed out", hiding the reason an operator needs.
    sqlx::Connection::close(<sqlx::PgConnection as sqlx::Connection>::connect_with(&options).await?).await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(Duration::from_secs(300))
        .connect_with(options)
        .await?;
    Ok(pool)
}

pub(crate) async fn install_plan(
    pool: &Pool,
    names: &SourceNames,
    tables: &[TableSpec],
) -> Result<Vec<String>, SourceError> {
    let schema = current_schema(pool).await?;
    let outbox = qualified(&schema, names.outbox());
    let watch = qualified(&schema, names.watch());
    let pending_index = format!("{}_pending", names.outbox());
    validate_identifier(&pending_index)?;
    let history_index = format!("{}_history", names.outbox());
    validate_identifier(&history_index)?;

    let mut plan = vec![format!(
        "CREATE TABLE IF NOT EXISTS {outbox} (\n    \
             id BIGSERIAL PRIMARY KEY,\n    \
             table_name text NOT NULL,\n    \
             op text NOT NULL,\n    \
             new_row jsonb,\n    \
             old_row jsonb,\n    \
             changed_at timestamptz NOT NULL DEFAULT now(),\n    \
             published_at timestamptz,\n    \
             topic text,\n    \
             hub_epoch bigint,\n    \
             hub_position bigint,\n    \
             hub_seq bigint,\n    \
             hub_ts bigint\n\
         )"
    )];
    // An outbox installed before the hub columns existed gets them.
    let present = columns_of(pool, &schema, names.outbox()).await?;
    let missing: Vec<String> = HUB_COLUMNS
        .iter()
        .filter(|column| !present.is_empty() && !present.iter().any(|c| c == *column))
        .map(|column| {
            format!(
                "ADD COLUMN IF NOT EXISTS {column} {}",
                if *column == "topic" { "text" } else { "bigint" }
            )
        })
        .collect();
    if !missing.is_empty() {
        plan.push(format!("ALTER TABLE {outbox} {}", missing.join(", ")));
    }
    plan.extend([
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {outbox} (id) WHERE published_at IS NULL",
            quoted(&pending_index)
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {outbox} (topic, hub_epoch, hub_position) WHERE hub_position IS NOT NULL",
            quoted(&history_index)
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {watch} (\n    \
                 table_name text PRIMARY KEY,\n    \
                 topic text NOT NULL,\n    \
                 installed_at timestamptz NOT NULL DEFAULT now()\n\
             )"
        ),
    ]);

    for spec in tables {
        let table = spec.table();
        let capture = names.trigger(table, "capture")?;
        let binary = bytea_columns(pool, &schema, table).await?;
        let function = qualified(&schema, &capture);
        let target = qualified(&schema, table);
        plan.push(format!(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger\n\
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET timezone = 'UTC'\n\
             AS $pushgate$\n\
             DECLARE\n    \
                 v_new jsonb;\n    \
                 v_old jsonb;\n\
             BEGIN\n    \
                 IF TG_OP <> 'DELETE' THEN\n        \
                     v_new := to_jsonb(NEW){new_overlay};\n    \
                 END IF;\n    \
                 IF TG_OP <> 'INSERT' THEN\n        \
                     v_old := to_jsonb(OLD){old_overlay};\n    \
                 END IF;\n    \
                 INSERT INTO {outbox} (table_name, op, new_row, old_row)\n        \
                     VALUES ({table_literal}, lower(TG_OP), v_new, v_old);\n    \
                 PERFORM pg_notify({channel}, '');\n    \
                 RETURN NULL;\n\
             END\n\
             $pushgate$",
            new_overlay = bytea_overlay("NEW", &binary),
            old_overlay = bytea_overlay("OLD", &binary),
            table_literal = literal(table),
            channel = literal(names.outbox()),
        ));
        plan.push(format!("DROP TRIGGER IF EXISTS {} ON {target}", quoted(&capture)));
        plan.push(format!(
            "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {target}\n    \
                 FOR EACH ROW EXECUTE FUNCTION {function}()",
            quoted(&capture)
        ));
        plan.push(format!(
            "INSERT INTO {watch} (table_name, topic) VALUES ({}, {})\n    \
                 ON CONFLICT (table_name) DO UPDATE SET topic = EXCLUDED.topic, installed_at = now()",
            literal(table),
            literal(&spec.topic_name()),
        ));
    }
    Ok(plan)
}

pub(crate) async fn uninstall_plan(
    pool: &Pool,
    names: &SourceNames,
    tables: Option<&[String]>,
) -> Result<Vec<String>, SourceError> {
    let schema = current_schema(pool).await?;
    let outbox = qualified(&schema, names.outbox());
    let watch = qualified(&schema, names.watch());
    let watch_exists: bool =
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(&watch).fetch_one(pool).await?;
    let listed: Vec<String> = match tables {
        Some(tables) => tables.to_vec(),
        None if watch_exists => {
            sqlx::query_scalar(&format!("SELECT table_name FROM {watch} ORDER BY table_name"))
                .fetch_all(pool)
                .await?
        }
        None => Vec::new(),
    };

    let mut plan = Vec::new();
    for table in &listed {
        validate_identifier(table)?;
        let capture = names.trigger(table, "capture")?;
        // A trigger on a table dropped since went with it; IF EXISTS then only notices.
        plan.push(format!("DROP TRIGGER IF EXISTS {} ON {}", quoted(&capture), qualified(&schema, table)));
        plan.push(format!("DROP FUNCTION IF EXISTS {}()", qualified(&schema, &capture)));
        if watch_exists && tables.is_some() {
            plan.push(format!("DELETE FROM {watch} WHERE table_name = {}", literal(table)));
        }
    }
    if tables.is_none() {
        plan.push(format!("DROP TABLE IF EXISTS {outbox}"));
        plan.push(format!("DROP TABLE IF EXISTS {watch}"));
    }
    Ok(plan)
}

pub(crate) async fn execute(pool: &Pool, statements: &[String]) -> Result<(), SourceError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(INSTALL_LOCK).execute(&mut *tx).await?;
    for statement in statements {
        // Through the concrete connection: `raw_sql(..).execute(&mut *tx)` is generic over the
        // executor, and rustc then cannot prove this future `Send`.
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(statement)).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn watched(pool: &Pool, names: &SourceNames) -> Result<Vec<Watched>, SourceError> {
    // `to_jsonb` renders every type correctly and the trigger fixes bytea: nothing to fix here.
    let rows: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT table_name, topic FROM {} ORDER BY table_name",
        quoted(names.watch())
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(table, topic)| Watched { table, topic, fixes: Default::default() }).collect())
}

/// `id, table_name, op, new_row, old_row` of an outbox row.
type PendingRow = (i64, String, String, Option<String>, Option<String>);

pub(crate) async fn fetch_pending(
    pool: &Pool,
    names: &SourceNames,
    limit: i64,
) -> Result<Vec<OutboxRow>, SourceError> {
    let rows: Vec<PendingRow> = sqlx::query_as(&format!(
        "SELECT id, table_name, op, new_row::text, old_row::text FROM {} \
         WHERE published_at IS NULL ORDER BY id LIMIT $1",
        quoted(names.outbox())
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, table, op, new_row, old_row)| OutboxRow { id, table, op, new_row, old_row })
        .collect())
}

/// Marks the rows of `marks` published, recording where each went in the hub, in one statement.
pub(crate) async fn mark_published(
    pool: &Pool,
    names: &SourceNames,
    marks: &[Mark],
) -> Result<(), SourceError> {
    if marks.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Mark) -> Option<i64>| marks.iter().map(f).collect::<Vec<_>>();
    let topics: Vec<Option<String>> = marks.iter().map(|m| m.hub.as_ref().map(|h| h.topic.clone())).collect();
    sqlx::query(&format!(
        "UPDATE {} AS o SET published_at = now(), topic = m.topic, hub_epoch = m.epoch, \
         hub_position = m.position, hub_seq = m.seq, hub_ts = m.ts \
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) \
         AS m (id, topic, epoch, position, seq, ts) WHERE o.id = m.id",
        quoted(names.outbox())
    ))
    .bind(column(|m| Some(m.id)))
    .bind(topics)
    .bind(column(|m| m.hub.as_ref().map(|h| h.epoch)))
    .bind(column(|m| m.hub.as_ref().map(|h| h.position)))
    .bind(column(|m| m.hub.as_ref().map(|h| h.seq)))
    .bind(column(|m| m.hub.as_ref().map(|h| h.ts)))
    .execute(pool)
    .await?;
    Ok(())
}

/// The server's identity (its cluster's `system_identifier`, shared by its physical replicas;
/// empty where the role may not read it), the database and the schema.
pub(crate) async fn identity(pool: &Pool) -> Result<Vec<String>, SourceError> {
    let (database, schema): (String, Option<String>) =
        sqlx::query_as("SELECT current_database()::text, current_schema()::text").fetch_one(pool).await?;
    let system: Option<String> =
        sqlx::query_scalar("SELECT system_identifier::text FROM pg_control_system()")
            .fetch_one(pool)
            .await
            .ok();
    Ok(vec![system.unwrap_or_default(), database, schema.unwrap_or_default()])
}

pub(crate) async fn last_seqs(
    pool: &Pool,
    names: &SourceNames,
    epoch: i64,
) -> Result<Vec<(String, i64, i64)>, SourceError> {
    let sql = format!(
        "SELECT topic, max(hub_seq), max(hub_position) FROM {} \
         WHERE hub_epoch = $1 AND hub_position IS NOT NULL GROUP BY topic",
        quoted(names.outbox())
    );
    Ok(sqlx::query_as(&sql).bind(epoch).fetch_all(pool).await?)
}

pub(crate) async fn history(
    pool: &Pool,
    names: &SourceNames,
    epoch: i64,
    topics: &[String],
    (after, upto): (i64, i64),
    limit: i64,
) -> Result<Vec<HistoryRow>, SourceError> {
    let sql = format!(
        "SELECT id, table_name, op, new_row::text, old_row::text, topic, hub_seq, hub_position, hub_ts FROM {} \
         WHERE topic = ANY($1) AND hub_epoch = $2 AND hub_position > $3 AND hub_position <= $4 \
         ORDER BY hub_position LIMIT $5",
        quoted(names.outbox())
    );
    let rows: Vec<RecordedRow> = sqlx::query_as(&sql)
        .bind(topics)
        .bind(epoch)
        .bind(after)
        .bind(upto)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(HistoryRow::from).collect())
}

pub(crate) async fn topic_bounds(
    pool: &Pool,
    names: &SourceNames,
    epoch: i64,
    topic: &str,
    after: i64,
) -> Result<TopicBounds, SourceError> {
    let sql = format!(
        "SELECT (SELECT ARRAY[hub_seq, hub_position] FROM {outbox} \
                 WHERE topic = $1 AND hub_epoch = $2 AND hub_position <= $3 ORDER BY hub_position DESC LIMIT 1), \
                (SELECT ARRAY[hub_seq, hub_position] FROM {outbox} \
                 WHERE topic = $1 AND hub_epoch = $2 AND hub_position IS NOT NULL ORDER BY hub_position LIMIT 1)",
        outbox = quoted(names.outbox())
    );
    let (before, first): (Option<Vec<i64>>, Option<Vec<i64>>) =
        sqlx::query_as(&sql).bind(topic).bind(epoch).bind(after).fetch_one(pool).await?;
    let pair = |v: Option<Vec<i64>>| v.and_then(|v| Some((*v.first()?, *v.get(1)?)));
    Ok(TopicBounds { before: pair(before), first: pair(first) })
}

pub(crate) async fn last_id(pool: &Pool, names: &SourceNames) -> Result<Option<i64>, SourceError> {
    let sql = format!("SELECT max(id) FROM {}", quoted(names.outbox()));
    Ok(sqlx::query_scalar(&sql).fetch_one(pool).await?)
}

pub(crate) async fn pending_through(pool: &Pool, names: &SourceNames, id: i64) -> Result<bool, SourceError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE published_at IS NULL AND id <= $1)",
        quoted(names.outbox())
    );
    Ok(sqlx::query_scalar(&sql).bind(id).fetch_one(pool).await?)
}

pub(crate) async fn prune(
    pool: &Pool,
    names: &SourceNames,
    older_than: Duration,
) -> Result<u64, SourceError> {
    let result = sqlx::query(&format!(
        "DELETE FROM {} WHERE published_at < now() - make_interval(secs => $1)",
        quoted(names.outbox())
    ))
    .bind(older_than.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

/// A wake-up on the channel the triggers notify. sqlx re-connects it and re-issues `LISTEN`
/// when its connection drops; notifications sent meanwhile are lost, which the interval poll
/// covers.
pub(crate) async fn listener(pool: &Pool, names: &SourceNames) -> Result<PgListener, SourceError> {
    let mut listener = PgListener::connect_with(pool).await?;
    // sqlx sends `LISTEN "<outbox>"`; the quoted channel matches `pg_notify('<outbox>', '')`
    // exactly, case included.
    listener.listen(names.outbox()).await?;
    Ok(listener)
}

/// The columns of `schema.table`; empty when there is no such table.
async fn columns_of(pool: &Pool, schema: &str, table: &str) -> Result<Vec<String>, SourceError> {
    Ok(sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await?)
}

/// The schema everything is installed into and looked up in.
async fn current_schema(pool: &Pool) -> Result<String, SourceError> {
    let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()::text").fetch_one(pool).await?;
    let schema = schema.ok_or_else(|| {
        SourceError::Config("the connection's search_path names no existing schema".to_owned())
    })?;
    validate_identifier(&schema)?;
    Ok(schema)
}

/// The bytea columns of `schema.table`, which `to_jsonb` would render as `\x…` hex. Fails with
/// [`SourceError::NoSuchTable`] when the table is missing (or is a view).
async fn bytea_columns(pool: &Pool, schema: &str, table: &str) -> Result<Vec<String>, SourceError> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.column_name::text, c.data_type::text \
         FROM information_schema.columns c \
         JOIN information_schema.tables t USING (table_schema, table_name) \
         WHERE c.table_schema = $1 AND c.table_name = $2 AND t.table_type = 'BASE TABLE' \
         ORDER BY c.ordinal_position",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await?;
    if columns.is_empty() {
        return Err(SourceError::NoSuchTable(table.to_owned()));
    }
    let binary: Vec<String> =
        columns.into_iter().filter(|(_, data_type)| data_type == "bytea").map(|(name, _)| name).collect();
    // Their names go into the function body: only plain identifiers do.
    for name in &binary {
        validate_identifier(name).map_err(|_| {
            SourceError::Config(format!("bytea column {table}.{name:?} is not a plain SQL identifier"))
        })?;
    }
    Ok(binary)
}

/// ` || jsonb_build_object('c', <base64 of ROW.c>, …)` for the bytea columns, or nothing.
fn bytea_overlay(row: &str, binary: &[String]) -> String {
    binary
        .chunks(OVERLAY_CHUNK)
        .map(|chunk| {
            let pairs: Vec<String> = chunk
                .iter()
                .map(|c| {
                    format!("{}, translate(encode({row}.{}, 'base64'), E'\\n', '')", literal(c), quoted(c))
                })
                .collect();
            format!(" || jsonb_build_object({})", pairs.join(", "))
        })
        .collect()
}

/// A validated identifier in double quotes.
fn quoted(identifier: &str) -> String {
    format!("\"{identifier}\"")
}

fn qualified(schema: &str, identifier: &str) -> String {
    format!("{}.{}", quoted(schema), quoted(identifier))
}

/// A string literal (standard_conforming_strings: only `'` needs doubling).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};
    use sqlx::Connection;

    /// A JSON number exactly as written: decimals keep their digits (and trailing zeros) end to end.
    fn exact(number: &str) -> serde_json::Value {
        serde_json::from_str(number).expect("a JSON number")
    }

    use super::*;

    /// The pool, or None (the test is skipped, with `PUSHGATE_SKIP_DB=1`) when the server at
    /// `PUSHGATE_POSTGRES_URL` (default `postgres://root@127.0.0.1:5432/test`) is unreachable.
    async fn require_db() -> Option<Pool> {
        let url = std::env::var("PUSHGATE_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
        // One attempt: the pool would retry a refused connection until its timeout.
        let probe = tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await;
        match probe {
            Ok(Ok(connection)) => {
                connection.close().await.unwrap();
                Some(connect(&url).await.unwrap())
            }
            Ok(Err(err)) => {
                crate::test_skip::database_unreachable(&format!("postgres at {url}"), &err.to_string());
                None
            }
            Err(_) => {
                crate::test_skip::database_unreachable(&format!("postgres at {url}"), "no answer in 5 s");
                None
            }
        }
    }

    fn names(test: &str) -> SourceNames {
        SourceNames::with_prefix(&format!("pgu_{test}_{}_", std::process::id())).unwrap()
    }

    async fn sql(pool: &Pool, statement: &str) {
        sqlx::raw_sql(statement).execute(pool).await.unwrap();
    }

    async fn cleanup(pool: &Pool, names: &SourceNames, table: &str) {
        let plan = uninstall_plan(pool, names, None).await.unwrap();
        execute(pool, &plan).await.unwrap();
        sql(pool, &format!("DROP TABLE IF EXISTS {}", quoted(table))).await;
    }

    fn parse(text: Option<&str>) -> Value {
        text.map_or(Value::Null, |text| serde_json::from_str(text).unwrap())
    }

    #[tokio::test]
    async fn triggers_write_typed_json_to_the_outbox() {
        let Some(pool) = require_db().await else { return };
        let names = names("types");
        let table = format!("{}items", names.prefix());
        sql(&pool, &format!("DROP TABLE IF EXISTS {}", quoted(&table))).await;
        sql(
            &pool,
            &format!(
                "CREATE TABLE {} (id integer PRIMARY KEY, big bigint, f double precision, n numeric(10,2), \
                 t text, b boolean, ts timestamp(3), tz timestamptz, j jsonb, js json, bin bytea, \"Blob2\" bytea)",
                quoted(&table)
            ),
        )
        .await;
        let spec = TableSpec::new(&table).unwrap();
        let plan = install_plan(&pool, &names, &[spec.clone()]).await.unwrap();
        execute(&pool, &plan).await.unwrap();
        // Idempotent: the same plan again changes nothing and fails nothing.
        execute(&pool, &install_plan(&pool, &names, &[spec]).await.unwrap()).await.unwrap();

        let watched = watched(&pool, &names).await.unwrap();
        assert_eq!(watched.len(), 1);
        assert_eq!(
            (watched[0].table.as_str(), watched[0].topic.clone()),
            (table.as_str(), format!("db.{table}"))
        );
        assert!(watched[0].fixes.is_empty());

        // The writer's session time zone does not leak into the event.
        let text = "say \"hi\"\nand 'bye' \\ \u{00fc}\u{1F600}";
        let mut conn = pool.acquire().await.unwrap();
        sqlx::raw_sql("SET timezone = 'Asia/Tokyo'").execute(&mut *conn).await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO {} VALUES (1, 9007199254740993, 1.5, 12.50, $1, true, '2024-01-02 03:04:05.678', \
             '2024-01-02 12:00:00+09', '{{\"a\": [1, null]}}', '{{\"b\": 2}}', '\\x00ff10', NULL)",
            quoted(&table)
        ))
        .bind(text)
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::raw_sql(&format!(
            "UPDATE {0} SET t = NULL, b = false WHERE id = 1; DELETE FROM {0} WHERE id = 1; RESET timezone",
            quoted(&table)
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        drop(conn);

        let rows = fetch_pending(&pool, &names, 10).await.unwrap();
        let ops: Vec<&str> = rows.iter().map(|row| row.op.as_str()).collect();
        assert_eq!(ops, ["insert", "update", "delete"]);
        assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
        assert!(rows.iter().all(|row| row.table == table));
        let inserted = parse(rows[0].new_row.as_deref());
        assert_eq!(
            inserted,
            json!({
                "id": 1, "big": 9007199254740993_i64, "f": 1.5, "n": exact("12.50"), "t": text, "b": true,
                "ts": "2024-01-02T03:04:05.678", "tz": "2024-01-02T03:00:00+00:00",
                "j": {"a": [1, null]}, "js": {"b": 2}, "bin": "AP8Q", "Blob2": null,
            })
        );
        assert!(rows[0].new_row.as_deref().unwrap().contains("12.50"), "numeric keeps its scale");
        assert_eq!(rows[0].old_row, None);
        let updated = parse(rows[1].new_row.as_deref());
        assert_eq!((updated["t"].clone(), updated["b"].clone()), (Value::Null, json!(false)));
        assert_eq!(parse(rows[1].old_row.as_deref()), inserted);
        assert_eq!(rows[2].new_row, None);
        assert_eq!(parse(rows[2].old_row.as_deref()), updated);

        // Marked rows are no longer pending, and pruning removes them once old enough.
        let marks = [rows[0].id, rows[1].id].map(|id| Mark { id, hub: None });
        mark_published(&pool, &names, &marks).await.unwrap();
        let pending = fetch_pending(&pool, &names, 10).await.unwrap();
        assert_eq!(pending.iter().map(|row| row.id).collect::<Vec<_>>(), [rows[2].id]);
        assert_eq!(prune(&pool, &names, Duration::from_secs(3600)).await.unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(prune(&pool, &names, Duration::from_millis(1)).await.unwrap(), 2);

        cleanup(&pool, &names, &table).await;
    }

    #[tokio::test]
    async fn the_listener_wakes_on_a_change() {
        let Some(pool) = require_db().await else { return };
        let names = names("notify");
        let table = format!("{}items", names.prefix());
        sql(&pool, &format!("DROP TABLE IF EXISTS {0}; CREATE TABLE {0} (id int)", quoted(&table))).await;
        let plan = install_plan(&pool, &names, &[TableSpec::new(&table).unwrap()]).await.unwrap();
        execute(&pool, &plan).await.unwrap();
        let mut listener = listener(&pool, &names).await.unwrap();
        sql(&pool, &format!("INSERT INTO {} VALUES (1)", quoted(&table))).await;
        let notification =
            tokio::time::timeout(Duration::from_secs(10), listener.recv()).await.unwrap().unwrap();
        assert_eq!((notification.channel(), notification.payload()), (names.outbox(), ""));
        drop(listener);
        cleanup(&pool, &names, &table).await;
    }

    #[tokio::test]
    async fn a_writer_without_grants_on_the_outbox_can_write() {
        let Some(pool) = require_db().await else { return };
        let names = names("grants");
        let table = format!("{}items", names.prefix());
        let role = format!("{}writer", names.prefix());
        sql(&pool, &format!("DROP TABLE IF EXISTS {0}; CREATE TABLE {0} (id int)", quoted(&table))).await;
        let plan = install_plan(&pool, &names, &[TableSpec::new(&table).unwrap()]).await.unwrap();
        execute(&pool, &plan).await.unwrap();
        sql(
            &pool,
            &format!(
                "DROP ROLE IF EXISTS {role}; CREATE ROLE {role}; GRANT INSERT ON {table} TO {role}",
                role = quoted(&role),
                table = quoted(&table)
            ),
        )
        .await;
        let mut conn = pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::raw_sql(&format!(
            "SET LOCAL ROLE {}; INSERT INTO {} VALUES (7)",
            quoted(&role),
            quoted(&table)
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        drop(conn);
        let rows = fetch_pending(&pool, &names, 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(parse(rows[0].new_row.as_deref()), json!({"id": 7}));
        cleanup(&pool, &names, &table).await;
        sql(&pool, &format!("DROP ROLE {}", quoted(&role))).await;
    }

    #[tokio::test]
    async fn uninstall_removes_everything_and_is_idempotent() {
        let Some(pool) = require_db().await else { return };
        let names = names("uninstall");
        let (kept, dropped) = (format!("{}kept", names.prefix()), format!("{}dropped", names.prefix()));
        for table in [&kept, &dropped] {
            sql(&pool, &format!("DROP TABLE IF EXISTS {0}; CREATE TABLE {0} (id int)", quoted(table))).await;
        }
        let specs = [TableSpec::new(&kept).unwrap(), TableSpec::new(&dropped).unwrap()];
        execute(&pool, &install_plan(&pool, &names, &specs).await.unwrap()).await.unwrap();

        // One table un-watched: its trigger, function and watch row go; the other stays.
        let plan = uninstall_plan(&pool, &names, Some(&[dropped.clone()])).await.unwrap();
        execute(&pool, &plan).await.unwrap();
        execute(&pool, &plan).await.unwrap();
        let tables: Vec<String> =
            watched(&pool, &names).await.unwrap().into_iter().map(|w| w.table).collect();
        assert_eq!(tables, [kept.clone()]);
        sql(&pool, &format!("INSERT INTO {} VALUES (1)", quoted(&dropped))).await;
        assert!(fetch_pending(&pool, &names, 10).await.unwrap().is_empty());

        // A watched table dropped by the application does not break uninstalling.
        sql(&pool, &format!("DROP TABLE {}", quoted(&kept))).await;
        let plan = uninstall_plan(&pool, &names, None).await.unwrap();
        execute(&pool, &plan).await.unwrap();
        execute(&pool, &uninstall_plan(&pool, &names, None).await.unwrap()).await.unwrap();
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM pg_proc WHERE proname LIKE $1) \
                  + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE $1) \
                  + (SELECT count(*) FROM pg_class WHERE relname IN ($2, $3))",
        )
        .bind(format!("{}%", names.prefix()))
        .bind(names.outbox())
        .bind(names.watch())
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(left, 0);
        sql(&pool, &format!("DROP TABLE IF EXISTS {}", quoted(&dropped))).await;
    }

    #[tokio::test]
    async fn missing_tables_and_views_are_refused() {
        let Some(pool) = require_db().await else { return };
        let names = names("missing");
        let view = format!("{}view", names.prefix());
        sql(&pool, &format!("CREATE OR REPLACE VIEW {} AS SELECT 1 AS one", quoted(&view))).await;
        for table in [format!("{}nothing", names.prefix()), view.clone()] {
            let result = install_plan(&pool, &names, &[TableSpec::new(&table).unwrap()]).await;
            assert!(matches!(result, Err(SourceError::NoSuchTable(ref t)) if *t == table), "{result:?}");
        }
        sql(&pool, &format!("DROP VIEW {}", quoted(&view))).await;
    }

    #[test]
    fn bytea_columns_are_overlaid_as_base64() {
        assert_eq!(bytea_overlay("NEW", &[]), "");
        assert_eq!(
            bytea_overlay("OLD", &["a".to_owned(), "B".to_owned()]),
            " || jsonb_build_object('a', translate(encode(OLD.\"a\", 'base64'), E'\\n', ''), \
             'B', translate(encode(OLD.\"B\", 'base64'), E'\\n', ''))"
        );
        let many: Vec<String> = (0..90).map(|i| format!("c{i}")).collect();
        assert_eq!(bytea_overlay("NEW", &many).matches("jsonb_build_object(").count(), 3);
    }
}
