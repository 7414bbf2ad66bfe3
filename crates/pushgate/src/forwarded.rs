//! Who a request is from when a reverse proxy forwards it: behind nginx every client connects
//! from nginx's address, so the per-client limits (connections per address, the publish rate)
//! must count the address the proxy names, and only a proxy the operator trusts may name one.
//!
//! For a request from a peer in [`TrustedProxies`], the client is read from
//! `X-Forwarded-For` when the request has one, else from the `for=` parameters of `Forwarded`
//! (RFC 7239), every line of the header in order: walking from the right (the hop nearest the
//! gateway), the first address that is not itself a trusted proxy is the client; when every
//! address is trusted, the leftmost is. A client can write anything into these headers, but
//! its proxy appends the address it really connected from, to the right of whatever the
//! client wrote, so the walk stops there. An entry that is not an address (`unknown`, an
//! obfuscated name, garbage) ends the walk: the request counts for the hop to its right (the
//! proxy itself when it is the last entry).
//!
//! `X-Forwarded-For` wins when both are there, because the common proxies (nginx, HAProxy's
//! `option forwardfor`, Envoy, Traefik, Caddy) maintain that one and pass a client's own
//! `Forwarded` through untouched; a proxy that maintains only `Forwarded` must drop a
//! client's `X-Forwarded-For` (docs/deployment.md).
//!
//! Requests from any other peer are that peer's, whatever their headers say.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;
use ipnet::IpNet;

/// The peers whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    networks: Arc<[IpNet]>,
}

impl TrustedProxies {
    /// Peers in `networks`.
    pub(crate) fn new(networks: Vec<IpNet>) -> Self {
        Self { networks: networks.into() }
    }

    /// Whether no peer is trusted.
    pub(crate) fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` (also when seen as `::ffff:a.b.c.d` on a dual-stack socket) is a trusted
    /// proxy.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|network| network.contains(&ip))
    }

    /// The client a request from `peer` with `headers` is from (see the module's rules); `peer`
    /// itself when it is not trusted or names no client.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded_for = headers.get_all("x-forwarded-for");
        if forwarded_for.iter().next().is_some() {
            let mut hops = forwarded_for
                .iter()
                .rev()
                .flat_map(|line| line.as_bytes().rsplit(|&b| b == b',').map(address));
            return self.walk(peer, &mut hops);
        }
        let mut hops = headers
            .get_all("forwarded")
            .iter()
            .rev()
            .flat_map(|line| line.as_bytes().rsplit(|&b| b == b',').map(forwarded_for_parameter));
        self.walk(peer, &mut hops)
    }

    /// The first untrusted address of `hops` (nearest first), the last one when all are
    /// trusted, or `peer` when there is none; an entry that is not an address stops the walk.
    fn walk(&self, peer: IpAddr, hops: &mut dyn Iterator<Item = Option<IpAddr>>) -> IpAddr {
        let mut client = peer;
        for hop in hops {
            let Some(ip) = hop else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The address of the `for=` parameter of one `Forwarded` element, if it names one.
fn forwarded_for_parameter(element: &[u8]) -> Option<IpAddr> {
    element.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let at = pair.iter().position(|&b| b == b'=')?;
        pair[..at].eq_ignore_ascii_case(b"for").then(|| address(&pair[at + 1..]))
    })?
}

/// One hop's address: `192.0.2.1`, `2001:db8::1`, either with a port (`[2001:db8::1]:443`),
/// quoted or not; `None` for anything else.
fn address(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    let text = text.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).unwrap_or(text);
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    fn proxies(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| n.parse().unwrap_or_else(|_| panic!("{n}"))).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        let nginx = ip("127.0.0.1");
        let client = |pairs| trusted.client(nginx, &headers(pairs));
        assert_eq!(client(&[("x-forwarded-for", "203.0.113.7")]), ip("203.0.113.7"));
        // What the client wrote itself is left of what its proxy appended.
        assert_eq!(client(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7")]), ip("203.0.113.7"));
        // A chain of trusted proxies is walked through.
        assert_eq!(client(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.1.2.3")]), ip("203.0.113.7"));
        assert_eq!(
            client(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "203.0.113.7,10.9.9.9")]),
            ip("203.0.113.7"),
            "every line, in order"
        );
        // Every hop trusted: the leftmost.
        assert_eq!(client(&[("x-forwarded-for", "10.0.0.2, 10.0.0.1")]), ip("10.0.0.2"));
        // Nothing forwarded, or garbage at the right end: the proxy itself.
        assert_eq!(client(&[]), nginx);
        assert_eq!(client(&[("x-forwarded-for", "203.0.113.7, garbage")]), nginx);
        assert_eq!(client(&[("x-forwarded-for", "")]), nginx);
        // IPv6, with ports, in brackets.
        assert_eq!(client(&[("x-forwarded-for", "[2001:db8::1]:4711")]), ip("2001:db8::1"));
        assert_eq!(client(&[("x-forwarded-for", "2001:db8::2")]), ip("2001:db8::2"));
        assert_eq!(client(&[("x-forwarded-for", "198.51.100.1:80")]), ip("198.51.100.1"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let proxy = ip("10.0.0.1");
        let client = |pairs| trusted.client(proxy, &headers(pairs));
        assert_eq!(
            client(&[("forwarded", r#"for=192.0.2.60;proto=http;by=203.0.113.43"#)]),
            ip("192.0.2.60")
        );
        assert_eq!(
            client(&[("forwarded", r#"for=1.2.3.4, For="[2001:db8:cafe::17]:4711";proto=https"#)]),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(client(&[("forwarded", "for=192.0.2.43, for=10.0.0.9")]), ip("192.0.2.43"));
        // `unknown` and obfuscated names end the walk.
        assert_eq!(client(&[("forwarded", "for=192.0.2.43, for=unknown")]), proxy);
        assert_eq!(client(&[("forwarded", "for=_hidden, for=10.0.0.9")]), ip("10.0.0.9"));
        assert_eq!(client(&[("forwarded", "proto=https")]), proxy);
        // X-Forwarded-For wins: the proxy most likely maintains it, and passed the client's
        // own Forwarded through.
        assert_eq!(
            client(&[("forwarded", "for=6.6.6.6"), ("x-forwarded-for", "192.0.2.1")]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn other_peers_are_themselves_whatever_they_forward() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let spoofer = ip("127.0.0.1");
        assert_eq!(trusted.client(spoofer, &headers(&[("x-forwarded-for", "203.0.113.7")])), spoofer);
        assert_eq!(trusted.client(spoofer, &headers(&[("forwarded", "for=203.0.113.7")])), spoofer);
        assert!(TrustedProxies::default().is_empty());
        // A trusted IPv4 peer on a dual-stack socket.
        assert!(trusted.trusts(ip("::ffff:10.1.1.1")));
        assert!(!trusted.trusts(ip("11.0.0.1")));
    }
}
