//! Errors as HTTP answers: the one place a hub error gets its status and code.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use pushgate_hub::HubError;

/// A machine-readable error code, stable across releases (clients may match on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A topic name is not `[A-Za-z0-9_.:-]{1,128}`.
    InvalidTopic,
    /// An event type is not `[A-Za-z0-9_.:-]{1,64}`.
    InvalidEventType,
    /// A cursor is neither `now`, `oldest` nor one the server issued.
    InvalidCursor,
    /// A cursor points past the newest event.
    CursorAhead,
    /// No topic was named.
    NoTopics,
    /// Too many topics in one subscription.
    TooManyTopics,
    /// A body or frame is not the JSON expected.
    InvalidJson,
    /// A query parameter is malformed (e.g. a non-numeric timeout).
    InvalidParameter,
    /// The endpoint needs a protocol upgrade the request did not ask for (WebSocket).
    UpgradeRequired,
    /// The method is not served at this path.
    MethodNotAllowed,
    /// No such endpoint.
    NotFound,
    /// A body, frame or event is larger than allowed.
    TooLarge,
    /// The client did not send its request body within the server's deadline.
    RequestTimeout,
    /// The server holds its limit of topics or connections.
    Overloaded,
    /// The client's IP address holds its limit of connections.
    TooManyConnectionsFromIp,
    /// The connection publishes faster than its allowed rate; retry after a moment.
    RateLimited,
    /// The subscriber fell too far behind and was cut off; reconnect with the last cursor.
    SlowConsumer,
    /// The server is shutting down.
    ShuttingDown,
    /// A store the server depends on (Redis) is unreachable; retry later.
    Unavailable,
    /// The server failed.
    Internal,
    /// The request needs a token and carries none (401).
    TokenRequired,
    /// The token is malformed, forged or signed with an algorithm not accepted (401).
    InvalidToken,
    /// The token's expiry has passed (401); get a fresh one and reconnect or refresh.
    TokenExpired,
    /// The token does not allow this action on this topic (403).
    TopicForbidden,
    /// A WebSocket upgrade from a web page whose origin is not allowed (403).
    OriginForbidden,
    /// The token's user had its tokens revoked after it was issued (401); get a fresh one.
    TokenRevoked,
    /// The application behind the auth proxy did not accept the client's credentials (401).
    Unauthenticated,
    /// The application behind the auth proxy could not be asked in time (503); retry later.
    AuthUnavailable,
    /// The user holds the most connections allowed per user (429).
    TooManyConnectionsForUser,
    /// The request is not valid HTTP/1.1: a head that does not parse, an invalid or
    /// conflicting `Content-Length`, `Content-Length` with `Transfer-Encoding`, no `Host` or
    /// more than one (400).
    MalformedRequest,
    /// The request target is longer than the server reads (414).
    UriTooLong,
    /// The request head (request line and header fields) is larger than the server reads (431).
    HeadersTooLarge,
    /// The request uses a transfer coding the server does not implement (501).
    NotImplemented,
}

impl ErrorCode {
    /// The code as it appears in JSON (`"invalid_topic"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidTopic => "invalid_topic",
            Self::InvalidEventType => "invalid_event_type",
            Self::InvalidCursor => "invalid_cursor",
            Self::CursorAhead => "cursor_ahead",
            Self::NoTopics => "no_topics",
            Self::TooManyTopics => "too_many_topics",
            Self::InvalidJson => "invalid_json",
            Self::InvalidParameter => "invalid_parameter",
            Self::UpgradeRequired => "upgrade_required",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::RequestTimeout => "request_timeout",
            Self::Overloaded => "overloaded",
            Self::TooManyConnectionsFromIp => "too_many_connections_from_ip",
            Self::RateLimited => "rate_limited",
            Self::SlowConsumer => "slow_consumer",
            Self::ShuttingDown => "shutting_down",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::TokenRequired => "token_required",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TopicForbidden => "topic_forbidden",
            Self::OriginForbidden => "origin_forbidden",
            Self::TokenRevoked => "token_revoked",
            Self::Unauthenticated => "unauthenticated",
            Self::AuthUnavailable => "auth_unavailable",
            Self::TooManyConnectionsForUser => "too_many_connections_for_user",
            Self::MalformedRequest => "malformed_request",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::NotImplemented => "not_implemented",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidTopic
            | Self::InvalidEventType
            | Self::InvalidCursor
            | Self::CursorAhead
            | Self::NoTopics
            | Self::TooManyTopics
            | Self::InvalidJson
            | Self::InvalidParameter
            | Self::MalformedRequest => StatusCode::BAD_REQUEST,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::TooManyConnectionsFromIp | Self::RateLimited | Self::TooManyConnectionsForUser => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Overloaded
            | Self::ShuttingDown
            | Self::SlowConsumer
            | Self::Unavailable
            | Self::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TokenRequired
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::TokenRevoked
            | Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::TopicForbidden | Self::OriginForbidden => StatusCode::FORBIDDEN,
        }
    }
}

/// An error answer: a status and `{"error":{"code","message"}}`.
///
/// ```
/// use pushgate_http::{ApiError, ErrorCode};
/// use pushgate_hub::{HubError, TopicName};
///
/// let err = ApiError::from(HubError::from(TopicName::new("a b").unwrap_err()));
/// assert_eq!(err.code(), ErrorCode::InvalidTopic);
/// assert_eq!(err.code().status(), 400);
/// assert!(err.to_json().starts_with(r#"{"error":{"code":"invalid_topic","message":"#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error with `code` and a human-readable `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON value `{"code","message"}` (the inside of the `error` member).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code.as_str(), "message": self.message })
    }

    /// The JSON body `{"error":{"code","message"}}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "error": self.to_value() }).to_string()
    }
}

impl From<HubError> for ApiError {
    fn from(err: HubError) -> Self {
        let code = match &err {
            HubError::InvalidTopic(_) => ErrorCode::InvalidTopic,
            HubError::InvalidEventType(_) => ErrorCode::InvalidEventType,
            HubError::InvalidCursor(_) => ErrorCode::InvalidCursor,
            HubError::CursorAhead { .. } => ErrorCode::CursorAhead,
            HubError::NoTopics => ErrorCode::NoTopics,
            HubError::TooManyTopics { .. } => ErrorCode::TooManyTopics,
            HubError::DataTooLarge { .. } => ErrorCode::TooLarge,
            HubError::TopicLimit { .. } => ErrorCode::Overloaded,
            HubError::Closed => ErrorCode::ShuttingDown,
            HubError::Unavailable { .. } => ErrorCode::Unavailable,
            HubError::InvalidIdempotencyKey(_) | HubError::InvalidLatestKey(_) => ErrorCode::InvalidParameter,
            _ => ErrorCode::Internal,
        };
        Self::new(code, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.code.status(), self.to_json()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // The code travels with the answer, so middleware can count refusals by kind.
        response.extensions_mut().insert(self.code);
        if self.code.status() == StatusCode::UNAUTHORIZED {
            // RFC 6750: a 401 names the scheme the client should authenticate with.
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_read_deadline_is_408_request_timeout() {
        let err = ApiError::new(ErrorCode::RequestTimeout, "too slow");
        assert_eq!(err.code().status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(err.to_json(), r#"{"error":{"code":"request_timeout","message":"too slow"}}"#);
    }

    #[test]
    fn malformed_requests_have_their_own_statuses() {
        for (code, status, text) in [
            (ErrorCode::MalformedRequest, 400, "malformed_request"),
            (ErrorCode::UriTooLong, 414, "uri_too_long"),
            (ErrorCode::HeadersTooLarge, 431, "headers_too_large"),
            (ErrorCode::NotImplemented, 501, "not_implemented"),
        ] {
            assert_eq!((code.status().as_u16(), code.as_str()), (status, text));
        }
    }

    #[test]
    fn an_unavailable_store_is_503_unavailable() {
        let err = ApiError::from(HubError::Unavailable { reason: "redis is down".into() });
        assert_eq!(err.code().status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code().as_str(), "unavailable");
        assert!(err.message().contains("redis is down"), "{err}");
    }
}
