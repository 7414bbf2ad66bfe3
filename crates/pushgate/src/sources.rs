//! The database sources the gateway runs: one [`Source`] per `--source` URL (and the demo's),
//! each tailing its outbox into the hub in a task of its own next to the server.
//!
//! The tasks are owned: they end when the hub closes (which is how the server shuts down), and
//! [`Running::stopped`] waits for them, bounded by the drain timeout. A source that cannot
//! connect retries with backoff by itself and never stops the gateway; `/healthz` shows what
//! each one is doing ([`Sources::health`]).
//!
//! Every node may run the same source: one at a time leads (holds its lease and publishes), the
//! others stand by (see [`Source`]). Each source's task logs when it starts standing by, once,
//! with what that means for this node's subscribers: with a shared hub (`--redis`) nothing,
//! without one that they get none of the source's changes while another process leads.

use std::sync::Arc;
use std::time::Duration;

use pushgate_hub::{HistoryTier, Hub};
use pushgate_sources::{Source, SourceConfig, SourceState};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::config::{ConfigError, ConnectionUrl};

/// The gateway's sources. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    list: Vec<Arc<Source>>,
}

impl Sources {
    /// A source per URL, not yet running, each taking over within `lease_timeout` when the
    /// node tailing it is gone.
    pub(crate) fn new(urls: &[ConnectionUrl], lease_timeout: Duration) -> Result<Self, ConfigError> {
        let list = urls
            .iter()
            .map(|url| {
                let config = SourceConfig::new(url.expose()).lease_timeout(lease_timeout);
                Source::new(config.clone()).map(Arc::new).map_err(|err| ConfigError::Source {
                    url: config.url_redacted(),
                    reason: err.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { list })
    }

    /// Whether there is no source.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Each source's outbox as a history tier of the hub it publishes into.
    pub(crate) fn history_tiers(&self) -> Vec<Arc<dyn HistoryTier>> {
        self.list.iter().map(|source| source.history_tier()).collect()
    }

    /// Waits until every source has published the changes committed before this call (each
    /// [`Source::quiesce`]d in turn, and let go at once).
    pub(crate) async fn quiesce(&self, hub: &Hub) -> Result<(), pushgate_sources::SourceError> {
        for source in &self.list {
            drop(source.quiesce(hub).await?);
        }
        Ok(())
    }

    /// Adds a source made elsewhere (the demo's).
    pub(crate) fn push(&mut self, source: Arc<Source>) {
        self.list.push(source);
    }

    /// Runs every source into `hub`, each in its own task, until the hub closes. `shared_hub`
    /// tells whether other nodes' subscribers read the same hub (`--redis`), for what a
    /// standing-by source says in the log.
    pub(crate) fn spawn(&self, hub: &Hub, shared_hub: bool) -> Running {
        let mut tasks = JoinSet::new();
        for source in &self.list {
            let (source, hub) = (Arc::clone(source), hub.clone());
            tasks.spawn(async move {
                tokio::select! {
                    () = source.run(hub) => {}
                    () = report_standby(&source, shared_hub) => {}
                }
            });
        }
        Running { tasks }
    }

    /// Each source's URL (password hidden) and state now.
    pub(crate) fn states(&self) -> Vec<(String, SourceState)> {
        self.list.iter().map(|source| (source.url_redacted(), source.state())).collect()
    }

    /// The body of `GET /healthz`: `status` is `ok` when every source is live or standing by
    /// (or there is none), else `degraded`; `sources` lists each one's URL (password hidden),
    /// `state` (`connecting`, `live`, `standby` or `retrying`), and while retrying the last
    /// `error` and the number of failed `attempt`s in a row (else `null` and `0`).
    pub(crate) fn health(&self) -> Value {
        let mut all_ready = true;
        let sources: Vec<Value> = self
            .list
            .iter()
            .map(|source| {
                let state = source.state();
                all_ready &= state.is_ready();
                let (name, error, attempt) = match state {
                    SourceState::Connecting => ("connecting".to_owned(), None, 0),
                    SourceState::Live => ("live".to_owned(), None, 0),
                    SourceState::Standby => ("standby".to_owned(), None, 0),
                    SourceState::Retrying { error, attempt } => ("retrying".to_owned(), Some(error), attempt),
                    // A state added later: shown as it describes itself.
                    other => (other.to_string(), None, 0),
                };
                json!({ "url": source.url_redacted(), "state": name, "error": error, "attempt": attempt })
            })
            .collect();
        json!({ "status": if all_ready { "ok" } else { "degraded" }, "sources": sources })
    }
}

/// Logs each time `source` starts standing by (not again while it stays so); never returns.
async fn report_standby(source: &Source, shared_hub: bool) {
    let mut states = source.state_changes();
    let mut standing_by = false;
    loop {
        let standby = *states.borrow_and_update() == SourceState::Standby;
        if standby && !standing_by {
            let url = source.url_redacted();
            if shared_hub {
                tracing::info!(
                    source = %url,
                    "another gateway tails {url} (it holds the source's lease); this one stands by and takes over \
                     if that one stops. Its changes reach this gateway's subscribers through Redis."
                );
            } else {
                tracing::warn!(
                    source = %url,
                    "another process tails {url} (it holds the source's lease); this gateway stands by and takes \
                     over if that one stops. Without --redis, this gateway's subscribers get none of its changes \
                     meanwhile: point them at the other process, or run both with --redis."
                );
            }
        }
        standing_by = standby;
        if states.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// The tasks of running sources.
#[derive(Debug)]
pub(crate) struct Running {
    tasks: JoinSet<()>,
}

impl Running {
    /// Waits until `hub` closes, then up to `drain` for every source to stop (a source
    /// finishes the batch in flight, then ends); the ones still running after that are
    /// aborted, which loses nothing: a change is marked published only after the hub took it.
    pub(crate) async fn stopped(mut self, hub: Hub, drain: Duration) {
        if self.tasks.is_empty() {
            return;
        }
        hub.closed().await;
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(drain, all).await.is_err() {
            tracing::warn!(remaining = self.tasks.len(), "sources did not stop within the drain timeout");
            self.tasks.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_ok_only_when_every_source_is_live() {
        assert_eq!(Sources::default().health(), json!({"status": "ok", "sources": []}));
        let lease = Duration::from_secs(5);
        let sources = Sources::new(&["mysql://app:secret@db/shop".into()], lease).expect("a known scheme");
        assert_eq!(
            sources.health(),
            json!({"status": "degraded", "sources": [
                {"url": "mysql://app:***@db/shop", "state": "connecting", "error": null, "attempt": 0}
            ]})
        );
        assert!(matches!(Sources::new(&["redis://h".into()], lease), Err(ConfigError::Source { .. })));
    }
}
