//! Presence across nodes: see [`RedisPresence`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushgate_hub::{Presence, TopicName};
use redis::AsyncCommands as _;
use serde_json::{Map, Value, json};

use crate::Shared;

/// The most other nodes a read looks at.
const MAX_NODES: isize = 1_000;
/// How long past its expiry a node stays listed in the set: clocks of nodes may disagree by
/// this much without a live node being pruned.
const PRUNE_MARGIN: Duration = Duration::from_secs(60);

/// Why a presence report or read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The node is not connected to Redis now.
    #[error("not connected to redis")]
    Disconnected,
    /// Redis failed or refused the command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Presence across nodes: each node writes its readers per topic to Redis now and then, with
/// an expiry, and sums the other nodes' reports into what it counts itself.
///
/// | key | type | what it holds |
/// | --- | --- | --- |
/// | `presence:node:<id>` | hash, expiring | topic → `{"t":{"<label>":n,…},"u":["<user>",…],"n":<users>}`: one node's readers of each topic it reported |
/// | `presence:nodes` | sorted set | node ids, scored by when their report expires (Unix ms, the node's clock) |
///
/// A report replaces the node's hash as a whole (one `MULTI`: `DEL`, `HSET`, `PEXPIRE`) and
/// adds the node to the set. The hash's expiry, kept by Redis, is what ends a node that stopped
/// reporting (killed, cut off): once it passed, reads find no hash and count nothing of it. The
/// set only lists the nodes to look at; entries long expired are pruned by every report, with a
/// margin so that nodes' clocks need not agree. A node that stops cleanly deletes its report.
///
/// Made by [`RedisStorage::presence`](crate::RedisStorage::presence); cheap to clone.
#[derive(Clone)]
pub struct RedisPresence {
    shared: std::sync::Arc<Shared>,
    node: String,
    key: String,
    nodes: String,
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence").field("node", &self.node).finish_non_exhaustive()
    }
}

impl RedisPresence {
    pub(crate) fn new(shared: std::sync::Arc<Shared>, node: String) -> Self {
        let prefix = &shared.keys.prefix;
        let key = format!("{prefix}presence:node:{node}");
        let nodes = format!("{prefix}presence:nodes");
        Self { shared, node, key, nodes }
    }

    /// This node's id in the reports.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn connection(&self) -> Result<redis::aio::MultiplexedConnection, PresenceError> {
        self.shared.connection().ok_or(PresenceError::Disconnected)
    }

    /// Replaces this node's report with `topics`, counted by the others until `ttl` from now
    /// unless reported again.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis cannot be asked.
    pub async fn report(&self, topics: &[(TopicName, Presence)], ttl: Duration) -> Result<(), PresenceError> {
        let mut connection = self.connection()?;
        let now = unix_ms(SystemTime::now());
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&self.key).ignore();
        if topics.is_empty() {
            pipe.zrem(&self.nodes, &self.node).ignore();
        } else {
            let fields: Vec<(&str, String)> =
                topics.iter().map(|(topic, presence)| (topic.as_str(), encode(presence))).collect();
            pipe.hset_multiple(&self.key, &fields).ignore();
            pipe.pexpire(&self.key, i64::try_from(ttl_ms).unwrap_or(i64::MAX)).ignore();
            pipe.zadd(&self.nodes, &self.node, now.saturating_add(ttl_ms)).ignore();
        }
        let stale = now.saturating_sub(u64::try_from(PRUNE_MARGIN.as_millis()).unwrap_or(0));
        pipe.zrembyscore(&self.nodes, "-inf", stale).ignore();
        pipe.query_async::<()>(&mut connection).await?;
        Ok(())
    }

    /// Deletes this node's report (a clean stop).
    ///
    /// # Errors
    /// [`PresenceError`] when Redis cannot be asked.
    pub async fn withdraw(&self) -> Result<(), PresenceError> {
        self.report(&[], Duration::ZERO).await
    }

    /// The other live nodes' readers of `topic`, each listing at most `max_users` users.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis cannot be asked.
    pub async fn others(&self, topic: &TopicName, max_users: usize) -> Result<Vec<Presence>, PresenceError> {
        let mut connection = self.connection()?;
        let nodes: Vec<String> = connection.zrange(&self.nodes, 0, MAX_NODES - 1).await?;
        let prefix = &self.shared.keys.prefix;
        let mut pipe = redis::pipe();
        let others: Vec<&String> = nodes.iter().filter(|node| **node != self.node).collect();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        for node in &others {
            pipe.hget(format!("{prefix}presence:node:{node}"), topic.as_str());
        }
        let reports: Vec<Option<String>> = pipe.query_async(&mut connection).await?;
        Ok(reports.into_iter().flatten().filter_map(|report| decode(&report, max_users)).collect())
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One topic's presence in a report.
fn encode(presence: &Presence) -> String {
    let labels: Map<String, Value> =
        presence.by_label.iter().map(|(label, n)| (label.clone(), Value::from(*n))).collect();
    json!({ "t": labels, "u": presence.users, "n": presence.users_total }).to_string()
}

/// A report's presence, or `None` when it is not one (written by something else): skipped
/// rather than failing the whole read.
fn decode(report: &str, max_users: usize) -> Option<Presence> {
    let value: Value = serde_json::from_str(report).ok()?;
    let by_label = value
        .get("t")?
        .as_object()?
        .iter()
        .map(|(label, n)| Some((label.clone(), usize::try_from(n.as_u64()?).ok()?)))
        .collect::<Option<Vec<_>>>()?;
    let users: Vec<String> = value
        .get("u")?
        .as_array()?
        .iter()
        .filter_map(|u| u.as_str().map(str::to_owned))
        .take(max_users)
        .collect();
    let users_total = usize::try_from(value.get("n")?.as_u64()?).ok()?.max(users.len());
    Some(Presence::from_parts(by_label, users, users_total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_as_it_was_written() {
        let presence =
            Presence::from_parts(vec![("sse".into(), 2), ("poll".into(), 1)], vec!["42".into()], 1);
        assert_eq!(decode(&encode(&presence), 1_000), Some(presence));
        assert_eq!(decode("not json", 10), None);
        assert_eq!(decode(r#"{"t":{"sse":-1},"u":[],"n":0}"#, 10), None);
    }
}
