//! The accept loop: our own, because `axum::serve` sets no header-read timer and has no
//! connection limit.
//!
//! Every accepted connection starts in the gateway's keep-alive loop (`server/lite.rs`), which
//! reads its first request head (at most 16 KiB, within the header-read timeout) and checks it
//! (`server/request.rs`): a request the loop serves (a `GET` to `/v1/poll`, `/v1/longpoll` or
//! `/v1/sse`) is served there, for memory and CPU, by the same handlers; at the first
//! request of another kind, or at once when the loop is off, the connection goes to hyper's
//! HTTP/1 server with upgrades (WebSocket), a header-read timeout, and the router as its
//! service. hyper reads through a gate (`server/gate.rs`) that shows it only heads the same
//! rules accepted, so a malformed request gets the same JSON error on either path and a slow
//! head never grows hyper's buffers. Around that:
//!
//! - **Connection limit.** A connection holds a permit for as long as its socket lives, also
//!   after a WebSocket upgrade (the permit travels inside the I/O object). Over the limit, a
//!   connection is answered with a canned `503 overloaded` (`Retry-After: 1`) and closed, so
//!   clients and load balancers learn why. The answer waits for the request's head (a client
//!   takes bytes that come before its request for a protocol error), for at most
//!   [`REJECT_TIMEOUT`]; at most [`MAX_REJECTING`] refused connections wait so at once, since
//!   each holds a file descriptor the gateway's own Redis and database connections may need.
//!   Past that, a refused connection whose request is already in is answered at once, and one
//!   whose request is not is closed without an answer.
//! - **Connections per IP address.** Likewise, a connection from an address (IPv6: a /64)
//!   that holds `max_connections_per_ip` connections is answered
//!   `429 too_many_connections_from_ip` (`Retry-After: 1`) and closed; see [`crate::limits`],
//!   which also gives each connection its client's publish allowance, shared by all the
//!   connections from that address. A connection from a trusted proxy is not counted so: each
//!   of its requests counts for the client the proxy forwards ([`crate::forwarded`]), while
//!   it is served.
//! - **Idle timeout.** A connection on which nothing is read or written for a whole idle timeout
//!   is closed, after one to two timeouts of silence (see [`Activity`]).
//! - **Dead peers.** Every accepted socket gets TCP keepalive and `TCP_USER_TIMEOUT` (see
//!   [`SocketOptions`]), so a peer that vanished is found by the kernel even on a connection
//!   that is silent on purpose or has unacknowledged data stuck in its send buffer.
//! - **Graceful shutdown.** Stop accepting, close the hub (parked long polls answer, SSE streams
//!   end, WebSockets close 1001), tell every connection to finish its response and close, then
//!   wait up to the drain timeout for all connections, upgraded ones included, before cutting
//!   the rest.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use pushgate_http::{ApiError, ErrorCode, PublishRate, Refusal, Refusals};
use pushgate_hub::Hub;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

mod gate;
mod lite;
mod request;
mod response;
mod service;

use self::gate::{Exchange, Gate};
use self::service::WithConnection;
use crate::forwarded::TrustedProxies;
use crate::limits::{ConnectionState, Forwarding, IpSlot, PerIp, Proxied};

/// Most refused connections waiting for their request head to be answered (`503`, `429`).
const MAX_REJECTING: usize = 1024;
/// How long answering an over-limit connection may take.
const REJECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How much of an over-limit connection's request is read (and discarded): its head before
/// answering, then a little more before closing.
const REJECT_DRAIN_BYTES: usize = 16 * 1024;
/// Most bytes hyper buffers on a connection, read or to write: room for one whole request head
/// and as much body.
const HYPER_MAX_BUF: usize = 2 * request::MAX_HEAD_BYTES;
/// Pause after an accept error that is not about one connection (out of file descriptors),
/// so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the accept loop shows the rest of the gateway: open and accepted connections for
/// `/metrics`, and whether shutdown began for `/readyz`. Shared between the loop and the routes.
#[derive(Debug)]
pub(crate) struct ServerStatus {
    /// One permit per connection slot; a served connection holds one until its socket closes
    /// (upgraded WebSockets included), so the permits taken are the open connections.
    permits: Arc<Semaphore>,
    max_connections: u32,
    accepted: AtomicU64,
    draining: AtomicBool,
    /// Where the loop counts the connections it refuses.
    refusals: Refusals,
}

impl ServerStatus {
    /// The status of a server that allows `max_connections` at once and counts its refusals in
    /// `refusals`.
    pub(crate) fn new(max_connections: u32, refusals: Refusals) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_connections as usize)),
            max_connections,
            accepted: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            refusals,
        }
    }

    /// Connections being served now (over-limit ones being answered 503 are not counted).
    pub(crate) fn open_connections(&self) -> u64 {
        let free = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        u64::from(self.max_connections.saturating_sub(free))
    }

    /// Connections accepted since the server started, over-limit ones included.
    pub(crate) fn accepted_connections(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The refusal counters of this server: the accept loop's, the publish API's and the
    /// WebSocket transport's.
    pub(crate) fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// Whether shutdown began: the server accepts nothing more and drains.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// The accept loop's limits, taken from [`crate::Config`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_connections: u32,
    /// Zero disables it.
    pub(crate) max_connections_per_ip: u32,
    pub(crate) publish_rate: PublishRate,
    pub(crate) header_read_timeout: Duration,
    /// Zero disables it.
    pub(crate) idle_timeout: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) socket: SocketOptions,
    /// Put the peer's address into each request's extensions (axum's `ConnectInfo`), for an
    /// access policy that tells the application who asks; off, requests carry none.
    pub(crate) client_addresses: bool,
    /// Whether polls, long polls and SSE streams are served by the keep-alive loop; otherwise
    /// every request is hyper's.
    pub(crate) keep_alive_loop: bool,
}

/// TCP options set on every accepted socket, taken from [`crate::Config`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketOptions {
    /// Idle time before the first keepalive probe; zero leaves keepalive off.
    pub(crate) keepalive_idle: Duration,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_retries: u32,
    /// Zero keeps the system default.
    pub(crate) user_timeout: Duration,
}

/// The gateway's routes as the server calls them.
#[derive(Clone)]
pub(crate) struct Routes {
    pub(crate) router: Router,
    /// Handlers the keep-alive loop calls without the router; `None` when every route has
    /// more layered around it than the refusal count (CORS).
    pub(crate) direct: Option<Arc<Direct>>,
}

/// The poll transports' handlers, called by the keep-alive loop for their paths without the
/// router: the same handlers as the routes, minus the router's matching and the boxed futures
/// of its layers, which are a sizeable part of a long poll's CPU. What the router's one layer
/// does (counting access refusals) is done by the loop.
pub(crate) struct Direct {
    pub(crate) poll: pushgate_poll::PollHandler,
    pub(crate) longpoll: pushgate_longpoll::LongPollHandler,
    pub(crate) refusals: Refusals,
}

/// Serves `routes` on `listener` until `shutdown` completes, then closes `hub` and drains.
pub(crate) async fn run(
    listener: TcpListener,
    routes: Routes,
    hub: Hub,
    (limits, proxies): (Limits, TrustedProxies),
    status: Arc<ServerStatus>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let permits = Arc::clone(&status.permits);
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let per_ip = PerIp::new(limits.max_connections_per_ip, limits.publish_rate);
    let forwarding = Forwarding::new(Arc::clone(&per_ip), proxies, status.refusals.clone());
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut next_id: u64 = 0;
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) if is_connection_error(&error) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed; pausing");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                next_id += 1;
                status.accepted.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = configure_socket(&stream, &limits.socket) {
                    // The connection still works, only without the dead-peer detection.
                    tracing::debug!(%error, %peer, "cannot set socket options");
                }
                // A trusted proxy's connection is not counted per address: its requests are,
                // per forwarded client.
                let proxied = forwarding.as_ref().and_then(|forwarding| forwarding.proxied(peer.ip()));
                let slot = match proxied {
                    Some(_) => Some(per_ip.exempt(peer.ip())),
                    None => per_ip.try_acquire(peer.ip()),
                };
                let admitted = match slot {
                    None => Err(Refusal::ConnectionsPerIp),
                    Some(slot) => match Arc::clone(&permits).try_acquire_owned() {
                        Ok(permit) => Ok((permit, slot)),
                        Err(_) => Err(Refusal::Connections),
                    },
                };
                match admitted {
                    Ok((permit, slot)) => {
                        let span = tracing::debug_span!("connection", id = next_id, %peer);
                        let conn = lite::serve(
                            stream,
                            (permit, slot),
                            proxied,
                            routes.clone(),
                            limits,
                            stopping.clone(),
                        );
                        connections.spawn(tracing::Instrument::instrument(conn, span));
                    }
                    Err(reason) => {
                        status.refusals.count(reason);
                        match Arc::clone(&rejecting).try_acquire_owned() {
                            Ok(permit) => {
                                tracing::debug!(%peer, reason = reason.as_str(), "connection refused; answering");
                                connections.spawn(reject(stream, refusal_answer(reason), permit));
                            }
                            Err(_) => {
                                let answered = answer_now(&stream, &refusal_answer(reason));
                                tracing::debug!(%peer, reason = reason.as_str(), answered, "connection refused at once");
                            }
                        }
                    }
                }
            }
        }
    }

    drop(listener);
    status.draining.store(true, Ordering::Relaxed);
    tracing::info!(connections = connections.len(), "shutting down: draining connections");
    hub.close();
    stop.send_replace(true);
    let drain = async {
        while connections.join_next().await.is_some() {}
        // Upgraded connections (WebSockets) outlive their hyper task; they hold a permit until
        // their socket closes, so having every permit back means every socket is closed.
        let _all = permits.acquire_many(limits.max_connections).await;
    };
    if tokio::time::timeout(limits.drain_timeout, drain).await.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "drain timeout passed; closing the remaining connections"
        );
        connections.shutdown().await;
    }
}

/// Serves a connection with hyper until it ends, the idle timeout passes, or a stop is
/// requested (then the response in flight is finished and the connection closed). `prefix`
/// is what was read off the socket before hyper took it (by the keep-alive loop): a checked
/// request head and what followed it; hyper reads it first, through the gate.
async fn serve_http(
    stream: TcpStream,
    slots: Slots,
    proxied: Option<Proxied>,
    router: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
    prefix: Vec<u8>,
) {
    let activity = Arc::new(Activity::new());
    let state = ConnectionState::new(slots.1.publish_allowance());
    let peer = limits.client_addresses.then(|| stream.peer_addr().ok()).flatten();
    let exchange = Arc::new(Exchange::default());
    let gate = Gate::new(prefix, Arc::clone(&exchange));
    let io = TokioIo::new(Tracked { stream, gate, activity: Arc::clone(&activity), _slots: slots });
    let service = WithConnection::new(router, state, exchange, proxied, peer);
    let conn = hyper_builder(limits.header_read_timeout).serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            // An error means the server is gone: stop all the same.
            _ = stopping.wait_for(|stop| *stop), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(limits.idle_timeout) => {
                tracing::debug!(timeout = ?limits.idle_timeout, "closing an idle connection");
                return;
            }
        }
    }
}

/// hyper's HTTP/1 server as the gateway runs it behind the gate.
fn hyper_builder(header_read_timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The gate bounds request heads; this bounds what hyper buffers of bodies and answers
    // (its default is about 400 KB).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(HYPER_MAX_BUF)
        .max_headers(request::MAX_HEADERS);
    builder
}

/// Sets an accepted socket's options: no Nagle delay, TCP keepalive and `TCP_USER_TIMEOUT`.
fn configure_socket(stream: &TcpStream, options: &SocketOptions) -> io::Result<()> {
    // Events are small and latency matters more than packet count.
    stream.set_nodelay(true)?;
    let socket = socket2::SockRef::from(stream);
    if !options.keepalive_idle.is_zero() {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(options.keepalive_idle)
            .with_interval(options.keepalive_interval)
            .with_retries(options.keepalive_retries);
        socket.set_tcp_keepalive(&keepalive)?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !options.user_timeout.is_zero() {
        socket.set_tcp_user_timeout(Some(options.user_timeout))?;
    }
    Ok(())
}

/// Answers an over-limit connection with `answer` (a complete response) and closes it.
async fn reject(mut stream: TcpStream, answer: Vec<u8>, _permit: OwnedSemaphorePermit) {
    let answer = async {
        // Answer only once the request's head is in: an HTTP client takes bytes that arrive
        // before it has sent its request for a protocol error, not for a 503.
        let mut buf = [0_u8; 1024];
        let mut end = HeadEnd::default();
        let mut read = 0;
        while !end.found() && read < REJECT_DRAIN_BYTES {
            match stream.read(&mut buf).await? {
                0 => return Ok(()),
                n => {
                    end.scan(&buf[..n]);
                    read += n;
                }
            }
        }
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        // Read (and discard) a little of what follows, such as a body, so closing with unread
        // data does not reset the connection before the client reads the answer.
        let mut drained = 0;
        while drained < REJECT_DRAIN_BYTES {
            match stream.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, io::Error>(())
    };
    // Whatever happens, the connection is closed when this returns.
    let _ = tokio::time::timeout(REJECT_TIMEOUT, answer).await;
}

/// Answers a refused connection without waiting, if its request head is already in (all of
/// it read, so the close that follows is not a reset); returns whether it was answered. The
/// connection is closed when dropped, answered or not.
fn answer_now(stream: &TcpStream, answer: &[u8]) -> bool {
    let mut buf = [0_u8; 2048];
    let mut end = HeadEnd::default();
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                end.scan(&buf[..n]);
                if n < buf.len() {
                    break;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    if !end.found() {
        return false;
    }
    // A fresh socket's send buffer takes the few hundred bytes at once.
    let written = stream.try_write(answer).is_ok_and(|n| n == answer.len());
    written && socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write).is_ok()
}

/// Finds the empty line that ends a request head in bytes read piece by piece, keeping only the
/// last three bytes of what came before.
#[derive(Debug, Default)]
struct HeadEnd {
    tail: [u8; 3],
    kept: usize,
    found: bool,
}

impl HeadEnd {
    fn scan(&mut self, piece: &[u8]) {
        const END: &[u8] = b"\r\n\r\n";
        if self.found {
            return;
        }
        // What came before and the first three bytes of the piece: an end across the seam.
        let mut seam = [0_u8; 6];
        let first = &piece[..piece.len().min(3)];
        seam[..self.kept].copy_from_slice(&self.tail[..self.kept]);
        seam[self.kept..self.kept + first.len()].copy_from_slice(first);
        let seam = &seam[..self.kept + first.len()];
        self.found = seam.windows(4).any(|w| w == END) || piece.windows(4).any(|w| w == END);
        let last = &seam[seam.len().saturating_sub(3)..];
        let last = if piece.len() >= 3 { &piece[piece.len() - 3..] } else { last };
        self.tail[..last.len()].copy_from_slice(last);
        self.kept = last.len();
    }

    fn found(&self) -> bool {
        self.found
    }
}

/// The answer for a connection refused by a limit: `503 overloaded` over the connection limit,
/// `429 too_many_connections_from_ip` over its address's, both with `Retry-After: 1`.
fn refusal_answer(reason: Refusal) -> Vec<u8> {
    let error = match reason {
        Refusal::ConnectionsPerIp => crate::limits::too_many_from_ip(),
        _ => ApiError::new(ErrorCode::Overloaded, "the server is at its connection limit; retry later"),
    };
    response::error_answer(&error, true)
}

/// Accept errors about one connection (it was reset before we took it), not the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Whether a connection read or wrote anything lately: a flag set on every read and write and
/// swept by the idle timer, so the socket path reads no clock (it did, on every read and
/// write). A connection is closed once a whole idle timeout passed with the flag unset, which
/// means after at least one and less than two timeouts of silence.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    active: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn touch(&self) {
        // Load first: a busy connection finds the flag set and leaves its cache line alone.
        if !self.active.load(Ordering::Relaxed) {
            self.active.store(true, Ordering::Relaxed);
        }
    }

    /// Resolves once a whole `timeout` passed with nothing read or written; never for a zero
    /// timeout.
    pub(crate) async fn idle_for(&self, timeout: Duration) {
        if timeout.is_zero() {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(timeout).await;
            if !self.active.swap(false, Ordering::Relaxed) {
                return;
            }
        }
    }
}

/// What a served connection holds until its socket closes: its place under the connection
/// limit and under its address's limit.
type Slots = (OwnedSemaphorePermit, IpSlot);

/// A connection's socket with its permit, its IP address's slot, its activity record, which
/// it keeps for its whole life, through a WebSocket upgrade too, and the gate hyper reads it
/// through.
struct Tracked {
    stream: TcpStream,
    gate: Gate,
    activity: Arc<Activity>,
    _slots: Slots,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.gate.poll_read(&mut this.stream, cx, buf, &this.activity)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // hyper has written all it will: the answer to a refused head goes last.
        ready!(this.gate.poll_answer(&mut this.stream, cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn idle_for_waits_for_a_whole_timeout_of_silence() {
        let timeout = Duration::from_secs(10);
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle_for(timeout).await;
        assert_eq!(started.elapsed(), timeout, "nothing happened: idle after one timeout");

        // Activity within a timeout keeps the connection for the next one as well.
        let started = Instant::now();
        let watch = activity.idle_for(timeout);
        let touch = async {
            tokio::time::sleep(Duration::from_secs(6)).await;
            activity.touch();
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = watch => {}
            () = touch => unreachable!(),
        }
        assert_eq!(started.elapsed(), 2 * timeout);

        let never = tokio::time::timeout(Duration::from_secs(3600), activity.idle_for(Duration::ZERO)).await;
        assert!(never.is_err(), "a zero timeout never fires");
    }

    /// A connected pair over 127.0.0.1: the accepted side, as the accept loop gets it, and the
    /// client side (kept open for the test).
    async fn accepted_socket() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        (accepted, client)
    }

    #[tokio::test]
    async fn accepted_sockets_get_keepalive_and_a_user_timeout() {
        let options = SocketOptions {
            keepalive_idle: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(10),
            keepalive_retries: 3,
            user_timeout: Duration::from_secs(30),
        };
        let (accepted, _client) = accepted_socket().await;
        configure_socket(&accepted, &options).expect("options are set");

        let socket = socket2::SockRef::from(&accepted);
        assert!(accepted.nodelay().expect("TCP_NODELAY"));
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"), Duration::from_secs(30));
        assert_eq!(socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"), Duration::from_secs(10));
        assert_eq!(socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"), 3);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"), Some(Duration::from_secs(30)));
    }

    #[tokio::test]
    async fn zero_leaves_keepalive_off_and_the_user_timeout_at_the_system_default() {
        let options = SocketOptions {
            keepalive_idle: Duration::ZERO,
            keepalive_interval: Duration::from_secs(10),
            keepalive_retries: 3,
            user_timeout: Duration::ZERO,
        };
        let (accepted, _client) = accepted_socket().await;
        configure_socket(&accepted, &options).expect("options are set");
        let socket = socket2::SockRef::from(&accepted);
        assert!(!socket.keepalive().expect("SO_KEEPALIVE"));
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"), None);
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for split in 0..head.len() {
            for step in [1, 2, 3, 5] {
                let mut end = HeadEnd::default();
                let (start, rest) = head.split_at(split);
                end.scan(start);
                for piece in rest.chunks(step) {
                    end.scan(piece);
                }
                assert!(end.found(), "split at {split}, then {step} at a time");
            }
        }
        let mut end = HeadEnd::default();
        for piece in [&b"GET / HTTP/1.1\r\n"[..], b"\r", b"x\n", b"\r\n"] {
            end.scan(piece);
        }
        assert!(!end.found(), "\\r\\n\\rx\\n\\r\\n ends nothing");
    }

    #[tokio::test]
    async fn a_refused_connection_is_answered_at_once_only_when_its_request_is_in() {
        let answer = refusal_answer(Refusal::Connections);
        let (accepted, mut client) = accepted_socket().await;
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        // Until the request is there, nothing is answered.
        while !answer_now(&accepted, &answer) {
            accepted.readable().await.expect("readable");
        }
        drop(accepted);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, answer);

        let (accepted, mut client) = accepted_socket().await;
        assert!(!answer_now(&accepted, &answer), "no request yet");
        drop(accepted);
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got).await;
        assert!(got.is_empty());
    }

    #[test]
    fn refusal_answers_are_complete_http_responses() {
        let text = |reason| String::from_utf8(refusal_answer(reason)).unwrap_or_default();
        let response = text(Refusal::Connections);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(body.starts_with(r#"{"error":{"code":"overloaded","#));

        let response = text(Refusal::ConnectionsPerIp);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("retry-after: 1"));
        assert!(body.starts_with(r#"{"error":{"code":"too_many_connections_from_ip","#));
    }
}
