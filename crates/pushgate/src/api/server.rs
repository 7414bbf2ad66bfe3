//! The server API: what the application's own servers (holding the admin key) may do to the
//! gateway's clients, and the snapshot cursor any client allowed to subscribe may ask for.
//!
//! Every `/v1/server/…` route takes the admin key (`Authorization: Bearer <key>` or
//! `?token=`); without one configured they answer `404 not_found`, with another token
//! `401 invalid_token`.
//!
//! - `POST /v1/server/users/{user}/disconnect` → `{"user","disconnected"}`: ends the user's
//!   SSE streams (`event: error`, code `disconnected`), WebSockets (close code 4410) and parked
//!   long polls (`410 disconnected`) on every node; `disconnected` counts this node's.
//! - `POST /v1/server/topics/{topic}/disconnect` → `{"topic","disconnected"}`: the same for
//!   every reader of the topic (a stream or WebSocket following it among others ends too).
//! - `POST /v1/server/users/{user}/revoke` with `{"issued_before"?: <unix seconds, default
//!   now>, "token_lifetime"?: <seconds, default 86400>}` → `{"user","issued_before","until"}`:
//!   the user's tokens (and the application's decisions) from before `issued_before` get
//!   `401 token_revoked` on every node until `until` (`issued_before + token_lifetime`, when
//!   every such token has expired anyway), and the connections opened with them end
//!   (`token_revoked`; WebSocket close code 4411). With `--redis` the revocation is kept in
//!   Redis until `until`, so a node started later knows it.
//! - `GET /v1/server/topics?after=<topic>&limit=<n ≤ 1000, default 100>` →
//!   `{"topics":[{"topic","subscribers","by_transport"}],"next"}`: this node's topics with
//!   live readers, in name order, a page at a time (`next` is the `after` of the next page,
//!   `null` on the last).
//! - `GET /v1/server/events?topic=…&cursor=…&limit=…` → the retained events after the cursor,
//!   exactly as a short poll answers them (`/v1/poll`), without the topics' access rules and
//!   without counting as a subscriber.
//!
//! And, for any client allowed to subscribe to the topics (or the admin key):
//!
//! - `GET /v1/cursor?topic=a&topic=b` → `{"cursor"}`: the cursor after every event published
//!   so far on those topics. With database sources, first every source publishes the changes
//!   committed before the request ([`Source::quiesce`](pushgate_sources::Source::quiesce)), so
//!   an application may take this cursor, then read its rows, and hand the page both (see
//!   docs/sources.md).
//!
//! With `--redis`, disconnects and revocations go to the other nodes through
//! [`ServerRelay`]; when Redis cannot be reached the command is applied on this node and the
//! answer is `503 unavailable`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use pushgate_auth::{AccessPolicy, AdminKey};
use pushgate_http::{
    Action, AnswerLimits, ApiError, AuthRequest, Authorize, ClientInfo, ErrorCode, PollRequest, Query,
    token_from,
};
use pushgate_hub::{Cursor, FetchOptions, Hub, TopicName};
use pushgate_redis::{ServerCommand, ServerRelay};
use serde_json::{Map, Value, json};

use super::{BodyLimits, json_response, read_request_body, topic_name};
use crate::sources::Sources;

/// How long a revocation is kept by default: the token lifetime assumed when the request
/// names none.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// Topics per page of `GET /v1/server/topics` by default, and at most.
const TOPICS_PAGE: usize = 100;
const MAX_TOPICS_PAGE: usize = 1000;

/// What the server API acts on.
#[derive(Clone)]
pub(crate) struct ServerApi {
    pub(crate) hub: Hub,
    pub(crate) admin: Option<AdminKey>,
    /// The access policy, when auth is on: users are known only then.
    pub(crate) policy: Option<AccessPolicy>,
    /// The other nodes, with `--redis`.
    pub(crate) relay: Option<ServerRelay>,
    pub(crate) sources: Sources,
    pub(crate) authorize: Arc<dyn Authorize>,
    pub(crate) bodies: BodyLimits,
    /// The short poll's answer limits, which `events` answers within.
    pub(crate) answers: AnswerLimits,
}

/// The server API's routes and `/v1/cursor`.
pub(crate) fn router(api: ServerApi) -> Router {
    Router::new()
        .route("/v1/server/users/{user}/disconnect", post(disconnect_user))
        .route("/v1/server/users/{user}/revoke", post(revoke))
        .route("/v1/server/topics/{topic}/disconnect", post(disconnect_topic))
        .route("/v1/server/topics", get(topics))
        .route("/v1/server/events", get(events))
        .route("/v1/cursor", get(cursor))
        .with_state(api)
}

/// Applies `command` on this node: how many connections or readers it ended.
pub(crate) fn apply(hub: &Hub, policy: Option<&AccessPolicy>, command: &ServerCommand) -> usize {
    match command {
        ServerCommand::DisconnectUser(user) => policy.map_or(0, |policy| policy.disconnect(user)),
        ServerCommand::DisconnectTopic(topic) => hub.disconnect(topic),
        ServerCommand::Revoke { user, issued_before, until } => {
            if let Some(policy) = policy
                && let Err(error) = policy.revoke(user, *issued_before, *until)
            {
                tracing::warn!(%error, "a revocation from another node could not be kept");
            }
            0
        }
        ServerCommand::Presence(change) => {
            hub.notify_presence(change.clone());
            0
        }
        _ => 0,
    }
}

/// Applies what the other nodes send (and the revocations Redis keeps) on this node, for as
/// long as the returned future runs.
pub(crate) async fn follow(relay: ServerRelay, hub: Hub, policy: Option<AccessPolicy>) {
    relay
        .listen(move |command| {
            let ended = apply(&hub, policy.as_ref(), &command);
            tracing::debug!(?command, ended, "server API command from another node");
        })
        .await;
}

/// Applies the revocations Redis keeps (a failure is logged: the relay reads them again once
/// it reaches Redis).
pub(crate) async fn load_revocations(relay: &ServerRelay, hub: &Hub, policy: &AccessPolicy) {
    match relay.revocations().await {
        Ok(revocations) => {
            for revocation in &revocations {
                apply(hub, Some(policy), revocation);
            }
            tracing::debug!(count = revocations.len(), "revocations loaded from redis");
        }
        Err(error) => tracing::warn!(%error, "could not read the revocations kept in redis; retrying"),
    }
}

impl ServerApi {
    /// `401`/`404` unless the request carries the admin key.
    fn admin_only(&self, query: &Query, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(admin) = &self.admin else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "the server API is off: the gateway has no admin key",
            ));
        };
        match token_from(query, headers) {
            Some(token) if admin.matches(token) => Ok(()),
            Some(_) => Err(ApiError::new(ErrorCode::InvalidToken, "the server API takes the admin key")),
            None => Err(ApiError::new(ErrorCode::TokenRequired, "the server API takes the admin key")),
        }
    }

    /// Applies `command` here and sends it to the other nodes.
    async fn run(&self, command: ServerCommand) -> Result<usize, ApiError> {
        let ended = apply(&self.hub, self.policy.as_ref(), &command);
        if let Some(relay) = &self.relay
            && let Err(error) = relay.send(&command).await
        {
            tracing::warn!(%error, ?command, "server API: the other nodes could not be told");
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "applied on this node; redis is unreachable, so the other nodes were not told: retry",
            ));
        }
        Ok(ended)
    }
}

fn user_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(user) = path.map_err(|err| ApiError::new(ErrorCode::InvalidParameter, err.body_text()))?;
    if user.is_empty() || user.len() > pushgate_hub::MAX_SENDER_LEN {
        return Err(ApiError::new(ErrorCode::InvalidParameter, "a user is 1 to 256 bytes"));
    }
    Ok(user)
}

/// `POST /v1/server/users/{user}/disconnect`.
async fn disconnect_user(
    State(api): State<ServerApi>,
    user: Result<Path<String>, PathRejection>,
    query: Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api.admin_only(&query, &headers)?;
    let user = user_of(user)?;
    let ended = api.run(ServerCommand::DisconnectUser(user.clone())).await?;
    Ok(json_response(StatusCode::OK, json!({ "user": user, "disconnected": ended }).to_string()))
}

/// `POST /v1/server/topics/{topic}/disconnect`.
async fn disconnect_topic(
    State(api): State<ServerApi>,
    topic: Result<Path<String>, PathRejection>,
    query: Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api.admin_only(&query, &headers)?;
    let topic = topic_name(topic)?;
    let ended = api.run(ServerCommand::DisconnectTopic(topic.clone())).await?;
    let answer = json!({ "topic": topic.as_str(), "disconnected": ended });
    Ok(json_response(StatusCode::OK, answer.to_string()))
}

/// `POST /v1/server/users/{user}/revoke`.
async fn revoke(
    State(api): State<ServerApi>,
    user: Result<Path<String>, PathRejection>,
    query: Query,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    api.admin_only(&query, &parts.headers)?;
    let user = user_of(user)?;
    let Some(policy) = &api.policy else {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "auth is off: the gateway accepts no tokens, so there are none to revoke",
        ));
    };
    let body = match read_request_body(&parts.headers, body, api.bodies).await {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let (issued_before, lifetime) = parse_revoke(&body)?;
    let until = issued_before + lifetime;
    if until <= SystemTime::now() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`issued_before` + `token_lifetime` has passed: every such token has expired already",
        ));
    }
    // Checked here first: a full list is this request's error, not a relayed warning.
    policy
        .revoke(&user, issued_before, until)
        .map_err(|err| ApiError::new(ErrorCode::Overloaded, err.to_string()))?;
    api.run(ServerCommand::Revoke { user: user.clone(), issued_before, until }).await?;
    let seconds = |time: SystemTime| time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let answer = json!({ "user": user, "issued_before": seconds(issued_before), "until": seconds(until) });
    Ok(json_response(StatusCode::OK, answer.to_string()))
}

/// `{"issued_before"?: <unix seconds>, "token_lifetime"?: <seconds>}` (an empty body is
/// `{}`): when the revocation starts and how long it is kept.
fn parse_revoke(body: &[u8]) -> Result<(SystemTime, Duration), ApiError> {
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidJson, message.to_owned());
    let mut object = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(object)) => object,
            _ => {
                return Err(invalid(
                    r#"the body must be {"issued_before"?: <unix seconds>, "token_lifetime"?: <seconds>}"#,
                ));
            }
        }
    };
    let mut seconds = |name: &str| match object.remove(name) {
        None => Ok(None),
        Some(value) => {
            value.as_u64().map(Some).ok_or_else(|| invalid(&format!("`{name}` must be whole seconds")))
        }
    };
    let issued_before = match seconds("issued_before")? {
        None => SystemTime::now(),
        Some(at) => UNIX_EPOCH + Duration::from_secs(at.min(pushgate_auth::MAX_EXPIRY)),
    };
    let lifetime = seconds("token_lifetime")?.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    if let Some(unknown) = object.keys().next() {
        return Err(invalid(&format!(
            "unknown member {unknown:?}; a revocation has `issued_before` and `token_lifetime`"
        )));
    }
    Ok((issued_before, lifetime.min(Duration::from_secs(pushgate_auth::MAX_EXPIRY))))
}

/// `GET /v1/server/topics`.
async fn topics(
    State(api): State<ServerApi>,
    query: Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api.admin_only(&query, &headers)?;
    let limit = query.count("limit", TOPICS_PAGE, MAX_TOPICS_PAGE)?.max(1);
    let (page, more) = api.hub.topics_with_readers(query.get("after"), limit);
    let next = more.then(|| page.last().map(|(topic, _)| topic.as_str().to_owned())).flatten();
    let topics: Vec<Value> = page
        .into_iter()
        .map(|(topic, presence)| {
            let by_transport: Map<String, Value> =
                presence.by_label.into_iter().map(|(label, count)| (label, Value::from(count))).collect();
            json!({ "topic": topic.as_str(), "subscribers": presence.total, "by_transport": by_transport })
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "topics": topics, "next": next }).to_string()))
}

/// `GET /v1/server/events`: a short poll for the admin key.
async fn events(
    State(api): State<ServerApi>,
    // Before the poll request, which takes the credentials out of the headers.
    headers: HeaderMap,
    request: PollRequest,
) -> Result<Response, ApiError> {
    api.admin_only(&request.query, &headers)?;
    let options = api.answers.fetch_options(&request.query)?.label("server");
    request.answer(&api.hub, &options).await
}

/// `GET /v1/cursor`.
async fn cursor(State(api): State<ServerApi>, query: Query, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers();
    let topics: Vec<TopicName> = pushgate_http::SubscribeParams::from_query(&query, None)?.topics;
    if topics.is_empty() {
        return Err(ApiError::new(ErrorCode::NoTopics, "name the topics: /v1/cursor?topic=a&topic=b"));
    }
    let token = token_from(&query, headers);
    let admin = api.admin.as_ref().is_some_and(|admin| token.is_some_and(|token| admin.matches(token)));
    if !admin {
        let client = ClientInfo::of(headers, request.extensions());
        api.authorize.check(&AuthRequest::new(Action::Subscribe, &topics, token, "http", &client)).await?;
    }
    // Which topics a source publishes on is up to its triggers: every source catches up.
    api.sources.quiesce(&api.hub).await.map_err(|err| {
        ApiError::new(ErrorCode::Unavailable, format!("a database source could not catch up: {err}"))
    })?;
    let batch =
        api.hub.fetch(&topics, Cursor::Now, &FetchOptions::default().limit(1).label("server")).await?;
    Ok(json_response(StatusCode::OK, json!({ "cursor": batch.cursor.to_string() }).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_are_parsed_strictly() {
        let (at, lifetime) = parse_revoke(b"").expect("empty is {}");
        assert!(at <= SystemTime::now() && lifetime == DEFAULT_TOKEN_LIFETIME);
        let (at, lifetime) = parse_revoke(br#"{"issued_before":100,"token_lifetime":60}"#).expect("valid");
        assert_eq!((at, lifetime), (UNIX_EPOCH + Duration::from_secs(100), Duration::from_secs(60)));
        for bad in [&b"[]"[..], br#"{"issued_before":-1}"#, br#"{"issued_before":"now"}"#, br#"{"ttl":1}"#] {
            assert_eq!(parse_revoke(bad).expect_err("invalid").code(), ErrorCode::InvalidJson);
        }
    }
}
