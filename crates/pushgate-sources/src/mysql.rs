//! MariaDB / MySQL: three `AFTER … FOR EACH ROW` triggers per watched table write the changed
//! row into the outbox as `JSON_OBJECT(…)`; the tailer polls the outbox.
//!
//! The triggers enumerate the table's columns when they are installed, rendering each column
//! as the JSON type it should have (see [`render`]), so the tailer needs no type fixes. Adding
//! or renaming a column therefore needs `install` to be run again, which replaces the triggers.
//!
//! Written for MariaDB 10.11; the SQL is also valid on MySQL 8, where the triggers are dropped
//! and re-created instead of replaced (MySQL has no `CREATE OR REPLACE TRIGGER`), so a change
//! made during that re-install can be missed.

use std::time::Duration;

use sqlx::mysql::MySqlPoolOptions;

use crate::error::SourceError;
use crate::model::{
    HUB_COLUMNS, HistoryRow, Mark, OutboxRow, RecordedRow, SourceNames, TableSpec, TopicBounds, Watched,
    topic_bounds_queries, validate_identifier,
};

/// The connection pool of a MariaDB/MySQL source.
pub(crate) type Pool = sqlx::MySqlPool;

/// `id, table_name, op, new_row, old_row` of an outbox row.
type PendingRow = (i64, String, String, Option<String>, Option<String>);

/// How many processed outbox rows one `DELETE` of [`prune`] removes.
const PRUNE_BATCH: usize = 1_000;

/// Connects a small pool. sqlx sets `utf8mb4` and a `+00:00` session time zone on each connection.
pub(crate) async fn connect(url: &str) -> Result<Pool, SourceError> {
    let options: sqlx::mysql::MySqlConnectOptions = url.parse()?;
    // One direct attempt first: a pool retries a refused connection until its acquire timeout
    // and then reports only "pool timed out", hiding the reason an operator needs.
    sqlx::Connection::close(<sqlx::MySqlConnection as sqlx::Connection>::connect_with(&options).await?)
        .await?;
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The statements that create the outbox and watch tables (if missing), register `tables` and
/// (re)create their triggers, enumerating each table's current columns.
pub(crate) async fn install_plan(
    pool: &Pool,
    names: &SourceNames,
    tables: &[TableSpec],
) -> Result<Vec<String>, SourceError> {
    let (version,): (String,) = sqlx::query_as("SELECT CAST(VERSION() AS CHAR)").fetch_one(pool).await?;
    let replace = version.contains("MariaDB");
    let mut plan = vec![create_outbox(names)];
    plan.extend(upgrade_outbox(pool, names).await?);
    plan.push(create_watch(names));
    for spec in tables {
        let table = spec.table();
        if table == names.outbox() || table == names.watch() {
            return Err(SourceError::Config(format!(
                "{table:?} is the source's own table and cannot be watched"
            )));
        }
        let columns = columns(pool, table).await?;
        plan.push(format!(
            "INSERT INTO {watch} (table_name, topic) VALUES ('{table}', '{topic}') \
             ON DUPLICATE KEY UPDATE topic = '{topic}', installed_at = CURRENT_TIMESTAMP(6)",
            watch = quote(names.watch()),
            topic = spec.topic_name(),
        ));
        for op in [Op::Insert, Op::Update, Op::Delete] {
            let trigger = names.trigger(table, op.suffix())?;
            if !replace {
                plan.push(format!("DROP TRIGGER IF EXISTS {}", quote(&trigger)));
            }
            plan.push(create_trigger(names, table, &trigger, op, &columns, replace)?);
        }
    }
    Ok(plan)
}

/// The statements that drop the triggers of `tables` and forget them, or, with `None`, drop every
/// trigger writing into this outbox and then the outbox and watch tables.
pub(crate) async fn uninstall_plan(
    pool: &Pool,
    names: &SourceNames,
    tables: Option<&[String]>,
) -> Result<Vec<String>, SourceError> {
    let mut plan = Vec::new();
    match tables {
        Some(tables) => {
            for table in tables {
                validate_identifier(table)?;
                for op in [Op::Insert, Op::Update, Op::Delete] {
                    plan.push(format!(
                        "DROP TRIGGER IF EXISTS {}",
                        quote(&names.trigger(table, op.suffix())?)
                    ));
                }
            }
            if !tables.is_empty() && table_exists(pool, names.watch()).await? {
                let list = tables.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
                plan.push(format!("DELETE FROM {} WHERE table_name IN ({list})", quote(names.watch())));
            }
        }
        None => {
            // Found by what they do rather than from the watch table, so triggers of a table that
            // was renamed or unregistered by hand are removed too.
            let triggers: Vec<(String, String)> = sqlx::query_as(
                "SELECT CAST(TRIGGER_NAME AS CHAR), CAST(ACTION_STATEMENT AS CHAR) \
                 FROM information_schema.triggers WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME",
            )
            .fetch_all(pool)
            .await?;
            let target = format!("INSERT INTO {}", quote(names.outbox()));
            for (trigger, action) in triggers {
                let ours = trigger.starts_with(names.prefix())
                    && [Op::Insert, Op::Update, Op::Delete].iter().any(|op| trigger.ends_with(op.suffix()))
                    && action.contains(&target);
                if ours {
                    plan.push(format!("DROP TRIGGER IF EXISTS {}", quote(&trigger)));
                }
            }
            plan.push(format!("DROP TABLE IF EXISTS {}", quote(names.outbox())));
            plan.push(format!("DROP TABLE IF EXISTS {}", quote(names.watch())));
        }
    }
    Ok(plan)
}

/// Runs `statements` in order on one connection. Not atomic: MariaDB and MySQL commit implicitly
/// around every DDL statement. Every plan is idempotent, so a failed run is repaired by running it
/// again.
pub(crate) async fn execute(pool: &Pool, statements: &[String]) -> Result<(), SourceError> {
    let mut conn = pool.acquire().await?;
    for statement in statements {
        // The text protocol: `CREATE TRIGGER` cannot be a prepared statement on every server.
        // Through the concrete connection: `raw_sql(..).execute(&mut *conn)` is generic over the
        // executor, and rustc then cannot prove this future `Send`.
        sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(statement)).await?;
    }
    Ok(())
}

/// The watched tables and their topics. No fixes: the triggers render every type.
pub(crate) async fn watched(pool: &Pool, names: &SourceNames) -> Result<Vec<Watched>, SourceError> {
    let sql = format!(
        "SELECT CAST(table_name AS CHAR), CAST(topic AS CHAR) FROM {} ORDER BY table_name",
        quote(names.watch())
    );
    let rows: Vec<(String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(table, topic)| Watched { table, topic, fixes: Default::default() }).collect())
}

/// Up to `limit` unpublished changes, oldest id first.
pub(crate) async fn fetch_pending(
    pool: &Pool,
    names: &SourceNames,
    limit: i64,
) -> Result<Vec<OutboxRow>, SourceError> {
    let sql = format!(
        "SELECT id, CAST(table_name AS CHAR), CAST(op AS CHAR), CAST(new_row AS CHAR), CAST(old_row AS CHAR) \
         FROM {} WHERE published_at IS NULL ORDER BY id LIMIT ?",
        quote(names.outbox())
    );
    let rows: Vec<PendingRow> = sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(id, table, op, new_row, old_row)| OutboxRow { id, table, op, new_row, old_row })
        .collect())
}

/// Marks exactly the rows of `marks` published (in UTC, whatever the session's time zone),
/// recording where each went in the hub, in one statement.
pub(crate) async fn mark_published(
    pool: &Pool,
    names: &SourceNames,
    marks: &[Mark],
) -> Result<(), SourceError> {
    if marks.is_empty() {
        return Ok(());
    }
    // Values are inlined and sent as text: a prepared statement per batch size would churn the
    // statement cache. Every value is an integer or a topic name (`[A-Za-z0-9_.:-]`, checked
    // again here), so nothing needs escaping.
    let mut rows = Vec::with_capacity(marks.len());
    for mark in marks {
        let row = match &mark.hub {
            Some(hub) if hub.topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)) => {
                format!(
                    "SELECT {} AS id, '{}' AS topic, {} AS epoch, {} AS position, {} AS seq, {} AS ts",
                    mark.id, hub.topic, hub.epoch, hub.position, hub.seq, hub.ts
                )
            }
            _ => format!(
                "SELECT {} AS id, NULL AS topic, NULL AS epoch, NULL AS position, NULL AS seq, NULL AS ts",
                mark.id
            ),
        };
        rows.push(row);
    }
    let sql = format!(
        "UPDATE {} AS o JOIN ({}) AS m ON o.id = m.id SET o.published_at = UTC_TIMESTAMP(6), o.topic = m.topic, \
         o.hub_epoch = m.epoch, o.hub_position = m.position, o.hub_seq = m.seq, o.hub_ts = m.ts",
        quote(names.outbox()),
        rows.join(" UNION ALL ")
    );
    sqlx::raw_sql(&sql).execute(pool).await?;
    Ok(())
}

/// The server's identity (MySQL's `server_uuid`, MariaDB's `server_uid`) and the database.
pub(crate) async fn identity(pool: &Pool) -> Result<Vec<String>, SourceError> {
    let (version, database): (String, Option<String>) =
        sqlx::query_as("SELECT CAST(VERSION() AS CHAR), CAST(DATABASE() AS CHAR)").fetch_one(pool).await?;
    let variable = if version.contains("MariaDB") { "@@server_uid" } else { "@@server_uuid" };
    let server: Option<String> =
        sqlx::query_scalar(&format!("SELECT CAST({variable} AS CHAR)")).fetch_one(pool).await?;
    Ok(vec![server.unwrap_or_default(), database.unwrap_or_default()])
}

/// Each topic's newest `seq` and position recorded in `epoch`.
pub(crate) async fn last_seqs(
    pool: &Pool,
    names: &SourceNames,
    epoch: i64,
) -> Result<Vec<(String, i64, i64)>, SourceError> {
    let sql = format!(
        "SELECT CAST(topic AS CHAR), MAX(hub_seq), MAX(hub_position) FROM {} \
         WHERE hub_epoch = ? AND hub_position IS NOT NULL GROUP BY topic",
        quote(names.outbox())
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
        "SELECT id, CAST(table_name AS CHAR), CAST(op AS CHAR), CAST(new_row AS CHAR), CAST(old_row AS CHAR), \
         CAST(topic AS CHAR), hub_seq, hub_position, hub_ts FROM {} \
         WHERE topic IN ({}) AND hub_epoch = ? AND hub_position > ? AND hub_position <= ? \
         ORDER BY hub_position LIMIT ?",
        quote(names.outbox()),
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
    let [before, first] = topic_bounds_queries(&quote(names.outbox()));
    Ok(TopicBounds {
        before: sqlx::query_as(&before).bind(topic).bind(epoch).bind(after).fetch_optional(pool).await?,
        first: sqlx::query_as(&first).bind(topic).bind(epoch).fetch_optional(pool).await?,
    })
}

/// The newest outbox id, if any.
pub(crate) async fn last_id(pool: &Pool, names: &SourceNames) -> Result<Option<i64>, SourceError> {
    let sql = format!("SELECT MAX(id) FROM {}", quote(names.outbox()));
    Ok(sqlx::query_scalar(&sql).fetch_one(pool).await?)
}

/// Whether a change with an id up to `id` is still unpublished.
pub(crate) async fn pending_through(pool: &Pool, names: &SourceNames, id: i64) -> Result<bool, SourceError> {
    let sql =
        format!("SELECT id FROM {} WHERE published_at IS NULL AND id <= ? LIMIT 1", quote(names.outbox()));
    let found: Option<i64> = sqlx::query_scalar(&sql).bind(id).fetch_optional(pool).await?;
    Ok(found.is_some())
}

/// Deletes changes published more than `older_than` ago; returns how many.
///
/// Ids are read first (a plain, lock-free read) and then deleted by primary key: a `DELETE …
/// WHERE published_at < …` would take next-key locks on the `(published_at, id)` index that
/// block the triggers' inserts of new (NULL) rows for the length of the delete.
pub(crate) async fn prune(
    pool: &Pool,
    names: &SourceNames,
    older_than: Duration,
) -> Result<u64, SourceError> {
    let micros = i64::try_from(older_than.as_micros()).unwrap_or(i64::MAX);
    let outbox = quote(names.outbox());
    let select = format!(
        "SELECT id FROM {outbox} WHERE published_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND \
         ORDER BY published_at LIMIT {PRUNE_BATCH}"
    );
    let mut deleted = 0;
    loop {
        let ids: Vec<i64> = sqlx::query_scalar(&select).bind(micros).fetch_all(pool).await?;
        if ids.is_empty() {
            break;
        }
        let sql = format!("DELETE FROM {outbox} WHERE id IN ({})", id_list(&ids));
        deleted += sqlx::raw_sql(&sql).execute(pool).await?.rows_affected();
        if ids.len() < PRUNE_BATCH {
            break;
        }
    }
    Ok(deleted)
}

// Both tables are utf8mb4 with binary collation, so table names compare exactly as they do on
// disk. sqlx reads `_bin` text columns as binary, hence the `CAST(… AS CHAR)` in the SELECTs.
fn create_outbox(names: &SourceNames) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  \
         id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,\n  \
         table_name VARCHAR(64) NOT NULL,\n  \
         op VARCHAR(6) NOT NULL,\n  \
         new_row LONGTEXT NULL,\n  \
         old_row LONGTEXT NULL,\n  \
         changed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n  \
         published_at DATETIME(6) NULL,\n  \
         topic VARCHAR(128) NULL,\n  \
         hub_epoch BIGINT NULL,\n  \
         hub_position BIGINT NULL,\n  \
         hub_seq BIGINT NULL,\n  \
         hub_ts BIGINT NULL,\n  \
         KEY pending (published_at, id),\n  \
         KEY history (topic, hub_epoch, hub_position)\n\
         ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
        quote(names.outbox())
    )
}

/// For an outbox installed before the hub columns existed: the statements adding them and
/// their index (MySQL has no `ADD COLUMN IF NOT EXISTS`, so the plan looks first).
async fn upgrade_outbox(pool: &Pool, names: &SourceNames) -> Result<Vec<String>, SourceError> {
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.columns \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    )
    .bind(names.outbox())
    .fetch_all(pool)
    .await?;
    if present.is_empty() || HUB_COLUMNS.iter().all(|column| present.iter().any(|c| c == column)) {
        return Ok(Vec::new());
    }
    let added: Vec<String> = HUB_COLUMNS
        .iter()
        .filter(|column| !present.iter().any(|c| c == *column))
        .map(|column| {
            format!("ADD COLUMN {column} {} NULL", if *column == "topic" { "VARCHAR(128)" } else { "BIGINT" })
        })
        .collect();
    Ok(vec![format!(
        "ALTER TABLE {} {}, ADD KEY history (topic, hub_epoch, hub_position)",
        quote(names.outbox()),
        added.join(", ")
    )])
}

fn create_watch(names: &SourceNames) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  \
         table_name VARCHAR(64) NOT NULL PRIMARY KEY,\n  \
         topic VARCHAR(128) NOT NULL,\n  \
         installed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)\n\
         ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
        quote(names.watch())
    )
}

/// One trigger: a single `INSERT` statement, so no `BEGIN … END` and no `DELIMITER`.
fn create_trigger(
    names: &SourceNames,
    table: &str,
    trigger: &str,
    op: Op,
    columns: &[Column],
    replace: bool,
) -> Result<String, SourceError> {
    let row = |alias: &str| -> Result<String, SourceError> {
        let pairs = columns
            .iter()
            .map(|column| Ok(format!("    {}, {}", key_literal(&column.name)?, render(alias, column))))
            .collect::<Result<Vec<_>, SourceError>>()?;
        Ok(format!("JSON_OBJECT(\n{}\n  )", pairs.join(",\n")))
    };
    let (new_row, old_row) = match op {
        Op::Insert => (row("NEW")?, "NULL".to_owned()),
        Op::Update => (row("NEW")?, row("OLD")?),
        Op::Delete => ("NULL".to_owned(), row("OLD")?),
    };
    Ok(format!(
        "CREATE {or_replace}TRIGGER {trigger} AFTER {event} ON {table_q} FOR EACH ROW\n\
         INSERT INTO {outbox} (table_name, op, new_row, old_row) VALUES (\n  \
         '{table}',\n  '{op}',\n  {new_row},\n  {old_row}\n)",
        or_replace = if replace { "OR REPLACE " } else { "" },
        trigger = quote(trigger),
        event = op.event(),
        table_q = quote(table),
        outbox = quote(names.outbox()),
        op = op.name(),
    ))
}

/// A column as `information_schema.columns` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    /// `DATA_TYPE`, lower case: `int`, `datetime`, `blob`, …
    data_type: String,
    /// `COLUMN_TYPE`, lower case: `tinyint(1)`, `decimal(10,2)`, …
    column_type: String,
    /// Fractional second digits of temporal types.
    precision: u32,
}

async fn columns(pool: &Pool, table: &str) -> Result<Vec<Column>, SourceError> {
    let rows: Vec<(String, String, String, Option<u64>)> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(LOWER(DATA_TYPE) AS CHAR), CAST(LOWER(COLUMN_TYPE) AS CHAR), \
         CAST(DATETIME_PRECISION AS UNSIGNED) \
         FROM information_schema.columns WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Err(SourceError::NoSuchTable(table.to_owned()));
    }
    Ok(rows
        .into_iter()
        .map(|(name, data_type, column_type, precision)| Column {
            name,
            data_type,
            column_type,
            precision: precision.map_or(0, |p| p.min(6) as u32),
        })
        .collect())
}

/// The SQL expression that puts `<alias>.<column>` into `JSON_OBJECT` as the right JSON type.
fn render(alias: &str, column: &Column) -> String {
    let value = format!("{alias}.{}", quote(&column.name));
    match column.data_type.as_str() {
        // `BOOLEAN` is `TINYINT(1)`. JSON_EXTRACT yields a JSON boolean on MariaDB and MySQL alike.
        "tinyint" if column.column_type.starts_with("tinyint(1)") => format!(
            "JSON_EXTRACT(CASE WHEN {value} IS NULL THEN 'null' WHEN {value} THEN 'true' ELSE 'false' END, '$')"
        ),
        "date" => format!("DATE_FORMAT({value}, '%Y-%m-%d')"),
        "datetime" => iso_datetime(&value, column.precision),
        // TIMESTAMP is an instant shown in the writing session's time zone: render it in UTC.
        "timestamp" => format!(
            "CONCAT({}, 'Z')",
            iso_datetime(&format!("CONVERT_TZ({value}, @@session.time_zone, '+00:00')"), column.precision)
        ),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            // TO_BASE64 wraps lines at 76 characters.
            format!("REPLACE(TO_BASE64({value}), CHAR(10 USING ascii), '')")
        }
        "bit" | "year" => format!("{value} + 0"),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => format!("ST_AsText({value})"),
        // Numbers (decimals included) stay numbers, strings and TIME become strings, and JSON
        // columns embed as JSON.
        _ => value,
    }
}

/// `YYYY-MM-DDTHH:MM:SS` plus as many fractional digits as the column has.
fn iso_datetime(value: &str, precision: u32) -> String {
    if precision == 0 {
        format!("DATE_FORMAT({value}, '%Y-%m-%dT%H:%i:%s')")
    } else {
        format!("LEFT(DATE_FORMAT({value}, '%Y-%m-%dT%H:%i:%s.%f'), {})", 20 + precision)
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    fn event(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Op::Insert => "ins",
            Op::Update => "upd",
            Op::Delete => "del",
        }
    }
}

/// A backtick-quoted identifier.
fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A column name as a JSON key literal. Column names come from the server, not from
/// configuration, so any name is accepted that needs no backslash escaping (whose meaning
/// depends on `sql_mode`).
fn key_literal(name: &str) -> Result<String, SourceError> {
    if name.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(SourceError::Config(format!("column name {name:?} cannot be rendered safely")));
    }
    Ok(format!("'{}'", name.replace('\'', "''")))
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

async fn table_exists(pool: &Pool, table: &str) -> Result<bool, SourceError> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.tables WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    )
    .bind(table)
    .fetch_one(pool)
    .await?;
    Ok(count > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str, column_type: &str, precision: u32) -> Column {
        Column { name: name.into(), data_type: data_type.into(), column_type: column_type.into(), precision }
    }

    #[test]
    fn renders_each_type_as_its_json_type() {
        let cases = [
            (column("n", "int", "int(11)", 0), "NEW.`n`"),
            (
                column("b", "tinyint", "tinyint(1)", 0),
                "JSON_EXTRACT(CASE WHEN NEW.`b` IS NULL THEN 'null' WHEN NEW.`b` THEN 'true' ELSE 'false' END, '$')",
            ),
            (column("t", "tinyint", "tinyint(4)", 0), "NEW.`t`"),
            (column("d", "datetime", "datetime", 0), "DATE_FORMAT(NEW.`d`, '%Y-%m-%dT%H:%i:%s')"),
            (
                column("d", "datetime", "datetime(3)", 3),
                "LEFT(DATE_FORMAT(NEW.`d`, '%Y-%m-%dT%H:%i:%s.%f'), 23)",
            ),
            (
                column("ts", "timestamp", "timestamp", 0),
                "CONCAT(DATE_FORMAT(CONVERT_TZ(NEW.`ts`, @@session.time_zone, '+00:00'), '%Y-%m-%dT%H:%i:%s'), 'Z')",
            ),
            (column("x", "blob", "blob", 0), "REPLACE(TO_BASE64(NEW.`x`), CHAR(10 USING ascii), '')"),
            (column("w`eird", "bit", "bit(8)", 0), "NEW.`w``eird` + 0"),
        ];
        for (column, expected) in cases {
            assert_eq!(render("NEW", &column), expected);
        }
    }

    #[test]
    fn key_literals_double_quotes_and_refuse_backslashes() {
        assert_eq!(key_literal("it's").ok().as_deref(), Some("'it''s'"));
        assert!(key_literal("a\\b").is_err());
    }

    #[test]
    fn triggers_are_one_insert_statement() -> Result<(), SourceError> {
        let names = SourceNames::default();
        let columns = [column("id", "int", "int(11)", 0)];
        let sql = create_trigger(&names, "t", "pushgate_t_del", Op::Delete, &columns, true)?;
        assert!(
            sql.starts_with("CREATE OR REPLACE TRIGGER `pushgate_t_del` AFTER DELETE ON `t` FOR EACH ROW\n")
        );
        assert!(sql.contains("INSERT INTO `pushgate_outbox` (table_name, op, new_row, old_row) VALUES ("));
        assert!(sql.contains("'delete',\n  NULL,\n  JSON_OBJECT(\n    'id', OLD.`id`\n  )\n)"));
        assert!(!sql.contains(';'));
        Ok(())
    }
}
