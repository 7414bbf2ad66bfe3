//! How a [`Source`](crate::Source) connects and paces itself.

use std::fmt;
use std::time::Duration;

use crate::model::SourceNames;

/// Settings of one [`Source`](crate::Source): which database, which installed objects, and how
/// often to look.
///
/// ```
/// use std::time::Duration;
/// use pushgate_sources::{SourceConfig, SourceNames};
///
/// let config = SourceConfig::new("postgres://app:secret@db.internal/shop")
///     .names(SourceNames::with_prefix("shop_")?)
///     .poll_interval(Duration::from_millis(250))
///     .batch_size(1000)
///     .retention(Duration::from_secs(24 * 3600));
/// // The password never reaches logs or debug output.
/// assert!(!format!("{config:?}").contains("secret"));
/// # Ok::<(), pushgate_sources::SourceError>(())
/// ```
#[derive(Clone)]
pub struct SourceConfig {
    pub(crate) url: String,
    pub(crate) names: SourceNames,
    pub(crate) poll_interval: Duration,
    pub(crate) batch_size: usize,
    pub(crate) retention: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) lease_timeout: Duration,
}

impl SourceConfig {
    /// The shortest [lease timeout](Self::lease_timeout): below it, a loaded machine's
    /// scheduling delays alone would make leaders lose their lease.
    pub const MIN_LEASE_TIMEOUT: Duration = Duration::from_millis(500);

    /// A source reading the database at `url`: `postgres://…` (or `postgresql://`),
    /// `mysql://…` (or `mariadb://`), `sqlite:path` (or `sqlite://path`). Defaults: the default
    /// [`SourceNames`], a 100 ms poll interval, batches of 500 changes, 1 hour of retention of
    /// published changes in the outbox, reconnection backoff between 100 ms and 10 s, and a
    /// 5 s lease timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            names: SourceNames::default(),
            poll_interval: Duration::from_millis(100),
            batch_size: 500,
            retention: Duration::from_secs(3600),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            lease_timeout: Duration::from_secs(5),
        }
    }

    /// Uses the outbox, watch table and trigger names of `names` (those given to `install`).
    pub fn names(mut self, names: SourceNames) -> Self {
        self.names = names;
        self
    }

    /// How often the outbox is read when nothing wakes the tailer earlier (default 100 ms). On
    /// PostgreSQL a `NOTIFY` wakes it at once and this is only the safety net.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Most changes read and published per round trip (default 500, at least 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// How long published changes stay in the outbox before they are deleted (default 1 hour):
    /// as long, the outbox answers cursors older than the hub's memory
    /// ([`Source::history_tier`](crate::Source::history_tier)).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Bounds of the reconnection delay (default 100 ms to 10 s): after the n-th failure in a
    /// row the tailer waits a random time up to `min · 2ⁿ` (capped at `max`), and at least `min`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// How soon another node takes over after the leader is gone (default 5 s, at least
    /// [`MIN_LEASE_TIMEOUT`](Self::MIN_LEASE_TIMEOUT)). One node at a time tails a database: it holds a lease in the database itself
    /// (see [`Source`](crate::Source)). The holder confirms it every fifth of this timeout;
    /// the database drops a holder that stays silent for three fifths of it (a crashed
    /// process at once, as its connection closes); standbys try to take it every fifth. A
    /// holder whose confirmation fails or comes late stops publishing at once.
    pub fn lease_timeout(mut self, timeout: Duration) -> Self {
        self.lease_timeout = timeout.max(Self::MIN_LEASE_TIMEOUT);
        self
    }

    /// The database URL with any password replaced by `***`.
    ///
    /// ```
    /// use pushgate_sources::SourceConfig;
    ///
    /// let config = SourceConfig::new("mysql://app:hunter2@db:3306/shop?ssl-mode=required");
    /// assert_eq!(config.url_redacted(), "mysql://app:***@db:3306/shop?ssl-mode=required");
    /// ```
    pub fn url_redacted(&self) -> String {
        redact_url(&self.url)
    }

    /// How often published changes are pruned: often enough that retention is roughly kept,
    /// rarely enough to cost nothing (every `retention / 2`, between 1 s and 5 minutes).
    pub(crate) fn prune_every(&self) -> Duration {
        (self.retention / 2).clamp(Duration::from_secs(1), Duration::from_secs(300))
    }
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("url", &self.url_redacted())
            .field("names", &self.names)
            .field("poll_interval", &self.poll_interval)
            .field("batch_size", &self.batch_size)
            .field("retention", &self.retention)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("lease_timeout", &self.lease_timeout)
            .finish()
    }
}

/// Hides the password of a database URL: in the user info (`user:***@host`) and in query
/// parameters that carry one (`?password=***`).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_query(url);
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{}", redact_query(tail))
}

fn redact_query(text: &str) -> String {
    let Some((before, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => format!("{key}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{before}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        let cases = [
            ("postgres://u:p%40ss@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?user=u&password=x&sslmode=require",
                "postgres://h/db?user=u&password=***&sslmode=require",
            ),
            ("mysql://root:@127.0.0.1:3306/test", "mysql://root:***@127.0.0.1:3306/test"),
            ("sqlite:/tmp/a.db", "sqlite:/tmp/a.db"),
            ("sqlite://data/app.db?mode=rwc", "sqlite://data/app.db?mode=rwc"),
            ("mariadb://a:b@c", "mariadb://a:***@c"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
