//! The claims of a token the gateway reads.

use pushgate_http::Action;
use serde::{Deserialize, Serialize};

/// The claims of a pushgate token. Unknown claims are ignored, so applications and identity
/// providers may add theirs (`iss`, `aud`, `scope`, `realm_access`, …).
///
/// Topic patterns are read from the top-level `subscribe` and `publish` claims, and from the
/// same two inside a `pushgate` object claim (`{"pushgate":{"subscribe":[…]}}`: what an
/// identity provider's claim mapper writes for a claim named `pushgate.subscribe`); both
/// count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch. Required.
    pub exp: u64,
    /// The subject: the user the token is for, who becomes the connection's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// When the token was issued, seconds since the Unix epoch; compared with the user's
    /// revocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Topic patterns the holder may subscribe to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<String>,
    /// Topic patterns the holder may publish on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// The same two lists in a `pushgate` object claim.
    #[serde(default, rename = "pushgate", skip_serializing_if = "Option::is_none")]
    nested: Option<TopicClaims>,
}

/// `subscribe` and `publish` inside the `pushgate` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TopicClaims {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    subscribe: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    publish: Vec<String>,
}

impl Claims {
    /// Claims that expire at `exp` (Unix seconds) and allow nothing yet.
    pub fn new(exp: u64) -> Self {
        Self { exp, sub: None, iat: None, subscribe: Vec::new(), publish: Vec::new(), nested: None }
    }

    /// With this subject.
    #[must_use]
    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// Issued at `iat` (Unix seconds).
    #[must_use]
    pub fn issued_at(mut self, iat: u64) -> Self {
        self.iat = Some(iat);
        self
    }

    /// With these subscribe patterns.
    #[must_use]
    pub fn subscribe<I: IntoIterator<Item: Into<String>>>(mut self, patterns: I) -> Self {
        self.subscribe = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// With these publish patterns.
    #[must_use]
    pub fn publish<I: IntoIterator<Item: Into<String>>>(mut self, patterns: I) -> Self {
        self.publish = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Every pattern the claims give for `action`, top-level and nested.
    pub(crate) fn patterns(&self, action: Action) -> impl Iterator<Item = &str> {
        let (top, nested) = match action {
            Action::Subscribe => (&self.subscribe, self.nested.as_ref().map(|n| &n.subscribe)),
            Action::Publish => (&self.publish, self.nested.as_ref().map(|n| &n.publish)),
        };
        top.iter().chain(nested.into_iter().flatten()).map(String::as_str)
    }
}
