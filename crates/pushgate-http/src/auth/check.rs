//! A policy's answer, known at once or after a wait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{AuthError, Grant};

type Waiting = Pin<Box<dyn Future<Output = Result<Grant, AuthError>> + Send>>;

/// The answer of [`Authorize::check`](crate::Authorize::check): a future of the grant or the
/// refusal. A policy that decides at once (no auth, a JWT) answers [`Check::ready`], which
/// allocates nothing; one that must ask someone (the application behind an auth proxy, an
/// identity provider for its keys) answers [`Check::pending`].
///
/// ```
/// use pushgate_http::{Check, Grant};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut check = Check::ready(Ok(Grant::forever()));
/// assert!(check.is_ready());
/// assert_eq!(check.await, Ok(Grant::forever()));
/// let later = Check::pending(async { Ok(Grant::forever()) });
/// assert!(!later.is_ready());
/// assert_eq!(later.await, Ok(Grant::forever()));
/// # });
/// ```
#[must_use = "a check decides nothing until awaited"]
pub struct Check(State);

enum State {
    Ready(Option<Result<Grant, AuthError>>),
    Waiting(Waiting),
}

impl Check {
    /// An answer known now.
    pub fn ready(result: Result<Grant, AuthError>) -> Self {
        Self(State::Ready(Some(result)))
    }

    /// An answer `future` will give.
    pub fn pending(future: impl Future<Output = Result<Grant, AuthError>> + Send + 'static) -> Self {
        Self(State::Waiting(Box::pin(future)))
    }

    /// Whether the answer is known without waiting.
    pub fn is_ready(&self) -> bool {
        matches!(self.0, State::Ready(_))
    }
}

impl Future for Check {
    type Output = Result<Grant, AuthError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            State::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Ready(Err(AuthError::InvalidToken {
                    reason: "the check was answered already".into(),
                })),
            },
            State::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            State::Ready(result) => f.debug_tuple("Check::Ready").field(result).finish(),
            State::Waiting(_) => f.write_str("Check::Pending"),
        }
    }
}
