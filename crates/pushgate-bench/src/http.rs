//! The pure half of the bench's HTTP/1.1 client: request text, response heads and body framing
//! (`Content-Length`, chunked, or until the connection closes), with no socket in sight.
//!
//! A hand-written client, because 18,000 connections each holding a general-purpose client's
//! buffers and tasks would measure the client, and because every byte must be counted at the
//! socket, headers included. The heads and chunk-size lines themselves are parsed by `httparse`,
//! the parser hyper (and so the gateway) uses.

use std::fmt::Write as _;

/// Largest response head accepted; a server sending more is broken, not slow.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// The status line is not `HTTP/1.x <3 digits> ...`.
    StatusLine,
    /// A header line has no colon, or a framing header has a bad value.
    Header,
    /// The head passed [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// A chunk-size line is not hexadecimal or the chunk is not followed by CRLF.
    Chunk,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StatusLine => "malformed status line",
            Self::Header => "malformed header",
            Self::HeadTooLarge => "response head larger than 64 KiB",
            Self::Chunk => "malformed chunked encoding",
        })
    }
}

impl std::error::Error for HttpError {}

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body (`204`, `304`, `1xx`).
    Empty,
    /// Exactly this many bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection (nchan's event stream).
    UntilClose,
}

/// The parts of a response head the bench uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// The status code.
    pub(crate) status: u16,
    /// How the body is delimited.
    pub(crate) framing: BodyFraming,
    /// `Connection: close` was sent (or HTTP/1.0 without keep-alive).
    pub(crate) close: bool,
    /// The `ETag` header, verbatim.
    pub(crate) etag: Option<String>,
    /// The `Last-Modified` header, verbatim.
    pub(crate) last_modified: Option<String>,
    /// Bytes of the head, the blank line included.
    pub(crate) len: usize,
}

/// Most header lines a response head may have; more is a broken server, as is too long a head.
const MAX_HEADERS: usize = 64;

/// Parses the response head at the start of `buf`; `Ok(None)` when the blank line that ends it
/// has not arrived yet.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(&buf[..buf.len().min(MAX_HEAD_BYTES)]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => return Err(HttpError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Version | httparse::Error::Status) => return Err(HttpError::StatusLine),
        Err(_) => return Err(HttpError::Header),
    };
    let (Some(version), Some(status)) = (response.version, response.code) else {
        return Err(HttpError::StatusLine);
    };
    let mut head = ResponseHead {
        status,
        framing: BodyFraming::UntilClose,
        close: version == 0,
        etag: None,
        last_modified: None,
        len,
    };
    let mut length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).map_err(|_| HttpError::Header)?.trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| HttpError::Header)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().split(',').any(|coding| coding.trim() == "chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            head.close = value.contains("close") || (head.close && !value.contains("keep-alive"));
        } else if name.eq_ignore_ascii_case("etag") {
            head.etag = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("last-modified") {
            head.last_modified = Some(value.to_owned());
        }
    }
    head.framing = if status < 200 || status == 204 || status == 304 {
        BodyFraming::Empty
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(length) = length {
        BodyFraming::Length(length)
    } else {
        BodyFraming::UntilClose
    };
    Ok(Some(head))
}

/// A `GET` (or, with a body, `POST`) request as bytes.
///
/// `host` is the `Host` header value; `headers` are extra `(name, value)` pairs.
pub(crate) fn request(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut text = String::with_capacity(128 + path.len());
    // Writing to a String cannot fail.
    let _ = write!(text, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        let _ = write!(text, "{name}: {value}\r\n");
    }
    if let Some((content_type, body)) = body {
        let _ = write!(text, "Content-Type: {content_type}\r\nContent-Length: {}\r\n", body.len());
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    if let Some((_, body)) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// Longest chunk-size or trailer line accepted.
const MAX_LINE_BYTES: usize = 1024;

/// Where a [`ChunkedDecoder`] is in the chunked encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero-size) chunk: reading trailer lines until a blank one.
    Trailer,
    /// The body has ended.
    Done,
}

/// An incremental decoder of `Transfer-Encoding: chunked`: feed it what arrived, it appends the
/// decoded bytes and says how much input it used.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self { state: ChunkState::Size }
    }
}

impl ChunkedDecoder {
    /// Whether the terminating chunk and trailer have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes as much of `input` as is complete, appending data to `out`; returns the number of
    /// input bytes consumed (the rest must be offered again with more bytes after it).
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut at = 0;
        // Each pass consumes input or returns, so this ends within `input.len()` + 1 passes.
        loop {
            match self.state {
                ChunkState::Done => return Ok(at),
                ChunkState::Size => match httparse::parse_chunk_size(&input[at..]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        at += used;
                        let size = usize::try_from(size).map_err(|_| HttpError::Chunk)?;
                        self.state = if size == 0 { ChunkState::Trailer } else { ChunkState::Data(size) };
                    }
                    Ok(httparse::Status::Partial) if input.len() - at > MAX_LINE_BYTES => {
                        return Err(HttpError::Chunk);
                    }
                    Ok(httparse::Status::Partial) => return Ok(at),
                    Err(httparse::InvalidChunkSize) => return Err(HttpError::Chunk),
                },
                ChunkState::Trailer => {
                    let Some(eol) = memchr::memmem::find(&input[at..], b"\r\n") else {
                        if input.len() - at > MAX_LINE_BYTES {
                            return Err(HttpError::Chunk);
                        }
                        return Ok(at);
                    };
                    at += eol + 2;
                    if eol == 0 {
                        self.state = ChunkState::Done;
                    }
                }
                ChunkState::Data(left) => {
                    let available = input.len() - at;
                    if available == 0 {
                        return Ok(at);
                    }
                    let take = left.min(available);
                    out.extend_from_slice(&input[at..at + take]);
                    at += take;
                    self.state =
                        if take == left { ChunkState::DataEnd } else { ChunkState::Data(left - take) };
                }
                ChunkState::DataEnd => {
                    let available = &input[at..input.len().min(at + 2)];
                    if !b"\r\n".starts_with(available) {
                        return Err(HttpError::Chunk);
                    }
                    if available.len() < 2 {
                        return Ok(at);
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_parsed_once_complete() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"e1\"\r\n\
                     content-length: 7\r\n\r\n{\"a\":1}";
        assert_eq!(parse_head(&text[..20]), Ok(None));
        let head = parse_head(text).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, BodyFraming::Length(7));
        assert_eq!(head.etag.as_deref(), Some("\"e1\""));
        assert!(!head.close);
        assert_eq!(&text[head.len..], b"{\"a\":1}");
    }

    #[test]
    fn framing_follows_status_and_headers() {
        let head = |text: &str| parse_head(text.as_bytes()).unwrap().unwrap();
        assert_eq!(
            head("HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n").framing,
            BodyFraming::Empty
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n").framing,
            BodyFraming::Chunked
        );
        let nchan_sse =
            head("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(nchan_sse.framing, BodyFraming::UntilClose);
        let closing =
            head("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\n");
        assert!(closing.close);
        assert!(head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").close);
        let nchan_poll = head(
            "HTTP/1.1 200 OK\r\nLast-Modified: Sat, 21 Nov 2026 21:55:52 GMT\r\nEtag: 0\r\nContent-Length: 1\r\n\r\n",
        );
        assert_eq!(nchan_poll.last_modified.as_deref(), Some("Sat, 21 Nov 2026 21:55:52 GMT"));
        assert_eq!(nchan_poll.etag.as_deref(), Some("0"));
    }

    #[test]
    fn malformed_heads_are_errors() {
        assert_eq!(parse_head(b"HTTX/1.1 200 OK\r\n\r\n"), Err(HttpError::StatusLine));
        assert_eq!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n"), Err(HttpError::StatusLine));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"), Err(HttpError::Header));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), Err(HttpError::Header));
        let mut endless = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        endless.resize(MAX_HEAD_BYTES + 1, b'a');
        assert_eq!(parse_head(&endless), Err(HttpError::HeadTooLarge));
        assert_eq!(parse_head(&[b'a'; 10]), Err(HttpError::StatusLine));
    }

    #[test]
    fn chunks_decode_across_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
        for split in 0..wire.len() {
            let mut decoder = ChunkedDecoder::default();
            let mut out = Vec::new();
            let used = decoder.decode(&wire[..split], &mut out).unwrap();
            let mut rest = wire[used..].to_vec();
            let used = decoder.decode(&rest, &mut out).unwrap();
            rest.drain(..used);
            assert!(rest.is_empty(), "split at {split}");
            assert!(decoder.is_done(), "split at {split}");
            assert_eq!(out, b"hello, world", "split at {split}");
        }
    }

    #[test]
    fn bad_chunks_are_errors() {
        let mut out = Vec::new();
        assert_eq!(ChunkedDecoder::default().decode(b"zz\r\n", &mut out), Err(HttpError::Chunk));
        assert_eq!(ChunkedDecoder::default().decode(b"1\r\nab", &mut out), Err(HttpError::Chunk));
    }

    #[test]
    fn requests_carry_host_headers_and_length() {
        let get = request("GET", "/v1/sse?topic=a", "127.0.0.1:1", &[("Accept", "text/event-stream")], None);
        assert_eq!(
            get,
            b"GET /v1/sse?topic=a HTTP/1.1\r\nHost: 127.0.0.1:1\r\nAccept: text/event-stream\r\n\r\n"
        );
        let post = request("POST", "/pub/a", "h", &[], Some(("application/json", b"{}")));
        assert_eq!(
            post,
            b"POST /pub/a HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }
}
