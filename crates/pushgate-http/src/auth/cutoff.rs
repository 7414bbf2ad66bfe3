//! Ending the streams that hold a grant before it expires: the application's server
//! disconnecting a user, or revoking the user's tokens.
//!
//! A policy keeps one [`Switch`] per user with live connections and gives each grant it makes
//! for a connection a [`Cutoff`] of it ([`Grant::with_cutoff`](crate::Grant::with_cutoff)).
//! The transports already hold the grant for as long as the stream, WebSocket or parked long
//! poll lives, and already end it when the grant expires; they end it the same way when its
//! cutoff fires ([`Cutoff::wait`]), with the [`Cut`]'s code.

use std::time::SystemTime;

use tokio::sync::watch;

use crate::error::{ApiError, ErrorCode};

/// Why a grant's streams were ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The application's server disconnected the user: `disconnected`, and the client does
    /// not reconnect on its own.
    Disconnected,
    /// The user's tokens issued before some time, this one included, were revoked:
    /// `token_revoked`, and the client needs a fresh token.
    Revoked,
}

impl Cut {
    /// The code the client is told.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Disconnected => ErrorCode::Disconnected,
            Self::Revoked => ErrorCode::TokenRevoked,
        }
    }

    /// The error the client is told.
    pub fn error(self) -> ApiError {
        let message = match self {
            Self::Disconnected => "the server disconnected this user; do not reconnect on your own",
            Self::Revoked => "the token has been revoked; reconnect only with a fresh token",
        };
        ApiError::new(self.code(), message)
    }
}

/// What has happened to a user's connections, cumulatively: a cutoff compares it with what it
/// saw when it was made, so no change is lost however many come at once.
#[derive(Debug, Default, Clone, Copy)]
struct Cuts {
    disconnects: u64,
    revoked_before: Option<SystemTime>,
}

/// The switch of one user's connections, kept by the policy.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use pushgate_http::{Cut, Switch};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let switch = Switch::default();
/// let now = SystemTime::now();
/// let old = switch.cutoff(Some(now - Duration::from_secs(60)));
/// let new = switch.cutoff(Some(now + Duration::from_secs(1)));
/// switch.revoke(now);
/// assert_eq!(old.cut(), Some(Cut::Revoked));
/// assert_eq!(new.cut(), None, "issued after the revocation");
/// switch.disconnect();
/// assert_eq!(new.wait().await, Cut::Disconnected);
/// let later = switch.cutoff(Some(now + Duration::from_secs(1)));
/// assert_eq!(later.cut(), None, "made after the disconnect");
/// # });
/// ```
#[derive(Debug)]
pub struct Switch(watch::Sender<Cuts>);

impl Default for Switch {
    fn default() -> Self {
        Self(watch::Sender::new(Cuts::default()))
    }
}

impl Switch {
    /// Ends every connection holding a cutoff of this switch.
    pub fn disconnect(&self) {
        self.0.send_modify(|cuts| cuts.disconnects += 1);
    }

    /// Ends the connections whose credentials were issued before `issued_before` (or whose
    /// issue time is unknown).
    pub fn revoke(&self, issued_before: SystemTime) {
        self.0.send_modify(|cuts| {
            cuts.revoked_before = Some(cuts.revoked_before.map_or(issued_before, |t| t.max(issued_before)));
        });
    }

    /// A cutoff for a connection whose credentials were issued at `issued_at`: it fires on the
    /// next [`disconnect`](Self::disconnect), or on a [`revoke`](Self::revoke) that covers it.
    pub fn cutoff(&self, issued_at: Option<SystemTime>) -> Cutoff {
        let watching = self.0.subscribe();
        let disconnects = watching.borrow().disconnects;
        Cutoff { watching, disconnects, issued_at }
    }
}

/// A connection's view of its user's [`Switch`].
#[derive(Debug, Clone)]
pub struct Cutoff {
    watching: watch::Receiver<Cuts>,
    /// The switch's disconnects when this was made.
    disconnects: u64,
    issued_at: Option<SystemTime>,
}

impl Cutoff {
    /// Whether the connection has been cut, and why.
    pub fn cut(&self) -> Option<Cut> {
        let cuts = *self.watching.borrow();
        if cuts.disconnects != self.disconnects {
            return Some(Cut::Disconnected);
        }
        let revoked = cuts.revoked_before.is_some_and(|before| self.issued_at.is_none_or(|at| at < before));
        revoked.then_some(Cut::Revoked)
    }

    /// Resolves when the connection is cut; never, once the switch is gone (its user has no
    /// other connection, and nothing can cut this one any more).
    pub async fn wait(mut self) -> Cut {
        loop {
            if let Some(cut) = self.cut() {
                return cut;
            }
            if self.watching.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}
