//! The tailer: reads the outbox in order, publishes each change to the hub, marks it published,
//! and keeps doing so across disconnections.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pushgate_hub::{Backoff, Cursor, Epoch, FetchOptions, HistoryTier, Hub, HubError, TopicName};
use tokio::sync::{Mutex, MutexGuard, watch};
use tokio::time::Instant;

use crate::backend::{Backend, Dialect};
use crate::change::change_event;
use crate::config::{SourceConfig, redact_url};
use crate::error::SourceError;
use crate::history::OutboxTier;
use crate::lease::{Lease, LeaseClock, LeaseTiming};
use crate::model::{ColumnKind, HubRecord, Mark, OutboxRow, SourceNames, Watched};

/// How old the list of watched tables (topics, column fixes) may be when changes are
/// published: older, it is read again first, so a re-install (after `ALTER TABLE`, or with a
/// new topic) takes effect within about this long, without a restart. A table the tailer does
/// not know yet is looked up at once.
const RELOAD_AFTER: Duration = Duration::from_secs(1);

/// How often a standby's [`Source::quiesce`] looks whether the leader has published.
const AWAIT_LEADER_EVERY: Duration = Duration::from_millis(50);

/// What a [`Source`] is doing, for health checks and logs.
///
/// ```
/// use pushgate_sources::SourceState;
///
/// let state = SourceState::Retrying { error: "connection refused".into(), attempt: 3 };
/// assert_eq!(state.to_string(), "retrying (attempt 3): connection refused");
/// assert!(!state.is_live());
/// assert!(SourceState::Live.is_live());
/// assert!(SourceState::Standby.is_ready() && !SourceState::Standby.is_live());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceState {
    /// Connecting for the first time (or not running yet).
    Connecting,
    /// Holding the source's lease and tailing the outbox: this node is the leader.
    Live,
    /// Connected, while another node (or process) holds the lease and tails the outbox; this
    /// one takes over when that one is gone.
    Standby,
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

    /// Whether the source is doing its part: tailing, or standing by to take over.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Live | Self::Standby)
    }
}

impl fmt::Display for SourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting => f.write_str("connecting"),
            Self::Live => f.write_str("live"),
            Self::Standby => f.write_str("standby"),
            Self::Retrying { error, attempt } => write!(f, "retrying (attempt {attempt}): {error}"),
        }
    }
}

/// One tailer of one database: publishes every change its triggers record into a [`Hub`].
///
/// Create it with [`Source::new`], drive it with [`Source::run`] (one task, until the hub
/// closes), and share it (`Arc<Source>`) with code that needs [`Source::quiesce`] or
/// [`Source::state`].
///
/// # One leader, any number of nodes
///
/// Every gateway node may run the same source: one at a time publishes. Each holds, or waits
/// for, a lease kept in the database itself (a PostgreSQL advisory lock, a MariaDB/MySQL named
/// lock, an OS lock on a file beside an SQLite database), on a session of its own. The holder
/// is [`SourceState::Live`]; the others are [`SourceState::Standby`] and try to take the lease
/// several times per [lease timeout](SourceConfig::lease_timeout). A holder that dies releases
/// it at once (its connection closes); one cut off from the database is dropped by the server
/// within three fifths of the timeout, and stops publishing by itself by then, since it can no
/// longer confirm its lease. The new leader reads the unpublished changes in id order and
/// publishes them with the same idempotency keys, so a change the old leader published but
/// had not marked is not delivered twice where the hub deduplicates across nodes (Redis).
pub struct Source {
    config: SourceConfig,
    dialect: Dialect,
    /// The URL as sqlx wants it.
    url: String,
    state: watch::Sender<SourceState>,
    /// Held by the tailer while it publishes a batch, and by a [`Quiesced`] guard.
    pump: Mutex<Pump>,
    /// How many [`run`](Self::run)s are going on (one, normally).
    running: AtomicUsize,
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
            running: AtomicUsize::new(0),
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

    /// Whether this node holds the source's lease and tails it now ([`SourceState::Live`]).
    pub fn is_leader(&self) -> bool {
        self.state.borrow().is_live()
    }

    /// The outbox as a history tier for the hub this source publishes into
    /// ([`HubBuilder::tier`](pushgate_hub::HubBuilder::tier)): a reader whose cursor is older
    /// than the hub's memory gets the source's changes from the outbox (within its
    /// [retention](SourceConfig::retention)) instead of a reset. It reads through a small pool
    /// of its own, connected on first use, on any node, leader or standby.
    ///
    /// It serves the topics of this source: events published to them otherwise (through the
    /// HTTP API, say) are not in the outbox, and a read across one is answered as missed from
    /// there on.
    pub fn history_tier(&self) -> Arc<dyn HistoryTier> {
        Arc::new(OutboxTier::new(self.dialect, self.url.clone(), self.config.names.clone()))
    }

    /// The state now, and every change after: for a caller that reports transitions (the
    /// gateway logs when a source stands by).
    pub fn state_changes(&self) -> watch::Receiver<SourceState> {
        self.state.subscribe()
    }

    /// Tails the outbox into `hub` until the hub is closed; never returns earlier and never
    /// panics. It takes the source's lease first, standing by while another node holds it
    /// (see [`Source`]). Any failure (connecting, reading, publishing, losing the lease) is
    /// logged, shown in [`state`](Self::state), and followed by a fresh connection after a
    /// backoff delay (full jitter between the configured bounds, 100 ms to 10 s by default).
    /// Changes are marked published only after the hub accepted them, so a failure loses
    /// nothing.
    pub async fn run(&self, hub: Hub) {
        let _running = Running::enter(&self.running);
        let mut backoff = Backoff::new(self.config.backoff_min, self.config.backoff_max);
        // A database never prepared is said once, as an error, rather than at every retry.
        let mut said_not_installed = false;
        while !hub.is_closed() {
            let error = match self.lead(&hub, &mut backoff).await {
                Ok(()) => break,
                Err(_) if hub.is_closed() => break,
                Err(error) => error,
            };
            let delay = backoff.next_delay();
            let failures = backoff.failures();
            match &error {
                SourceError::NotInstalled(_) if said_not_installed => tracing::debug!(
                    url = %self.url_redacted(), error = %error, attempt = failures,
                    "pushgate source still not installed; retrying"
                ),
                SourceError::NotInstalled(_) => {
                    said_not_installed = true;
                    tracing::error!(
                        url = %self.url_redacted(), error = %error,
                        "pushgate source: this database is not prepared; run `pushgate db install` on it (retrying until then)"
                    );
                }
                _ => tracing::warn!(
                    url = %self.url_redacted(), error = %error, attempt = failures, retry_in_ms = delay.as_millis() as u64,
                    "pushgate source failed; reconnecting"
                ),
            }
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

    /// Pauses the tailer, makes sure every change pending in the outbox is published, and
    /// returns a guard holding the hub cursor at that point: every change committed before
    /// this call has been published at or before [`Quiesced::cursor`]. The tailer stays paused
    /// until the guard is dropped, so keep it only while reading a snapshot (see the [crate
    /// documentation](crate)).
    ///
    /// On the leader it publishes what is pending itself. On a standby it waits until the
    /// leader has published those changes (at most twice the lease timeout plus a second,
    /// else [`SourceError::LeaderTimeout`]); the cursor is then this hub's head, which with a
    /// shared hub (Redis) may be just before changes published on the leader's node: they
    /// arrive as events after the snapshot, which applying by key makes harmless. Without
    /// [`run`](Self::run) it takes the lease for the guard's lifetime when it is free, connecting
    /// as needed, and otherwise waits as a standby does.
    ///
    /// # Errors
    /// A database failure, the hub refusing a change (closed, say), or
    /// [`SourceError::LeaderTimeout`].
    pub async fn quiesce(&self, hub: &Hub) -> Result<Quiesced<'_>, SourceError> {
        let mut pump = self.pump.lock().await;
        if let Some(clock) = pump.clock.clone().filter(LeaseClock::is_valid) {
            let backend = self.pool(&mut pump).await?;
            while pump.publish_batch(&backend, &self.config, hub, &clock).await? == self.config.batch_size {}
            let cursor = pump.head(hub).await?;
            return Ok(Quiesced { _pump: pump, _lease: None, cursor });
        }
        if self.running.load(Ordering::Acquire) == 0 {
            // No tailer here: lead for the length of the snapshot, if no one else does.
            let mut lease = Lease::open(self.dialect, &self.url, &self.config.names, self.timing()).await?;
            if lease.try_acquire().await? {
                let backend = self.pool(&mut pump).await?;
                let clock = lease.clock();
                loop {
                    lease.confirm().await?;
                    if pump.publish_batch(&backend, &self.config, hub, &clock).await? < self.config.batch_size
                    {
                        break;
                    }
                }
                let cursor = pump.head(hub).await?;
                return Ok(Quiesced { _pump: pump, _lease: Some(lease), cursor });
            }
            lease.close().await;
        }
        // Another node (or this one's tailer, between two leases) leads: it publishes.
        let backend = self.pool(&mut pump).await?;
        let Some(last) = backend.last_id(&self.config.names).await? else {
            let cursor = pump.head(hub).await?;
            return Ok(Quiesced { _pump: pump, _lease: None, cursor });
        };
        drop(pump);
        let bound = self.config.lease_timeout * 2 + Duration::from_secs(1);
        let deadline = Instant::now() + bound;
        loop {
            // Looked at under the pump's lock: this node's tailer, should it lead meanwhile,
            // replaces the pool it holds.
            let pump = self.pump.lock().await;
            let backend = match &pump.backend {
                Some(backend) => backend.clone(),
                None => Backend::connect(self.dialect, &self.url).await?,
            };
            if !backend.pending_through(&self.config.names, last).await? {
                let cursor = pump.head(hub).await?;
                return Ok(Quiesced { _pump: pump, _lease: None, cursor });
            }
            drop(pump);
            if Instant::now() >= deadline {
                return Err(SourceError::LeaderTimeout(bound));
            }
            // The leader may poll slowly and be woken by a notification this node cannot see.
            tokio::time::sleep(self.config.poll_interval.min(AWAIT_LEADER_EVERY)).await;
        }
    }

    /// The pump's pool, connecting one if there is none.
    async fn pool(&self, pump: &mut Pump) -> Result<Backend, SourceError> {
        if let Some(backend) = &pump.backend {
            return Ok(backend.clone());
        }
        let backend = Backend::connect(self.dialect, &self.url).await?;
        pump.backend = Some(backend.clone());
        Ok(backend)
    }

    fn timing(&self) -> LeaseTiming {
        LeaseTiming::of(self.config.lease_timeout)
    }

    /// One lease's life: take the lease (standing by while another node holds it), then tail
    /// while confirming it, until the hub closes (`Ok`) or anything fails, the lease included.
    async fn lead(&self, hub: &Hub, backoff: &mut Backoff) -> Result<(), SourceError> {
        let timing = self.timing();
        let mut lease = tokio::select! {
            lease = Lease::open(self.dialect, &self.url, &self.config.names, timing) => lease?,
            () = hub.closed() => return Ok(()),
        };
        let mut standing_by = false;
        loop {
            match lease.try_acquire().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => {
                    lease.close().await;
                    return Err(error);
                }
            }
            if !standing_by {
                standing_by = true;
                backoff.reset();
                self.state.send_replace(SourceState::Standby);
                tracing::debug!(url = %self.url_redacted(), "pushgate source standing by: another node holds its lease");
            }
            tokio::select! {
                () = tokio::time::sleep(timing.retry) => {}
                () = hub.closed() => {
                    lease.close().await;
                    return Ok(());
                }
            }
        }
        let clock = lease.clock();
        let result = tokio::select! {
            result = self.session(hub, backoff, &clock) => result,
            lost = lease.keep() => Err(lost),
        };
        lease.close().await;
        result
    }

    /// Tailing while this node holds the lease of `clock`: connect, then publish until the hub
    /// closes (`Ok`) or anything fails.
    async fn session(&self, hub: &Hub, backoff: &mut Backoff, clock: &LeaseClock) -> Result<(), SourceError> {
        let names = &self.config.names;
        let connected = tokio::select! {
            connected = Backend::connect(self.dialect, &self.url) => connected?,
            () = hub.closed() => return Ok(()),
        };
        connected.check_installed(names).await?;
        // The wake-up is set up before the first read: a change committed between the two
        // either is read or wakes the loop.
        let mut wakeup = connected.wakeup(names).await?;
        {
            let mut pump = self.pump.lock().await;
            if let Some(old) = pump.backend.replace(connected.clone()) {
                old.close().await;
            }
            pump.reload(&connected, names).await?;
            pump.clock = Some(clock.clone());
        }
        let backend = connected;
        self.state.send_replace(SourceState::Live);
        backoff.reset();
        tracing::info!(url = %self.url_redacted(), "pushgate source live: this node holds its lease");

        let mut next_prune = Instant::now();
        loop {
            loop {
                let mut pump = self.pump.lock().await;
                let fetched = pump.publish_batch(&backend, &self.config, hub, clock).await?;
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

/// Counts a [`Source::run`] while it goes on, however it ends (an aborted task included).
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The tailer paused after [`Source::quiesce`]; dropping it lets the tailer go on.
#[must_use = "the tailer is paused only while the guard is held"]
pub struct Quiesced<'a> {
    _pump: MutexGuard<'a, Pump>,
    /// The lease taken for the snapshot when no tailer of this source runs here.
    _lease: Option<Lease>,
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
    /// The lease of the tailer's current lead: nothing is published once it is not valid.
    clock: Option<LeaseClock>,
    /// The first part of every idempotency key, `<source-key>` of `<source-key>:<outbox id>`:
    /// the same for this database and outbox on every node (see [`Backend::source_key`]).
    key: Option<String>,
    /// The hub epoch whose topics' `seq` this source has restored from the outbox.
    restored: Option<Epoch>,
    /// The `seq` and position of the newest event of each topic this source has published (or
    /// restored) in that epoch: restored again before each publish, since the hub forgets a
    /// quiet topic nobody reads and would number it from 1 again (a cheap no-op otherwise).
    numbers: HashMap<TopicName, (u64, u64)>,
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
        lease: &LeaseClock,
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
        let key = match &self.key {
            Some(key) => key.clone(),
            None => {
                backend.check_outbox(names).await?;
                self.key.insert(backend.source_key(names).await?).clone()
            }
        };
        if self.restored != Some(hub.epoch()) {
            self.numbers = restore_topics(backend, names, hub).await?;
            self.restored = Some(hub.epoch());
        }
        let mut published = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            let outcome = match lease.check() {
                Ok(()) => self.publish(row, hub, &key).await,
                Err(lost) => Err(lost),
            };
            match outcome {
                Ok(record) => published.push(Mark { id: row.id, hub: Some(record) }),
                Err(error) if is_permanent(&error) => {
                    // Retrying cannot help, and holding it back would stall every change after
                    // it: log it loudly and move on.
                    tracing::error!(id = row.id, table = %row.table, error = %error, "pushgate source skipped a change");
                    published.push(Mark { id: row.id, hub: None });
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

    /// Publishes one change with its idempotency key `<key>:<outbox id>`: published again (by
    /// this node after a failure, or by another after a takeover), it is answered with the
    /// original event and stored once. Returns where it is in the hub.
    async fn publish(&mut self, row: &OutboxRow, hub: &Hub, key: &str) -> Result<HubRecord, SourceError> {
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
        let event = change_event(row, &target.fixes)?.idempotency_key(format!("{key}:{}", row.id));
        if let Some(&(seq, position)) = self.numbers.get(&target.topic)
            && let Err(error) = hub.restore_topic(&target.topic, seq, position)
        {
            // Numbered otherwise meanwhile (another publisher): the hub's numbers win.
            tracing::debug!(topic = %target.topic, %error, "pushgate source did not restore a topic's seq");
        }
        let published = hub.publish_idempotent(&target.topic, event).await?;
        self.last = Some((published.epoch(), published.position()));
        let newest = self.numbers.entry(target.topic.clone()).or_default();
        *newest = (*newest).max((published.seq(), published.position()));
        // A replay does not say when the original was published; it was moments ago (the
        // window is minutes), so now stands in for it.
        let ts = published.event().map_or_else(now_ms, |event| event.timestamp_ms());
        let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(HubRecord {
            topic: target.topic.as_str().to_owned(),
            epoch: i64::from(published.epoch().as_u32()),
            position: number(published.position()),
            seq: number(published.seq()),
            ts: number(ts),
        })
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

/// Continues each of the source's topics where the outbox says `hub`'s epoch left it (its newest
/// recorded `seq` and position), before anything new is published: a hub that resumed its epoch
/// after a restart then numbers the next change of a topic as the one after the last, and a
/// reader from before the restart is not told it missed what the outbox still holds. A no-op
/// for a fresh epoch, and on a shared hub (Redis), which keeps the numbers itself. Returns the
/// numbers it restored.
async fn restore_topics(
    backend: &Backend,
    names: &SourceNames,
    hub: &Hub,
) -> Result<HashMap<TopicName, (u64, u64)>, SourceError> {
    let epoch = i64::from(hub.epoch().as_u32());
    let mut restored = HashMap::new();
    for (topic, seq, position) in backend.last_seqs(names, epoch).await? {
        let Ok(name) = TopicName::new(&topic) else { continue };
        let (seq, position) = (u64::try_from(seq).unwrap_or(0), u64::try_from(position).unwrap_or(0));
        match hub.restore_topic(&name, seq, position) {
            Ok(()) => {
                restored.insert(name, (seq, position));
            }
            // The hub numbered the topic otherwise (another publisher was first): its numbers win.
            Err(error @ HubError::RestoreConflict { .. }) => {
                tracing::warn!(topic = %topic, error = %error, "pushgate source could not continue a topic's seq");
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(restored)
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
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
