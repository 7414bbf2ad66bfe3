//! `GET /v1/ws`: the axum handler that validates the upgrade, subscribes from the query, answers
//! 101 and hands the upgraded socket to a connection task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper::upgrade::OnUpgrade;
use pushgate_http::{
    Action, ApiError, AuthRequest, ClientInfo, ErrorCode, Grant, PublishAllowance, Query, SubscribeParams,
    token_from,
};
use pushgate_hub::{Hub, HubError};

use crate::auth::{Auth, TRANSPORT};
use crate::config::WsConfig;
use crate::connection::Connection;
use crate::handshake;

struct Shared {
    hub: Hub,
    /// Shared by every connection's task rather than copied into each: the config is large
    /// (limits, the access policy, the origin allowlist) and the tasks only read it.
    config: Arc<WsConfig>,
}

/// The WebSocket transport as an axum [`Router`] serving `GET /v1/ws`; merge it into any app
/// served by `axum::serve` or hyper with upgrades enabled.
///
/// Each accepted connection runs on a task of its own (`tokio::spawn`), owned by the connection
/// and by the hub: it ends when the client closes or goes silent, on an I/O or protocol error,
/// when the client falls too far behind, or when [`Hub::close`] is called (each connection then
/// sends 1001 and is gone within [`WsConfig::close_timeout`]). Graceful shutdown is therefore
/// `hub.close()`.
///
/// ```
/// use pushgate_hub::Hub;
/// use pushgate_ws::{WsConfig, router};
///
/// let hub = Hub::new();
/// let app: axum::Router = router(hub.clone(), WsConfig::default());
/// # let _ = app;
/// ```
pub fn router(hub: Hub, config: WsConfig) -> Router {
    Router::new().route("/v1/ws", any(upgrade)).with_state(Arc::new(Shared { hub, config: Arc::new(config) }))
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

async fn upgrade(State(shared): State<Arc<Shared>>, mut request: Request) -> Response {
    let accept = match handshake::accept(request.method(), request.version(), request.headers()) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.into_response(),
    };
    if !shared.config.allowed_origins.allows_request(request.headers()) {
        let origin = request.headers().get(http::header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("");
        let message = format!("pages from {origin:?} may not open a WebSocket on this server");
        return ApiError::new(ErrorCode::OriginForbidden, message).into_response();
    }
    let query = Query::parse(request.uri().query());
    let params = match SubscribeParams::from_request(&query, request.headers()) {
        Ok(params) => params,
        Err(err) => return err.into_response(),
    };
    let notices = match pushgate_http::wants_presence(&query) {
        Ok(notices) => notices,
        Err(err) => return err.into_response(),
    };
    // A token or topics in the query are checked now, so a refusal is an HTTP answer; without
    // either the connection opens unauthenticated and may send an `auth` frame. A policy that
    // authenticates with cookies is asked about an upgrade carrying one, so that the connection
    // knows its user from the start.
    let authorize = &shared.config.authorize;
    let client = ClientInfo::for_policy(&**authorize, request.headers(), request.extensions());
    let token = token_from(&query, request.headers());
    let grant = if token.is_some() || !params.topics.is_empty() || client.cookie.is_some() {
        let asked =
            AuthRequest::new(Action::Subscribe, &params.topics, token, TRANSPORT, &client).holds_connection();
        match authorize.check(&asked).await {
            Ok(grant) => grant,
            Err(err) => return ApiError::from(err).into_response(),
        }
    } else {
        Grant::forever()
    };
    let auth = Auth::new(&shared.config, token.map(str::to_owned), client, grant);
    if request.extensions().get::<OnUpgrade>().is_none() {
        // Served by something that cannot hand over the connection (a test harness calling
        // the router directly, HTTP/2): refuse rather than answer 101 and hang.
        return ApiError::new(ErrorCode::Internal, "this server cannot upgrade connections").into_response();
    }
    if shared.hub.is_closed() {
        return ApiError::from(HubError::Closed).into_response();
    }
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    // Subscribing before the 101 turns a bad topic list or cursor into an HTTP error, and makes
    // the connection subscribed from the moment the client sees it open.
    // The client's allowance when the server keeps one per client (the gateway does), so
    // that reconnecting brings no fresh burst; otherwise one for this connection.
    let publishes = request.extensions().get::<PublishAllowance>().cloned().unwrap_or_else(|| {
        PublishAllowance::new(shared.config.publish_rate, tokio::time::Instant::now().into_std())
    });
    let connection =
        match Connection::new(id, shared.hub.clone(), &shared.config, params, notices, auth, publishes) {
            Ok(connection) => connection,
            Err(err) => return ApiError::from(err).into_response(),
        };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tracing::debug!(connection = id, transport = "ws", "websocket upgrade accepted");
    tokio::spawn(connection.serve(on_upgrade, Arc::clone(&shared.config)));
    handshake::switching_protocols(&accept)
}
