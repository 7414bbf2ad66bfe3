//! The gateway's own HTTP API, next to the transports: publish, presence, health, and the JSON
//! answers for unknown routes.
//!
//! - `POST /v1/publish/{topic}` with `{"event"?: "<type>", "data": <any JSON>}` →
//!   `200 {"topic","seq","id"}`; with auth on, the admin key or a token allowed to publish on
//!   the topic (`Authorization: Bearer …` or `?token=`), else `401`/`403`;
//! - `GET /v1/presence/{topic}` → `{"topic","total","by_transport":{"sse":2,…}}`; with auth on,
//!   the admin key or a token allowed to subscribe to the topic, else `401`/`403` (whether a
//!   per-user topic has subscribers tells whether that user is online);
//! - `GET /healthz` → `{"status":"ok"|"degraded","sources":[{"url","state","error","attempt"},…]}`:
//!   always `200` while the process answers; `degraded` when a database source is not live
//!   (see [`Sources::health`]).
//!
//! Errors use the shared `{"error":{"code","message"}}` body from [`pushgate_http::ApiError`].
//!
//! Publishes are limited per client address (see [`crate::limits`]; the allowance is shared
//! with the client's other connections and its WebSocket `publish` frames): over the rate, a
//! publish is `429 rate_limited` with `Retry-After` (whole seconds, at least 1). The body is
//! read first, so the refusal keeps the keep-alive connection usable. Refusals (rate, body
//! size) are counted for `/metrics`.
//!
//! A publish body must arrive within `--body-read-timeout` ([`BodyLimits::read_timeout`]): hyper's header-read
//! timeout ends with the headers, and without a deadline a client trickling its body a byte at
//! a time would hold a connection slot forever. A late body is `408 request_timeout`, and the
//! connection is closed since the rest of the body is still on its way.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use pushgate_auth::JwtAuth;
use pushgate_http::{Action, ApiError, Authorize, ErrorCode, Query, Refusal, Refusals, token_from};
use pushgate_hub::{Hub, NewEvent, TopicName};
use serde_json::{Map, Value, json};

use crate::limits::ConnectionState;
use crate::sources::Sources;

/// How large a request body may be and how long it may take to arrive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// Larger bodies get `413 too_large`.
    pub(crate) max_bytes: usize,
    /// Slower bodies get `408 request_timeout`.
    pub(crate) read_timeout: Duration,
}

#[derive(Clone)]
struct ApiState {
    hub: Hub,
    sources: Sources,
    bodies: BodyLimits,
    refusals: Refusals,
    authorize: Arc<dyn Authorize>,
    /// Recognises the admin key (and nothing else: it has no secret and no anonymous
    /// patterns), which may read any topic's presence though it may not subscribe.
    admin: Option<JwtAuth>,
}

/// Publish, presence and health routes over `hub`, with `bodies` for publish bodies;
/// `/healthz` reports `sources`; publishing is checked against `authorize`, presence also
/// allowed to `admin`; refusals are counted in `refusals`.
pub(crate) fn router(
    hub: Hub,
    bodies: BodyLimits,
    admin: Option<JwtAuth>,
    sources: Sources,
    refusals: Refusals,
    authorize: Arc<dyn Authorize>,
) -> Router {
    let state = ApiState { hub, sources, bodies, refusals, authorize, admin };
    Router::new()
        .route("/v1/publish/{topic}", post(publish))
        .route("/v1/presence/{topic}", get(presence))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// `POST /v1/publish/{topic}`.
async fn publish(
    State(state): State<ApiState>,
    connection: Option<Extension<Arc<ConnectionState>>>,
    topic: Result<Path<String>, PathRejection>,
    query: Query,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let topic = topic_name(topic)?;
    // Checked before the body is read: a refused publisher costs no body buffering.
    let token = token_from(&query, &headers);
    state.authorize.check(token, Action::Publish, std::slice::from_ref(&topic))?;
    let body = match read_request_body(&headers, body, state.bodies).await {
        Ok(body) => body,
        Err(response) => {
            if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                state.refusals.count(Refusal::MessageTooLarge);
            }
            return Ok(response);
        }
    };
    if let Some(Extension(connection)) = connection
        && let Err(wait) = connection.try_publish()
    {
        state.refusals.count(Refusal::RateLimited);
        return Ok(rate_limited(wait));
    }
    let event = parse_publish(&body)?;
    let stored = state.hub.publish(&topic, event).await?;
    let answer =
        json!({ "topic": stored.topic().as_str(), "seq": stored.seq(), "id": stored.cursor().to_string() });
    Ok(json_response(StatusCode::OK, answer.to_string()))
}

/// `429 rate_limited` with `Retry-After`: the wait until the next token, in whole seconds
/// rounded up (HTTP has no finer unit).
fn rate_limited(wait: Duration) -> Response {
    let message = format!(
        "this client publishes faster than its limit; the next publish is allowed in {} ms",
        wait.as_millis().max(1)
    );
    let mut response = ApiError::new(ErrorCode::RateLimited, message).into_response();
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// `GET /v1/presence/{topic}`: live SSE and WebSocket subscribers and parked long polls.
async fn presence(
    State(state): State<ApiState>,
    topic: Result<Path<String>, PathRejection>,
    query: Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let topic = topic_name(topic)?;
    let token = token_from(&query, &headers);
    let topics = std::slice::from_ref(&topic);
    if let Err(refused) = state.authorize.check(token, Action::Subscribe, topics) {
        let admin = state
            .admin
            .as_ref()
            .is_some_and(|admin| token.is_some() && admin.check(token, Action::Publish, topics).is_ok());
        if !admin {
            return Err(refused.into());
        }
    }
    let presence = state.hub.presence(&topic);
    let by_transport: Map<String, Value> =
        presence.by_label.into_iter().map(|(label, count)| (label, Value::from(count))).collect();
    let answer = json!({ "topic": topic.as_str(), "total": presence.total, "by_transport": by_transport });
    Ok(json_response(StatusCode::OK, answer.to_string()))
}

/// `GET /healthz`: the process is up and answering requests, and how its sources are doing.
async fn healthz(State(state): State<ApiState>) -> Response {
    let mut response = json_response(StatusCode::OK, state.sources.health().to_string());
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The answer for a path no route serves.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {method} {}", uri.path()))
}

/// The answer for a known path asked with a method it does not serve.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, format!("{} does not accept {method}", uri.path()))
}

/// An answer with a JSON `body`.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn topic_name(path: Result<Path<String>, PathRejection>) -> Result<TopicName, ApiError> {
    let Path(name) = path.map_err(|err| ApiError::new(ErrorCode::InvalidTopic, err.body_text()))?;
    TopicName::new(&name)
        .map_err(|err| ApiError::new(ErrorCode::InvalidTopic, format!("topic {name:?}: {err}")))
}

/// [`read_body`] for a handler: an error is the answer to send, and one for a body still
/// arriving at the deadline also closes the connection, since the unread rest of the body
/// would be taken for the next request.
pub(crate) async fn read_request_body(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
) -> Result<Bytes, Response> {
    read_body(headers, body, limits.max_bytes, limits.read_timeout).await.map_err(|err| {
        let close = err.code() == ErrorCode::RequestTimeout;
        let mut response = err.into_response();
        if close {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    })
}

/// Reads at most `limit` bytes of body within `deadline`; a declared or actual larger body is
/// `413 too_large`, a body still incomplete at the deadline `408 request_timeout`.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::new(ErrorCode::TooLarge, format!("the body is larger than {limit} bytes"));
    // Refuse a declared oversize body before reading any of it.
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let Ok(read) = tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await else {
        return Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!("the body did not arrive within {} ms", deadline.as_millis()),
        ));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(err) => Err(ApiError::new(ErrorCode::InvalidJson, format!("could not read the body: {err}"))),
    }
}

/// `{"event"?: "<type>", "data": <any JSON>}` as a hub event. `data` is required (`null` is a
/// value); other members are refused so a misspelt `event` is not silently ignored.
fn parse_publish(body: &[u8]) -> Result<NewEvent, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidJson, message);
    let value: Value =
        serde_json::from_slice(body).map_err(|err| invalid(format!("the body is not JSON: {err}")))?;
    let Value::Object(mut object) = value else {
        return Err(invalid(
            r#"the body must be a JSON object {"event"?: "<type>", "data": <any JSON>}"#.to_owned(),
        ));
    };
    let data = object
        .remove("data")
        .ok_or_else(|| invalid("the body has no `data` member (use null for none)".to_owned()))?;
    let event_type = match object.remove("event") {
        None => None,
        Some(Value::String(event_type)) => Some(event_type),
        Some(other) => return Err(invalid(format!("`event` must be a string, got {other}"))),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(invalid(format!(
            "unknown member {unknown:?}; a publish body has only `event` and `data`"
        )));
    }
    let event = NewEvent::new(data);
    Ok(match event_type {
        Some(event_type) => event.event_type(event_type),
        None => event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bodies_are_parsed_strictly() {
        let event = parse_publish(br#"{"event":"alert","data":{"x":1}}"#).expect("valid");
        assert_eq!(event.type_name(), "alert");
        assert_eq!(event.data().as_str(), r#"{"x":1}"#);
        assert_eq!(parse_publish(br#"{"data":null}"#).expect("null is a value").data().as_str(), "null");
        assert_eq!(parse_publish(br#"{"data":1}"#).expect("valid").type_name(), "message");

        for bad in [
            &b"not json"[..],
            b"[1]",
            b"{}",
            br#"{"event":"x"}"#,
            br#"{"event":1,"data":1}"#,
            br#"{"data":1,"evnet":"x"}"#,
        ] {
            let err = parse_publish(bad).expect_err("invalid");
            assert_eq!(err.code(), ErrorCode::InvalidJson, "{}", String::from_utf8_lossy(bad));
        }
    }
}
