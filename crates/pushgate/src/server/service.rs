//! The router as hyper's service for one connection: it puts the connection's state (its
//! client's publish allowance) into every request's extensions, and tells the connection's
//! gate (`gate.rs`) about every answer: when the router gave it, whether it switched
//! protocols, and when hyper was done with its body.

use std::convert::Infallible;
use std::future::Future;
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
use crate::limits::ConnectionState;

/// The router's future for one request under hyper.
type RouterFuture = <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Future;

/// The router as hyper's service for one connection.
#[derive(Debug, Clone)]
pub(super) struct WithConnection {
    router: TowerToHyperService<Router>,
    state: Arc<ConnectionState>,
    exchange: Arc<Exchange>,
}

impl WithConnection {
    pub(super) fn new(router: Router, state: Arc<ConnectionState>, exchange: Arc<Exchange>) -> Self {
        Self { router: TowerToHyperService::new(router), state, exchange }
    }
}

impl hyper::service::Service<Request<Incoming>> for WithConnection {
    type Response = Response<Watched>;
    type Error = Infallible;
    type Future = Answering;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let connect = request.method() == Method::CONNECT;
        request.extensions_mut().insert(self.state.publish_allowance());
        request.extensions_mut().insert(Arc::clone(&self.state));
        Answering { inner: self.router.call(request), exchange: Arc::clone(&self.exchange), connect }
    }
}

pin_project_lite::pin_project! {
    /// The router's answer to one request, reported to the gate when it comes.
    pub(super) struct Answering {
        #[pin]
        inner: RouterFuture,
        exchange: Arc<Exchange>,
        connect: bool,
    }
}

impl Future for Answering {
    type Output = Result<Response<Watched>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        };
        let status = response.status();
        // hyper switches protocols after a 101, and after a 2xx to CONNECT.
        let switched = status == StatusCode::SWITCHING_PROTOCOLS || (*this.connect && status.is_success());
        this.exchange.answered(switched);
        let exchange = Arc::clone(this.exchange);
        Poll::Ready(Ok(response.map(|body| Watched { body, exchange })))
    }
}

/// An answer's body that tells the gate when hyper drops it.
#[derive(Debug)]
pub(super) struct Watched {
    body: Body,
    exchange: Arc<Exchange>,
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
