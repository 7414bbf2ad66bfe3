//! Per-client limits the accept loop applies: connections per IP address, and the state each
//! connection carries into its requests (its publish allowance).
//!
//! - **Connections per IP.** [`PerIp`] counts open connections by peer address; a connection
//!   holds an [`IpSlot`] for as long as its socket lives (upgrades included, like its
//!   connection permit). Over the limit, the accept loop answers a canned
//!   `429 too_many_connections_from_ip` and closes.
//! - **Per-connection state.** [`WithConnection`] puts the connection's [`ConnectionState`]
//!   into every request's extensions, so the publish API takes its tokens from one bucket per
//!   keep-alive connection ([`ConnectionState::try_publish`]). A router served without the
//!   gateway's accept loop ([`crate::app`] under `axum::serve`) has no such state, and its
//!   publishes are not limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use http::Request;
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;
use pushgate_http::{PublishRate, TokenBucket};

/// Open connections per peer address, within a limit.
#[derive(Debug)]
pub(crate) struct PerIp {
    /// Zero: no limit (nothing is counted).
    limit: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl PerIp {
    pub(crate) fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self { limit, open: Mutex::new(HashMap::new()) })
    }

    /// A slot for one more connection from `ip`, or `None` when `ip` holds its limit.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        if self.limit == 0 {
            return Some(IpSlot { owner: None, ip });
        }
        // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; count it as a.b.c.d.
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(IpSlot { owner: Some(Arc::clone(self)), ip })
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// One connection's place in its IP address's count; given back when dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    /// `None` when there is no limit.
    owner: Option<Arc<PerIp>>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner {
            owner.release(self.ip);
        }
    }
}

/// What one connection carries into each of its requests.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    publish: Mutex<TokenBucket>,
}

impl ConnectionState {
    pub(crate) fn new(rate: PublishRate) -> Arc<Self> {
        let now = tokio::time::Instant::now().into_std();
        Arc::new(Self { publish: Mutex::new(rate.bucket(now)) })
    }

    /// Takes a publish token, or returns how long until one is back.
    pub(crate) fn try_publish(&self) -> Result<(), Duration> {
        let now = tokio::time::Instant::now().into_std();
        self.publish.lock().unwrap_or_else(PoisonError::into_inner).try_take(now)
    }
}

/// The router as hyper's service for one connection, with the connection's state in every
/// request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct WithConnection {
    router: TowerToHyperService<Router>,
    state: Arc<ConnectionState>,
}

impl WithConnection {
    pub(crate) fn new(router: Router, state: Arc<ConnectionState>) -> Self {
        Self { router: TowerToHyperService::new(router), state }
    }
}

impl hyper::service::Service<Request<Incoming>> for WithConnection {
    type Response = <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Response;
    type Error = <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Error;
    type Future = <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Future;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(Arc::clone(&self.state));
        self.router.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_address_and_given_back() {
        let per_ip = PerIp::new(2);
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
    fn zero_is_no_limit_and_counts_nothing() {
        let per_ip = PerIp::new(0);
        let a: IpAddr = [127, 0, 0, 1].into();
        let slots: Vec<IpSlot> = (0..10_000).filter_map(|_| per_ip.try_acquire(a)).collect();
        assert_eq!(slots.len(), 10_000);
        assert!(per_ip.open.lock().expect("lock").is_empty());
    }
}
