//! The options of `pushgate serve`: one flag, one `PUSHGATE_*` variable and one key of the
//! `--config` TOML file per [`Config`] field, with [`Config::default`] as the single source of
//! the defaults shown in `--help` (except the demo, on by default here and off in the library);
//! and `pushgate db` ([`DbCommand`]).

mod db;
mod file;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use db::{DbCommand, DbError, InstallArgs, UninstallArgs};
pub use file::ConfigFileError;

use crate::config::{Config, Secret};

/// Where `pushgate serve` keeps the demo database unless told otherwise.
pub const DEFAULT_DEMO_DB: &str = "./pushgate-demo.db";

/// Events a second of `pushgate serve`'s demo ticker unless told otherwise.
pub const DEFAULT_DEMO_TICKER_RATE: u32 = 2;

/// How the `pushgate` command writes its logs to stderr.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, in colour on a terminal.
    #[default]
    Text,
    /// One JSON object a line (`timestamp`, `level`, `fields`, `target`, spans), for log
    /// collectors.
    Json,
}

/// `pushgate serve` options. Flags win over environment variables, which win over the
/// `--config` file, which wins over defaults ([`ServeArgs::with_file`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Read options from this TOML file: keys are the long option names in snake_case
    /// (`max_body_bytes = "2MiB"`, `sources = ["postgres://…"]`); flags and PUSHGATE_*
    /// variables win over it.
    #[arg(long, env = "PUSHGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration as TOML (source and Redis passwords hidden) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Log format on stderr: text, or json (one object a line).
    #[arg(long, env = "PUSHGATE_LOG_FORMAT", value_name = "FORMAT", value_enum,
          default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Address and port to listen on; use port 0 to let the OS pick one.
    #[arg(long, env = "PUSHGATE_LISTEN", value_name = "ADDR", default_value_t = Config::default().listen)]
    pub listen: SocketAddr,

    /// Largest publish body (e.g. 1048576, 512KiB, 1MiB); larger ones get 413.
    #[arg(long, env = "PUSHGATE_MAX_BODY_BYTES", value_name = "BYTES",
          default_value_t = Bytes(Config::default().max_body_bytes))]
    pub max_body_bytes: Bytes,

    /// Time a client has to send a publish body once its headers are in; slower ones get 408.
    #[arg(long, env = "PUSHGATE_BODY_READ_TIMEOUT", value_name = "DURATION",
          default_value_t = Seconds(Config::default().body_read_timeout))]
    pub body_read_timeout: Seconds,

    /// About how many bytes of events one poll or long-poll answer holds (at least one event;
    /// the cursor continues after a cut).
    #[arg(long, env = "PUSHGATE_MAX_ANSWER_BYTES", value_name = "BYTES",
          default_value_t = Bytes(Config::default().max_answer_bytes))]
    pub max_answer_bytes: Bytes,

    /// Long-poll wait when the request names no `timeout` (e.g. 25s, 1m).
    #[arg(long, env = "PUSHGATE_LONGPOLL_TIMEOUT", value_name = "DURATION",
          default_value_t = Seconds(Config::default().longpoll_timeout))]
    pub longpoll_timeout: Seconds,

    /// Longest long-poll wait, whatever the request asks.
    #[arg(long, env = "PUSHGATE_LONGPOLL_MAX_TIMEOUT", value_name = "DURATION",
          default_value_t = Seconds(Config::default().longpoll_max_timeout))]
    pub longpoll_max_timeout: Seconds,

    /// Interval of the SSE heartbeat comment.
    #[arg(long, env = "PUSHGATE_SSE_HEARTBEAT", value_name = "DURATION",
          default_value_t = Seconds(Config::default().sse_heartbeat))]
    pub sse_heartbeat: Seconds,

    /// Hold each SSE, WebSocket and long-poll subscriber's events this long after the first
    /// arrives, then write them together (e.g. 5ms; 0 = off, at most 1s): fewer writes, for
    /// up to this much added latency.
    #[arg(long, env = "PUSHGATE_COALESCE", value_name = "DURATION",
          default_value_t = Seconds(Config::default().coalesce))]
    pub coalesce: Seconds,

    /// Largest WebSocket message accepted from a client (close 1009 beyond).
    #[arg(long, env = "PUSHGATE_WS_MAX_MESSAGE_BYTES", value_name = "BYTES",
          default_value_t = Bytes(Config::default().ws_max_message_bytes))]
    pub ws_max_message_bytes: Bytes,

    /// Most open connections, WebSockets included; more are answered 503 and closed.
    #[arg(long, env = "PUSHGATE_MAX_CONNECTIONS", value_name = "N",
          default_value_t = Config::default().max_connections)]
    pub max_connections: usize,

    /// Most open connections from one IP address, WebSockets included; more are answered 429
    /// too_many_connections_from_ip and closed (0: no limit).
    #[arg(long, env = "PUSHGATE_MAX_CONNECTIONS_PER_IP", value_name = "N",
          default_value_t = Config::default().max_connections_per_ip)]
    pub max_connections_per_ip: usize,

    /// Publishes a second one client address (IPv6: one /64) may make on average, HTTP and
    /// WebSocket together over all its connections; more get 429 rate_limited or a
    /// rate_limited error frame (0: no limit).
    #[arg(long, env = "PUSHGATE_PUBLISH_RATE", value_name = "N",
          default_value_t = Config::default().publish_rate)]
    pub publish_rate: u32,

    /// Publishes one client address may make at once above --publish-rate.
    #[arg(long, env = "PUSHGATE_PUBLISH_BURST", value_name = "N",
          default_value_t = Config::default().publish_burst)]
    pub publish_burst: u32,

    /// Time a client has to send request headers; also the keep-alive idle limit.
    #[arg(long, env = "PUSHGATE_HEADER_READ_TIMEOUT", value_name = "DURATION",
          default_value_t = Seconds(Config::default().header_read_timeout))]
    pub header_read_timeout: Seconds,

    /// Close a connection with no bytes read or written for this long (0 disables); must
    /// exceed the long-poll maximum and twice the SSE heartbeat.
    #[arg(long, env = "PUSHGATE_IDLE_TIMEOUT", value_name = "DURATION",
          default_value_t = Seconds(Config::default().idle_timeout))]
    pub idle_timeout: Seconds,

    /// On shutdown, time open connections get to finish before they are cut.
    #[arg(long, env = "PUSHGATE_DRAIN_TIMEOUT", value_name = "DURATION",
          default_value_t = Seconds(Config::default().drain_timeout))]
    pub drain_timeout: Seconds,

    /// Most distinct topics one subscription or poll may name.
    #[arg(long, env = "PUSHGATE_MAX_TOPICS_PER_SUBSCRIPTION", value_name = "N",
          default_value_t = Config::default().max_topics_per_subscription)]
    pub max_topics_per_subscription: usize,

    /// Most topics held at once (with --redis: the retained topics of the whole cluster);
    /// publishing to one more is refused with 503 until idle topics are forgotten. Topics are
    /// made by publishing: subscribing to one takes no slot.
    #[arg(long, env = "PUSHGATE_MAX_TOPICS", value_name = "N",
          default_value_t = Config::default().max_topics)]
    pub max_topics: usize,

    /// Events kept per topic for resuming and `cursor=oldest`.
    #[arg(long, env = "PUSHGATE_HISTORY_EVENTS", value_name = "N",
          default_value_t = Config::default().history_events)]
    pub history_events: usize,

    /// How long events are kept for resuming (0: until evicted by count).
    #[arg(long, env = "PUSHGATE_HISTORY_AGE", value_name = "DURATION",
          default_value_t = Seconds(Config::default().history_age))]
    pub history_age: Seconds,

    /// Memory all history may take together (events of every topic, their cached encodings,
    /// idempotency keys; e.g. 128MiB); past it the oldest events of any topic go first.
    #[arg(long, env = "PUSHGATE_HISTORY_MAX_BYTES", value_name = "BYTES",
          default_value_t = Bytes(Config::default().history_max_bytes))]
    pub history_max_bytes: Bytes,

    /// Tail the outbox of this database into the hub: postgres://…, mysql://… (or mariadb://…),
    /// sqlite:PATH, prepared with `pushgate db install`. Repeat for more (in the variable:
    /// comma-separated). One that cannot connect retries and shows it on /healthz. The demo
    /// stays on unless --no-demo.
    #[arg(
        long = "source",
        env = "PUSHGATE_SOURCES",
        value_name = "URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub sources: Vec<String>,

    /// The demo's SQLite file, created if missing with the tables users and orders, tailed into
    /// the topics db.users and db.orders, and served as JSON at /demo/users and /demo/orders.
    #[arg(long, env = "PUSHGATE_DEMO_DB", value_name = "PATH", default_value = DEFAULT_DEMO_DB)]
    pub demo_db: PathBuf,

    /// No demo: no demo database, no /demo routes and no demo ticker (the demo is on by
    /// default, also with --source).
    #[arg(long, env = "PUSHGATE_NO_DEMO")]
    pub no_demo: bool,

    /// Events a second published to the topic demo.ticker for the live dashboard page
    /// (0 turns it off) [default: 2, or 0 with --no-demo].
    #[arg(long, env = "PUSHGATE_DEMO_TICKER_RATE", value_name = "N")]
    pub demo_ticker_rate: Option<u32>,

    /// Serve the pages at / from this directory, read at each request (for working on web/),
    /// instead of the copy compiled into the binary.
    #[arg(long, env = "PUSHGATE_WEB_DIR", value_name = "DIR")]
    pub web_dir: Option<PathBuf>,

    /// Share topics with the other gateways using this Redis (redis://host:port, or with a
    /// password redis://:PASSWORD@host:port):
    /// positions, history and cursors live in Redis, so any node serves any client. Without
    /// it, history is in this process's memory. Redis must be reachable at start-up.
    #[arg(long, env = "PUSHGATE_REDIS", value_name = "URL", hide_env_values = true)]
    pub redis: Option<String>,

    // Access control. Auth is on with a JWT secret or an admin key, off (all allowed) without.
    /// HMAC secret (HS256) that signs client tokens: JWTs with `exp` and `subscribe`/`publish`
    /// topic patterns. Turns auth on. Prefer --jwt-secret-file or the variable: flags are
    /// visible to other users of the machine.
    #[arg(
        long,
        env = "PUSHGATE_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_secret_file"
    )]
    pub jwt_secret: Option<Secret>,

    /// Read the JWT secret from this file (one line; a final newline is dropped).
    #[arg(long, env = "PUSHGATE_JWT_SECRET_FILE", value_name = "FILE")]
    pub jwt_secret_file: Option<PathBuf>,

    /// How long after its `exp` a token is still accepted (clock skew).
    #[arg(long, env = "PUSHGATE_JWT_LEEWAY", value_name = "DURATION",
          default_value_t = Seconds(Config::default().jwt_leeway))]
    pub jwt_leeway: Seconds,

    /// Key the application's servers send as `Authorization: Bearer <key>` to publish on any
    /// topic through POST /v1/publish. Turns auth on.
    #[arg(long, env = "PUSHGATE_ADMIN_KEY", value_name = "KEY", hide_env_values = true)]
    pub admin_key: Option<Secret>,

    /// With auth on, a topic pattern anyone may subscribe to (`news`, `news.*`, `*`). Repeat
    /// for more (in the variable: comma-separated).
    #[arg(long, env = "PUSHGATE_ANONYMOUS_SUBSCRIBE", value_name = "PATTERN", value_delimiter = ',')]
    pub anonymous_subscribe: Vec<String>,

    /// With auth on, a topic pattern anyone may publish on. Repeatable.
    #[arg(long, env = "PUSHGATE_ANONYMOUS_PUBLISH", value_name = "PATTERN", value_delimiter = ',')]
    pub anonymous_publish: Vec<String>,

    /// A web origin (`https://app.example`) whose pages may open WebSockets; `*` any.
    /// Repeatable. Default: only pages from the gateway's own host and port.
    #[arg(long, env = "PUSHGATE_ALLOWED_ORIGINS", value_name = "ORIGIN", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// A web origin allowed to poll, stream and publish over HTTP from scripts (CORS); `*` any.
    /// Repeatable. Default: none (no CORS headers).
    #[arg(long, env = "PUSHGATE_CORS_ORIGINS", value_name = "ORIGIN", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

impl From<ServeArgs> for Config {
    fn from(args: ServeArgs) -> Self {
        let demo_ticker_rate = args.demo_ticker_rate();
        Config::default()
            .with_listen(args.listen)
            .with_max_body_bytes(args.max_body_bytes.0)
            .with_body_read_timeout(args.body_read_timeout.0)
            .with_max_answer_bytes(args.max_answer_bytes.0)
            .with_longpoll_timeout(args.longpoll_timeout.0)
            .with_longpoll_max_timeout(args.longpoll_max_timeout.0)
            .with_sse_heartbeat(args.sse_heartbeat.0)
            .with_coalesce(args.coalesce.0)
            .with_ws_max_message_bytes(args.ws_max_message_bytes.0)
            .with_max_connections(args.max_connections)
            .with_max_connections_per_ip(args.max_connections_per_ip)
            .with_publish_rate(args.publish_rate)
            .with_publish_burst(args.publish_burst)
            .with_header_read_timeout(args.header_read_timeout.0)
            .with_idle_timeout(args.idle_timeout.0)
            .with_drain_timeout(args.drain_timeout.0)
            .with_max_topics_per_subscription(args.max_topics_per_subscription)
            .with_max_topics(args.max_topics)
            .with_history_events(args.history_events)
            .with_history_age(args.history_age.0)
            .with_history_max_bytes(args.history_max_bytes.0)
            .with_sources(args.sources)
            .with_demo_db((!args.no_demo).then_some(args.demo_db))
            .with_demo_ticker_rate(demo_ticker_rate)
            .with_web_dir(args.web_dir)
            .with_redis(args.redis)
            .with_jwt_secret(args.jwt_secret)
            .with_jwt_leeway(args.jwt_leeway.0)
            .with_admin_key(args.admin_key)
            .with_anonymous_subscribe(args.anonymous_subscribe)
            .with_anonymous_publish(args.anonymous_publish)
            .with_allowed_origins(args.allowed_origins)
            .with_cors_origins(args.cors_origins)
    }
}

impl ServeArgs {
    /// The demo ticker's rate: the one given, else the default with the demo and 0 without.
    fn demo_ticker_rate(&self) -> u32 {
        self.demo_ticker_rate.unwrap_or(if self.no_demo { 0 } else { DEFAULT_DEMO_TICKER_RATE })
    }
}

/// Why a command-line value is not a duration or a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a whole number with an optional unit ({units}), got {text:?}")]
pub struct UnitError {
    text: String,
    units: &'static str,
}

/// A duration on the command line: a whole number with an optional unit `ms`, `s` (the
/// default), `m` or `h`.
///
/// ```
/// use pushgate::cli::Seconds;
/// use std::time::Duration;
///
/// assert_eq!("25".parse::<Seconds>()?.0, Duration::from_secs(25));
/// assert_eq!("500ms".parse::<Seconds>()?.0, Duration::from_millis(500));
/// assert_eq!("2m".parse::<Seconds>()?.to_string(), "2m");
/// assert!("soon".parse::<Seconds>().is_err());
/// # Ok::<(), pushgate::cli::UnitError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

const DURATION_UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];

impl FromStr for Seconds {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let millis = parse_with_units(text, &DURATION_UNITS, 1000)
            .ok_or_else(|| UnitError { text: text.to_owned(), units: "ms, s, m, h" })?;
        Ok(Self(Duration::from_millis(millis)))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        write_with_units(f, millis, &DURATION_UNITS, "s")
    }
}

/// A size on the command line: a whole number of bytes with an optional unit `KiB` or `MiB`.
///
/// ```
/// use pushgate::cli::Bytes;
///
/// assert_eq!("65536".parse::<Bytes>()?.0, 65536);
/// assert_eq!("64KiB".parse::<Bytes>()?.0, 65536);
/// assert_eq!(Bytes(1 << 20).to_string(), "1MiB");
/// # Ok::<(), pushgate::cli::UnitError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub usize);

const SIZE_UNITS: [(&str, u64); 3] = [("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)];

impl FromStr for Bytes {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_with_units(text, &SIZE_UNITS, 1)
            .and_then(|n| usize::try_from(n).ok())
            .map(Self)
            .ok_or_else(|| UnitError { text: text.to_owned(), units: "B, KiB, MiB" })
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_with_units(f, self.0 as u64, &SIZE_UNITS, "")
    }
}

/// Durations and sizes are written to a configuration file as the flags take them ("25s").
impl serde::Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Reads a string with the flags' units, or a bare non-negative integer (seconds, bytes).
struct UnitVisitor<T>(std::marker::PhantomData<T>);

impl<T> serde::de::Visitor<'_> for UnitVisitor<T>
where
    T: FromStr<Err = UnitError>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number, or a string such as \"25s\" or \"1MiB\"")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<T, E> {
        self.visit_str(&n.to_string())
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<T, E> {
        self.visit_str(&n.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UnitVisitor(std::marker::PhantomData))
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UnitVisitor(std::marker::PhantomData))
    }
}

/// `text` as a number times its unit's factor (`bare` without a unit); `None` if malformed.
fn parse_with_units(text: &str, units: &[(&str, u64)], bare: u64) -> Option<u64> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" => bare,
        unit => units.iter().find(|(name, _)| *name == unit)?.1,
    };
    number.checked_mul(factor)
}

/// Writes `value` in the largest unit that divides it exactly (`zero_unit` after a zero).
fn write_with_units(
    f: &mut fmt::Formatter<'_>,
    value: u64,
    units: &[(&str, u64)],
    zero_unit: &str,
) -> fmt::Result {
    if value == 0 {
        return write!(f, "0{zero_unit}");
    }
    let (name, factor) =
        units.iter().find(|(_, factor)| value.is_multiple_of(*factor)).copied().unwrap_or(("", 1));
    let name = if name == "B" { "" } else { name };
    write!(f, "{}{name}", value / factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn the_answer_budget_and_body_deadline_reach_the_config() {
        use clap::Parser as _;
        let args = ["pushgate", "--max-answer-bytes", "2MiB", "--body-read-timeout", "1500ms"];
        let config = Config::from(Command::try_parse_from(args).expect("valid options").serve);
        assert_eq!(config.max_answer_bytes, 2 << 20);
        assert_eq!(config.body_read_timeout, Duration::from_millis(1500));
        let defaults = Config::from(Command::try_parse_from(["pushgate"]).expect("no options").serve);
        assert_eq!(
            defaults,
            Config::default()
                .with_demo_db(Some(DEFAULT_DEMO_DB.into()))
                .with_demo_ticker_rate(DEFAULT_DEMO_TICKER_RATE)
        );
    }

    #[test]
    fn sources_repeat_and_the_demo_can_be_turned_off() {
        use clap::Parser as _;
        let args =
            ["pushgate", "--source", "sqlite:a.db", "--source", "mysql://h/db,postgres://h/db", "--no-demo"];
        let config = Config::from(Command::try_parse_from(args).expect("valid options").serve);
        assert_eq!(config.sources, ["sqlite:a.db", "mysql://h/db", "postgres://h/db"]);
        assert_eq!(config.demo_db, None);
        let args = ["pushgate", "--demo-db", "/tmp/d.db"];
        let config = Config::from(Command::try_parse_from(args).expect("valid options").serve);
        assert_eq!(config.demo_db, Some(PathBuf::from("/tmp/d.db")));
    }

    #[test]
    fn the_ticker_follows_the_demo_unless_given_a_rate() {
        use clap::Parser as _;
        let rate = |args: &[&str]| {
            let args = std::iter::once("pushgate").chain(args.iter().copied());
            Config::from(Command::try_parse_from(args).expect("valid options").serve).demo_ticker_rate
        };
        assert_eq!(rate(&[]), DEFAULT_DEMO_TICKER_RATE);
        assert_eq!(rate(&["--demo-ticker-rate", "0"]), 0);
        assert_eq!(rate(&["--demo-ticker-rate", "20"]), 20);
        assert_eq!(rate(&["--no-demo"]), 0);
        assert_eq!(rate(&["--no-demo", "--demo-ticker-rate", "5"]), 5);
        let args = ["pushgate", "--web-dir", "web"];
        let config = Config::from(Command::try_parse_from(args).expect("valid options").serve);
        assert_eq!(config.web_dir, Some(PathBuf::from("web")));
    }

    #[test]
    fn redis_is_off_unless_given() {
        use clap::Parser as _;
        let parse = |argv: &[&str]| Config::from(Command::try_parse_from(argv).unwrap().serve);
        assert_eq!(parse(&["pushgate"]).redis, None);
        let config = parse(&["pushgate", "--redis", "redis://:pw@127.0.0.1:6380/2"]);
        assert_eq!(config.redis.as_deref(), Some("redis://:pw@127.0.0.1:6380/2"));
        assert!(config.validate().is_ok());
        let bad = parse(&["pushgate", "--redis", "http://:secret@h"]).validate().unwrap_err().to_string();
        assert!(bad.contains("redis url") && !bad.contains("secret"), "{bad}");
    }

    #[test]
    fn the_log_format_is_text_unless_asked() {
        use clap::Parser as _;
        let format = |args: &[&str]| {
            let args = std::iter::once("pushgate").chain(args.iter().copied());
            Command::try_parse_from(args).map(|command| command.serve.log_format)
        };
        assert_eq!(format(&[]).ok(), Some(LogFormat::Text));
        assert_eq!(format(&["--log-format", "json"]).ok(), Some(LogFormat::Json));
        assert_eq!(format(&["--log-format", "text"]).ok(), Some(LogFormat::Text));
        assert!(format(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn access_options_reach_the_config() {
        use clap::Parser as _;
        let args = [
            "pushgate",
            "--jwt-secret",
            "s3cr3t",
            "--admin-key",
            "k3y",
            "--anonymous-subscribe",
            "news.*",
            "--anonymous-subscribe",
            "public",
            "--anonymous-publish",
            "guestbook",
            "--allowed-origins",
            "https://a.example,https://b.example",
            "--cors-origins",
            "*",
            "--jwt-leeway",
            "0s",
        ];
        let config = Config::from(Command::try_parse_from(args).expect("valid options").serve);
        assert_eq!(config.jwt_secret.as_ref().map(Secret::expose), Some("s3cr3t"));
        assert_eq!(config.admin_key.as_ref().map(Secret::expose), Some("k3y"));
        assert_eq!(config.anonymous_subscribe, ["news.*", "public"]);
        assert_eq!(config.anonymous_publish, ["guestbook"]);
        assert_eq!(config.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(config.cors_origins, ["*"]);
        assert_eq!(config.jwt_leeway, Duration::ZERO);
        assert!(config.auth_enabled());
        let both = ["pushgate", "--jwt-secret", "a", "--jwt-secret-file", "/tmp/s"];
        assert!(Command::try_parse_from(both).is_err());
    }

    #[test]
    fn units_round_trip() {
        for text in ["0s", "25s", "2m", "1h", "1500ms", "90s"] {
            assert_eq!(text.parse::<Seconds>().map(|s| s.to_string()).as_deref(), Ok(text));
        }
        for text in ["0", "1MiB", "64KiB", "1000"] {
            assert_eq!(text.parse::<Bytes>().map(|s| s.to_string()).as_deref(), Ok(text));
        }
        for bad in ["", "s", "-1", "1.5s", "10 parsecs", "99999999999999999999h"] {
            assert!(bad.parse::<Seconds>().is_err(), "{bad:?}");
        }
    }
}
