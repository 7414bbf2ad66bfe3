//! The database sources the gateway runs: one [`Source`] per `--source` URL (and the demo's),
//! each tailing its outbox into the hub in a task of its own next to the server.
//!
//! The tasks are owned: they end when the hub closes (which is how the server shuts down), and
//! [`Running::stopped`] waits for them, bounded by the drain timeout. A source that cannot
//! connect retries with backoff by itself and never stops the gateway; `/healthz` shows what
//! each one is doing ([`Sources::health`]).

use std::sync::Arc;
use std::time::Duration;

use pushgate_hub::Hub;
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
    /// A source per URL, not yet running.
    pub(crate) fn new(urls: &[ConnectionUrl]) -> Result<Self, ConfigError> {
        let list = urls
            .iter()
            .map(|url| {
                let config = SourceConfig::new(url.expose());
                Source::new(config.clone()).map(Arc::new).map_err(|err| ConfigError::Source {
                    url: config.url_redacted(),
                    reason: err.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { list })
    }

    /// Adds a source made elsewhere (the demo's).
    pub(crate) fn push(&mut self, source: Arc<Source>) {
        self.list.push(source);
    }

    /// Runs every source into `hub`, each in its own task, until the hub closes.
    pub(crate) fn spawn(&self, hub: &Hub) -> Running {
        let mut tasks = JoinSet::new();
        for source in &self.list {
            let (source, hub) = (Arc::clone(source), hub.clone());
            tasks.spawn(async move { source.run(hub).await });
        }
        Running { tasks }
    }

    /// Each source's URL (password hidden) and state now.
    pub(crate) fn states(&self) -> Vec<(String, SourceState)> {
        self.list.iter().map(|source| (source.url_redacted(), source.state())).collect()
    }

    /// The body of `GET /healthz`: `status` is `ok` when every source is live (or there is
    /// none), else `degraded`; `sources` lists each one's URL (password hidden), `state`
    /// (`connecting`, `live` or `retrying`), and while retrying the last `error` and the
    /// number of failed `attempt`s in a row (else `null` and `0`).
    pub(crate) fn health(&self) -> Value {
        let mut all_live = true;
        let sources: Vec<Value> = self
            .list
            .iter()
            .map(|source| {
                let state = source.state();
                all_live &= state.is_live();
                let (name, error, attempt) = match state {
                    SourceState::Connecting => ("connecting".to_owned(), None, 0),
                    SourceState::Live => ("live".to_owned(), None, 0),
                    SourceState::Retrying { error, attempt } => ("retrying".to_owned(), Some(error), attempt),
                    // A state added later: shown as it describes itself.
                    other => (other.to_string(), None, 0),
                };
                json!({ "url": source.url_redacted(), "state": name, "error": error, "attempt": attempt })
            })
            .collect();
        json!({ "status": if all_live { "ok" } else { "degraded" }, "sources": sources })
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
        let sources = Sources::new(&["mysql://app:secret@db/shop".into()]).expect("a known scheme");
        assert_eq!(
            sources.health(),
            json!({"status": "degraded", "sources": [
                {"url": "mysql://app:***@db/shop", "state": "connecting", "error": null, "attempt": 0}
            ]})
        );
        assert!(matches!(Sources::new(&["redis://h".into()]), Err(ConfigError::Source { .. })));
    }
}
