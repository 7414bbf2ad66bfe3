//! The types every database module shares: what is watched, what an outbox row holds, and
//! which columns need a type fix after the trigger's JSON.

use std::collections::HashMap;

use crate::error::SourceError;

/// A table to watch and the topic its changes go to (default `db.<table>`).
///
/// ```
/// use pushgate_sources::TableSpec;
///
/// let spec = TableSpec::new("users")?.topic("people")?;
/// assert_eq!(spec.table(), "users");
/// assert_eq!(spec.topic_name(), "people");
/// assert_eq!(TableSpec::new("orders")?.topic_name(), "db.orders");
/// assert!(TableSpec::new("users; DROP TABLE x").is_err());
/// # Ok::<(), pushgate_sources::SourceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    table: String,
    topic: Option<String>,
}

impl TableSpec {
    /// Watches `table` (an SQL identifier: `[A-Za-z_][A-Za-z0-9_]{0,62}`).
    pub fn new(table: &str) -> Result<Self, SourceError> {
        validate_identifier(table)?;
        Ok(Self { table: table.to_owned(), topic: None })
    }

    /// Sends its changes to `topic` instead of `db.<table>`.
    pub fn topic(mut self, topic: &str) -> Result<Self, SourceError> {
        pushgate_hub::TopicName::new(topic)
            .map_err(|err| SourceError::Config(format!("topic {topic:?}: {err}")))?;
        self.topic = Some(topic.to_owned());
        Ok(self)
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The topic its changes go to.
    pub fn topic_name(&self) -> String {
        self.topic.clone().unwrap_or_else(|| format!("db.{}", self.table))
    }
}

/// Names of the objects a source installs, so several installations (or tests) can share a
/// database. Defaults: outbox `pushgate_outbox`, watch table `pushgate_watch`, trigger prefix
/// `pushgate_`.
///
/// ```
/// use pushgate_sources::SourceNames;
///
/// let names = SourceNames::default();
/// assert_eq!(names.outbox(), "pushgate_outbox");
/// let test = SourceNames::with_prefix("t42_")?;
/// assert_eq!((test.outbox(), test.watch(), test.prefix()), ("t42_outbox", "t42_watch", "t42_"));
/// # Ok::<(), pushgate_sources::SourceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceNames {
    outbox: String,
    watch: String,
    prefix: String,
}

impl Default for SourceNames {
    fn default() -> Self {
        Self { outbox: "pushgate_outbox".into(), watch: "pushgate_watch".into(), prefix: "pushgate_".into() }
    }
}

impl SourceNames {
    /// `<prefix>outbox`, `<prefix>watch`, and triggers named `<prefix><table>_…`.
    pub fn with_prefix(prefix: &str) -> Result<Self, SourceError> {
        let names = Self {
            outbox: format!("{prefix}outbox"),
            watch: format!("{prefix}watch"),
            prefix: prefix.to_owned(),
        };
        validate_identifier(&names.outbox)?;
        validate_identifier(&names.watch)?;
        Ok(names)
    }

    /// The outbox table.
    pub fn outbox(&self) -> &str {
        &self.outbox
    }

    /// The table listing watched tables and their topics.
    pub fn watch(&self) -> &str {
        &self.watch
    }

    /// The prefix of trigger (and PG trigger function) names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name of a trigger object for `table`: `<prefix><table>_<suffix>`, validated.
    pub(crate) fn trigger(&self, table: &str, suffix: &str) -> Result<String, SourceError> {
        let name = format!("{}{table}_{suffix}", self.prefix);
        validate_identifier(&name)?;
        Ok(name)
    }
}

/// Checks an SQL identifier: `[A-Za-z_][A-Za-z0-9_]{0,62}`. Identifiers are still quoted in
/// SQL; this keeps hostile or surprising names out entirely.
pub(crate) fn validate_identifier(name: &str) -> Result<(), SourceError> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(()) } else { Err(SourceError::Config(format!("{name:?} is not a plain SQL identifier"))) }
}

/// One row of the outbox, as read by the tailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboxRow {
    /// The outbox id: the change's number, unique per database.
    pub(crate) id: i64,
    /// The changed table.
    pub(crate) table: String,
    /// `insert`, `update` or `delete`.
    pub(crate) op: String,
    /// The row after the change, as JSON text (None for a delete).
    pub(crate) new_row: Option<String>,
    /// The row before the change, as JSON text (None for an insert).
    pub(crate) old_row: Option<String>,
}

/// A watched table as the tailer knows it: where its changes go and which of its columns need a
/// type fix in Rust after the trigger's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watched {
    pub(crate) table: String,
    pub(crate) topic: String,
    pub(crate) fixes: HashMap<String, ColumnKind>,
}

/// A column whose value the trigger cannot render as the right JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Only SQLite's triggers need every fix; builds without it construct fewer (or none).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) enum ColumnKind {
    /// Stored as 0/1 (SQLite BOOLEAN): becomes `false`/`true`.
    Bool,
    /// Rendered as hex by the trigger (SQLite blobs): becomes base64.
    HexBlob,
    /// Rendered as `YYYY-MM-DD HH:MM:SS…`: the space becomes `T` (ISO-8601).
    SpacedDateTime,
}

/// Where a change went in the hub, recorded on its outbox row when it is marked published: the
/// outbox then serves as the hub's history for the source's topics (see `crate::history`) and
/// restores their `seq` after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HubRecord {
    pub(crate) topic: String,
    /// The hub's epoch, as its `u32` value.
    pub(crate) epoch: i64,
    pub(crate) position: i64,
    pub(crate) seq: i64,
    /// The event's timestamp, milliseconds since the Unix epoch.
    pub(crate) ts: i64,
}

/// An outbox row to mark published, with where it went (`None`: skipped, never in the hub).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) id: i64,
    pub(crate) hub: Option<HubRecord>,
}

/// The columns holding a [`HubRecord`], added to outboxes installed before them by running
/// `install` again; each dialect names their SQL types.
pub(crate) const HUB_COLUMNS: [&str; 5] = ["topic", "hub_epoch", "hub_position", "hub_seq", "hub_ts"];

/// A published change as the outbox recorded it: the row, and where it is in the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryRow {
    pub(crate) row: OutboxRow,
    pub(crate) topic: String,
    pub(crate) seq: i64,
    pub(crate) position: i64,
    pub(crate) ts: i64,
}

/// A [`HistoryRow`] as selected: `id, table_name, op, new_row, old_row, topic, hub_seq,
/// hub_position, hub_ts`.
pub(crate) type RecordedRow = (i64, String, String, Option<String>, Option<String>, String, i64, i64, i64);

impl From<RecordedRow> for HistoryRow {
    fn from((id, table, op, new_row, old_row, topic, seq, position, ts): RecordedRow) -> Self {
        Self { row: OutboxRow { id, table, op, new_row, old_row }, topic, seq, position, ts }
    }
}

/// The two queries of [`TopicBounds`] with `?` placeholders (topic, epoch[, after]), over the
/// quoted `outbox`: MariaDB/MySQL and SQLite say them alike.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub(crate) fn topic_bounds_queries(outbox: &str) -> [String; 2] {
    [
        format!(
            "SELECT hub_seq, hub_position FROM {outbox} WHERE topic = ? AND hub_epoch = ? AND hub_position <= ? \
             ORDER BY hub_position DESC LIMIT 1"
        ),
        format!(
            "SELECT hub_seq, hub_position FROM {outbox} WHERE topic = ? AND hub_epoch = ? \
             AND hub_position IS NOT NULL ORDER BY hub_position LIMIT 1"
        ),
    ]
}

/// What the outbox holds of one topic in one epoch around a position `after`: its newest
/// recorded event at or before `after`, and its oldest recorded event; each as `(seq, position)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TopicBounds {
    pub(crate) before: Option<(i64, i64)>,
    pub(crate) first: Option<(i64, i64)>,
}
