//! The gate in front of hyper: hyper reads a connection handed to it through the gate, and
//! gets only request heads that `request.rs` accepted.
//!
//! hyper parses request heads itself, answers a bad one with an empty body, and lets its read
//! buffer grow to about 400 KB for a head that never ends. So on a connection served by hyper
//! the gate follows the request stream: it checks each head with the keep-alive loop's rules
//! before hyper sees a byte of it, holding an incomplete head (at most
//! [`MAX_HEAD_BYTES`]), then lets the head through and follows the body by its framing
//! (`Content-Length`, or chunked exactly as hyper decodes it) to where the next head starts.
//!
//! - A head that breaks the rules never reaches hyper: once hyper has finished the answers to
//!   every request before it (so none is cut short), the gate ends hyper's input there, hyper
//!   closes the connection, and the gate writes the head's JSON error before the close.
//! - After a request that asks to switch protocols, the gate waits for its answer: a `101`
//!   makes everything after it the new protocol's (WebSocket frames), passed through
//!   untouched; any other answer means another request head follows.
//!
//! The gate learns of answers through [`Exchange`], which the connection's service
//! (`service.rs`) updates as the router answers and as hyper drops each answer's body. hyper
//! may still refuse a chunked body the gate let through (its limits on chunk extensions and
//! trailers are its own); it then fails that request and closes the connection, so the gate
//! loses nothing by not following it further.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Activity;
use super::request::{self, BodyLength, HeadError, MAX_HEAD_BYTES};
use super::response;
use crate::limits::IpSlot;

/// The first room an incomplete head is given; it grows to at most [`MAX_HEAD_BYTES`].
const INITIAL_HOLD_BYTES: usize = 1024;

/// What the gate and the connection's service share: the router's answers, counted.
#[derive(Debug, Default)]
pub(super) struct Exchange {
    /// Answers the router gave.
    answered: AtomicU64,
    /// Answers whose body hyper has dropped: written, or abandoned with the connection.
    finished: AtomicU64,
    /// Whether the latest answer switched protocols.
    switched: AtomicBool,
    /// The connection's task, when the gate waits for one of the above.
    waker: Mutex<Option<Waker>>,
    /// What the connection keeps for as long as it lives after a protocol switch: the slot of
    /// the client a trusted proxy forwarded the upgrade for.
    kept: Mutex<Option<IpSlot>>,
}

impl Exchange {
    /// The router answered the latest request; `switched`: with a protocol switch.
    pub(super) fn answered(&self, switched: bool) {
        self.switched.store(switched, Ordering::Release);
        self.answered.fetch_add(1, Ordering::AcqRel);
        self.wake();
    }

    /// Keeps `slot` for as long as the connection lives (it lives inside the gate).
    pub(super) fn keep(&self, slot: Option<IpSlot>) {
        *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = slot;
    }

    /// hyper dropped an answer's body.
    pub(super) fn finished(&self) {
        self.finished.fetch_add(1, Ordering::AcqRel);
        self.wake();
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.lock().unwrap_or_else(PoisonError::into_inner).take() {
            waker.wake();
        }
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|held| held.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    /// Whether request number `request` (from 1) was answered, and with a protocol switch.
    fn switched_at(&self, request: u64) -> Option<bool> {
        (self.answered.load(Ordering::Acquire) >= request).then(|| self.switched.load(Ordering::Acquire))
    }

    /// Whether the answers to the first `requests` requests are all finished.
    fn all_finished(&self, requests: u64) -> bool {
        self.finished.load(Ordering::Acquire) >= requests
    }
}

/// Where in the request stream the gate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a request head.
    Head,
    /// Inside a checked head, `left` bytes of it still to pass; then its body.
    HeadRest { left: usize, body: BodyLength, upgrade: bool },
    /// Inside a body of known length.
    Fixed { left: u64, upgrade: bool },
    /// Inside a chunked body.
    Chunked { chunk: Chunk, upgrade: bool },
    /// Behind a request that asks to switch protocols, until its answer says whether it did.
    AwaitUpgrade,
    /// Past a protocol switch, or a body hyper will refuse: no more HTTP to follow.
    Opaque,
    /// At a head that was refused.
    Refused(HeadError),
}

/// Why [`Framer::admit`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The input is used up, or the room is.
    Done,
    /// An incomplete head: more input is needed.
    Hold,
    /// A protocol switch is awaited.
    Wait,
    /// A head was refused.
    Refused,
}

/// The pure half of the gate: follows requests through the bytes it is shown.
#[derive(Debug)]
struct Framer {
    state: State,
    /// Heads passed to hyper so far.
    heads: u64,
}

impl Framer {
    /// How many of the leading bytes of `input` hyper may have (at most `room`), and why it
    /// stopped there. The state moves past those bytes: they must all go to hyper.
    fn admit(&mut self, input: &[u8], room: usize) -> (usize, Stop) {
        let mut passed = 0;
        loop {
            let rest = &input[passed..];
            let take = rest.len().min(room - passed);
            match self.state {
                State::Head => {
                    // Nothing more fits: the head is checked when it can pass.
                    if take == 0 {
                        return (passed, Stop::Done);
                    }
                    match request::head(rest) {
                        Ok(None) => return (passed, Stop::Hold),
                        Ok(Some(head)) => {
                            self.heads += 1;
                            self.state =
                                State::HeadRest { left: head.len, body: head.body, upgrade: head.upgrade };
                        }
                        Err(error) => {
                            self.state = State::Refused(error);
                            return (passed, Stop::Refused);
                        }
                    }
                }
                State::HeadRest { left, body, upgrade } => {
                    let n = take.min(left);
                    if n == 0 {
                        return (passed, Stop::Done);
                    }
                    passed += n;
                    self.state = if n < left {
                        State::HeadRest { left: left - n, body, upgrade }
                    } else {
                        match body {
                            BodyLength::Fixed(0) => after_body(upgrade),
                            BodyLength::Fixed(left) => State::Fixed { left, upgrade },
                            BodyLength::Chunked => {
                                State::Chunked { chunk: Chunk::Start { size: 0 }, upgrade }
                            }
                        }
                    };
                }
                State::Fixed { left, upgrade } => {
                    let n = u64::try_from(take).unwrap_or(u64::MAX).min(left);
                    if n == 0 {
                        return (passed, Stop::Done);
                    }
                    // At most `take`, a `usize`.
                    passed += usize::try_from(n).unwrap_or(take);
                    self.state =
                        if n < left { State::Fixed { left: left - n, upgrade } } else { after_body(upgrade) };
                }
                State::Chunked { mut chunk, upgrade } => {
                    if take == 0 {
                        return (passed, Stop::Done);
                    }
                    let (n, end) = chunk.walk(&rest[..take]);
                    passed += n;
                    self.state = match end {
                        Walk::More => State::Chunked { chunk, upgrade },
                        Walk::End => after_body(upgrade),
                        // hyper fails the body at the same byte and closes the connection.
                        Walk::Broken => State::Opaque,
                    };
                }
                State::AwaitUpgrade => return (passed, Stop::Wait),
                State::Opaque => return (passed + take, Stop::Done),
                State::Refused(_) => return (passed, Stop::Refused),
            }
        }
    }
}

fn after_body(upgrade: bool) -> State {
    if upgrade { State::AwaitUpgrade } else { State::Head }
}

/// Where in a chunked body: hyper's decoder, state for state (`proto/h1/decode.rs`), so that
/// the body ends, or breaks, at the very byte it does for hyper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// The first digit of a chunk size.
    Start {
        size: u64,
    },
    Size {
        size: u64,
    },
    SizeLws {
        size: u64,
    },
    Extension {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    EndCr,
    EndLf,
}

/// How a walk through chunked bytes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// The bytes are used up; the body goes on.
    More,
    /// The body ended (the bytes used are counted).
    End,
    /// Not chunked framing: hyper refuses the body here.
    Broken,
}

impl Chunk {
    /// Walks through `bytes`: how many belong to the body, and whether it ended.
    fn walk(&mut self, bytes: &[u8]) -> (usize, Walk) {
        let mut at = 0;
        while at < bytes.len() {
            if let Chunk::Data { left } = *self {
                let n = u64::try_from(bytes.len() - at).unwrap_or(u64::MAX).min(left);
                at += usize::try_from(n).unwrap_or(bytes.len() - at);
                *self = if n < left { Chunk::Data { left: left - n } } else { Chunk::DataCr };
                continue;
            }
            let byte = bytes[at];
            at += 1;
            let next = match (*self, byte) {
                (Chunk::Start { size } | Chunk::Size { size }, _) if byte.is_ascii_hexdigit() => {
                    let digit = u64::from(char::from(byte).to_digit(16).unwrap_or(0));
                    match size.checked_mul(16).and_then(|size| size.checked_add(digit)) {
                        Some(size) => Chunk::Size { size },
                        None => return (at, Walk::Broken),
                    }
                }
                (Chunk::Size { size } | Chunk::SizeLws { size }, b'\t' | b' ') => Chunk::SizeLws { size },
                (Chunk::Size { size } | Chunk::SizeLws { size }, b';') => Chunk::Extension { size },
                (Chunk::Size { size } | Chunk::SizeLws { size } | Chunk::Extension { size }, b'\r') => {
                    Chunk::SizeLf { size }
                }
                (Chunk::Extension { .. }, b'\n') => return (at, Walk::Broken),
                (Chunk::Extension { size }, _) => Chunk::Extension { size },
                (Chunk::SizeLf { size: 0 }, b'\n') => Chunk::EndCr,
                (Chunk::SizeLf { size }, b'\n') => Chunk::Data { left: size },
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => Chunk::Start { size: 0 },
                (Chunk::EndCr, b'\r') => Chunk::EndLf,
                (Chunk::Trailer, b'\r') => Chunk::TrailerLf,
                (Chunk::EndCr | Chunk::Trailer, _) => Chunk::Trailer,
                (Chunk::TrailerLf, b'\n') => Chunk::EndCr,
                (Chunk::EndLf, b'\n') => return (at, Walk::End),
                _ => return (at, Walk::Broken),
            };
            *self = next;
        }
        (at, Walk::More)
    }
}

/// The gate of one connection: the [`Framer`], the input it holds back, and the answer to a
/// refused head.
#[derive(Debug)]
pub(super) struct Gate {
    framer: Framer,
    /// Input not yet given to hyper, from `at` on: what the keep-alive loop read before the
    /// hand-over, an incomplete head, or bytes behind a request whose answer is awaited.
    held: Vec<u8>,
    at: usize,
    exchange: std::sync::Arc<Exchange>,
    /// The answer to a refused head, once being written, and how much of it is.
    answer: Option<(Vec<u8>, usize)>,
}

impl Gate {
    /// A gate whose input starts with `prefix` (read before hyper took the connection), then
    /// the socket's.
    pub(super) fn new(prefix: Vec<u8>, exchange: std::sync::Arc<Exchange>) -> Self {
        Self { framer: Framer { state: State::Head, heads: 0 }, held: prefix, at: 0, exchange, answer: None }
    }

    /// hyper's read: fills `buf` with what may pass from the held input or from `io`.
    pub(super) fn poll_read<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        activity: &Activity,
    ) -> Poll<io::Result<()>> {
        loop {
            match self.framer.state {
                State::AwaitUpgrade => match self.wait(cx, |exchange, heads| exchange.switched_at(heads)) {
                    Some(true) => self.framer.state = State::Opaque,
                    Some(false) => self.framer.state = State::Head,
                    None => return Poll::Pending,
                },
                // The end of hyper's input, once its answers are written: hyper then closes
                // the connection, and the refusal is written before the close.
                State::Refused(_) => {
                    return match self.wait(cx, |exchange, heads| exchange.all_finished(heads).then_some(())) {
                        Some(()) => Poll::Ready(Ok(())),
                        None => Poll::Pending,
                    };
                }
                _ => {}
            }
            if self.at < self.held.len() {
                let (n, stop) = self.framer.admit(&self.held[self.at..], buf.remaining());
                if n > 0 {
                    buf.put_slice(&self.held[self.at..self.at + n]);
                    self.at += n;
                    if self.at == self.held.len() {
                        // Nothing held: the connection keeps no buffer of the gate's.
                        self.held = Vec::new();
                        self.at = 0;
                    }
                    return Poll::Ready(Ok(()));
                }
                match stop {
                    Stop::Hold => {
                        if ready!(self.poll_hold_more(io, cx, activity))? == 0 {
                            // The client closed within a head: hyper sees the end.
                            return Poll::Ready(Ok(()));
                        }
                    }
                    Stop::Wait | Stop::Refused => {}
                    // No room (hyper never reads into a full buffer).
                    Stop::Done => return Poll::Ready(Ok(())),
                }
                continue;
            }
            // Nothing held: read straight into hyper's buffer, and take back what may not pass.
            let before = buf.filled().len();
            ready!(Pin::new(&mut *io).poll_read(cx, buf))?;
            let read = buf.filled().len() - before;
            if read == 0 {
                return Poll::Ready(Ok(()));
            }
            activity.touch();
            let (n, stop) = self.framer.admit(&buf.filled()[before..], read);
            if n < read {
                // A refused head and what follows it are never read.
                if stop != Stop::Refused {
                    self.held.extend_from_slice(&buf.filled()[before + n..]);
                    self.at = 0;
                }
                buf.set_filled(before + n);
            }
            if n > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// `ready` of the exchange for the heads passed so far, registering the task to be woken
    /// when it changes.
    fn wait<T>(&self, cx: &Context<'_>, ready: impl Fn(&Exchange, u64) -> Option<T>) -> Option<T> {
        if let Some(value) = ready(&self.exchange, self.framer.heads) {
            return Some(value);
        }
        self.exchange.register(cx.waker());
        // Checked again: the answer may have come between the check and the registration.
        ready(&self.exchange, self.framer.heads)
    }

    /// Reads more of an incomplete head from `io` behind what is held, up to the head limit
    /// (one more byte shows a head over it); the bytes read, 0 at the end of the stream.
    fn poll_hold_more<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
        activity: &Activity,
    ) -> Poll<io::Result<usize>> {
        if self.at > 0 {
            self.held.drain(..self.at);
            self.at = 0;
        }
        let len = self.held.len();
        let limit = MAX_HEAD_BYTES + 1;
        if self.held.capacity() == len {
            self.held.reserve_exact(len.max(INITIAL_HOLD_BYTES).min(limit.saturating_sub(len)).max(1));
        }
        let room = (self.held.capacity() - len).max(1);
        self.held.resize(len + room, 0);
        let mut read = ReadBuf::new(&mut self.held[len..]);
        let polled = Pin::new(&mut *io).poll_read(cx, &mut read);
        let n = read.filled().len();
        self.held.truncate(len + n);
        ready!(polled)?;
        if n > 0 {
            activity.touch();
        }
        Poll::Ready(Ok(n))
    }

    /// Writes the answer to a refused head, if there is one, before the connection closes.
    pub(super) fn poll_answer<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let State::Refused(error) = self.framer.state else { return Poll::Ready(Ok(())) };
        let (answer, written) =
            self.answer.get_or_insert_with(|| (response::error_answer(&error.to_api_error(), false), 0));
        while *written < answer.len() {
            match ready!(Pin::new(&mut *io).poll_write(cx, &answer[*written..]))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => *written += n,
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod differential;
#[cfg(test)]
mod tests;
