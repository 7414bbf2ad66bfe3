//! Per-client limits the accept loop applies: connections per client address, and the publish
//! allowance each connection carries into its requests.
//!
//! A client is its IP address; an IPv6 client is its /64, since one host commonly holds a whole
//! /64 and could otherwise take a fresh address for every connection.
//!
//! - **Connections per client.** [`PerIp`] counts open connections by client; a connection
//!   holds an [`IpSlot`] for as long as its socket lives (upgrades included, like its
//!   connection permit). Over the limit, the accept loop answers a canned
//!   `429 too_many_connections_from_ip` and closes.
//! - **Publishes per client.** [`PerIp`] also keeps each client's [`PublishAllowance`], shared
//!   by all its connections, so that reconnecting does not bring a fresh burst. It outlives
//!   the client's last connection until it has refilled (then a new one would be no
//!   different), so closing and reopening gains nothing either.
//! - **Behind trusted proxies.** A connection from a trusted proxy (`--trusted-proxies`) is
//!   not counted per address: every client behind the proxy shares its address. Instead each
//!   request on it takes a slot of the client it forwards ([`crate::forwarded`]) for as long
//!   as it is served (a WebSocket: as long as it is open) and publishes from that client's
//!   allowance; over the client's limit it is answered `429 too_many_connections_from_ip`
//!   and the proxy's connection stays open ([`Forwarding`]).
//! - **Per-connection state.** The connection's service (`server/service.rs`) puts its
//!   [`ConnectionState`] and its client's [`PublishAllowance`] into every request's
//!   extensions, so the publish API
//!   ([`ConnectionState::try_publish`]) and WebSocket `publish` frames take their tokens from
//!   the client's allowance. A router served without the gateway's accept loop
//!   ([`crate::app`] under `axum::serve`) has no such state: its HTTP publishes are not
//!   limited, and its WebSockets are limited one by one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::IntoResponse as _;
use http::{HeaderMap, HeaderValue, Response, header};
use pushgate_http::{ApiError, ErrorCode, PublishAllowance, PublishRate, Refusal, Refusals};

use crate::forwarded::TrustedProxies;

/// How often, at most, clients without connections and with a full allowance are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Open connections and publish allowances per client address, within a limit.
#[derive(Debug)]
pub(crate) struct PerIp {
    /// Zero: no connection limit.
    limit: u32,
    rate: PublishRate,
    clients: Mutex<Clients>,
}

#[derive(Debug)]
struct Clients {
    by_key: HashMap<IpAddr, Client>,
    last_sweep: Instant,
}

#[derive(Debug)]
struct Client {
    open: u32,
    publish: PublishAllowance,
}

/// The client an address belongs to: an IPv4 address (also when seen as `::ffff:a.b.c.d` on a
/// dual-stack socket), or an IPv6 address's /64.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

impl PerIp {
    /// At most `limit` connections per client (0: no limit), each client publishing at `rate`.
    pub(crate) fn new(limit: u32, rate: PublishRate) -> Arc<Self> {
        let clients = Clients { by_key: HashMap::new(), last_sweep: Instant::now() };
        Arc::new(Self { limit, rate, clients: Mutex::new(clients) })
    }

    /// A slot for one more connection from `ip`, or `None` when its client holds its limit.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let now = tokio::time::Instant::now().into_std();
        if self.limit == 0 && !self.rate.is_limited() {
            // Nothing to count or share.
            return Some(IpSlot { owner: None, key: ip, publish: PublishAllowance::new(self.rate, now) });
        }
        let key = client_key(ip);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(clients.last_sweep) >= SWEEP_EVERY {
            clients.by_key.retain(|_, client| client.open > 0 || !client.publish.is_full(now));
            clients.last_sweep = now;
        }
        let client = clients
            .by_key
            .entry(key)
            .or_insert_with(|| Client { open: 0, publish: PublishAllowance::new(self.rate, now) });
        if self.limit > 0 && client.open >= self.limit {
            return None;
        }
        client.open += 1;
        Some(IpSlot { owner: Some(Arc::clone(self)), key, publish: client.publish.clone() })
    }

    /// A slot for a connection from `ip` that is not counted, with no publish limit of its own:
    /// a trusted proxy's, whose requests are counted per client instead ([`Forwarding`]).
    pub(crate) fn exempt(&self, ip: IpAddr) -> IpSlot {
        let now = tokio::time::Instant::now().into_std();
        IpSlot { owner: None, key: ip, publish: PublishAllowance::new(PublishRate::UNLIMITED, now) }
    }

    fn release(&self, key: IpAddr) {
        let now = tokio::time::Instant::now().into_std();
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.by_key.get_mut(&key) {
            client.open = client.open.saturating_sub(1);
            // A spent allowance is kept (until a sweep finds it refilled): forgetting it now
            // would hand a reconnecting client a fresh burst.
            if client.open == 0 && client.publish.is_full(now) {
                clients.by_key.remove(&key);
            }
        }
    }
}

/// One connection's place in its client's count, and its client's publish allowance; the
/// place is given back when dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    /// `None` when nothing is counted.
    owner: Option<Arc<PerIp>>,
    key: IpAddr,
    publish: PublishAllowance,
}

impl IpSlot {
    /// The client's publish allowance, shared by all its connections.
    pub(crate) fn publish_allowance(&self) -> PublishAllowance {
        self.publish.clone()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner {
            owner.release(self.key);
        }
    }
}

/// The refusal of a connection, or a forwarded request, over its client's limit.
pub(crate) fn too_many_from_ip() -> ApiError {
    ApiError::new(
        ErrorCode::TooManyConnectionsFromIp,
        "your address holds the server's limit of connections; close some or retry later",
    )
}

/// The per-client limits of requests that trusted proxies forward.
#[derive(Debug)]
pub(crate) struct Forwarding {
    per_ip: Arc<PerIp>,
    proxies: TrustedProxies,
    refusals: Refusals,
}

impl Forwarding {
    /// Limits per forwarded client from `per_ip`, for the peers in `proxies`, refusals counted
    /// in `refusals`; `None` when no peer is trusted.
    pub(crate) fn new(per_ip: Arc<PerIp>, proxies: TrustedProxies, refusals: Refusals) -> Option<Arc<Self>> {
        (!proxies.is_empty()).then(|| Arc::new(Self { per_ip, proxies, refusals }))
    }

    /// The requests of a connection from `peer`, when it is a trusted proxy.
    pub(crate) fn proxied(self: &Arc<Self>, peer: IpAddr) -> Option<Proxied> {
        self.proxies.trusts(peer).then(|| Proxied { forwarding: Arc::clone(self), peer })
    }
}

/// A connection from a trusted proxy: its requests count for the clients they forward.
#[derive(Debug, Clone)]
pub(crate) struct Proxied {
    forwarding: Arc<Forwarding>,
    peer: IpAddr,
}

impl Proxied {
    /// A slot of the client of a request with `headers`, to hold while the request is served;
    /// `None` (counted) when that client holds its limit: answer [`Proxied::refusal`] instead.
    pub(crate) fn admit(&self, headers: &HeaderMap) -> Option<IpSlot> {
        let client = self.forwarding.proxies.client(self.peer, headers);
        let slot = self.forwarding.per_ip.try_acquire(client);
        if slot.is_none() {
            self.forwarding.refusals.count(Refusal::ConnectionsPerIp);
            tracing::debug!(peer = %self.peer, %client, "forwarded request refused: its client holds its limit");
        }
        slot
    }

    /// The client a request with `headers` forwards (the peer itself when it names none).
    pub(crate) fn client(&self, headers: &HeaderMap) -> IpAddr {
        self.forwarding.proxies.client(self.peer, headers)
    }

    /// The answer to a forwarded request over its client's limit: `429
    /// too_many_connections_from_ip` with `Retry-After: 1`; the proxy's connection stays open.
    pub(crate) fn refusal() -> Response<Body> {
        let mut response = too_many_from_ip().into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }
}

/// The client address a request tells the access policy (axum's `ConnectInfo`): the client a
/// trusted proxy forwards, else the peer.
pub(crate) fn client_address(peer: SocketAddr, proxied: Option<&Proxied>, headers: &HeaderMap) -> SocketAddr {
    match proxied {
        Some(proxied) => SocketAddr::new(proxied.client(headers), 0),
        None => peer,
    }
}

/// What one connection carries into each of its requests.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    /// The client's, shared with its other connections.
    publish: PublishAllowance,
}

impl ConnectionState {
    pub(crate) fn new(publish: PublishAllowance) -> Arc<Self> {
        Arc::new(Self { publish })
    }

    /// The client's publish allowance (for the WebSocket transport, which takes from it per
    /// frame).
    pub(crate) fn publish_allowance(&self) -> PublishAllowance {
        self.publish.clone()
    }

    /// Takes a publish token from the client's allowance, or returns how long until one is
    /// back.
    pub(crate) fn try_publish(&self) -> Result<(), Duration> {
        self.publish.try_take(tokio::time::Instant::now().into_std())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_address_and_given_back() {
        let per_ip = PerIp::new(2, PublishRate::UNLIMITED);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = per_ip.try_acquire(a).expect("first");
        let _second = per_ip.try_acquire(a).expect("second");
        assert!(per_ip.try_acquire(a).is_none(), "a third from the same address");
        // The same address seen through a dual-stack socket counts as the same.
        assert!(per_ip.try_acquire("::ffff:127.0.0.1".parse().expect("ip")).is_none());
        assert!(per_ip.try_acquire(b).is_some(), "another address has its own count");
        drop(first);
        assert!(per_ip.try_acquire(a).is_some(), "a closed connection gives its slot back");
    }

    #[test]
    fn zero_is_no_limit_and_without_a_rate_counts_nothing() {
        let per_ip = PerIp::new(0, PublishRate::UNLIMITED);
        let a: IpAddr = [127, 0, 0, 1].into();
        let slots: Vec<IpSlot> = (0..10_000).filter_map(|_| per_ip.try_acquire(a)).collect();
        assert_eq!(slots.len(), 10_000);
        assert!(per_ip.clients.lock().expect("lock").by_key.is_empty());
    }

    #[test]
    fn ipv6_clients_are_their_64() {
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        let per_ip = PerIp::new(2, PublishRate::UNLIMITED);
        let _first = per_ip.try_acquire(ip("2001:db8:1:2::1")).expect("first");
        let _second = per_ip.try_acquire(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")).expect("second");
        assert!(per_ip.try_acquire(ip("2001:db8:1:2:abcd::9")).is_none(), "a third from the same /64");
        assert!(per_ip.try_acquire(ip("2001:db8:1:3::1")).is_some(), "another /64");
        assert_eq!(client_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn a_client_keeps_its_allowance_across_connections_until_it_refills() {
        let per_ip = PerIp::new(0, PublishRate::new(1, 2));
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let now = tokio::time::Instant::now().into_std();
        let first = per_ip.try_acquire(a).expect("first");
        let second = per_ip.try_acquire(a).expect("second");
        assert!(first.publish_allowance().try_take(now).is_ok());
        assert!(second.publish_allowance().try_take(now).is_ok());
        assert!(first.publish_allowance().try_take(now).is_err(), "one allowance for both");
        drop((first, second));
        let again = per_ip.try_acquire(a).expect("reconnected");
        assert!(again.publish_allowance().try_take(now).is_err(), "reconnecting gains nothing");
        let other = per_ip.try_acquire(b).expect("another address");
        assert!(other.publish_allowance().try_take(now).is_ok(), "another address has its own");
        drop((again, other));
        // Refilled allowances of clients without connections are forgotten at the next sweep.
        std::thread::sleep(SWEEP_EVERY.max(Duration::from_secs(2)) + Duration::from_millis(50));
        let _fresh = per_ip.try_acquire(b).expect("after the sweep");
        assert_eq!(per_ip.clients.lock().expect("lock").by_key.len(), 1);
    }
}
