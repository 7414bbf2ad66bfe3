//! Presence as the gateway answers it: this node's readers (the hub's live subscriptions, parked
//! long polls and polling clients' leases) and, on a cluster, the other nodes' latest reports.
//!
//! The cluster part is behind [`ClusterPresence`] (Redis's [`RedisPresence`] implements it), so
//! the hub knows nothing of other nodes and the API nothing of Redis. Each node reports every
//! [`Backends::redis_presence_interval`](crate::config::Backends::redis_presence_interval)
//! ([`PresenceView::keep_reporting`]); a report counts for three intervals, so a node that died
//! drops out at most three intervals after its last report. This node's own readers are always
//! counted live, never from its report.
//!
//! It also relays the hub's join and leave notices ([`PresenceView::relay_changes`]) with the
//! topic's total over every node, to this node's readers and, through Redis, to the others'.
//!
//! Everything is bounded: a report holds at most [`MAX_REPORT_TOPICS`] topics (those with the
//! most readers) and [`MAX_REPORT_USERS`] users over all of them, each topic at most
//! [`MAX_PRESENCE_USERS`].

use std::sync::Arc;
use std::time::Duration;

use pushgate_hub::{Hub, MAX_PRESENCE_USERS, Presence, TopicName};
use pushgate_redis::{RedisPresence, ServerCommand, ServerRelay};

/// The most topics one node reports.
pub(crate) const MAX_REPORT_TOPICS: usize = 10_000;
/// The most users one node's report lists, over all its topics.
pub(crate) const MAX_REPORT_USERS: usize = 100_000;
/// How often expired poll leases are ended while notices are relayed.
const LEASE_SWEEP: Duration = Duration::from_millis(500);
/// How many report intervals a report counts for.
const REPORT_LIFETIMES: u32 = 3;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The other nodes of a cluster, as presence sees them.
pub(crate) trait ClusterPresence: Send + Sync + 'static {
    /// Replaces this node's report with `topics`, counted by the others for `ttl`.
    fn report<'a>(
        &'a self,
        topics: &'a [(TopicName, Presence)],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Deletes this node's report.
    fn withdraw(&self) -> BoxFuture<'_, Result<(), String>>;
    /// The other live nodes' readers of `topic`, each listing at most `max_users` users.
    fn others<'a>(
        &'a self,
        topic: &'a TopicName,
        max_users: usize,
    ) -> BoxFuture<'a, Result<Vec<Presence>, String>>;
}

impl ClusterPresence for RedisPresence {
    fn report<'a>(
        &'a self,
        topics: &'a [(TopicName, Presence)],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { RedisPresence::report(self, topics, ttl).await.map_err(|e| e.to_string()) })
    }

    fn withdraw(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { RedisPresence::withdraw(self).await.map_err(|e| e.to_string()) })
    }

    fn others<'a>(
        &'a self,
        topic: &'a TopicName,
        max_users: usize,
    ) -> BoxFuture<'a, Result<Vec<Presence>, String>> {
        Box::pin(
            async move { RedisPresence::others(self, topic, max_users).await.map_err(|e| e.to_string()) },
        )
    }
}

/// A topic's presence over the cluster.
#[derive(Debug, Clone)]
pub(crate) struct TopicPresence {
    pub(crate) presence: Presence,
    /// Nodes counted: this one and those whose report was read.
    pub(crate) nodes: usize,
    /// The other nodes' reports could not be read: only this node is counted.
    pub(crate) partial: bool,
}

/// This node's presence and, on a cluster, the others'.
#[derive(Clone)]
pub(crate) struct PresenceView {
    hub: Hub,
    cluster: Option<Arc<dyn ClusterPresence>>,
}

impl PresenceView {
    pub(crate) fn new(hub: Hub, cluster: Option<Arc<dyn ClusterPresence>>) -> Self {
        Self { hub, cluster }
    }

    /// The readers of `topic` on every node.
    pub(crate) async fn of(&self, topic: &TopicName) -> TopicPresence {
        let mut presence = self.hub.presence(topic);
        let Some(cluster) = &self.cluster else {
            return TopicPresence { presence, nodes: 1, partial: false };
        };
        match cluster.others(topic, MAX_PRESENCE_USERS).await {
            Ok(others) => {
                for other in &others {
                    presence.add(other, MAX_PRESENCE_USERS);
                }
                TopicPresence { presence, nodes: 1 + others.len(), partial: false }
            }
            Err(error) => {
                tracing::warn!(%error, topic = topic.as_str(), "cannot read the other nodes' presence");
                TopicPresence { presence, nodes: 1, partial: true }
            }
        }
    }

    /// Reports this node's presence every `every` until the hub closes, then withdraws the
    /// report; without a cluster, returns at once.
    pub(crate) async fn keep_reporting(self, every: Duration) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let ttl = every * REPORT_LIFETIMES;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = self.hub.closed() => break,
                _ = ticks.tick() => {}
            }
            let report = report_of(&self.hub);
            match cluster.report(&report, ttl).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("presence reports reach redis again");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "cannot report this node's presence; the other nodes stop counting its readers");
                }
                Err(_) => {}
            }
        }
        if let Err(error) = cluster.withdraw().await {
            tracing::debug!(%error, "cannot withdraw this node's presence report; it expires on its own");
        }
    }
}

impl PresenceView {
    /// Relays the hub's joins and leaves to the readers that asked for them, each with the
    /// topic's total over every node, until the hub closes; with a cluster's `relay`, to the
    /// other nodes' readers as well (they hand them on in `api::server::apply`). (Only one
    /// relay per hub: a second returns at once.)
    pub(crate) async fn relay_changes(self, relay: Option<ServerRelay>) {
        let Some(mut changes) = self.hub.presence_changes() else {
            return;
        };
        // A poller leaves when its lease expires, which someone must notice.
        let mut sweeps = tokio::time::interval(LEASE_SWEEP);
        sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let change = tokio::select! {
                () = self.hub.closed() => return,
                _ = sweeps.tick() => {
                    self.hub.expire_leases();
                    continue;
                }
                change = changes.recv() => change,
            };
            let Some(mut change) = change else { return };
            if self.cluster.is_some() {
                change.total = self.of(&change.topic).await.presence.total;
            }
            if let Some(relay) = &relay {
                let notice = ServerCommand::Presence(change.clone());
                if let Err(error) = relay.send(&notice).await {
                    tracing::debug!(%error, "a join or leave notice did not reach the other nodes");
                }
            }
            self.hub.notify_presence(change);
        }
    }
}

/// This node's report: the topics with the most readers, the users bounded over all of them.
fn report_of(hub: &Hub) -> Vec<(TopicName, Presence)> {
    let mut topics = hub.presence_all(MAX_REPORT_TOPICS, MAX_PRESENCE_USERS);
    let mut budget = MAX_REPORT_USERS;
    for (_, presence) in &mut topics {
        presence.users.truncate(budget);
        budget -= presence.users.len();
    }
    topics
}
