//! Response heads written by hand, with no socket in sight: the keep-alive loop's answers
//! (`lite.rs`), and the complete error answers the gate (`gate.rs`) and the accept loop write
//! for requests that never reach the router.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Response, StatusCode, header};
use pushgate_http::ApiError;

/// A complete answer carrying `error`'s status and JSON body, that closes the connection;
/// with `Retry-After: 1` when `retry_after` is set.
pub(super) fn error_answer(error: &ApiError, retry_after: bool) -> Vec<u8> {
    let body = error.to_json();
    let status = pushgate_http::status_of(error.code());
    let mut out = Vec::with_capacity(192 + body.len());
    status_line(&mut out, status);
    out.extend_from_slice(b"content-type: application/json\r\ncache-control: no-store\r\n");
    if retry_after {
        out.extend_from_slice(b"retry-after: 1\r\n");
    }
    out.extend_from_slice(b"date: ");
    put_date(&mut out);
    out.extend_from_slice(b"\r\nconnection: close\r\ncontent-length: ");
    put_decimal(&mut out, body.len());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// How a response's body is delimited and what becomes of the connection after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum Framing {
    /// `content-length`, then the next request.
    KeepAlive { length: Option<usize>, http10: bool },
    /// `content-length`, then the connection closes.
    Close { length: Option<usize> },
    /// No length: the body ends when the connection closes (an event stream).
    Stream,
}

/// Appends the status line and headers of `response`, a `date`, and the framing headers, to
/// `out`.
pub(in crate::server) fn write_head<B>(out: &mut Vec<u8>, response: &Response<B>, framing: Framing) {
    status_line(out, response.status());
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
    use http::HeaderValue;
    use pushgate_http::ErrorCode;

    use super::*;

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

    #[test]
    fn an_error_answer_is_complete_and_closes() {
        let error = ApiError::new(ErrorCode::HeadersTooLarge, "too big");
        let text = String::from_utf8(error_answer(&error, false)).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())), "{head}");
        assert!(!head.contains("retry-after"), "{head}");
        assert_eq!(body, r#"{"error":{"code":"headers_too_large","message":"too big"}}"#);
        let retry = String::from_utf8(error_answer(&error, true)).unwrap_or_default();
        assert!(retry.contains("\r\nretry-after: 1\r\n"), "{retry}");
    }
}
