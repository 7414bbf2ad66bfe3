//! What keeps a failover of the Redis master from losing an acknowledged event or leaving a node
//! with events the new master does not have.
//!
//! - **Replica acknowledgements** ([`confirm`]): with `min_replicas_ack = n > 0` a node applies
//!   what it read from the log only once `WAIT n` says `n` replicas hold it. `WAIT` covers the
//!   writes of the connection that sends it, so the node first writes a small key on the
//!   connection it read the entries on: that write comes after the entries in the master's
//!   replication stream, and a replica that has it has them. One `SET` + `WAIT` per batch read,
//!   so a busy log pays it once per batch, not per event. A publish succeeds only once its node
//!   applied it, so it is acknowledged only when a replica holds it.
//! - **Continuity** ([`check_continuity`]): on every reconnect (a failover always ends the
//!   session) the node checks that the store still holds the newest event it applied. If not,
//!   and the log was not merely trimmed past it, the new master lost entries this node applied:
//!   the node changes the epoch, so every cursor gets a reset, and stops.

use std::time::Duration;

use pushgate_hub::{Epoch, Storage};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;

use crate::scripts::parse_epoch;
use crate::tail::{Ended, Entry, first_position};
use crate::{Applied, Shared};

/// How long one `WAIT` waits for the replicas before the node says it is waiting for them.
const ACK_WAIT: Duration = Duration::from_millis(1000);

/// Whether enough replicas hold every entry read so far on `connection` (one `SET` + `WAIT`);
/// true at once when no acknowledgement is needed.
pub(crate) async fn acknowledged(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
) -> redis::RedisResult<bool> {
    let needed = shared.min_replicas_ack;
    if needed == 0 {
        return Ok(true);
    }
    let (acked,): (usize,) = redis::pipe()
        .cmd("SET")
        .arg(&shared.keys.ack)
        .arg(shared.replica.head())
        .arg("PX")
        .arg(60_000)
        .ignore()
        .cmd("WAIT")
        .arg(needed)
        .arg(ACK_WAIT.as_millis() as u64)
        .query_async(connection)
        .await?;
    Ok(acked >= needed)
}

/// Waits until enough replicas hold every entry read so far on `connection`, saying so in the
/// state meanwhile (publishes are refused while it waits).
pub(crate) async fn confirm(shared: &Shared, connection: &mut MultiplexedConnection) -> Result<(), Ended> {
    loop {
        if acknowledged(shared, connection).await? {
            if shared.state.waiting_for_replicas() {
                tracing::info!("redis replicas confirm the log again; delivering");
                shared.state.set_waiting_for_replicas(false);
            }
            return Ok(());
        }
        if !shared.state.waiting_for_replicas() {
            tracing::warn!(
                min_replicas_ack = shared.min_replicas_ack,
                "fewer redis replicas than needed confirm the log: holding new events back, refusing publishes"
            );
            shared.state.set_error(format!(
                "fewer than {} redis replica(s) confirm the log",
                shared.min_replicas_ack
            ));
            shared.state.set_waiting_for_replicas(true);
        }
    }
}

/// Checks, on reconnect, that the store still holds the newest event this node applied.
///
/// # Errors
/// [`Ended::Fatal`] when it does not (after changing the store's epoch, so that no cursor of
/// the lost history is taken for one of the new), or when the store holds another epoch.
pub(crate) async fn check_continuity(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
) -> Result<(), Ended> {
    let Some(applied) = shared.last_applied() else { return Ok(()) };
    let ours = shared.replica.epoch();
    let epoch: Option<String> = redis::cmd("GET").arg(&shared.keys.epoch).query_async(connection).await?;
    if epoch.as_deref().and_then(parse_epoch) != Some(ours) {
        // Lost everything (the restore handles it: no publish got in meanwhile), or another
        // epoch (the restore check stops the node).
        return Ok(());
    }
    let id = format!("{}-0", applied.position);
    let held: StreamRangeReply =
        redis::cmd("XRANGE").arg(&shared.keys.log).arg(&id).arg(&id).query_async(connection).await?;
    let found = held.ids.first().map(|entry| Entry::parse(entry).ok().map(|e| (e.topic, e.seq, e.epoch)));
    match found {
        Some(Some((topic, seq, epoch))) if topic == applied.topic && seq == applied.seq && epoch == ours => {
            return Ok(());
        }
        Some(_) => {}
        None => {
            if first_position(shared, connection).await?.is_some_and(|p| p > applied.position) {
                // Trimmed past it while this node was away: reading on reports the gap.
                return Ok(());
            }
        }
    }
    Err(diverged(shared, connection, &applied, ours).await)
}

/// Changes the store's epoch (unless another node already did) and says why this node stops.
async fn diverged(
    shared: &Shared,
    connection: &mut MultiplexedConnection,
    applied: &Applied,
    ours: Epoch,
) -> Ended {
    let fresh = Epoch::random();
    let now: redis::RedisResult<Option<String>> = shared
        .rotate_epoch_script
        .key(&shared.keys.epoch)
        .arg(ours.to_string())
        .arg(fresh.to_string())
        .invoke_async(connection)
        .await;
    let now = match now {
        Ok(now) => now.unwrap_or_default(),
        // Not changed: the next reconnect checks again.
        Err(err) => return Ended::Lost(err.to_string()),
    };
    tracing::error!(
        position = applied.position,
        topic = %applied.topic,
        seq = applied.seq,
        old_epoch = %ours,
        new_epoch = %now,
        "redis lost events this node applied (a failover to a replica that lacked them): \
         changed the epoch so every client gets a reset"
    );
    Ended::Fatal(format!(
        "redis lost events this node had applied (through position {}, {} seq {}); the epoch \
         changed from {ours} to {now} so that every client resets",
        applied.position, applied.topic, applied.seq
    ))
}
