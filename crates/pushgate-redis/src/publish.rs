//! A publish: the append script on the master (which also deduplicates idempotency keys), then
//! the entry applied on this node before the publish answers: read-your-writes on this node and,
//! with replica acknowledgements, proof that a replica holds it.
//!
//! Without replica acknowledgements, and while the tail follows the log (its session checked the
//! store and caught up), a new event that comes right after what this node holds (nothing of the
//! log before it is still unread here: the usual case when this node's publishes are not
//! interleaved with other nodes' faster than the tail reads) is applied from the script's answer
//! at once; the tail, reading it back, passes over it. Otherwise the publish waits for the
//! tail to apply it. Waiting on every publish made one ordered connection's publishes queue
//! behind the tail's round trip as well as the script's.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use pushgate_hub::{AppendRequest, Event, EventParts, HubError, Published, Replay, Storage};

use crate::{Shared, scripts};

fn unavailable(why: impl std::fmt::Display) -> HubError {
    HubError::Unavailable { reason: format!("redis: {why}") }
}

pub(crate) async fn append(shared: &Shared, request: AppendRequest) -> Result<Published, HubError> {
    if let Some(reason) = shared.state.fatal() {
        return Err(HubError::Unavailable { reason });
    }
    // Read before taking the connection: a session that follows set its connection first.
    let session = shared.following.load(Ordering::Acquire);
    let Some(mut connection) = shared.connection().filter(|_| shared.state.connected()) else {
        return Err(unavailable("not connected"));
    };
    if shared.state.waiting_for_replicas() {
        // The event would be taken but not confirmed: better refused now than in apply_wait.
        return Err(unavailable(format_args!(
            "fewer than {} replica(s) confirm the log",
            shared.min_replicas_ack
        )));
    }
    // The local topic limit (applying other nodes' events ignores it).
    shared.replica.topic(&request.topic)?;
    let timestamp_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let window_ms = shared.options.idempotency_window.as_millis().min(u128::from(u64::MAX)) as u64;
    let mut invocation = shared.append_script.prepare_invoke();
    invocation.key(&shared.keys.epoch).key(&shared.keys.pos).key(&shared.keys.seq).key(&shared.keys.log);
    if let Some(key) = request.idempotency_key.as_deref().filter(|_| window_ms > 0) {
        invocation.key(shared.keys.idempotency(&request.topic, key));
    }
    invocation
        .arg(shared.replica.epoch().to_string())
        .arg(request.topic.as_str())
        .arg(&*request.event_type)
        .arg(request.data.as_str())
        .arg(timestamp_ms)
        .arg(shared.options.history_events)
        .arg(request.from.as_deref().unwrap_or(""))
        .arg(window_ms.max(1))
        .arg(request.latest_key.as_deref().unwrap_or(""));
    let mut waiter = shared.applied.subscribe();
    let (position, seq, replayed): (u64, u64, u8) =
        invocation.invoke_async(&mut connection).await.map_err(|err| refused(shared, err))?;
    let parts = EventParts {
        topic: request.topic,
        event_type: request.event_type,
        data: request.data,
        seq,
        position,
        epoch: shared.replica.epoch(),
        timestamp_ms,
        from: request.from,
        latest_key: request.latest_key,
    };
    let own = replayed == 0
        && shared.min_replicas_ack == 0
        && session != 0
        && shared.following.load(Ordering::Acquire) == session;
    let parts = if own {
        match shared.apply_own(parts)? {
            Ok(event) => return Ok(Published::New(event)),
            Err(parts) => parts,
        }
    } else {
        parts
    };
    // The event is stored from here on (or was, for a replay): without replica
    // acknowledgements, failing now would only make the client publish it again.
    let applied = tokio::time::timeout(shared.options.apply_wait, waiter.wait_for(|&a| a >= position)).await;
    let applied = matches!(applied, Ok(Ok(_)));
    if !applied && shared.min_replicas_ack > 0 {
        // Not applied means not confirmed by the replicas: a failover could still lose it.
        return Err(unavailable(format_args!(
            "the event (position {position}) was not confirmed by {} replica(s) in time; it may \
             still be delivered, so retry with the same idempotency key",
            shared.min_replicas_ack
        )));
    }
    if replayed == 1 {
        return Ok(Published::Replayed(Replay { topic: parts.topic, seq, position, epoch: parts.epoch }));
    }
    let mut out = Vec::with_capacity(1);
    if applied {
        if let Ok(log) = shared.replica.topic(&parts.topic) {
            log.read(position - 1, position, 1, &mut out);
        }
    } else {
        tracing::debug!(position, "published, but this node has not applied it yet");
    }
    Ok(Published::New(match out.pop() {
        Some(event) if event.position() == position => event,
        // Not applied here in time, or already evicted again (a tiny history): the caller
        // still gets what was stored, built from Redis's answer.
        _ => Arc::new(Event::from_parts(parts)),
    }))
}

/// The hub error for a failed append script, noting in the state what the tail must look at.
fn refused(shared: &Shared, err: redis::RedisError) -> HubError {
    shared.state.set_error(err.to_string());
    if err.code() == Some(scripts::EPOCH_MISMATCH) {
        // The store lost its keys (or was replaced): the tail sorts that out on its next
        // reconnect; until then this node takes no publish.
        shared.state.set_connected(false);
        shared.recheck.store(true, Ordering::Release);
        unavailable("the store lost its state; waiting for it to be restored")
    } else if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) {
        // A master demoted by a failover: the tail asks the Sentinels again.
        shared.recheck.store(true, Ordering::Release);
        unavailable("the server became a replica; following the failover")
    } else if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
    {
        unavailable(&err)
    } else {
        HubError::Storage(Box::new(err))
    }
}
