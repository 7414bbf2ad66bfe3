//! Which web pages may open a WebSocket: the `Origin` check of the upgrade, against cross-site
//! WebSocket hijacking.
//!
//! Browsers attach cookies and other ambient credentials to a WebSocket upgrade from any page,
//! and the same-origin policy does not apply to WebSockets; the `Origin` header they always send
//! is the only way to tell a page of ours from a hostile one. Clients that are not browsers send
//! no `Origin` and are not concerned.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, header};

/// A web origin, `scheme://host[:port]`, with the default port of its scheme filled in, so
/// that `https://a.example` and `https://a.example:443` are the same origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// Why a configured origin was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin:?} is not an origin: expected scheme://host[:port] with scheme http or https")]
pub struct InvalidOrigin {
    origin: String,
}

impl FromStr for Origin {
    type Err = InvalidOrigin;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidOrigin { origin: text.to_owned() };
        let (scheme, authority) = text.split_once("://").ok_or_else(invalid)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(invalid()),
        };
        let (host, port) = host_and_port(authority).ok_or_else(invalid)?;
        Ok(Self { scheme, host, port: port.unwrap_or(default_port) })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// `host[:port]` (the host lowercased, an IPv6 host in brackets); `None` if malformed or if
/// anything (a path, user info) follows.
fn host_and_port(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let rest = &authority[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(port) => Some(port),
            None if rest.is_empty() => None,
            None => return None,
        };
        (&authority[..=end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// The web origins whose pages may open a WebSocket ([`WsConfig::allowed_origins`]).
///
/// An upgrade without an `Origin` header (not a browser) is always allowed. With an origin it
/// is allowed when the policy is [`any`](Self::any), when the origin is in the
/// [`list`](Self::list) (exact scheme, host and port; default ports normalised), or, by
/// default ([`same_origin`](Self::same_origin)), when its host and port are the request's
/// `Host`. Otherwise the upgrade is refused with `403 origin_forbidden`.
///
/// ```
/// use pushgate_ws::AllowedOrigins;
///
/// let list = AllowedOrigins::list(["https://app.example", "http://localhost:3000"])?;
/// assert!(list.allows(Some("https://app.example:443"), None));
/// assert!(!list.allows(Some("https://evil.example"), None));
/// assert!(list.allows(None, None));
///
/// let same = AllowedOrigins::same_origin();
/// assert!(same.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
/// assert!(!same.allows(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080")));
/// assert!(AllowedOrigins::list(["*"])?.allows(Some("https://anywhere.example"), None));
/// # Ok::<(), pushgate_ws::InvalidOrigin>(())
/// ```
///
/// [`WsConfig::allowed_origins`]: crate::WsConfig::allowed_origins
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Policy);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Policy {
    #[default]
    SameOrigin,
    Any,
    List(Vec<Origin>),
}

impl AllowedOrigins {
    /// Pages served from the host and port the upgrade request was sent to (the default).
    pub fn same_origin() -> Self {
        Self(Policy::SameOrigin)
    }

    /// Pages from anywhere: no protection against cross-site WebSocket hijacking; for servers
    /// whose clients authenticate with tokens only, never with cookies.
    pub fn any() -> Self {
        Self(Policy::Any)
    }

    /// Pages from these origins (`scheme://host[:port]`); `*` among them allows any. An empty
    /// list means [`same_origin`](Self::same_origin).
    ///
    /// # Errors
    ///
    /// [`InvalidOrigin`] for an entry that is not an http or https origin.
    pub fn list<I>(origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut list = Vec::new();
        for origin in origins {
            let origin = origin.as_ref().trim();
            if origin == "*" {
                return Ok(Self::any());
            }
            list.push(origin.parse()?);
        }
        Ok(if list.is_empty() { Self::same_origin() } else { Self(Policy::List(list)) })
    }

    /// Whether a request with this `Origin` (and `Host`) header value may upgrade.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if self.0 == Policy::Any {
            return true;
        }
        // `null` (sandboxed frames, file: pages) and anything unparsable are no origin of ours.
        let Ok(origin) = origin.trim().parse::<Origin>() else { return false };
        match &self.0 {
            Policy::Any => true,
            Policy::List(list) => list.contains(&origin),
            Policy::SameOrigin => host.and_then(host_and_port).is_some_and(|(host, port)| {
                let default_port = if origin.scheme == "https" { 443 } else { 80 };
                host == origin.host && port.unwrap_or(default_port) == origin.port
            }),
        }
    }

    /// [`allows`](Self::allows) for a request's headers.
    pub(crate) fn allows_request(&self, headers: &HeaderMap) -> bool {
        let text = |name| headers.get(name).map(|value: &http::HeaderValue| value.to_str().unwrap_or("null"));
        self.allows(text(header::ORIGIN), text(header::HOST))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_normalise_default_ports() {
        let origin = |text: &str| text.parse::<Origin>().map(|origin| origin.to_string());
        assert_eq!(origin("https://App.Example").as_deref(), Ok("https://app.example:443"));
        assert_eq!(origin("http://localhost:3000").as_deref(), Ok("http://localhost:3000"));
        assert_eq!(origin("http://[::1]:8080").as_deref(), Ok("http://[::1]:8080"));
        assert_eq!(origin("HTTP://[::1]").as_deref(), Ok("http://[::1]:80"));
        for bad in
            ["app.example", "ftp://x", "https://", "https://x/path", "https://x:99999", "null", "https://u@x"]
        {
            assert!(bad.parse::<Origin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        let same = AllowedOrigins::same_origin();
        assert!(same.allows(Some("https://gw.example"), Some("gw.example")));
        assert!(same.allows(Some("https://gw.example"), Some("GW.example:443")));
        assert!(same.allows(Some("http://[::1]:8080"), Some("[::1]:8080")));
        assert!(!same.allows(Some("https://gw.example"), Some("gw.example:8443")));
        assert!(!same.allows(Some("https://evil.example"), Some("gw.example")));
        assert!(!same.allows(Some("null"), Some("gw.example")));
        assert!(!same.allows(Some("https://gw.example"), None));
    }

    #[test]
    fn lists_match_exactly() {
        let list = AllowedOrigins::list(["http://a.example:8000", " https://b.example "]).unwrap();
        assert!(list.allows(Some("http://a.example:8000"), Some("gw")));
        assert!(list.allows(Some("https://b.example:443"), Some("gw")));
        assert!(!list.allows(Some("https://a.example:8000"), Some("a.example:8000")));
        assert!(!list.allows(Some("http://a.example"), Some("gw")));
        assert_eq!(AllowedOrigins::list(Vec::<String>::new()), Ok(AllowedOrigins::same_origin()));
        assert!(AllowedOrigins::list(["nope"]).is_err());
    }
}
