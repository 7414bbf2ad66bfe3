//! The gateway's configuration: one schema, from which the flags, the `PUSHGATE_*` variables,
//! the `--config` TOML keys, `--help`, `--print-config`, the defaults and the `with_*` setters
//! all come.
//!
//! [`Config`] is made of sections, one file each, every section holding its options and the
//! checks of those options: [`Listener`] (address, connection limits, timeouts, TCP),
//! [`Publishing`] (body size and deadline, publish rate), [`Delivery`] (the transports),
//! [`Topics`] (topic limits and history), [`Backends`] (Redis and database sources),
//! [`Access`] (auth, origins, CORS) and [`Pages`] (the pages and the demo). An option is one
//! field of a section, declared inside the section's `section!` block:
//!
//! - its doc comment is its `--help` text (first paragraph for `-h`) and its rustdoc;
//! - `#[arg(long, env = "PUSHGATE_…", value_name = "…")]` names its flag and its variable (the
//!   variable is the field name upper-cased after `PUSHGATE_`; a test checks it);
//! - its field name is its TOML key in the `--config` file;
//! - `= default` after the type is its default, used by [`Config::default`] and shown by
//!   `--help`; without it the type's default applies (`None`, empty, zero);
//! - `section!` generates the setter `Config::with_<field>`, which takes the type or, through
//!   [`Setting`], what it wraps (a `Duration` for a [`TimeSpan`], a `usize` for a [`ByteSize`]).
//!
//! Durations and sizes are [`TimeSpan`] and [`ByteSize`] (`"25s"`, `"1MiB"`); a password-bearing
//! URL is a [`ConnectionUrl`] and a secret a [`Secret`], which `Debug` and `--print-config`
//! never show.
//!
//! # How to add an option
//!
//! 1. Add the field, with its doc comment, `#[arg(...)]` and `= default`, to the section it
//!    belongs to (say `delivery.rs`). Nothing else lists options: the flag, the variable, the
//!    file key, `--print-config` and `Config::with_<field>` follow.
//! 2. If some values make no sense, refuse them in that section's `check` with a
//!    [`ConfigError`] variant (one doc line, a message naming the option).
//! 3. Hand the value to the component that uses it in `plan.rs`, the one place where a
//!    configuration becomes what `serve` runs.
//! 4. Document it for users in docs/deployment.md (or protocol.md when clients see it).
//!
//! Options of the command rather than of the gateway (the file's path, `--print-config`, the log
//! format, `--no-demo`, `--jwt-secret-file`) live in [`crate::cli::ServeArgs`].

/// Declares one section of [`Config`]: the struct with its options, its `Default` (each
/// field's `= default`, else the type's default, which is also what clap shows as the
/// default), and a setter `Config::with_<field>` per option.
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $section:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $ty:ty $(= $default:expr)?,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, clap::Args, serde::Serialize)]
        #[non_exhaustive]
        pub struct $section {
            $(
                $(#[$field_meta])*
                $(#[arg(default_value_t = $default)])?
                pub $field: $ty,
            )*
        }

        impl Default for $section {
            fn default() -> Self {
                Self { $($field: section!(@default $($default)?),)* }
            }
        }

        pastey::paste! {
            impl crate::config::Config {
                $(
                    #[doc = concat!(
                        "Replaces [`", stringify!([<$section:snake>]), ".", stringify!($field), "`](",
                        stringify!($section), "::", stringify!($field), ")."
                    )]
                    #[must_use]
                    pub fn [<with_ $field>](mut self, value: impl crate::config::Setting<$ty>) -> Self {
                        self.[<$section:snake>].$field = value.into_setting();
                        self
                    }
                )*
            }
        }
    };
    (@default) => { Default::default() };
    (@default $default:expr) => { $default };
}

mod access;
mod backends;
mod delivery;
mod error;
mod listener;
mod pages;
pub(crate) mod plan;
mod publishing;
mod secret;
mod topics;
mod units;

pub use access::Access;
pub use backends::Backends;
pub(crate) use backends::RedisNode;
pub use delivery::Delivery;
pub use error::ConfigError;
pub use listener::Listener;
pub use pages::{DEFAULT_DEMO_DB, DEFAULT_DEMO_TICKER_RATE, Pages};
pub use publishing::Publishing;
pub use secret::{ConnectionUrl, Secret};
pub use topics::Topics;
pub use units::{ByteSize, TimeSpan, UnitError};

/// How the gateway is set up: every option of `pushgate serve`, by section.
///
/// Start from [`Config::default`] and change what you need with the `with_*` methods, so new
/// options can be added without breaking callers:
///
/// ```
/// use std::net::{Ipv4Addr, SocketAddr};
/// use std::time::Duration;
///
/// let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9000));
/// let config = pushgate::Config::default()
///     .with_listen(listen)
///     .with_header_read_timeout(Duration::from_secs(5))
///     .with_max_body_bytes(2 << 20);
/// assert_eq!(config.listener.listen, listen);
/// assert_eq!(*config.publishing.max_body_bytes, 2 << 20);
/// assert_eq!(config.listener.max_connections, 10_000);
/// assert!(config.validate().is_ok());
/// ```
///
/// It is also the `clap::Args` of `pushgate serve` (flattened, one help heading per section) and
/// serializes to the flat TOML of `--config` files, secrets redacted.
#[derive(Debug, Clone, PartialEq, Eq, Default, clap::Args, serde::Serialize)]
#[non_exhaustive]
pub struct Config {
    /// Where the gateway listens, how many connections it keeps and for how long.
    #[command(flatten, next_help_heading = "Connections")]
    #[serde(flatten)]
    pub listener: Listener,
    /// Publish bodies and the publish rate.
    #[command(flatten, next_help_heading = "Publishing")]
    #[serde(flatten)]
    pub publishing: Publishing,
    /// How the four transports deliver.
    #[command(flatten, next_help_heading = "Delivery")]
    #[serde(flatten)]
    pub delivery: Delivery,
    /// Topic limits and history.
    #[command(flatten, next_help_heading = "Topics and history")]
    #[serde(flatten)]
    pub topics: Topics,
    /// Redis and the database sources.
    #[command(flatten, next_help_heading = "Redis and database sources")]
    #[serde(flatten)]
    pub backends: Backends,
    /// Auth, WebSocket origins and CORS.
    #[command(flatten, next_help_heading = "Access control")]
    #[serde(flatten)]
    pub access: Access,
    /// The pages and the demo.
    #[command(flatten, next_help_heading = "Pages and demo")]
    #[serde(flatten)]
    pub pages: Pages,
}

impl Config {
    /// Checks that the settings make sense together, by deriving everything
    /// [`serve`](crate::serve) runs from them: `serve`, [`serve_on`](crate::serve_on), [`app`](crate::app)
    /// and `pushgate serve --print-config` all refuse what this refuses.
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
        plan::Plan::new(self).map(drop)
    }

    /// Each section's own checks, and those between sections.
    fn check(&self) -> Result<(), ConfigError> {
        self.listener.check(&self.delivery)?;
        self.publishing.check()?;
        self.delivery.check(&self.publishing)?;
        self.topics.check()?;
        self.backends.check()?;
        self.access.check()?;
        self.pages.check()
    }
}

/// What a `with_*` setter of an option of type `T` accepts: `T` itself, and the plain types
/// the option types wrap, so callers write `with_max_body_bytes(2 << 20)` and
/// `with_longpoll_timeout(Duration::from_secs(5))`. (Not `Into`: an integer literal would be
/// ambiguous between the integer types that convert into `usize`.)
pub trait Setting<T> {
    /// The value as the option's type.
    fn into_setting(self) -> T;
}

impl<T> Setting<T> for T {
    fn into_setting(self) -> T {
        self
    }
}

impl Setting<TimeSpan> for std::time::Duration {
    fn into_setting(self) -> TimeSpan {
        self.into()
    }
}

impl Setting<ByteSize> for usize {
    fn into_setting(self) -> ByteSize {
        self.into()
    }
}

impl Setting<Option<ByteSize>> for Option<usize> {
    fn into_setting(self) -> Option<ByteSize> {
        self.map(ByteSize::from)
    }
}

impl Setting<Option<ConnectionUrl>> for Option<String> {
    fn into_setting(self) -> Option<ConnectionUrl> {
        self.map(ConnectionUrl::from)
    }
}

impl Setting<Option<ConnectionUrl>> for Option<&str> {
    fn into_setting(self) -> Option<ConnectionUrl> {
        self.map(ConnectionUrl::from)
    }
}

impl Setting<Vec<ConnectionUrl>> for Vec<String> {
    fn into_setting(self) -> Vec<ConnectionUrl> {
        self.into_iter().map(ConnectionUrl::from).collect()
    }
}

impl Setting<Vec<ConnectionUrl>> for Vec<&str> {
    fn into_setting(self) -> Vec<ConnectionUrl> {
        self.into_iter().map(ConnectionUrl::from).collect()
    }
}

/// The first of `settings` that is zero, as [`ConfigError::Zero`].
fn nonzero<const N: usize>(settings: [(&'static str, bool); N]) -> Result<(), ConfigError> {
    match settings.into_iter().find(|(_, zero)| *zero) {
        Some((name, _)) => Err(ConfigError::Zero { name }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_protocol() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.listener.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(*config.publishing.max_body_bytes, 1024 * 1024);
        assert_eq!(*config.delivery.ws_max_message_bytes, 64 * 1024);
        assert_eq!(*config.delivery.max_answer_bytes, 4 << 20);
        assert_eq!(*config.publishing.body_read_timeout, Duration::from_secs(10));
        assert_eq!(config.pages.demo_db, None, "no demo unless asked for");
        assert_eq!(*config.topics.history_max_bytes, 128 << 20);
        assert_eq!(config.build_hub().stats().history_max_bytes, 128 << 20);
        let none = Config::default().with_history_max_bytes(0usize);
        assert_eq!(none.validate(), Err(ConfigError::Zero { name: "history_max_bytes" }));
    }

    #[test]
    fn the_setters_reach_their_sections() {
        let config = Config::default()
            .with_max_connections(5)
            .with_coalesce(Duration::from_millis(5))
            .with_history_events(7)
            .with_redis(Some("redis://h"))
            .with_anonymous_publish(vec!["chat.*".into()])
            .with_demo_ticker_rate(3);
        assert_eq!(config.listener.max_connections, 5);
        assert_eq!(*config.delivery.coalesce, Duration::from_millis(5));
        assert_eq!(config.topics.history_events, 7);
        assert_eq!(config.backends.redis.as_ref().map(ConnectionUrl::expose), Some("redis://h"));
        assert_eq!(config.access.anonymous_publish, ["chat.*"]);
        assert_eq!(config.pages.demo_ticker_rate, 3);
    }
}
