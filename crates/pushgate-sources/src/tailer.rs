//! The tailer: reads the outbox in order, publishes each change to the hub, marks it published,
//! and keeps doing so across disconnections.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use pushgate_hub::{Cursor, Epoch, FetchOptions, Hub, HubError, TopicName};
use tokio::sync::{Mutex, MutexGuard, watch};
use tokio::time::Instant;

use crate::backend::{Backend, Dialect};
use crate::change::change_event;
use crate::config::{SourceConfig, redact_url};
use crate::error::SourceError;
use crate::model::{ColumnKind, OutboxRow, SourceNames, Watched};

/// How old the list of watched tables (topics, column fixes) may be when changes are
/// published: older, it is read again first, so a re-install (after `ALTER TABLE`, or with a
/// new topic) takes effect within about this long, without a restart. A table the tailer does
/// not know yet is looked up at once.
const RELOAD_AFTER: Duration = Duration::from_secs(1);

/// What a [`Source`] is doing, for health checks and logs.
///
/// ```
/// use pushgate_sources::SourceState;
///
/// let state = SourceState::Retrying { error: "connection refused".into(), attempt: 3 };
/// assert_eq!(state.to_string(), "retrying (attempt 3): connection refused");
/// assert!(!state.is_live());
/// assert!(SourceState::Live.is_live());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceState {
    /// Connecting for the first time (or not running yet).
    Connecting,
    /// Connected and tailing the outbox.
    Live,
    /// The last attempt failed; the next one comes after a backoff delay.
    Retrying {
        /// Why the last attempt failed.
        error: String,
        /// Failures in a row so far.
        attempt: u32,
    },
}

impl SourceState {
    /// Whether the source is connected and tailing.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Live)
    }
}

impl fmt::Display for SourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting => f.write_str("connecting"),
            Self::Live => f.write_str("live"),
            Self::Retrying { error, attempt } => write!(f, "retrying (attempt {attempt}): {error}"),
        }
    }
}

/// One tailer of one database: publishes every change its triggers record into a [`Hub`].
///
/// Create it with [`Source::new`], drive it with [`Source::run`] (one task, until the hub
/// closes), and share it (`Arc<Source>`) with code that needs [`Source::quiesce`] or
/// [`Source::state`]. Run one tailer per database and set of [`SourceNames`]: two would publish
/// every change twice. See the [crate documentation](crate) for the guarantees.
pub struct Source {
    config: SourceConfig,
    dialect: Dialect,
    /// The URL as sqlx wants it.
    url: String,
    state: watch::Sender<SourceState>,
    /// Held by the tailer while it publishes a batch, and by a [`Quiesced`] guard.
    pump: Mutex<Pump>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source").field("config", &self.config).field("state", &*self.state.borrow()).finish()
    }
}

impl Source {
    /// A tailer for `config`, not yet connected.
    ///
    /// # Errors
    /// [`SourceError::Config`] when the URL's scheme is unknown or its database's feature is not
    /// compiled in.
    ///
    /// ```
    /// use pushgate_sources::{Source, SourceConfig, SourceError};
    ///
    /// let err = Source::new(SourceConfig::new("oracle://db/x")).unwrap_err();
    /// assert!(matches!(err, SourceError::Config(_)));
    /// ```
    pub fn new(config: SourceConfig) -> Result<Self, SourceError> {
        let (dialect, url) = Dialect::parse(&config.url)?;
        Ok(Self {
            config,
            dialect,
            url,
            state: watch::Sender::new(SourceState::Connecting),
            pump: Mutex::new(Pump::default()),
        })
    }

    /// The database URL with any password replaced by `***`, for health pages and logs.
    pub fn url_redacted(&self) -> String {
        redact_url(&self.config.url)
    }

    /// What the tailer is doing now.
    pub fn state(&self) -> SourceState {
        self.state.borrow().clone()
    }

    /// Tails the outbox into `hub` until the hub is closed; never returns earlier and never
    /// panics. Any failure (connecting, reading, publishing) is logged, shown in
    /// [`state`](Self::state), and followed by a fresh connection after a backoff delay (full
    /// jitter between the configured bounds, 100 ms to 10 s by default). Changes are marked
    /// published only after the hub accepted them, so a failure loses nothing.
    pub async fn run(&self, hub: Hub) {
        let mut failures = 0u32;
        while !hub.is_closed() {
            let error = match self.session(&hub, &mut failures).await {
                Ok(()) => break,
                Err(_) if hub.is_closed() => break,
                Err(error) => error,
            };
            failures = failures.saturating_add(1);
            let delay = backoff(failures, self.config.backoff_min, self.config.backoff_max);
            tracing::warn!(
                url = %self.url_redacted(), error = %error, attempt = failures, retry_in_ms = delay.as_millis() as u64,
                "pushgate source failed; reconnecting"
            );
            self.state.send_replace(SourceState::Retrying { error: error.to_string(), attempt: failures });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = hub.closed() => break,
            }
        }
        if let Some(backend) = self.pump.lock().await.backend.take() {
            backend.close().await;
        }
    }

    /// Pauses the tailer, publishes every change pending in the outbox, and returns a guard
    /// holding the hub cursor at that point: every change committed before this call has been
    /// published at or before [`Quiesced::cursor`]. The tailer stays paused until the guard is
    /// dropped, so keep it only while reading a snapshot (see the [crate
    /// documentation](crate)).
    ///
    /// Works whether or not [`run`](Self::run) is running (it connects itself if needed).
    ///
    /// # Errors
    /// A database failure, or the hub refusing a change (closed, say).
    pub async fn quiesce(&self, hub: &Hub) -> Result<Quiesced<'_>, SourceError> {
        let mut pump = self.pump.lock().await;
        let backend = match &pump.backend {
            Some(backend) => backend.clone(),
            None => {
                let backend = Backend::connect(self.dialect, &self.url).await?;
                pump.backend = Some(backend.clone());
                backend
            }
        };
        while pump.publish_batch(&backend, &self.config, hub).await? == self.config.batch_size {}
        let cursor = pump.head(hub).await?;
        Ok(Quiesced { _pump: pump, cursor })
    }

    /// One connection's life: connect, then tail until the hub closes (`Ok`) or anything fails.
    async fn session(&self, hub: &Hub, failures: &mut u32) -> Result<(), SourceError> {
        let names = &self.config.names;
        let connected = tokio::select! {
            connected = Backend::connect(self.dialect, &self.url) => connected?,
            () = hub.closed() => return Ok(()),
        };
        // The wake-up is set up before the first read: a change committed between the two
        // either is read or wakes the loop.
        let mut wakeup = connected.wakeup(names).await?;
        {
            let mut pump = self.pump.lock().await;
            if let Some(old) = pump.backend.replace(connected.clone()) {
                old.close().await;
            }
            pump.reload(&connected, names).await?;
        }
        let backend = connected;
        self.state.send_replace(SourceState::Live);
        *failures = 0;
        tracing::info!(url = %self.url_redacted(), "pushgate source live");

        let mut next_prune = Instant::now();
        loop {
            loop {
                let mut pump = self.pump.lock().await;
                let fetched = pump.publish_batch(&backend, &self.config, hub).await?;
                if fetched < self.config.batch_size {
                    break;
                }
            }
            if Instant::now() >= next_prune {
                let pruned = backend.prune(names, self.config.retention).await?;
                if pruned > 0 {
                    tracing::debug!(
                        pruned,
                        outbox = names.outbox(),
                        "pushgate source pruned published changes"
                    );
                }
                next_prune = Instant::now() + self.config.prune_every();
            }
            tokio::select! {
                biased;
                () = hub.closed() => return Ok(()),
                woke = wakeup.changed() => woke?,
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }
}

/// The tailer paused after [`Source::quiesce`]; dropping it lets the tailer go on.
#[must_use = "the tailer is paused only while the guard is held"]
pub struct Quiesced<'a> {
    _pump: MutexGuard<'a, Pump>,
    cursor: Cursor,
}

impl Quiesced<'_> {
    /// A hub cursor after every change this source has published: subscribe from it after
    /// reading a snapshot, and no change is missed.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }
}

impl fmt::Debug for Quiesced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quiesced").field("cursor", &self.cursor).finish_non_exhaustive()
    }
}

/// What publishing needs and the tailer and [`Source::quiesce`] share, behind one lock.
#[derive(Default)]
struct Pump {
    backend: Option<Backend>,
    /// Watched tables by name.
    targets: HashMap<String, Target>,
    reloaded_at: Option<Instant>,
    /// The hub position of the last event this source published.
    last: Option<(Epoch, u64)>,
}

/// Where a table's changes go and how its columns are fixed.
struct Target {
    topic: TopicName,
    fixes: HashMap<String, ColumnKind>,
}

impl Pump {
    async fn reload(&mut self, backend: &Backend, names: &SourceNames) -> Result<(), SourceError> {
        let watched = backend.watched(names).await?;
        self.targets = watched.into_iter().map(Target::of).collect::<Result<_, _>>()?;
        self.reloaded_at = Some(Instant::now());
        Ok(())
    }

    /// Publishes up to one batch of pending changes in outbox order and marks them published.
    /// Returns how many were fetched: fewer than the batch size means the outbox was drained.
    async fn publish_batch(
        &mut self,
        backend: &Backend,
        config: &SourceConfig,
        hub: &Hub,
    ) -> Result<usize, SourceError> {
        let names = &config.names;
        let limit = i64::try_from(config.batch_size).unwrap_or(i64::MAX);
        let rows = backend.fetch_pending(names, limit).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let stale = self.reloaded_at.is_none_or(|at| at.elapsed() >= RELOAD_AFTER);
        if stale || rows.iter().any(|row| !self.targets.contains_key(&row.table)) {
            self.reload(backend, names).await?;
        }
        let mut published = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            match self.publish(row, hub).await {
                Ok(()) => published.push(row.id),
                Err(error) if is_permanent(&error) => {
                    // Retrying cannot help, and holding it back would stall every change after
                    // it: log it loudly and move on.
                    tracing::error!(id = row.id, table = %row.table, error = %error, "pushgate source skipped a change");
                    published.push(row.id);
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if !published.is_empty() {
            backend.mark_published(names, &published).await?;
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(rows.len()),
        }
    }

    async fn publish(&mut self, row: &OutboxRow, hub: &Hub) -> Result<(), SourceError> {
        let fallback;
        let target = match self.targets.get(&row.table) {
            Some(target) => target,
            None => {
                // No longer watched (uninstalled after the change was recorded): its topic is
                // forgotten, so use the default one rather than drop the change.
                fallback = Target::of(Watched {
                    table: row.table.clone(),
                    topic: format!("db.{}", row.table),
                    fixes: HashMap::new(),
                })
                .map_err(|error| SourceError::MalformedRow { id: row.id, reason: error.to_string() })?
                .1;
                &fallback
            }
        };
        let event = change_event(row, &target.fixes)?;
        let event = hub.publish(&target.topic, event).await?;
        self.last = Some((event.epoch(), event.position()));
        Ok(())
    }

    /// A cursor after every event published so far: the hub's head, read by a zero-wait fetch
    /// from `now` (the position is hub-wide, so one topic is enough), and never before this
    /// source's last event.
    async fn head(&self, hub: &Hub) -> Result<Cursor, SourceError> {
        let topic = match self.targets.values().next() {
            Some(target) => target.topic.clone(),
            None => TopicName::new("pushgate.sources").map_err(HubError::from)?,
        };
        let batch = hub.fetch(&[topic], Cursor::Now, &FetchOptions::default().limit(1)).await?;
        let epoch = hub.epoch();
        let head = match batch.cursor {
            Cursor::At { epoch: at, position } if at == epoch => position,
            _ => 0,
        };
        let last = self.last.filter(|(at, _)| *at == epoch).map_or(0, |(_, position)| position);
        Ok(Cursor::at(epoch, head.max(last)))
    }
}

impl Target {
    fn of(watched: Watched) -> Result<(String, Self), SourceError> {
        let topic = TopicName::new(&watched.topic).map_err(|error| {
            SourceError::Config(format!("watched table {:?} has an invalid topic: {error}", watched.table))
        })?;
        Ok((watched.table, Self { topic, fixes: watched.fixes }))
    }
}

/// Whether a change can never be published, however often it is retried.
fn is_permanent(error: &SourceError) -> bool {
    matches!(
        error,
        SourceError::MalformedRow { .. }
            | SourceError::Hub(
                HubError::DataTooLarge { .. } | HubError::InvalidEventType(_) | HubError::InvalidTopic(_)
            )
    )
}

/// The delay before reconnection attempt `failures`: full jitter, a uniform random time up to
/// `min · 2^failures` capped at `max`, but at least `min`.
fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let cap = min.saturating_mul(1u32 << failures.min(16)).min(max);
    cap.mul_f64(random_unit()).max(min)
}

/// A random number in `[0, 1)`, from std's randomly keyed hasher (good enough for jitter).
fn random_unit() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_bounds() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
        for failures in 0..40 {
            let delay = backoff(failures, min, max);
            assert!(delay >= min && delay <= max, "{failures}: {delay:?}");
            assert!(delay <= min.saturating_mul(1 << failures.min(16)).max(min), "{failures}: {delay:?}");
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff(10, min, max)).collect();
        assert!(spread.len() > 40, "jitter should vary");
    }
}
