//! Counts of requests and connections refused by a limit, for the gateway's `/metrics`
//! (`pushgate_refused_total{reason}`).
//!
//! Whoever refuses counts: the gateway's accept loop and publish API, and the transports that
//! are handed a [`Refusals`]. Refusals the hub makes itself (too many topics, data too large)
//! are counted by the hub ([`pushgate_hub::Stats`]) and added in by the gateway. A new reason is
//! one more [`Refusal`] variant, its name in [`Refusal::as_str`] and its place in
//! [`Refusal::ALL`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ErrorCode;

/// Why something was refused; the `reason` label of `pushgate_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// A connection over the server's connection limit (`503 overloaded`).
    Connections,
    /// A connection over the limit of connections from one IP address
    /// (`429 too_many_connections_from_ip`).
    ConnectionsPerIp,
    /// A publish over its connection's rate (`429 rate_limited`, or a WebSocket error frame).
    RateLimited,
    /// A subscription or poll naming more topics than allowed (`too_many_topics`).
    TooManyTopics,
    /// A body, message or event larger than allowed (`413 too_large`, close 1009).
    MessageTooLarge,
    /// A request or frame without a valid token where one is needed (`401 token_required`,
    /// `invalid_token`, `token_expired`, `token_revoked`, `unauthenticated`; WebSocket close
    /// 4401 or 4408).
    Unauthorized,
    /// A subscribe or publish the token does not allow (`403 topic_forbidden`).
    TopicForbidden,
    /// A WebSocket upgrade from a page whose origin is not allowed (`403 origin_forbidden`).
    OriginForbidden,
    /// A stream or parked poll over the limit of connections per user
    /// (`429 too_many_connections_for_user`).
    ConnectionsPerUser,
    /// A request the application behind the auth proxy could not decide in time
    /// (`503 auth_unavailable`).
    AuthUnavailable,
}

impl Refusal {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [Self; 10] = [
        Self::Connections,
        Self::ConnectionsPerIp,
        Self::RateLimited,
        Self::TooManyTopics,
        Self::MessageTooLarge,
        Self::Unauthorized,
        Self::TopicForbidden,
        Self::OriginForbidden,
        Self::ConnectionsPerUser,
        Self::AuthUnavailable,
    ];

    /// The refusal an access-control error stands for, if it is one. The limits are counted
    /// where they are enforced; access is refused in many places (every transport, the publish
    /// API, the demo), so the gateway counts those from the error code of the answer.
    ///
    /// ```
    /// use pushgate_http::{ErrorCode, Refusal};
    ///
    /// assert_eq!(Refusal::of_access_error(ErrorCode::TokenExpired), Some(Refusal::Unauthorized));
    /// assert_eq!(Refusal::of_access_error(ErrorCode::InvalidTopic), None);
    /// ```
    pub fn of_access_error(code: ErrorCode) -> Option<Self> {
        match code {
            ErrorCode::TokenRequired
            | ErrorCode::InvalidToken
            | ErrorCode::TokenExpired
            | ErrorCode::TokenRevoked
            | ErrorCode::Unauthenticated => Some(Self::Unauthorized),
            ErrorCode::TopicForbidden => Some(Self::TopicForbidden),
            ErrorCode::OriginForbidden => Some(Self::OriginForbidden),
            ErrorCode::TooManyConnectionsForUser => Some(Self::ConnectionsPerUser),
            ErrorCode::AuthUnavailable => Some(Self::AuthUnavailable),
            _ => None,
        }
    }

    /// The reason as the metric's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::ConnectionsPerIp => "connections_per_ip",
            Self::RateLimited => "rate_limited",
            Self::TooManyTopics => "too_many_topics",
            Self::MessageTooLarge => "message_too_large",
            Self::Unauthorized => "unauthorized",
            Self::TopicForbidden => "topic_forbidden",
            Self::OriginForbidden => "origin_forbidden",
            Self::ConnectionsPerUser => "connections_per_user",
            Self::AuthUnavailable => "auth_unavailable",
        }
    }

    fn index(self) -> usize {
        // `ALL` lists every variant, so the search always finds it.
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Refusal counters shared by everyone who refuses; cheap to clone (all clones count together).
///
/// ```
/// use pushgate_http::{Refusal, Refusals};
///
/// let refusals = Refusals::default();
/// refusals.count(Refusal::RateLimited);
/// refusals.clone().count(Refusal::RateLimited);
/// assert_eq!(refusals.get(Refusal::RateLimited), 2);
/// assert_eq!(refusals.get(Refusal::Connections), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Refusals {
    counts: Arc<[AtomicU64; Refusal::ALL.len()]>,
}

impl Refusals {
    /// Counts one refusal for `reason`.
    pub fn count(&self, reason: Refusal) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals for `reason` so far.
    pub fn get(&self, reason: Refusal) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }
}
