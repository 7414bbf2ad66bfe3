//! Values that must not leak through the configuration: [`Secret`] (shown as `<redacted>`) and
//! [`ConnectionUrl`] (shown with its password hidden), in `Debug` output, in logs, in errors and
//! in `--print-config`. The types carry the rule, so a new option of either type is covered.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use pushgate_sources::SourceConfig;

/// What a [`Secret`] is shown as.
const REDACTED: &str = "<redacted>";

/// A secret setting (the JWT secret, the admin key): shown as `<redacted>` by `Debug` and when
/// serialized, so it never reaches a log or `--print-config` through the configuration.
///
/// ```
/// let secret = pushgate::Secret::new("s3cr3t");
/// assert_eq!(secret.expose(), "s3cr3t");
/// assert_eq!(format!("{secret:?}"), "<redacted>");
/// ```
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

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(text))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// The URL of a service the gateway connects to (a database source, Redis), which may hold a
/// password: `Debug` and serialization show it with the password replaced by `***`.
///
/// ```
/// let url = pushgate::config::ConnectionUrl::from("postgres://app:secret@db/shop");
/// assert_eq!(url.expose(), "postgres://app:secret@db/shop");
/// assert_eq!(url.redacted(), "postgres://app:***@db/shop");
/// assert_eq!(format!("{url:?}"), "postgres://app:***@db/shop");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// The URL itself, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password hidden, for logs, errors and `--print-config`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// `url` with its password hidden.
fn redact_url(url: &str) -> String {
    SourceConfig::new(url).url_redacted()
}

impl FromStr for ConnectionUrl {
    type Err = Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl From<&str> for ConnectionUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl From<String> for ConnectionUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl serde::Serialize for ConnectionUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}
