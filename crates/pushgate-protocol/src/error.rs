//! The error object: `{"error":{"code","message"}}` in HTTP answers, the `error` of a WebSocket
//! `error` frame, and the reason of SSE `error` frames; and [`ErrorCode`], the stable codes with
//! the HTTP status each goes with.

use serde::{Deserialize, Serialize};

/// A machine-readable error code, stable across releases (clients may match on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// The application's server disconnected this client (its user, or a topic it followed)
    /// through the server API (410): do not reconnect on your own.
    Disconnected,
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
            Self::Disconnected => "disconnected",
            Self::Unauthenticated => "unauthenticated",
            Self::AuthUnavailable => "auth_unavailable",
            Self::TooManyConnectionsForUser => "too_many_connections_for_user",
            Self::MalformedRequest => "malformed_request",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::NotImplemented => "not_implemented",
        }
    }

    /// The HTTP status that goes with the code, as a number (this crate knows no HTTP library).
    ///
    /// ```
    /// use pushgate_protocol::ErrorCode;
    ///
    /// assert_eq!(ErrorCode::InvalidTopic.status(), 400);
    /// assert_eq!(ErrorCode::TokenExpired.status(), 401);
    /// ```
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidTopic
            | Self::InvalidEventType
            | Self::InvalidCursor
            | Self::CursorAhead
            | Self::NoTopics
            | Self::TooManyTopics
            | Self::InvalidJson
            | Self::InvalidParameter
            | Self::MalformedRequest => 400,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::NotImplemented => 501,
            Self::TooLarge => 413,
            Self::RequestTimeout => 408,
            Self::UpgradeRequired => 426,
            Self::MethodNotAllowed => 405,
            Self::NotFound => 404,
            Self::TooManyConnectionsFromIp | Self::RateLimited | Self::TooManyConnectionsForUser => 429,
            Self::Overloaded
            | Self::ShuttingDown
            | Self::SlowConsumer
            | Self::Unavailable
            | Self::AuthUnavailable => 503,
            Self::Internal => 500,
            Self::TokenRequired
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::TokenRevoked
            | Self::Unauthenticated => 401,
            Self::TopicForbidden | Self::OriginForbidden => 403,
            Self::Disconnected => 410,
        }
    }

    /// Every code, for tables and round-trip tests.
    pub const ALL: [ErrorCode; 34] = [
        Self::InvalidTopic,
        Self::InvalidEventType,
        Self::InvalidCursor,
        Self::CursorAhead,
        Self::NoTopics,
        Self::TooManyTopics,
        Self::InvalidJson,
        Self::InvalidParameter,
        Self::UpgradeRequired,
        Self::MethodNotAllowed,
        Self::NotFound,
        Self::TooLarge,
        Self::RequestTimeout,
        Self::Overloaded,
        Self::TooManyConnectionsFromIp,
        Self::RateLimited,
        Self::SlowConsumer,
        Self::ShuttingDown,
        Self::Unavailable,
        Self::Internal,
        Self::TokenRequired,
        Self::InvalidToken,
        Self::TokenExpired,
        Self::TopicForbidden,
        Self::OriginForbidden,
        Self::TokenRevoked,
        Self::Disconnected,
        Self::Unauthenticated,
        Self::AuthUnavailable,
        Self::TooManyConnectionsForUser,
        Self::MalformedRequest,
        Self::UriTooLong,
        Self::HeadersTooLarge,
        Self::NotImplemented,
    ];
}

/// A code string this version does not know (a newer server's); clients keep the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl std::str::FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    /// ```
    /// use pushgate_protocol::ErrorCode;
    ///
    /// assert_eq!("token_expired".parse(), Ok(ErrorCode::TokenExpired));
    /// assert!("no_such_code".parse::<ErrorCode>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
            .ok_or_else(|| UnknownErrorCode(text.to_owned()))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inside of an error answer: `{"code","message"}`.
///
/// The code is kept as text so a client reading a newer server's code still has it;
/// [`code`](Self::code) reads it as an [`ErrorCode`].
///
/// ```
/// use pushgate_protocol::{ErrorBody, ErrorCode, ErrorObject};
///
/// let body: ErrorBody = serde_json::from_str(r#"{"error":{"code":"invalid_topic","message":"no"}}"#)?;
/// assert_eq!(body.error.code(), Some(ErrorCode::InvalidTopic));
/// assert_eq!(
///     serde_json::to_string(&ErrorObject::new(ErrorCode::NoTopics, "name one"))?,
///     r#"{"code":"no_topics","message":"name one"}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The code's text (`"invalid_topic"`, …).
    #[serde(rename = "code")]
    pub code_text: String,
    /// A human-readable message; not stable, do not match on it.
    pub message: String,
}

impl ErrorObject {
    /// An error object with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code_text: code.as_str().to_owned(), message: message.into() }
    }

    /// The code, when this version knows it.
    pub fn code(&self) -> Option<ErrorCode> {
        self.code_text.parse().ok()
    }
}

impl std::fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code_text, self.message)
    }
}

/// The body of an HTTP error answer: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_text_and_has_an_error_status() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert!((400..600).contains(&code.status()), "{code}");
        }
    }

    #[test]
    fn malformed_requests_have_their_own_statuses() {
        for (code, status, text) in [
            (ErrorCode::MalformedRequest, 400, "malformed_request"),
            (ErrorCode::UriTooLong, 414, "uri_too_long"),
            (ErrorCode::HeadersTooLarge, 431, "headers_too_large"),
            (ErrorCode::NotImplemented, 501, "not_implemented"),
            (ErrorCode::RequestTimeout, 408, "request_timeout"),
        ] {
            assert_eq!((code.status(), code.as_str()), (status, text));
        }
    }
}
