//! The gateway's own HTTP API, next to the transports: publish, presence, health, and the JSON
//! answers for unknown routes.
//!
//! - `POST /v1/publish/{topic}` with `{"event"?: "<type>", "data": <any JSON>, "key"?: "…"}` →
//!   `200 {"topic","seq","id"}`; with auth on, the admin key or a token allowed to publish on
//!   the topic (`Authorization: Bearer …` or `?token=`), else `401`/`403`;
//! - `GET /v1/presence/{topic}` → who reads the topic, on every node (see [`presence`]);
//! - `GET /healthz` → `{"status":"ok"|"degraded","sources":[{"url","state","error","attempt"},…]}`:
//!   always `200` while the process answers; `degraded` when a database source is neither live
//!   nor standing by (see [`Sources::health`]).
//!
//! The server API (admin key: disconnect, revoke, topics, events) and `GET /v1/cursor` are in
//! [`server`].
//!
//! Errors use the shared `{"error":{"code","message"}}` body from [`pushgate_http::ApiError`].
//!
//! Publishes are limited per client address (see [`crate::limits`]; the allowance is shared
//! with the client's other connections and its WebSocket `publish` frames): over the rate, a
//! publish is `429 rate_limited` with `Retry-After` (whole seconds, at least 1). The
//! application's own server (a [`Grant::server`](pushgate_http::Grant::server): the admin key)
//! is never limited. The body is
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
use axum::extract::Request;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use pushgate_auth::AdminKey;
use pushgate_http::{
    Action, ApiError, AuthRequest, Authorize, ClientInfo, ErrorCode, Query, Refusal, Refusals, token_from,
};
use pushgate_hub::{Hub, NewEvent, TopicName};
use serde_json::{Value, json};

use crate::limits::ConnectionState;
use crate::presence::PresenceView;
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
    presence: PresenceView,
    sources: Sources,
    bodies: BodyLimits,
    refusals: Refusals,
    authorize: Arc<dyn Authorize>,
    /// The admin key, which may read any topic's presence though it may not subscribe.
    admin: Option<AdminKey>,
}

/// Publish, presence and health routes over `hub`, with `bodies` for publish bodies;
/// `/healthz` reports `sources`; publishing is checked against `authorize`, presence also
/// allowed to `admin`; refusals are counted in `refusals`.
pub(crate) fn router(
    hub: Hub,
    presence: PresenceView,
    bodies: BodyLimits,
    admin: Option<AdminKey>,
    sources: Sources,
    refusals: Refusals,
    authorize: Arc<dyn Authorize>,
) -> Router {
    let state = ApiState { hub, presence, sources, bodies, refusals, authorize, admin };
    Router::new()
        .route("/v1/publish/{topic}", post(publish))
        .route("/v1/presence/{topic}", get(presence::presence))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// `POST /v1/publish/{topic}`.
async fn publish(
    State(state): State<ApiState>,
    connection: Option<Extension<Arc<ConnectionState>>>,
    topic: Result<Path<String>, PathRejection>,
    query: Query,
    request: Request,
) -> Result<Response, ApiError> {
    let topic = topic_name(topic)?;
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // Checked before the body is read: a refused publisher costs no body buffering.
    let client = ClientInfo::of(&headers, &parts.extensions);
    let token = token_from(&query, &headers);
    let topics = std::slice::from_ref(&topic);
    let grant =
        state.authorize.check(&AuthRequest::new(Action::Publish, topics, token, "http", &client)).await?;
    // The application's servers may name the sender of what they publish; nobody else may.
    let is_server = grant.is_server() || !state.authorize.is_enforced();
    let body = match read_request_body(&headers, body, state.bodies).await {
        Ok(body) => body,
        Err(response) => {
            if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                state.refusals.count(Refusal::MessageTooLarge);
            }
            return Ok(response);
        }
    };
    // The application's own server (the admin key) publishes for many clients: never limited.
    if !grant.is_server()
        && let Some(Extension(connection)) = connection
        && let Err(wait) = connection.try_publish()
    {
        state.refusals.count(Refusal::RateLimited);
        return Ok(rate_limited(wait));
    }
    let mut event = parse_publish(&body, is_server)?;
    if let Some(user) = grant.user() {
        event = event.from(user);
    }
    if let Some(key) = idempotency_key(&headers)? {
        event = event.idempotency_key(key);
    }
    let published = state.hub.publish_idempotent(&topic, event).await?;
    let answer = json!({
        "topic": published.topic().as_str(),
        "seq": published.seq(),
        "id": published.cursor().to_string(),
    });
    let mut response = json_response(StatusCode::OK, answer.to_string());
    if published.is_replay() {
        // The answer is the original publish's; nothing was published this time.
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Marks the answer to a publish whose `Idempotency-Key` was seen before (as Stripe and the
/// IETF idempotency-key draft's implementations do).
const IDEMPOTENT_REPLAYED: http::HeaderName = http::HeaderName::from_static("idempotent-replayed");

/// The request's `Idempotency-Key`, if any; `400 invalid_parameter` when it is given twice or is
/// not visible ASCII (the hub checks its length and characters again).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::new(ErrorCode::InvalidParameter, "`Idempotency-Key` is given more than once"));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| ApiError::new(ErrorCode::InvalidParameter, "`Idempotency-Key` must be printable ASCII"))
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

/// `{"event"?: "<type>", "data": <any JSON>, "key"?: "<key>", "from"?: "<sender>"}` as a hub
/// event (`key`: what the event is the newest value of, for latest-only readers). `data` is
/// required (`null` is a value); `from` only from a server (`may_set_from`: the admin key, or
/// no auth at all), since it is the sender every subscriber trusts; other members are refused
/// so a misspelt `event` is not silently ignored.
fn parse_publish(body: &[u8], may_set_from: bool) -> Result<NewEvent, ApiError> {
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
    let key = match object.remove("key") {
        None => None,
        Some(Value::String(key)) => Some(key),
        Some(other) => return Err(invalid(format!("`key` must be a string, got {other}"))),
    };
    let from = match object.remove("from") {
        None => None,
        Some(_) if !may_set_from => {
            return Err(invalid(
                "`from` is set by the server from the publisher's credentials; only the admin key may give it"
                    .to_owned(),
            ));
        }
        Some(Value::String(from)) => Some(from),
        Some(other) => return Err(invalid(format!("`from` must be a string, got {other}"))),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(invalid(format!(
            "unknown member {unknown:?}; a publish body has only `event`, `data`, `key` and (from a server) `from`"
        )));
    }
    let mut event = NewEvent::new(data);
    if let Some(event_type) = event_type {
        event = event.event_type(event_type);
    }
    if let Some(from) = from {
        event = event.from(from);
    }
    if let Some(key) = key {
        event = event.latest_key(key);
    }
    Ok(event)
}

mod presence;
pub(crate) mod server;

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bodies_are_parsed_strictly() {
        let event = parse_publish(br#"{"event":"alert","data":{"x":1}}"#, false).expect("valid");
        assert_eq!(event.type_name(), "alert");
        assert_eq!(event.data().as_str(), r#"{"x":1}"#);
        assert_eq!(
            parse_publish(br#"{"data":null}"#, false).expect("null is a value").data().as_str(),
            "null"
        );
        assert_eq!(parse_publish(br#"{"data":1}"#, false).expect("valid").type_name(), "message");
        // Only a server names the sender.
        let from = br#"{"data":1,"from":"42"}"#;
        assert_eq!(parse_publish(from, true).expect("a server's").sender(), Some("42"));
        assert_eq!(parse_publish(from, false).expect_err("a client's").code(), ErrorCode::InvalidJson);
        assert!(parse_publish(br#"{"data":1,"from":42}"#, true).is_err());
        let keyed = parse_publish(br#"{"data":1,"key":"AAPL"}"#, false).expect("a key");
        assert_eq!(keyed.latest_key_name(), Some("AAPL"));
        assert!(parse_publish(br#"{"data":1,"key":7}"#, false).is_err());

        for bad in [
            &b"not json"[..],
            b"[1]",
            b"{}",
            br#"{"event":"x"}"#,
            br#"{"event":1,"data":1}"#,
            br#"{"data":1,"evnet":"x"}"#,
        ] {
            let err = parse_publish(bad, true).expect_err("invalid");
            assert_eq!(err.code(), ErrorCode::InvalidJson, "{}", String::from_utf8_lossy(bad));
        }
    }
}
