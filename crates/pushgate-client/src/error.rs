//! What can go wrong, and whether a subscription retries it.

use pushgate_protocol::{ErrorCode, ErrorObject, ws::close};

/// An error of a request or a subscription.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error (an HTTP status and the error object, a WebSocket
    /// `error` frame, or an SSE `error` frame; `status` is the code's HTTP status then).
    #[error("the server refused: {status} {error}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error object.
        error: ErrorObject,
    },
    /// The server closed the WebSocket with `code` and `reason`.
    #[error("the server closed the WebSocket: {code} {reason:?}")]
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The connection failed, or the server sent something that is not the protocol.
    #[error("{0}")]
    Connection(String),
    /// The token refresh callback failed.
    #[error("refreshing the token failed: {0}")]
    Refresh(String),
    /// The client is configured wrongly (an unusable URL).
    #[error("{0}")]
    Config(String),
}

/// What a subscription does after an attempt ended with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Get a fresh token, then reconnect at once.
    Refresh,
    /// Reconnect after a backoff.
    Backoff,
    /// Give up: retrying would get the same answer.
    Never,
}

impl Error {
    /// The error code, when the server named one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Refused { error, .. } => error.code(),
            Self::Closed { code: close::TOKEN_EXPIRED, .. } => Some(ErrorCode::TokenExpired),
            _ => None,
        }
    }

    pub(crate) fn refused(status: u16, error: ErrorObject) -> Self {
        Self::Refused { status, error }
    }

    /// The error of an answer with `status` and `body`, which should be the error object.
    pub(crate) fn from_answer(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<pushgate_protocol::ErrorBody>(body) {
            Ok(body) => Self::refused(status, body.error),
            Err(_) => Self::Connection(format!(
                "answer {status} without an error object: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }

    pub(crate) fn retry(&self) -> Retry {
        match self {
            Self::Refused { status, error } => match error.code() {
                Some(
                    ErrorCode::TokenExpired
                    | ErrorCode::TokenRequired
                    | ErrorCode::InvalidToken
                    | ErrorCode::TokenRevoked,
                ) => Retry::Refresh,
                _ if matches!(status, 408 | 429) || *status >= 500 => Retry::Backoff,
                _ => Retry::Never,
            },
            Self::Closed { code: close::TOKEN_EXPIRED | close::AUTH_TIMEOUT, .. } => Retry::Refresh,
            Self::Closed { .. } | Self::Connection(_) => Retry::Backoff,
            Self::Refresh(_) | Self::Config(_) => Retry::Never,
        }
    }
}
