//! The lease that lets one tailer of a database publish at a time, however many gateway nodes
//! run the same source, and hands it to another node when the holder is gone.
//!
//! The lease lives in the database the source tails, on a session of its own (not a pooled
//! connection, which the pool could close or share):
//!
//! - **PostgreSQL**: `pg_try_advisory_lock(key)`, the key a stable hash of the schema and the
//!   outbox's name (advisory locks are per database). The session runs with
//!   `idle_session_timeout` and `tcp_user_timeout`, so the server ends a holder that went
//!   silent, and the lock with it.
//! - **MariaDB / MySQL**: `GET_LOCK('pushgate:<database>.<outbox>', 0)` (named locks are
//!   server-wide); the session's `wait_timeout` does what `idle_session_timeout` does on
//!   PostgreSQL, in whole seconds.
//! - **SQLite**: an exclusive OS lock (`flock`) on a file beside the database,
//!   `<database>-<outbox>.lock`: SQLite is one machine, and the kernel releases the lock the
//!   moment the holding process dies. An in-memory database belongs to its process: no lease.
//!
//! A process that dies releases the lease at once (the kernel closes its connection). A holder
//! that is cut off instead is dropped by the server after [`LeaseTiming::server_idle`]. The
//! holder confirms its lease every [`LeaseTiming::heartbeat`] and treats it as lost as soon as
//! a confirmation fails, or when the last confirmed one is older than the server's idle limit
//! ([`LeaseClock`]): from then on another node may hold it, so it publishes nothing more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::Dialect;
use crate::error::SourceError;
use crate::model::SourceNames;

/// The intervals derived from a source's lease timeout `T`: the holder confirms every `T/5`,
/// the server drops a session silent for `3T/5`, standbys try every `T/5`. A holder killed or
/// cut off is replaced within `3T/5 + T/5`, inside `T`, with three confirmations of margin
/// against a slow one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseTiming {
    /// How often the holder confirms it still holds the lease; also how long one confirmation
    /// may take.
    pub(crate) heartbeat: Duration,
    /// How long the server keeps a silent lease session.
    pub(crate) server_idle: Duration,
    /// How often a standby tries to take the lease.
    pub(crate) retry: Duration,
}

impl LeaseTiming {
    pub(crate) fn of(timeout: Duration) -> Self {
        Self { heartbeat: timeout / 5, server_idle: timeout * 3 / 5, retry: timeout / 5 }
    }
}

/// Until when this node may publish as the leader: the start of its last confirmed heartbeat
/// plus the server's idle limit (before that, the server cannot have given the lease to anyone
/// else). Shared between the heartbeat, which extends it, and the publisher, which checks it
/// before every publish.
#[derive(Debug, Clone)]
pub(crate) struct LeaseClock {
    base: Instant,
    /// Nanoseconds after `base`; 0 once revoked.
    valid_until: Arc<AtomicU64>,
}

impl LeaseClock {
    fn new(valid_until: Instant) -> Self {
        let clock = Self { base: Instant::now(), valid_until: Arc::new(AtomicU64::new(0)) };
        clock.extend(valid_until);
        clock
    }

    fn extend(&self, until: Instant) {
        let nanos = u64::try_from(until.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        self.valid_until.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Whether the lease is certainly still this node's.
    pub(crate) fn is_valid(&self) -> bool {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now < self.valid_until.load(Ordering::Acquire)
    }

    /// Ends it: the lead it belonged to is over.
    pub(crate) fn revoke(&self) {
        self.valid_until.store(0, Ordering::Release);
    }

    /// Fails with [`SourceError::LeaseLost`] unless the lease is certainly still held.
    pub(crate) fn check(&self) -> Result<(), SourceError> {
        if self.is_valid() { Ok(()) } else { Err(SourceError::LeaseLost("its last confirmation is too old")) }
    }
}

/// A lease session: the connection (or file) that takes and holds one source's lease.
pub(crate) struct Lease {
    session: Session,
    timing: LeaseTiming,
    clock: Option<LeaseClock>,
}

enum Session {
    #[cfg(feature = "postgres")]
    Postgres { conn: sqlx::PgConnection, key: i64 },
    #[cfg(feature = "mysql")]
    MySql { conn: sqlx::MySqlConnection, name: String },
    #[cfg(feature = "sqlite")]
    File { path: std::path::PathBuf, file: std::fs::File, held: bool },
    /// Nothing to share with another process (an in-memory SQLite database).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Private,
}

impl Lease {
    /// Opens a lease session for the source at `url` (normalized by [`Dialect::parse`]) and the
    /// objects of `names`. Takes nothing yet.
    pub(crate) async fn open(
        dialect: Dialect,
        url: &str,
        names: &SourceNames,
        timing: LeaseTiming,
    ) -> Result<Self, SourceError> {
        let session = match dialect {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => postgres::open(url, names, timing).await?,
            #[cfg(feature = "mysql")]
            Dialect::MySql => mysql::open(url, names, timing).await?,
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => sqlite::open(url, names)?,
            #[allow(unreachable_patterns)]
            other => {
                let _ = (url, names);
                return Err(SourceError::Config(format!("the `{}` feature is not enabled", other.feature())));
            }
        };
        Ok(Self { session, timing, clock: None })
    }

    /// Tries to take the lease without waiting; true when this session holds it now.
    pub(crate) async fn try_acquire(&mut self) -> Result<bool, SourceError> {
        let started = Instant::now();
        let limit = self.timing.server_idle;
        let held = tokio::time::timeout(limit, self.session.try_acquire())
            .await
            .map_err(|_| SourceError::LeaseLost("taking it took too long"))??;
        if held {
            let until = self.valid_until(started);
            match &self.clock {
                Some(clock) => clock.extend(until),
                None => self.clock = Some(LeaseClock::new(until)),
            }
        }
        Ok(held)
    }

    /// The clock of the lease taken by [`try_acquire`](Self::try_acquire).
    pub(crate) fn clock(&self) -> LeaseClock {
        self.clock.clone().unwrap_or_else(|| LeaseClock::new(Instant::now()))
    }

    /// Checks once that the lease is still held, extending the clock when it is.
    pub(crate) async fn confirm(&mut self) -> Result<(), SourceError> {
        let started = Instant::now();
        // Bounded by the server's idle limit: past it the clock has run out anyway.
        let confirmed = tokio::time::timeout(self.timing.server_idle, self.session.still_held()).await;
        match confirmed {
            Ok(Ok(true)) => {
                let until = self.valid_until(started);
                if let Some(clock) = &self.clock {
                    clock.extend(until);
                }
                Ok(())
            }
            Ok(Ok(false)) => Err(SourceError::LeaseLost("the database no longer shows it held by this node")),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(SourceError::LeaseLost("confirming it took too long")),
        }
    }

    /// Confirms the lease every heartbeat until a confirmation fails; returns why. The clock
    /// is revoked then, so nothing publishes on a lease that may be someone else's.
    pub(crate) async fn keep(&mut self) -> SourceError {
        loop {
            tokio::time::sleep(self.timing.heartbeat).await;
            if let Err(error) = self.confirm().await {
                if let Some(clock) = &self.clock {
                    clock.revoke();
                }
                return error;
            }
        }
    }

    /// Releases the lease (closing its session) and revokes its clock.
    pub(crate) async fn close(self) {
        if let Some(clock) = &self.clock {
            clock.revoke();
        }
        match self.session {
            #[cfg(feature = "postgres")]
            Session::Postgres { conn, .. } => {
                let _ = sqlx::Connection::close(conn).await;
            }
            #[cfg(feature = "mysql")]
            Session::MySql { conn, .. } => {
                let _ = sqlx::Connection::close(conn).await;
            }
            #[cfg(feature = "sqlite")]
            Session::File { .. } => {}
            Session::Private => {}
        }
    }

    /// A private lease never expires: no other process can take it.
    fn valid_until(&self, confirmed_at: Instant) -> Instant {
        match self.session {
            Session::Private => confirmed_at + Duration::from_secs(100 * 365 * 24 * 3600),
            _ => confirmed_at + self.timing.server_idle,
        }
    }
}

impl Session {
    async fn try_acquire(&mut self) -> Result<bool, SourceError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres { conn, key } => postgres::try_acquire(conn, *key).await,
            #[cfg(feature = "mysql")]
            Self::MySql { conn, name } => mysql::try_acquire(conn, name).await,
            #[cfg(feature = "sqlite")]
            Self::File { path, file, held } => {
                if !*held {
                    *held = sqlite::try_lock(path, file)?;
                }
                Ok(*held)
            }
            Self::Private => Ok(true),
        }
    }

    async fn still_held(&mut self) -> Result<bool, SourceError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres { conn, .. } => postgres::still_held(conn).await,
            #[cfg(feature = "mysql")]
            Self::MySql { conn, name } => mysql::still_held(conn, name).await,
            #[cfg(feature = "sqlite")]
            Self::File { path, file, held } => Ok(*held && sqlite::still_locked(path, file)),
            Self::Private => Ok(true),
        }
    }
}

/// FNV-1a over `parts` (each followed by a 0 byte): a hash every node computes alike, unlike
/// std's randomly keyed one.
pub(crate) fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::Connection as _;
    use sqlx::postgres::{PgConnectOptions, PgConnection};

    use super::{LeaseTiming, Session, stable_hash};
    use crate::error::SourceError;
    use crate::model::SourceNames;

    pub(super) async fn open(
        url: &str,
        names: &SourceNames,
        timing: LeaseTiming,
    ) -> Result<Session, SourceError> {
        let mut options: PgConnectOptions =
            url.parse().map_err(|err| SourceError::Config(format!("PostgreSQL URL: {err}")))?;
        if options.get_application_name().is_none() {
            options = options.application_name("pushgate lease");
        }
        let mut conn = PgConnection::connect_with(&options).await?;
        // The server ends this session, and releases the lock, once it stays silent for
        // `server_idle`: a holder cut off from the database cannot keep the lease.
        let millis = timing.server_idle.as_millis().to_string();
        for setting in ["idle_session_timeout", "tcp_user_timeout"] {
            if let Err(error) = sqlx::query("SELECT set_config($1, $2, false)")
                .bind(setting)
                .bind(&millis)
                .execute(&mut conn)
                .await
            {
                // `idle_session_timeout` is PostgreSQL 14 and later; before, a holder cut off is
                // dropped only when TCP gives up on it.
                tracing::warn!(setting, error = %error, "pushgate source lease: the server does not take this setting");
            }
        }
        let schema: Option<String> =
            sqlx::query_scalar("SELECT current_schema()::text").fetch_one(&mut conn).await?;
        let key = stable_hash(&["pushgate source lease", schema.as_deref().unwrap_or(""), names.outbox()]);
        Ok(Session::Postgres { conn, key: key as i64 })
    }

    pub(super) async fn try_acquire(conn: &mut PgConnection, key: i64) -> Result<bool, SourceError> {
        // Called until it succeeds, then never again on this session (a second success would
        // stack a second hold, harmless as the session's end releases both).
        let held: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(conn).await?;
        Ok(held)
    }

    pub(super) async fn still_held(conn: &mut PgConnection) -> Result<bool, SourceError> {
        // An advisory lock lasts as long as its session and nothing else can release it: the
        // session answering is the lease confirmed.
        sqlx::query("SELECT 1").execute(conn).await?;
        Ok(true)
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use sqlx::Connection as _;
    use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};

    use super::{LeaseTiming, Session, stable_hash};
    use crate::error::SourceError;
    use crate::model::SourceNames;

    pub(super) async fn open(
        url: &str,
        names: &SourceNames,
        timing: LeaseTiming,
    ) -> Result<Session, SourceError> {
        let options: MySqlConnectOptions = url.parse()?;
        let mut conn = MySqlConnection::connect_with(&options).await?;
        // The server closes this session, and releases the lock, once it stays silent this
        // many whole seconds.
        let seconds = timing.server_idle.as_secs_f64().ceil().max(1.0) as u64;
        // Through the concrete connection: `raw_sql(..).execute(&mut conn)` is generic over the
        // executor, and rustc then cannot prove this future `Send`.
        let set = format!("SET SESSION wait_timeout = {seconds}");
        sqlx::Executor::execute(&mut conn, sqlx::raw_sql(&set)).await?;
        let database: Option<String> =
            sqlx::query_scalar("SELECT CAST(DATABASE() AS CHAR)").fetch_one(&mut conn).await?;
        Ok(Session::MySql { conn, name: lock_name(database.as_deref().unwrap_or(""), names.outbox()) })
    }

    /// `pushgate:<database>.<outbox>`, so an operator can ask who holds it
    /// (`SELECT IS_USED_LOCK('pushgate:shop.pushgate_outbox')`). Named locks are server-wide,
    /// hence the database, and at most 64 characters on MySQL: a longer name becomes
    /// `pushgate:` and a hash of both.
    pub(crate) fn lock_name(database: &str, outbox: &str) -> String {
        let name = format!("pushgate:{database}.{outbox}");
        if name.len() <= 64 {
            name
        } else {
            format!("pushgate:{:016x}", stable_hash(&["pushgate source lease", database, outbox]))
        }
    }

    pub(super) async fn try_acquire(conn: &mut MySqlConnection, name: &str) -> Result<bool, SourceError> {
        // GET_LOCK again on the holding session would succeed too, so this is idempotent; NULL
        // (an error in the server) counts as not taken.
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT GET_LOCK(?, 0)").bind(name).fetch_one(conn).await?;
        Ok(taken == Some(1))
    }

    pub(super) async fn still_held(conn: &mut MySqlConnection, name: &str) -> Result<bool, SourceError> {
        let mine: Option<i64> =
            sqlx::query_scalar("SELECT IS_USED_LOCK(?) = CONNECTION_ID()").bind(name).fetch_one(conn).await?;
        Ok(mine == Some(1))
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::fs::{File, OpenOptions, TryLockError};
    use std::os::unix::fs::MetadataExt as _;
    use std::path::{Path, PathBuf};
    use std::str::FromStr as _;

    use sqlx::sqlite::SqliteConnectOptions;

    use super::Session;
    use crate::error::SourceError;
    use crate::model::SourceNames;

    pub(super) fn open(url: &str, names: &SourceNames) -> Result<Session, SourceError> {
        let Some(path) = lock_path(url, names)? else {
            return Ok(Session::Private);
        };
        let file = open_file(&path)?;
        Ok(Session::File { path, file, held: false })
    }

    fn open_file(path: &Path) -> Result<File, SourceError> {
        OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(|err| {
            SourceError::Config(format!("cannot open the lease file {}: {err}", path.display()))
        })
    }

    /// `<database>-<outbox>.lock`, or None for an in-memory database.
    pub(crate) fn lock_path(url: &str, names: &SourceNames) -> Result<Option<PathBuf>, SourceError> {
        let options = SqliteConnectOptions::from_str(url)?;
        let filename = options.get_filename();
        let in_memory = filename.to_string_lossy().starts_with("file:sqlx-in-memory-")
            || url
                .split_once('?')
                .is_some_and(|(_, query)| query.split('&').any(|param| param == "mode=memory"));
        if in_memory {
            return Ok(None);
        }
        let mut name = filename.file_name().unwrap_or(filename.as_os_str()).to_os_string();
        name.push(format!("-{}.lock", names.outbox()));
        Ok(Some(filename.with_file_name(name)))
    }

    /// Locks the file at `path`, opening it again first if `file` is no longer the one there
    /// (someone deleted it: locking the old one would exclude no one).
    pub(super) fn try_lock(path: &Path, file: &mut File) -> Result<bool, SourceError> {
        if !still_locked(path, file) {
            *file = open_file(path)?;
        }
        match file.try_lock() {
            Ok(()) => Ok(still_locked(path, file)),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(err)) => {
                Err(SourceError::Config(format!("cannot lock the lease file {}: {err}", path.display())))
            }
        }
    }

    /// Whether `file` is still the one at `path` (not deleted or replaced, which would let
    /// another process lock a new file there).
    pub(super) fn still_locked(path: &Path, file: &File) -> bool {
        match (std::fs::metadata(path), file.metadata()) {
            (Ok(there), Ok(locked)) => there.ino() == locked.ino() && there.dev() == locked.dev(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_separates_parts() {
        assert_eq!(stable_hash(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(&["a", "b"]), stable_hash(&["a", "b"]));
        assert_ne!(stable_hash(&["ab", ""]), stable_hash(&["a", "b"]));
    }

    #[test]
    fn a_takeover_fits_in_the_timeout() {
        let timing = LeaseTiming::of(Duration::from_secs(5));
        assert!(timing.server_idle + timing.retry < Duration::from_secs(5));
        assert!(timing.heartbeat * 3 <= timing.server_idle);
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_runs_out_unless_extended() {
        let clock = LeaseClock::new(Instant::now() + Duration::from_secs(3));
        assert!(clock.is_valid());
        tokio::time::advance(Duration::from_secs(2)).await;
        clock.extend(Instant::now() + Duration::from_secs(3));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(clock.check().is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(clock.check(), Err(SourceError::LeaseLost(_))));
        clock.extend(Instant::now() + Duration::from_secs(3));
        clock.revoke();
        assert!(!clock.is_valid());
    }
}
