//! Who may do what: client tokens, the admin key, what anonymous clients may use, and which web
//! origins may open WebSockets or call the HTTP transports from scripts.

use std::sync::Arc;

use pushgate_auth::{JwtAuth, TopicPattern};
use pushgate_http::Authorize;
use pushgate_ws::AllowedOrigins;
use tower_http::cors::CorsLayer;

use super::{ConfigError, Secret, TimeSpan};

section! {
    /// Auth, WebSocket origins and CORS. Auth is on with a JWT secret or an admin key, off
    /// (everything allowed) without.
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
        Ok(())
    }

    /// Whether auth is on: a JWT secret or an admin key is set.
    ///
    /// ```
    /// let config = pushgate::Config::default();
    /// assert!(!config.access.auth_enabled());
    /// assert!(config.with_admin_key(Some(pushgate::Secret::new("k"))).access.auth_enabled());
    /// ```
    pub fn auth_enabled(&self) -> bool {
        self.jwt_secret.is_some() || self.admin_key.is_some()
    }

    /// The access policy the transports and the publish API check: everything allowed when
    /// auth is off, otherwise a [`JwtAuth`] with the secret, the admin key and the anonymous
    /// patterns.
    pub(super) fn authorizer(&self) -> Result<Arc<dyn Authorize>, ConfigError> {
        let subscribe = patterns("anonymous_subscribe", &self.anonymous_subscribe)?;
        let publish = patterns("anonymous_publish", &self.anonymous_publish)?;
        if !self.auth_enabled() {
            return Ok(pushgate_http::allow_all());
        }
        let mut auth = match &self.jwt_secret {
            Some(secret) => {
                JwtAuth::new(secret.expose()).map_err(|_| ConfigError::EmptySecret { name: "jwt_secret" })?
            }
            None => JwtAuth::without_tokens(),
        };
        if let Some(key) = &self.admin_key {
            auth = auth.admin_key(key.expose());
        }
        Ok(Arc::new(auth.leeway(*self.jwt_leeway).anonymous_subscribe(subscribe).anonymous_publish(publish)))
    }

    /// Recognises the admin key and nothing else (no secret, no anonymous patterns): what may
    /// read any topic's presence though it may not subscribe.
    pub(super) fn admin(&self) -> Option<JwtAuth> {
        self.admin_key.as_ref().map(|key| JwtAuth::without_tokens().admin_key(key.expose()))
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

/// Every pattern of `list`, parsed.
fn patterns(name: &'static str, list: &[String]) -> Result<Vec<TopicPattern>, ConfigError> {
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
}
