//! The embedded demo: with no configuration, `pushgate serve` shows "insert a row → every open
//! page updates" with nothing else installed.
//!
//! [`Demo::open`] opens (creating if missing) an SQLite file, creates the tables `users` and
//! `orders` ([`schema`]), installs the outbox and triggers with
//! [`pushgate_sources::install`] (topics `db.users` and `db.orders`), and makes a [`Source`]
//! for the file, which the gateway runs like any other source. [`rest`] serves the tables as
//! JSON under `/demo/`; every write there goes through the triggers, so the events come from
//! the source, exactly as for an application writing its own database.

mod rest;
mod schema;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pushgate_sources::{Source, SourceConfig, SourceError, SourceNames, TableSpec};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub(crate) use rest::router;

/// The demo database: its pool for the REST API and the source tailing it.
#[derive(Debug)]
pub(crate) struct Demo {
    pool: SqlitePool,
    source: Arc<Source>,
}

impl Demo {
    /// Opens the demo database at `path`, creating the file, the tables and the triggers as
    /// needed (all idempotent, so a second start keeps the rows). Its source takes over within
    /// `lease_timeout` from another process tailing the same file.
    pub(crate) async fn open(path: &Path, lease_timeout: Duration) -> Result<Self, SourceError> {
        let url = sqlite_url(path)
            .ok_or_else(|| SourceError::Config(format!("the path {path:?} is not valid UTF-8")))?;
        // WAL and a busy timeout, as the source uses: the REST API and the tailer both write.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        for table in &schema::TABLES {
            sqlx::query(table.create).execute(&pool).await?;
        }
        let specs =
            schema::TABLES.iter().map(|table| TableSpec::new(table.name)).collect::<Result<Vec<_>, _>>()?;
        pushgate_sources::install(&url, &SourceNames::default(), &specs, false).await?;
        let source = Arc::new(Source::new(SourceConfig::new(url).lease_timeout(lease_timeout))?);
        Ok(Self { pool, source })
    }

    /// The source tailing the demo database.
    pub(crate) fn source(&self) -> Arc<Source> {
        Arc::clone(&self.source)
    }

    /// Closes the REST API's connections (the source closes its own when the hub closes).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// `path` as an `sqlite://` URL for the source, with the characters sqlx would take for URL
/// syntax percent-encoded; `None` when the path is not UTF-8.
pub(crate) fn sqlite_url(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let mut url = String::with_capacity(text.len() + 9);
    url.push_str("sqlite://");
    for c in text.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_sqlite_urls() {
        assert_eq!(
            sqlite_url(Path::new("./pushgate-demo.db")).as_deref(),
            Some("sqlite://./pushgate-demo.db")
        );
        assert_eq!(sqlite_url(Path::new("/tmp/a b/x.db")).as_deref(), Some("sqlite:///tmp/a b/x.db"));
        assert_eq!(sqlite_url(Path::new("/tmp/50%?#.db")).as_deref(), Some("sqlite:///tmp/50%25%3F%23.db"));
    }
}
