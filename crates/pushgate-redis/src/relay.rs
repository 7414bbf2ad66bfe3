//! The server API's commands relayed to every node: disconnects and revocations; and the
//! join and leave notices of readers, for readers on other nodes that asked for them.
//!
//! A node that takes a command applies it itself and `PUBLISH`es it on the channel
//! `<prefix>server`; every node subscribes to that channel ([`ServerRelay::listen`]) and
//! applies what other nodes send. Pub/sub delivers to the nodes connected at the time: a
//! disconnect only concerns connections that exist then, so that is enough for it. A
//! revocation must also hold for nodes that start (or reconnect) later, so it is also kept
//! as the key `<prefix>revoked:<user>` (`<issued_before>:<until>`, milliseconds since the
//! Unix epoch) expiring at `until`; a node reads them all when it starts listening and after
//! every reconnect ([`ServerRelay::revocations`]).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use pushgate_hub::{ChangeKind, PresenceChange, TopicName};
use redis::AsyncCommands as _;
use serde_json::{Value, json};

use crate::Shared;

/// Most revocation keys read per `SCAN` step.
const SCAN_COUNT: usize = 1000;
/// The wait before subscribing again after the subscription's connection failed.
const RETRY: Duration = Duration::from_secs(1);

/// A command of the server API, applied on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerCommand {
    /// End every connection of this user.
    DisconnectUser(String),
    /// End every reader of this topic.
    DisconnectTopic(TopicName),
    /// Refuse the user's tokens issued before `issued_before`, until `until`.
    Revoke {
        /// The user.
        user: String,
        /// Tokens issued before this are refused.
        issued_before: SystemTime,
        /// When the revocation no longer matters (every such token has expired).
        until: SystemTime,
    },
    /// A reader joined or left a topic on the sending node (its `total` counts every node):
    /// hand it to this node's readers that asked for notices.
    Presence(PresenceChange),
}

/// This node's end of the relay; cheap to clone. From
/// [`RedisStorage::relay`](crate::RedisStorage::relay).
#[derive(Clone)]
pub struct ServerRelay {
    shared: Arc<Shared>,
    /// Tells this node's own messages apart, which it has applied already.
    node: u64,
}

impl std::fmt::Debug for ServerRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerRelay").field("node", &format_args!("{:016x}", self.node)).finish()
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

fn time(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

impl ServerRelay {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared, node: RandomState::new().build_hasher().finish() }
    }

    fn channel(&self) -> String {
        format!("{}server", self.shared.keys.prefix)
    }

    fn revoked_key(&self, user: &str) -> String {
        format!("{}revoked:{user}", self.shared.keys.prefix)
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        match self.shared.connection() {
            Some(connection) => Ok(connection),
            None => Err(redis::RedisError::from((redis::ErrorKind::Io, "not connected to redis"))),
        }
    }

    /// Sends `command` to the other nodes; a revocation is also stored for nodes that start
    /// later.
    ///
    /// # Errors
    ///
    /// Redis could not be reached: the other nodes may not have it.
    pub async fn send(&self, command: &ServerCommand) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        let message = match command {
            ServerCommand::DisconnectUser(user) => json!({"node": self.node, "disconnect_user": user}),
            ServerCommand::DisconnectTopic(topic) => {
                json!({"node": self.node, "disconnect_topic": topic.as_str()})
            }
            ServerCommand::Revoke { user, issued_before, until } => {
                let (before, until) = (millis(*issued_before), millis(*until));
                let ttl = until.saturating_sub(millis(SystemTime::now())).max(1);
                let _: () = redis::cmd("SET")
                    .arg(self.revoked_key(user))
                    .arg(format!("{before}:{until}"))
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut connection)
                    .await?;
                json!({"node": self.node, "revoke": {"user": user, "issued_before": before, "until": until}})
            }
            ServerCommand::Presence(change) => json!({"node": self.node, "presence": {
                "topic": change.topic.as_str(),
                "event": change.kind.as_str(),
                "user": change.user.as_deref(),
                "transport": change.label,
                "total": change.total,
            }}),
        };
        let _: () = connection.publish(self.channel(), message.to_string()).await?;
        Ok(())
    }

    /// Every revocation stored that has not expired.
    ///
    /// # Errors
    ///
    /// Redis could not be reached.
    pub async fn revocations(&self) -> redis::RedisResult<Vec<ServerCommand>> {
        let mut connection = self.connection().await?;
        let prefix = self.revoked_key("");
        let mut found = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut connection)
                .await?;
            if !keys.is_empty() {
                let values: Vec<Option<String>> = connection.mget(&keys).await?;
                for (key, value) in keys.iter().zip(values) {
                    let (Some(user), Some(value)) = (key.strip_prefix(&prefix), value) else { continue };
                    let mut times = value.split(':').map(str::parse::<u64>);
                    if let (Some(Ok(before)), Some(Ok(until))) = (times.next(), times.next()) {
                        let (issued_before, until) = (time(before), time(until));
                        found.push(ServerCommand::Revoke { user: user.to_owned(), issued_before, until });
                    }
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok(found);
            }
        }
    }

    /// Applies, with `apply`, the commands other nodes send, and the stored revocations each
    /// time the subscription (re)starts. Never returns; spawn it and abort it on shutdown.
    pub async fn listen(self, apply: impl Fn(ServerCommand) + Send + Sync + 'static) {
        loop {
            if let Err(error) = self.follow(&apply).await {
                tracing::warn!(%error, "server API relay: subscription to redis failed; retrying");
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn follow(&self, apply: &(impl Fn(ServerCommand) + Send + Sync)) -> redis::RedisResult<()> {
        let client = self.shared.endpoint.client(self.shared.options.timeout).await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(self.channel()).await?;
        // Subscribed first: a revocation stored meanwhile is read below or received.
        for revocation in self.revocations().await? {
            apply(revocation);
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else { continue };
            match self.parse(&payload) {
                Some(command) => apply(command),
                None => tracing::debug!(payload, "server API relay: ignored a message"),
            }
        }
        Err(redis::RedisError::from((redis::ErrorKind::Io, "the subscription's connection closed")))
    }

    /// The command in `payload`, unless this node sent it or it is not one.
    fn parse(&self, payload: &str) -> Option<ServerCommand> {
        let value: Value = serde_json::from_str(payload).ok()?;
        if value.get("node")?.as_u64()? == self.node {
            return None;
        }
        if let Some(user) = value.get("disconnect_user").and_then(Value::as_str) {
            return Some(ServerCommand::DisconnectUser(user.to_owned()));
        }
        if let Some(topic) = value.get("disconnect_topic").and_then(Value::as_str) {
            return TopicName::new(topic).ok().map(ServerCommand::DisconnectTopic);
        }
        if let Some(notice) = value.get("presence") {
            let kind = match notice.get("event")?.as_str()? {
                "join" => ChangeKind::Join,
                "leave" => ChangeKind::Leave,
                _ => return None,
            };
            return Some(ServerCommand::Presence(PresenceChange::new(
                TopicName::new(notice.get("topic")?.as_str()?).ok()?,
                kind,
                notice.get("user").and_then(Value::as_str).map(Into::into),
                notice.get("transport")?.as_str()?.to_owned(),
                usize::try_from(notice.get("total")?.as_u64()?).ok()?,
            )));
        }
        let revoke = value.get("revoke")?;
        Some(ServerCommand::Revoke {
            user: revoke.get("user")?.as_str()?.to_owned(),
            issued_before: time(revoke.get("issued_before")?.as_u64()?),
            until: time(revoke.get("until")?.as_u64()?),
        })
    }
}
