//! Errors as HTTP answers: the one place a hub error gets its status and code. The codes and
//! their statuses are the protocol's ([`ErrorCode`]); this adds the answer around them.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use pushgate_hub::HubError;
pub use pushgate_protocol::ErrorCode;
use pushgate_protocol::{ErrorBody, ErrorObject};

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

    /// The protocol's error object `{"code","message"}` (the inside of the `error` member).
    pub fn to_object(&self) -> ErrorObject {
        ErrorObject::new(self.code, self.message.clone())
    }

    /// The JSON value `{"code","message"}` (the inside of the `error` member).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self.to_object()).unwrap_or_default()
    }

    /// The JSON body `{"error":{"code","message"}}`.
    pub fn to_json(&self) -> String {
        // An object of two strings always serializes; an empty object if it ever did not.
        serde_json::to_string(&ErrorBody { error: self.to_object() }).unwrap_or_else(|_| "{}".to_owned())
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
            HubError::Disconnected => ErrorCode::Disconnected,
            HubError::Unavailable { .. } => ErrorCode::Unavailable,
            HubError::InvalidIdempotencyKey(_) | HubError::InvalidLatestKey(_) => ErrorCode::InvalidParameter,
            _ => ErrorCode::Internal,
        };
        Self::new(code, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (status_of(self.code), self.to_json()).into_response();
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

/// The status of `code` as the `http` crate's type.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
    fn every_code_has_a_valid_http_status() {
        for code in ErrorCode::ALL {
            assert_eq!(status_of(code).as_u16(), code.status(), "{code}");
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
