//! The router as hyper's service for one connection: it puts the connection's state (its
//! client's publish allowance) into every request's extensions, and tells the connection's
//! gate (`gate.rs`) about every answer: when the router gave it, whether it switched
//! protocols, and when hyper was done with its body. On a connection from a trusted proxy,
//! each request first takes a slot of the client it forwards, held until its answer's body is
//! done (or, after a protocol switch, as long as the connection), and publishes from that
//! client's allowance; a client over its limit is answered `429` without the router.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::service::TowerToHyperService;

use super::gate::Exchange;
use crate::limits::{ConnectionState, IpSlot, Proxied, client_address};

/// The router's future for one request under hyper.
type RouterFuture = <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Future;

/// The router as hyper's service for one connection.
#[derive(Debug, Clone)]
pub(super) struct WithConnection {
    router: TowerToHyperService<Router>,
    state: Arc<ConnectionState>,
    exchange: Arc<Exchange>,
    proxied: Option<Proxied>,
    /// The peer's address, when requests are to tell the access policy their client's
    /// (axum's `ConnectInfo`: the forwarded client behind a trusted proxy).
    peer: Option<SocketAddr>,
}

impl WithConnection {
    pub(super) fn new(
        router: Router,
        state: Arc<ConnectionState>,
        exchange: Arc<Exchange>,
        proxied: Option<Proxied>,
        peer: Option<SocketAddr>,
    ) -> Self {
        Self { router: TowerToHyperService::new(router), state, exchange, proxied, peer }
    }
}

impl hyper::service::Service<Request<Incoming>> for WithConnection {
    type Response = Response<Watched>;
    type Error = Infallible;
    type Future = Answering;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let connect = request.method() == Method::CONNECT;
        let exchange = Arc::clone(&self.exchange);
        let (state, client) = match self.proxied.as_ref().map(|proxied| proxied.admit(request.headers())) {
            None => (Arc::clone(&self.state), None),
            Some(Some(slot)) => (ConnectionState::new(slot.publish_allowance()), Some(slot)),
            Some(None) => {
                let answer = Some(Proxied::refusal());
                return Answering { inner: Inner::Refused { answer }, exchange, connect, client: None };
            }
        };
        if let Some(peer) = self.peer {
            let client = client_address(peer, self.proxied.as_ref(), request.headers());
            request.extensions_mut().insert(axum::extract::ConnectInfo(client));
        }
        request.extensions_mut().insert(state.publish_allowance());
        request.extensions_mut().insert(state);
        Answering { inner: Inner::Router { future: self.router.call(request) }, exchange, connect, client }
    }
}

pin_project_lite::pin_project! {
    /// The answer to one request, reported to the gate when it comes.
    pub(super) struct Answering {
        #[pin]
        inner: Inner,
        exchange: Arc<Exchange>,
        connect: bool,
        // The forwarded client's slot, behind a trusted proxy.
        client: Option<IpSlot>,
    }
}

pin_project_lite::pin_project! {
    /// Where the answer comes from.
    #[project = InnerProjection]
    enum Inner {
        Router { #[pin] future: RouterFuture },
        Refused { answer: Option<Response<Body>> },
    }
}

impl Future for Answering {
    type Output = Result<Response<Watched>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.project() {
            InnerProjection::Router { future } => match ready!(future.poll(cx)) {
                Ok(response) => response,
                Err(infallible) => match infallible {},
            },
            InnerProjection::Refused { answer } => answer.take().unwrap_or_default(),
        };
        let status = response.status();
        // hyper switches protocols after a 101, and after a 2xx to CONNECT.
        let switched = status == StatusCode::SWITCHING_PROTOCOLS || (*this.connect && status.is_success());
        let mut client = this.client.take();
        if switched {
            // The upgraded connection is the forwarded client's for as long as it lasts.
            this.exchange.keep(client.take());
        }
        this.exchange.answered(switched);
        let exchange = Arc::clone(this.exchange);
        Poll::Ready(Ok(response.map(|body| Watched { body, exchange, _client: client })))
    }
}

/// An answer's body that tells the gate when hyper drops it.
#[derive(Debug)]
pub(super) struct Watched {
    body: Body,
    exchange: Arc<Exchange>,
    /// The forwarded client's slot, given back with the body.
    _client: Option<IpSlot>,
}

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.exchange.finished();
    }
}
