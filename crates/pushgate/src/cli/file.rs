//! `--config FILE`: the options of `pushgate serve` in a TOML file, and `--print-config`.
//!
//! A key is an option's long name in snake_case (`--max-body-bytes` is `max_body_bytes`,
//! `--source` is `sources`, a list); durations and sizes take the flags' units as strings
//! (`"25s"`, `"1MiB"`) or a bare number (seconds, bytes). An unknown key is an error, so a typo
//! does not silently leave a default in place.
//!
//! Secrets (`jwt_secret`, `admin_key`) may be in the file, but are better in the environment or,
//! for the JWT secret, in a file of their own (`jwt_secret_file`, read here too); `--print-config`
//! shows them as `<redacted>`.
//!
//! Precedence, highest first: flags, `PUSHGATE_*` environment variables, the file, defaults.
//! clap resolves the first two and the defaults; [`ServeArgs::with_file`] then replaces every
//! value that came from a default by the file's, when the file has one.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use pushgate_sources::SourceConfig;
use serde::{Deserialize, Serialize};

use super::{Bytes, LogFormat, Seconds, ServeArgs};
use crate::config::Secret;

/// Why the configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file cannot be read.
    #[error("cannot read the configuration file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// The file is not TOML, names an unknown option, or holds a value of the wrong kind.
    #[error("invalid configuration file {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what.
        #[source]
        source: toml::de::Error,
    },
    /// The effective configuration cannot be written as TOML.
    #[error("cannot write the configuration as TOML")]
    Print(#[from] toml::ser::Error),
    /// The JWT secret file cannot be read.
    #[error("cannot read the JWT secret file {}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
}

/// The options a configuration file may set; every one is optional.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body_bytes: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_read_timeout: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_answer_bytes: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    longpoll_timeout: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    longpoll_max_timeout: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sse_heartbeat: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coalesce: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ws_max_message_bytes: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections_per_ip: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_burst: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    header_read_timeout: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drain_timeout: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_topics_per_subscription: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_topics: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history_events: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history_age: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history_max_bytes: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    demo_db: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_demo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    demo_ticker_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<String>,
    // Access control; the secrets are printed as `<redacted>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt_secret_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt_leeway: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_subscribe: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_publish: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cors_origins: Option<Vec<String>>,
}

/// What `--print-config` shows for a secret that is set.
const REDACTED: &str = "<redacted>";

impl ConfigFile {
    fn read(path: &Path) -> Result<Self, ConfigFileError> {
        let text = fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|source| ConfigFileError::Parse { path: path.to_owned(), source })
    }
}

/// For each listed option the file sets, takes the file's value unless a flag or an environment
/// variable gave one. `plain` options hold the value itself, `optional` ones an `Option`.
macro_rules! take_from_file {
    ($args:ident, $file:ident, $given:ident; plain: $($plain:ident),*; optional: $($optional:ident),*) => {
        $(
            if let Some(value) = $file.$plain
                && !$given(stringify!($plain))
            {
                $args.$plain = value;
            }
        )*
        $(
            if let Some(value) = $file.$optional
                && !$given(stringify!($optional))
            {
                $args.$optional = Some(value);
            }
        )*
    };
}

impl ServeArgs {
    /// These options completed from `--config` (when given): each option that `matches` (the
    /// matches these arguments were parsed from) took from its default takes the file's value
    /// instead, when the file sets it. Flags and environment variables keep winning.
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Read`] or [`ConfigFileError::Parse`] for a file that cannot be read or
    /// used.
    /// Reads the JWT secret from `--jwt-secret-file` (or the file's `jwt_secret_file`) unless
    /// a secret was given directly.
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Read`] or [`ConfigFileError::Parse`] for a file that cannot be read or
    /// used, [`ConfigFileError::SecretFile`] for a secret file that cannot be read.
    pub fn with_file(mut self, matches: &ArgMatches) -> Result<Self, ConfigFileError> {
        let file = match self.config.clone() {
            Some(path) => ConfigFile::read(&path)?,
            None => ConfigFile::default(),
        };
        let given = |id: &str| {
            matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
        };
        let args = &mut self;
        take_from_file!(args, file, given;
            plain: listen, max_body_bytes, body_read_timeout, max_answer_bytes, longpoll_timeout,
                longpoll_max_timeout, sse_heartbeat, coalesce, ws_max_message_bytes, max_connections,
                max_connections_per_ip, publish_rate, publish_burst,
                header_read_timeout, idle_timeout, drain_timeout, max_topics_per_subscription,
                max_topics, history_events, history_age, history_max_bytes, sources, demo_db, no_demo,
                log_format;
            optional: demo_ticker_rate, web_dir, redis, jwt_secret_file
        );
        take_from_file!(args, file, given;
            plain: jwt_leeway, anonymous_subscribe, anonymous_publish, allowed_origins, cors_origins;
            optional:
        );
        for (id, value, into) in [
            ("jwt_secret", file.jwt_secret, &mut args.jwt_secret),
            ("admin_key", file.admin_key, &mut args.admin_key),
        ] {
            if let Some(value) = value
                && !given(id)
            {
                *into = Some(Secret::new(value));
            }
        }
        if args.jwt_secret.is_none()
            && let Some(path) = &args.jwt_secret_file
        {
            let text = fs::read_to_string(path)
                .map_err(|source| ConfigFileError::SecretFile { path: path.clone(), source })?;
            args.jwt_secret = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
        }
        Ok(self)
    }

    /// The effective configuration as a TOML file that `--config` accepts: every option, the
    /// demo ticker's rate resolved, the sources' and Redis's passwords hidden and the JWT secret
    /// and admin key shown as `<redacted>` (so the output is safe to log, but a file made from it
    /// needs the secrets put back).
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Print`] if a value cannot be written as TOML (a path that is not UTF-8).
    pub fn to_toml(&self) -> Result<String, ConfigFileError> {
        let file = ConfigFile {
            listen: Some(self.listen),
            max_body_bytes: Some(self.max_body_bytes),
            body_read_timeout: Some(self.body_read_timeout),
            max_answer_bytes: Some(self.max_answer_bytes),
            longpoll_timeout: Some(self.longpoll_timeout),
            longpoll_max_timeout: Some(self.longpoll_max_timeout),
            sse_heartbeat: Some(self.sse_heartbeat),
            coalesce: Some(self.coalesce),
            ws_max_message_bytes: Some(self.ws_max_message_bytes),
            max_connections: Some(self.max_connections),
            max_connections_per_ip: Some(self.max_connections_per_ip),
            publish_rate: Some(self.publish_rate),
            publish_burst: Some(self.publish_burst),
            header_read_timeout: Some(self.header_read_timeout),
            idle_timeout: Some(self.idle_timeout),
            drain_timeout: Some(self.drain_timeout),
            max_topics_per_subscription: Some(self.max_topics_per_subscription),
            max_topics: Some(self.max_topics),
            history_events: Some(self.history_events),
            history_age: Some(self.history_age),
            history_max_bytes: Some(self.history_max_bytes),
            sources: Some(
                self.sources.iter().map(|url| SourceConfig::new(url.as_str()).url_redacted()).collect(),
            ),
            demo_db: Some(self.demo_db.clone()),
            no_demo: Some(self.no_demo),
            demo_ticker_rate: Some(self.demo_ticker_rate()),
            web_dir: self.web_dir.clone(),
            log_format: Some(self.log_format),
            redis: self.redis.as_deref().map(crate::config::redact_url),
            jwt_secret: self.jwt_secret.as_ref().map(|_| REDACTED.to_owned()),
            // The secret read from it is in `jwt_secret`; naming the file again would
            // conflict with it.
            jwt_secret_file: None,
            jwt_leeway: Some(self.jwt_leeway),
            admin_key: self.admin_key.as_ref().map(|_| REDACTED.to_owned()),
            anonymous_subscribe: Some(self.anonymous_subscribe.clone()),
            anonymous_publish: Some(self.anonymous_publish.clone()),
            allowed_origins: Some(self.allowed_origins.clone()),
            cors_origins: Some(self.cors_origins.clone()),
        };
        Ok(toml::to_string(&file)?)
    }
}
