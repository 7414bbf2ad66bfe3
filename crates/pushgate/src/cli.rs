//! The `pushgate` command's options: `pushgate serve` ([`ServeArgs`]: every [`Config`] option,
//! and the few options of the command itself) and `pushgate db` ([`DbCommand`]).
//!
//! The options come from four layers, the first that sets one winning: flags, `PUSHGATE_*`
//! variables, the `--config` TOML file, defaults. clap resolves flags, variables and defaults;
//! [`parse`] reads the file first and makes its values the defaults ([`ConfigFile`]), so one
//! parser per option reads all four layers.

mod db;
mod file;

use std::fs;
use std::path::PathBuf;

use clap::ArgMatches;
use clap::parser::ValueSource;

pub use db::{DbCommand, DbError, InstallArgs, UninstallArgs};
pub use file::{ConfigFile, ConfigFileError, parse};

use crate::config::{Config, Secret};

/// Where `pushgate serve` keeps its hub's epoch for sources without the demo, unless told otherwise.
pub const DEFAULT_STATE_FILE: &str = "./pushgate-state";

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

/// `pushgate serve`: the gateway's [`Config`], and the options of the command itself, which
/// are not the gateway's (where the file is, what to print, how to log, the demo switch, the
/// secret's file). Resolve it with [`ServeArgs::resolve`].
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ServeArgs {
    /// Read options from this TOML file: keys are the long option names in snake_case
    /// (`max_body_bytes = "2MiB"`, `sources = ["postgres://…"]`, `no_demo = true`); flags and
    /// PUSHGATE_* variables win over it.
    #[arg(long = "config", env = "PUSHGATE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config_file: Option<PathBuf>,

    /// Check the configuration as serve does, print it as TOML (passwords and secrets hidden)
    /// and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,

    /// Log format on stderr: text, or json (one object a line).
    #[arg(long, env = "PUSHGATE_LOG_FORMAT", value_name = "FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,

    /// Threads that run the connections (default: one per CPU core). Fewer threads wake each
    /// other less often: where one core carries the load, 1 spends less CPU per delivery, and
    /// each delivery waits for the others on its thread (docs/benchmarks.md has both measured).
    #[arg(long, env = "PUSHGATE_WORKER_THREADS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_threads: Option<std::num::NonZeroUsize>,

    /// The gateway's options.
    #[command(flatten)]
    #[serde(flatten)]
    pub config: Config,

    /// No demo: no demo database, no /demo routes, and no demo ticker unless given a rate (the
    /// demo is on by default, also with --source).
    #[arg(long, env = "PUSHGATE_NO_DEMO", help_heading = "Pages and demo")]
    pub no_demo: bool,

    /// Read the JWT secret from this file (one line; a final newline is dropped).
    #[arg(
        long,
        env = "PUSHGATE_JWT_SECRET_FILE",
        value_name = "FILE",
        conflicts_with = "jwt_secret",
        help_heading = "Access control"
    )]
    #[serde(skip)]
    pub jwt_secret_file: Option<PathBuf>,
}

/// Which layer gave an option, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Default,
    File,
    Environment,
    CommandLine,
}

impl ServeArgs {
    /// These options as `serve` uses them, `matches` being what they were parsed from and
    /// `file` the `--config` file that gave defaults ([`parse`]): `--no-demo` turns the demo off,
    /// the demo ticker is off when the demo is unless some layer gave it a rate, and the JWT
    /// secret is read from `jwt_secret_file` when that was given by a stronger layer than a
    /// secret.
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::SecretFile`] for a secret file that cannot be read,
    /// [`ConfigFileError::SecretTwice`] for a secret and a secret file given by one layer.
    pub fn resolve(
        mut self,
        matches: &ArgMatches,
        file: Option<&ConfigFile>,
    ) -> Result<Self, ConfigFileError> {
        let layer = |id: &str| match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Layer::CommandLine,
            Some(ValueSource::EnvVariable) => Layer::Environment,
            _ if file.is_some_and(|file| file.sets(id)) => Layer::File,
            _ => Layer::Default,
        };
        let pages = &mut self.config.pages;
        if self.no_demo {
            pages.demo_db = None;
        }
        if pages.demo_db.is_none() && layer("demo_ticker_rate") == Layer::Default {
            pages.demo_ticker_rate = 0;
        }
        // Sources without the demo have nothing to keep the state file beside: the working
        // directory, as for the demo's own file.
        let backends = &mut self.config.backends;
        if pages.demo_db.is_none() && backends.state_file.is_none() && !backends.sources.is_empty() {
            backends.state_file = Some(PathBuf::from(DEFAULT_STATE_FILE));
        }
        if let Some(path) = &self.jwt_secret_file {
            let (secret, secret_file) = (layer("jwt_secret"), layer("jwt_secret_file"));
            if self.config.access.jwt_secret.is_some() && secret == secret_file {
                return Err(ConfigFileError::SecretTwice);
            }
            if secret_file > secret {
                let text = fs::read_to_string(path)
                    .map_err(|source| ConfigFileError::SecretFile { path: path.clone(), source })?;
                self.config.access.jwt_secret = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
            }
        }
        Ok(self)
    }

    /// The options as a TOML file that `--config` accepts: every option, the demo ticker's rate
    /// resolved, passwords in URLs hidden and secrets shown as `<redacted>` (so the output is
    /// safe to log, but a file made from it needs the secrets put back).
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Print`] if a value cannot be written as TOML (a path that is not UTF-8).
    pub fn to_toml(&self) -> Result<String, ConfigFileError> {
        Ok(toml::to_string(self)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use clap::{CommandFactory as _, FromArgMatches as _};

    use super::*;
    use crate::config::{ConnectionUrl, DEFAULT_DEMO_DB, DEFAULT_DEMO_TICKER_RATE};

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// `pushgate ARGS…` resolved, with no file.
    fn try_parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let matches = Command::command()
            .try_get_matches_from(std::iter::once("pushgate").chain(args.iter().copied()))?;
        let serve = Command::from_arg_matches(&matches)?.serve;
        Ok(serve.resolve(&matches, None).expect("no secret file"))
    }

    fn parse(args: &[&str]) -> Config {
        try_parse(args).expect("valid options").config
    }

    #[test]
    fn the_command_line_defaults_are_the_library_defaults_with_the_demo_on() {
        assert_eq!(
            parse(&[]),
            Config::default()
                .with_demo_db(Some(DEFAULT_DEMO_DB.into()))
                .with_demo_ticker_rate(DEFAULT_DEMO_TICKER_RATE)
        );
        let config = parse(&["--max-answer-bytes", "2MiB", "--body-read-timeout", "1500ms"]);
        assert_eq!(*config.delivery.max_answer_bytes, 2 << 20);
        assert_eq!(*config.publishing.body_read_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn every_option_has_a_long_flag_and_its_pushgate_variable() {
        let command = Command::command();
        for arg in
            command.get_arguments().filter(|arg| !["help", "print_config"].contains(&arg.get_id().as_str()))
        {
            let id = arg.get_id().as_str();
            assert!(arg.get_long().is_some(), "{id} has no long flag");
            let expected = match id {
                "config_file" => "PUSHGATE_CONFIG".to_owned(),
                id => format!("PUSHGATE_{}", id.to_uppercase()),
            };
            assert_eq!(arg.get_env().and_then(|env| env.to_str()), Some(expected.as_str()), "{id}");
        }
    }

    #[test]
    fn sources_repeat_and_the_demo_can_be_turned_off() {
        let config =
            parse(&["--source", "sqlite:a.db", "--source", "mysql://h/db,postgres://h/db", "--no-demo"]);
        let sources: Vec<_> = config.backends.sources.iter().map(ConnectionUrl::expose).collect();
        assert_eq!(sources, ["sqlite:a.db", "mysql://h/db", "postgres://h/db"]);
        assert_eq!(config.pages.demo_db, None);
        assert_eq!(parse(&["--demo-db", "/tmp/d.db"]).pages.demo_db, Some(PathBuf::from("/tmp/d.db")));
    }

    #[test]
    fn the_lease_timeout_and_the_state_file_have_their_defaults() {
        assert_eq!(*parse(&[]).backends.source_lease_timeout, Duration::from_secs(5));
        let lease = parse(&["--source-lease-timeout", "2500ms"]).backends.source_lease_timeout;
        assert_eq!(*lease, Duration::from_millis(2500));
        // Beside the demo (left to the library), in the working directory for sources without
        // it, or where told; none for neither.
        let config = parse(&[]);
        assert_eq!(config.backends.state_file, None);
        assert_eq!(config.state_file_path(), Some(PathBuf::from("./pushgate-state")));
        let config = parse(&["--demo-db", "/var/lib/pg/demo.db"]);
        assert_eq!(config.state_file_path(), Some(PathBuf::from("/var/lib/pg/pushgate-state")));
        let sources = parse(&["--source", "sqlite:a.db", "--no-demo"]);
        assert_eq!(sources.backends.state_file, Some(PathBuf::from(DEFAULT_STATE_FILE)));
        assert_eq!(parse(&["--no-demo"]).state_file_path(), None);
        let told = parse(&["--state-file", "/var/lib/pushgate/state"]);
        assert_eq!(told.state_file_path(), Some(PathBuf::from("/var/lib/pushgate/state")));
        // Redis keeps the epoch: no state file.
        assert_eq!(parse(&["--redis", "redis://127.0.0.1:6379"]).state_file_path(), None);
    }

    #[test]
    fn the_ticker_follows_the_demo_unless_given_a_rate() {
        let rate = |args: &[&str]| parse(args).pages.demo_ticker_rate;
        assert_eq!(rate(&[]), DEFAULT_DEMO_TICKER_RATE);
        assert_eq!(rate(&["--demo-ticker-rate", "0"]), 0);
        assert_eq!(rate(&["--demo-ticker-rate", "20"]), 20);
        assert_eq!(rate(&["--no-demo"]), 0);
        assert_eq!(rate(&["--no-demo", "--demo-ticker-rate", "5"]), 5);
        assert_eq!(parse(&["--web-dir", "web"]).pages.web_dir, Some(PathBuf::from("web")));
    }

    #[test]
    fn redis_is_off_unless_given() {
        assert_eq!(parse(&[]).backends.redis, None);
        let config = parse(&["--redis", "redis://:pw@127.0.0.1:6380/2"]);
        assert_eq!(
            config.backends.redis.as_ref().map(ConnectionUrl::expose),
            Some("redis://:pw@127.0.0.1:6380/2")
        );
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_log_format_is_text_unless_asked() {
        let format = |args: &[&str]| try_parse(args).map(|args| args.log_format);
        assert_eq!(format(&[]).ok(), Some(LogFormat::Text));
        assert_eq!(format(&["--log-format", "json"]).ok(), Some(LogFormat::Json));
        assert_eq!(format(&["--log-format", "text"]).ok(), Some(LogFormat::Text));
        assert!(format(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn access_options_reach_the_config() {
        let config = parse(&[
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
        ]);
        let access = &config.access;
        assert_eq!(access.jwt_secret.as_ref().map(Secret::expose), Some("s3cr3t"));
        assert_eq!(access.admin_key.as_ref().map(Secret::expose), Some("k3y"));
        assert_eq!(access.anonymous_subscribe, ["news.*", "public"]);
        assert_eq!(access.anonymous_publish, ["guestbook"]);
        assert_eq!(access.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(access.cors_origins, ["*"]);
        assert_eq!(*access.jwt_leeway, Duration::ZERO);
        assert!(access.auth_enabled());
        assert!(try_parse(&["--jwt-secret", "a", "--jwt-secret-file", "/tmp/s"]).is_err());
    }
}
