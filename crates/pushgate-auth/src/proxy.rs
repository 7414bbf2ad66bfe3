//! Asking the application: `POST` the request's action, topics, transport, client address and
//! authentication headers to a URL of the application's, which answers with the user and the
//! topic patterns it allows, for how long, or with a `401`/`403`.
//!
//! ```text
//! → {"action":"subscribe","topics":["user:42"],"transport":"sse","client_ip":"203.0.113.7",
//!    "headers":{"Cookie":"JSESSIONID=…","Origin":"https://app.example","User-Agent":"…"}}
//! ← 200 {"user":"42","subscribe":["user:42","chat.*"],"publish":["chat.*"],"expires_in":300}
//! ```
//!
//! An allow is kept for `expires_in` seconds per credentials (the `Cookie`, `Authorization`
//! and token together, as a SHA-256 digest: never the credentials themselves): later requests
//! with the same credentials whose topics its patterns cover are decided without asking. A
//! `401` carrying `expires_in` in a JSON body is kept the same way. The cache is bounded
//! ([`AuthProxy::cache_capacity`]); when it is full, new decisions are not kept until old ones
//! expire.
//!
//! No answer within the timeout, a connection that fails, any other status or an answer that
//! is not a decision is [`Answer::Unavailable`]: `503 auth_unavailable`, never an allow. At
//! most [`AuthProxy::max_concurrent`] questions are in flight at once; a request that cannot get
//! a turn within the timeout is unavailable too, so a flood of clients cannot make the gateway
//! flood the application.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{StatusCode, Uri};
use parking_lot::Mutex;
use pushgate_http::{Action, ClientInfo};
use pushgate_hub::TopicName;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::{HttpClient, InvalidUrl, check_url};
use crate::pattern::TopicPattern;

/// The default time the application has to answer.
pub const DEFAULT_PROXY_TIMEOUT: Duration = Duration::from_secs(2);
/// The default number of decisions kept.
const DEFAULT_CACHE_CAPACITY: usize = 100_000;
/// The default number of questions in flight at once.
const DEFAULT_MAX_CONCURRENT: usize = 256;
/// The largest answer read from the application.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The longest user id accepted from the application: what an event's sender may be.
const MAX_USER_BYTES: usize = pushgate_hub::MAX_SENDER_LEN;

/// Why an auth proxy cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("auth proxy: {0}")]
    Url(#[from] InvalidUrl),
    /// TLS could not be set up.
    #[error("auth proxy: cannot set up TLS: {0}")]
    Tls(String),
}

/// The application's endpoint deciding access, with its timeout and the decisions it gave.
#[derive(Debug)]
pub struct AuthProxy {
    url: Uri,
    timeout: Duration,
    client: HttpClient,
    turns: Semaphore,
    max_concurrent: usize,
    cache: Mutex<HashMap<Key, Cached>>,
    capacity: usize,
}

/// The digest of a client's credentials.
pub(crate) type Key = [u8; 32];

/// What the application said.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// `200`: who the client is and what it may do.
    Allow(Arc<Decision>),
    /// `401`.
    Unauthenticated,
    /// `403`.
    Forbidden,
    /// No usable answer.
    Unavailable(String),
}

/// An allow, as kept for reuse.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) user: Option<Arc<str>>,
    /// The application vouches for the caller as one of its own servers (`"server": true`):
    /// its publishes are not rate-limited.
    pub(crate) server: bool,
    pub(crate) subscribe: Vec<TopicPattern>,
    pub(crate) publish: Vec<TopicPattern>,
    /// When it was made, compared with the user's revocations.
    pub(crate) decided_at: SystemTime,
    /// Until when it may be reused.
    pub(crate) valid_until: Instant,
    /// The credentials it was made for.
    pub(crate) key: Key,
}

impl Decision {
    pub(crate) fn patterns(&self, action: Action) -> &[TopicPattern] {
        match action {
            Action::Subscribe => &self.subscribe,
            Action::Publish => &self.publish,
        }
    }

    pub(crate) fn is_fresh(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

#[derive(Debug)]
struct Cached {
    answer: Answer,
    until: Instant,
}

/// One question, owned so that it can be asked after the request that raised it is gone.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    pub(crate) action: Action,
    pub(crate) topics: Vec<TopicName>,
    pub(crate) token: Option<String>,
    pub(crate) transport: &'static str,
    pub(crate) client: ClientInfo,
}

/// The application's `200` body.
#[derive(Deserialize)]
struct Allowed {
    #[serde(default)]
    user: Option<Value>,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    server: bool,
}

/// A refusal's body, when it is JSON.
#[derive(Deserialize)]
struct Refused {
    #[serde(default)]
    expires_in: Option<u64>,
}

impl AuthProxy {
    /// Asks the application at `url` (`http://` or `https://`; https trusts the system's roots,
    /// or `SSL_CERT_FILE`), with a [timeout](Self::timeout) of 2 s.
    ///
    /// # Errors
    ///
    /// [`ProxyError`] for a URL that is not `http(s)://host…`, or TLS that cannot be set up.
    pub fn new(url: &str) -> Result<Self, ProxyError> {
        let url = check_url(url)?;
        let client = HttpClient::new().map_err(|err| ProxyError::Tls(err.to_string()))?;
        Ok(Self::with_client(url, client))
    }

    pub(crate) fn with_client(url: Uri, client: HttpClient) -> Self {
        Self {
            url,
            timeout: DEFAULT_PROXY_TIMEOUT,
            client,
            turns: Semaphore::new(DEFAULT_MAX_CONCURRENT),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            cache: Mutex::new(HashMap::new()),
            capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// How long the application has to answer (default 2 s); past it the request is
    /// `503 auth_unavailable`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many decisions are kept at most (default 100,000).
    #[must_use]
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How many questions may be in flight at once (default 256).
    #[must_use]
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self.turns = Semaphore::new(self.max_concurrent);
        self
    }

    /// The digest of what authenticates `client` (with `token`): the cache key.
    pub(crate) fn key(client: &ClientInfo, token: Option<&str>) -> Key {
        let mut digest = Sha256::new();
        for part in [
            client.cookie.as_ref().map(http::HeaderValue::as_bytes),
            client.authorization.as_ref().map(http::HeaderValue::as_bytes),
            token.map(str::as_bytes),
        ] {
            // Marked present or not and length-prefixed, so that no two different triples make
            // the same input.
            digest.update([u8::from(part.is_some())]);
            let part = part.unwrap_or_default();
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part);
        }
        digest.finalize().into()
    }

    /// The answer kept for `key`, if it is still valid.
    pub(crate) fn cached(&self, key: &Key) -> Option<Answer> {
        let cache = self.cache.lock();
        let cached = cache.get(key)?;
        (Instant::now() < cached.until).then(|| cached.answer.clone())
    }

    /// Forgets every decision made for `user`.
    pub(crate) fn forget_user(&self, user: &str) {
        self.cache.lock().retain(|_, cached| match &cached.answer {
            Answer::Allow(decision) => decision.user.as_deref() != Some(user),
            _ => true,
        });
    }

    /// Forgets the expired decisions.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.cache.lock().retain(|_, cached| cached.until > now);
    }

    /// Asks the application, and keeps its answer for `key` when it says for how long.
    pub(crate) async fn ask(&self, question: &Question, key: Key) -> Answer {
        let deadline = Instant::now() + self.timeout;
        let Ok(Ok(_turn)) = tokio::time::timeout_at(deadline, self.turns.acquire()).await else {
            return Answer::Unavailable(format!(
                "{} questions already waiting for the application",
                self.max_concurrent
            ));
        };
        let body = request_body(question);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (answer, ttl) = match self.client.post_json(&self.url, body, remaining, MAX_ANSWER_BYTES).await {
            Ok((status, body)) => parse_answer(status, &body, key),
            Err(err) => (Answer::Unavailable(err.to_string()), None),
        };
        if let Answer::Unavailable(reason) = &answer {
            tracing::warn!(url = %self.url, %reason, transport = question.transport, "the auth proxy gave no decision");
        }
        if let Some(ttl) = ttl {
            self.keep(key, &answer, ttl);
        }
        answer
    }

    fn keep(&self, key: Key, answer: &Answer, ttl: Duration) {
        let mut cache = self.cache.lock();
        if cache.len() >= self.capacity && !cache.contains_key(&key) {
            let now = Instant::now();
            cache.retain(|_, cached| cached.until > now);
            if cache.len() >= self.capacity {
                return;
            }
        }
        cache.insert(key, Cached { answer: answer.clone(), until: Instant::now() + ttl });
    }
}

/// The JSON the application is sent.
fn request_body(question: &Question) -> Vec<u8> {
    let mut headers = Map::new();
    let client = &question.client;
    for (name, value) in [
        ("Cookie", &client.cookie),
        ("Authorization", &client.authorization),
        ("Origin", &client.origin),
        ("User-Agent", &client.user_agent),
    ] {
        if let Some(value) = value {
            headers.insert(name.to_owned(), Value::from(String::from_utf8_lossy(value.as_bytes())));
        }
    }
    let mut body = Map::new();
    body.insert("action".to_owned(), Value::from(question.action.as_str()));
    let topics = question.topics.iter().map(|topic| Value::from(topic.as_str())).collect();
    body.insert("topics".to_owned(), Value::Array(topics));
    body.insert("transport".to_owned(), Value::from(question.transport));
    body.insert("client_ip".to_owned(), client.ip.map_or(Value::Null, |ip| Value::from(ip.to_string())));
    body.insert("headers".to_owned(), Value::Object(headers));
    if let Some(token) = &question.token {
        body.insert("token".to_owned(), Value::from(token.as_str()));
    }
    Value::Object(body).to_string().into_bytes()
}

/// The application's answer as a decision, and how long it may be kept for these credentials
/// (`None`: not at all). A `403` is about the topics asked for, so it is never kept for the
/// credentials.
fn parse_answer(status: StatusCode, body: &[u8], key: Key) -> (Answer, Option<Duration>) {
    let ttl = |seconds: Option<u64>| seconds.filter(|s| *s > 0).map(Duration::from_secs);
    match status {
        StatusCode::OK => match serde_json::from_slice::<Allowed>(body) {
            Ok(allowed) => {
                let kept = ttl(allowed.expires_in);
                match decision(allowed, key) {
                    Ok(decision) => (Answer::Allow(Arc::new(decision)), kept),
                    Err(reason) => (Answer::Unavailable(reason), None),
                }
            }
            Err(err) => (Answer::Unavailable(format!("its 200 answer is not a decision: {err}")), None),
        },
        // A refusal may say for how long it holds (a JSON body with `expires_in`).
        StatusCode::UNAUTHORIZED => {
            let kept =
                serde_json::from_slice::<Refused>(body).ok().and_then(|refused| ttl(refused.expires_in));
            (Answer::Unauthenticated, kept)
        }
        StatusCode::FORBIDDEN => (Answer::Forbidden, None),
        other => (Answer::Unavailable(format!("it answered HTTP {other}")), None),
    }
}

fn decision(allowed: Allowed, key: Key) -> Result<Decision, String> {
    let user = match allowed.user {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => Some(user),
        Some(Value::Number(number)) => Some(number.to_string()),
        Some(_) => return Err("its `user` is neither a string nor a number".to_owned()),
    };
    if let Some(user) = &user
        && (user.is_empty() || user.len() > MAX_USER_BYTES)
    {
        return Err(format!("its `user` must be 1 to {MAX_USER_BYTES} bytes"));
    }
    // Malformed patterns allow nothing; the rest of the decision stands.
    let parse = |patterns: Vec<String>| -> Vec<TopicPattern> {
        patterns
            .iter()
            .filter_map(|pattern| match pattern.parse() {
                Ok(pattern) => Some(pattern),
                Err(error) => {
                    tracing::warn!(%error, "the auth proxy answered a malformed topic pattern");
                    None
                }
            })
            .collect()
    };
    let ttl = Duration::from_secs(allowed.expires_in.unwrap_or(0));
    Ok(Decision {
        user: user.map(Arc::from),
        server: allowed.server,
        subscribe: parse(allowed.subscribe),
        publish: parse(allowed.publish),
        decided_at: SystemTime::now(),
        valid_until: Instant::now().checked_add(ttl).unwrap_or_else(Instant::now),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_decisions_and_only_allows_and_401s_saying_so_are_kept() {
        let key = [7; 32];
        let allowed = br#"{"user":42,"subscribe":["user:42","a b","chat.*"],"publish":[],"expires_in":60}"#;
        let (answer, kept) = parse_answer(StatusCode::OK, allowed, key);
        let Answer::Allow(decision) = answer else { panic!("{answer:?}") };
        assert_eq!(decision.user.as_deref(), Some("42"), "a number is a user id too");
        assert_eq!(decision.subscribe.len(), 2, "the malformed pattern allows nothing");
        assert_eq!(kept, Some(Duration::from_secs(60)));
        let (_, kept) = parse_answer(StatusCode::OK, br#"{"user":"42"}"#, key);
        assert_eq!(kept, None, "no expires_in: not kept");
        assert!(matches!(parse_answer(StatusCode::OK, br#"{"user":["x"]}"#, key).0, Answer::Unavailable(_)));
        assert!(matches!(parse_answer(StatusCode::OK, b"yes", key).0, Answer::Unavailable(_)));
        let long = format!(r#"{{"user":"{}"}}"#, "x".repeat(MAX_USER_BYTES + 1));
        assert!(matches!(parse_answer(StatusCode::OK, long.as_bytes(), key).0, Answer::Unavailable(_)));
        let (answer, kept) = parse_answer(StatusCode::UNAUTHORIZED, br#"{"expires_in":30}"#, key);
        assert!(matches!(answer, Answer::Unauthenticated) && kept == Some(Duration::from_secs(30)));
        assert_eq!(parse_answer(StatusCode::UNAUTHORIZED, b"", key).1, None);
        assert!(matches!(
            parse_answer(StatusCode::FORBIDDEN, br#"{"expires_in":30}"#, key),
            (Answer::Forbidden, None)
        ));
        assert!(matches!(parse_answer(StatusCode::FOUND, b"", key).0, Answer::Unavailable(_)));
        // The application vouches for its own backend: not rate-limited.
        let (answer, _) = parse_answer(StatusCode::OK, br#"{"user":"feed","server":true}"#, key);
        let Answer::Allow(decision) = answer else { panic!("{answer:?}") };
        assert!(decision.server);
        let Answer::Allow(decision) = allowed_answer(key) else { panic!("an allow") };
        assert!(!decision.server, "a client unless the application says otherwise");
    }

    fn allowed_answer(key: Key) -> Answer {
        parse_answer(StatusCode::OK, br#"{"user":"42"}"#, key).0
    }

    #[test]
    fn the_question_carries_the_context_and_the_key_tells_credentials_apart() {
        let mut client = ClientInfo::default().with_ip(Some([203, 0, 113, 7].into()));
        client.cookie = Some(http::HeaderValue::from_static("sid=1"));
        client.user_agent = Some(http::HeaderValue::from_static("curl"));
        let question = Question {
            action: Action::Publish,
            topics: vec![TopicName::new("chat").unwrap()],
            token: None,
            transport: "ws",
            client: client.clone(),
        };
        let body: Value = serde_json::from_slice(&request_body(&question)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"action": "publish", "topics": ["chat"], "transport": "ws", "client_ip": "203.0.113.7",
                "headers": {"Cookie": "sid=1", "User-Agent": "curl"}})
        );
        let key = AuthProxy::key(&client, None);
        assert_eq!(key, AuthProxy::key(&client, None));
        assert_ne!(key, AuthProxy::key(&client, Some("")), "an empty token is not no token");
        let mut other = client.clone();
        other.cookie = Some(http::HeaderValue::from_static("sid=2"));
        assert_ne!(key, AuthProxy::key(&other, None));
    }
}
