//! The seam between the transports and an access policy: who may subscribe to or publish on
//! which topics.
//!
//! A transport finds the request's token ([`token_from`]: the `token` query parameter, which is
//! all a browser's `EventSource` can send, else `Authorization: Bearer …`) and what a policy
//! may know of the client ([`ClientInfo`]: its address, `Cookie`, `Authorization`, `Origin`,
//! `User-Agent`), asks its [`Authorize`] whether an [`Action`] on some topics is allowed
//! ([`AuthRequest`]), and awaits the [`Check`]: a [`Grant`] (until when, for which user) or an
//! [`AuthError`], which becomes a `401`, `403`, `429` or `503` answer through [`ApiError`].
//! What a token or a cookie means (a signed JWT, the application's own sessions asked over
//! HTTP) is the implementation's business, in another crate; the transports only know this
//! trait.
//!
//! The default, [`AllowAll`], allows everything forever and answers at once without
//! allocating: with no policy configured the transports behave as if auth did not exist.
//!
//! A token is a secret, and so are cookies: nothing here puts one into an error message or a
//! log line.

mod check;
mod cutoff;
mod grant;
mod request;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use pushgate_hub::TopicName;

pub use check::Check;
pub use cutoff::{Cut, Cutoff, Switch};
pub use grant::Grant;
pub use request::{AuthRequest, ClientInfo};

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
    /// The token's user had its tokens revoked after this one was issued (401): get a fresh one.
    #[error("the token has been revoked")]
    TokenRevoked,
    /// The application refused the client's credentials (its session cookie or token) with a
    /// `401` (401).
    #[error("the application did not accept this client's credentials")]
    Unauthenticated,
    /// The application does not allow this action on this topic (403).
    #[error(
        "the application does not allow this client to {}{}",
        .action.phrase(),
        .topic.as_ref().map(|topic| format!(" {topic}")).unwrap_or_default()
    )]
    ApplicationForbidden {
        /// What was asked.
        action: Action,
        /// The first topic not allowed (the first one asked for, when the application refused
        /// the request as a whole; none for a request naming no topic).
        topic: Option<TopicName>,
    },
    /// The application could not be asked in time, or answered something else than a decision
    /// (503): never taken as an allow. Retry later.
    #[error("the application deciding access gave no decision in time; retry later")]
    Unavailable {
        /// What went wrong, without the request's credentials, for the server's log: clients
        /// are not told about the application's network.
        reason: Cow<'static, str>,
    },
    /// The user holds the most connections allowed per user (429).
    #[error("user {user:?} holds the most connections allowed per user ({limit})")]
    TooManyConnections {
        /// The user.
        user: String,
        /// The limit.
        limit: usize,
    },
}

impl AuthError {
    /// The stable code clients match on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TokenRequired { .. } => ErrorCode::TokenRequired,
            Self::InvalidToken { .. } => ErrorCode::InvalidToken,
            Self::TokenExpired => ErrorCode::TokenExpired,
            Self::TopicForbidden { .. } | Self::ApplicationForbidden { .. } => ErrorCode::TopicForbidden,
            Self::TokenRevoked => ErrorCode::TokenRevoked,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Unavailable { .. } => ErrorCode::AuthUnavailable,
            Self::TooManyConnections { .. } => ErrorCode::TooManyConnectionsForUser,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        ApiError::new(err.code(), err.to_string())
    }
}

/// An access policy: may this client do [`AuthRequest::action`] on every one of
/// [`AuthRequest::topics`]?
///
/// Called on every poll, when a stream or WebSocket opens, on every publish and on each
/// WebSocket frame that subscribes or publishes: an implementation should answer at once
/// ([`Check::ready`]) whenever it can (a JWT, a cached decision) and wait
/// ([`Check::pending`]) only when it must ask someone.
pub trait Authorize: Send + Sync + 'static {
    /// Allows the request, and says until when and for whom, or refuses it.
    fn check(&self, request: &AuthRequest<'_>) -> Check;

    /// Whether this policy can refuse anything. [`AllowAll`] cannot, so transports skip what
    /// only matters under a policy (a WebSocket's wait for its `auth` frame, keeping the
    /// upgrade's headers).
    fn is_enforced(&self) -> bool {
        true
    }
}

impl fmt::Debug for dyn Authorize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorize").field("enforced", &self.is_enforced()).finish_non_exhaustive()
    }
}

/// The policy of a server without auth: everything is allowed, forever, at once.
///
/// ```
/// use pushgate_http::{Action, AllowAll, AuthRequest, Authorize, ClientInfo, Grant};
///
/// let client = ClientInfo::default();
/// let check = AllowAll.check(&AuthRequest::new(Action::Publish, &[], None, "http", &client));
/// assert!(check.is_ready());
/// assert!(!AllowAll.is_enforced());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorize for AllowAll {
    fn check(&self, _: &AuthRequest<'_>) -> Check {
        Check::ready(Ok(Grant::forever()))
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
        assert_eq!((expired.code().status(), expired.code().as_str()), (401, "token_expired"));
        let invalid = ApiError::from(AuthError::InvalidToken { reason: "bad signature".into() });
        assert_eq!(invalid.code().as_str(), "invalid_token");
        let codes = [
            (AuthError::TokenRevoked, 401, "token_revoked"),
            (AuthError::Unauthenticated, 401, "unauthenticated"),
            (AuthError::Unavailable { reason: "timed out".into() }, 503, "auth_unavailable"),
            (
                AuthError::TooManyConnections { user: "42".into(), limit: 3 },
                429,
                "too_many_connections_for_user",
            ),
        ];
        for (err, status, code) in codes {
            let api = ApiError::from(err);
            assert_eq!((api.code().status(), api.code().as_str()), (status, code));
        }
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
