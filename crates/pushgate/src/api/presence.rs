//! `GET /v1/presence/{topic}`: who reads a topic, on every node.
//!
//! ```text
//! {"topic":"chat","total":3,"by_transport":{"sse":2,"poll":1},"transports":{"sse":2,"poll":1},
//!  "users":["42","alice"],"users_total":2,"users_truncated":false,"nodes":2}
//! ```
//!
//! `total` counts live readers: SSE streams, WebSocket subscriptions, parked long polls, and
//! polling clients that named their `client` within two of their intervals
//! ([`pushgate_http::presence_hold`]). `transports` is the same count per transport as
//! `by_transport` (the older name, kept for existing clients). `users` lists the distinct users
//! of readers that have one (the token's `sub`, or the auth proxy's `user`), in name order, at
//! most [`MAX_PRESENCE_USERS`](pushgate_hub::MAX_PRESENCE_USERS); `users_total` counts them all and `users_truncated` says that
//! the list stops short. `nodes` is how many gateway nodes were counted (with `--redis`, this one
//! and those whose report is live; `"partial": true` when the others could not be read).
//!
//! With auth on, the admin key or a token allowed to subscribe to the topic may ask, else
//! `401`/`403` (whether a per-user topic has subscribers tells whether that user is online).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::StatusCode;
use pushgate_http::{Action, ApiError, AuthRequest, ClientInfo, Query, token_from};
use serde_json::{Map, Value, json};

use super::{ApiState, json_response, topic_name};

/// `GET /v1/presence/{topic}`.
pub(super) async fn presence(
    State(state): State<ApiState>,
    topic: Result<Path<String>, PathRejection>,
    query: Query,
    request: Request,
) -> Result<Response, ApiError> {
    let topic = topic_name(topic)?;
    let token = token_from(&query, request.headers());
    let topics = std::slice::from_ref(&topic);
    let admin = state.admin.as_ref().is_some_and(|admin| token.is_some_and(|token| admin.matches(token)));
    if !admin {
        let client = ClientInfo::of(request.headers(), request.extensions());
        state.authorize.check(&AuthRequest::new(Action::Subscribe, topics, token, "http", &client)).await?;
    }
    let found = state.presence.of(&topic).await;
    let presence = found.presence;
    let by_transport: Map<String, Value> =
        presence.by_label.into_iter().map(|(label, count)| (label, Value::from(count))).collect();
    let mut answer = json!({
        "topic": topic.as_str(),
        "total": presence.total,
        "transports": by_transport,
        "by_transport": by_transport,
        "users_truncated": presence.users.len() < presence.users_total,
        "users": presence.users,
        "users_total": presence.users_total,
        "nodes": found.nodes,
    });
    if found.partial {
        answer["partial"] = Value::Bool(true);
    }
    Ok(json_response(StatusCode::OK, answer.to_string()))
}
