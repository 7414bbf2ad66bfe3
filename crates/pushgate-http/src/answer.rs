//! What the short- and long-poll transports share: the size limits of an answer, and the
//! request that is parsed, fetched and rendered the same way on both (they differ only in the
//! [`FetchOptions`] they pass: a long poll adds a wait and a presence label).

use std::pin::Pin;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, header};
use pushgate_hub::{FetchOptions, Hub};

use crate::auth::{Action, AuthError, AuthRequest, ClientInfo, Grant};
use crate::error::ApiError;
use crate::query::{BatchLimit, DEFAULT_MAX_ANSWER_BYTES, Query, SubscribeParams};
use crate::wire;

/// How much one poll answer may hold: a number of events ([`BatchLimit`]) and about a number
/// of bytes. The transports' configs (`PollConfig`, `LongPollConfig`) carry one and expose its
/// setters through [`answer_limit_methods!`](crate::answer_limit_methods).
///
/// ```
/// use pushgate_http::{AnswerLimits, BatchLimit, Query};
///
/// let limits = AnswerLimits::default().limit(BatchLimit::new(10, 100)).max_bytes(1 << 20);
/// assert_eq!(limits.get_limit().max_limit(), 100);
/// assert_eq!(limits.get_max_bytes(), 1 << 20);
/// assert!(limits.fetch_options(&Query::parse(Some("limit=5"))).is_ok());
/// assert!(limits.fetch_options(&Query::parse(Some("limit=x"))).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    limit: BatchLimit,
    max_bytes: usize,
}

impl Default for AnswerLimits {
    fn default() -> Self {
        Self { limit: BatchLimit::default(), max_bytes: DEFAULT_MAX_ANSWER_BYTES }
    }
}

impl AnswerLimits {
    /// Events per answer: the default when the request names no `limit`, and the cap (default
    /// 1,000 and 1,000).
    #[must_use]
    pub fn limit(mut self, limit: BatchLimit) -> Self {
        self.limit = limit;
        self
    }

    /// About how many bytes of events one answer may hold (default 4 MiB). The answer stops
    /// before the event that would pass it and its cursor continues from there; the first
    /// event always goes, however large, so every event can be delivered.
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The events-per-answer limit.
    pub fn get_limit(&self) -> BatchLimit {
        self.limit
    }

    /// The answer budget in bytes.
    pub fn get_max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The fetch for a request with `query`: its `limit` (capped) and the byte budget;
    /// `400 invalid_parameter` for a bad `limit`.
    pub fn fetch_options(&self, query: &Query) -> Result<FetchOptions, ApiError> {
        Ok(FetchOptions::default().limit(self.limit.from_query(query)?).max_bytes(self.max_bytes))
    }
}

/// The answer-size setters and getters of a poll transport's config (`limit`, `max_bytes`,
/// `get_limit`, `get_max_bytes`, documented as on [`AnswerLimits`]), for use inside its
/// `impl` block; the config needs a field `answers: AnswerLimits`. Both poll transports get
/// the same builder methods without writing them twice.
#[macro_export]
macro_rules! answer_limit_methods {
    () => {
        /// Events per answer: the default when the request names no `limit`, and the cap
        /// (default 1,000 and 1,000).
        #[must_use]
        pub fn limit(mut self, limit: $crate::BatchLimit) -> Self {
            self.answers = self.answers.limit(limit);
            self
        }

        /// About how many bytes of events one answer may hold (default 4 MiB). The answer
        /// stops before the event that would pass it and its cursor continues from there; the
        /// first event always goes, however large, so every event can be delivered.
        #[must_use]
        pub fn max_bytes(mut self, bytes: usize) -> Self {
            self.answers = self.answers.max_bytes(bytes);
            self
        }

        /// The events-per-answer limit.
        pub fn get_limit(&self) -> $crate::BatchLimit {
            self.answers.get_limit()
        }

        /// The answer budget in bytes.
        pub fn get_max_bytes(&self) -> usize {
            self.answers.get_max_bytes()
        }
    };
}

/// A poll request (`?topic=…&cursor=…` and its headers), parsed once: as an axum extractor it
/// rejects bad topics or cursors with [`ApiError`]; [`answer`](Self::answer) fetches and
/// renders it with [`render_batch`](crate::render_batch)'s `ETag` and `304` rules.
///
/// It keeps only what the answer and the access check need of the request: the query, the
/// topics and cursor, the `If-None-Match` values and the [`ClientInfo`] (moved out of the
/// request, not copied).
#[derive(Debug)]
pub struct PollRequest {
    /// The whole query, for the transport's own parameters (`limit`, `timeout`).
    pub query: Query,
    answer: PollAnswer,
    /// The client's address and authentication headers (a token may be in `Authorization`
    /// when the query has none).
    client: ClientInfo,
}

impl PollRequest {
    /// Topics and starting cursor.
    pub fn params(&self) -> &SubscribeParams {
        &self.answer.params
    }

    /// The question to ask the access policy before answering: may the request's client (its
    /// token, the `token` query parameter else `Authorization: Bearer`, see
    /// [`token_from`](crate::token_from), and its [`ClientInfo`]) subscribe to its topics over
    /// `transport`?
    pub fn auth_request(&self, transport: &'static str) -> AuthRequest<'_> {
        let token = crate::auth::token_in(&self.query, self.client.authorization.as_ref());
        AuthRequest::new(Action::Subscribe, &self.answer.params.topics, token, transport, &self.client)
    }

    /// The presence lease of the request's client, counted under `transport`, when its query
    /// names one ([`presence_hold`](crate::presence_hold)).
    ///
    /// # Errors
    /// `400 invalid_parameter` for a bad `client` or `interval`.
    pub fn presence_hold(
        &self,
        transport: &'static str,
    ) -> Result<Option<pushgate_hub::PresenceHold>, ApiError> {
        crate::presence_hold(&self.query, &self.client, transport)
    }

    /// Fetches the request's topics from its cursor with `options` and renders the answer:
    /// `200` with the batch, or `304` when the request's `If-None-Match` names its `ETag`.
    ///
    /// # Errors
    ///
    /// The fetch's error as an [`ApiError`] (too many topics, a cursor ahead of the hub, the
    /// hub shutting down).
    pub fn answer<'a>(
        &'a self,
        hub: &'a Hub,
        options: &'a FetchOptions,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send + 'a {
        self.answer.answer(hub, options)
    }

    /// Only what [`answer`](Self::answer) needs (no query, no token): for a request that waits,
    /// whose future should not carry the rest while it does.
    pub fn into_answer(self) -> PollAnswer {
        self.answer
    }
}

/// A [`PollRequest`] reduced to what its answer needs: the topics and cursor and the
/// `If-None-Match` values.
#[derive(Debug)]
pub struct PollAnswer {
    params: SubscribeParams,
    if_none_match: Option<HeaderValue>,
    /// Further `If-None-Match` header lines, which clients rarely send.
    more_if_none_match: Vec<HeaderValue>,
}

impl PollAnswer {
    /// As [`PollRequest::answer`].
    ///
    /// # Errors
    ///
    /// As [`PollRequest::answer`].
    pub async fn answer(&self, hub: &Hub, options: &FetchOptions) -> Result<Response, ApiError> {
        self.answer_within(hub, options, &Grant::forever()).await
    }

    /// As [`answer`](Self::answer), for a request allowed by `grant`: when the fetch ends with
    /// nothing to say (no event, no reset) because `grant` expired meanwhile (a parked long
    /// poll waits at most until then), the answer is `401 token_expired`, never an empty `200`
    /// that the client would repeat at once with the same token; when the grant is cut while
    /// the poll waits (its user disconnected, its token revoked), the answer is the cut's error.
    ///
    /// # Errors
    ///
    /// As [`PollRequest::answer`], and `token_expired`.
    pub async fn answer_within(
        &self,
        hub: &Hub,
        options: &FetchOptions,
        grant: &Grant,
    ) -> Result<Response, ApiError> {
        let SubscribeParams { topics, cursor, .. } = &self.params;
        let fetch = hub.fetch(topics, *cursor, options);
        let batch = match grant.cutoff() {
            None => fetch.await?,
            // A parked poll is one of its user's connections: disconnecting the user answers it.
            Some(cutoff) => {
                let mut fetch = std::pin::pin!(fetch);
                let mut cut = std::pin::pin!(cutoff.clone().wait());
                std::future::poll_fn(|cx| match cut.as_mut().poll(cx) {
                    std::task::Poll::Ready(cut) => std::task::Poll::Ready(Err(cut.error())),
                    std::task::Poll::Pending => {
                        fetch.as_mut().poll(cx).map(|batch| batch.map_err(ApiError::from))
                    }
                })
                .await?
            }
        };
        if batch.events.is_empty() && batch.reset.is_none() && grant.has_expired() && !hub.is_closed() {
            return Err(AuthError::TokenExpired.into());
        }
        let if_none_match = self.if_none_match.iter().chain(&self.more_if_none_match);
        Ok(wire::render(topics, *cursor, &batch, if_none_match))
    }
}

impl PollRequest {
    /// The poll request in `parts`, as the extractor reads it; the four headers of its
    /// [`ClientInfo`] are moved out of `parts`, the rest left as they were.
    ///
    /// # Errors
    ///
    /// `400` with the JSON body for a bad topic, cursor or `Last-Event-ID`.
    pub fn from_parts(parts: &mut Parts) -> Result<Self, ApiError> {
        let query = Query::parse(parts.uri.query());
        let params = SubscribeParams::from_request(&query, &parts.headers)?;
        let mut tags = parts.headers.get_all(header::IF_NONE_MATCH).iter().cloned();
        let answer = PollAnswer { params, if_none_match: tags.next(), more_if_none_match: tags.collect() };
        // Moved, not copied: nothing after this extractor reads them.
        let client = ClientInfo::take(&mut parts.headers, &parts.extensions);
        Ok(Self { query, answer, client })
    }

    /// As [`from_parts`](Self::from_parts), for a request that is used up here: every header
    /// is moved out in one pass (about seven lookups cost more, and every poll request makes
    /// them), so `parts` is left with none.
    fn from_used_parts(parts: &mut Parts) -> Result<Self, ApiError> {
        let query = Query::parse(parts.uri.query());
        let mut client = ClientInfo::of_address(&parts.extensions);
        let (mut last_event_id, mut if_none_match, mut more_if_none_match) = (None, None, Vec::new());
        let mut name = None;
        for (next, value) in parts.headers.drain() {
            // A name comes with its first value only; further values of it follow.
            if next.is_some() {
                name = next;
            }
            let Some(name) = &name else { continue };
            let Some(value) = client.keep(name, value) else { continue };
            if *name == header::IF_NONE_MATCH {
                match if_none_match {
                    None => if_none_match = Some(value),
                    Some(_) => more_if_none_match.push(value),
                }
            } else if name == pushgate_protocol::params::LAST_EVENT_ID_HEADER && last_event_id.is_none() {
                last_event_id = Some(value);
            }
        }
        let params = SubscribeParams::from_header(&query, last_event_id.as_ref())?;
        let answer = PollAnswer { params, if_none_match, more_if_none_match };
        Ok(Self { query, answer, client })
    }
}

/// Answers `request` as a poll transport's route does, without the router: its
/// [`PollRequest`] (or the `400` that refuses it) handed to `handle`, and `handle`'s result as
/// the response. The request's method and path are the caller's to check. The request itself
/// is dropped before the answer is awaited: only what `handle`'s future keeps stays while it
/// waits. Boxed, as a route's handler is: the future is moved once, into the box, and then
/// only the box is (a parked poll's future is large enough for its moves to show).
pub fn answer_request<F, Fut>(
    request: http::Request<axum::body::Body>,
    handle: F,
) -> Pin<Box<dyn Future<Output = Response> + Send>>
where
    F: FnOnce(PollRequest) -> Fut,
    Fut: Future<Output = Response> + Send + 'static,
{
    let (mut parts, _body) = request.into_parts();
    match PollRequest::from_used_parts(&mut parts) {
        Ok(request) => Box::pin(handle(request)),
        Err(error) => Box::pin(std::future::ready(error.into_response())),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PollRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use http::Request;
    use pushgate_hub::Cursor;

    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::get("/v1/poll?topic=a&cursor=now");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).expect("request").into_parts();
        parts.extensions.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 9], 1234))));
        parts
    }

    #[test]
    fn a_poll_request_reads_each_header_it_needs_once_in_one_pass() {
        let mut parts = parts(&[
            ("cookie", "first=1"),
            ("if-none-match", "\"a\""),
            ("accept", "*/*"),
            ("last-event-id", "oldest"),
            ("cookie", "second=2"),
            ("if-none-match", "\"b\", \"c\""),
            ("authorization", "Bearer t"),
            ("Origin", "https://app.example"),
            ("user-agent", "test"),
            ("if-none-match", "\"d\""),
        ]);
        let mut extracted = parts.clone();
        let request = PollRequest::from_used_parts(&mut parts).expect("valid request");
        assert!(parts.headers.is_empty());
        // The extractor reads the same, and leaves what is not the client's.
        let same = PollRequest::from_parts(&mut extracted).expect("valid request");
        assert_eq!(format!("{same:?}"), format!("{request:?}"));
        assert_eq!(same.client, request.client);
        assert_eq!(extracted.headers.len(), 5);
        assert!(extracted.headers.contains_key("accept") && extracted.headers.contains_key("if-none-match"));
        // The header wins over the query's `cursor=now`.
        assert_eq!(request.params().cursor, Cursor::Oldest);
        let client = &request.client;
        assert_eq!(client.cookie.as_ref().map(HeaderValue::as_bytes), Some(&b"first=1"[..]));
        assert_eq!(client.authorization.as_ref().map(HeaderValue::as_bytes), Some(&b"Bearer t"[..]));
        assert_eq!(client.origin.as_ref().map(HeaderValue::as_bytes), Some(&b"https://app.example"[..]));
        assert_eq!(client.user_agent.as_ref().map(HeaderValue::as_bytes), Some(&b"test"[..]));
        assert_eq!(client.ip, Some([127, 0, 0, 9].into()));
        let answer = &request.answer;
        assert_eq!(answer.if_none_match.as_ref().map(HeaderValue::as_bytes), Some(&b"\"a\""[..]));
        let more: Vec<&[u8]> = answer.more_if_none_match.iter().map(HeaderValue::as_bytes).collect();
        assert_eq!(more, [&b"\"b\", \"c\""[..], b"\"d\""]);
    }

    #[test]
    fn a_poll_request_without_those_headers_has_none_of_them() {
        let request = PollRequest::from_used_parts(&mut parts(&[("host", "x")])).expect("valid request");
        assert_eq!(request.params().cursor, Cursor::Now);
        assert_eq!(request.client, ClientInfo::default().with_ip(Some([127, 0, 0, 9].into())));
        assert!(request.answer.if_none_match.is_none() && request.answer.more_if_none_match.is_empty());
    }

    #[test]
    fn a_last_event_id_that_is_no_text_is_refused() {
        let mut request = Request::get("/v1/poll?topic=a");
        request = request.header("last-event-id", HeaderValue::from_bytes(b"\xff").expect("value"));
        let (mut parts, ()) = request.body(()).expect("request").into_parts();
        let extracted = PollRequest::from_parts(&mut parts.clone()).expect_err("refused");
        let refused = PollRequest::from_used_parts(&mut parts).expect_err("refused");
        assert_eq!(refused.code(), crate::ErrorCode::InvalidCursor);
        assert_eq!(extracted.code(), crate::ErrorCode::InvalidCursor);
    }
}
