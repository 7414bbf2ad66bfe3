//! The subscribe request every transport accepts: `?topic=a&topic=b&cursor=…`.

use std::fmt;
use std::ops::Range;

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use pushgate_hub::{Cursor, TopicName};
use pushgate_protocol::params;

use crate::error::{ApiError, ErrorCode};

/// A parsed query string: ordered `(name, value)` pairs, repeated names kept.
///
/// ```
/// use pushgate_http::Query;
///
/// let q = Query::parse(Some("topic=a&topic=b&timeout=5"));
/// assert_eq!(q.all("topic").collect::<Vec<_>>(), ["a", "b"]);
/// assert_eq!(q.get("timeout"), Some("5"));
/// assert_eq!(q.get("cursor"), None);
/// ```
#[derive(Clone, Default)]
pub struct Query {
    /// Every decoded name and value, back to back: one allocation for the whole query instead
    /// of two per pair, since every poll request parses one.
    text: String,
    /// `(name, value)` as ranges of `text`, in query order.
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl Query {
    /// Parses `application/x-www-form-urlencoded` text (a URI's query); `None` is empty.
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw.filter(|raw| !raw.is_empty()) else { return Self::default() };
        // Nothing to decode (a poll's query, nearly always): the pairs are ranges of the raw
        // text, split in one pass as `form_urlencoded` splits it (empty pieces skipped, a piece
        // without `=` a name with an empty value). `&` and `=` are ASCII, so the ranges fall on
        // character boundaries. A `%` or `+` anywhere sends the whole query to the decoder.
        let bytes = raw.as_bytes();
        let mut pairs = Vec::with_capacity(4);
        let (mut start, mut equals) = (0, None);
        for (at, &byte) in bytes.iter().enumerate() {
            match byte {
                b'&' => {
                    push_piece(&mut pairs, start, equals, at);
                    (start, equals) = (at + 1, None);
                }
                b'=' if equals.is_none() => equals = Some(at),
                b'%' | b'+' => return Self::decode(raw),
                _ => {}
            }
        }
        push_piece(&mut pairs, start, equals, bytes.len());
        Self { text: raw.to_owned(), pairs }
    }

    /// [`parse`](Self::parse) for a query with escapes to decode.
    fn decode(raw: &str) -> Self {
        let mut text = String::with_capacity(raw.len());
        let mut pairs = Vec::new();
        for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
            let name_at = text.len();
            text.push_str(&name);
            let value_at = text.len();
            text.push_str(&value);
            pairs.push((name_at..value_at, value_at..text.len()));
        }
        Self { text, pairs }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        // The ranges were cut at the lengths of `str`s pushed whole, so they fall on boundaries.
        self.pairs.iter().map(|(name, value)| {
            (
                self.text.get(name.clone()).unwrap_or_default(),
                self.text.get(value.clone()).unwrap_or_default(),
            )
        })
    }

    /// The value of `pair` when it is named `name`: names are compared as bytes, and only a
    /// match's value is taken as text (every poll request asks for about ten names).
    fn value_if<'q>(&'q self, (key, value): &(Range<usize>, Range<usize>), name: &str) -> Option<&'q str> {
        let named = key.len() == name.len() && self.text.as_bytes().get(key.clone()) == Some(name.as_bytes());
        named.then(|| self.text.get(value.clone()).unwrap_or_default())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find_map(|pair| self.value_if(pair, name))
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs.iter().filter_map(move |pair| self.value_if(pair, name))
    }

    /// A count in `name` from 1 up, lowered to `max`; `default` (also lowered) when absent.
    ///
    /// ```
    /// # use pushgate_http::Query;
    /// let q = Query::parse(Some("limit=5000&zero=0"));
    /// assert_eq!(q.count("limit", 10, 50).unwrap(), 50);
    /// assert_eq!(q.count("absent", 10, 50).unwrap(), 10);
    /// assert!(q.count("zero", 10, 50).is_err());
    /// ```
    pub fn count(&self, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default.min(max)),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n.min(max)),
                _ => Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!(
                        "`{name}` must be a whole number from 1 up (more than {max} counts as {max}), got {text:?}"
                    ),
                )),
            },
        }
    }

    /// A whole number of seconds in `name`, at most `max`; `None` when absent.
    ///
    /// ```
    /// # use pushgate_http::Query;
    /// let q = Query::parse(Some("timeout=30&bad=x"));
    /// assert_eq!(q.seconds("timeout", 60).unwrap(), Some(std::time::Duration::from_secs(30)));
    /// assert_eq!(q.seconds("timeout", 10).unwrap(), Some(std::time::Duration::from_secs(10)));
    /// assert!(q.seconds("bad", 10).is_err());
    /// ```
    pub fn seconds(&self, name: &str, max: u64) -> Result<Option<std::time::Duration>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(text) => {
                text.parse::<u64>().map(|s| Some(std::time::Duration::from_secs(s.min(max)))).map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidParameter,
                        format!("`{name}` must be a whole number of seconds, got {text:?}"),
                    )
                })
            }
        }
    }
}

/// Adds the piece `start..end` of a query (`equals`: its first `=`) as a pair, unless it is
/// empty.
fn push_piece(
    pairs: &mut Vec<(Range<usize>, Range<usize>)>,
    start: usize,
    equals: Option<usize>,
    end: usize,
) {
    if end > start {
        let equals = equals.unwrap_or(end);
        pairs.push((start..equals, (equals + 1).min(end)..end));
    }
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What every transport's subscribe request carries: topics, a starting cursor and whether to
/// read latest value only, read by the protocol's rules ([`pushgate_protocol::params`]); absent,
/// the cursor is `now`. `latest=1` (or `true`) reads every topic latest value only
/// (`SubscribeOptions::latest` of the hub); `0`, `false` or no parameter reads every event,
/// except on topics the server reads latest-only for everyone.
///
/// As an axum extractor it rejects a bad request with [`ApiError`] (400 and a JSON body).
///
/// ```
/// use pushgate_http::{Query, SubscribeParams};
/// use pushgate_hub::Cursor;
///
/// let q = Query::parse(Some("topic=a&topics=b,c&cursor=oldest"));
/// let params = SubscribeParams::from_query(&q, None)?;
/// assert_eq!(params.topics.iter().map(|t| t.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
/// assert_eq!(params.cursor, Cursor::Oldest);
///
/// let header_wins = SubscribeParams::from_query(&q, Some("now"))?;
/// assert_eq!(header_wins.cursor, Cursor::Now);
///
/// assert!(SubscribeParams::from_query(&Query::parse(Some("topic=a&cursor=junk")), None).is_err());
/// assert!(SubscribeParams::from_query(&Query::parse(Some("topic=a&latest=1")), None)?.latest);
/// assert!(!params.latest);
/// assert!(SubscribeParams::from_query(&Query::parse(Some("topic=a&latest=yes")), None).is_err());
/// # Ok::<(), pushgate_http::ApiError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscribeParams {
    /// The topics, in request order (duplicates are harmless; the hub ignores them).
    pub topics: Vec<TopicName>,
    /// Where to start.
    pub cursor: Cursor,
    /// Read latest value only (`latest=1`).
    pub latest: bool,
}

impl SubscribeParams {
    /// Reads topics and cursor from `query` and an optional `Last-Event-ID` header value.
    pub fn from_query(query: &Query, last_event_id: Option<&str>) -> Result<Self, ApiError> {
        let mut topics = Vec::with_capacity(1);
        for name in params::topic_names(query.all(params::TOPIC), query.all(params::TOPICS)) {
            let topic = TopicName::new(name)
                .map_err(|err| ApiError::new(ErrorCode::InvalidTopic, format!("topic {name:?}: {err}")))?;
            topics.push(topic);
        }
        let cursor_text =
            params::cursor_text(last_event_id, query.get(params::CURSOR), query.get(params::LAST_EVENT_ID));
        let cursor = match cursor_text {
            None => Cursor::Now,
            Some(text) => text
                .parse::<Cursor>()
                .map_err(|err| ApiError::new(ErrorCode::InvalidCursor, format!("{err} (got {text:?})")))?,
        };
        let latest = match query.get("latest") {
            None | Some("" | "0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("latest must be 1, true, 0 or false (got {other:?})"),
                ));
            }
        };
        Ok(Self { topics, cursor, latest })
    }

    /// Reads topics and cursor from `query` and the request's `Last-Event-ID` header; a header
    /// that is not visible ASCII (a cursor never is anything else) is `400 invalid_cursor`,
    /// not ignored: the client meant to resume.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue};
    /// use pushgate_http::{ErrorCode, Query, SubscribeParams};
    ///
    /// let query = Query::parse(Some("topic=a&cursor=oldest"));
    /// let mut headers = HeaderMap::new();
    /// headers.insert("last-event-id", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    /// let err = SubscribeParams::from_request(&query, &headers).unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::InvalidCursor);
    /// ```
    pub fn from_request(query: &Query, headers: &HeaderMap) -> Result<Self, ApiError> {
        Self::from_header(query, headers.get(params::LAST_EVENT_ID_HEADER))
    }

    /// As [`from_request`](Self::from_request), given the `Last-Event-ID` header's value.
    pub(crate) fn from_header(query: &Query, last_event_id: Option<&HeaderValue>) -> Result<Self, ApiError> {
        let last_event_id = match last_event_id {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidCursor,
                    "the Last-Event-ID header is not a cursor: it holds bytes other than visible ASCII",
                )
            })?),
        };
        Self::from_query(query, last_event_id)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SubscribeParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_request(&Query::parse(parts.uri.query()), &parts.headers)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query()))
    }
}

/// The default budget of one poll answer, in bytes of events (4 MiB): the short- and long-poll
/// transports pass it to the hub's `FetchOptions::max_bytes` unless configured otherwise.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 4 << 20;

/// How many events one poll answer may carry: a default for requests that name no `limit`, and
/// a cap on those that do. Shared by the short- and long-poll transports.
///
/// ```
/// use pushgate_http::{BatchLimit, Query};
///
/// let limit = BatchLimit::new(100, 500);
/// assert_eq!(limit.from_query(&Query::parse(None))?, 100);
/// assert_eq!(limit.from_query(&Query::parse(Some("limit=9999")))?, 500);
/// assert!(limit.from_query(&Query::parse(Some("limit=0"))).is_err());
/// assert_eq!(BatchLimit::default(), BatchLimit::new(1000, 1000));
/// # Ok::<(), pushgate_http::ApiError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimit {
    default: usize,
    max: usize,
}

impl Default for BatchLimit {
    fn default() -> Self {
        Self { default: 1000, max: 1000 }
    }
}

impl BatchLimit {
    /// `default` events when the request names no `limit`, at most `max` whatever it names (both
    /// at least 1; the default is lowered to the maximum).
    pub fn new(default: usize, max: usize) -> Self {
        let max = max.max(1);
        Self { default: default.clamp(1, max), max }
    }

    /// The limit used when the request names none.
    pub fn default_limit(&self) -> usize {
        self.default
    }

    /// The largest limit honoured.
    pub fn max_limit(&self) -> usize {
        self.max
    }

    /// The request's `limit` parameter, capped, or the default; `400 invalid_parameter` when it
    /// is not a whole number from 1 up.
    pub fn from_query(&self, query: &Query) -> Result<usize, ApiError> {
        query.count("limit", self.default, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_decodes_its_pairs_and_keeps_their_order() {
        let q = Query::parse(Some("topic=a%2Cb&x=1+2&topic=&empty&topic=%C3%A9&=v"));
        assert_eq!(q.all("topic").collect::<Vec<_>>(), ["a,b", "", "é"]);
        assert_eq!(q.get("x"), Some("1 2"));
        assert_eq!(q.get("empty"), Some(""));
        assert_eq!(q.get(""), Some("v"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(format!("{q:?}").matches("topic").count(), 3);
        assert!(Query::parse(Some("")).iter().next().is_none());
        assert!(Query::parse(None).iter().next().is_none());
    }

    fn decoded(raw: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(raw.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect()
    }

    #[test]
    fn a_query_without_escapes_splits_as_form_urlencoded_does() {
        for raw in
            ["a=1&b=2", "a", "a=", "=v", "&&a=1&&", "a=1=2&b", "&", "=", "topic=t0&cursor=abc-12&timeout=25"]
        {
            let q = Query::parse(Some(raw));
            let ours: Vec<(String, String)> = q.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            assert_eq!(ours, decoded(raw), "{raw:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_query_parses_as_form_urlencoded_does(raw in "[a-z0-9=&%+.,é-]{0,40}") {
            let q = Query::parse(Some(&raw));
            let ours: Vec<(String, String)> = q.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            proptest::prop_assert_eq!(ours, decoded(&raw));
        }
    }
}
