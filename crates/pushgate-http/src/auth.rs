//! The seam between the transports and an access policy: who may subscribe to or publish on
//! which topics.
//!
//! A transport finds the request's token ([`token_from`]: the `token` query parameter, which is
//! all a browser's `EventSource` can send, else `Authorization: Bearer …`), asks its
//! [`Authorize`] whether the token allows an [`Action`] on some topics, and gets a [`Grant`]
//! (which says until when) or an [`AuthError`], which becomes a `401` or `403` answer through
//! [`ApiError`]. What a token means (a signed JWT, a session lookup) is the implementation's
//! business, in another crate; the transports only know this trait.
//!
//! The default, [`AllowAll`], allows everything forever: with no policy configured the
//! transports behave as if auth did not exist.
//!
//! A token is a secret: nothing here puts one into an error message or a log line.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use pushgate_hub::TopicName;

use crate::error::{ApiError, ErrorCode};
use crate::query::Query;

/// What a client wants to do with some topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Receive the topics' events (any transport).
    Subscribe,
    /// Publish on the topics (the publish API, WebSocket `publish` frames).
    Publish,
}

impl Action {
    /// `"subscribe"` or `"publish"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Publish => "publish",
        }
    }
}

impl Action {
    /// The verb with its preposition, for messages: `"subscribe to"`, `"publish on"`.
    fn phrase(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe to",
            Self::Publish => "publish on",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Permission granted by [`Authorize::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Grant {
    /// When the permission ends (the token's expiry); `None` never. A stream opened with it
    /// ends then, unless the client refreshes its token in-band (WebSocket).
    pub expires_at: Option<SystemTime>,
    /// The holder is the application's own server, not one of its clients (the admin key, or
    /// a policy that recognises the application's backend): its publishes are never
    /// rate-limited, as a backend relaying a feed publishes for many clients at once.
    pub server: bool,
}

impl Grant {
    /// A grant that never expires.
    pub fn forever() -> Self {
        Self { expires_at: None, server: false }
    }

    /// A grant that ends at `expires_at`.
    pub fn until(expires_at: SystemTime) -> Self {
        Self { expires_at: Some(expires_at), server: false }
    }

    /// A grant to the application's own server: it never expires and its publishes are not
    /// rate-limited.
    ///
    /// ```
    /// use pushgate_http::Grant;
    ///
    /// assert!(Grant::server().server && Grant::server().expires_at.is_none());
    /// assert!(!Grant::forever().server);
    /// ```
    pub fn server() -> Self {
        Self { expires_at: None, server: true }
    }

    /// How long from now until it expires (zero when it already has); `None` for never.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use pushgate_http::Grant;
    ///
    /// assert_eq!(Grant::forever().remaining(), None);
    /// let past = Grant::until(SystemTime::UNIX_EPOCH);
    /// assert_eq!(past.remaining(), Some(Duration::ZERO));
    /// let soon = Grant::until(SystemTime::now() + Duration::from_secs(60));
    /// assert!(soon.remaining().unwrap() > Duration::from_secs(50));
    /// ```
    pub fn remaining(&self) -> Option<Duration> {
        self.expires_at.map(|at| at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
    }

    /// The expiry in whole seconds since the Unix epoch, as sent to clients; `None` for never.
    pub fn expires_unix(&self) -> Option<u64> {
        self.expires_at.map(|at| at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs()))
    }
}

/// Why access was refused. Messages name topics, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carries no token and anonymous clients may not do this (401).
    #[error("a token is required to {} {topic}", action.phrase())]
    TokenRequired {
        /// What was asked.
        action: Action,
        /// The first topic anonymous clients may not use.
        topic: TopicName,
    },
    /// The token is malformed, forged, signed with an algorithm not accepted, or lacks a
    /// required claim (401). The reason says which, without quoting the token.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// What is wrong with it.
        reason: Cow<'static, str>,
    },
    /// The token's `exp` has passed (401): get a fresh one.
    #[error("the token has expired")]
    TokenExpired,
    /// The token is valid but does not allow this action on this topic (403).
    #[error("this token may not {} {topic}", action.phrase())]
    TopicForbidden {
        /// What was asked.
        action: Action,
        /// The first topic not allowed.
        topic: TopicName,
    },
}

impl AuthError {
    /// The stable code clients match on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TokenRequired { .. } => ErrorCode::TokenRequired,
            Self::InvalidToken { .. } => ErrorCode::InvalidToken,
            Self::TokenExpired => ErrorCode::TokenExpired,
            Self::TopicForbidden { .. } => ErrorCode::TopicForbidden,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        ApiError::new(err.code(), err.to_string())
    }
}

/// An access policy: may the holder of `token` (or an anonymous client, for `None`) perform
/// `action` on every one of `topics`?
///
/// Implementations must be cheap enough to call on every poll and every WebSocket frame that
/// subscribes or publishes. `topics` may be empty: then only the token itself is checked (a
/// WebSocket `auth` frame), and an absent token is allowed.
pub trait Authorize: Send + Sync + 'static {
    /// Allows the request, and says until when, or refuses it.
    ///
    /// # Errors
    ///
    /// The [`AuthError`] to answer with.
    fn check(&self, token: Option<&str>, action: Action, topics: &[TopicName]) -> Result<Grant, AuthError>;

    /// Whether this policy can refuse anything. [`AllowAll`] cannot, so transports skip what
    /// only matters under a policy (a WebSocket's wait for its `auth` frame).
    fn is_enforced(&self) -> bool {
        true
    }
}

impl fmt::Debug for dyn Authorize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorize").field("enforced", &self.is_enforced()).finish_non_exhaustive()
    }
}

/// The policy of a server without auth: everything is allowed, forever.
///
/// ```
/// use pushgate_http::{Action, AllowAll, Authorize, Grant};
///
/// assert_eq!(AllowAll.check(None, Action::Publish, &[]), Ok(Grant::forever()));
/// assert!(!AllowAll.is_enforced());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorize for AllowAll {
    fn check(&self, _: Option<&str>, _: Action, _: &[TopicName]) -> Result<Grant, AuthError> {
        Ok(Grant::forever())
    }

    fn is_enforced(&self) -> bool {
        false
    }
}

/// The policy transports use when given none: [`AllowAll`].
pub fn allow_all() -> Arc<dyn Authorize> {
    Arc::new(AllowAll)
}

/// The request's token: the `token` query parameter (browsers' `EventSource` and WebSocket
/// cannot set headers), else the credentials of `Authorization: Bearer …`. Empty values count
/// as none.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header};
/// use pushgate_http::{Query, token_from};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
/// assert_eq!(token_from(&Query::parse(None), &headers), Some("abc"));
/// assert_eq!(token_from(&Query::parse(Some("token=xyz")), &headers), Some("xyz"));
/// assert_eq!(token_from(&Query::parse(Some("token=")), &HeaderMap::new()), None);
/// ```
pub fn token_from<'a>(query: &'a Query, headers: &'a HeaderMap) -> Option<&'a str> {
    token_in(query, headers.get(http::header::AUTHORIZATION))
}

/// [`token_from`] for a request of which only the `Authorization` header was kept.
pub(crate) fn token_in<'a>(query: &'a Query, authorization: Option<&'a HeaderValue>) -> Option<&'a str> {
    query.get("token").filter(|token| !token.is_empty()).or_else(|| bearer(authorization?))
}

/// The credentials of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, header};

    #[test]
    fn auth_errors_are_401_or_403_and_never_quote_the_token() {
        let topic = TopicName::new("user:42").unwrap_or_else(|_| unreachable!());
        let forbidden = ApiError::from(AuthError::TopicForbidden { action: Action::Subscribe, topic });
        assert_eq!(forbidden.code(), ErrorCode::TopicForbidden);
        assert_eq!(forbidden.code().status(), 403);
        assert_eq!(forbidden.message(), "this token may not subscribe to user:42");
        let expired = ApiError::from(AuthError::TokenExpired);
        assert_eq!((expired.code().status().as_u16(), expired.code().as_str()), (401, "token_expired"));
        let invalid = ApiError::from(AuthError::InvalidToken { reason: "bad signature".into() });
        assert_eq!(invalid.code().as_str(), "invalid_token");
    }

    #[test]
    fn only_bearer_credentials_are_a_token() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            token_from(&Query::parse(None), &headers).map(str::to_owned)
        };
        assert_eq!(with("bearer  t0k ").as_deref(), Some("t0k"));
        assert_eq!(with("Basic dXNlcjpwYXNz"), None);
        assert_eq!(with("Bearer"), None);
        assert_eq!(with("Bearer "), None);
    }
}
