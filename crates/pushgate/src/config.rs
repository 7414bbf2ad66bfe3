//! The gateway's settings: one plain struct with defaults, checked once before serving.
//!
//! The command line ([`crate::cli`]) and tests build a [`Config`]; [`crate::app`] and
//! [`crate::serve_on`] read it. Nothing else in the process reads configuration.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pushgate_auth::{JwtAuth, TopicPattern};
use pushgate_http::Authorize;
use pushgate_hub::{HistoryLimit, Hub, HubBuilder};
use pushgate_redis::{RedisOptions, RedisState, RedisStorage};
use pushgate_sources::{Source, SourceConfig};
use pushgate_ws::AllowedOrigins;

/// `url` with its password hidden, for logs, errors and `--print-config`.
pub(crate) fn redact_url(url: &str) -> String {
    SourceConfig::new(url).url_redacted()
}

/// How the gateway is set up.
///
/// Start from [`Config::default`] and change what you need with the `with_*` methods, so new
/// settings can be added without breaking callers:
///
/// ```
/// use std::net::{Ipv4Addr, SocketAddr};
/// use std::time::Duration;
///
/// let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9000));
/// let config = pushgate::Config::default()
///     .with_listen(listen)
///     .with_header_read_timeout(Duration::from_secs(5));
/// assert_eq!(config.listen, listen);
/// assert_eq!(config.max_connections, 10_000);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The address [`serve`](crate::serve) binds to. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest `POST /v1/publish/{topic}` body; larger ones get `413 too_large`. Default 1 MiB.
    /// It also bounds an event's data in the hub, and so the WebSocket write buffer (see
    /// [`ws_max_write_buffer_bytes`](Config::ws_max_write_buffer_bytes)).
    pub max_body_bytes: usize,
    /// How long a client may take to send a publish body once its headers are in; a slower one
    /// gets `408 request_timeout` and the connection is closed. Default 10 s.
    pub body_read_timeout: Duration,
    /// About how many bytes of events one short- or long-poll answer holds (always at least one
    /// event; the cursor continues after a cut). Default 4 MiB.
    pub max_answer_bytes: usize,
    /// How long a long poll that names no `timeout` is held. Default 25 s.
    pub longpoll_timeout: Duration,
    /// The longest a long poll is held, whatever it asks. Default 120 s.
    pub longpoll_max_timeout: Duration,
    /// Interval of the SSE `: hb` comment that keeps idle streams open. Default 15 s.
    pub sse_heartbeat: Duration,
    /// The delivery coalescing window of SSE, WebSocket and long poll: a subscriber's events
    /// are held this long after the first arrives and then written together (one write, one
    /// long-poll answer; a window that gathered more than a batch takes a few). Trades up to
    /// this much latency for fewer writes. Zero (the default) writes each event as soon as it
    /// is read. At most 1 s.
    pub coalesce: Duration,
    /// Largest WebSocket message accepted from a client (close 1009 beyond). Default 64 KiB.
    pub ws_max_message_bytes: usize,
    /// Most bytes a WebSocket connection may hold unsent while its peer is not reading. An
    /// event frame larger than this closes every WebSocket with 1011, so it must hold two of
    /// the largest events: at least `2 × max_body_bytes + 64 KiB`, which is what `None`
    /// (the default) uses, and never less than the WebSocket transport's own default
    /// (1 MiB + 64 KiB). See [`Config::ws_write_buffer_cap`].
    pub ws_max_write_buffer_bytes: Option<usize>,
    /// Most open connections (WebSockets included). Connections beyond it are answered
    /// `503 overloaded` and closed. Default 10,000.
    pub max_connections: usize,
    /// Most open connections from one IP address (WebSockets included); connections beyond it
    /// are answered `429 too_many_connections_from_ip` and closed. Zero turns the limit off
    /// (for load tests from one host, or behind a proxy that connects from one address).
    /// Default 1,024.
    pub max_connections_per_ip: usize,
    /// Publishes a second one client address (IPv6: one /64) may make on average, through
    /// `POST /v1/publish` and WebSocket `publish` frames together, over all its connections
    /// (reconnecting brings no fresh burst); beyond it a publish is refused
    /// with `429 rate_limited` (`Retry-After`) or a `rate_limited` error frame. Zero turns the
    /// limit off. Publishes from inside the process (database sources, the demo) are never
    /// limited. Default 100.
    pub publish_rate: u32,
    /// Publishes one client address may make at once above [`publish_rate`](Config::publish_rate)
    /// (the token bucket's size). Default 200.
    pub publish_burst: u32,
    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may wait for its next request. Default 10 s.
    pub header_read_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed (a peer that
    /// stopped reading, a half-open TCP connection), after one to two idle timeouts of silence.
    /// Must exceed the long-poll maximum and twice the SSE heartbeat, the longest silences on
    /// purpose; zero disables it. WebSockets are kept alive
    /// by their own pings instead. Default 300 s.
    pub idle_timeout: Duration,
    /// On shutdown, how long open connections get to finish before they are cut. Default 10 s.
    pub drain_timeout: Duration,
    /// TCP keepalive on accepted connections: idle time before the first probe; zero leaves
    /// keepalive off. With the interval and probe count it finds peers that vanished without
    /// a word (a crashed host, a dropped NAT mapping) on connections that are silent on
    /// purpose. Default 30 s.
    pub tcp_keepalive_idle: Duration,
    /// TCP keepalive: time between unanswered probes. Default 10 s.
    pub tcp_keepalive_interval: Duration,
    /// TCP keepalive: unanswered probes before the connection is dropped. Default 3.
    pub tcp_keepalive_retries: u32,
    /// `TCP_USER_TIMEOUT` on accepted connections (Linux): how long sent data may stay
    /// unacknowledged before the connection is dropped, so a dead peer does not hold its
    /// buffers for the minutes of the system's retransmission limit; zero keeps the system
    /// default. Default 30 s.
    pub tcp_user_timeout: Duration,
    /// Most distinct topics one subscription or poll may name. Default 100.
    pub max_topics_per_subscription: usize,
    /// Most topics the hub holds at once; publishing to one more is refused until idle topics
    /// are forgotten. Topics are made by publishing: naming a topic nobody published to (to
    /// subscribe, poll or read its presence) takes no slot. With [`redis`](Config::redis) it
    /// counts every topic this node holds, including those other nodes published to (all topics
    /// of the cluster that are still retained), not only the ones published here. Default
    /// 100,000.
    pub max_topics: usize,
    /// Events kept per topic for resuming and `cursor=oldest`. Default 1,000.
    pub history_events: usize,
    /// How long an event is kept for resuming; zero keeps events until evicted by count.
    /// Default 10 min.
    pub history_age: Duration,
    /// The memory all retained history may take together, every topic's events with their
    /// cached encodings and the idempotency keys; past it the oldest events of any topic are
    /// evicted first (their readers get a reset, or with Redis are read from its log). With
    /// [`redis`](Config::redis) it bounds this node's copy of the log. Default 128 MiB.
    pub history_max_bytes: usize,
    /// Databases whose outbox the gateway tails into the hub: `postgres://…`, `mysql://…` (or
    /// `mariadb://…`), `sqlite:PATH`, each prepared with `pushgate db install`. Each runs next
    /// to the server while it serves; one that cannot connect retries with backoff and shows its
    /// state on `/healthz`, and never stops the gateway. Default none.
    pub sources: Vec<String>,
    /// The demo's SQLite file. When set, [`serve_hub_on`](crate::serve_hub_on) creates it if
    /// missing with the tables `users` and `orders` and their triggers, tails it like a source,
    /// and serves the demo REST API under `/demo/`. Default `None` here, so embedders and tests
    /// get no demo unless they ask; the `pushgate` command turns it on
    /// (`./pushgate-demo.db`) unless given `--no-demo`.
    pub demo_db: Option<PathBuf>,
    /// Events a second the demo ticker publishes to the topic `demo.ticker` (event type `tick`,
    /// data `{"symbol","price","t"}`), which the live dashboard page draws; zero turns it off.
    /// It runs next to the server while it serves and stops when the hub closes. At most
    /// 1,000. Default 0 here, like [`demo_db`](Config::demo_db); the `pushgate` command
    /// publishes 2 a second unless given `--demo-ticker-rate 0` or `--no-demo`.
    pub demo_ticker_rate: u32,
    /// A directory to serve the pages from (at `/`, for paths no other route takes) instead of
    /// the copy of `web/` compiled into the binary; files are read at each request, so edits
    /// show on reload. Default `None`: the compiled-in pages.
    pub web_dir: Option<PathBuf>,
    /// A Redis URL (`redis://[:password@]host:port[/db]`) shared by several gateway nodes:
    /// positions, history and cursors then live in Redis, so an event published on any node
    /// reaches subscribers on every node and a client resumes on any node
    /// ([`pushgate_redis`]). [`serve`](crate::serve) and [`serve_on`](crate::serve_on) connect
    /// at start-up ([`Config::connect_hub`]) and refuse to start when Redis cannot be reached.
    /// Default `None`: the in-memory hub of one process.
    pub redis: Option<String>,

    // Access control (auth, WebSocket origins, CORS): see `docs/deployment.md`.
    /// The HMAC secret that signs client tokens (JWTs with `exp`, `subscribe` and `publish`
    /// claims; HS256). With it or an [`admin_key`](Config::admin_key) set, auth is on: a
    /// client may use only what its token or the anonymous patterns allow. With neither,
    /// everything is allowed, as without auth. Default `None`.
    pub jwt_secret: Option<Secret>,
    /// How long after its `exp` a token is still accepted (clock skew); streams opened with it
    /// end then. Default 5 s.
    pub jwt_leeway: Duration,
    /// A key the application's servers send as `Authorization: Bearer <key>` to publish on
    /// any topic. Default `None`.
    pub admin_key: Option<Secret>,
    /// Topic patterns (`news`, `news.*`, `*`) anyone may subscribe to when auth is on, token or
    /// not. Default none.
    pub anonymous_subscribe: Vec<String>,
    /// Topic patterns anyone may publish on when auth is on. Default none.
    pub anonymous_publish: Vec<String>,
    /// Web origins (`https://app.example`) whose pages may open a WebSocket; `*` allows any.
    /// Default none: only pages served from the gateway's own host and port.
    pub allowed_origins: Vec<String>,
    /// Web origins allowed to call the HTTP transports and the publish API from scripts
    /// (CORS); `*` allows any. Default none: no CORS headers, same-origin pages only.
    pub cors_origins: Vec<String>,
}

/// A secret setting (the JWT secret, the admin key): shown as `<redacted>` by `Debug`, so it
/// never reaches a log through the configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(text))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            max_body_bytes: 1 << 20,
            body_read_timeout: Duration::from_secs(10),
            max_answer_bytes: pushgate_http::DEFAULT_MAX_ANSWER_BYTES,
            longpoll_timeout: Duration::from_secs(25),
            longpoll_max_timeout: Duration::from_secs(120),
            sse_heartbeat: Duration::from_secs(15),
            coalesce: Duration::ZERO,
            ws_max_message_bytes: 64 << 10,
            ws_max_write_buffer_bytes: None,
            max_connections: 10_000,
            max_connections_per_ip: 1024,
            publish_rate: 100,
            publish_burst: 200,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(10),
            tcp_keepalive_idle: Duration::from_secs(30),
            tcp_keepalive_interval: Duration::from_secs(10),
            tcp_keepalive_retries: 3,
            tcp_user_timeout: Duration::from_secs(30),
            max_topics_per_subscription: 100,
            max_topics: 100_000,
            history_events: 1000,
            history_age: Duration::from_secs(600),
            history_max_bytes: pushgate_hub::DEFAULT_HISTORY_MAX_BYTES,
            sources: Vec::new(),
            demo_db: None,
            demo_ticker_rate: 0,
            web_dir: None,
            redis: None,
            jwt_secret: None,
            jwt_leeway: pushgate_auth::DEFAULT_LEEWAY,
            admin_key: None,
            anonymous_subscribe: Vec::new(),
            anonymous_publish: Vec::new(),
            allowed_origins: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

/// Why a [`Config`] cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting that must be positive is zero.
    #[error("{name} must be greater than zero")]
    Zero {
        /// The setting.
        name: &'static str,
    },
    /// `max_connections` is larger than the server can count.
    #[error("max_connections is {value}; at most {limit} are supported")]
    TooManyConnections {
        /// The configured value.
        value: usize,
        /// The largest value supported.
        limit: usize,
    },
    /// The long-poll default wait is longer than its maximum.
    #[error("the long-poll timeout ({default:?}) exceeds the long-poll maximum ({max:?})")]
    LongPollDefaultAboveMax {
        /// The default wait.
        default: Duration,
        /// The maximum wait.
        max: Duration,
    },
    /// The idle timeout would cut connections that are silent on purpose.
    #[error(
        "the idle timeout ({idle:?}) must exceed the long-poll maximum and twice the SSE heartbeat ({needed:?})"
    )]
    IdleTooShort {
        /// The configured idle timeout.
        idle: Duration,
        /// The longest silence it must allow.
        needed: Duration,
    },
    /// The WebSocket write buffer cannot hold two of the largest events.
    #[error(
        "the WebSocket write buffer ({value} bytes) must be at least {needed} bytes \
         (2 × max_body_bytes + 64 KiB), or events near the body limit close every WebSocket"
    )]
    WsWriteBufferTooSmall {
        /// The configured cap.
        value: usize,
        /// The smallest cap that holds two of the largest events.
        needed: usize,
    },
    /// A database source cannot be used: its URL names no supported database.
    #[error("source {url}: {reason}")]
    Source {
        /// The URL, password hidden.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The same database source is given twice; both would publish every change.
    #[error("source {url} is given twice; each would publish every change")]
    DuplicateSource {
        /// The URL, password hidden.
        url: String,
    },
    /// The demo database's path cannot be written as an SQLite URL (it is not UTF-8).
    #[error("the demo database path {path:?} is not valid UTF-8")]
    DemoPath {
        /// The path.
        path: PathBuf,
    },
    /// `max_body_bytes` is so large that the WebSocket write buffer it needs cannot be counted.
    #[error("max_body_bytes is {value}; at most {limit} is supported")]
    BodyLimitTooLarge {
        /// The configured value.
        value: usize,
        /// The largest value supported.
        limit: usize,
    },
    /// The coalescing window is longer than the most allowed.
    #[error("coalesce is {value:?}; at most {limit:?} is allowed (a window is a few milliseconds)")]
    CoalesceTooLong {
        /// The configured window.
        value: Duration,
        /// The longest window allowed.
        limit: Duration,
    },
    /// The demo ticker's rate is above the most it may publish.
    #[error("demo_ticker_rate is {value} events a second; at most {limit} are supported")]
    TickerRateTooHigh {
        /// The configured rate.
        value: u32,
        /// The largest rate supported.
        limit: u32,
    },
    /// The directory to serve the pages from is not a directory.
    #[error("the web directory {path:?} is not a directory")]
    WebDir {
        /// The path.
        path: PathBuf,
    },
    /// The Redis URL cannot be used.
    #[error("redis url {url}: {reason}")]
    Redis {
        /// The URL, password hidden.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The JWT secret or the admin key is empty.
    #[error("{name} is empty")]
    EmptySecret {
        /// The setting.
        name: &'static str,
    },
    /// An anonymous topic pattern is malformed.
    #[error("{name}: {source}")]
    Pattern {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        #[source]
        source: pushgate_auth::InvalidPattern,
    },
    /// An origin is not `scheme://host[:port]` (or `*`).
    #[error("{name}: {source}")]
    Origin {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        #[source]
        source: pushgate_ws::InvalidOrigin,
    },
}

/// Every pattern of `list` parses.
fn patterns(name: &'static str, list: &[String]) -> Result<(), ConfigError> {
    for pattern in list {
        pattern.parse::<TopicPattern>().map_err(|source| ConfigError::Pattern { name, source })?;
    }
    Ok(())
}

/// The WebSocket transport's default write-buffer cap (`WsConfig::max_write_buffer_size`):
/// one default-sized event behind a full write buffer. The gateway never goes below it.
const WS_DEFAULT_MAX_WRITE_BUFFER: usize = (1 << 20) + (64 << 10);
/// Room for a frame's envelope and the write buffer's own batch, next to two events' data.
const WS_WRITE_BUFFER_SLACK: usize = 64 << 10;
/// The largest `max_body_bytes` whose write-buffer need can be counted.
const MAX_BODY_BYTES_LIMIT: usize = (usize::MAX - WS_WRITE_BUFFER_SLACK) / 2;

/// The demo ticker's fastest rate, events a second: a demo, not a load generator.
const MAX_TICKER_RATE: u32 = 1000;

/// The longest coalescing window: it is latency added to every delivery, so anything longer
/// is a mistake (`1s` meant as `1ms`), not a trade-off.
const MAX_COALESCE: Duration = Duration::from_secs(1);

/// The most connections the accept loop can count (its semaphore counts in `u32`).
const MAX_CONNECTIONS_LIMIT: usize = u32::MAX as usize;

macro_rules! setters {
    ($($(#[$doc:meta])* $method:ident => $field:ident: $ty:ty;)*) => {
        impl Config {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $method(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Replaces [`listen`](Config::listen).
    with_listen => listen: SocketAddr;
    /// Replaces [`max_body_bytes`](Config::max_body_bytes).
    with_max_body_bytes => max_body_bytes: usize;
    /// Replaces [`body_read_timeout`](Config::body_read_timeout).
    with_body_read_timeout => body_read_timeout: Duration;
    /// Replaces [`max_answer_bytes`](Config::max_answer_bytes).
    with_max_answer_bytes => max_answer_bytes: usize;
    /// Replaces [`longpoll_timeout`](Config::longpoll_timeout).
    with_longpoll_timeout => longpoll_timeout: Duration;
    /// Replaces [`longpoll_max_timeout`](Config::longpoll_max_timeout).
    with_longpoll_max_timeout => longpoll_max_timeout: Duration;
    /// Replaces [`sse_heartbeat`](Config::sse_heartbeat).
    with_sse_heartbeat => sse_heartbeat: Duration;
    /// Replaces [`coalesce`](Config::coalesce).
    with_coalesce => coalesce: Duration;
    /// Replaces [`ws_max_message_bytes`](Config::ws_max_message_bytes).
    with_ws_max_message_bytes => ws_max_message_bytes: usize;
    /// Replaces [`ws_max_write_buffer_bytes`](Config::ws_max_write_buffer_bytes).
    with_ws_max_write_buffer_bytes => ws_max_write_buffer_bytes: Option<usize>;
    /// Replaces [`max_connections`](Config::max_connections).
    with_max_connections => max_connections: usize;
    /// Replaces [`max_connections_per_ip`](Config::max_connections_per_ip).
    with_max_connections_per_ip => max_connections_per_ip: usize;
    /// Replaces [`publish_rate`](Config::publish_rate).
    with_publish_rate => publish_rate: u32;
    /// Replaces [`publish_burst`](Config::publish_burst).
    with_publish_burst => publish_burst: u32;
    /// Replaces [`header_read_timeout`](Config::header_read_timeout).
    with_header_read_timeout => header_read_timeout: Duration;
    /// Replaces [`idle_timeout`](Config::idle_timeout).
    with_idle_timeout => idle_timeout: Duration;
    /// Replaces [`drain_timeout`](Config::drain_timeout).
    with_drain_timeout => drain_timeout: Duration;
    /// Replaces [`tcp_keepalive_idle`](Config::tcp_keepalive_idle).
    with_tcp_keepalive_idle => tcp_keepalive_idle: Duration;
    /// Replaces [`tcp_keepalive_interval`](Config::tcp_keepalive_interval).
    with_tcp_keepalive_interval => tcp_keepalive_interval: Duration;
    /// Replaces [`tcp_keepalive_retries`](Config::tcp_keepalive_retries).
    with_tcp_keepalive_retries => tcp_keepalive_retries: u32;
    /// Replaces [`tcp_user_timeout`](Config::tcp_user_timeout).
    with_tcp_user_timeout => tcp_user_timeout: Duration;
    /// Replaces [`max_topics_per_subscription`](Config::max_topics_per_subscription).
    with_max_topics_per_subscription => max_topics_per_subscription: usize;
    /// Replaces [`max_topics`](Config::max_topics).
    with_max_topics => max_topics: usize;
    /// Replaces [`history_events`](Config::history_events).
    with_history_events => history_events: usize;
    /// Replaces [`history_age`](Config::history_age).
    with_history_age => history_age: Duration;
    /// Replaces [`history_max_bytes`](Config::history_max_bytes).
    with_history_max_bytes => history_max_bytes: usize;
    /// Replaces [`sources`](Config::sources).
    with_sources => sources: Vec<String>;
    /// Replaces [`demo_db`](Config::demo_db).
    with_demo_db => demo_db: Option<PathBuf>;
    /// Replaces [`demo_ticker_rate`](Config::demo_ticker_rate).
    with_demo_ticker_rate => demo_ticker_rate: u32;
    /// Replaces [`web_dir`](Config::web_dir).
    with_web_dir => web_dir: Option<PathBuf>;
    /// Replaces [`redis`](Config::redis).
    with_redis => redis: Option<String>;
    /// Replaces [`jwt_secret`](Config::jwt_secret).
    with_jwt_secret => jwt_secret: Option<Secret>;
    /// Replaces [`jwt_leeway`](Config::jwt_leeway).
    with_jwt_leeway => jwt_leeway: Duration;
    /// Replaces [`admin_key`](Config::admin_key).
    with_admin_key => admin_key: Option<Secret>;
    /// Replaces [`anonymous_subscribe`](Config::anonymous_subscribe).
    with_anonymous_subscribe => anonymous_subscribe: Vec<String>;
    /// Replaces [`anonymous_publish`](Config::anonymous_publish).
    with_anonymous_publish => anonymous_publish: Vec<String>;
    /// Replaces [`allowed_origins`](Config::allowed_origins).
    with_allowed_origins => allowed_origins: Vec<String>;
    /// Replaces [`cors_origins`](Config::cors_origins).
    with_cors_origins => cors_origins: Vec<String>;
}

impl Config {
    /// Checks that the settings make sense together; [`serve_on`](crate::serve_on) refuses to
    /// start otherwise.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pushgate::{Config, ConfigError};
    ///
    /// let config = Config::default().with_idle_timeout(Duration::from_secs(60));
    /// assert!(matches!(config.validate(), Err(ConfigError::IdleTooShort { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes == 0),
            ("body_read_timeout", self.body_read_timeout.is_zero()),
            ("max_answer_bytes", self.max_answer_bytes == 0),
            ("ws_max_message_bytes", self.ws_max_message_bytes == 0),
            ("max_connections", self.max_connections == 0),
            ("header_read_timeout", self.header_read_timeout.is_zero()),
            ("sse_heartbeat", self.sse_heartbeat.is_zero()),
            ("max_topics_per_subscription", self.max_topics_per_subscription == 0),
            ("max_topics", self.max_topics == 0),
            ("history_events", self.history_events == 0),
            ("history_max_bytes", self.history_max_bytes == 0),
        ];
        if let Some((name, _)) = positive.into_iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::Zero { name });
        }
        if !self.tcp_keepalive_idle.is_zero() {
            let keepalive = [
                ("tcp_keepalive_interval", self.tcp_keepalive_interval.is_zero()),
                ("tcp_keepalive_retries", self.tcp_keepalive_retries == 0),
            ];
            if let Some((name, _)) = keepalive.into_iter().find(|(_, zero)| *zero) {
                return Err(ConfigError::Zero { name });
            }
        }
        if self.max_body_bytes > MAX_BODY_BYTES_LIMIT {
            return Err(ConfigError::BodyLimitTooLarge {
                value: self.max_body_bytes,
                limit: MAX_BODY_BYTES_LIMIT,
            });
        }
        let needed = self.ws_write_buffer_need();
        if let Some(value) = self.ws_max_write_buffer_bytes
            && value < needed
        {
            return Err(ConfigError::WsWriteBufferTooSmall { value, needed });
        }
        if self.max_connections > MAX_CONNECTIONS_LIMIT {
            return Err(ConfigError::TooManyConnections {
                value: self.max_connections,
                limit: MAX_CONNECTIONS_LIMIT,
            });
        }
        if self.publish_rate > 0 && self.publish_burst == 0 {
            return Err(ConfigError::Zero { name: "publish_burst" });
        }
        if self.coalesce > MAX_COALESCE {
            return Err(ConfigError::CoalesceTooLong { value: self.coalesce, limit: MAX_COALESCE });
        }
        if self.demo_ticker_rate > MAX_TICKER_RATE {
            return Err(ConfigError::TickerRateTooHigh {
                value: self.demo_ticker_rate,
                limit: MAX_TICKER_RATE,
            });
        }
        if let Some(path) = &self.web_dir
            && !path.is_dir()
        {
            return Err(ConfigError::WebDir { path: path.clone() });
        }
        if self.longpoll_timeout > self.longpoll_max_timeout {
            return Err(ConfigError::LongPollDefaultAboveMax {
                default: self.longpoll_timeout,
                max: self.longpoll_max_timeout,
            });
        }
        // An SSE stream is silent for up to twice its heartbeat interval (see `SseConfig::heartbeat`).
        let needed = self.longpoll_max_timeout.max(self.sse_heartbeat.saturating_mul(2));
        if !self.idle_timeout.is_zero() && self.idle_timeout <= needed {
            return Err(ConfigError::IdleTooShort { idle: self.idle_timeout, needed });
        }
        if let Some(url) = &self.redis
            && let Err(err) = pushgate_redis::check_url(url)
        {
            return Err(ConfigError::Redis { url: redact_url(url), reason: err.to_string() });
        }
        self.validate_sources()?;
        self.validate_access()
    }

    /// Secrets are not empty; patterns and origins parse.
    fn validate_access(&self) -> Result<(), ConfigError> {
        for (name, secret) in [("jwt_secret", &self.jwt_secret), ("admin_key", &self.admin_key)] {
            if secret.as_ref().is_some_and(|secret| secret.expose().is_empty()) {
                return Err(ConfigError::EmptySecret { name });
            }
        }
        patterns("anonymous_subscribe", &self.anonymous_subscribe)?;
        patterns("anonymous_publish", &self.anonymous_publish)?;
        self.ws_origins()?;
        for origin in self.cors_origins.iter().filter(|origin| origin.trim() != "*") {
            let parsed = origin.trim().parse::<pushgate_ws::Origin>();
            parsed.map_err(|source| ConfigError::Origin { name: "cors_origins", source })?;
        }
        Ok(())
    }

    /// Whether auth is on: a JWT secret or an admin key is set.
    pub fn auth_enabled(&self) -> bool {
        self.jwt_secret.is_some() || self.admin_key.is_some()
    }

    /// The access policy the transports and the publish API check: everything allowed when
    /// [auth is off](Config::auth_enabled), otherwise a [`JwtAuth`] with the secret, the
    /// admin key and the anonymous patterns. Call it on a [validated](Config::validate)
    /// configuration: malformed patterns are skipped here.
    pub fn authorizer(&self) -> Arc<dyn Authorize> {
        if !self.auth_enabled() {
            return pushgate_http::allow_all();
        }
        let mut auth = match &self.jwt_secret {
            Some(secret) => JwtAuth::new(secret.expose()).unwrap_or_else(|_| JwtAuth::without_tokens()),
            None => JwtAuth::without_tokens(),
        };
        if let Some(key) = &self.admin_key {
            auth = auth.admin_key(key.expose());
        }
        let parsed =
            |list: &[String]| list.iter().filter_map(|p| p.parse::<TopicPattern>().ok()).collect::<Vec<_>>();
        Arc::new(
            auth.leeway(self.jwt_leeway)
                .anonymous_subscribe(parsed(&self.anonymous_subscribe))
                .anonymous_publish(parsed(&self.anonymous_publish)),
        )
    }

    /// The WebSocket origin policy of [`allowed_origins`](Config::allowed_origins).
    pub(crate) fn ws_origins(&self) -> Result<AllowedOrigins, ConfigError> {
        AllowedOrigins::list(&self.allowed_origins)
            .map_err(|source| ConfigError::Origin { name: "allowed_origins", source })
    }

    /// Every source names a database compiled in, once; the demo path makes a URL.
    fn validate_sources(&self) -> Result<(), ConfigError> {
        for (i, url) in self.sources.iter().enumerate() {
            let config = SourceConfig::new(url.as_str());
            if let Err(err) = Source::new(config.clone()) {
                return Err(ConfigError::Source { url: config.url_redacted(), reason: err.to_string() });
            }
            if self.sources[..i].contains(url) {
                return Err(ConfigError::DuplicateSource { url: config.url_redacted() });
            }
        }
        if let Some(path) = &self.demo_db
            && crate::demo::sqlite_url(path).is_none()
        {
            return Err(ConfigError::DemoPath { path: path.clone() });
        }
        Ok(())
    }

    /// The WebSocket write-buffer cap the gateway uses: [`ws_max_write_buffer_bytes`] when
    /// set, else `2 × max_body_bytes + 64 KiB`, never below the transport's default of
    /// 1 MiB + 64 KiB. One event frame is its data (at most `max_body_bytes`, the hub's data
    /// limit) plus a small envelope, and the buffer must take a whole frame while the previous
    /// one may still be in it.
    ///
    /// [`ws_max_write_buffer_bytes`]: Config::ws_max_write_buffer_bytes
    ///
    /// ```
    /// let config = pushgate::Config::default().with_max_body_bytes(3 << 20);
    /// assert_eq!(config.ws_write_buffer_cap(), (6 << 20) + (64 << 10));
    /// assert_eq!(pushgate::Config::default().ws_write_buffer_cap(), (2 << 20) + (64 << 10));
    /// ```
    pub fn ws_write_buffer_cap(&self) -> usize {
        self.ws_max_write_buffer_bytes.unwrap_or_else(|| self.ws_write_buffer_need())
    }

    /// The smallest write-buffer cap that holds two of the largest event frames.
    fn ws_write_buffer_need(&self) -> usize {
        self.max_body_bytes
            .saturating_mul(2)
            .saturating_add(WS_WRITE_BUFFER_SLACK)
            .max(WS_DEFAULT_MAX_WRITE_BUFFER)
    }

    /// The publish rate of one connection, from [`publish_rate`](Config::publish_rate) and
    /// [`publish_burst`](Config::publish_burst).
    ///
    /// ```
    /// assert!(pushgate::Config::default().publish_rate().is_limited());
    /// assert!(!pushgate::Config::default().with_publish_rate(0).publish_rate().is_limited());
    /// ```
    pub fn publish_rate(&self) -> pushgate_http::PublishRate {
        pushgate_http::PublishRate::new(self.publish_rate, self.publish_burst)
    }

    /// A new hub with this configuration's history and limits.
    ///
    /// ```
    /// let hub = pushgate::Config::default().build_hub();
    /// assert_eq!(hub.stats().published, 0);
    /// ```
    pub fn build_hub(&self) -> Hub {
        self.hub_builder().history(self.history_limit()).history_max_bytes(self.history_max_bytes).build()
    }

    /// The hub [`serve`](crate::serve) and [`serve_on`](crate::serve_on) use: with
    /// [`redis`](Config::redis) set, one on a [`RedisStorage`] (connected, its epoch read and its
    /// retained log loaded), returned with the connection's state for `/readyz` and `/metrics`;
    /// else [`build_hub`](Self::build_hub)'s.
    ///
    /// # Errors
    /// [`ServeError::Redis`](crate::ServeError::Redis) when Redis cannot be reached or holds
    /// something unexpected.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate::ServeError> {
    /// let (hub, redis) = pushgate::Config::default().connect_hub().await?;
    /// assert!(redis.is_none());
    /// # let _ = hub; Ok(()) }
    /// ```
    pub async fn connect_hub(&self) -> Result<(Hub, Option<RedisState>), crate::ServeError> {
        let Some(url) = &self.redis else {
            return Ok((self.build_hub(), None));
        };
        let options = RedisOptions::default()
            .history(self.history_limit())
            .history_max_bytes(self.history_max_bytes)
            .max_topics(self.max_topics);
        let storage = RedisStorage::connect(url, options)
            .await
            .map_err(|source| crate::ServeError::Redis { url: redact_url(url), source })?;
        let state = storage.state();
        Ok((self.hub_builder().storage(Arc::new(storage)).build(), Some(state)))
    }

    fn history_limit(&self) -> HistoryLimit {
        let age = (!self.history_age.is_zero()).then_some(self.history_age);
        HistoryLimit::default().max_events(self.history_events).max_age(age)
    }

    fn hub_builder(&self) -> HubBuilder {
        Hub::builder()
            .max_topics(self.max_topics)
            .max_topics_per_subscription(self.max_topics_per_subscription)
            // A publish body holds the data and a little more, so the body limit bounds the
            // data too; the hub's own check catches data that grows when made compact.
            .max_data_bytes(self.max_body_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_protocol() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(config.ws_max_message_bytes, 64 * 1024);
        assert_eq!(config.max_answer_bytes, 4 << 20);
        assert_eq!(config.body_read_timeout, Duration::from_secs(10));
        assert_eq!(config.history_max_bytes, 128 << 20);
        assert_eq!(config.build_hub().stats().history_max_bytes, 128 << 20);
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        let base = Config::default();
        assert_eq!(
            base.clone().with_max_connections(0).validate(),
            Err(ConfigError::Zero { name: "max_connections" })
        );
        assert!(matches!(
            base.clone().with_longpoll_timeout(Duration::from_secs(200)).validate(),
            Err(ConfigError::LongPollDefaultAboveMax { .. })
        ));
        assert!(matches!(
            base.clone().with_coalesce(Duration::from_millis(1001)).validate(),
            Err(ConfigError::CoalesceTooLong { .. })
        ));
        assert_eq!(base.clone().with_coalesce(Duration::from_secs(1)).validate(), Ok(()));
        assert!(matches!(
            base.clone().with_idle_timeout(Duration::from_secs(120)).validate(),
            Err(ConfigError::IdleTooShort { .. })
        ));
        // A stream may be silent for up to twice its heartbeat interval.
        let slow_heartbeat = base.clone().with_sse_heartbeat(Duration::from_secs(100));
        assert_eq!(
            slow_heartbeat.clone().with_idle_timeout(Duration::from_secs(150)).validate(),
            Err(ConfigError::IdleTooShort {
                idle: Duration::from_secs(150),
                needed: Duration::from_secs(200)
            })
        );
        assert_eq!(slow_heartbeat.with_idle_timeout(Duration::from_secs(201)).validate(), Ok(()));
        assert_eq!(base.clone().with_idle_timeout(Duration::ZERO).validate(), Ok(()));
        assert_eq!(
            base.clone().with_body_read_timeout(Duration::ZERO).validate(),
            Err(ConfigError::Zero { name: "body_read_timeout" })
        );
        assert_eq!(
            base.clone().with_max_answer_bytes(0).validate(),
            Err(ConfigError::Zero { name: "max_answer_bytes" })
        );
        assert_eq!(
            base.clone().with_history_max_bytes(0).validate(),
            Err(ConfigError::Zero { name: "history_max_bytes" })
        );
        assert_eq!(
            base.clone().with_publish_burst(0).validate(),
            Err(ConfigError::Zero { name: "publish_burst" })
        );
        assert_eq!(base.clone().with_publish_rate(0).with_publish_burst(0).validate(), Ok(()));
        assert_eq!(base.clone().with_max_connections_per_ip(0).validate(), Ok(()));
        assert_eq!(
            base.clone().with_tcp_keepalive_retries(0).validate(),
            Err(ConfigError::Zero { name: "tcp_keepalive_retries" })
        );
        let no_keepalive = base.clone().with_tcp_keepalive_idle(Duration::ZERO);
        assert_eq!(no_keepalive.with_tcp_keepalive_retries(0).validate(), Ok(()));
        assert!(matches!(
            base.clone().with_max_body_bytes(usize::MAX).validate(),
            Err(ConfigError::BodyLimitTooLarge { .. })
        ));
        assert_eq!(base.clone().with_demo_ticker_rate(1000).validate(), Ok(()));
        assert_eq!(
            base.clone().with_demo_ticker_rate(1001).validate(),
            Err(ConfigError::TickerRateTooHigh { value: 1001, limit: 1000 })
        );
        let missing = PathBuf::from("/nonexistent/pushgate-web");
        assert_eq!(
            base.clone().with_web_dir(Some(missing.clone())).validate(),
            Err(ConfigError::WebDir { path: missing })
        );
    }

    #[test]
    fn access_settings_are_checked() {
        let base = Config::default();
        assert!(!base.auth_enabled());
        assert!(!base.authorizer().is_enforced());
        let on = base.clone().with_admin_key(Some(Secret::new("k")));
        assert!(on.auth_enabled() && on.authorizer().is_enforced());
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
    fn sources_must_name_a_known_database_once() {
        let base = Config::default();
        let ok = ["postgres://u:p@h/db", "mysql://h/db", "mariadb://h/db", "sqlite:/tmp/x.db"];
        let config = base.clone().with_sources(ok.map(String::from).to_vec());
        assert_eq!(config.validate(), Ok(()));

        let bad = base.clone().with_sources(vec!["oracle://u:secret@h/db".into()]);
        match bad.validate() {
            Err(ConfigError::Source { url, .. }) => assert_eq!(url, "oracle://u:***@h/db"),
            other => panic!("expected ConfigError::Source, got {other:?}"),
        }
        let twice = base.with_sources(vec!["mysql://u:secret@h/db".into(), "mysql://u:secret@h/db".into()]);
        assert_eq!(twice.validate(), Err(ConfigError::DuplicateSource { url: "mysql://u:***@h/db".into() }));
    }

    #[test]
    fn the_websocket_write_buffer_holds_two_of_the_largest_events() {
        let default = Config::default();
        assert_eq!(default.ws_write_buffer_cap(), 2 * (1 << 20) + (64 << 10));
        // Small bodies never take the cap below the transport's default.
        let small = Config::default().with_max_body_bytes(1000);
        assert_eq!(small.ws_write_buffer_cap(), WS_DEFAULT_MAX_WRITE_BUFFER);
        let large = Config::default().with_max_body_bytes(3 << 20);
        assert_eq!(large.ws_write_buffer_cap(), (6 << 20) + (64 << 10));

        let needed = (6 << 20) + (64 << 10);
        assert_eq!(
            large.clone().with_ws_max_write_buffer_bytes(Some(2 << 20)).validate(),
            Err(ConfigError::WsWriteBufferTooSmall { value: 2 << 20, needed })
        );
        let explicit = large.with_ws_max_write_buffer_bytes(Some(8 << 20));
        assert_eq!(explicit.validate(), Ok(()));
        assert_eq!(explicit.ws_write_buffer_cap(), 8 << 20);
    }
}
