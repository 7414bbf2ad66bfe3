//! Client sockets: connecting from a chosen 127.0.0.x source address, counting every byte read
//! and written (HTTP headers and WebSocket framing included), and reading HTTP/1.1 responses
//! with the parser of [`crate::http`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use crate::http::{self, BodyFraming, ChunkedDecoder, ResponseHead};

/// Largest response body the bench reads into memory (a poll answer; pushgate's default answer
/// budget is 4 MiB).
pub(crate) const MAX_BODY_BYTES: usize = 32 << 20;

/// A stream that counts the bytes passing through it.
#[derive(Debug)]
pub(crate) struct Counting<S> {
    inner: S,
    /// Bytes read so far.
    pub(crate) read: u64,
    /// Bytes written so far.
    pub(crate) written: u64,
}

impl<S> Counting<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner, read: 0, written: 0 }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read += (buf.filled().len() - before) as u64;
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.written += n as u64;
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Connects to `server` from `source` (port chosen by the system): spreading connections over
/// several 127.0.0.x sources multiplies the ephemeral ports available.
pub(crate) async fn connect(server: SocketAddr, source: Ipv4Addr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // Lets a port whose previous connection is in TIME_WAIT be bound again; loopback reuses them
    // safely (net.ipv4.tcp_tw_reuse).
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One HTTP/1.1 connection (or the read half of one): a counted socket and what has been read
/// but not yet used.
#[derive(Debug)]
pub(crate) struct HttpConn<S = TcpStream> {
    pub(crate) stream: Counting<S>,
    pub(crate) buf: BytesMut,
}

/// A response with its body in memory.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) head: ResponseHead,
    pub(crate) body: Vec<u8>,
}

fn invalid(err: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl<S> HttpConn<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self { stream: Counting::new(stream), buf: BytesMut::with_capacity(4096) }
    }
}

impl<S: AsyncWrite + Unpin> HttpConn<S> {
    /// Writes a whole request.
    pub(crate) async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request).await
    }
}

impl<S: AsyncRead + Unpin> HttpConn<S> {
    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Reads the next response head, leaving the body bytes in the buffer.
    pub(crate) async fn read_head(&mut self) -> io::Result<ResponseHead> {
        // Each pass reads at least one byte or returns; the head is bounded by MAX_HEAD_BYTES.
        loop {
            if let Some(head) = http::parse_head(&self.buf).map_err(invalid)? {
                self.buf.advance(head.len);
                return Ok(head);
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads the body announced by `head` (bounded by [`MAX_BODY_BYTES`]).
    pub(crate) async fn read_body(&mut self, head: &ResponseHead) -> io::Result<Vec<u8>> {
        match head.framing {
            BodyFraming::Empty => Ok(Vec::new()),
            BodyFraming::Length(length) => {
                if length > MAX_BODY_BYTES {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "response body too large"));
                }
                while self.buf.len() < length {
                    if self.fill().await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Ok(self.buf.split_to(length).to_vec())
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                let mut body = Vec::new();
                loop {
                    let used = decoder.decode(&self.buf, &mut body).map_err(invalid)?;
                    self.buf.advance(used);
                    if decoder.is_done() {
                        return Ok(body);
                    }
                    if body.len() > MAX_BODY_BYTES {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "response body too large"));
                    }
                    if self.fill().await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
            BodyFraming::UntilClose => {
                while self.fill().await? != 0 {
                    if self.buf.len() > MAX_BODY_BYTES {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "response body too large"));
                    }
                }
                Ok(self.buf.split().to_vec())
            }
        }
    }

    /// Reads the next whole response. Cancelling it between reads loses nothing for heads and
    /// `Content-Length` bodies (their progress is the buffer), but does for chunked bodies.
    pub(crate) async fn read_response(&mut self) -> io::Result<Response> {
        let head = self.read_head().await?;
        let body = self.read_body(&head).await?;
        Ok(Response { head, body })
    }
}

/// One `GET` on a fresh connection from 127.0.0.1, for health and readiness checks; gives up
/// after `limit`.
pub(crate) async fn get(
    server: SocketAddr,
    host: &str,
    path: &str,
    limit: std::time::Duration,
) -> io::Result<Response> {
    let exchange = async {
        let mut conn = HttpConn::new(connect(server, Ipv4Addr::LOCALHOST).await?);
        conn.send(&http::request("GET", path, host, &[("Connection", "close")], None)).await?;
        conn.read_response().await
    };
    tokio::time::timeout(limit, exchange).await.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}
