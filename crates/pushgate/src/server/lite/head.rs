//! The pure half of the lite loop: which requests it takes, request heads parsed into
//! `http::Request`s, and response heads written, with no socket in sight.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::{HeaderValue, Request, Response, header};
use pushgate_http::{ApiError, ErrorCode};

/// The paths the lite loop serves (a `GET` with the exact path, then a query or nothing).
const LITE_PATHS: [&[u8]; 3] = [b"/v1/poll", b"/v1/longpoll", b"/v1/sse"];
/// Bytes the accept loop peeks at to tell a lite request: the longest request line prefix
/// (`GET /v1/longpoll`) and the byte after it.
pub(in crate::server) const PEEK_LEN: usize = b"GET /v1/longpoll".len() + 1;
/// Largest request head read here (hyper's limits are larger, but a poll request is a few
/// hundred bytes, cookies included); also the most pipelined bytes held while a request is
/// answered.
pub(super) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines in a request head.
const MAX_HEADERS: usize = 64;

/// Whether `start`, the first bytes of a request, begin a `GET` to one of [`LITE_PATHS`]:
/// `None` while too few bytes are there to tell.
pub(in crate::server) fn starts_lite_request(start: &[u8]) -> Option<bool> {
    let Some(target) = start.strip_prefix(b"GET ") else {
        return if b"GET ".starts_with(start) { None } else { Some(false) };
    };
    let mut undecided = false;
    for path in LITE_PATHS {
        if target.len() > path.len() {
            if target.starts_with(path) && matches!(target[path.len()], b'?' | b' ') {
                return Some(true);
            }
        } else if path.starts_with(target) {
            undecided = true;
        }
    }
    if undecided { None } else { Some(false) }
}

/// What the bytes read so far hold.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "lives for one call per request; boxing the request would allocate for every one"
)]
pub(super) enum Parsed {
    /// Not a whole head yet, and nothing says it is not the lite loop's.
    Partial,
    /// A request the lite loop serves; its head was `head_len` bytes, and the connection closes
    /// after its answer when `close` is set (`Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`).
    Lite { request: Request<Body>, head_len: usize, close: bool, http10: bool },
    /// Any other request (another method or path, a body, an upgrade, `Expect`): hyper's,
    /// with the connection, from its first byte on.
    Other,
}

/// Why the bytes read are no request.
#[derive(Debug)]
pub(super) enum HeadError {
    /// Over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`].
    TooLarge,
    /// Not a valid HTTP/1 request head.
    Malformed(&'static str),
}

impl HeadError {
    /// The JSON error that answers it.
    pub(super) fn into_response(self) -> Response<Body> {
        use axum::response::IntoResponse as _;
        let error = match self {
            Self::TooLarge => ApiError::new(ErrorCode::TooLarge, "the request head is too large"),
            Self::Malformed(what) => {
                ApiError::new(ErrorCode::InvalidParameter, format!("malformed HTTP request: {what}"))
            }
        };
        error.into_response()
    }
}

/// Parses the head at the start of `buf`.
pub(super) fn parse(buf: &[u8]) -> Result<Parsed, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return match starts_lite_request(buf) {
                // Hand it over early: hyper reads its head however large hyper allows.
                Some(false) => Ok(Parsed::Other),
                _ if buf.len() >= MAX_HEAD_BYTES => Err(HeadError::TooLarge),
                _ => Ok(Parsed::Partial),
            };
        }
        // A request line that is not the lite loop's makes the whole head hyper's to judge (its
        // header limit is larger): as when it is a connection's first request.
        Err(_) if starts_lite_request(buf) == Some(false) => return Ok(Parsed::Other),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed("bad request head")),
    };
    let path = parsed.path.unwrap_or("").as_bytes();
    let lite_path = LITE_PATHS
        .iter()
        .any(|lite| path.strip_prefix(*lite).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"?")));
    if parsed.method != Some("GET") || !lite_path {
        return Ok(Parsed::Other);
    }
    let http10 = parsed.version == Some(0);
    let (mut close, mut keep_alive) = (false, false);
    for line in parsed.headers.iter() {
        let name = line.name.as_bytes();
        let framed_body = (name.eq_ignore_ascii_case(b"content-length") && line.value.trim_ascii() != b"0")
            || name.eq_ignore_ascii_case(b"transfer-encoding");
        if framed_body || name.eq_ignore_ascii_case(b"upgrade") || name.eq_ignore_ascii_case(b"expect") {
            return Ok(Parsed::Other);
        }
        if name.eq_ignore_ascii_case(b"connection") {
            for token in line.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let close = close || (http10 && !keep_alive);
    let mut request = Request::builder()
        .method(http::Method::GET)
        .uri(parsed.path.unwrap_or("/"))
        .version(if http10 { http::Version::HTTP_10 } else { http::Version::HTTP_11 })
        .body(Body::empty())
        .map_err(|_| HeadError::Malformed("bad request target"))?;
    let map = request.headers_mut();
    map.reserve(parsed.headers.len());
    for line in parsed.headers.iter() {
        let name = header::HeaderName::from_bytes(line.name.as_bytes())
            .map_err(|_| HeadError::Malformed("bad header name"))?;
        let value =
            HeaderValue::from_bytes(line.value).map_err(|_| HeadError::Malformed("bad header value"))?;
        map.append(name, value);
    }
    Ok(Parsed::Lite { request, head_len, close, http10 })
}

/// How a response's body is delimited and what becomes of the connection after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// `content-length`, then the next request.
    KeepAlive { length: Option<usize>, http10: bool },
    /// `content-length`, then the connection closes.
    Close { length: Option<usize> },
    /// No length: the body ends when the connection closes (an event stream).
    Stream,
}

/// Appends the status line and headers of `response`, a `date`, and the framing headers, to
/// `out`.
pub(super) fn write_head<B>(out: &mut Vec<u8>, response: &Response<B>, framing: Framing) {
    let status = response.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in response.headers() {
        if matches!(
            *name,
            header::CONNECTION | header::CONTENT_LENGTH | header::TRANSFER_ENCODING | header::DATE
        ) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"date: ");
    put_date(out);
    out.extend_from_slice(b"\r\n");
    let length = match framing {
        Framing::KeepAlive { length, http10 } => {
            if http10 {
                out.extend_from_slice(b"connection: keep-alive\r\n");
            }
            length
        }
        Framing::Close { length } => {
            out.extend_from_slice(b"connection: close\r\n");
            length
        }
        Framing::Stream => {
            out.extend_from_slice(b"connection: close\r\n");
            None
        }
    };
    if let Some(length) = length {
        out.extend_from_slice(b"content-length: ");
        put_decimal(out, length);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `date` header of the current second: formatting it costs more than the rest of a
    /// small response's head, and it changes once a second.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn put_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    DATE.with_borrow_mut(|(cached, date)| {
        if *cached != second {
            *cached = second;
            *date = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(date.as_bytes());
    });
}

fn put_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0_u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b"0123456789"[n % 10];
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lite_request_lines_are_taken() {
        for line in ["GET /v1/sse?topic=a HTTP/1.1", "GET /v1/sse HTTP/1.1", "GET /v1/poll?topic=a H"] {
            assert_eq!(starts_lite_request(line.as_bytes()), Some(true), "{line}");
        }
        assert_eq!(starts_lite_request(b"GET /v1/longpoll?topic=a HTTP/1.1"), Some(true));
        for line in ["GET /v1/sse/x HTTP/1.1", "GET /v1/sses HTTP", "POST /v1/sse HTTP/1.1", "GET / HTTP/1.1"]
        {
            assert_eq!(starts_lite_request(line.as_bytes()), Some(false), "{line}");
        }
        for start in ["", "GE", "GET ", "GET /v1/ss", "GET /v1/longpoll"] {
            assert_eq!(starts_lite_request(start.as_bytes()), None, "too short to tell: {start:?}");
        }
    }

    fn lite(head: &[u8]) -> (Request<Body>, usize, bool) {
        match parse(head) {
            Ok(Parsed::Lite { request, head_len, close, .. }) => (request, head_len, close),
            other => panic!("not lite: {other:?}"),
        }
    }

    #[test]
    fn heads_parse_into_requests() {
        let head =
            b"GET /v1/sse?topic=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1-2\r\nX: a\r\nX: b\r\n\r\nGET";
        let (request, head_len, close) = lite(head);
        assert_eq!(request.uri(), "/v1/sse?topic=a");
        assert_eq!(request.headers()["last-event-id"], "1-2");
        assert_eq!(request.headers().get_all("x").iter().count(), 2);
        assert_eq!(head_len, head.len() - 3, "the pipelined bytes after it are not its");
        assert!(!close);
        assert!(matches!(parse(&head[..20]), Ok(Parsed::Partial)));
        assert!(matches!(parse(b"GET /v1/sse HTTP/1.1\r\nBad Header\r\n\r\n"), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        assert!(lite(b"GET /v1/poll HTTP/1.1\r\nConnection: Close\r\n\r\n").2);
        assert!(lite(b"GET /v1/poll HTTP/1.0\r\n\r\n").2);
        assert!(!lite(b"GET /v1/poll HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").2);
        assert!(!lite(b"GET /v1/poll HTTP/1.1\r\nConnection: te, keep-alive\r\n\r\n").2);
    }

    #[test]
    fn requests_with_a_body_an_upgrade_or_another_method_are_hyper_s() {
        for head in [
            "POST /v1/publish/a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            "HEAD /v1/poll HTTP/1.1\r\n\r\n",
            "OPTIONS /v1/poll HTTP/1.1\r\n\r\n",
            "GET /v1/ws HTTP/1.1\r\n\r\n",
            "GET /v1/poll HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /v1/poll HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET /v1/sse HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /v1/poll HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            // Not a whole head yet, but already not the lite loop's.
            "POST /v1/publish/a HTTP/1.1\r\nContent-Le",
        ] {
            assert!(matches!(parse(head.as_bytes()), Ok(Parsed::Other)), "{head}");
        }
        lite(b"GET /v1/poll?topic=a HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn a_head_over_the_limit_is_refused() {
        let mut head = b"GET /v1/poll?topic=a HTTP/1.1\r\nCookie: ".to_vec();
        head.resize(MAX_HEAD_BYTES, b'a');
        assert!(matches!(parse(&head), Err(HeadError::TooLarge)));
    }

    #[test]
    fn a_head_carries_the_headers_a_date_and_the_framing() {
        let text = |framing| {
            let mut response = Response::new(());
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
            let mut out = Vec::new();
            write_head(&mut out, &response, framing);
            String::from_utf8(out).unwrap_or_default()
        };
        let stream = text(Framing::Stream);
        assert!(
            stream.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ndate: "),
            "{stream}"
        );
        assert!(stream.ends_with(" GMT\r\nconnection: close\r\n\r\n"), "{stream}");
        assert!(!stream.contains("content-length"), "a stream is delimited by the close");
        let kept = text(Framing::KeepAlive { length: Some(1203), http10: false });
        assert!(kept.ends_with(" GMT\r\ncontent-length: 1203\r\n\r\n"), "{kept}");
        let kept10 = text(Framing::KeepAlive { length: Some(0), http10: true });
        assert!(kept10.ends_with("\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n"), "{kept10}");
        let closed = text(Framing::Close { length: None });
        assert!(closed.ends_with("\r\nconnection: close\r\n\r\n"), "{closed}");
    }
}
