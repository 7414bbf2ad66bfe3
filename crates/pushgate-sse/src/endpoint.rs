//! `GET /v1/sse`: validate the request, subscribe, and answer with a streaming body.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use pushgate_http::{Action, ApiError, AuthRequest, ClientInfo, Query, SubscribeParams, token_from};
use pushgate_hub::{Hub, SubscribeOptions};

use crate::body::SseBody;
use crate::config::SseConfig;

/// The presence label of SSE subscribers.
const LABEL: &str = "sse";

struct Endpoint {
    hub: Hub,
    config: SseConfig,
}

/// The SSE endpoint, `GET /v1/sse?topic=…&cursor=…`, as a router to mount in any axum app (for
/// example with [`Router::merge`]). The hub is the shutdown signal: after [`Hub::close`], every
/// open stream sends `event: error` with code `shutting_down` and ends, and new requests get
/// `503 shutting_down`.
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::Hub;
/// use pushgate_sse::SseConfig;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let hub = Hub::new();
/// let config = SseConfig::default().heartbeat(Duration::from_secs(20));
/// let app = axum::Router::new().merge(pushgate_sse::router(hub.clone(), config));
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let shutdown = {
///     let hub = hub.clone();
///     async move { hub.closed().await }
/// };
/// let server = tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(shutdown).into_future());
/// hub.close(); // streams end with `shutting_down`, then the server stops
/// server.await??;
/// # Ok(()) }
/// ```
pub fn router(hub: Hub, config: SseConfig) -> Router {
    let state = Arc::new(Endpoint { hub, config });
    Router::new().route("/v1/sse", get(subscribe)).with_state(state)
}

async fn subscribe(
    State(endpoint): State<Arc<Endpoint>>,
    params: SubscribeParams,
    query: Query,
    request: Request,
) -> Response {
    let notices = match pushgate_http::wants_presence(&query) {
        Ok(notices) => notices,
        Err(err) => return err.into_response(),
    };
    let authorize = &endpoint.config.authorize;
    let client = ClientInfo::for_policy(&**authorize, request.headers(), request.extensions());
    let token = token_from(&query, request.headers());
    let asked = AuthRequest::new(Action::Subscribe, &params.topics, token, LABEL, &client).holds_connection();
    let grant = match authorize.check(&asked).await {
        Ok(grant) => grant,
        Err(err) => return ApiError::from(err).into_response(),
    };
    let options = SubscribeOptions::default()
        .label(LABEL)
        .user(grant.user_arc().cloned())
        .presence_events(notices)
        .max_backlog(endpoint.config.max_backlog)
        .coalesce(endpoint.config.coalesce)
        .latest(params.latest)
        .auto_batch(endpoint.config.auto_batch);
    let subscription = match endpoint.hub.subscribe_with(&params.topics, params.cursor, options) {
        Ok(subscription) => subscription,
        Err(err) => return ApiError::from(err).into_response(),
    };
    tracing::debug!(transport = "sse", topics = ?params.topics, cursor = %params.cursor, "stream opened");
    let mut response =
        Response::new(Body::from_stream(SseBody::new(subscription, &endpoint.config).holding(grant)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream, which would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
