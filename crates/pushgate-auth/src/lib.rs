//! pushgate's access policy: an [`Authorize`](pushgate_http::Authorize) implementation,
//! [`AccessPolicy`], that combines
//!
//! - **tokens**: JSON Web Tokens signed with an HMAC secret your application shares with the
//!   gateway ([`PolicyBuilder::hmac_secret`]), or by an identity provider whose public keys the
//!   gateway has (PEM files, [`PublicKey::from_pem`]; a JWKS endpoint,
//!   [`PolicyBuilder::jwks_url`]), optionally bound to an audience and an issuer;
//! - **the application's own sessions**: an HTTP endpoint of the application
//!   ([`AuthProxy`]) asked with the request's cookies and headers, whose decisions are kept
//!   for as long as it says;
//! - **open topics**: patterns anyone may use ([`PolicyBuilder::anonymous_subscribe`],
//!   [`PolicyBuilder::anonymous_publish`]) and patterns every authenticated user has, naming
//!   the user (`user:{user}`: [`PolicyBuilder::user_subscribe`]);
//! - an **admin key** for the application's servers, allowed to publish on any topic, compared
//!   in constant time;
//! - **revocations** ([`AccessPolicy::revoke`]) and a **limit of connections per user**.
//!
//! A token's claims:
//!
//! ```json
//! {"exp": 1764000000, "iat": 1763999100, "sub": "42", "subscribe": ["user:42", "chat.*"], "publish": ["chat.*"]}
//! ```
//!
//! - `exp` (seconds since the Unix epoch) is required; a token past it (plus a small leeway for
//!   clock skew) is refused with `token_expired`, to the instant, and a stream opened with it
//!   ends then.
//! - `sub` is the user the token is for: the connection's user, the sender (`from`) of what it
//!   publishes, whose connections are counted and whose tokens can be revoked (by `iat`).
//! - `subscribe` and `publish` list [`TopicPattern`]s (a topic name, or a prefix ending in `*`),
//!   top-level or inside a `pushgate` object claim. A token with neither (an identity
//!   provider's) gets the open patterns and the user patterns only.
//! - The algorithm is the key's, never the token's choice: an HMAC token must name the
//!   configured HMAC algorithm (HS256 by default) and is checked with the secret only; an RSA
//!   key accepts `RS*`/`PS*`, an EC key its curve's `ES256`/`ES384`, an Ed25519 key `EdDSA`.
//!   `alg: none`, the RS/HS confusion and a key of another type are refused.
//!
//! How a request is decided:
//!
//! 1. A publish with the admin key is allowed.
//! 2. A connection's request whose grant rests on a fresh decision of the application that
//!    covers it is allowed again without asking.
//! 3. A request with a token: a JWT the gateway verifies allows what its claims, the user
//!    patterns and the open patterns cover. When it does not (not a JWT the gateway can
//!    verify, expired, not covering the topics) and an auth proxy is set, the application is
//!    asked; either may allow. When neither does, the token's own refusal is the answer
//!    (`token_expired` tells the client to get a fresh one), unless the application could
//!    not be asked (`503 auth_unavailable`, never an allow).
//! 4. A request without a token whose topics are all open is allowed without asking anyone (a
//!    WebSocket upgrade naming no topic but carrying a cookie is asked, to learn its user, and
//!    opened anonymously whatever the answer); otherwise the application decides, or, without
//!    one, `401 token_required`.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use jsonwebtoken::{EncodingKey, Header, encode};
//! use pushgate_auth::{AccessPolicy, Claims};
//! use pushgate_http::{Action, AuthRequest, Authorize, ClientInfo, ErrorCode};
//! use pushgate_hub::TopicName;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let policy = AccessPolicy::builder()
//!     .hmac_secret(b"a long random secret")?
//!     .anonymous_subscribe(["news.*".parse()?])
//!     .user_subscribe(["user:{user}".parse()?])
//!     .build()?;
//! let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3600;
//! let claims = Claims::new(exp).subject("42").publish(["chat.*"]);
//! let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"a long random secret")?)?;
//!
//! let client = ClientInfo::default();
//! let topics = |names: &[&str]| names.iter().map(|n| TopicName::new(n).unwrap()).collect::<Vec<_>>();
//! let ask = |action, topics: &[TopicName], token: Option<&str>| {
//!     policy.check(&AuthRequest::new(action, topics, token, "sse", &client))
//! };
//! let grant = ask(Action::Subscribe, &topics(&["user:42", "news.today"]), Some(&token)).await?;
//! assert_eq!(grant.user(), Some("42"));
//! assert!(ask(Action::Subscribe, &topics(&["news.today"]), None).await.is_ok());
//! let refused = ask(Action::Subscribe, &topics(&["user:43"]), Some(&token)).await.unwrap_err();
//! assert_eq!(refused.code(), ErrorCode::TopicForbidden);
//! let anonymous = ask(Action::Subscribe, &topics(&["user:42"]), None).await.unwrap_err();
//! assert_eq!(anonymous.code(), ErrorCode::TokenRequired);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod claims;
mod client;
mod jwt;
mod keys;
mod pattern;
mod policy;
mod proxy;
mod revocation;
mod users;

pub use claims::Claims;
pub use client::{InvalidUrl, check_url};
pub use jwt::{DEFAULT_LEEWAY, EmptySecret, HmacAlgorithm, MAX_EXPIRY};
pub use keys::{KeyError, MIN_REFRESH_INTERVAL, PublicKey, REFRESH_INTERVAL};
pub use pattern::{InvalidPattern, TopicPattern, UserPattern};
pub use policy::{AccessPolicy, AdminKey, PolicyBuilder, PolicyError};
pub use proxy::{AuthProxy, DEFAULT_PROXY_TIMEOUT, ProxyError};
pub use revocation::{MAX_REVOCATIONS, RevocationListFull};

#[cfg(test)]
mod tests;
