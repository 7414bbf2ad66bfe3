//! Public keys that verify tokens signed by an identity provider: from PEM files, and from a
//! JWKS endpoint fetched periodically and when a token names a key id not yet known.
//!
//! Each key accepts only the algorithms of its type (RSA: `RS*` and `PS*`; an EC P-256 key:
//! `ES256`, P-384: `ES384`; Ed25519: `EdDSA`), and a JWKS key that names its `alg` only that
//! one: a token whose header names another algorithm is refused before its signature is
//! looked at. Symmetric keys (`kty: oct`) in a key set are ignored, so an HMAC token can never
//! be checked against a published key (the RS/HS confusion).
//!
//! A refresh for an unknown key id is rate-limited: at most one per
//! [`MIN_REFRESH_INTERVAL`], and requests that arrive while one is under way wait for it
//! instead of starting their own, so a flood of tokens with made-up key ids costs the identity
//! provider one request per interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Uri;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use crate::client::{FetchError, HttpClient};

/// The shortest time between two refreshes of a key set triggered by unknown key ids.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// How often a key set is fetched again regardless (see [`AccessPolicy::maintain`]).
///
/// [`AccessPolicy::maintain`]: crate::AccessPolicy::maintain
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// How long a fetch of the key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

const RSA_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Why a public key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a PEM public key of a supported type.
    #[error(
        "not a PEM public key of a supported type (RSA, EC P-256 or P-384, Ed25519 in a \
         `-----BEGIN PUBLIC KEY-----` block)"
    )]
    NotAPublicKey,
    /// The PEM holds a private key, which the gateway must not be given.
    #[error("this is a private key; give the public key (`openssl pkey -in KEY -pubout`)")]
    PrivateKey,
}

/// One key that verifies token signatures, and the algorithms it accepts.
#[derive(Clone)]
pub struct PublicKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).field("algorithms", &self.algorithms).finish()
    }
}

impl PublicKey {
    /// The key of a PEM `PUBLIC KEY` (SPKI; `RSA PUBLIC KEY` too): RSA, EC P-256 or P-384, or
    /// Ed25519. Such a key has no key id: it is tried for every token signed with one of its
    /// algorithms.
    ///
    /// # Errors
    ///
    /// [`KeyError`] for anything else, private keys included.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let text = String::from_utf8_lossy(pem);
        let label = text
            .split("-----BEGIN ")
            .nth(1)
            .and_then(|rest| rest.split("-----").next())
            .ok_or(KeyError::NotAPublicKey)?;
        if label.contains("PRIVATE") {
            return Err(KeyError::PrivateKey);
        }
        if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
            return Err(KeyError::NotAPublicKey);
        }
        let (key, algorithms) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            (key, RSA_ALGORITHMS.to_vec())
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            // An uncompressed point: 65 bytes on P-256, 97 on P-384.
            let algorithm = match key.try_get_as_bytes().map(<[u8]>::len) {
                Ok(65) => Algorithm::ES256,
                Ok(97) => Algorithm::ES384,
                _ => return Err(KeyError::NotAPublicKey),
            };
            (key, vec![algorithm])
        } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            (key, vec![Algorithm::EdDSA])
        } else {
            return Err(KeyError::NotAPublicKey);
        };
        Ok(Self { kid: None, algorithms, key })
    }

    /// The key of one JWK, if it is a signature key of a supported type.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
            return None;
        }
        let by_type: Vec<Algorithm> = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => RSA_ALGORITHMS.to_vec(),
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                vec![Algorithm::EdDSA]
            }
            // Symmetric keys are never taken from a key set: see the module documentation.
            _ => return None,
        };
        let algorithms = match jwk.common.key_algorithm {
            None => by_type,
            Some(named) => {
                let named = jwt_algorithm(named)?;
                by_type.contains(&named).then(|| vec![named])?
            }
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self { kid: jwk.common.key_id.clone(), algorithms, key })
    }

    /// Whether this key verifies tokens signed with `algorithm`.
    pub(crate) fn accepts(&self, algorithm: Algorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }

    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

fn jwt_algorithm(named: KeyAlgorithm) -> Option<Algorithm> {
    Some(match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The keys of a JWKS document (`{"keys":[…]}`). Each key is read on its own, so one of a type
/// or algorithm this library does not know (an identity provider's encryption key) is skipped
/// rather than failing the whole set.
pub(crate) fn parse_jwks(json: &[u8]) -> Result<Vec<PublicKey>, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(json).map_err(|err| format!("not a JWKS document: {err}"))?;
    Ok(document
        .keys
        .into_iter()
        .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
        .filter_map(|jwk| PublicKey::from_jwk(&jwk))
        .collect())
}

/// A key set published at a URL: the keys last fetched, and the rules for fetching again.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    url: Uri,
    client: HttpClient,
    keys: RwLock<Arc<[PublicKey]>>,
    /// Fetches completed, successful or not; a request that waited for a fetch under way
    /// sees it moved and does not fetch again.
    generation: AtomicU64,
    /// When the last refresh triggered by an unknown key id started.
    last_triggered: Mutex<Option<Instant>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    min_interval: Duration,
}

impl RemoteKeys {
    pub(crate) fn new(url: Uri, client: HttpClient, min_interval: Duration) -> Self {
        Self {
            url,
            client,
            keys: RwLock::new(Arc::from(Vec::new())),
            generation: AtomicU64::new(0),
            last_triggered: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            min_interval,
        }
    }

    /// The keys last fetched.
    pub(crate) fn keys(&self) -> Arc<[PublicKey]> {
        Arc::clone(&self.keys.read())
    }

    /// Whether a refresh for an unknown key id would be allowed now.
    pub(crate) fn may_refresh(&self) -> bool {
        self.last_triggered.lock().is_none_or(|at| at.elapsed() >= self.min_interval)
    }

    /// Fetches the set again for a token naming an unknown key id, unless one was fetched for
    /// that reason less than the minimum interval ago; waits for a fetch already under way
    /// instead of starting another.
    pub(crate) async fn refresh_for_unknown_key(&self) {
        let seen = self.generation.load(Ordering::Acquire);
        let _one = self.fetching.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return;
        }
        // The first fetch of a set never fetched is its initial load, not a refresh: it does
        // not count against the interval, so a key rotated in right after is still picked up.
        if seen > 0 {
            let mut last = self.last_triggered.lock();
            if last.is_some_and(|at| at.elapsed() < self.min_interval) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.fetch_locked().await;
    }

    /// Fetches the set again (the periodic refresh).
    pub(crate) async fn refresh(&self) {
        let _one = self.fetching.lock().await;
        self.fetch_locked().await;
    }

    async fn fetch_locked(&self) {
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "fetched the token signing keys");
                *self.keys.write() = Arc::from(keys);
            }
            // The keys fetched before stay in use.
            Err(error) => tracing::warn!(url = %self.url, %error, "cannot fetch the token signing keys"),
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    async fn fetch(&self) -> Result<Vec<PublicKey>, String> {
        let (status, body) = self
            .client
            .get(&self.url, FETCH_TIMEOUT, MAX_JWKS_BYTES)
            .await
            .map_err(|err: FetchError| err.to_string())?;
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        parse_jwks(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_keys_accept_only_their_algorithms_and_symmetric_keys_are_ignored() {
        let json = serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "oaep", "use": "enc", "alg": "RSA-OAEP-512", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "named", "alg": "ES384",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]});
        let keys = parse_jwks(json.to_string().as_bytes()).unwrap();
        // The symmetric key, the encryption key and the key naming an algorithm of another
        // curve are left out.
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid(), Some("ec"));
        assert!(keys[0].accepts(Algorithm::ES256));
        assert!(!keys[0].accepts(Algorithm::ES384) && !keys[0].accepts(Algorithm::HS256));
        assert!(parse_jwks(b"[]").is_err());
    }

    #[test]
    fn pem_private_keys_and_junk_are_refused() {
        assert_eq!(
            PublicKey::from_pem(
                b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
            )
            .unwrap_err(),
            KeyError::PrivateKey
        );
        assert_eq!(PublicKey::from_pem(b"hello").unwrap_err(), KeyError::NotAPublicKey);
        let ed = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let key = PublicKey::from_pem(ed).unwrap();
        assert!(key.accepts(Algorithm::EdDSA) && !key.accepts(Algorithm::RS256));
    }
}
