//! How many topics the hub holds and how much history each keeps; and the hub built from them.

use pushgate_hub::{
    DEFAULT_HISTORY_MAX_BYTES, DEFAULT_MAX_LEASES, DEFAULT_MAX_LEASES_PER_GROUP, HistoryLimit, Hub,
    HubBuilder,
};

use super::access::patterns;
use super::{ByteSize, Config, ConfigError, TimeSpan, nonzero};

section! {
    /// Topic limits and history.
    pub struct Topics {
        /// Most distinct topics one subscription or poll may name.
        #[arg(long, env = "PUSHGATE_MAX_TOPICS_PER_SUBSCRIPTION", value_name = "N")]
        pub max_topics_per_subscription: usize = 100,

        /// Most topics held at once; publishing to one more is refused with `503` until idle
        /// topics are forgotten. Topics are made by publishing: subscribing to, polling or
        /// reading the presence of a topic nobody published to takes no slot. With --redis it
        /// counts every topic this node holds, including those other nodes published to (the
        /// retained topics of the whole cluster).
        #[arg(long, env = "PUSHGATE_MAX_TOPICS", value_name = "N")]
        pub max_topics: usize = 100_000,

        /// Events kept per topic for resuming and `cursor=oldest`.
        #[arg(long, env = "PUSHGATE_HISTORY_EVENTS", value_name = "N")]
        pub history_events: usize = 1000,

        /// How long an event is kept for resuming; 0 keeps events until evicted by count.
        #[arg(long, env = "PUSHGATE_HISTORY_AGE", value_name = "DURATION")]
        pub history_age: TimeSpan = TimeSpan::secs(600),

        /// Memory all history may take together: every topic's events, the encodings the
        /// transports cache on them and the idempotency keys (e.g. 128MiB); past it the oldest
        /// events of any topic go first. With --redis it bounds this node's copy of the log.
        #[arg(long, env = "PUSHGATE_HISTORY_MAX_BYTES", value_name = "BYTES")]
        pub history_max_bytes: ByteSize = ByteSize::from(DEFAULT_HISTORY_MAX_BYTES),

        /// Most polling clients counted in presence at once: a short or long poll naming its
        /// `client` is counted until twice its `interval` after each request, in a table of
        /// this size; past it (or past --presence-leases-per-address for one client address)
        /// a poll is answered but not counted.
        #[arg(long, env = "PUSHGATE_PRESENCE_LEASES", value_name = "N")]
        pub presence_leases: usize = DEFAULT_MAX_LEASES,

        /// Most polling clients of one address counted in presence at once.
        #[arg(long, env = "PUSHGATE_PRESENCE_LEASES_PER_ADDRESS", value_name = "N")]
        pub presence_leases_per_address: usize = DEFAULT_MAX_LEASES_PER_GROUP,

        /// A topic pattern (`prices.*`, `score`, `*`) whose topics every reader reads latest
        /// value only: a subscriber or poller that is behind gets, of the events published with
        /// a `key`, only the newest of each key (as if it had asked with `latest=1`). Events
        /// without a key are always delivered. Repeatable (in the variable: comma-separated).
        #[arg(long, env = "PUSHGATE_LATEST_TOPICS", value_name = "PATTERN", value_delimiter = ',')]
        pub latest_topics: Vec<String>,
    }
}

impl Topics {
    /// Every limit is positive, every pattern valid.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        patterns("latest_topics", &self.latest_topics)?;
        nonzero([
            ("max_topics_per_subscription", self.max_topics_per_subscription == 0),
            ("max_topics", self.max_topics == 0),
            ("history_events", self.history_events == 0),
            ("history_max_bytes", *self.history_max_bytes == 0),
            ("presence_leases", self.presence_leases == 0),
            ("presence_leases_per_address", self.presence_leases_per_address == 0),
        ])
    }

    /// What each topic keeps.
    pub(super) fn history_limit(&self) -> HistoryLimit {
        let age = (!self.history_age.is_zero()).then_some(*self.history_age);
        HistoryLimit::default().max_events(self.history_events).max_age(age)
    }

    /// A hub builder with these limits, and `max_data_bytes` of data per event.
    pub(super) fn hub_builder(&self, max_data_bytes: usize) -> HubBuilder {
        let builder = Hub::builder()
            .history_max_bytes(*self.history_max_bytes)
            .max_topics(self.max_topics)
            .max_topics_per_subscription(self.max_topics_per_subscription)
            .max_data_bytes(max_data_bytes)
            .presence_leases(self.presence_leases, self.presence_leases_per_address);
        // `check` refused a bad pattern before any hub is built.
        match patterns("latest_topics", &self.latest_topics) {
            Ok(latest) if !latest.is_empty() => {
                builder.latest_topics(move |topic| latest.iter().any(|pattern| pattern.matches(topic)))
            }
            _ => builder,
        }
    }
}

impl Config {
    /// A new in-memory hub with this configuration's history and limits.
    ///
    /// ```
    /// let hub = pushgate::Config::default().build_hub();
    /// assert_eq!(hub.stats().published, 0);
    /// ```
    pub fn build_hub(&self) -> Hub {
        self.hub_builder().history(self.topics.history_limit()).build()
    }

    /// A hub builder with the topic limits, and the body limit as the data limit: a publish
    /// body holds the data and a little more, so the body limit bounds the data too; the hub's
    /// own check catches data that grows when made compact.
    pub(super) fn hub_builder(&self) -> HubBuilder {
        self.topics
            .hub_builder(*self.publishing.max_body_bytes)
            .idempotency_window(*self.publishing.idempotency_window)
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;
    use crate::config::ConfigError;

    #[test]
    fn latest_topics_are_patterns() {
        let base = Config::default().with_demo_db(None);
        assert!(base.clone().with_latest_topics(vec!["prices.*".into(), "score".into()]).validate().is_ok());
        let bad = base.with_latest_topics(vec!["a b".into()]).validate();
        assert!(matches!(bad, Err(ConfigError::Pattern { name: "latest_topics", .. })), "{bad:?}");
    }
}
