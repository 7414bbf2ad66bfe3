//! The Lua scripts that keep the shared counters and log consistent, and the epoch set-up.
//!
//! Both scripts run atomically in Redis, so every node sees a position handed out together
//! with its log entry or not at all.

use pushgate_hub::Epoch;
use redis::aio::MultiplexedConnection;

use crate::{ConnectError, Keys};

/// The error a publish gets when the store does not hold this node's epoch.
pub(crate) const EPOCH_MISMATCH: &str = "PUSHGATE_EPOCH";

/// KEYS: epoch, pos, seq, log. ARGV: epoch, topic, type, data, ts, maxlen. Returns
/// `{position, seq}`.
///
/// The epoch check stops a node from handing out positions from 1 again in a store that lost its
/// keys before the tail restored them. The counters are written after `XADD`, which is the only
/// call that can fail (Redis does not roll back a script's earlier writes).
pub(crate) const APPEND: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('PUSHGATE_EPOCH the store does not hold this node epoch')
end
local pos = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
local seq = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') + 1
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], string.format('%d-0', pos),
  'topic', ARGV[2], 'seq', string.format('%d', seq), 'type', ARGV[3], 'data', ARGV[4], 'ts', ARGV[5])
redis.call('SET', KEYS[2], string.format('%d', pos))
redis.call('HSET', KEYS[3], ARGV[2], string.format('%d', seq))
return {pos, seq}
";

/// KEYS: epoch, pos, seq. ARGV: epoch, head, then topic and last seq pairs. Sets the epoch if
/// absent and raises `pos` and each topic's `seq` to at least the given values; changes nothing
/// when the store holds another epoch. Returns the store's epoch.
pub(crate) const RESTORE: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[1])
if epoch ~= ARGV[1] then
  return epoch
end
if tonumber(ARGV[2]) > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], ARGV[2])
end
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > tonumber(redis.call('HGET', KEYS[3], ARGV[i]) or '0') then
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  end
end
return epoch
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
