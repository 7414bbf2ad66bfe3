//! The Lua scripts that keep the shared counters and log consistent, and the epoch set-up.
//!
//! The scripts run atomically in Redis, so every node sees a position handed out together
//! with its log entry or not at all.

use pushgate_hub::Epoch;
use redis::aio::MultiplexedConnection;

use crate::{ConnectError, Keys};

/// The error a publish gets when the store does not hold this node's epoch.
pub(crate) const EPOCH_MISMATCH: &str = "PUSHGATE_EPOCH";

/// KEYS: epoch, pos, seq, log, and the idempotency key's record when the publish has one.
/// ARGV: epoch, topic, type, data, ts, maxlen, sender (empty: none), window in ms, latest-value
/// key (empty: none). Returns
/// `{position, seq, replayed}`.
///
/// The epoch check stops a node from handing out positions from 1 again in a store that lost its
/// keys before the tail restored them. The entry carries the epoch too, so a node that only
/// reads notices entries of another epoch (the store was wiped and a new node started on it).
///
/// With an idempotency record key, a record still there (the same key on the same topic within
/// the window, from any node) answers the original position and `seq` and stores nothing;
/// otherwise the record is written with the event, in the same script, so that no two
/// publishes of one key both get in, and a replica holds both or neither.
///
/// The counters and the record are written after `XADD`, which is the only call that can fail
/// (Redis does not roll back a script's earlier writes).
pub(crate) const APPEND: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('PUSHGATE_EPOCH the store does not hold this node epoch')
end
if KEYS[5] then
  local prior = redis.call('GET', KEYS[5])
  if prior then
    local pos, seq = string.match(prior, '^(%d+):(%d+)$')
    return {tonumber(pos), tonumber(seq), 1}
  end
end
local pos = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
local seq = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') + 1
local id = string.format('%d-0', pos)
local seq_text = string.format('%d', seq)
local entry = {'XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], id, 'topic', ARGV[2], 'seq', seq_text,
  'type', ARGV[3], 'data', ARGV[4], 'ts', ARGV[5], 'epoch', ARGV[1]}
if ARGV[7] ~= '' then
  entry[#entry + 1] = 'from'
  entry[#entry + 1] = ARGV[7]
end
if ARGV[9] ~= '' then
  entry[#entry + 1] = 'key'
  entry[#entry + 1] = ARGV[9]
end
redis.call(unpack(entry))
redis.call('SET', KEYS[2], string.format('%d', pos))
redis.call('HSET', KEYS[3], ARGV[2], seq_text)
if KEYS[5] then
  redis.call('SET', KEYS[5], string.format('%d:%d', pos, seq), 'PX', ARGV[8])
end
return {pos, seq, 0}
";

/// The field of the log entry [`RESTORE_EPOCH`] writes where it moved `pos` on (a marker, not
/// an event); its value is the position the restoring node had read through.
pub(crate) const RESTORED_FIELD: &str = "restored_after";

/// KEYS: epoch, seq. ARGV: epoch, then topic and last seq pairs. Raises each topic's `seq` to at
/// least the given value, unless the store holds another epoch. Returns the store's epoch, or
/// nil while it has none.
///
/// Run for every chunk of topics *before* [`RESTORE_EPOCH`]: publishes are refused while the
/// epoch is missing, so no node can take a `seq` from a counter that is not restored yet.
pub(crate) const RESTORE_SEQS: &str = r"
local epoch = redis.call('GET', KEYS[1])
if epoch and epoch ~= ARGV[1] then
  return epoch
end
for i = 2, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0') then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
return epoch
";

/// KEYS: epoch, pos, log. ARGV: epoch, read through, margin, maxlen. Unless the store holds
/// another epoch: when `pos` is below what this node has read through, moves it to that plus
/// `margin` and marks the jump with a log entry at the new `pos` (field [`RESTORED_FIELD`]);
/// then sets the epoch, which lets publishes in again. Returns the store's epoch.
///
/// The margin is there because other nodes may have read further than this one before the store
/// lost the entries: a position they hold must never be handed out again, or they would skip
/// the new event that gets it. Positions may have gaps; only `seq` has to be gapless.
pub(crate) const RESTORE_EPOCH: &str = r"
local epoch = redis.call('GET', KEYS[1])
if epoch and epoch ~= ARGV[1] then
  return epoch
end
local through = tonumber(ARGV[2])
if through > tonumber(redis.call('GET', KEYS[2]) or '0') then
  local pos = through + tonumber(ARGV[3])
  -- Never behind an entry the log still holds (only `pos` was lost): XADD would refuse.
  local newest = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
  if newest then
    pos = math.max(pos, tonumber(string.match(newest[1], '^(%d+)')) + 1)
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], string.format('%d-0', pos),
    'restored_after', string.format('%d', through))
  redis.call('SET', KEYS[2], string.format('%d', pos))
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

/// KEYS: epoch. ARGV: this node's epoch, a new one. Replaces the epoch when the store still holds
/// this node's, and returns the store's epoch.
///
/// Run by a node that finds the store lacks entries it applied (a failover lost them): their
/// positions may be handed out again and clients hold cursors to events that no longer exist,
/// so every cursor of the old epoch must get a reset. Conditional, so two nodes noticing at
/// once change it once.
pub(crate) const ROTATE_EPOCH: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[1])
";

/// Reads the shared epoch, creating it (with `SET NX`, so one node wins) if absent.
pub(crate) async fn init_epoch(
    connection: &mut MultiplexedConnection,
    keys: &Keys,
) -> Result<Epoch, ConnectError> {
    let fresh = Epoch::random().to_string();
    let _: Option<String> =
        redis::cmd("SET").arg(&keys.epoch).arg(&fresh).arg("NX").query_async(connection).await?;
    let value: String = redis::cmd("GET").arg(&keys.epoch).query_async(connection).await?;
    parse_epoch(&value).ok_or_else(|| ConnectError::BadEpoch { key: keys.epoch.clone(), value })
}

/// The epoch in its text form, 8 lowercase hex digits (as in cursors).
pub(crate) fn parse_epoch(text: &str) -> Option<Epoch> {
    let canonical = text.len() == 8 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical.then(|| u32::from_str_radix(text, 16).ok().map(Epoch::from_u32)).flatten()
}
