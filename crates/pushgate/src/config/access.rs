//! Who may do what: client tokens, the admin key, what anonymous clients may use, and which web
//! origins may open WebSockets or call the HTTP transports from scripts.

use std::path::PathBuf;
use std::sync::Arc;

use pushgate_auth::{AccessPolicy, AdminKey, AuthProxy, PublicKey, TopicPattern, UserPattern};
use pushgate_http::Authorize;
use pushgate_ws::AllowedOrigins;
use tower_http::cors::CorsLayer;

use super::{ConfigError, ConnectionUrl, Secret, TimeSpan};

section! {
    /// Auth, WebSocket origins and CORS. Auth is on with a JWT secret, public keys, a JWKS URL,
    /// an auth proxy or an admin key, off (everything allowed) without.
    pub struct Access {
        /// HMAC secret (HS256) that signs client tokens: JWTs with `exp` and `subscribe` /
        /// `publish` topic patterns. Turns auth on: a client may then use only what its token or
        /// the anonymous patterns allow. Prefer --jwt-secret-file or the variable: flags are
        /// visible to other users of the machine.
        #[arg(long, env = "PUSHGATE_JWT_SECRET", value_name = "SECRET", hide_env_values = true)]
        pub jwt_secret: Option<Secret>,

        /// How long after its `exp` a token is still accepted (clock skew); streams opened with
        /// it end then.
        #[arg(long, env = "PUSHGATE_JWT_LEEWAY", value_name = "DURATION")]
        pub jwt_leeway: TimeSpan = TimeSpan::from(pushgate_auth::DEFAULT_LEEWAY),

        /// Key the application's servers send as `Authorization: Bearer <key>` to publish on
        /// any topic through POST /v1/publish. Turns auth on.
        #[arg(long, env = "PUSHGATE_ADMIN_KEY", value_name = "KEY", hide_env_values = true)]
        pub admin_key: Option<Secret>,

        /// PEM file of a public key (RSA, EC P-256/P-384, Ed25519) that verifies client tokens
        /// (an identity provider's). Repeatable (in the variable: comma-separated). Turns auth
        /// on.
        #[arg(long = "jwt-public-key", env = "PUSHGATE_JWT_PUBLIC_KEYS", value_name = "FILE", value_delimiter = ',')]
        pub jwt_public_keys: Vec<PathBuf>,

        /// JWKS URL of the keys that verify client tokens (an identity provider's, e.g.
        /// Keycloak's .../protocol/openid-connect/certs), fetched on an unknown key id and every
        /// 5 minutes. Turns auth on.
        #[arg(long, env = "PUSHGATE_JWKS_URL", value_name = "URL", hide_env_values = true)]
        pub jwks_url: Option<ConnectionUrl>,

        /// An audience tokens must name in `aud`. Repeatable. Default: `aud` is not checked.
        #[arg(long, env = "PUSHGATE_JWT_AUDIENCE", value_name = "AUD", value_delimiter = ',')]
        pub jwt_audience: Vec<String>,

        /// An issuer tokens must name in `iss`. Repeatable. Default: `iss` is not checked.
        #[arg(long, env = "PUSHGATE_JWT_ISSUER", value_name = "ISS", value_delimiter = ',')]
        pub jwt_issuer: Vec<String>,

        /// The application's endpoint that decides requests no token decides (its own
        /// sessions): POSTed the action, topics, transport, client address and the request's
        /// Cookie, Authorization, Origin and User-Agent. Turns auth on.
        #[arg(long, env = "PUSHGATE_AUTH_PROXY", value_name = "URL", hide_env_values = true)]
        pub auth_proxy: Option<ConnectionUrl>,

        /// How long the auth proxy has to answer; past it the request is 503 auth_unavailable.
        #[arg(long, env = "PUSHGATE_AUTH_PROXY_TIMEOUT", value_name = "DURATION")]
        pub auth_proxy_timeout: TimeSpan = TimeSpan::from(pushgate_auth::DEFAULT_PROXY_TIMEOUT),

        /// With auth on, a topic pattern every authenticated user may subscribe to, `{user}`
        /// standing for its id (`user:{user}`). Repeatable.
        #[arg(long, env = "PUSHGATE_USER_SUBSCRIBE", value_name = "PATTERN", value_delimiter = ',')]
        pub user_subscribe: Vec<String>,

        /// With auth on, a topic pattern every authenticated user may publish on. Repeatable.
        #[arg(long, env = "PUSHGATE_USER_PUBLISH", value_name = "PATTERN", value_delimiter = ',')]
        pub user_publish: Vec<String>,

        /// Most SSE streams, WebSockets and parked long polls one user may hold; more get 429
        /// too_many_connections_for_user (0: no limit).
        #[arg(long, env = "PUSHGATE_MAX_CONNECTIONS_PER_USER", value_name = "N")]
        pub max_connections_per_user: usize = 0,

        /// With auth on, a topic pattern anyone may subscribe to, token or not (`news`,
        /// `news.*`, `*`). Repeat for more (in the variable: comma-separated).
        #[arg(long, env = "PUSHGATE_ANONYMOUS_SUBSCRIBE", value_name = "PATTERN", value_delimiter = ',')]
        pub anonymous_subscribe: Vec<String>,

        /// With auth on, a topic pattern anyone may publish on. Repeatable.
        #[arg(long, env = "PUSHGATE_ANONYMOUS_PUBLISH", value_name = "PATTERN", value_delimiter = ',')]
        pub anonymous_publish: Vec<String>,

        /// A web origin (`https://app.example`) whose pages may open WebSockets; `*` allows
        /// any. Repeatable. Default: only pages served from the gateway's own host and port.
        #[arg(long, env = "PUSHGATE_ALLOWED_ORIGINS", value_name = "ORIGIN", value_delimiter = ',')]
        pub allowed_origins: Vec<String>,

        /// A web origin allowed to poll, stream and publish over HTTP from scripts (CORS); `*`
        /// allows any. Repeatable. Default: none (no CORS headers, same-origin pages only).
        #[arg(long, env = "PUSHGATE_CORS_ORIGINS", value_name = "ORIGIN", value_delimiter = ',')]
        pub cors_origins: Vec<String>,
    }
}

impl Access {
    /// No secret is empty. (Patterns and origins are checked by parsing them, in `plan.rs`.)
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (name, secret) in [("jwt_secret", &self.jwt_secret), ("admin_key", &self.admin_key)] {
            if secret.as_ref().is_some_and(|secret| secret.expose().is_empty()) {
                return Err(ConfigError::EmptySecret { name });
            }
        }
        if self.auth_proxy.is_some() && self.auth_proxy_timeout.is_zero() {
            return Err(ConfigError::Zero { name: "auth_proxy_timeout" });
        }
        Ok(())
    }

    /// Whether auth is on: a JWT secret, public keys, a JWKS URL, an auth proxy or an admin key
    /// is set.
    ///
    /// ```
    /// let config = pushgate::Config::default();
    /// assert!(!config.access.auth_enabled());
    /// assert!(config.with_admin_key(Some(pushgate::Secret::new("k"))).access.auth_enabled());
    /// ```
    pub fn auth_enabled(&self) -> bool {
        self.jwt_secret.is_some()
            || self.admin_key.is_some()
            || !self.jwt_public_keys.is_empty()
            || self.jwks_url.is_some()
            || self.auth_proxy.is_some()
    }

    /// The access policy the transports and the publish API check (`None`: auth is off,
    /// everything allowed), and what they are handed: the policy, or `AllowAll`.
    pub(super) fn authorizer(&self) -> Result<(Arc<dyn Authorize>, Option<AccessPolicy>), ConfigError> {
        let policy = self.policy()?;
        let authorize: Arc<dyn Authorize> = match &policy {
            Some(policy) => Arc::new(policy.clone()),
            None => pushgate_http::allow_all(),
        };
        Ok((authorize, policy))
    }

    /// The [`AccessPolicy`] of these options when auth is on: the secret and public keys, the
    /// JWKS URL, the auth proxy, the admin key, the anonymous and user patterns and the
    /// per-user limit.
    fn policy(&self) -> Result<Option<AccessPolicy>, ConfigError> {
        let subscribe = patterns("anonymous_subscribe", &self.anonymous_subscribe)?;
        let publish = patterns("anonymous_publish", &self.anonymous_publish)?;
        let user_subscribe = user_patterns("user_subscribe", &self.user_subscribe)?;
        let user_publish = user_patterns("user_publish", &self.user_publish)?;
        let keys = self.public_keys()?;
        for (name, url) in [("auth_proxy", &self.auth_proxy), ("jwks_url", &self.jwks_url)] {
            if let Some(url) = url {
                pushgate_auth::check_url(url.expose())
                    .map_err(|source| ConfigError::AuthUrl { name, source })?;
            }
        }
        if !self.auth_enabled() {
            return Ok(None);
        }
        let per_user = (self.max_connections_per_user > 0).then_some(self.max_connections_per_user);
        let mut builder = AccessPolicy::builder()
            .leeway(*self.jwt_leeway)
            .anonymous_subscribe(subscribe)
            .anonymous_publish(publish)
            .user_subscribe(user_subscribe)
            .user_publish(user_publish)
            .audience(self.jwt_audience.iter().cloned())
            .issuer(self.jwt_issuer.iter().cloned())
            .max_connections_per_user(per_user);
        if let Some(secret) = &self.jwt_secret {
            builder = builder
                .hmac_secret(secret.expose())
                .map_err(|_| ConfigError::EmptySecret { name: "jwt_secret" })?;
        }
        if let Some(key) = &self.admin_key {
            builder = builder.admin_key(key.expose());
        }
        for key in keys {
            builder = builder.public_key(key);
        }
        if let Some(url) = &self.jwks_url {
            builder = builder.jwks_url(url.expose());
        }
        if let Some(url) = &self.auth_proxy {
            builder = builder.auth_proxy(AuthProxy::new(url.expose())?.timeout(*self.auth_proxy_timeout));
        }
        Ok(Some(builder.build()?))
    }

    /// The keys of [`jwt_public_keys`](Self::jwt_public_keys), read from their files.
    fn public_keys(&self) -> Result<Vec<PublicKey>, ConfigError> {
        self.jwt_public_keys
            .iter()
            .map(|path| {
                let failed = |reason: String| ConfigError::PublicKey { path: path.clone(), reason };
                let pem = std::fs::read(path).map_err(|err| failed(err.to_string()))?;
                PublicKey::from_pem(&pem).map_err(|err| failed(err.to_string()))
            })
            .collect()
    }

    /// The admin key alone: what may read any topic's presence though it may not subscribe.
    pub(super) fn admin(&self) -> Option<AdminKey> {
        self.admin_key.as_ref().map(|key| AdminKey::new(key.expose()))
    }

    /// The WebSocket origin policy.
    pub(super) fn ws_origins(&self) -> Result<AllowedOrigins, ConfigError> {
        AllowedOrigins::list(&self.allowed_origins)
            .map_err(|source| ConfigError::Origin { name: "allowed_origins", source })
    }

    /// The CORS layer, when origins are given.
    pub(super) fn cors(&self) -> Result<Option<CorsLayer>, ConfigError> {
        crate::cors::layer(&self.cors_origins)
            .map_err(|source| ConfigError::Origin { name: "cors_origins", source })
    }
}

/// Every user pattern of `list`, parsed.
fn user_patterns(name: &'static str, list: &[String]) -> Result<Vec<UserPattern>, ConfigError> {
    list.iter()
        .map(|pattern| pattern.parse().map_err(|source| ConfigError::UserPattern { name, source }))
        .collect()
}

/// Every pattern of `list`, parsed.
pub(super) fn patterns(name: &'static str, list: &[String]) -> Result<Vec<TopicPattern>, ConfigError> {
    list.iter()
        .map(|pattern| pattern.parse().map_err(|source| ConfigError::Pattern { name, source }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::config::plan::Plan;

    #[test]
    fn access_settings_are_checked() {
        let base = Config::default();
        let enforced = |config: &Config| Plan::new(config).map(|plan| plan.authorize.is_enforced());
        assert_eq!(enforced(&base), Ok(false));
        let on = base.clone().with_admin_key(Some(Secret::new("k")));
        assert!(on.access.auth_enabled());
        assert_eq!(enforced(&on), Ok(true));
        assert_eq!(
            base.clone().with_jwt_secret(Some(Secret::new(""))).validate(),
            Err(ConfigError::EmptySecret { name: "jwt_secret" })
        );
        let bad_pattern = base.clone().with_anonymous_subscribe(vec!["a b".into()]).validate();
        assert!(matches!(bad_pattern, Err(ConfigError::Pattern { name: "anonymous_subscribe", .. })));
        let bad_origin = base.clone().with_allowed_origins(vec!["example.com".into()]).validate();
        assert!(matches!(bad_origin, Err(ConfigError::Origin { name: "allowed_origins", .. })));
        let bad_cors = base.clone().with_cors_origins(vec!["https://a.example/".into()]).validate();
        assert!(matches!(bad_cors, Err(ConfigError::Origin { name: "cors_origins", .. })));
        let good = base
            .with_jwt_secret(Some(Secret::new("s3cr3t")))
            .with_anonymous_publish(vec!["chat.*".into(), "*".into()])
            .with_allowed_origins(vec!["*".into()])
            .with_cors_origins(vec!["https://a.example".into(), "*".into()]);
        assert_eq!(good.validate(), Ok(()));
        assert!(!format!("{good:?}").contains("s3cr3t"));
    }

    #[test]
    fn keys_urls_and_user_patterns_are_checked_and_turn_auth_on() {
        let base = Config::default();
        let bad_url = base.clone().with_auth_proxy(Some("app:8000/auth")).validate();
        assert!(matches!(bad_url, Err(ConfigError::AuthUrl { name: "auth_proxy", .. })));
        let bad_jwks = base.clone().with_jwks_url(Some("file:///etc/keys")).validate();
        assert!(matches!(bad_jwks, Err(ConfigError::AuthUrl { name: "jwks_url", .. })));
        let bad_template = base.clone().with_user_subscribe(vec!["user:{id}".into()]).validate();
        assert!(matches!(bad_template, Err(ConfigError::UserPattern { name: "user_subscribe", .. })));
        let missing_key = base.clone().with_jwt_public_keys(vec!["/nonexistent/key.pem".into()]).validate();
        assert!(matches!(missing_key, Err(ConfigError::PublicKey { .. })));
        let private = concat!(env!("CARGO_MANIFEST_DIR"), "/../pushgate-auth/testdata/rsa1.key");
        let private_key = base.clone().with_jwt_public_keys(vec![private.into()]).validate();
        assert!(
            matches!(&private_key, Err(ConfigError::PublicKey { reason, .. }) if reason.contains("private key")),
            "{private_key:?}"
        );
        let zero = base
            .clone()
            .with_auth_proxy(Some("http://app/auth"))
            .with_auth_proxy_timeout(std::time::Duration::ZERO)
            .validate();
        assert_eq!(zero, Err(ConfigError::Zero { name: "auth_proxy_timeout" }));
        let enforced = |config: &Config| {
            Plan::new(config).map(|plan| (plan.authorize.is_enforced(), plan.policy.is_some()))
        };
        let public = concat!(env!("CARGO_MANIFEST_DIR"), "/../pushgate-auth/testdata/ec256.pub");
        for on in [
            base.clone().with_jwt_public_keys(vec![public.into()]),
            base.clone().with_jwks_url(Some("https://id.example/certs")),
            base.clone().with_auth_proxy(Some("https://app.example/pushgate/auth")),
        ] {
            assert!(on.access.auth_enabled());
            assert_eq!(enforced(&on), Ok((true, true)));
        }
        assert_eq!(enforced(&base), Ok((false, false)));
    }
}
