//! The tail: loads the retained log at start-up, then follows the shared stream and applies it
//! to this node's copy, reconnecting (and restoring a store that lost its state) after outages.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pushgate_hub::{Backoff, Data, Epoch, EventParts, Storage, TopicName};
use redis::Value;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};

use crate::failover::{acknowledged, check_continuity, confirm};
use crate::scripts::{RESTORED_FIELD, parse_epoch};
use crate::{ConnectError, Shared};

/// Entries read per command, at start-up and when catching up.
const BATCH: usize = 1000;
/// How long one `XREAD` blocks; also how often the tail looks at its own state when idle.
const BLOCK: Duration = Duration::from_millis(1000);
/// Topic counters sent per restore call, to keep each script call small.
const RESTORE_CHUNK: usize = 500;
/// Bounds of the delay between reconnection attempts (full jitter: nodes that lost the same
/// server come back spread out).
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// One log entry, parsed.
pub(crate) struct Entry {
    pub(crate) position: u64,
    pub(crate) topic: TopicName,
    pub(crate) seq: u64,
    pub(crate) event_type: Box<str>,
    pub(crate) data: Data,
    pub(crate) timestamp_ms: u64,
    pub(crate) epoch: Epoch,
    pub(crate) from: Option<Box<str>>,
    pub(crate) latest_key: Option<Box<str>>,
}

impl Entry {
    /// The event it holds (the epoch is the entry's own).
    pub(crate) fn into_parts(self) -> EventParts {
        EventParts {
            topic: self.topic,
            event_type: self.event_type,
            data: self.data,
            seq: self.seq,
            position: self.position,
            epoch: self.epoch,
            timestamp_ms: self.timestamp_ms,
            from: self.from,
            latest_key: self.latest_key,
        }
    }

    pub(crate) fn parse(entry: &StreamId) -> Result<Self, ConnectError> {
        let bad = |reason: String| ConnectError::BadEntry { id: entry.id.clone(), reason };
        let field = |name: &str| match entry.map.get(name) {
            Some(Value::BulkString(bytes)) => {
                std::str::from_utf8(bytes).map_err(|_| bad(format!("field {name} is not UTF-8")))
            }
            Some(Value::SimpleString(text)) => Ok(text.as_str()),
            _ => Err(bad(format!("field {name} is missing"))),
        };
        let number = |name: &str| {
            field(name)?.parse::<u64>().map_err(|_| bad(format!("field {name} is not a number")))
        };
        let position = entry
            .id
            .strip_suffix("-0")
            .and_then(|p| p.parse::<u64>().ok())
            .ok_or_else(|| bad("the ID is not <position>-0".to_owned()))?;
        Ok(Self {
            position,
            topic: TopicName::new(field("topic")?).map_err(|err| bad(err.to_string()))?,
            seq: number("seq")?,
            event_type: field("type")?.into(),
            data: Data::from_json(field("data")?).map_err(|err| bad(err.to_string()))?,
            timestamp_ms: number("ts")?,
            epoch: parse_epoch(field("epoch")?)
                .ok_or_else(|| bad("field epoch is not an epoch".to_owned()))?,
            from: match entry.map.get("from") {
                None => None,
                Some(_) => Some(field("from")?.into()),
            },
            latest_key: match entry.map.get("key") {
                None => None,
                Some(_) => Some(field("key")?.into()),
            },
        })
    }
}

/// Loads what the stream retains into the copy, oldest first.
pub(crate) async fn load(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
) -> Result<(), ConnectError> {
    let mut start = "-".to_owned();
    loop {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&shared.keys.log)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(BATCH)
            .query_async(connection)
            .await?;
        let Some(last) = reply.ids.last() else { return Ok(()) };
        start = format!("({}", last.id);
        if !acknowledged(shared, connection).await? {
            // The tail reads these again and applies them once replicas hold them.
            return Ok(());
        }
        for entry in &reply.ids {
            // Entries of an earlier epoch stay in the stream when only the epoch key was
            // replaced; this node starts in the store's epoch, so they are not its own.
            apply_or_skip(shared, entry, Foreign::Skip)?;
        }
    }
}

/// Applies one entry; one this node cannot read (not written by pushgate) is logged and passed
/// over, so it neither stops the node nor is read again. Its topic, if any, shows a gap.
///
/// # Errors
/// With [`Foreign::Stop`], an entry written under another epoch: the store was wiped and a node
/// started on it with a new epoch. Its positions cannot be mixed with this node's, so the
/// caller stops.
fn apply_or_skip(shared: &Shared, entry: &StreamId, foreign: Foreign) -> Result<(), ConnectError> {
    if let Some(through) = restored_after(entry) {
        passed_restore_marker(shared, entry, through);
        return Ok(());
    }
    if entry_position(entry).is_some_and(|position| position <= shared.replica.head()) {
        // Applied already, from the answer of this node's own publish (`publish.rs`): an
        // `XREAD` asked before that has it too. Not decoded again.
        return Ok(());
    }
    let ours = shared.replica.epoch();
    let applied = Entry::parse(entry).and_then(|parsed| {
        if parsed.epoch != ours {
            return Err(ConnectError::ForeignEntry { id: entry.id.clone(), epoch: parsed.epoch, ours });
        }
        shared
            .apply(parsed)
            .map_err(|err| ConnectError::BadEntry { id: entry.id.clone(), reason: err.to_string() })
    });
    if let Err(err) = applied {
        if matches!((&err, foreign), (ConnectError::ForeignEntry { .. }, Foreign::Stop)) {
            return Err(err);
        }
        tracing::error!(%err, "skipping a log entry");
        if let Some(position) = entry.id.split_once('-').and_then(|(p, _)| p.parse::<u64>().ok()) {
            shared.skipped_through.fetch_max(position, Ordering::AcqRel);
            shared.replica.mark_unseen_through(position);
        }
    }
    Ok(())
}

/// What to do with an entry of another epoch.
#[derive(Clone, Copy)]
enum Foreign {
    /// Pass over it, as over an unreadable entry (loading: it predates the store's epoch).
    Skip,
    /// Stop the node (following: the store changed epoch under it).
    Stop,
}

/// The position a restoring node had read through, when `entry` is the mark of a restore.
fn restored_after(entry: &StreamId) -> Option<u64> {
    match entry.map.get(RESTORED_FIELD)? {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

/// Reads past the mark of a restore. A node that had read less than the restoring one lost the
/// entries in between with the store: the topics concerned show a gap to readers from before.
fn passed_restore_marker(shared: &Shared, entry: &StreamId, through: u64) {
    let Some(position) = entry_position(entry) else { return };
    let before = read_after(shared);
    if before < through {
        tracing::warn!(
            read_through = before,
            restored_after = through,
            "redis lost entries this node had not read yet"
        );
        shared.replica.mark_lost_through(through);
    }
    shared.skipped_through.fetch_max(position, Ordering::AcqRel);
}

/// The position of an entry: its ID is `<position>-0`.
pub(crate) fn entry_position(entry: &StreamId) -> Option<u64> {
    entry.id.strip_suffix("-0").and_then(|p| p.parse().ok())
}

/// The position of the stream's oldest entry, if it has one.
pub(crate) async fn first_position(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
) -> redis::RedisResult<Option<u64>> {
    let first: StreamRangeReply = redis::cmd("XRANGE")
        .arg(&shared.keys.log)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(connection)
        .await?;
    Ok(first.ids.first().and_then(entry_position))
}

/// Where the next read starts: after the head, or after an unreadable entry past it.
fn read_after(shared: &Shared) -> u64 {
    shared.replica.head().max(shared.skipped_through.load(Ordering::Acquire))
}

/// Why a session with Redis ended.
pub(crate) enum Ended {
    /// Redis went away or failed: reconnect.
    Lost(String),
    /// The store holds another epoch, or lost events this node applied (it changed the epoch
    /// for that): stop.
    Fatal(String),
}

impl From<redis::RedisError> for Ended {
    fn from(err: redis::RedisError) -> Self {
        Self::Lost(err.to_string())
    }
}

/// Follows the log until the storage is dropped (the task is aborted then) or fatal.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    let mut number = 0;
    loop {
        number += 1;
        let ended = session(&shared, &mut backoff, number).await;
        shared.following.store(0, Ordering::Release);
        match ended {
            Ended::Fatal(reason) => {
                tracing::error!(%reason, "redis storage stopped; restart this node to adopt the store's epoch");
                shared.set_connection(None);
                shared.state.set_error(reason.clone());
                shared.state.set_fatal(reason);
                return;
            }
            Ended::Lost(reason) => {
                if shared.state.connected() {
                    tracing::warn!(%reason, "lost redis; publishes are refused until it is back");
                } else {
                    tracing::debug!(%reason, "redis still unreachable");
                }
                shared.state.set_connected(false);
                shared.set_connection(None);
                shared.state.set_error(reason);
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn session(shared: &Shared, backoff: &mut Backoff, number: u64) -> Ended {
    let timeout = shared.options.timeout;
    let result = async {
        // With Sentinels, the master they name now: after a failover, the promoted replica.
        let client = shared.endpoint.client(timeout).await?;
        let mut command =
            client.get_multiplexed_async_connection_with_config(&shared.connection_config(timeout)).await?;
        // XREAD BLOCK (and WAIT) hold their connection: a separate one keeps publishes from
        // queueing behind them.
        let mut blocking = client
            .get_multiplexed_async_connection_with_config(&shared.connection_config(timeout + BLOCK))
            .await?;
        // What a publish saw before this check is covered by it.
        shared.recheck.store(false, Ordering::Release);
        check_continuity(shared, &mut command).await?;
        restore_if_needed(shared, &mut command).await?;
        let was_down = !shared.state.connected();
        // Catch up before taking publishes again, so a publish waits for little.
        read_batch(shared, &mut blocking, None).await?;
        shared.set_connection(Some(command));
        shared.state.set_connected(true);
        shared.following.store(number, Ordering::Release);
        backoff.reset();
        if was_down {
            tracing::info!(head = shared.replica.head(), "redis connected; following the log");
        }
        loop {
            read_batch(shared, &mut blocking, Some(BLOCK)).await?;
            if shared.recheck.swap(false, Ordering::AcqRel) {
                // A publish found the store without our epoch (wiped without a restart), or
                // found a replica where the master was (a failover): look again.
                return Err(Ended::Lost("a publish found the store changed".to_owned()));
            }
        }
    };
    match result.await {
        Ok(never) => never,
        Err(ended) => ended,
    }
}

/// Reads and applies the entries after the head; with `block`, waits up to that long for one.
async fn read_batch(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
    block: Option<Duration>,
) -> Result<(), Ended> {
    loop {
        let after = format!("{}-0", read_after(shared));
        let mut command = redis::cmd("XREAD");
        command.arg("COUNT").arg(BATCH);
        if let Some(block) = block {
            command.arg("BLOCK").arg(block.as_millis() as u64);
        }
        command.arg("STREAMS").arg(&shared.keys.log).arg(&after);
        let reply: Option<StreamReadReply> = command.query_async(connection).await?;
        let entries: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
        let full = entries.len() >= BATCH;
        if !entries.is_empty() {
            confirm(shared, connection).await?;
        }
        let before = read_after(shared);
        if let Some(first) = entries.first().filter(|e| restored_after(e).is_none())
            && let Some(position) = entry_position(first)
            && position > before + 1
            && before > 0
        {
            // The stream was trimmed past what this node had read (it was away too long): any
            // topic may have lost events in between, even one with nothing left to show it.
            tracing::warn!(
                read_through = before,
                next = position,
                "log trimmed past this node's head; readers from before it get a reset"
            );
            shared.replica.mark_lost_through(position - 1);
        }
        for entry in &entries {
            apply_or_skip(shared, entry, Foreign::Stop).map_err(|err| Ended::Fatal(err.to_string()))?;
        }
        if !full {
            return Ok(());
        }
    }
}

/// Puts the epoch and counters back when the store lost them; ends the session as fatal when it
/// holds another epoch.
///
/// Every `seq` counter is written before the epoch: while the epoch is missing every publish is
/// refused, so none can take a `seq` from a counter not restored yet. `pos` is moved past what
/// this node has read by a margin (half of [`RedisOptions::max_lead`](crate::RedisOptions::max_lead)),
/// so a position another node read before the store lost it is not handed out again, while a
/// node that has not seen the jump yet still takes cursors past it as "nothing yet".
async fn restore_if_needed(shared: &Shared, connection: &mut MultiplexedConnection) -> Result<(), Ended> {
    let keys = &shared.keys;
    let ours = shared.replica.epoch();
    let through = read_after(shared);
    let (epoch, pos): (Option<String>, Option<u64>) =
        redis::cmd("MGET").arg(&keys.epoch).arg(&keys.pos).query_async(connection).await?;
    let foreign =
        |text: &str| Ended::Fatal(format!("redis holds epoch {text}, this node serves epoch {ours}"));
    match epoch.as_deref() {
        Some(text) if parse_epoch(text) == Some(ours) && pos.unwrap_or(0) >= through => return Ok(()),
        Some(text) if parse_epoch(text) != Some(ours) => return Err(foreign(text)),
        _ => {}
    }
    let seqs = shared.replica.last_seqs();
    for chunk in seqs.chunks(RESTORE_CHUNK) {
        let mut invocation = shared.restore_seqs_script.prepare_invoke();
        invocation.key(&keys.epoch).key(&keys.seq).arg(ours.to_string());
        for (topic, seq) in chunk {
            invocation.arg(topic.as_str()).arg(*seq);
        }
        let epoch: Option<String> = invocation.invoke_async(connection).await?;
        if let Some(epoch) = epoch.filter(|e| parse_epoch(e) != Some(ours)) {
            return Err(foreign(&epoch));
        }
    }
    let margin = (shared.options.max_lead / 2).max(1);
    let epoch: String = shared
        .restore_epoch_script
        .key(&keys.epoch)
        .key(&keys.pos)
        .key(&keys.log)
        .arg(ours.to_string())
        .arg(through)
        .arg(margin)
        .arg(shared.options.history_events)
        .invoke_async(connection)
        .await?;
    if parse_epoch(&epoch) != Some(ours) {
        return Err(foreign(&epoch));
    }
    tracing::warn!(
        epoch = %ours,
        through,
        margin,
        topics = seqs.len(),
        "redis had lost its state; restored the epoch and counters from this node"
    );
    Ok(())
}
