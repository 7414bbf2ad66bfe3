//! Server-Sent Events served outside hyper, for memory: a stream holds nothing of hyper's.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for every connection for as long
//! as it lives, and an SSE stream lives for hours while it reads nothing and writes frames that
//! are already encoded: 16 of the 23.6 KB of heap an idle SSE connection cost. So when a
//! connection's first request is `GET /v1/sse`, the accept loop reads and parses its head here
//! (`httparse`), hands the request to the same axum router as every other request (the SSE
//! handler, its validation and any middleware run unchanged), and then:
//!
//! - for the event stream (`200` with `text/event-stream`), writes the response head and then
//!   each chunk the body yields straight to the socket: no copy, no chunked encoding (the body
//!   ends with the connection, `connection: close`), while a read on the other half notices a
//!   client that went away, which drops the body and its subscription at once;
//! - for anything else (a JSON error, a `503`), writes the response with its length, and closes.
//!
//! Everything else, and any later request of a connection, is hyper's. Timeouts and limits
//! are the accept loop's: the head must arrive within the header-read timeout, a stream with
//! nothing written for the idle timeout is closed, the connection keeps its permit, and on
//! shutdown the stream ends by itself (the hub is closed first; the body sends
//! `shutting_down` and ends).

use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use pushgate_http::{ApiError, ErrorCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt as _;

use super::{Activity, Limits, Slots};

/// The request line this path takes; the byte after it must end the path (`?` or ` `).
const SSE_REQUEST_LINE: &[u8] = b"GET /v1/sse";
/// Bytes to peek at to recognize [`SSE_REQUEST_LINE`] and the byte after it.
pub(super) const PEEK_LEN: usize = SSE_REQUEST_LINE.len() + 1;
/// Largest request head read here (hyper's default limits are larger, but an SSE request is a
/// few hundred bytes, cookies included).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines in a request head.
const MAX_HEADERS: usize = 64;
/// How long the connection waits for the client to close after the server ended the stream.
const LINGER: Duration = Duration::from_secs(1);
/// Largest non-stream answer written here (they are JSON errors of a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Whether `peeked`, the first bytes of a connection, start an SSE request: `GET /v1/sse`
/// followed by a query or the end of the path.
pub(super) fn is_sse_request(peeked: &[u8]) -> bool {
    peeked.len() >= PEEK_LEN
        && peeked.starts_with(SSE_REQUEST_LINE)
        && matches!(peeked[SSE_REQUEST_LINE.len()], b'?' | b' ')
}

/// Serves the one SSE request of `stream`, then closes it.
pub(super) async fn serve(
    mut stream: TcpStream,
    slots: Slots,
    router: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let _slots = slots;
    let head = tokio::select! {
        head = tokio::time::timeout(limits.header_read_timeout, read_head(&mut stream)) => head,
        // An error means the server is gone: stop all the same.
        _ = stopping.wait_for(|stop| *stop) => return,
    };
    let response = match head {
        Ok(Ok(request)) => match router.oneshot(request).await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        },
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(error)) => error.into_response(),
        Err(_) => {
            tracing::debug!("request head not received in time");
            return;
        }
    };
    let activity = Activity::new();
    let streaming = response.status() == StatusCode::OK
        && response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value == "text/event-stream");
    let written = if streaming {
        stream_response(&mut stream, &activity, limits.idle_timeout, response).await
    } else {
        answer(&mut stream, response).await
    };
    if let Err(error) = written {
        tracing::debug!(%error, "sse connection ended with an error");
        return;
    }
    // Half-close, then let the client close first: closing with unread input would reset the
    // connection and could destroy the last frame before the client reads it.
    if stream.shutdown().await.is_ok() {
        let mut scrap = [0_u8; 256];
        let linger = async { while matches!(stream.read(&mut scrap).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(LINGER, linger).await;
    }
}

/// Why no request came out of a connection's head.
#[derive(Debug)]
enum HeadError {
    /// The client closed or the connection failed before the head was complete.
    Closed,
    /// Over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`].
    TooLarge,
    /// Not a valid HTTP/1 request head.
    Malformed(&'static str),
}

impl HeadError {
    fn into_response(self) -> Response<Body> {
        use axum::response::IntoResponse as _;
        let error = match self {
            Self::TooLarge => ApiError::new(ErrorCode::TooLarge, "the request head is too large"),
            Self::Malformed(what) => {
                ApiError::new(ErrorCode::InvalidParameter, format!("malformed HTTP request: {what}"))
            }
            Self::Closed => ApiError::new(ErrorCode::InvalidParameter, "incomplete HTTP request"),
        };
        error.into_response()
    }
}

/// Reads and parses the request head.
async fn read_head(stream: &mut TcpStream) -> Result<Request<Body>, HeadError> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        if buf.capacity() == buf.len() {
            buf.reserve(buf.len().min(MAX_HEAD_BYTES - buf.len()));
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(_) => {}
        }
        if let Some(request) = parse_head(&buf)? {
            return Ok(request);
        }
    }
}

/// The request in `buf`, once its head is complete. Any body (a GET has none) is not read: the
/// connection ends with the stream.
fn parse_head(buf: &[u8]) -> Result<Option<Request<Body>>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed("bad request head")),
    }
    let version = match parsed.version {
        Some(0) => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let mut request = Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"))
        .version(version)
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
    Ok(Some(request))
}

/// The status line and headers of `response` (plus `date` and `connection: close`), and a
/// `content-length` when the body's length is given.
fn head_bytes<B>(response: &Response<B>, content_length: Option<usize>) -> Bytes {
    let status = response.status();
    let mut head = BytesMut::with_capacity(256);
    head.put_slice(b"HTTP/1.1 ");
    head.put_slice(status.as_str().as_bytes());
    head.put_u8(b' ');
    head.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.put_slice(b"\r\n");
    for (name, value) in response.headers() {
        if matches!(*name, header::CONNECTION | header::CONTENT_LENGTH | header::TRANSFER_ENCODING) {
            continue;
        }
        head.put_slice(name.as_str().as_bytes());
        head.put_slice(b": ");
        head.put_slice(value.as_bytes());
        head.put_slice(b"\r\n");
    }
    head.put_slice(b"date: ");
    head.put_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    head.put_slice(b"\r\nconnection: close\r\n");
    if let Some(length) = content_length {
        head.put_slice(b"content-length: ");
        head.put_slice(length.to_string().as_bytes());
        head.put_slice(b"\r\n");
    }
    head.put_slice(b"\r\n");
    head.freeze()
}

/// Writes a complete, short answer (an error) with its length.
async fn answer(stream: &mut TcpStream, response: Response<Body>) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let body = http_body_util::Limited::new(body, MAX_ANSWER_BYTES)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let head = head_bytes(&Response::from_parts(parts, ()), Some(body.len()));
    stream.write_all(&head).await?;
    stream.write_all(&body).await
}

/// Writes the stream's head, then each chunk as the body yields it, until the body ends, the
/// client goes away, or nothing could be written for `idle_timeout`.
async fn stream_response(
    stream: &mut TcpStream,
    activity: &Activity,
    idle_timeout: Duration,
    response: Response<Body>,
) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let head = head_bytes(&Response::from_parts(parts, ()), None);
    stream.write_all(&head).await?;
    drop(head);
    let (mut reader, mut writer) = stream.split();
    let mut body = pin!(body);
    let mut idle = pin!(activity.idle_for(idle_timeout));
    // The client sends nothing more; reading only tells when it closes.
    let mut scrap = [0_u8; 64];
    loop {
        let data = tokio::select! {
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
            written = writer.write_all(&data) => written?,
            () = &mut idle => return Err(io::ErrorKind::TimedOut.into()),
        }
        activity.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sse_request_lines_are_taken() {
        assert!(is_sse_request(b"GET /v1/sse?topic=a HTTP/1.1\r\n"));
        assert!(is_sse_request(b"GET /v1/sse HTTP/1.1\r\n"));
        assert!(!is_sse_request(b"GET /v1/sse/x HTTP/1.1\r\n"));
        assert!(!is_sse_request(b"GET /v1/sses HTTP/1.1\r\n"));
        assert!(!is_sse_request(b"POST /v1/sse HTTP/1.1\r\n"));
        assert!(!is_sse_request(b"GET /v1/ss"), "too short to tell: hyper's");
        assert!(!is_sse_request(b"GET /v1/poll?topic=a HTTP/1.1\r\n"));
    }

    #[test]
    fn heads_parse_into_requests() {
        let head = b"GET /v1/sse?topic=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1-2\r\nX: a\r\nX: b\r\n\r\n";
        let request = parse_head(head).ok().flatten().unwrap_or_default();
        assert_eq!(request.uri(), "/v1/sse?topic=a");
        assert_eq!(request.headers()["last-event-id"], "1-2");
        assert_eq!(request.headers().get_all("x").iter().count(), 2);
        assert!(matches!(parse_head(&head[..20]), Ok(None)));
        assert!(matches!(
            parse_head(b"GET /v1/sse HTTP/1.1\r\nBad Header\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn a_head_carries_the_headers_a_date_and_the_framing() {
        let mut response = Response::new(());
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        let head = head_bytes(&response, None);
        let text = std::str::from_utf8(&head).unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ndate: "), "{text}");
        assert!(text.ends_with("\r\nconnection: close\r\n\r\n"), "{text}");
        assert!(!text.contains("content-length"), "a stream is delimited by the close");
        let answer = head_bytes(&Response::new(()), Some(12));
        assert!(std::str::from_utf8(&answer).unwrap_or_default().ends_with("content-length: 12\r\n\r\n"));
    }
}
