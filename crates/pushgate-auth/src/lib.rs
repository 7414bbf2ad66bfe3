//! pushgate's access policy: an [`Authorize`] implementation over HMAC-signed JSON Web Tokens.
//!
//! Your application signs a token for each user with a secret it shares with the gateway:
//!
//! ```json
//! {"exp": 1764000000, "sub": "42", "subscribe": ["user:42", "chat.*"], "publish": ["chat.*"]}
//! ```
//!
//! - `exp` (seconds since the Unix epoch) is required; a token past it (plus a small
//!   [`leeway`](JwtAuth::leeway) for clock skew) is refused with `token_expired`, and a stream
//!   opened with it ends then.
//! - `subscribe` and `publish` list [`TopicPattern`]s: a topic name, or a prefix ending in `*`.
//!   A per-user topic such as `user:42`, in that user's token only, is how the application
//!   addresses one user.
//! - `sub` is free for the application; the gateway does not read it.
//! - The header's `alg` must be the one configured (HS256 by default): `alg: none`, other HMAC
//!   sizes and RS/ES tokens (the RS/HS confusion attack) are refused, whatever the token says.
//!
//! Next to tokens: patterns open to anonymous clients (and to every token holder), per action
//! ([`JwtAuth::anonymous_subscribe`], [`JwtAuth::anonymous_publish`]), and an admin key
//! ([`JwtAuth::admin_key`]) for the application's servers, allowed to publish on any topic,
//! compared in constant time, with a [`Grant::server`](pushgate_http::Grant::server) (never
//! rate-limited). Nothing else is allowed.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use jsonwebtoken::{EncodingKey, Header, encode};
//! use pushgate_auth::{Claims, JwtAuth};
//! use pushgate_http::{Action, Authorize, ErrorCode};
//! use pushgate_hub::TopicName;
//!
//! let auth = JwtAuth::new(b"a long random secret")?.anonymous_subscribe(["news.*".parse()?]);
//! let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3600;
//! let claims = Claims::new(exp).subscribe(["user:42"]).publish(["chat.*"]);
//! let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"a long random secret")?)?;
//!
//! let topic = |name| TopicName::new(name).unwrap();
//! assert!(auth.check(Some(&token), Action::Subscribe, &[topic("user:42"), topic("news.today")]).is_ok());
//! assert!(auth.check(None, Action::Subscribe, &[topic("news.today")]).is_ok());
//! let refused = auth.check(Some(&token), Action::Subscribe, &[topic("user:43")]).unwrap_err();
//! assert_eq!(refused.code(), ErrorCode::TopicForbidden);
//! assert_eq!(auth.check(None, Action::Subscribe, &[topic("user:42")]).unwrap_err().code(), ErrorCode::TokenRequired);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod pattern;

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pushgate_http::{Action, AuthError, Authorize, Grant};
use pushgate_hub::TopicName;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

pub use pattern::{InvalidPattern, TopicPattern};

/// The claims of a pushgate token. Unknown claims are ignored, so applications may add theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch. Required.
    pub exp: u64,
    /// The subject (typically the user id); not read by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Topic patterns the holder may subscribe to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<String>,
    /// Topic patterns the holder may publish on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
}

impl Claims {
    /// Claims that expire at `exp` (Unix seconds) and allow nothing yet.
    pub fn new(exp: u64) -> Self {
        Self { exp, sub: None, subscribe: Vec::new(), publish: Vec::new() }
    }

    /// With this subject.
    #[must_use]
    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
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

    fn patterns(&self, action: Action) -> &[String] {
        match action {
            Action::Subscribe => &self.subscribe,
            Action::Publish => &self.publish,
        }
    }
}

/// The HMAC algorithms a server may be configured with; tokens signed otherwise are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HmacAlgorithm {
    /// HMAC with SHA-256 (the default).
    #[default]
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
}

impl HmacAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Hs384 => Algorithm::HS384,
            Self::Hs512 => Algorithm::HS512,
        }
    }
}

/// An empty JWT secret was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JWT secret is empty")]
pub struct EmptySecret;

/// The latest expiry a token's `exp` (plus leeway) is taken to mean, in seconds since the Unix
/// epoch: the end of the year 9999. A later `exp` is accepted and capped to it.
pub const MAX_EXPIRY: u64 = 253_402_300_799;

/// The default [`JwtAuth::leeway`]: clock skew tolerated between the token's issuer and us.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// An [`Authorize`] policy over HMAC-signed JWTs, anonymous patterns and an admin key; see the
/// crate documentation. Without a secret every token is refused (only the anonymous patterns
/// and the admin key work); [`JwtAuth::default`] allows nothing at all.
#[derive(Clone, Default)]
pub struct JwtAuth {
    secret: Option<DecodingKey>,
    algorithm: HmacAlgorithm,
    leeway: Duration,
    admin_key: Option<Vec<u8>>,
    anonymous_subscribe: Vec<TopicPattern>,
    anonymous_publish: Vec<TopicPattern>,
}

impl fmt::Debug for JwtAuth {
    /// Never shows the secret or the admin key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("algorithm", &self.algorithm)
            .field("leeway", &self.leeway)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<redacted>"))
            .field("anonymous_subscribe", &self.anonymous_subscribe)
            .field("anonymous_publish", &self.anonymous_publish)
            .finish()
    }
}

impl JwtAuth {
    /// Accepts tokens signed with `secret` (HS256 unless [`algorithm`](Self::algorithm) says
    /// otherwise), with the [default leeway](DEFAULT_LEEWAY).
    ///
    /// # Errors
    ///
    /// [`EmptySecret`] for an empty secret, which would let anyone sign tokens.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, EmptySecret> {
        let secret = DecodingKey::from_secret(secret.as_ref()).map_err(|_| EmptySecret)?;
        Ok(Self { secret: Some(secret), ..Self::without_tokens() })
    }

    /// Accepts no token: only the anonymous patterns and the admin key give access.
    pub fn without_tokens() -> Self {
        Self::default().leeway(DEFAULT_LEEWAY)
    }

    /// The one algorithm tokens must be signed with (default HS256).
    #[must_use]
    pub fn algorithm(mut self, algorithm: HmacAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// How long after its `exp` a token is still accepted, for clocks that disagree (default
    /// 5 s). A stream opened with the token ends at `exp` plus this.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// A key that may publish on every topic, sent as `Authorization: Bearer <key>` by the
    /// application's servers. It allows publishing only, as a server
    /// ([`Grant::server`]): its publishes are not rate-limited.
    #[must_use]
    pub fn admin_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.admin_key = Some(key.as_ref().to_vec());
        self
    }

    /// Topics anyone may subscribe to, with or without a token.
    #[must_use]
    pub fn anonymous_subscribe(mut self, patterns: impl IntoIterator<Item = TopicPattern>) -> Self {
        self.anonymous_subscribe = patterns.into_iter().collect();
        self
    }

    /// Topics anyone may publish on, with or without a token.
    #[must_use]
    pub fn anonymous_publish(mut self, patterns: impl IntoIterator<Item = TopicPattern>) -> Self {
        self.anonymous_publish = patterns.into_iter().collect();
        self
    }

    fn anonymous(&self, action: Action) -> &[TopicPattern] {
        match action {
            Action::Subscribe => &self.anonymous_subscribe,
            Action::Publish => &self.anonymous_publish,
        }
    }

    fn is_admin_key(&self, token: &str) -> bool {
        self.admin_key.as_ref().is_some_and(|key| bool::from(key.as_slice().ct_eq(token.as_bytes())))
    }

    /// The verified claims of `token`.
    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        let Some(secret) = &self.secret else {
            return Err(invalid("this server accepts no tokens"));
        };
        // The header first: a token that is not even a JWT, or names an algorithm unknown to
        // the library (`none`), is told apart from one whose claims are not ours, which
        // `decode` reports alike.
        if jsonwebtoken::decode_header(token).is_err() {
            return Err(match header_alg(token) {
                Some(_) => invalid("the token's algorithm is not accepted here"),
                None => invalid("the token is not a well-formed JWT"),
            });
        }
        let mut validation = Validation::new(self.algorithm.jwt());
        validation.leeway = self.leeway.as_secs();
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        jsonwebtoken::decode::<Claims>(token, secret, &validation).map(|data| data.claims).map_err(|err| {
            match err.kind() {
                ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                ErrorKind::InvalidSignature => invalid("the signature does not match"),
                ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::MissingAlgorithm => invalid("the token's algorithm is not accepted here"),
                ErrorKind::MissingRequiredClaim(_) => invalid("the token has no `exp`"),
                ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => {
                    invalid("the token's claims are not pushgate claims")
                }
                _ => invalid("the token is not a well-formed JWT"),
            }
        })
    }

    /// When a token with these claims stops being accepted.
    ///
    /// An `exp` beyond [`MAX_EXPIRY`] (which `SystemTime` may not even represent) counts as
    /// that: no expiry within reach, rather than an overflow. A grant without expiry where the
    /// platform's clock cannot represent even that.
    fn grant(&self, claims: &Claims) -> Grant {
        let secs = claims.exp.saturating_add(self.leeway.as_secs()).min(MAX_EXPIRY);
        UNIX_EPOCH.checked_add(Duration::from_secs(secs)).map_or_else(Grant::forever, Grant::until)
    }
}

/// The `alg` named by a token's header, if the header is base64url JSON at all.
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

fn invalid(reason: &'static str) -> AuthError {
    AuthError::InvalidToken { reason: Cow::Borrowed(reason) }
}

impl Authorize for JwtAuth {
    fn check(&self, token: Option<&str>, action: Action, topics: &[TopicName]) -> Result<Grant, AuthError> {
        let anonymous = self.anonymous(action);
        let open = |topic: &TopicName| anonymous.iter().any(|pattern| pattern.matches(topic));
        let Some(token) = token else {
            return match topics.iter().find(|topic| !open(topic)) {
                Some(topic) => Err(AuthError::TokenRequired { action, topic: topic.clone() }),
                None => Ok(Grant::forever()),
            };
        };
        if action == Action::Publish && self.is_admin_key(token) {
            return Ok(Grant::server());
        }
        let claims = self.decode(token)?;
        let allowed = claims.patterns(action);
        match topics.iter().find(|topic| !open(topic) && !pattern::any_matches(allowed, topic)) {
            Some(topic) => Err(AuthError::TopicForbidden { action, topic: topic.clone() }),
            None => Ok(self.grant(&claims)),
        }
    }
}

#[cfg(test)]
mod tests;
