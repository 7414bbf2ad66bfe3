//! The subscribe request every transport accepts: `?topic=a&topic=b&cursor=…`, and the names of
//! its parameters and headers.
//!
//! Topics come from repeated `topic` parameters and/or a comma-separated `topics` parameter.
//! The cursor comes from, in order of precedence: the `Last-Event-ID` header (what a
//! reconnecting `EventSource` sends), the `cursor` parameter, the `last_event_id` parameter (for
//! clients that cannot set headers); absent, it is `now` ([`cursor_text`]).

use crate::Cursor;

/// One topic (repeatable).
pub const TOPIC: &str = "topic";
/// Comma-separated topics.
pub const TOPICS: &str = "topics";
/// Where to start.
pub const CURSOR: &str = "cursor";
/// Where to start, for clients that cannot set the `Last-Event-ID` header.
pub const LAST_EVENT_ID: &str = "last_event_id";
/// The header a reconnecting `EventSource` resumes with.
pub const LAST_EVENT_ID_HEADER: &str = "last-event-id";
/// An access token, for clients that cannot set `Authorization: Bearer`.
pub const TOKEN: &str = "token";
/// Long poll: the most seconds to wait for an event.
pub const TIMEOUT: &str = "timeout";
/// Poll: the most events in one answer.
pub const LIMIT: &str = "limit";

/// The cursor text a request names, by precedence: the `Last-Event-ID` header, then the
/// `cursor` parameter, then the `last_event_id` parameter; empty values do not count.
///
/// ```
/// use pushgate_protocol::params::cursor_text;
///
/// assert_eq!(cursor_text(Some("a"), Some("b"), None), Some("a"));
/// assert_eq!(cursor_text(Some(""), Some("b"), Some("c")), Some("b"));
/// assert_eq!(cursor_text(None, None, None), None);
/// ```
pub fn cursor_text<'a>(
    header: Option<&'a str>,
    cursor: Option<&'a str>,
    last_event_id: Option<&'a str>,
) -> Option<&'a str> {
    [header, cursor, last_event_id].into_iter().flatten().find(|text| !text.is_empty())
}

/// The topics a request names: every `topic` value and every name of every `topics` list.
pub fn topic_names<'a>(
    topic: impl Iterator<Item = &'a str>,
    topics: impl Iterator<Item = &'a str>,
) -> impl Iterator<Item = &'a str> {
    topic.chain(topics.flat_map(|list| list.split(',')).filter(|name| !name.is_empty()))
}

/// A subscribe query as a client writes it.
///
/// ```
/// use pushgate_protocol::{Cursor, params::SubscribeQuery};
///
/// let query = SubscribeQuery::new(["db.orders", "chat"]).cursor(Cursor::Oldest).timeout_secs(25);
/// assert_eq!(query.encode(), "topic=db.orders&topic=chat&cursor=oldest&timeout=25");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeQuery {
    /// The topics.
    pub topics: Vec<String>,
    /// Where to start; `now` when absent.
    pub cursor: Option<Cursor>,
    /// An access token sent as `?token=`.
    pub token: Option<String>,
    /// Long poll: the most seconds to wait.
    pub timeout_secs: Option<u64>,
    /// Poll: the most events in one answer.
    pub limit: Option<usize>,
}

impl SubscribeQuery {
    /// A query for `topics`, from `now`.
    pub fn new<T: Into<String>>(topics: impl IntoIterator<Item = T>) -> Self {
        Self { topics: topics.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// Start after `cursor`.
    #[must_use]
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.cursor = Some(cursor);
        self
    }

    /// Send `token` as `?token=`.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Long poll: wait at most `secs` seconds.
    #[must_use]
    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout_secs = Some(secs);
        self
    }

    /// Poll: at most `limit` events per answer.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The query string (without `?`), percent-encoded.
    pub fn encode(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for topic in &self.topics {
            out.append_pair(TOPIC, topic);
        }
        if let Some(cursor) = self.cursor {
            out.append_pair(CURSOR, &cursor.to_string());
        }
        if let Some(token) = &self.token {
            out.append_pair(TOKEN, token);
        }
        if let Some(secs) = self.timeout_secs {
            out.append_pair(TIMEOUT, &secs.to_string());
        }
        if let Some(limit) = self.limit {
            out.append_pair(LIMIT, &limit.to_string());
        }
        out.finish()
    }
}
