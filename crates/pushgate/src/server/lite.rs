//! The gateway's own HTTP/1.1 keep-alive loop: it reads the first request head of every
//! connection, serves polls, long polls and SSE streams outside hyper, for memory and CPU, and
//! hands the connection to hyper at the first request of another kind.
//!
//! hyper keeps an 8 KiB read buffer (grown to 16 KiB) and an 8 KiB write buffer for every
//! connection for as long as it lives, and arms a boxed header-read timer for every request.
//! A parked long poll or an idle keep-alive poller reads nothing for seconds at a time, and an
//! SSE stream writes frames that are already encoded; so here, per request:
//!
//! - the head is read into the worker thread's scratch buffer and parsed there
//!   (`request.rs`, the same rules the gate in front of hyper applies); only a head that
//!   arrives in pieces, or bytes after it (a pipelined next request), are kept in a buffer of
//!   the connection's own, which starts at 1 KiB and grows to at most 16 KiB; between
//!   requests, and while a long poll is parked, the connection holds no buffer at all. A head
//!   that breaks the rules is answered with its JSON error (`400 malformed_request`,
//!   `414 uri_too_long`, `431 headers_too_large`, `501 not_implemented`) and the connection
//!   closed;
//! - the request goes through the same axum router as every other request, so its handler,
//!   validation, auth, CORS and the refusal counters run unchanged (no per-connection state is
//!   put in its extensions: only the publish API and the WebSocket transport read it, and
//!   those requests are hyper's). A poll or long poll goes straight to its transport's handler
//!   (the one its route serves), and the loop counts its refusals as the router's layer would:
//!   the router's matching and the boxed futures of its layers were a sixth of a long poll's
//!   user time. With CORS configured, which wraps every route, they go through the router too;
//! - while the answer is pending (a parked long poll) the socket is watched: a client that
//!   goes away drops the request's future, and its hub subscription, at once;
//! - an answer of known length goes out as one write of head and body, with `content-length`
//!   and keep-alive; one of unknown length (the event stream: `200` with `text/event-stream`)
//!   is written chunk by chunk as the body yields it, delimited by the close.
//!
//! Any other request (another method or path, a body, an upgrade, `Expect`), first or later,
//! or every request when the loop is turned off (`--no-keep-alive-loop`), hands the
//! connection to hyper from that request on: its whole head is read and checked here first,
//! so a slow or oversized head never reaches hyper's larger buffers, and it goes to hyper
//! with whatever followed it, so nothing is lost or reordered. The accept loop's limits hold:
//! the connection keeps its permit and IP slot; a connection waits for its first request, and
//! a kept-alive one for its next, for the header-read timeout, and a head must be complete
//! within the header-read timeout of its first byte; nothing read or written for the idle
//! timeout closes it; on shutdown the answer in flight is finished (the hub is closed first,
//! so parked polls answer) and the connection closed, and an idle one is closed at once.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::Either;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead as _, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::request::{self, HeadError, MAX_HEAD_BYTES, Parsed};
use super::response::{self, Framing};
use super::{Activity, Limits, Routes, Slots};
use crate::limits::{Proxied, client_address};

/// The buffer a head is first read into.
const INITIAL_HEAD_BYTES: usize = 1024;
/// How long the connection waits for the client to close after the server closed its side.
const LINGER: Duration = Duration::from_secs(1);

/// How the loop ended.
enum End {
    /// Close after letting the client read what was written (half-close, then linger).
    Close,
    /// Just drop the socket: the client went away, failed, timed out, or shutdown began while
    /// no answer was due.
    Drop,
    /// A request that is hyper's is at the start of the buffer.
    Handoff,
}

/// Serves `stream` until it closes, or hands it to hyper with the bytes read so far.
pub(super) async fn serve(
    mut stream: TcpStream,
    slots: Slots,
    proxied: Option<Proxied>,
    routes: Routes,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let mut buf = Vec::new();
    let end = run(&mut stream, &mut buf, proxied.as_ref(), &routes, &limits, &mut stopping).await;
    match end {
        End::Drop => {}
        End::Close => linger(&mut stream).await,
        End::Handoff => {
            Box::pin(super::serve_http(stream, slots, proxied, routes.router, limits, stopping, buf)).await;
        }
    }
}

/// The keep-alive loop: a head, its answer (a poll handler's or the router's), again.
async fn run(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    proxied: Option<&Proxied>,
    routes: &Routes,
    limits: &Limits,
    stopping: &mut watch::Receiver<bool>,
) -> End {
    let activity = Activity::new();
    let peer = limits.client_addresses.then(|| stream.peer_addr().ok()).flatten();
    let mut idle = pin!(activity.idle_for(limits.idle_timeout));
    // One timer for every head of the connection: armed when the connection starts waiting
    // for a request (as hyper's, so a kept-alive connection waits no longer for its next one),
    // and re-armed when a head's first byte is there.
    let mut head_deadline = pin!(tokio::time::sleep(limits.header_read_timeout));
    loop {
        head_deadline.as_mut().reset(Instant::now() + limits.header_read_timeout);
        let (request, close, http10) = loop {
            if !buf.is_empty() {
                match request::parse(buf, limits.keep_alive_loop) {
                    Ok(Parsed::Partial) => {}
                    Ok(Parsed::Lite { request, head_len, close, http10 }) => {
                        buf.drain(..head_len);
                        break (request, close, http10);
                    }
                    Ok(Parsed::Hyper) => return End::Handoff,
                    Err(error) => return refuse(stream, error, &activity, idle.as_mut()).await,
                }
            }
            let first_byte = buf.is_empty();
            if first_byte && buf.capacity() > 0 {
                *buf = Vec::new();
            }
            tokio::select! {
                biased;
                ready = stream.readable() => if ready.is_err() {
                    return End::Drop;
                },
                // An error means the server is gone: stop all the same.
                _ = stopping.wait_for(|stop| *stop) => return End::Drop,
                () = &mut head_deadline => {
                    tracing::debug!("request head not received in time");
                    return End::Drop;
                }
                () = &mut idle => {
                    tracing::debug!(timeout = ?limits.idle_timeout, "closing an idle connection");
                    return End::Drop;
                }
            }
            if first_byte {
                let lite = limits.keep_alive_loop;
                match poll_fn(|cx| Poll::Ready(read_fresh(stream, cx, buf, lite))).await {
                    Ok(Fresh::Request(request, close, http10)) => {
                        activity.touch();
                        break (request, close, http10);
                    }
                    Ok(Fresh::Read) => {
                        activity.touch();
                        head_deadline.as_mut().reset(Instant::now() + limits.header_read_timeout);
                    }
                    Ok(Fresh::Handoff) => return End::Handoff,
                    Ok(Fresh::Stale) => {}
                    Ok(Fresh::Eof) | Err(_) => return End::Drop,
                }
                continue;
            }
            match poll_fn(|cx| Poll::Ready(read_some(stream, cx, buf))).await {
                Ok(Some(0)) | Err(_) => return End::Drop,
                Ok(Some(_)) => activity.touch(),
                Ok(None) => {}
            }
        };
        if buf.is_empty() {
            // Parked, the connection holds no buffer.
            *buf = Vec::new();
        }

        // From a trusted proxy, the request holds a slot of the client it forwards until it is
        // answered.
        let _client = match proxied.map(|proxied| proxied.admit(request.headers())) {
            None => None,
            Some(Some(slot)) => Some(slot),
            Some(None) => {
                let close = close || *stopping.borrow();
                let refusal = Proxied::refusal();
                match answer(stream, refusal, (close, http10), limits, &activity, idle.as_mut()).await {
                    Ok(true) => continue,
                    Ok(false) => return End::Close,
                    Err(_) => return End::Drop,
                }
            }
        };
        // In a block of its own, so the router's future is not kept (and its room in this
        // task's state not reserved) next to the answer's.
        let response = {
            let mut request = request;
            if let Some(peer) = peer {
                let client = client_address(peer, proxied, request.headers());
                request.extensions_mut().insert(axum::extract::ConnectInfo(client));
            }
            let mut call = pin!(call(routes, request));
            loop {
                tokio::select! {
                    biased;
                    response = &mut call => break response,
                    // Watch for the client going away; keep what it sends (its next request).
                    ready = stream.readable(), if buf.len() < MAX_HEAD_BYTES => {
                        if ready.is_err() {
                            return End::Drop;
                        }
                        match poll_fn(|cx| Poll::Ready(read_some(stream, cx, buf))).await {
                            Ok(Some(0)) | Err(_) => return End::Drop,
                            Ok(Some(_)) => activity.touch(),
                            Ok(None) => {}
                        }
                    }
                    () = &mut idle => return End::Drop,
                }
            }
        };
        let close = close || *stopping.borrow();
        match answer(stream, response, (close, http10), limits, &activity, idle.as_mut()).await {
            Ok(true) => {}
            Ok(false) => return End::Close,
            Err(error) => {
                tracing::debug!(%error, "connection ended with an error");
                return End::Drop;
            }
        }
    }
}

/// The answer to `request`: from its poll transport's handler when the loop may call it
/// directly, else from the router. Mapped, not wrapped in `async` blocks: a block would keep
/// the future it awaits twice over (as its capture and as its awaitee), and this future is part
/// of every connection's task, idle or parked.
fn call(routes: &Routes, request: Request<Body>) -> impl Future<Output = Response<Body>> + Send + 'static {
    let path = request.uri().path();
    let (direct, answer) = match &routes.direct {
        Some(direct) if path == pushgate_longpoll::PATH => (direct, direct.longpoll.answer(request)),
        Some(direct) if path == pushgate_poll::PATH => (direct, direct.poll.answer(request)),
        _ => {
            return Either::Right(routes.router.clone().oneshot(request).map(|routed| match routed {
                Ok(response) => response,
                Err(infallible) => match infallible {},
            }));
        }
    };
    let refusals = direct.refusals.clone();
    Either::Left(answer.map(move |response| {
        crate::count_access_refusal(&refusals, &response);
        response
    }))
}

thread_local! {
    /// Where a head's first bytes are read and parsed, so a request that arrives whole (nearly
    /// all do) costs its connection no buffer at all: one per worker thread.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_HEAD_BYTES]);
}

/// What a read into [`SCRATCH`] gave.
#[expect(
    clippy::large_enum_variant,
    reason = "lives for one call per request; boxing the request would allocate for every one"
)]
enum Fresh {
    /// The readiness was stale.
    Stale,
    /// The end of the stream.
    Eof,
    /// Bytes that are not (yet) a whole head, or a head to refuse, now in the connection's
    /// buffer.
    Read,
    /// A whole request of hyper's, now at the start of the connection's buffer.
    Handoff,
    /// A whole request, with whether to close after it and whether it is HTTP/1.0; any bytes
    /// after its head are in the connection's buffer.
    Request(Request<Body>, bool, bool),
}

/// Reads a head's first bytes into the thread's scratch buffer and parses them there (`lite`:
/// whether the keep-alive loop serves its requests); only what is not a whole request of the
/// loop's is copied into `buf`.
fn read_fresh(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
    lite: bool,
) -> io::Result<Fresh> {
    SCRATCH.with_borrow_mut(|scratch| {
        let read = match read_now(stream, cx, scratch)? {
            None => return Ok(Fresh::Stale),
            Some(0) => return Ok(Fresh::Eof),
            Some(n) => &scratch[..n],
        };
        let parsed = request::parse(read, lite);
        if let Ok(Parsed::Lite { request, head_len, close, http10 }) = parsed {
            buf.extend_from_slice(&read[head_len..]);
            return Ok(Fresh::Request(request, close, http10));
        }
        buf.extend_from_slice(read);
        // Partial, or an error the loop answers after parsing it again.
        Ok(if matches!(parsed, Ok(Parsed::Hyper)) { Fresh::Handoff } else { Fresh::Read })
    })
}

/// Answers a head that breaks the rules with its JSON error, closing the connection: what
/// follows it cannot be told apart from it.
async fn refuse(
    stream: &mut TcpStream,
    error: HeadError,
    activity: &Activity,
    idle: Pin<&mut impl Future<Output = ()>>,
) -> End {
    tracing::debug!(?error, "refused a request head");
    let answer = response::error_answer(&error.to_api_error(), false);
    // Boxed, like the stream: rare, and its state would otherwise weigh on every connection's
    // task.
    let written = Box::pin(async {
        tokio::select! {
            biased;
            written = write_head_and_body(stream, &answer, &[], activity) => written,
            () = idle => Err(io::ErrorKind::TimedOut.into()),
        }
    });
    if written.await.is_ok() { End::Close } else { End::Drop }
}

/// Reads what the socket has into `buf`, up to [`MAX_HEAD_BYTES`] in all: `None` when the
/// readiness was stale, `Some(0)` at the end of the stream.
///
/// Through the thread's scratch buffer: a parked poll's socket is watched with an empty
/// buffer, and a buffer reserved for a read that finds nothing would stay for the whole wait;
/// the copy is only ever of a head that came in pieces or of a pipelined request.
fn read_some(stream: &mut TcpStream, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    SCRATCH.with_borrow_mut(|scratch| {
        let room = MAX_HEAD_BYTES.saturating_sub(buf.len()).min(scratch.len());
        let read = read_now(stream, cx, &mut scratch[..room])?;
        if let Some(n) = read {
            if buf.capacity() == 0 {
                buf.reserve_exact(n.clamp(INITIAL_HEAD_BYTES, MAX_HEAD_BYTES));
            }
            buf.extend_from_slice(&scratch[..n]);
        }
        Ok(read)
    })
}

/// Reads what the socket has into `into`, without waiting: `None` when it has nothing yet
/// (the task is then woken when it has).
///
/// Through `AsyncRead`, not `try_read`: a read that leaves room in `into` has drained the
/// socket, and `poll_read` then clears the socket's readiness (epoll is edge-triggered), where
/// `try_read` keeps it until a read fails with `WouldBlock`. With `try_read`, the watch on a
/// parked poll's socket (and the wait for the next request) would begin with a read that
/// fails: a wasted system call on every request. nginx skips that read the same way.
fn read_now(stream: &mut TcpStream, cx: &mut Context<'_>, into: &mut [u8]) -> io::Result<Option<usize>> {
    let mut read = ReadBuf::new(into);
    match Pin::new(stream).poll_read(cx, &mut read) {
        Poll::Ready(Ok(())) => Ok(Some(read.filled().len())),
        Poll::Ready(Err(error)) => Err(error),
        Poll::Pending => Ok(None),
    }
}

/// Writes `response`; returns whether the connection goes on to its next request. `idle` is the
/// connection's idle timer: a client that stops reading an answer larger than the socket
/// buffers is cut off by it, as hyper's connections are.
async fn answer(
    stream: &mut TcpStream,
    response: Response<Body>,
    (close, http10): (bool, bool),
    limits: &Limits,
    activity: &Activity,
    idle: Pin<&mut impl Future<Output = ()>>,
) -> io::Result<bool> {
    let bodiless = response.status().is_informational()
        || matches!(response.status(), StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    if !bodiless && response.body().size_hint().exact().is_none() {
        // Boxed: a stream is a connection's last answer, and its state need not weigh on
        // every parked poll's task.
        Box::pin(stream_response(stream, activity, limits.idle_timeout, response)).await?;
        return Ok(false);
    }
    let (parts, body) = response.into_parts();
    let body =
        if bodiless { Bytes::new() } else { body.collect().await.map_err(io::Error::other)?.to_bytes() };
    let length = (!bodiless).then_some(body.len());
    let framing = if close { Framing::Close { length } } else { Framing::KeepAlive { length, http10 } };
    let mut out = Vec::with_capacity(256);
    response::write_head(&mut out, &Response::from_parts(parts, ()), framing);
    tokio::select! {
        biased;
        written = write_head_and_body(stream, &out, &body, activity) => written?,
        () = idle => return Err(io::ErrorKind::TimedOut.into()),
    }
    Ok(!close)
}

/// Writes `head` then `body`, both in one system call when the socket takes them; each write
/// counts as activity.
async fn write_head_and_body(
    stream: &mut TcpStream,
    head: &[u8],
    body: &[u8],
    activity: &Activity,
) -> io::Result<()> {
    let mut written = 0;
    while written < head.len() + body.len() {
        let n = if written < head.len() {
            let slices = [io::IoSlice::new(&head[written..]), io::IoSlice::new(body)];
            stream.write_vectored(&slices).await?
        } else {
            stream.write(&body[written - head.len()..]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        written += n;
        activity.touch();
    }
    Ok(())
}

/// Writes the stream's head, then each chunk as the body yields it, until the body ends, the
/// client goes away, or nothing could be written for the idle timeout.
async fn stream_response(
    stream: &mut TcpStream,
    activity: &Activity,
    idle_timeout: Duration,
    response: Response<Body>,
) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let mut head = Vec::with_capacity(256);
    response::write_head(&mut head, &Response::from_parts(parts, ()), Framing::Stream);
    stream.write_all(&head).await?;
    drop(head);
    let (mut reader, mut writer) = stream.split();
    let mut body = pin!(body);
    let mut idle = pin!(activity.idle_for(idle_timeout));
    // The client sends nothing more; reading only tells when it closes. The selects are biased
    // (the next frame first, then the close, then the timer): a fair select draws a random
    // number for every frame written.
    let mut scrap = [0_u8; 64];
    loop {
        let data = tokio::select! {
            biased;
            frame = body.frame() => match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                // The stream ended (shutdown, slow consumer): it sent its last frame.
                Some(Err(_)) | None => return Ok(()),
            },
            read = reader.read(&mut scrap) => match read {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => continue,
                Err(error) => return Err(error),
            },
            () = &mut idle => return Err(io::ErrorKind::TimedOut.into()),
        };
        tokio::select! {
            biased;
            written = writer.write_all(&data) => written?,
            () = &mut idle => return Err(io::ErrorKind::TimedOut.into()),
        }
        activity.touch();
    }
}

/// Half-closes, then lets the client close first: closing with unread input would reset the
/// connection and could destroy the last answer before the client reads it.
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown().await.is_ok() {
        let mut scrap = [0_u8; 256];
        let linger = async { while matches!(stream.read(&mut scrap).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(LINGER, linger).await;
    }
}
