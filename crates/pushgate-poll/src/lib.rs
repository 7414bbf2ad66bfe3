//! Short polling: `GET /v1/poll?topic=…&cursor=…[&limit=N]` answers at once with the events
//! after the cursor, as described in `docs/protocol.md`.
//!
//! As far as the hub is concerned a short poll is a long poll with no wait: this crate is a
//! [`Hub::fetch`] with a zero wait, answered by [`pushgate_http::PollRequest`] (which also
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

use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use pushgate_http::{AnswerLimits, ApiError, Authorize, PollRequest};
use pushgate_hub::Hub;

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
    answers: AnswerLimits,
    authorize: Arc<dyn Authorize>,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self { answers: AnswerLimits::default(), authorize: pushgate_http::allow_all() }
    }
}

impl PollConfig {
    pushgate_http::answer_limit_methods!();

    /// Who may poll which topics (default: everyone, everything). Every request is checked
    /// with its token ([`token_from`](pushgate_http::token_from)); a refusal is `401` or `403`
    /// with the usual JSON body.
    #[must_use]
    pub fn authorize(mut self, authorize: Arc<dyn Authorize>) -> Self {
        self.authorize = authorize;
        self
    }
}

struct Shared {
    hub: Hub,
    config: PollConfig,
}

/// The short-poll route, `GET /v1/poll`, ready to merge into any axum app.
pub fn router(hub: Hub, config: PollConfig) -> Router {
    PollHandler::new(hub, config).router()
}

/// The short-poll handler, for a server that routes `GET /v1/poll` itself (the gateway's
/// keep-alive loop calls it without the router); [`router`](Self::router) serves the same
/// handler as the route.
///
/// ```
/// use pushgate_hub::Hub;
/// use pushgate_poll::{PollConfig, PollHandler};
///
/// let handler = PollHandler::new(Hub::new(), PollConfig::default());
/// let app: axum::Router = handler.router();
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct PollHandler(Arc<Shared>);

impl PollHandler {
    /// Short polls of `hub`, answered by `config`.
    pub fn new(hub: Hub, config: PollConfig) -> Self {
        Self(Arc::new(Shared { hub, config }))
    }

    /// The route, `GET /v1/poll`, ready to merge into any axum app.
    pub fn router(&self) -> Router {
        Router::new().route(PATH, get(poll)).with_state(Arc::clone(&self.0))
    }

    /// Answers `request` as the route does; its method and path are the caller's to check.
    pub fn answer(&self, request: Request<Body>) -> Pin<Box<dyn Future<Output = Response> + Send>> {
        let shared = Arc::clone(&self.0);
        pushgate_http::answer_request(request, move |request| poll(State(shared), request))
    }
}

impl std::fmt::Debug for PollHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollHandler").field("config", &self.0.config).finish_non_exhaustive()
    }
}

/// The label of this transport, in the hub's counters and in what the access policy is told.
const LABEL: &str = "poll";

async fn poll(State(shared): State<Arc<Shared>>, request: PollRequest) -> Response {
    answer(&shared, request).await.unwrap_or_else(ApiError::into_response)
}

async fn answer(shared: &Shared, request: PollRequest) -> Result<Response, ApiError> {
    let grant = shared.config.authorize.check(&request.auth_request(LABEL)).await?;
    // Short polls never wait: they show in presence only through the lease of a request that
    // names its `client`. The label also names them in the hub's per-label counters (fetches,
    // delivery latency).
    let options = shared
        .config
        .answers
        .fetch_options(&request.query)?
        .latest(request.params().latest)
        .label(LABEL)
        .user(grant.user_arc().cloned())
        .hold(request.presence_hold(LABEL)?);
    // A short poll never waits, so it cannot be handed notices: `presence=1` is for long polls.
    request.answer(&shared.hub, &options).await
}
