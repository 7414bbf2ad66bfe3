//! What a connection knows about its client's credentials: the token, until when it holds, and
//! how long a client that has none yet may wait before sending one.

use std::sync::Arc;

use pushgate_http::{Action, ApiError, Authorize, Grant};
use pushgate_hub::TopicName;
use tokio::time::Instant;

use crate::config::WsConfig;

/// A connection's credentials. The token is a secret: it is kept to check each `subscribe`
/// and `publish` frame, and never logged or echoed.
pub(crate) struct Auth {
    authorize: Arc<dyn Authorize>,
    token: Option<String>,
    /// When the token stops being valid: the connection is closed then unless it is refreshed.
    expires_at: Option<Instant>,
    /// Under an enforced policy, when a connection that still has no token and no
    /// subscription is closed.
    deadline: Option<Instant>,
}

impl Auth {
    /// The credentials of a connection that opened with `token` (already checked, giving
    /// `grant`), or with none.
    pub(crate) fn new(config: &WsConfig, token: Option<String>, grant: Grant) -> Self {
        let deadline =
            (config.authorize.is_enforced() && token.is_none()).then(|| Instant::now() + config.auth_timeout);
        Self { authorize: Arc::clone(&config.authorize), token, expires_at: instant(grant), deadline }
    }

    /// Whether the current token (or an anonymous client) may do `action` on `topics`.
    pub(crate) fn check(&self, action: Action, topics: &[TopicName]) -> Result<Grant, ApiError> {
        self.authorize.check(self.token.as_deref(), action, topics).map_err(ApiError::from)
    }

    /// Replaces the token by `token` if it is valid and allows the connection's current
    /// `topics`; otherwise the old token (if any) stays in force.
    pub(crate) fn refresh(&mut self, token: String, topics: &[TopicName]) -> Result<Grant, ApiError> {
        let grant = self.authorize.check(Some(&token), Action::Subscribe, topics)?;
        self.token = Some(token);
        self.expires_at = instant(grant);
        self.deadline = None;
        Ok(grant)
    }

    pub(crate) fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// No more waiting for a first token (the connection subscribed anonymously).
    pub(crate) fn stop_waiting(&mut self) {
        self.deadline = None;
    }
}

/// When the grant ends on the monotonic clock; `None` (no expiry) when that is too far to
/// represent (a token's far-future `exp`), rather than an overflow.
fn instant(grant: Grant) -> Option<Instant> {
    grant.remaining().and_then(|remaining| Instant::now().checked_add(remaining))
}
