//! Database change sources: a row changes in a table, and an event reaches the hub at once.
//!
//! One module per database, each behind a cargo feature: `postgres` (PostgreSQL), `mysql`
//! (MariaDB and MySQL), `sqlite` (SQLite, bundled). Building without them compiles no driver.
//!
//! # Design: trigger → outbox → tailer
//!
//! [`install`] creates, in the application's database:
//!
//! - an **outbox** table (`pushgate_outbox`): one row per change, with an increasing `id`, the
//!   table, the operation (`insert`, `update`, `delete`), the row after (`new_row`) and before
//!   (`old_row`) as JSON, when it changed, and `published_at`, NULL until the change is in the
//!   hub;
//! - a **watch** table (`pushgate_watch`): which tables are watched and the topic of each
//!   (default `db.<table>`);
//! - **triggers** on each watched table (`pushgate_<table>_ins|upd|del`; on PostgreSQL one
//!   `pushgate_<table>_capture` and its function) that write every inserted, updated and deleted
//!   row into the outbox, in the application's own transaction. A change is recorded if and
//!   only if it commits.
//!
//! A [`Source`] (the tailer) reads `WHERE published_at IS NULL ORDER BY id`, publishes each
//! change with [`Hub::publish`](pushgate_hub::Hub::publish) in that order, then marks exactly
//! those ids published. On PostgreSQL the triggers also `NOTIFY` (with an empty payload) and the
//! tailer `LISTEN`s, so changes arrive as soon as they commit; the poll interval (100 ms by
//! default) is only the safety net. MariaDB, MySQL and SQLite are polled at that interval. The
//! names of all these objects can be changed with [`SourceNames`], so several installations
//! (or tests) share one database.
//!
//! # Why `published_at` and not a high-water mark
//!
//! Outbox ids are handed out when a transaction inserts, not when it commits. A tailer that
//! remembered "everything up to id 41 is done" and then asked for `id > 41` would skip id 40 of
//! a transaction that commits after 41: it was invisible when 41 was read, and below the mark
//! once visible. Marking each row instead means a late-committing change is simply still
//! unpublished when it becomes visible, so nothing is skipped, whatever the commit order.
//!
//! # Guarantees
//!
//! - **Exactly once into the hub.** Each change is published with the idempotency key
//!   `<source-key>:<outbox id>` (the source key hashed from the database's identity, the same on
//!   every node) and marked published only after the hub accepted it. Published again after a
//!   crash, a lost connection or a takeover, it is a replay: the hub answers with the original
//!   and stores nothing, within its idempotency window (5 minutes by default; across nodes
//!   through Redis). Each event still carries the outbox `id`.
//! - **History past memory.** Marking a change records its topic, epoch, position, `seq` and
//!   timestamp on the outbox row; [`Source::history_tier`] serves them to the hub, so a cursor
//!   older than memory is answered from the outbox within its retention.
//! - **Order per table.** Changes of one row reach the hub in commit order: row locks make
//!   writers of one row take turns, so their outbox ids follow their commits. Changes of one
//!   transaction come in statement order. Across tables and concurrent transactions, the order
//!   is id order, which is close to, but not always, commit order.
//! - A change the hub can never accept (larger than its `max_data_bytes`) is logged and skipped
//!   rather than stalling every change after it.
//!
//! # Events
//!
//! Each change becomes an event on the table's topic, with the operation as event type and data
//!
//! ```json
//! {"table": "users", "op": "update", "id": 1042,
//!  "new": {"id": 7, "name": "Ada", "admin": true, "seen_at": "2024-05-06T07:08:09.5"},
//!  "old": {"id": 7, "name": "Ada", "admin": false, "seen_at": "2024-05-01T10:00:00"}}
//! ```
//!
//! `new` is null for a delete and `old` for an insert. Columns keep their JSON types: numbers
//! as numbers, booleans as `true`/`false`, timestamps as ISO-8601 strings, binary data as
//! base64, JSON columns nested, NULL as `null`. What a trigger cannot render correctly is fixed
//! in Rust from the column types, read when the tailer connects
//! (and again before publishing, when last read more than a second ago).
//!
//! # Snapshots without gaps: [`Source::quiesce`]
//!
//! A page that shows a table's rows and then follows its changes must not miss a change made
//! between loading and subscribing. The pattern:
//!
//! 1. `let guard = source.quiesce(&hub).await?`: the tailer pauses after publishing everything
//!    pending, and `guard.cursor()` is after every change published so far;
//! 2. load the rows (`SELECT …`) while holding the guard, then drop it;
//! 3. subscribe from `guard.cursor()` and apply each event to the loaded rows by primary key:
//!    `insert`/`update` as an upsert of `new`, `delete` as a removal of `old`.
//!
//! A change committed before step 2 is in the loaded rows and may arrive again as an event; a
//! later one arrives as an event. Events carry whole rows, so applying one twice changes
//! nothing, and per-table order means the last event applied is the row's latest state.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pushgate_hub::{Hub, Item, TopicName};
//! use pushgate_sources::{Source, SourceConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::new();
//! let source = Arc::new(Source::new(SourceConfig::new("postgres://app@localhost/shop"))?);
//! tokio::spawn({
//!     let (source, hub) = (Arc::clone(&source), hub.clone());
//!     async move { source.run(hub).await }
//! });
//!
//! let guard = source.quiesce(&hub).await?;
//! // ... SELECT the rows of `orders` here ...
//! let cursor = guard.cursor();
//! drop(guard);
//! let mut changes = hub.subscribe(&[TopicName::new("db.orders")?], cursor)?;
//! while let Ok(Item::Event(event)) = changes.recv().await {
//!     // upsert event.data()["new"] or remove event.data()["old"] by primary key
//! #   let _ = event;
//! }
//! # Ok(()) }
//! ```
//!
//! # Limits
//!
//! - On MariaDB/MySQL and SQLite the triggers list the columns: run [`install`] again after
//!   `ALTER TABLE`, or new columns are missing from events (and, on MariaDB, writes fail once a
//!   listed column is dropped). PostgreSQL's triggers list only `bytea` columns.
//! - Numbers keep every digit the database wrote (this crate turns on serde_json's `arbitrary_precision`, for the whole program that embeds it;
//!   see docs/embedding.md); a browser's `JSON.parse` still rounds beyond about 15 significant digits.
//! - One tailer per database (and set of names) publishes at a time: every node may run the
//!   same source, and the others stand by until its lease is free (see [`Source`]).
//! - Every change is written twice (the row and its outbox copy) and updated once more when
//!   published: a write-heavy table pays for that.
//! - Published changes stay in the outbox for the retention period (1 hour by default), serving
//!   as history, then are deleted; unpublished ones stay until published.
//!
//! `docs/sources.md` has a five-minute guide per database and the exact SQL installed.

// Built without any database, nothing can connect and most of the crate is unreachable.
#![cfg_attr(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")), allow(unused))]

mod backend;
mod change;
mod config;
mod error;
mod history;
mod lease;
mod model;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod tailer;
// The database tests' skip policy, shared with the integration tests and the gateway's
// (pushgate-testkit, which this crate cannot depend on).
#[cfg(all(test, feature = "postgres"))]
#[path = "../../pushgate-testkit/src/skip.rs"]
#[allow(dead_code, unreachable_pub)]
mod test_skip;

pub use config::SourceConfig;
pub use error::SourceError;
pub use model::{SourceNames, TableSpec};
pub use tailer::{Quiesced, Source, SourceState};

use backend::{Backend, Dialect};

/// Installs (or refreshes) the outbox, the watch table and the triggers of `tables` in the
/// database at `url`, and returns the SQL. With `dry_run`, only returns it.
///
/// Idempotent: running it again is harmless, and is how column lists are refreshed after
/// `ALTER TABLE` or a table's topic changed. The statements run in one transaction where the
/// database allows (PostgreSQL, SQLite; MariaDB commits each DDL statement).
///
/// # Errors
/// [`SourceError::Config`] for an unsupported URL, [`SourceError::NoSuchTable`] for a table
/// that does not exist, [`SourceError::Database`] for anything the database refuses.
pub async fn install(
    url: &str,
    names: &SourceNames,
    tables: &[TableSpec],
    dry_run: bool,
) -> Result<Vec<String>, SourceError> {
    let backend = connect(url).await?;
    let result = run_plan(&backend, backend.install_plan(names, tables).await, dry_run).await;
    backend.close().await;
    result
}

/// Removes the triggers of `tables` (and their watch entries), or, with `None`, the triggers of
/// every watched table and the outbox and watch tables; returns the SQL. With `dry_run`, only
/// returns it. Idempotent.
///
/// # Errors
/// As [`install`].
pub async fn uninstall(
    url: &str,
    names: &SourceNames,
    tables: Option<&[String]>,
    dry_run: bool,
) -> Result<Vec<String>, SourceError> {
    let backend = connect(url).await?;
    let result = run_plan(&backend, backend.uninstall_plan(names, tables).await, dry_run).await;
    backend.close().await;
    result
}

async fn connect(url: &str) -> Result<Backend, SourceError> {
    let (dialect, url) = Dialect::parse(url)?;
    Backend::connect(dialect, &url).await
}

async fn run_plan(
    backend: &Backend,
    plan: Result<Vec<String>, SourceError>,
    dry_run: bool,
) -> Result<Vec<String>, SourceError> {
    let plan = plan?;
    if !dry_run {
        backend.execute(&plan).await?;
    }
    Ok(plan)
}
