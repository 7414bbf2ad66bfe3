//! What the short- and long-poll transports share: the size limits of an answer, and the
//! request that is parsed, fetched and rendered the same way on both (they differ only in the
//! [`FetchOptions`] they pass: a long poll adds a wait and a presence label).

use axum::extract::FromRequestParts;
use axum::response::Response;
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

impl<S: Send + Sync> FromRequestParts<S> for PollRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = Query::parse(parts.uri.query());
        let params = SubscribeParams::from_request(&query, &parts.headers)?;
        let mut tags = parts.headers.get_all(header::IF_NONE_MATCH).iter().cloned();
        let answer = PollAnswer { params, if_none_match: tags.next(), more_if_none_match: tags.collect() };
        // Moved, not copied: nothing after this extractor reads them.
        let client = ClientInfo::take(&mut parts.headers, &parts.extensions);
        Ok(Self { query, answer, client })
    }
}
