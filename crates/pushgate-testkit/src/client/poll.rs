//! Short and long polling clients: a loop of `GET` requests that follows the answer's `cursor`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures_util::future::BoxFuture;
use http::HeaderValue;

use super::{Transport, TransportClient, json_object, subscribe_query};
use crate::feed::{self, Delivery, Feed, FeedSender, Received, TaskFeed, Traffic};
use crate::server::rejected;

/// How long a short-poll request may take before the feed fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Short polling: `GET /v1/poll` every `interval` (default 50 ms) while nothing is new, at once
/// again after an answer with events, sending the last `ETag` back in `If-None-Match`.
#[derive(Debug)]
pub struct PollClient {
    http: reqwest::Client,
    interval: Duration,
    traffic: Arc<Traffic>,
}

impl PollClient {
    /// A client polling every 50 ms.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self { http: http_client()?, interval: Duration::from_millis(50), traffic: Arc::default() })
    }

    /// Sets how long to wait between polls that brought nothing new.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

/// Long polling: `GET /v1/longpoll?timeout=<wait>` (default 5 s) in a loop.
///
/// The first request of a feed, made by `connect`, asks with `timeout=0`: it fixes the feed's
/// position (the server turns `now` into a real cursor) without holding `connect` up.
#[derive(Debug)]
pub struct LongPollClient {
    http: reqwest::Client,
    wait: Duration,
    traffic: Arc<Traffic>,
}

impl LongPollClient {
    /// A client asking the server to hold each request up to 5 s.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self { http: http_client()?, wait: Duration::from_secs(5), traffic: Arc::default() })
    }

    /// Sets the `timeout` sent with each request (whole seconds).
    #[must_use]
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

impl TransportClient for PollClient {
    fn transport(&self) -> Transport {
        Transport::Poll
    }

    fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    fn connect_url<'a>(
        &'a self,
        base_url: &'a str,
        topics: &'a [&'a str],
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Box<dyn Feed>>> {
        let poller = Poller::new(Transport::Poll, &self.http, &self.traffic, base_url, topics, cursor);
        Box::pin(start(poller, Mode::Short { interval: self.interval }))
    }
}

impl TransportClient for LongPollClient {
    fn transport(&self) -> Transport {
        Transport::LongPoll
    }

    fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    fn connect_url<'a>(
        &'a self,
        base_url: &'a str,
        topics: &'a [&'a str],
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Box<dyn Feed>>> {
        let poller = Poller::new(Transport::LongPoll, &self.http, &self.traffic, base_url, topics, cursor);
        Box::pin(start(poller, Mode::Long { wait: self.wait }))
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(REQUEST_TIMEOUT)
        .build()
        .context("building the HTTP client")
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Short { interval: Duration },
    Long { wait: Duration },
}

/// Makes the first request, then hands the rest of the loop to a reader task.
async fn start(mut poller: Poller, mode: Mode) -> anyhow::Result<Box<dyn Feed>> {
    let first_wait = match mode {
        Mode::Short { .. } => None,
        Mode::Long { .. } => Some(Duration::ZERO),
    };
    let answer = poller.poll(first_wait).await?.ok_or_else(|| anyhow!("the first poll answered 304"))?;
    let (sender, deliveries) = feed::channel();
    let initial_cursor = if answer.is_empty() { Some(answer.cursor.clone()) } else { poller.start.clone() };
    for item in answer.into_received() {
        // The channel is new and larger than one answer (at most 1,000 events and a reset).
        sender.try_send(Ok(item)).ok();
    }
    let transport = poller.transport;
    let reader = tokio::spawn(run(poller, mode, sender));
    Ok(Box::new(TaskFeed::new(transport, initial_cursor, deliveries, reader)))
}

/// The polling loop; ends when the feed is dropped or a request fails.
async fn run(mut poller: Poller, mode: Mode, sender: FeedSender) {
    loop {
        let wait = match mode {
            Mode::Short { .. } => None,
            Mode::Long { wait } => Some(wait),
        };
        let answer = match poller.poll(wait).await {
            Ok(answer) => answer,
            Err(error) => {
                sender.send(Err(error)).await.ok();
                return;
            }
        };
        let idle = answer.as_ref().is_none_or(Answer::is_empty);
        for item in answer.map(Answer::into_received).unwrap_or_default() {
            if sender.send(Ok(item)).await.is_err() {
                return;
            }
        }
        if idle {
            let pause = match mode {
                Mode::Short { interval } => interval,
                // A long poll answers empty only after its wait (or on shutdown); the pause only
                // keeps a server that answers at once from being hammered.
                Mode::Long { .. } => Duration::from_millis(20),
            };
            tokio::time::sleep(pause).await;
        }
    }
}

/// One poll answer: `{"events":[…],"cursor":"…","reset":{…}?}`.
#[derive(Debug)]
struct Answer {
    reset: Option<serde_json::Value>,
    events: Vec<serde_json::Value>,
    cursor: String,
}

impl Answer {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let mut object = json_object("the poll answer", text)?;
        let Some(serde_json::Value::Array(events)) = object.remove("events") else {
            bail!("the poll answer has no `events` array: {text}");
        };
        let Some(serde_json::Value::String(cursor)) = object.remove("cursor") else {
            bail!("the poll answer has no `cursor` string: {text}");
        };
        let reset = object.remove("reset");
        Ok(Self { reset, events, cursor })
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.reset.is_none()
    }

    /// The deliveries in order, each with the cursor that resumes after it: an event's `id`,
    /// except that the answer's `cursor` is where its last delivery leaves the reader.
    fn into_received(self) -> Vec<Received> {
        let mut out = Vec::with_capacity(self.events.len() + 1);
        if let Some(reset) = self.reset {
            out.push(Received { delivery: Delivery::Reset(reset), cursor: None });
        }
        for event in self.events {
            let id = event.get("id").and_then(|id| id.as_str()).map(str::to_owned);
            out.push(Received { delivery: Delivery::Event(event), cursor: id });
        }
        if let Some(last) = out.last_mut() {
            last.cursor = Some(self.cursor);
        }
        out
    }
}

/// The state of one polling feed: where the next request starts and what to revalidate.
struct Poller {
    transport: Transport,
    http: reqwest::Client,
    traffic: Arc<Traffic>,
    endpoint: String,
    topics: Vec<String>,
    /// The cursor the feed was opened with.
    start: Option<String>,
    /// The cursor the next request sends.
    cursor: Option<String>,
    /// The last `ETag` and the URL it came from: HTTP revalidates a URL, and the URL changes
    /// with the cursor.
    etag: Option<(String, HeaderValue)>,
}

impl Poller {
    fn new(
        transport: Transport,
        http: &reqwest::Client,
        traffic: &Arc<Traffic>,
        base_url: &str,
        topics: &[&str],
        cursor: Option<&str>,
    ) -> Self {
        Self {
            transport,
            http: http.clone(),
            traffic: Arc::clone(traffic),
            endpoint: format!("{base_url}{}", transport.path()),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            start: cursor.map(str::to_owned),
            cursor: cursor.map(str::to_owned),
            etag: None,
        }
    }

    /// One request; `None` for `304 Not Modified`. `wait` is the long poll's `timeout`.
    async fn poll(&mut self, wait: Option<Duration>) -> anyhow::Result<Option<Answer>> {
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        let seconds = wait.map(|w| w.as_secs().to_string());
        let extra: Vec<(&str, &str)> = seconds.iter().map(|s| ("timeout", s.as_str())).collect();
        let url = format!("{}?{}", self.endpoint, subscribe_query(&topics, self.cursor.as_deref(), &extra));
        let mut request = self.http.get(&url).timeout(REQUEST_TIMEOUT + wait.unwrap_or_default());
        if let Some((etag_url, etag)) = &self.etag
            && *etag_url == url
        {
            request = request.header(http::header::IF_NONE_MATCH, etag.clone());
        }
        self.traffic.request();
        let what = format!("GET {}", self.transport.path());
        let response = request.send().await.with_context(|| what.clone())?;
        match response.status() {
            reqwest::StatusCode::NOT_MODIFIED => return Ok(None),
            reqwest::StatusCode::OK => {}
            _ => return Err(rejected(what, response).await.into()),
        }
        let etag = response.headers().get(http::header::ETAG).cloned();
        let body = response.bytes().await.with_context(|| format!("reading the answer to {what}"))?;
        self.traffic.received(body.len());
        let answer = Answer::parse(&String::from_utf8_lossy(&body))?;
        self.etag = etag.map(|etag| (url, etag));
        self.cursor = Some(answer.cursor.clone());
        Ok(Some(answer))
    }
}
