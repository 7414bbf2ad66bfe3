//! A raw HTTP/1 connection, for tests where the bytes on the wire are what is checked:
//! malformed requests, pipelining, keep-alive and closing.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// How long any one read waits for the server.
const WAIT: Duration = Duration::from_secs(10);

/// One answer read off a [`RawHttp`] connection.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// The status code.
    pub status: u16,
    /// The head's lines after the status line, lower-cased.
    pub headers: Vec<String>,
    /// The body, framed by `content-length` (empty without one).
    pub body: String,
}

impl RawAnswer {
    /// The value of the header `name` (lower-case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.headers.iter().find_map(|line| line.strip_prefix(&prefix))
    }

    /// The `code` of a JSON error body, or `""`.
    pub fn code(&self) -> String {
        let body: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        body["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// A client connection that writes whatever it is given and keeps what it read past the last
/// answer.
#[derive(Debug)]
pub struct RawHttp {
    stream: TcpStream,
    read: Vec<u8>,
}

impl RawHttp {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// When the connection fails.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = timeout(WAIT, TcpStream::connect(addr)).await.context("connecting in time")??;
        Ok(Self { stream, read: Vec::new() })
    }

    /// Connects to `addr` from the local address `from` (any of 127.0.0.0/8), for limits kept
    /// per client address.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound or the connection fails.
    pub async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> anyhow::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((from, 0))).with_context(|| format!("binding {from}"))?;
        let stream = timeout(WAIT, socket.connect(addr)).await.context("connecting in time")??;
        Ok(Self { stream, read: Vec::new() })
    }

    /// The socket, for what the helpers here do not do (half-closing, socket options).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Writes `bytes`.
    ///
    /// # Errors
    ///
    /// When the write fails.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
        self.stream.write_all(bytes.as_ref()).await.context("writing a request")
    }

    /// Reads more; false at the end of the stream (or a reset).
    async fn fill(&mut self) -> anyhow::Result<bool> {
        let mut buf = [0_u8; 4096];
        let n = timeout(WAIT, self.stream.read(&mut buf)).await.context("no answer in time")?.unwrap_or(0);
        self.read.extend_from_slice(&buf[..n]);
        Ok(n > 0)
    }

    /// The next answer, its body framed by its `content-length`.
    ///
    /// # Errors
    ///
    /// When the server closes before a whole answer, or takes longer than 10 s.
    pub async fn answer(&mut self) -> anyhow::Result<RawAnswer> {
        let head_end = loop {
            if let Some(at) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if !self.fill().await? {
                bail!("closed before a whole head: {:?}", String::from_utf8_lossy(&self.read));
            }
        };
        let head = String::from_utf8(self.read.drain(..head_end).collect()).context("a UTF-8 head")?;
        let mut lines = head.trim_end().split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("a status line: {status_line:?}"))?;
        let headers: Vec<String> = lines.map(str::to_ascii_lowercase).collect();
        let mut answer = RawAnswer { status, headers, body: String::new() };
        let length: usize = match answer.header("content-length") {
            Some(length) => length.parse().context("a numeric content-length")?,
            None => 0,
        };
        while self.read.len() < length {
            ensure!(self.fill().await?, "closed within a body: {answer:?}");
        }
        answer.body = String::from_utf8(self.read.drain(..length).collect()).context("a UTF-8 body")?;
        Ok(answer)
    }

    /// Waits until the server closes the connection, and checks it wrote nothing more.
    ///
    /// # Errors
    ///
    /// When the server wrote more, or did not close within 10 s.
    pub async fn closed(&mut self) -> anyhow::Result<()> {
        while self.fill().await? {}
        ensure!(self.read.is_empty(), "more after the answer: {:?}", String::from_utf8_lossy(&self.read));
        Ok(())
    }
}
