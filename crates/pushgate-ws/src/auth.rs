//! What a connection knows about its client's credentials: the token, the upgrade's
//! authentication headers, the access it was granted and until when, and how long a client
//! that has none yet may wait before sending one.

use std::pin::Pin;
use std::sync::Arc;

use pushgate_http::{Action, AuthRequest, Authorize, Check, ClientInfo, Cut, Grant};
use pushgate_hub::TopicName;
use tokio::time::Instant;

use crate::config::WsConfig;

/// The transport's name in what the access policy is told.
pub(crate) const TRANSPORT: &str = "ws";

/// A connection's credentials. The token and the headers are secrets: they are kept to check
/// each `subscribe` and `publish` frame, and never logged or echoed.
///
/// Every idle connection holds this, so what only an enforced policy needs is boxed: a server
/// without auth keeps two pointers and two timers per connection here.
pub(crate) struct Auth {
    authorize: Arc<dyn Authorize>,
    /// `None` under a policy that allows everything.
    held: Option<Box<Held>>,
    /// When the token stops being valid: the connection is closed then unless it is refreshed.
    expires_at: Option<Instant>,
    /// Under an enforced policy, when a connection that still has no token and no
    /// subscription is closed.
    deadline: Option<Instant>,
}

/// What an enforced policy is shown again with each frame.
struct Held {
    token: Option<String>,
    /// The upgrade's address and authentication headers.
    client: ClientInfo,
    /// The access the connection holds (a policy may keep its decision and the user's
    /// connection count there): from the upgrade, then from each frame allowed.
    grant: Grant,
    /// Fires when the application's server cuts the grant's user off.
    cutoff: Option<Pin<Box<dyn Future<Output = Cut> + Send>>>,
}

impl Auth {
    /// The credentials of a connection that opened with `token` and `client` (already
    /// checked, giving `grant`), or with none.
    pub(crate) fn new(config: &WsConfig, token: Option<String>, client: ClientInfo, grant: Grant) -> Self {
        let enforced = config.authorize.is_enforced();
        let deadline = (enforced && token.is_none() && grant.user().is_none())
            .then(|| Instant::now() + config.auth_timeout);
        Self {
            authorize: Arc::clone(&config.authorize),
            expires_at: instant(&grant),
            held: enforced.then(|| Box::new(Held { cutoff: cutoff_of(&grant), token, client, grant })),
            deadline,
        }
    }

    /// The policy's answer to whether the connection may do `action` on `topics` with `token`
    /// (its current one, or one an `auth` frame brings); `None` when every frame is allowed
    /// (no enforced policy). Once allowed, the connection holds the grant ([`Auth::hold`]).
    pub(crate) fn ask(&self, action: Action, topics: &[TopicName], token: Option<&str>) -> Option<Check> {
        let held = self.held.as_ref()?;
        let token = token.or(held.token.as_deref());
        // The connection holds what it is granted: it counts as one of its user's connections.
        let request = AuthRequest::new(action, topics, token, TRANSPORT, &held.client)
            .current(&held.grant)
            .holds_connection();
        Some(self.authorize.check(&request))
    }

    /// Holds `grant`, allowed for a frame; with `token`, an `auth` frame's, which replaces the
    /// connection's token and ends the wait for one.
    pub(crate) fn hold(&mut self, grant: Grant, token: Option<String>) {
        self.expires_at = instant(&grant);
        if grant.user().is_some() || token.is_some() {
            self.deadline = None;
        }
        if let Some(held) = &mut self.held {
            held.cutoff = cutoff_of(&grant);
            held.grant = grant;
            if token.is_some() {
                held.token = token;
            }
        }
    }

    /// The user the connection acts for, when the policy knows it.
    pub(crate) fn user(&self) -> Option<&str> {
        self.held.as_ref().and_then(|held| held.grant.user())
    }

    pub(crate) fn user_arc(&self) -> Option<&std::sync::Arc<str>> {
        self.held.as_ref().and_then(|held| held.grant.user_arc())
    }

    /// Whether the connection's grant can be cut off ([`cut`](Self::cut) may resolve).
    pub(crate) fn may_be_cut(&self) -> bool {
        self.held.as_ref().is_some_and(|held| held.cutoff.is_some())
    }

    /// Ready when the application's server has cut the connection's user off.
    pub(crate) fn poll_cut(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Cut> {
        match self.held.as_mut().and_then(|held| held.cutoff.as_mut()) {
            Some(cutoff) => cutoff.as_mut().poll(cx),
            None => std::task::Poll::Pending,
        }
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

fn cutoff_of(grant: &Grant) -> Option<Pin<Box<dyn Future<Output = Cut> + Send>>> {
    grant.cutoff().map(|cutoff| {
        let cut: Pin<Box<dyn Future<Output = Cut> + Send>> = Box::pin(cutoff.clone().wait());
        cut
    })
}

/// When the grant ends on the monotonic clock; `None` (no expiry) when that is too far to
/// represent (a token's far-future `exp`), rather than an overflow.
fn instant(grant: &Grant) -> Option<Instant> {
    grant.remaining().and_then(|remaining| Instant::now().checked_add(remaining))
}
