//! [`AccessPolicy`]: the rules that combine the admin key, anonymous patterns, tokens and the
//! application's own decisions into one [`Authorize`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::DecodingKey;
use pushgate_http::{Action, AuthError, AuthRequest, Authorize, Check, Grant};
use pushgate_hub::{MAX_SENDER_LEN, TopicName};
use subtle::ConstantTimeEq as _;

use crate::claims::Claims;
use crate::client::{HttpClient, InvalidUrl, check_url};
use crate::jwt::{DEFAULT_LEEWAY, EmptySecret, HmacAlgorithm, Verified, Verifier};
use crate::keys::{MIN_REFRESH_INTERVAL, PublicKey, REFRESH_INTERVAL, RemoteKeys};
use crate::pattern::{self, TopicPattern, UserPattern};
use crate::proxy::{Answer, AuthProxy, Decision, Question};
use crate::revocation::{RevocationListFull, Revocations};
use crate::users::{Slot, UserConnections};

/// The access policy of a gateway; see the crate documentation for the rules. Built with
/// [`AccessPolicy::builder`]; cheap to clone (clones share everything, revocations included).
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    inner: Arc<Inner>,
}

/// How an [`AccessPolicy`] is set up.
#[derive(Debug, Default)]
#[must_use]
pub struct PolicyBuilder {
    inner: Inner,
    jwks: Option<String>,
    jwks_min_refresh: Option<Duration>,
}

#[derive(Debug, Default)]
struct Inner {
    verifier: Verifier,
    admin_key: Option<AdminKey>,
    anonymous_subscribe: Vec<TopicPattern>,
    anonymous_publish: Vec<TopicPattern>,
    user_subscribe: Vec<UserPattern>,
    user_publish: Vec<UserPattern>,
    proxy: Option<AuthProxy>,
    /// Every user's connections: counted (within a limit, when set) and cut off together.
    users: Arc<UserConnections>,
    revocations: Revocations,
}

/// What an [`AccessPolicy`] keeps in the grants it makes: the application's decision the
/// grant rests on (reused for the connection's later frames while fresh) and the connection's
/// place in its user's count.
#[derive(Debug)]
struct GrantState {
    decision: Option<Arc<Decision>>,
    slot: Option<Arc<Slot>>,
}

/// A key that may publish on every topic, compared in constant time.
#[derive(Clone)]
pub struct AdminKey(Vec<u8>);

impl AdminKey {
    /// The key `key`.
    pub fn new(key: impl AsRef<[u8]>) -> Self {
        Self(key.as_ref().to_vec())
    }

    /// Whether `token` is this key.
    pub fn matches(&self, token: &str) -> bool {
        bool::from(self.0.as_slice().ct_eq(token.as_bytes()))
    }
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(<redacted>)")
    }
}

/// Why a policy cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The JWKS URL is not an `http(s)://` URL.
    #[error("jwks url: {0}")]
    JwksUrl(#[from] InvalidUrl),
    /// TLS for the JWKS endpoint could not be set up.
    #[error("jwks: cannot set up TLS: {0}")]
    Tls(String),
}

impl AccessPolicy {
    /// A builder that allows nothing until told otherwise.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default().leeway(DEFAULT_LEEWAY)
    }

    /// A policy that refuses everything.
    pub fn deny_all() -> Self {
        Self { inner: Arc::new(Inner::default()) }
    }

    /// Refuses `user`'s tokens issued before `issued_before` (`401 token_revoked`), and the
    /// application's decisions about the user made before then (it is asked again), until
    /// `until`: the time by which every such token has expired anyway. The user's streams,
    /// WebSockets and parked long polls opened with such a credential end with
    /// `token_revoked`.
    ///
    /// # Errors
    ///
    /// [`RevocationListFull`] when the list holds its limit of entries that have not expired.
    pub fn revoke(
        &self,
        user: &str,
        issued_before: SystemTime,
        until: SystemTime,
    ) -> Result<(), RevocationListFull> {
        self.inner.revocations.revoke(user, issued_before, until)?;
        if let Some(proxy) = &self.inner.proxy {
            proxy.forget_user(user);
        }
        self.inner.users.revoke(user, issued_before);
        Ok(())
    }

    /// Ends every live connection of `user` on this node (streams, WebSockets, parked long
    /// polls): they end with `disconnected`, and the client does not reconnect on its own.
    /// Returns how many there were. The user may connect again.
    pub fn disconnect(&self, user: &str) -> usize {
        self.inner.users.disconnect(user)
    }

    /// Housekeeping to run next to the server for as long as it serves: fetches the JWKS key
    /// set at once and then every few minutes ([`REFRESH_INTERVAL`]), and forgets expired
    /// decisions and revocations. Never returns; spawn it and abort it on shutdown.
    pub fn maintain(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        async move {
            let mut every = tokio::time::interval(REFRESH_INTERVAL);
            loop {
                every.tick().await;
                if let Some(remote) = &inner.verifier.remote {
                    remote.refresh().await;
                }
                if let Some(proxy) = &inner.proxy {
                    proxy.sweep();
                }
                inner.revocations.sweep();
            }
        }
    }
}

impl PolicyBuilder {
    /// Accepts tokens signed with the HMAC `secret` (HS256 unless
    /// [`hmac_algorithm`](Self::hmac_algorithm) says otherwise).
    ///
    /// # Errors
    ///
    /// [`EmptySecret`] for an empty secret, which would let anyone sign tokens.
    pub fn hmac_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, EmptySecret> {
        self.inner.verifier.secret =
            Some(DecodingKey::from_secret(secret.as_ref()).map_err(|_| EmptySecret)?);
        Ok(self)
    }

    /// The one HMAC algorithm tokens signed with the secret must name (default HS256).
    pub fn hmac_algorithm(mut self, algorithm: HmacAlgorithm) -> Self {
        self.inner.verifier.hmac = algorithm;
        self
    }

    /// Accepts tokens signed with the private half of `key` (repeatable, for rotation).
    pub fn public_key(mut self, key: PublicKey) -> Self {
        self.inner.verifier.keys.push(key);
        self
    }

    /// Accepts tokens signed with the keys published at `url` (a JWKS document), fetched when
    /// a token names a key id not yet known and every few minutes ([`AccessPolicy::maintain`]).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks = Some(url.into());
        self
    }

    /// The shortest time between two fetches of the JWKS key set for unknown key ids (default
    /// [`MIN_REFRESH_INTERVAL`]).
    pub fn jwks_min_refresh(mut self, interval: Duration) -> Self {
        self.jwks_min_refresh = Some(interval);
        self
    }

    /// Tokens must name one of these audiences in `aud` (default: `aud` is not checked).
    pub fn audience<I: IntoIterator<Item: Into<String>>>(mut self, audiences: I) -> Self {
        self.inner.verifier.audience = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Tokens must name one of these issuers in `iss` (default: `iss` is not checked).
    pub fn issuer<I: IntoIterator<Item: Into<String>>>(mut self, issuers: I) -> Self {
        self.inner.verifier.issuer = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// How long after its `exp` a token is still accepted, for clocks that disagree (default
    /// 5 s). A stream opened with the token ends at `exp` plus this.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.inner.verifier.leeway = leeway;
        self
    }

    /// A key that may publish on every topic, sent as `Authorization: Bearer <key>` by the
    /// application's servers. It allows publishing only.
    pub fn admin_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.inner.admin_key = Some(AdminKey::new(key));
        self
    }

    /// Topics anyone may subscribe to, with or without credentials.
    pub fn anonymous_subscribe(mut self, patterns: impl IntoIterator<Item = TopicPattern>) -> Self {
        self.inner.anonymous_subscribe = patterns.into_iter().collect();
        self
    }

    /// Topics anyone may publish on, with or without credentials.
    pub fn anonymous_publish(mut self, patterns: impl IntoIterator<Item = TopicPattern>) -> Self {
        self.inner.anonymous_publish = patterns.into_iter().collect();
        self
    }

    /// Topics every authenticated user may subscribe to, next to what its token or the
    /// application allows (`user:{user}`: its own topic).
    pub fn user_subscribe(mut self, patterns: impl IntoIterator<Item = UserPattern>) -> Self {
        self.inner.user_subscribe = patterns.into_iter().collect();
        self
    }

    /// Topics every authenticated user may publish on.
    pub fn user_publish(mut self, patterns: impl IntoIterator<Item = UserPattern>) -> Self {
        self.inner.user_publish = patterns.into_iter().collect();
        self
    }

    /// Asks the application about requests no token decides.
    pub fn auth_proxy(mut self, proxy: AuthProxy) -> Self {
        self.inner.proxy = Some(proxy);
        self
    }

    /// At most `limit` streams, WebSockets and parked long polls per user (default: no limit).
    pub fn max_connections_per_user(mut self, limit: Option<usize>) -> Self {
        self.inner.users = limit.map_or_else(Arc::default, UserConnections::new);
        self
    }

    /// The policy.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] for a JWKS URL that cannot be used.
    pub fn build(mut self) -> Result<AccessPolicy, PolicyError> {
        if let Some(url) = self.jwks {
            let url = check_url(&url)?;
            let client = HttpClient::new().map_err(|err| PolicyError::Tls(err.to_string()))?;
            let min = self.jwks_min_refresh.unwrap_or(MIN_REFRESH_INTERVAL);
            self.inner.verifier.remote = Some(Arc::new(RemoteKeys::new(url, client, min)));
        }
        Ok(AccessPolicy { inner: Arc::new(self.inner) })
    }
}

impl Authorize for AccessPolicy {
    fn check(&self, request: &AuthRequest<'_>) -> Check {
        let inner = &self.inner;
        if request.action == Action::Publish
            && let (Some(token), Some(admin)) = (request.token, &inner.admin_key)
            && admin.matches(token)
        {
            // The application's servers: never rate-limited.
            return Check::ready(Ok(Grant::server()));
        }
        if let Some(grant) = inner.reuse(request) {
            return Check::ready(Ok(grant));
        }
        match request.token {
            Some(token) => self.with_token(request, token),
            None => self.without_token(request),
        }
    }
}

impl AccessPolicy {
    /// A request with a token: a JWT the server can verify decides; otherwise, or when it does
    /// not allow the request, the application (when there is one).
    fn with_token(&self, request: &AuthRequest<'_>, token: &str) -> Check {
        let refusal = match self.inner.verifier.verify(token, true) {
            Verified::Claims(claims, until) => match self.inner.grant_for_claims(request, &claims, until) {
                Ok(grant) => return Check::ready(Ok(grant)),
                Err(refusal) => refusal,
            },
            Verified::Refused(refusal) => refusal,
            Verified::UnknownKey => {
                let this = self.clone();
                let owned = Owned::of(request);
                return Check::pending(async move {
                    if let Some(remote) = &this.inner.verifier.remote {
                        remote.refresh_for_unknown_key().await;
                    }
                    let request = owned.request();
                    let token = owned.question.token.as_deref().unwrap_or_default();
                    let refusal = match this.inner.verifier.verify(token, false) {
                        Verified::Claims(claims, until) => {
                            match this.inner.grant_for_claims(&request, &claims, until) {
                                Ok(grant) => return Ok(grant),
                                Err(refusal) => refusal,
                            }
                        }
                        Verified::Refused(refusal) => refusal,
                        Verified::UnknownKey => crate::jwt::invalid("no key with the token's key id"),
                    };
                    this.ask_application(&owned, Some(refusal), false).await
                });
            }
        };
        self.application_check(request, Some(refusal), false)
    }

    /// A request without a token: open topics need no one; the rest is the application's.
    fn without_token(&self, request: &AuthRequest<'_>) -> Check {
        let inner = &self.inner;
        let first_closed = request.topics.iter().find(|topic| !inner.is_open(request.action, topic));
        let had_user = request.current.is_some_and(|grant| grant.user().is_some());
        let has_cookie = request.client.cookie.is_some();
        match (first_closed, &inner.proxy) {
            // A connection that had a user keeps asking, so that it keeps its user.
            (None, Some(_)) if had_user || (request.topics.is_empty() && has_cookie) => {
                self.application_check(request, None, true)
            }
            (None, _) => Check::ready(Ok(Grant::forever())),
            (Some(_), Some(_)) => self.application_check(request, None, false),
            (Some(topic), None) => {
                Check::ready(Err(AuthError::TokenRequired { action: request.action, topic: topic.clone() }))
            }
        }
    }

    /// Decides with the application: from a decision kept for these credentials when it covers
    /// the request, else by asking. `refusal` is the token's, reported when the application
    /// does not allow either; with `open`, the request is allowed anonymously when the
    /// application does not allow it.
    fn application_check(&self, request: &AuthRequest<'_>, refusal: Option<AuthError>, open: bool) -> Check {
        let Some(proxy) = &self.inner.proxy else {
            return Check::ready(Err(refusal.unwrap_or_else(|| self.inner.token_required(request))));
        };
        let key = AuthProxy::key(request.client, request.token);
        if let Some(answer) = proxy.cached(&key) {
            let covered = match &answer {
                Answer::Allow(decision) => self.inner.covers(request, Some(decision)),
                _ => true,
            };
            if covered {
                return Check::ready(self.inner.decide(request, answer, refusal, open));
            }
        }
        let this = self.clone();
        let owned = Owned::of(request);
        Check::pending(async move { this.ask_application(&owned, refusal, open).await })
    }

    async fn ask_application(
        &self,
        owned: &Owned,
        refusal: Option<AuthError>,
        open: bool,
    ) -> Result<Grant, AuthError> {
        let request = owned.request();
        let Some(proxy) = &self.inner.proxy else {
            return Err(refusal.unwrap_or_else(|| self.inner.token_required(&request)));
        };
        let key = AuthProxy::key(request.client, request.token);
        let answer = proxy.ask(&owned.question, key).await;
        self.inner.decide(&request, answer, refusal, open)
    }
}

impl Inner {
    fn anonymous(&self, action: Action) -> &[TopicPattern] {
        match action {
            Action::Subscribe => &self.anonymous_subscribe,
            Action::Publish => &self.anonymous_publish,
        }
    }

    fn user_patterns(&self, action: Action) -> &[UserPattern] {
        match action {
            Action::Subscribe => &self.user_subscribe,
            Action::Publish => &self.user_publish,
        }
    }

    fn is_open(&self, action: Action, topic: &TopicName) -> bool {
        self.anonymous(action).iter().any(|pattern| pattern.matches(topic))
    }

    /// Whether `user` may by the patterns every user has.
    fn user_may(&self, action: Action, user: &str, topic: &TopicName) -> bool {
        self.user_patterns(action)
            .iter()
            .any(|template| template.for_user(user).is_some_and(|p| p.matches(topic)))
    }

    fn token_required(&self, request: &AuthRequest<'_>) -> AuthError {
        match request.topics.iter().find(|topic| !self.is_open(request.action, topic)) {
            Some(topic) => AuthError::TokenRequired { action: request.action, topic: topic.clone() },
            None => crate::jwt::invalid("this server accepts no tokens"),
        }
    }

    /// The first topic of the request that neither the open patterns, `decision` nor the
    /// user's patterns allow.
    fn first_denied<'t>(
        &self,
        request: &AuthRequest<'t>,
        decision: Option<&Decision>,
    ) -> Option<&'t TopicName> {
        let user = decision.and_then(|decision| decision.user.as_deref());
        request.topics.iter().find(|topic| {
            !self.is_open(request.action, topic)
                && !decision.is_some_and(|d| d.patterns(request.action).iter().any(|p| p.matches(topic)))
                && !user.is_some_and(|user| self.user_may(request.action, user, topic))
        })
    }

    fn covers(&self, request: &AuthRequest<'_>, decision: Option<&Decision>) -> bool {
        self.first_denied(request, decision).is_none()
    }

    /// The connection's grant again, when it rests on a decision of the application that is
    /// still fresh, made for the same credentials, not revoked, and covers this request.
    fn reuse(&self, request: &AuthRequest<'_>) -> Option<Grant> {
        let current = request.current?;
        let decision = current.state::<GrantState>()?.decision.as_ref()?;
        let fresh = decision.is_fresh()
            && !decision
                .user
                .as_deref()
                .is_some_and(|user| self.revocations.is_revoked(user, Some(decision.decided_at)));
        (fresh
            && self.covers(request, Some(decision))
            && decision.key == AuthProxy::key(request.client, request.token))
        .then(|| current.clone())
    }

    /// The grant for a verified token's claims, or why they do not allow the request.
    fn grant_for_claims(
        &self,
        request: &AuthRequest<'_>,
        claims: &Claims,
        until: Option<SystemTime>,
    ) -> Result<Grant, AuthError> {
        let user = claims.sub.as_deref().filter(|sub| !sub.is_empty());
        if user.is_some_and(|user| user.len() > MAX_SENDER_LEN) {
            return Err(crate::jwt::invalid("the token's `sub` is longer than 256 bytes"));
        }
        let issued = claims.iat.and_then(|iat| UNIX_EPOCH.checked_add(Duration::from_secs(iat)));
        if user.is_some_and(|user| self.revocations.is_revoked(user, issued)) {
            return Err(AuthError::TokenRevoked);
        }
        let action = request.action;
        let granted: Vec<&str> = claims.patterns(action).collect();
        let denied = request.topics.iter().find(|topic| {
            !self.is_open(action, topic)
                && !pattern::any_matches(&granted, topic)
                && !user.is_some_and(|user| self.user_may(action, user, topic))
        });
        if let Some(topic) = denied {
            return Err(AuthError::TopicForbidden { action, topic: topic.clone() });
        }
        let grant = until.map_or_else(Grant::forever, Grant::until);
        self.finish(request, grant, user.map(Arc::from), None, issued)
    }

    /// The outcome of the application's `answer`.
    fn decide(
        &self,
        request: &AuthRequest<'_>,
        answer: Answer,
        refusal: Option<AuthError>,
        open: bool,
    ) -> Result<Grant, AuthError> {
        let first = || request.topics.first().cloned();
        let outcome = match answer {
            Answer::Allow(decision) => match self.first_denied(request, Some(&decision)) {
                None => {
                    let user = decision.user.clone();
                    let grant = Grant::forever().as_server(decision.server);
                    let decided_at = Some(decision.decided_at);
                    return self.finish(request, grant, user, Some(decision), decided_at);
                }
                Some(topic) => Err(AuthError::ApplicationForbidden {
                    action: request.action,
                    topic: Some(topic.clone()),
                }),
            },
            Answer::Unauthenticated => Err(AuthError::Unauthenticated),
            Answer::Forbidden => {
                Err(AuthError::ApplicationForbidden { action: request.action, topic: first() })
            }
            Answer::Unavailable(reason) => {
                if open {
                    return Ok(Grant::forever());
                }
                return Err(AuthError::Unavailable { reason: reason.into() });
            }
        };
        if open {
            return Ok(Grant::forever());
        }
        // The token's own refusal says more to a client that sent one (`token_expired`: get a
        // fresh one).
        match refusal {
            Some(refusal) => Err(refusal),
            None => outcome,
        }
    }

    /// `grant` for `user`, holding a place in the user's connection count when the request
    /// holds a connection (the connection's own place, when it has one for the same user), and
    /// cut off with the user's other connections (for credentials `issued` then).
    fn finish(
        &self,
        request: &AuthRequest<'_>,
        mut grant: Grant,
        user: Option<Arc<str>>,
        decision: Option<Arc<Decision>>,
        issued: Option<SystemTime>,
    ) -> Result<Grant, AuthError> {
        let mut slot = None;
        if let (Some(user), true) = (&user, request.holds_connection) {
            let held = request
                .current
                .and_then(|current| current.state::<GrantState>())
                .and_then(|state| state.slot.as_ref())
                .filter(|slot| slot.user() == &**user);
            let acquired = match held {
                Some(slot) => Arc::clone(slot),
                None => self.users.acquire(user)?,
            };
            grant = grant.with_cutoff(acquired.cutoff(issued));
            slot = Some(acquired);
        }
        if let Some(user) = user {
            grant = grant.with_user(user);
        }
        if slot.is_some() || decision.is_some() {
            grant = grant.with_state(Arc::new(GrantState { decision, slot }));
        }
        Ok(grant)
    }
}

/// A request, owned, for a check that waits.
struct Owned {
    question: Question,
    current: Option<Grant>,
    holds_connection: bool,
}

impl Owned {
    fn of(request: &AuthRequest<'_>) -> Self {
        Self {
            question: Question {
                action: request.action,
                topics: request.topics.to_vec(),
                token: request.token.map(str::to_owned),
                transport: request.transport,
                client: request.client.clone(),
            },
            current: request.current.cloned(),
            holds_connection: request.holds_connection,
        }
    }

    fn request(&self) -> AuthRequest<'_> {
        let question = &self.question;
        let mut request = AuthRequest::new(
            question.action,
            &question.topics,
            question.token.as_deref(),
            question.transport,
            &question.client,
        );
        if let Some(current) = &self.current {
            request = request.current(current);
        }
        if self.holds_connection {
            request = request.holds_connection();
        }
        request
    }
}
