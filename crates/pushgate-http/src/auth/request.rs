//! What a policy is asked: the action, the topics, the token, and what it may know of the
//! client (its address and the headers an application authenticates with).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, header};
use pushgate_hub::TopicName;

use super::{Action, Authorize, Grant};

/// What a policy may know of a client besides its token: its address and the four request
/// headers an application authenticates with (`Cookie`, `Authorization`, `Origin`,
/// `User-Agent`). Taken once per request; a WebSocket connection keeps its upgrade's for the
/// frames it sends later.
///
/// The address is the request's [`ConnectInfo<SocketAddr>`] extension, which the gateway (and
/// `axum::serve` with `into_make_service_with_connect_info`) puts there; `None` without it.
///
/// `Debug` shows whether `Cookie` and `Authorization` are present, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client's IP address, when the server knows it.
    pub ip: Option<IpAddr>,
    /// The `Cookie` header.
    pub cookie: Option<HeaderValue>,
    /// The `Authorization` header.
    pub authorization: Option<HeaderValue>,
    /// The `Origin` header.
    pub origin: Option<HeaderValue>,
    /// The `User-Agent` header.
    pub user_agent: Option<HeaderValue>,
}

impl ClientInfo {
    /// The client of a request with these headers and extensions (the headers copied).
    ///
    /// ```
    /// use http::{Extensions, HeaderMap, HeaderValue, header};
    /// use pushgate_http::ClientInfo;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::COOKIE, HeaderValue::from_static("session=abc"));
    /// let client = ClientInfo::of(&headers, &Extensions::new());
    /// assert_eq!(client.cookie.as_ref().map(|v| v.as_bytes()), Some(&b"session=abc"[..]));
    /// assert_eq!(client.ip, None);
    /// assert!(!format!("{client:?}").contains("abc"));
    /// ```
    pub fn of(headers: &HeaderMap, extensions: &Extensions) -> Self {
        Self {
            ip: ip_of(extensions),
            cookie: headers.get(header::COOKIE).cloned(),
            authorization: headers.get(header::AUTHORIZATION).cloned(),
            origin: headers.get(header::ORIGIN).cloned(),
            user_agent: headers.get(header::USER_AGENT).cloned(),
        }
    }

    /// As [`of`](Self::of), moving the headers out of `headers` instead of copying them.
    pub fn take(headers: &mut HeaderMap, extensions: &Extensions) -> Self {
        Self {
            ip: ip_of(extensions),
            cookie: headers.remove(header::COOKIE),
            authorization: headers.remove(header::AUTHORIZATION),
            origin: headers.remove(header::ORIGIN),
            user_agent: headers.remove(header::USER_AGENT),
        }
    }

    /// A client known only by its address (see [`of`](Self::of)), for [`keep`](Self::keep) to
    /// add its headers to.
    pub(crate) fn of_address(extensions: &Extensions) -> Self {
        Self { ip: ip_of(extensions), ..Self::default() }
    }

    /// Keeps `value` when `name` is one of the client's headers not yet seen (the first value
    /// of each counts, as [`of`](Self::of) reads them); hands it back otherwise. For a reader
    /// that drains a request's headers once instead of looking each one up.
    ///
    /// ```
    /// use http::{HeaderValue, header};
    /// use pushgate_http::ClientInfo;
    ///
    /// let mut client = ClientInfo::default();
    /// assert!(client.keep(&header::ORIGIN, HeaderValue::from_static("https://a")).is_none());
    /// assert!(client.keep(&header::ORIGIN, HeaderValue::from_static("https://b")).is_some());
    /// assert!(client.keep(&header::ACCEPT, HeaderValue::from_static("*/*")).is_some());
    /// assert_eq!(client.origin.unwrap(), "https://a");
    /// ```
    pub fn keep(&mut self, name: &HeaderName, value: HeaderValue) -> Option<HeaderValue> {
        let slot = match *name {
            header::COOKIE => &mut self.cookie,
            header::AUTHORIZATION => &mut self.authorization,
            header::ORIGIN => &mut self.origin,
            header::USER_AGENT => &mut self.user_agent,
            _ => return Some(value),
        };
        if slot.is_some() {
            return Some(value);
        }
        *slot = Some(value);
        None
    }

    /// [`of`](Self::of) when `authorize` can refuse anything, else nothing: a server without
    /// auth copies no header.
    pub fn for_policy(authorize: &dyn Authorize, headers: &HeaderMap, extensions: &Extensions) -> Self {
        if authorize.is_enforced() { Self::of(headers, extensions) } else { Self::default() }
    }

    /// With this address.
    #[must_use]
    pub fn with_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }
}

fn ip_of(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_canonical())
}

impl fmt::Debug for ClientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInfo")
            .field("ip", &self.ip)
            .field("cookie", &self.cookie.as_ref().map(|_| "<redacted>"))
            .field("authorization", &self.authorization.as_ref().map(|_| "<redacted>"))
            .field("origin", &self.origin)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// One question to a policy: may this client do `action` on every one of `topics`?
///
/// ```
/// use pushgate_http::{Action, AuthRequest, ClientInfo};
///
/// let client = ClientInfo::default();
/// let request = AuthRequest::new(Action::Subscribe, &[], None, "sse", &client).holds_connection();
/// assert!(request.holds_connection && request.current.is_none());
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthRequest<'a> {
    /// What the client wants to do.
    pub action: Action,
    /// With which topics. Empty: only the credentials are checked (a WebSocket `auth` frame,
    /// an upgrade naming no topic), and a client without credentials is allowed.
    pub topics: &'a [TopicName],
    /// The request's token ([`token_from`](crate::token_from)), if any.
    pub token: Option<&'a str>,
    /// Which transport asks: `poll`, `longpoll`, `sse`, `ws`, or `http` (the gateway's own API).
    pub transport: &'static str,
    /// The client's address and authentication headers.
    pub client: &'a ClientInfo,
    /// The grant the client's connection holds (a WebSocket's), which the policy may reuse.
    pub current: Option<&'a Grant>,
    /// The grant will be held for as long as a stream or a parked request lives (an SSE
    /// stream, a WebSocket, a parked long poll): it counts as one of the user's connections.
    pub holds_connection: bool,
}

impl<'a> AuthRequest<'a> {
    /// A request to do `action` on `topics` with `token`, from `client` over `transport`.
    pub fn new(
        action: Action,
        topics: &'a [TopicName],
        token: Option<&'a str>,
        transport: &'static str,
        client: &'a ClientInfo,
    ) -> Self {
        Self { action, topics, token, transport, client, current: None, holds_connection: false }
    }

    /// Made on a connection that holds `grant`.
    #[must_use]
    pub fn current(mut self, grant: &'a Grant) -> Self {
        self.current = Some(grant);
        self
    }

    /// For a stream or parked request that holds its grant while it lives.
    #[must_use]
    pub fn holds_connection(mut self) -> Self {
        self.holds_connection = true;
        self
    }
}
