//! One subscribe interface over the four transports: [`Transport`] names them,
//! [`TransportClient`] opens a [`Feed`] on any of them.

mod poll;
mod rust;
mod sse;
mod ws;

use std::fmt;
use std::str::FromStr;

use anyhow::bail;
use futures_util::future::BoxFuture;

use crate::feed::{Feed, Traffic};
use crate::server::TestServer;

pub use poll::{LongPollClient, PollClient};
pub use rust::RustClient;
pub use sse::SseClient;
pub use ws::WsClient;

/// The four ways to subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Short polling: `GET /v1/poll`, repeated.
    Poll,
    /// Long polling: `GET /v1/longpoll`, held until there is something.
    LongPoll,
    /// Server-Sent Events: one streaming `GET /v1/sse`.
    Sse,
    /// WebSocket: `GET /v1/ws` upgraded, subscribed through the query.
    Ws,
}

impl Transport {
    /// Every transport, in the order above.
    pub const ALL: [Transport; 4] = [Self::Poll, Self::LongPoll, Self::Sse, Self::Ws];

    /// The transport's short name, as in its path: `poll`, `longpoll`, `sse`, `ws`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::LongPoll => "longpoll",
            Self::Sse => "sse",
            Self::Ws => "ws",
        }
    }

    /// The path subscribers request: `/v1/poll`, `/v1/longpoll`, `/v1/sse`, `/v1/ws`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Poll => "/v1/poll",
            Self::LongPoll => "/v1/longpoll",
            Self::Sse => "/v1/sse",
            Self::Ws => "/v1/ws",
        }
    }

    /// A new client for this transport with default settings and its own traffic counters.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn client(self) -> anyhow::Result<Box<dyn TransportClient>> {
        Ok(match self {
            Self::Poll => Box::new(PollClient::new()?),
            Self::LongPoll => Box::new(LongPollClient::new()?),
            Self::Sse => Box::new(SseClient::new()?),
            Self::Ws => Box::new(WsClient::new()),
        })
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Transport {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        match Self::ALL.into_iter().find(|t| t.name() == name) {
            Some(transport) => Ok(transport),
            None => bail!("no transport is called {name:?} (poll, longpoll, sse, ws)"),
        }
    }
}

/// Subscribes over one transport.
///
/// `connect` returns once the subscription's position is fixed: the first poll was answered,
/// the SSE response headers arrived, or the WebSocket handshake completed. Events published
/// after that are delivered to the feed. A subscribe request the server refuses fails with a
/// [`Rejected`](crate::Rejected) error.
pub trait TransportClient: Send + Sync {
    /// Which transport this client speaks.
    fn transport(&self) -> Transport;

    /// Requests made and bytes received by this client's feeds so far.
    fn traffic(&self) -> &Traffic;

    /// Subscribes to `topics` on the gateway at `base_url` (`http://host:port`), from `cursor`
    /// (`None`: the server's default, `now`).
    fn connect_url<'a>(
        &'a self,
        base_url: &'a str,
        topics: &'a [&'a str],
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Box<dyn Feed>>>;

    /// Subscribes to `topics` on `server`; see [`connect_url`](Self::connect_url).
    fn connect<'a>(
        &'a self,
        server: &'a TestServer,
        topics: &'a [&'a str],
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, anyhow::Result<Box<dyn Feed>>> {
        self.connect_url(server.base_url(), topics, cursor)
    }
}

/// `topic=a&topic=b[&cursor=c]` followed by `extra`, form-encoded.
fn subscribe_query(topics: &[&str], cursor: Option<&str>, extra: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for topic in topics {
        query.append_pair("topic", topic);
    }
    if let Some(cursor) = cursor {
        query.append_pair("cursor", cursor);
    }
    for (name, value) in extra {
        query.append_pair(name, value);
    }
    query.finish()
}

/// The `Content-Type` of a response, when it has a readable one.
fn content_type(headers: &http::HeaderMap) -> Option<String> {
    headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Parses a JSON object the server sent, or says what arrived instead.
fn json_object(what: &str, text: &str) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) | Err(_) => bail!("{what} is not a JSON object: {text}"),
    }
}
