//! Short polling: `GET /v1/poll?topic=…&cursor=…[&limit=N]` answers at once with the events
//! after the cursor, as described in `docs/protocol.md`.
//!
//! As far as the hub is concerned a short poll is a long poll with no wait: this crate is a
//! [`Hub::fetch`] with a zero wait, rendered by [`pushgate_http::render_batch`] (which also
//! gives every answer an `ETag`, so an idle poller that sends it back gets `304 Not Modified`).
//! An answer holds at most [`PollConfig::limit`] events and about [`PollConfig::max_bytes`] of
//! them (always at least one); the cursor then continues after the last event returned.
//! Nothing is held between polls, so short polls are not counted in presence.
//! Every poll is checked against [`PollConfig::authorize`] (default: allow all), so an expired
//! or revoked token stops working at the next poll.
//!
//! ```
//! use pushgate_hub::Hub;
//! use pushgate_http::BatchLimit;
//! use pushgate_poll::{PollConfig, router};
//!
//! let hub = Hub::new();
//! let app: axum::Router = router(hub, PollConfig::default().limit(BatchLimit::new(100, 500)));
//! # let _ = app;
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::HeaderMap;
use pushgate_http::{
    Action, ApiError, Authorize, BatchLimit, DEFAULT_MAX_ANSWER_BYTES, Query, SubscribeParams, token_from,
};
use pushgate_hub::{FetchOptions, Hub};

/// The path this transport serves.
pub const PATH: &str = "/v1/poll";

/// How short polls are answered.
///
/// ```
/// use pushgate_http::BatchLimit;
/// use pushgate_poll::PollConfig;
///
/// let config = PollConfig::default().limit(BatchLimit::new(100, 500)).max_bytes(1 << 20);
/// assert_eq!(config.get_limit().max_limit(), 500);
/// assert_eq!(config.get_max_bytes(), 1 << 20);
/// assert_eq!(PollConfig::default().get_max_bytes(), 4 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PollConfig {
    authorize: Arc<dyn Authorize>,
    limit: BatchLimit,
    max_bytes: usize,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            limit: BatchLimit::default(),
            max_bytes: DEFAULT_MAX_ANSWER_BYTES,
            authorize: pushgate_http::allow_all(),
        }
    }
}

impl PollConfig {
    /// Events per answer: the default when the request names no `limit`, and the cap (default
    /// 1,000 and 1,000).
    #[must_use]
    pub fn limit(mut self, limit: BatchLimit) -> Self {
        self.limit = limit;
        self
    }

    /// About how many bytes of events one answer may hold (default 4 MiB). The answer stops
    /// before the event that would pass it and its cursor continues from there; the first
    /// event always goes, however large, so every event can be delivered.
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The events-per-answer limit.
    pub fn get_limit(&self) -> BatchLimit {
        self.limit
    }

    /// Who may poll which topics (default: everyone, everything). Every request is checked
    /// with its token ([`token_from`]); a refusal is `401` or `403` with the usual JSON body.
    #[must_use]
    pub fn authorize(mut self, authorize: Arc<dyn Authorize>) -> Self {
        self.authorize = authorize;
        self
    }

    /// The answer budget in bytes.
    pub fn get_max_bytes(&self) -> usize {
        self.max_bytes
    }
}

struct Shared {
    hub: Hub,
    config: PollConfig,
}

/// The short-poll route, `GET /v1/poll`, ready to merge into any axum app.
pub fn router(hub: Hub, config: PollConfig) -> Router {
    Router::new().route(PATH, get(poll)).with_state(Arc::new(Shared { hub, config }))
}

async fn poll(
    State(shared): State<Arc<Shared>>,
    params: SubscribeParams,
    query: Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = token_from(&query, &headers);
    shared.config.authorize.check(token, Action::Subscribe, &params.topics)?;
    let options = FetchOptions::default()
        .limit(shared.config.limit.from_query(&query)?)
        .max_bytes(shared.config.max_bytes)
        // Short polls never wait, so they never show in presence; the label names them in the
        // hub's per-label counters (fetches, delivery latency).
        .label("poll");
    let batch = shared.hub.fetch(&params.topics, params.cursor, &options).await?;
    Ok(pushgate_http::render_batch(&params.topics, params.cursor, &batch, &headers))
}
