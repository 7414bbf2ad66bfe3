//! Why a configuration cannot be served: one variant per kind of mistake, each message naming
//! the option.

use std::path::PathBuf;
use std::time::Duration;

/// Why a [`Config`](super::Config) cannot be served.
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
    /// The source lease timeout is shorter than the shortest allowed.
    #[error("source_lease_timeout is {value:?}; at least {min:?} is needed")]
    LeaseTimeoutTooShort {
        /// The configured timeout.
        value: std::time::Duration,
        /// The shortest allowed.
        min: std::time::Duration,
    },
    /// A duration is outside the range it may take.
    #[error("{name} is {value:?}; it must be from {:?} to {:?}", range.start(), range.end())]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: std::time::Duration,
        /// What it may be.
        range: std::ops::RangeInclusive<std::time::Duration>,
    },
    /// Only one of the Redis client certificate and its key is given.
    #[error("redis_client_cert and redis_client_key go together")]
    RedisClientIdentity,
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
    /// The demo was asked for, but this build has no SQLite driver.
    #[error(
        "the demo needs SQLite, and this pushgate was built without the `sqlite` feature (use --no-demo)"
    )]
    DemoUnavailable,
    /// An origin is not `scheme://host[:port]` (or `*`).
    #[error("{name}: {source}")]
    Origin {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        #[source]
        source: pushgate_ws::InvalidOrigin,
    },
    /// A user pattern (`user:{user}`) is malformed.
    #[error("{name}: {source}")]
    UserPattern {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        #[source]
        source: pushgate_auth::InvalidPattern,
    },
    /// A public key file cannot be read or holds no usable public key.
    #[error("jwt_public_keys {path:?}: {reason}")]
    PublicKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A URL of the access settings (`auth_proxy`, `jwks_url`) cannot be used.
    #[error("{name}: {source}")]
    AuthUrl {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        #[source]
        source: pushgate_auth::InvalidUrl,
    },
    /// The auth proxy cannot be set up.
    #[error(transparent)]
    Proxy(#[from] pushgate_auth::ProxyError),
    /// The access policy cannot be set up.
    #[error("auth: {0}")]
    Policy(#[from] pushgate_auth::PolicyError),
    /// A trusted proxy is neither a CIDR (`10.0.0.0/8`) nor an IP address.
    #[error("trusted_proxies: {value:?} is neither a CIDR such as 10.0.0.0/8 nor an IP address")]
    TrustedProxy {
        /// The value given.
        value: String,
        /// What the CIDR parser reported.
        #[source]
        source: ipnet::AddrParseError,
    },
}
