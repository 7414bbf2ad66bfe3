//! One connection pool of whichever database the URL names, dispatching each operation to that
//! database's module. The URL's scheme picks the dialect; a dialect whose feature is off is a
//! configuration error, not a panic.

use std::time::Duration;

use crate::error::SourceError;
use crate::lease::stable_hash;
use crate::model::{HistoryRow, Mark, OutboxRow, SourceNames, TableSpec, TopicBounds, Watched};

/// The databases this crate knows, compiled in or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    /// The dialect of `url` and the URL as sqlx wants it (`mariadb://` becomes `mysql://`).
    pub(crate) fn parse(url: &str) -> Result<(Self, String), SourceError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase()).unwrap_or_default();
        let (dialect, url) = match scheme.as_str() {
            "postgres" | "postgresql" => (Self::Postgres, url.to_owned()),
            "mysql" => (Self::MySql, url.to_owned()),
            "mariadb" => (Self::MySql, format!("mysql{}", &url[scheme.len()..])),
            "sqlite" => (Self::Sqlite, url.to_owned()),
            _ => {
                return Err(SourceError::Config(format!(
                    "unsupported database URL scheme {scheme:?}: expected postgres://, postgresql://, mysql://, \
                     mariadb://, sqlite: or sqlite://"
                )));
            }
        };
        if !dialect.enabled() {
            return Err(SourceError::Config(format!(
                "{scheme}: URLs need pushgate-sources built with the `{}` feature",
                dialect.feature()
            )));
        }
        Ok((dialect, url))
    }

    /// The cargo feature that compiles this dialect in.
    pub(crate) fn feature(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
            Self::Sqlite => "sqlite",
        }
    }

    fn enabled(self) -> bool {
        match self {
            Self::Postgres => cfg!(feature = "postgres"),
            Self::MySql => cfg!(feature = "mysql"),
            Self::Sqlite => cfg!(feature = "sqlite"),
        }
    }
}

/// A pool of one of the enabled databases. Cloning shares the pool.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    #[cfg(feature = "postgres")]
    Postgres(crate::postgres::Pool),
    #[cfg(feature = "mysql")]
    MySql(crate::mysql::Pool),
    #[cfg(feature = "sqlite")]
    Sqlite(crate::sqlite::Pool),
    /// Keeps the enum (and every `match` on it) well-formed when no database is compiled in.
    #[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
    #[allow(dead_code)]
    Nothing(std::convert::Infallible),
}

/// Runs `$call` with `$pool` bound to the pool and `$db` to the module of its dialect.
macro_rules! dispatch {
    ($backend:expr, $db:ident, $pool:ident => $call:expr) => {
        match $backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres($pool) => {
                #[allow(unused_imports)]
                use crate::postgres as $db;
                $call
            }
            #[cfg(feature = "mysql")]
            Backend::MySql($pool) => {
                #[allow(unused_imports)]
                use crate::mysql as $db;
                $call
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($pool) => {
                #[allow(unused_imports)]
                use crate::sqlite as $db;
                $call
            }
            #[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
            Backend::Nothing(never) => match *never {},
        }
    };
}

impl Backend {
    /// Connects to `url` (already normalized by [`Dialect::parse`]).
    pub(crate) async fn connect(dialect: Dialect, url: &str) -> Result<Self, SourceError> {
        match dialect {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => Ok(Self::Postgres(crate::postgres::connect(url).await?)),
            #[cfg(feature = "mysql")]
            Dialect::MySql => Ok(Self::MySql(crate::mysql::connect(url).await?)),
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => Ok(Self::Sqlite(crate::sqlite::connect(url).await?)),
            #[allow(unreachable_patterns)]
            other => {
                let _ = url;
                Err(SourceError::Config(format!("the `{}` feature is not enabled", other.feature())))
            }
        }
    }

    /// Closes the pool's connections.
    pub(crate) async fn close(&self) {
        dispatch!(self, _db, pool => pool.close().await)
    }

    pub(crate) async fn install_plan(
        &self,
        names: &SourceNames,
        tables: &[TableSpec],
    ) -> Result<Vec<String>, SourceError> {
        dispatch!(self, db, pool => db::install_plan(pool, names, tables).await)
    }

    pub(crate) async fn uninstall_plan(
        &self,
        names: &SourceNames,
        tables: Option<&[String]>,
    ) -> Result<Vec<String>, SourceError> {
        dispatch!(self, db, pool => db::uninstall_plan(pool, names, tables).await)
    }

    pub(crate) async fn execute(&self, statements: &[String]) -> Result<(), SourceError> {
        dispatch!(self, db, pool => db::execute(pool, statements).await)
    }

    pub(crate) async fn watched(&self, names: &SourceNames) -> Result<Vec<Watched>, SourceError> {
        dispatch!(self, db, pool => db::watched(pool, names).await)
    }

    pub(crate) async fn fetch_pending(
        &self,
        names: &SourceNames,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, SourceError> {
        dispatch!(self, db, pool => db::fetch_pending(pool, names, limit).await)
    }

    pub(crate) async fn mark_published(
        &self,
        names: &SourceNames,
        marks: &[Mark],
    ) -> Result<(), SourceError> {
        dispatch!(self, db, pool => db::mark_published(pool, names, marks).await)
    }

    /// `<source-key>` of the idempotency keys `<source-key>:<outbox id>`: 16 hex digits hashed
    /// from what identifies this outbox on every node and across restarts (the server's
    /// identity, the database, the schema, the outbox's name), and never the password or a host
    /// name one node may spell differently from another.
    pub(crate) async fn source_key(&self, names: &SourceNames) -> Result<String, SourceError> {
        let parts: Result<Vec<String>, SourceError> = dispatch!(self, db, pool => db::identity(pool).await);
        let parts = parts?;
        let mut all: Vec<&str> = vec!["pushgate source", names.outbox()];
        all.extend(parts.iter().map(String::as_str));
        Ok(format!("{:016x}", stable_hash(&all)))
    }

    /// Fails with [`SourceError::NotInstalled`] when the watch table or the outbox does not exist,
    /// so a database never prepared says so instead of failing each read with a database error.
    pub(crate) async fn check_installed(&self, names: &SourceNames) -> Result<(), SourceError> {
        for table in [names.watch(), names.outbox()] {
            // Every dialect quotes identifiers with double quotes or backticks; these names are plain.
            let probe = format!("SELECT 1 FROM {table} WHERE 1 = 0");
            match dispatch!(self, _db, pool => sqlx::query(&probe).fetch_optional(pool).await.map(drop)) {
                Ok(()) => {}
                Err(sqlx::Error::Database(error)) if is_missing_table(error.as_ref()) => {
                    return Err(SourceError::NotInstalled(table.to_owned()));
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }

    /// Fails with [`SourceError::OutdatedOutbox`] when the outbox lacks the hub columns (an
    /// install of an earlier release), before anything is published that could not be marked.
    pub(crate) async fn check_outbox(&self, names: &SourceNames) -> Result<(), SourceError> {
        // Every dialect quotes identifiers with double quotes or backticks; these names are plain.
        let probe =
            format!("SELECT {} FROM {} WHERE 1 = 0", crate::model::HUB_COLUMNS.join(", "), names.outbox());
        let checked = dispatch!(self, _db, pool => sqlx::query(&probe).fetch_optional(pool).await.map(drop));
        match checked {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(_)) => Err(SourceError::OutdatedOutbox(names.outbox().to_owned())),
            Err(other) => Err(other.into()),
        }
    }

    /// Each topic's newest `seq` and position recorded in `epoch`.
    pub(crate) async fn last_seqs(
        &self,
        names: &SourceNames,
        epoch: i64,
    ) -> Result<Vec<(String, i64, i64)>, SourceError> {
        dispatch!(self, db, pool => db::last_seqs(pool, names, epoch).await)
    }

    /// The recorded changes of `topics` in `epoch` with `after < position <= upto`, in position
    /// order, at most `limit`.
    pub(crate) async fn history(
        &self,
        names: &SourceNames,
        epoch: i64,
        topics: &[String],
        range: (i64, i64),
        limit: i64,
    ) -> Result<Vec<HistoryRow>, SourceError> {
        dispatch!(self, db, pool => db::history(pool, names, epoch, topics, range, limit).await)
    }

    /// What the outbox holds of `topic` in `epoch` around `after`.
    pub(crate) async fn topic_bounds(
        &self,
        names: &SourceNames,
        epoch: i64,
        topic: &str,
        after: i64,
    ) -> Result<TopicBounds, SourceError> {
        dispatch!(self, db, pool => db::topic_bounds(pool, names, epoch, topic, after).await)
    }

    /// The newest outbox id, if any.
    pub(crate) async fn last_id(&self, names: &SourceNames) -> Result<Option<i64>, SourceError> {
        dispatch!(self, db, pool => db::last_id(pool, names).await)
    }

    /// Whether a change with an id up to `id` is still unpublished.
    pub(crate) async fn pending_through(&self, names: &SourceNames, id: i64) -> Result<bool, SourceError> {
        dispatch!(self, db, pool => db::pending_through(pool, names, id).await)
    }

    pub(crate) async fn prune(&self, names: &SourceNames, older_than: Duration) -> Result<u64, SourceError> {
        dispatch!(self, db, pool => db::prune(pool, names, older_than).await)
    }

    /// What wakes the tailer besides its poll interval: a `LISTEN` on PostgreSQL, nothing
    /// elsewhere. Set up before the first read, so no notification falls between the two.
    pub(crate) async fn wakeup(&self, names: &SourceNames) -> Result<Wakeup, SourceError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                let listener = crate::postgres::listener(pool, names).await?;
                Ok(Wakeup::Listen { pool: pool.clone(), names: names.clone(), listener: Some(listener) })
            }
            #[allow(unreachable_patterns)]
            _ => {
                let _ = names;
                Ok(Wakeup::Poll)
            }
        }
    }
}

/// A wake-up signal for the tailer.
pub(crate) enum Wakeup {
    /// Only the poll interval.
    Poll,
    /// PostgreSQL `LISTEN` on the outbox's channel; `None` after the listener failed, until it
    /// is set up again.
    #[cfg(feature = "postgres")]
    Listen { pool: crate::postgres::Pool, names: SourceNames, listener: Option<sqlx::postgres::PgListener> },
}

impl Wakeup {
    /// Resolves when a change may be waiting: a notification arrived, or the listener lost its
    /// connection (notifications sent meanwhile are lost, so the caller should look). Never
    /// resolves for [`Wakeup::Poll`]. Cancel-safe: a notification not yet returned stays
    /// buffered in the listener.
    pub(crate) async fn changed(&mut self) -> Result<(), SourceError> {
        match self {
            Self::Poll => std::future::pending().await,
            #[cfg(feature = "postgres")]
            Self::Listen { pool, names, listener } => {
                let Some(active) = listener else {
                    // Set up again after a failure; changes made meanwhile sent no notification
                    // this listener saw, so report a possible change at once.
                    *listener = Some(crate::postgres::listener(pool, names).await?);
                    return Ok(());
                };
                match active.try_recv().await {
                    Ok(_) => {
                        // Many notifications for one batch of commits need one read only.
                        while active.next_buffered().is_some() {}
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "pushgate source: LISTEN connection failed; setting it up again");
                        *listener = None;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Whether `error` says a table does not exist: SQLSTATE `42P01` (PostgreSQL), `42S02`
/// (MariaDB/MySQL), or SQLite's `no such table`, which has no code of its own.
fn is_missing_table(error: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(error.code().as_deref(), Some("42P01" | "42S02")) || error.message().starts_with("no such table")
}
