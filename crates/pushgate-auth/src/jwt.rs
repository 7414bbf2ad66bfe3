//! Verifying a token: its signature (an HMAC secret, public keys from PEM files or a JWKS
//! endpoint), its algorithm (fixed by the key that checks it, never by the token alone), its
//! expiry (to the instant, so a token is never accepted by one check and expired by the next),
//! and, when configured, its audience and issuer.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pushgate_http::AuthError;

use crate::claims::Claims;
use crate::keys::{PublicKey, RemoteKeys};

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

/// The default leeway: clock skew tolerated between the token's issuer and us.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// What verifying a token found.
#[derive(Debug)]
pub(crate) enum Verified {
    /// A good token, with its claims and when it stops being accepted (`None`: beyond what
    /// the clock can represent).
    Claims(Box<Claims>, Option<SystemTime>),
    /// A bad one.
    Refused(AuthError),
    /// It names a key not (yet) in the remote key set, which may be fetched again for it.
    UnknownKey,
}

/// The token-checking part of a policy.
#[derive(Clone, Default)]
pub(crate) struct Verifier {
    pub(crate) secret: Option<DecodingKey>,
    pub(crate) hmac: HmacAlgorithm,
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) remote: Option<Arc<RemoteKeys>>,
    pub(crate) audience: Vec<String>,
    pub(crate) issuer: Vec<String>,
    pub(crate) leeway: Duration,
}

impl std::fmt::Debug for Verifier {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("hmac", &self.hmac)
            .field("keys", &self.keys)
            .field("remote", &self.remote.is_some())
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl Verifier {
    /// Whether any token can be accepted at all.
    pub(crate) fn is_configured(&self) -> bool {
        self.secret.is_some() || !self.keys.is_empty() || self.remote.is_some()
    }

    /// Verifies `token`. With `may_refresh`, a token naming a key id the remote set does not
    /// hold (or any token when the set was never fetched) is [`Verified::UnknownKey`] while
    /// a refresh is allowed.
    pub(crate) fn verify(&self, token: &str, may_refresh: bool) -> Verified {
        if !self.is_configured() {
            return Verified::Refused(invalid("this server accepts no tokens"));
        }
        // The header first: a token that is not even a JWT, or names an algorithm unknown to
        // the library (`none`), is told apart from one whose claims are not ours, which
        // `decode` reports alike.
        let header = match jsonwebtoken::decode_header(token) {
            Ok(header) => header,
            Err(_) => {
                return Verified::Refused(match header_alg(token) {
                    Some(_) => not_accepted(),
                    None => invalid("the token is not a well-formed JWT"),
                });
            }
        };
        let algorithm = header.alg;
        if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return match &self.secret {
                Some(secret) if algorithm == self.hmac.jwt() => self.decode(token, secret, algorithm),
                _ => Verified::Refused(not_accepted()),
            };
        }
        let mut candidates: Vec<&DecodingKey> =
            self.keys.iter().filter(|key| key.accepts(algorithm)).map(PublicKey::decoding_key).collect();
        let remote = self.remote.as_ref().map(|remote| remote.keys());
        let mut kid_unknown = false;
        if let Some(remote_keys) = &remote {
            let matching = remote_keys.iter().filter(|key| match (header.kid.as_deref(), key.kid()) {
                (Some(wanted), Some(kid)) => wanted == kid,
                (Some(_), None) => false,
                (None, _) => true,
            });
            let before = candidates.len();
            candidates
                .extend(matching.clone().filter(|key| key.accepts(algorithm)).map(PublicKey::decoding_key));
            // A key id the set does not hold at all, or an empty (never fetched) set: worth
            // asking the identity provider again.
            kid_unknown = remote_keys.is_empty() || (header.kid.is_some() && matching.count() == 0);
            if kid_unknown
                && candidates.len() == before
                && may_refresh
                && let Some(remote) = &self.remote
                && remote.may_refresh()
            {
                return Verified::UnknownKey;
            }
        }
        if candidates.is_empty() {
            return Verified::Refused(if kid_unknown {
                invalid("no key with the token's key id")
            } else {
                not_accepted()
            });
        }
        let mut last = Verified::Refused(invalid("the signature does not match"));
        for key in candidates {
            match self.decode(token, key, algorithm) {
                Verified::Refused(AuthError::InvalidToken { reason }) if reason == SIGNATURE => {
                    last = Verified::Refused(invalid(SIGNATURE));
                }
                other => return other,
            }
        }
        last
    }

    /// Checks `token` with one key and algorithm.
    fn decode(&self, token: &str, key: &DecodingKey, algorithm: Algorithm) -> Verified {
        let mut validation = Validation::new(algorithm);
        // Expiry is checked below to the instant; the library counts whole seconds, which
        // accepted a token for up to a second after its grant had run out.
        validation.validate_exp = false;
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();
        validation.set_required_spec_claims(&["exp"]);
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audience);
            validation.required_spec_claims.insert("aud".to_owned());
        }
        if !self.issuer.is_empty() {
            validation.set_issuer(&self.issuer);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        let claims = match jsonwebtoken::decode::<Claims>(token, key, &validation) {
            Ok(data) => data.claims,
            Err(err) => return Verified::Refused(refusal(err.kind())),
        };
        let until = self.expiry(&claims);
        if until.is_some_and(|until| SystemTime::now() >= until) {
            return Verified::Refused(AuthError::TokenExpired);
        }
        Verified::Claims(Box::new(claims), until)
    }

    /// When a token with these claims stops being accepted.
    ///
    /// An `exp` beyond [`MAX_EXPIRY`] (which `SystemTime` may not even represent) counts as
    /// that: no expiry within reach, rather than an overflow; `None` where the platform's clock
    /// cannot represent even that.
    fn expiry(&self, claims: &Claims) -> Option<SystemTime> {
        let secs = claims.exp.saturating_add(self.leeway.as_secs()).min(MAX_EXPIRY);
        UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    }
}

const SIGNATURE: &str = "the signature does not match";

fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::TokenExpired,
        ErrorKind::InvalidSignature => invalid(SIGNATURE),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            not_accepted()
        }
        ErrorKind::InvalidKeyFormat | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
            invalid("the token's algorithm does not fit the key")
        }
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => invalid("the token has no `exp`"),
            "aud" => invalid("the token has no `aud`"),
            "iss" => invalid("the token has no `iss`"),
            _ => invalid("the token lacks a required claim"),
        },
        ErrorKind::InvalidAudience => invalid("the token is not meant for this server (`aud`)"),
        ErrorKind::InvalidIssuer => invalid("the token's issuer is not accepted here (`iss`)"),
        ErrorKind::ImmatureSignature => invalid("the token is not valid yet (`nbf`)"),
        ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => {
            invalid("the token's claims are not pushgate claims")
        }
        _ => invalid("the token is not a well-formed JWT"),
    }
}

/// The `alg` named by a token's header, if the header is base64url JSON at all.
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

pub(crate) fn invalid(reason: &'static str) -> AuthError {
    AuthError::InvalidToken { reason: Cow::Borrowed(reason) }
}

fn not_accepted() -> AuthError {
    invalid("the token's algorithm is not accepted here")
}
