//! `--config FILE`: the options of `pushgate serve` in a TOML file.
//!
//! A key is an option's long name in snake_case (`--max-body-bytes` is `max_body_bytes`,
//! `--source` is `sources`, a list): the option's id in the schema. A value is what the flag
//! takes, as a TOML string, number or boolean (`"25s"`, `25`, `"1MiB"`, `true`), or an array of
//! them for an option that repeats. An unknown key, or a value its option's parser refuses, is
//! an error naming the key, so a typo does not silently leave a default in place.
//!
//! The file is a layer between the environment and the defaults, and it is put there by clap
//! itself: [`parse`] reads the file named by `--config` (or `PUSHGATE_CONFIG`), makes each of its
//! values the default of its option, and parses the command line again. Flags and variables win
//! as they win over any default, and every layer goes through the same parser.
//!
//! Secrets (`jwt_secret`, `admin_key`) may be in the file, but are better in the environment or,
//! for the JWT secret, in a file of their own (`jwt_secret_file`).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command};

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
    /// The file is not TOML.
    #[error("invalid configuration file {}: line {line}, column {column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where, from 1.
        line: usize,
        /// Where in the line, from 1.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The file names an option that does not exist.
    #[error("unknown option `{key}` in the configuration file {}", path.display())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A value in the file is not one its option takes.
    #[error("invalid value for `{key}` in the configuration file {}: {reason}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
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
    /// A JWT secret and a JWT secret file both come from the environment, or both from the file.
    #[error("jwt_secret and jwt_secret_file are both given; give one")]
    SecretTwice,
}

/// Options a file may not set: they say where the file is, or what to do with the result.
const NOT_IN_FILES: [&str; 4] = ["config_file", "print_config", "help", "version"];

/// A `--config` file read: each key with its values, as the command line would give them.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    entries: Vec<Entry>,
}

/// One key of the file.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    values: Vec<String>,
    /// Whether the values were a TOML array (which only a repeatable option takes).
    array: bool,
}

impl ConfigFile {
    /// Reads and parses the TOML file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::Read`], [`ConfigFileError::Syntax`], or [`ConfigFileError::Value`] for
    /// a value that is no option's (a table, a date, a nested array).
    pub fn read(path: &Path) -> Result<Self, ConfigFileError> {
        let text = fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Read { path: path.to_owned(), source })?;
        Self::parse(path, &text)
    }

    /// Parses `text`, the contents of the file at `path`.
    fn parse(path: &Path, text: &str) -> Result<Self, ConfigFileError> {
        let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            let offset = err.span().map_or(0, |span| span.start);
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
            ConfigFileError::Syntax { path: path.to_owned(), line, column, message: err.message().to_owned() }
        })?;
        let entries = table
            .into_iter()
            .map(|(key, value)| {
                let array = value.is_array();
                let values = match value {
                    toml::Value::Array(items) => items.into_iter().map(scalar).collect::<Option<_>>(),
                    value => scalar(value).map(|value| vec![value]),
                };
                match values {
                    Some(values) => Ok(Entry { key, values, array }),
                    None => Err(ConfigFileError::Value {
                        path: path.to_owned(),
                        key,
                        reason: "expected a string, a number, a boolean, or an array of them".to_owned(),
                    }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { path: path.to_owned(), entries })
    }

    /// Whether the file sets the option `id`.
    pub fn sets(&self, id: &str) -> bool {
        self.entries.iter().any(|entry| entry.key == id)
    }

    /// Checks that every key of the file is an option of `command` that files may set, and that
    /// its option's parser takes its values.
    ///
    /// # Errors
    ///
    /// [`ConfigFileError::UnknownKey`] or [`ConfigFileError::Value`], for the first key found.
    pub fn check(&self, command: &Command) -> Result<(), ConfigFileError> {
        for Entry { key, values, array } in &self.entries {
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_id() == key.as_str() && !NOT_IN_FILES.contains(&key.as_str()))
                .ok_or_else(|| ConfigFileError::UnknownKey { path: self.path.clone(), key: key.clone() })?;
            check_values(arg, values, *array).map_err(|reason| ConfigFileError::Value {
                path: self.path.clone(),
                key: key.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// `command` with the file's values as the defaults of their options; a [checked](Self::check)
    /// file's keys all name one of its options. A value that would be shown in place of a hidden
    /// environment value (a secret, a URL with a password) is not shown as a default either.
    pub fn apply(&self, mut command: Command) -> Command {
        for Entry { key, values, .. } in &self.entries {
            if command.get_arguments().any(|arg| arg.get_id() == key.as_str()) {
                command = command.mut_arg(key, |arg| {
                    let hide = arg.is_hide_env_values_set();
                    arg.default_values(values.clone()).hide_default_value(hide)
                });
            }
        }
        command
    }
}

/// A TOML scalar as the command line would write it; `None` for tables, dates and arrays.
fn scalar(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(yes) => Some(yes.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// Parses `values` with `arg`'s parser, as if given on the command line, so a file's value is
/// refused exactly when the flag's would be.
fn check_values(arg: &Arg, values: &[String], array: bool) -> Result<(), String> {
    let action = arg.get_action();
    let repeats = matches!(action, ArgAction::Append);
    if !repeats && (array || values.len() != 1) {
        return Err("expected one value, not an array".to_owned());
    }
    let flag = matches!(action, ArgAction::SetTrue | ArgAction::SetFalse);
    let argv: Vec<OsString> = if flag {
        match values[0].as_str() {
            "true" => vec!["--value".into()],
            "false" => Vec::new(),
            _ => return Err("expected true or false".to_owned()),
        }
    } else {
        values.iter().map(|value| format!("--value={value}").into()).collect()
    };
    let probe =
        Arg::new("value").long("value").action(action.clone()).value_parser(arg.get_value_parser().clone());
    let probe = if repeats { probe.num_args(1) } else { probe };
    let outcome = Command::new("pushgate").no_binary_name(true).arg(probe).try_get_matches_from(argv);
    outcome.map(drop).map_err(|err| match std::error::Error::source(&err) {
        Some(reason) => reason.to_string(),
        None => {
            let possible: Vec<_> =
                arg.get_possible_values().iter().map(|value| value.get_name().to_owned()).collect();
            if possible.is_empty() {
                err.kind().to_string()
            } else {
                format!("expected one of: {}", possible.join(", "))
            }
        }
    })
}

/// Parses the process's command line with `command`, whose `pushgate serve` options (at the top
/// level or under a subcommand) take the `--config` file's values as defaults; returns the
/// matches and the file, if one was given. Usage errors end the process as clap's do.
///
/// # Errors
///
/// A [`ConfigFileError`] for a file that cannot be read or used.
pub fn parse(command: Command) -> Result<(ArgMatches, Option<ConfigFile>), ConfigFileError> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let matches = command.clone().try_get_matches_from(&args).unwrap_or_else(|err| err.exit());
    let (subcommand, options) = match matches.subcommand() {
        Some((name, options)) => (Some(name.to_owned()), options),
        None => (None, &matches),
    };
    let Some(path) = options.try_get_one::<PathBuf>("config_file").ok().flatten() else {
        return Ok((matches, None));
    };
    let file = ConfigFile::read(path)?;
    let command = match subcommand {
        Some(name) => {
            if let Some(serve) = command.find_subcommand(&name) {
                file.check(serve)?;
            }
            command.mut_subcommand(&name, |serve| file.apply(serve))
        }
        None => {
            file.check(&command)?;
            file.apply(command)
        }
    };
    let matches = command.try_get_matches_from(&args).unwrap_or_else(|err| err.exit());
    Ok((matches, Some(file)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::{CommandFactory as _, FromArgMatches as _};

    use super::*;
    use crate::cli::ServeArgs;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// `args` parsed with `text` as the configuration file.
    fn with_file(text: &str, args: &[&str]) -> Result<ServeArgs, ConfigFileError> {
        let file = ConfigFile::parse(Path::new("test.toml"), text)?;
        let command = Cli::command();
        file.check(&command)?;
        let argv = std::iter::once("pushgate").chain(args.iter().copied());
        let matches = file.apply(command).try_get_matches_from(argv).expect("valid arguments");
        Cli::from_arg_matches(&matches).expect("matches").serve.resolve(&matches, Some(&file))
    }

    #[test]
    fn file_values_go_through_the_flags_parsers_under_the_flags() {
        let args = with_file(
            "max_body_bytes = \"2MiB\"\nsse_heartbeat = 20\nsources = [\"sqlite:a.db\"]\nno_demo = true\n\
             history_events = 7\nlog_format = \"json\"\n",
            &["--history-events", "9"],
        )
        .unwrap();
        let config = &args.config;
        assert_eq!(*config.publishing.max_body_bytes, 2 << 20);
        assert_eq!(config.delivery.sse_heartbeat.as_secs(), 20);
        assert_eq!(config.backends.sources[0].expose(), "sqlite:a.db");
        assert_eq!(config.topics.history_events, 9, "the flag wins");
        assert_eq!(config.pages.demo_db, None);
        assert_eq!(config.pages.demo_ticker_rate, 0, "no demo, no rate given");
        assert_eq!(args.log_format, crate::cli::LogFormat::Json);
        let rate = with_file("no_demo = true\ndemo_ticker_rate = 4\n", &[]).unwrap();
        assert_eq!(rate.config.pages.demo_ticker_rate, 4, "a rate from the file counts as given");
    }

    #[test]
    fn bad_keys_and_values_are_refused_with_their_key() {
        let message = |text: &str| with_file(text, &[]).unwrap_err().to_string();
        let unknown = message("max_conections = 5\n");
        assert!(unknown.contains("unknown option `max_conections`"), "{unknown}");
        let bad = message("max_body_bytes = \"2XB\"\n");
        assert!(bad.contains("`max_body_bytes`") && bad.contains("\"2XB\""), "{bad}");
        let bad = message("max_connections = \"many\"\n");
        assert!(bad.contains("`max_connections`") && bad.contains("invalid digit"), "{bad}");
        let bad = message("log_format = \"xml\"\n");
        assert!(bad.contains("expected one of: text, json"), "{bad}");
        let bad = message("sources = \"sqlite:a.db\"\nlisten = [\"127.0.0.1:1\"]\n");
        assert!(bad.contains("`listen`") && bad.contains("one value"), "{bad}");
        let bad = message("no_demo = \"yes\"\n");
        assert!(bad.contains("true or false"), "{bad}");
        assert!(message("print_config = true\n").contains("unknown option"));
        let syntax = message("a = 1\nmax_connections = \n");
        assert!(syntax.contains("line 2, column 19"), "{syntax}");
    }
}
