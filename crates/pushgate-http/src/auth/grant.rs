//! What a policy grants: until when, to whom, and what it keeps to decide later requests of
//! the same connection.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cutoff::{Cut, Cutoff};

/// Permission granted by [`Authorize::check`](crate::Authorize::check).
///
/// A grant says when the permission ends ([`expires_at`](Self::expires_at): streams opened with
/// it end then), who holds it ([`user`](Self::user): the identity events published with it
/// carry), and may carry state of the policy's own ([`state`](Self::state)), which the
/// transports keep for as long as the stream or connection it opened lives and hand back with
/// the connection's later requests ([`AuthRequest::current`](crate::AuthRequest::current)):
/// a policy keeps a per-connection decision there, or a slot in a per-user connection count
/// that is given back when the grant is dropped.
///
/// A grant may also say its holder is the application's own server ([`server`](Self::server)),
/// whose publishes are never rate-limited.
///
/// [`Grant::forever`] allocates nothing, so a policy that allows everything costs nothing.
#[derive(Clone, Default)]
pub struct Grant {
    expires_at: Option<SystemTime>,
    user: Option<Arc<str>>,
    state: Option<Arc<dyn Any + Send + Sync>>,
    server: bool,
    /// Ends the grant's streams early, when the policy gave it one.
    cutoff: Option<Cutoff>,
}

impl Grant {
    /// A grant that never expires, for no one in particular.
    pub const fn forever() -> Self {
        Self { expires_at: None, user: None, state: None, server: false, cutoff: None }
    }

    /// A grant to the application's own server (the admin key, or a backend the application
    /// vouches for): it never expires and its publishes are not rate-limited, since a backend
    /// relaying a feed publishes for many clients at once.
    ///
    /// ```
    /// use pushgate_http::Grant;
    ///
    /// assert!(Grant::server().is_server() && Grant::server().expires_at().is_none());
    /// assert!(!Grant::forever().is_server());
    /// ```
    pub const fn server() -> Self {
        Self { expires_at: None, user: None, state: None, server: true, cutoff: None }
    }

    /// Whether the holder is the application's own server ([`Grant::server`]).
    pub fn is_server(&self) -> bool {
        self.server
    }

    /// The same grant, held by the application's own server when `server`.
    #[must_use]
    pub fn as_server(mut self, server: bool) -> Self {
        self.server = server;
        self
    }

    /// A grant that ends at `expires_at`.
    pub fn until(expires_at: SystemTime) -> Self {
        Self { expires_at: Some(expires_at), ..Self::forever() }
    }

    /// The same grant, held by `user` (a token's `sub`, the application's `user`).
    #[must_use]
    pub fn with_user(mut self, user: impl Into<Arc<str>>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The same grant, carrying `state` for the policy that made it.
    #[must_use]
    pub fn with_state(mut self, state: Arc<dyn Any + Send + Sync>) -> Self {
        self.state = Some(state);
        self
    }

    /// The same grant, ended early when `cutoff` fires: its user disconnected by the
    /// application's server, or its credentials revoked.
    #[must_use]
    pub fn with_cutoff(mut self, cutoff: Cutoff) -> Self {
        self.cutoff = Some(cutoff);
        self
    }

    /// What ends the grant's streams early, if anything may: the transports wait for it
    /// ([`Cutoff::wait`]) next to the expiry, and end the stream with its [`Cut`]'s code.
    pub fn cutoff(&self) -> Option<&Cutoff> {
        self.cutoff.as_ref()
    }

    /// Whether the grant's streams have been cut, and why.
    pub fn cut(&self) -> Option<Cut> {
        self.cutoff.as_ref().and_then(Cutoff::cut)
    }

    /// When the permission ends; `None` never.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Who holds it, when the policy knows: the connection's user.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// [`user`](Self::user), shared.
    pub fn user_arc(&self) -> Option<&Arc<str>> {
        self.user.as_ref()
    }

    /// The policy's state of type `T`, if it put one there.
    pub fn state<T: Any>(&self) -> Option<&T> {
        self.state.as_deref().and_then(|state| (state as &dyn Any).downcast_ref())
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

    /// Whether it has expired by now.
    pub fn has_expired(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// The expiry in whole seconds since the Unix epoch, as sent to clients; `None` for never.
    pub fn expires_unix(&self) -> Option<u64> {
        self.expires_at.map(|at| at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs()))
    }
}

/// Grants are equal when they end at the same time, for the same user, with the same state
/// (the same allocation, not an equal value); cutoffs are not compared.
impl PartialEq for Grant {
    fn eq(&self, other: &Self) -> bool {
        let same_state = match (&self.state, &other.state) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.expires_at == other.expires_at
            && self.user == other.user
            && same_state
            && self.server == other.server
    }
}

impl Eq for Grant {}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("expires_at", &self.expires_unix())
            .field("user", &self.user)
            .field("state", &self.state.is_some())
            .field("server", &self.server)
            .field("cutoff", &self.cutoff.is_some())
            .finish()
    }
}
