//! Short polling: `GET /v1/poll?topic=…&cursor=…[&limit=N]` answers at once with the events
//! after the cursor, as described in `docs/protocol.md`.
//!
//! As far as the hub is concerned a short poll is a long poll with no wait: this crate is a
//! [`Hub::fetch`] with a zero wait, rendered by [`pushgate_http::render_batch`] (which also
//! gives every answer an `ETag`, so an idle poller that sends it back gets `304 Not Modified`).
//! Nothing is held between polls, so short polls are not counted in presence.
//!
//! ```
//! use pushgate_hub::Hub;
//! use pushgate_poll::{PollConfig, router};
//!
//! let hub = Hub::new();
//! let app: axum::Router = router(hub, PollConfig::default().max_limit(500));
//! # let _ = app;
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::HeaderMap;
use pushgate_http::{ApiError, ErrorCode, Query, SubscribeParams};
use pushgate_hub::{FetchOptions, Hub};

/// The path this transport serves.
pub const PATH: &str = "/v1/poll";

/// How short polls are answered.
///
/// ```
/// use pushgate_poll::PollConfig;
///
/// let config = PollConfig::default().default_limit(100).max_limit(500);
/// assert_eq!((config.get_default_limit(), config.get_max_limit()), (100, 500));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PollConfig {
    default_limit: usize,
    max_limit: usize,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self { default_limit: 1000, max_limit: 1000 }
    }
}

impl PollConfig {
    /// Events per answer when the request names no `limit` (default 1,000; capped by the maximum).
    #[must_use]
    pub fn default_limit(mut self, n: usize) -> Self {
        self.default_limit = n.max(1);
        self
    }

    /// Most events per answer whatever the request asks (default 1,000); larger `limit`s are
    /// lowered to it.
    #[must_use]
    pub fn max_limit(mut self, n: usize) -> Self {
        self.max_limit = n.max(1);
        self
    }

    /// The limit used when the request names none.
    pub fn get_default_limit(&self) -> usize {
        self.default_limit.min(self.max_limit)
    }

    /// The largest limit honoured.
    pub fn get_max_limit(&self) -> usize {
        self.max_limit
    }

    /// The request's `limit`, or the default.
    fn limit(&self, query: &Query) -> Result<usize, ApiError> {
        match query.get("limit") {
            None | Some("") => Ok(self.get_default_limit()),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n.min(self.max_limit)),
                _ => Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("`limit` must be a whole number from 1 to {}, got {text:?}", self.max_limit),
                )),
            },
        }
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
    let options = FetchOptions::default().limit(shared.config.limit(&query)?);
    let batch = shared.hub.fetch(&params.topics, params.cursor, &options).await?;
    Ok(pushgate_http::render_batch(params.cursor, &batch, &headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_caps_and_rejects_junk() {
        let config = PollConfig::default().default_limit(10).max_limit(50);
        let limit = |raw: &str| config.limit(&Query::parse(Some(raw)));
        assert_eq!(limit(""), Ok(10));
        assert_eq!(limit("limit="), Ok(10));
        assert_eq!(limit("limit=7"), Ok(7));
        assert_eq!(limit("limit=5000"), Ok(50));
        for bad in ["limit=0", "limit=-1", "limit=x", "limit=1.5"] {
            assert_eq!(limit(bad).map_err(|e| e.code()), Err(ErrorCode::InvalidParameter), "{bad}");
        }
        assert_eq!(PollConfig::default().default_limit(100).max_limit(20).get_default_limit(), 20);
    }
}
