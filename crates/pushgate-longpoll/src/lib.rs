//! Long polling: `GET /v1/longpoll?topic=…&cursor=…[&timeout=25][&limit=N]` answers like a
//! short poll, but when nothing is new it holds the request until an event arrives or the
//! timeout passes (then `200` with no events and the same cursor), as described in
//! `docs/protocol.md`.
//!
//! The waiting is the hub's: this crate is a [`Hub::fetch`] with a wait and the presence label
//! `"longpoll"`, answered by [`pushgate_http::PollRequest`]. An answer holds at most
//! [`LongPollConfig::limit`] events and about [`LongPollConfig::max_bytes`] of them (always at
//! least one); the cursor then continues after the last event returned. A parked request is counted in
//! [`Hub::presence`] while it waits. On shutdown
//! ([`Hub::close`]) parked requests are answered at once with what they have, so clients
//! re-poll elsewhere; requests arriving after that get `503 shutting_down`.
//!
//! Every request is checked against [`LongPollConfig::authorize`] (default: allow all); a parked
//! request holds its grant (a policy may count it as one of its user's connections) and, when its
//! token expires first, is answered `401 token_expired` then, never an empty `200` that the
//! client would repeat at once with the same token.
//!
//! ```
//! use std::time::Duration;
//! use pushgate_hub::{FetchOptions, Hub};
//! use pushgate_longpoll::{LongPollConfig, router};
//!
//! let config = LongPollConfig::default().default_timeout(Duration::from_secs(20));
//! let app: axum::Router = router(Hub::new(), config);
//! # let _ = app;
//! ```

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use pushgate_http::{AnswerLimits, ApiError, Authorize, PollRequest, Query};
use pushgate_hub::{FetchOptions, Hub};

/// The path this transport serves.
pub const PATH: &str = "/v1/longpoll";

/// The presence label of a parked long poll.
pub const LABEL: &str = "longpoll";

/// How long polls wait and how much they return.
///
/// ```
/// use std::time::Duration;
/// use pushgate_longpoll::LongPollConfig;
///
/// let config = LongPollConfig::default().max_timeout(Duration::from_secs(60)).max_bytes(1 << 20);
/// assert_eq!(config.get_default_timeout(), Duration::from_secs(25));
/// assert_eq!(config.get_max_timeout(), Duration::from_secs(60));
/// assert_eq!(config.get_max_bytes(), 1 << 20);
/// assert_eq!(LongPollConfig::default().get_max_bytes(), 4 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LongPollConfig {
    authorize: Arc<dyn Authorize>,
    default_timeout: Duration,
    max_timeout: Duration,
    coalesce: Duration,
    answers: AnswerLimits,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(25),
            max_timeout: Duration::from_secs(120),
            coalesce: Duration::ZERO,
            answers: AnswerLimits::default(),
            authorize: pushgate_http::allow_all(),
        }
    }
}

impl LongPollConfig {
    /// How long a request that names no `timeout` is held (default 25 s; capped by the maximum).
    #[must_use]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// The longest a request is held whatever its `timeout` asks (default 120 s). Keep it
    /// below the idle timeouts of the proxies in front of the server.
    #[must_use]
    pub fn max_timeout(mut self, timeout: Duration) -> Self {
        self.max_timeout = timeout;
        self
    }

    /// Once a parked request has an event to answer with, hold it up to this long more (never
    /// past its own timeout) so that what follows goes in the same answer, up to the answer's
    /// limits (default zero: answer at once). A request that finds events already waiting
    /// when it arrives answers at once: it is catching up. On shutdown it answers at once. See
    /// [`FetchOptions::coalesce`](pushgate_hub::FetchOptions::coalesce).
    #[must_use]
    pub fn coalesce(mut self, window: Duration) -> Self {
        self.coalesce = window;
        self
    }

    pushgate_http::answer_limit_methods!();

    /// Who may poll which topics (default: everyone, everything). Every request is checked
    /// with its token ([`token_from`](pushgate_http::token_from)); a refusal is `401` or `403`
    /// with the usual JSON body.
    #[must_use]
    pub fn authorize(mut self, authorize: Arc<dyn Authorize>) -> Self {
        self.authorize = authorize;
        self
    }

    /// The wait used when the request names no `timeout`.
    pub fn get_default_timeout(&self) -> Duration {
        self.default_timeout.min(self.max_timeout)
    }

    /// The longest wait honoured.
    pub fn get_max_timeout(&self) -> Duration {
        self.max_timeout
    }

    /// The request's `timeout` (whole seconds, capped), or the default.
    fn timeout(&self, query: &Query) -> Result<Duration, ApiError> {
        let requested = query.seconds("timeout", self.max_timeout.as_secs())?;
        Ok(requested.map_or(self.get_default_timeout(), |t| t.min(self.max_timeout)))
    }
}

struct Shared {
    hub: Hub,
    config: LongPollConfig,
}

/// The long-poll route, `GET /v1/longpoll`, ready to merge into any axum app.
pub fn router(hub: Hub, config: LongPollConfig) -> Router {
    LongPollHandler::new(hub, config).router()
}

/// The long-poll handler, for a server that routes `GET /v1/longpoll` itself (the gateway's
/// keep-alive loop calls it without the router); [`router`](Self::router) serves the same
/// handler as the route.
///
/// ```
/// use pushgate_hub::Hub;
/// use pushgate_longpoll::{LongPollConfig, LongPollHandler};
///
/// let handler = LongPollHandler::new(Hub::new(), LongPollConfig::default());
/// let app: axum::Router = handler.router();
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct LongPollHandler(Arc<Shared>);

impl LongPollHandler {
    /// Long polls of `hub`, answered by `config`.
    pub fn new(hub: Hub, config: LongPollConfig) -> Self {
        Self(Arc::new(Shared { hub, config }))
    }

    /// The route, `GET /v1/longpoll`, ready to merge into any axum app.
    pub fn router(&self) -> Router {
        Router::new().route(PATH, get(longpoll)).with_state(Arc::clone(&self.0))
    }

    /// Answers `request` as the route does; its method and path are the caller's to check.
    pub fn answer(&self, request: Request<Body>) -> Pin<Box<dyn Future<Output = Response> + Send>> {
        let shared = Arc::clone(&self.0);
        pushgate_http::answer_request(request, move |request| longpoll(State(shared), request))
    }
}

impl std::fmt::Debug for LongPollHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LongPollHandler").field("config", &self.0.config).finish_non_exhaustive()
    }
}

/// Checks and sizes the request at once, then returns a future that keeps only what the answer
/// needs: the query, the headers and the handler's own state would otherwise be part of every
/// parked poll's future for the whole wait.
fn longpoll(
    State(shared): State<Arc<Shared>>,
    request: PollRequest,
) -> impl Future<Output = Response> + Send + 'static {
    // A parked request holds its grant while it waits: it counts as one of its user's
    // connections.
    let check = shared.config.authorize.check(&request.auth_request(LABEL).holds_connection());
    let mut prepared =
        prepare(&shared.config, &request).map(|(options, wait)| (request.into_answer(), options, wait));
    // The answer is a `Response` already (errors rendered here, not by a wrapper around this
    // future), so the server can box this future as it is, without moving it again.
    async move {
        // By reference: moved out, they would take room in the future twice.
        match prepared {
            // When the client disconnects, the server drops this future; the hub unregisters
            // the parked fetch on drop, so nothing outlives the request.
            Ok((ref answer, ref mut options, wait)) => match check.await {
                Ok(grant) => {
                    // A parked request never outlives its token: when the token expires first,
                    // it is answered `401 token_expired` then (not an empty `200` the client
                    // would repeat at once), and the client comes back with a fresh one.
                    let wait = grant.remaining().map_or(wait, |remaining| wait.min(remaining));
                    *options = std::mem::take(options).wait(wait).user(grant.user_arc().cloned());
                    answer
                        .answer_within(&shared.hub, options, &grant)
                        .await
                        .unwrap_or_else(ApiError::into_response)
                }
                Err(refused) => ApiError::from(refused).into_response(),
            },
            Err(error) => error.into_response(),
        }
    }
}

/// The request's fetch and its wait, before the token caps the wait.
fn prepare(config: &LongPollConfig, request: &PollRequest) -> Result<(FetchOptions, Duration), ApiError> {
    let wait = config.timeout(&request.query)?;
    let options = config
        .answers
        .fetch_options(&request.query)?
        .latest(request.params().latest)
        .coalesce(config.coalesce)
        .label(LABEL)
        .hold(request.presence_hold(LABEL)?)
        .presence_events(pushgate_http::wants_presence(&request.query)?);
    Ok((options, wait))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_http::ErrorCode;

    #[test]
    fn timeout_defaults_caps_and_rejects_junk() {
        let config = LongPollConfig::default().max_timeout(Duration::from_secs(60));
        let timeout = |raw: &str| config.timeout(&Query::parse(Some(raw)));
        assert_eq!(timeout(""), Ok(Duration::from_secs(25)));
        assert_eq!(timeout("timeout=0"), Ok(Duration::ZERO));
        assert_eq!(timeout("timeout=5"), Ok(Duration::from_secs(5)));
        assert_eq!(timeout("timeout=600"), Ok(Duration::from_secs(60)));
        assert_eq!(timeout("timeout=1.5").map_err(|e| e.code()), Err(ErrorCode::InvalidParameter));

        let short = LongPollConfig::default().max_timeout(Duration::from_secs(10));
        assert_eq!(short.timeout(&Query::default()), Ok(Duration::from_secs(10)));
    }
}
