//! Request heads, parsed and judged once for both server paths: the keep-alive loop
//! (`lite.rs`) reads every connection's first head and the heads of its own requests with
//! this, and the gate in front of hyper (`gate.rs`) checks every later head before hyper
//! sees it. So both paths accept the same requests, give them the same meaning, and refuse
//! the rest with the same JSON answer; hyper's own parser never judges a head alone (its
//! answers to bad heads have an empty body).
//!
//! The rules, RFC 9112 with the usual hardening:
//!
//! - a head is at most [`MAX_HEAD_BYTES`] bytes and [`MAX_HEADERS`] lines, else
//!   `431 headers_too_large`; a request target over [`MAX_TARGET_BYTES`] is `414 uri_too_long`;
//! - HTTP/1.0 or HTTP/1.1 only (no HTTP/0.9, no `PRI *` preface of HTTP/2);
//! - the target is origin-form (`/path?query`) or absolute-form (`http://host/path`), or
//!   authority-form for `CONNECT` and `*` for `OPTIONS`;
//! - an HTTP/1.1 request carries exactly one valid `Host` (`uri-host[:port]`, or empty), an
//!   HTTP/1.0 one at most one (§3.2);
//! - `Content-Length` is digits only; repeated, its values must agree;
//! - `Transfer-Encoding` is `chunked` alone (another coding is `501 not_implemented`), never
//!   with `Content-Length` (the pair is how requests are smuggled past proxies that read one
//!   and not the other) and never in HTTP/1.0.
//!
//! Everything else malformed (obs-fold, a bare CR, a space before a colon, a bad token) is
//! `400 malformed_request`; `httparse`, the parser hyper uses, does the byte-level work.

use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, Uri, Version, header};
use pushgate_http::{ApiError, ErrorCode};

/// Largest request head read (request line and header fields): hyper's limits are far larger,
/// but a request of this gateway is a few hundred bytes, cookies included.
pub(super) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request target.
pub(super) const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Most header lines in a request head (hyper's default).
pub(super) const MAX_HEADERS: usize = 100;
/// The largest `Content-Length` hyper takes (it keeps two values above it for itself).
const MAX_CONTENT_LENGTH: u64 = u64::MAX - 2;

/// The paths the keep-alive loop serves (a `GET` with the exact path, then a query or nothing).
const LITE_PATHS: [&[u8]; 3] = [b"/v1/poll", b"/v1/longpoll", b"/v1/sse"];

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyLength {
    /// `Content-Length`: this many bytes (none without the header).
    Fixed(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request head that passed, for hyper to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    /// Its length in bytes, final empty line included.
    pub(super) len: usize,
    pub(super) body: BodyLength,
    /// It asks to switch protocols (`Upgrade` in HTTP/1.1, or `CONNECT`): what follows its
    /// answer is not HTTP if the answer agrees.
    pub(super) upgrade: bool,
}

/// What the bytes read so far hold.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "lives for one call per request; boxing the request would allocate for every one"
)]
pub(super) enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A request the keep-alive loop serves; the connection closes after its answer when
    /// `close` is set (`Connection: close`, or HTTP/1.0 without `Connection: keep-alive`).
    Lite { request: Request<Body>, head_len: usize, close: bool, http10: bool },
    /// Any other request (another method or path, a body, an upgrade, `Expect`): hyper's.
    Hyper,
}

/// Why the bytes read are no acceptable request; each is answered with its JSON error and the
/// connection closed, since what follows cannot be told apart from the bad head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadError {
    /// Over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`].
    TooLarge,
    /// A request target over [`MAX_TARGET_BYTES`].
    UriTooLong,
    /// A transfer coding other than `chunked`.
    UnsupportedCoding,
    /// Not a valid HTTP/1 request head.
    Malformed(Malformation),
}

/// What is wrong with a malformed head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Malformation {
    /// Not HTTP/1 syntax (what `httparse` refused: the request line, a header line, a line
    /// ending, the version, HTTP/0.9); says where.
    Syntax(&'static str),
    /// HTTP/2's connection preface (`PRI * HTTP/2.0`).
    Http2,
    /// An HTTP/1.1 request without a `Host`, or any request with more than one.
    HostCount,
    /// A `Host` that is not `uri-host[:port]`.
    HostValue,
    /// A request target in no form its method allows.
    Target,
    /// A `Content-Length` that is not digits, or beyond what hyper counts.
    ContentLength,
    /// `Content-Length` values that disagree.
    ContentLengths,
    /// `Content-Length` with `Transfer-Encoding`.
    LengthAndCoding,
    /// `Transfer-Encoding` in HTTP/1.0.
    CodingInHttp10,
    /// `chunked` applied twice, or an empty `Transfer-Encoding`.
    Coding,
}

impl Malformation {
    fn describe(self) -> &'static str {
        match self {
            Self::Syntax(what) => what,
            Self::Http2 => "HTTP/2 is not served here; speak HTTP/1.1",
            Self::HostCount => "an HTTP/1.1 request carries exactly one Host header",
            Self::HostValue => "bad Host header",
            Self::Target => "bad request target",
            Self::ContentLength => "Content-Length is not a number in range",
            Self::ContentLengths => "Content-Length values disagree",
            Self::LengthAndCoding => "Content-Length together with Transfer-Encoding",
            Self::CodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            Self::Coding => "chunked applied twice, or an empty Transfer-Encoding",
        }
    }
}

impl HeadError {
    /// The JSON error that answers it.
    pub(super) fn to_api_error(self) -> ApiError {
        match self {
            Self::TooLarge => ApiError::new(
                ErrorCode::HeadersTooLarge,
                format!(
                    "the request head is larger than {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} header lines"
                ),
            ),
            Self::UriTooLong => ApiError::new(
                ErrorCode::UriTooLong,
                format!("the request target is longer than {MAX_TARGET_BYTES} bytes"),
            ),
            Self::UnsupportedCoding => ApiError::new(
                ErrorCode::NotImplemented,
                "the only transfer coding accepted is Transfer-Encoding: chunked",
            ),
            Self::Malformed(what) => ApiError::new(
                ErrorCode::MalformedRequest,
                format!("malformed HTTP/1.1 request: {}", what.describe()),
            ),
        }
    }
}

/// A head that passed every rule, its parts borrowed from the bytes.
#[derive(Debug)]
pub(super) struct Checked<'b, 'h> {
    pub(super) len: usize,
    pub(super) method: Method,
    pub(super) target: &'b [u8],
    /// The target as parsed while checking it, so a request built from the head does not
    /// parse it again.
    pub(super) uri: Uri,
    pub(super) http10: bool,
    pub(super) headers: &'h [httparse::Header<'b>],
    pub(super) body: BodyLength,
    pub(super) close: bool,
    pub(super) upgrade: bool,
    pub(super) expect: bool,
}

/// Parses the head at the start of `buf`. With `lite`, a request the keep-alive loop serves
/// is built into an [`http::Request`]; without, every request is [`Parsed::Hyper`].
pub(super) fn parse(buf: &[u8], lite: bool) -> Result<Parsed, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Some(head) = check(buf, &mut headers)? else { return Ok(Parsed::Partial) };
    if lite && is_lite(&head) {
        let (head_len, close, http10) = (head.len, head.close, head.http10);
        let request = build(head)?;
        return Ok(Parsed::Lite { request, head_len, close, http10 });
    }
    Ok(Parsed::Hyper)
}

/// The head at the start of `buf` as hyper will serve it: `None` while it is incomplete.
pub(super) fn head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    Ok(check(buf, &mut headers)?.map(|head| Head { len: head.len, body: head.body, upgrade: head.upgrade }))
}

/// The rules of the module on the head at the start of `buf`: `None` while it is incomplete
/// (and still within the limits).
pub(super) fn check<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Result<Option<Checked<'b, 'h>>, HeadError> {
    let mut parsed = httparse::Request::new(headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Complete(_)) => return Err(too_large(buf)),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => return Err(too_large(buf)),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(syntax_error(error, buf)),
    };
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(HeadError::Malformed(Malformation::Syntax("incomplete request line")));
    };
    let target = target.as_bytes();
    if target.len() > MAX_TARGET_BYTES {
        return Err(HeadError::UriTooLong);
    }
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| HeadError::Malformed(Malformation::Syntax("bad method")))?;
    let uri = check_target(&method, target)?;
    let http10 = version == 0;
    let headers = parsed.headers;

    let (mut hosts, mut length, mut chunked, mut coded) = (0, None::<u64>, false, false);
    // Judged after every line is read: with Transfer-Encoding the length is refused anyway.
    let (mut lengths, mut bad_length) = (false, None);
    let (mut close, mut keep_alive, mut upgrade, mut expect) =
        (false, false, method == Method::CONNECT, false);
    for line in headers.iter() {
        let name = line.name.as_bytes();
        let value = line.value;
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            check_host(value)?;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            lengths = true;
            match digits(value).filter(|&n| n <= MAX_CONTENT_LENGTH) {
                None => bad_length = bad_length.or(Some(Malformation::ContentLength)),
                Some(n) if length.is_some_and(|first| first != n) => {
                    bad_length = bad_length.or(Some(Malformation::ContentLengths));
                }
                Some(n) => length = Some(n),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            for coding in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if coding.eq_ignore_ascii_case(b"chunked") {
                    if chunked {
                        return Err(HeadError::Malformed(Malformation::Coding));
                    }
                    chunked = true;
                } else if coding.is_empty() {
                    return Err(HeadError::Malformed(Malformation::Coding));
                } else {
                    coded = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            // As hyper: only HTTP/1.1 switches protocols.
            upgrade |= !http10;
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect = true;
        }
    }
    let is_transfer_coded = chunked || coded;
    if is_transfer_coded && lengths {
        return Err(HeadError::Malformed(Malformation::LengthAndCoding));
    }
    if is_transfer_coded && http10 {
        return Err(HeadError::Malformed(Malformation::CodingInHttp10));
    }
    if let Some(bad) = bad_length {
        return Err(HeadError::Malformed(bad));
    }
    if hosts > 1 || (hosts == 0 && !http10) {
        return Err(HeadError::Malformed(Malformation::HostCount));
    }
    if coded {
        return Err(HeadError::UnsupportedCoding);
    }
    let body = if chunked { BodyLength::Chunked } else { BodyLength::Fixed(length.unwrap_or(0)) };
    let close = close || (http10 && !keep_alive);
    Ok(Some(Checked { len, method, target, uri, http10, headers, body, close, upgrade, expect }))
}

/// Whether the keep-alive loop serves it: a `GET` to one of [`LITE_PATHS`] in origin-form,
/// with no body, upgrade or expectation.
fn is_lite(head: &Checked<'_, '_>) -> bool {
    let lite_path = LITE_PATHS.iter().any(|lite| {
        head.target.strip_prefix(*lite).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"?"))
    });
    head.method == Method::GET
        && lite_path
        && head.body == BodyLength::Fixed(0)
        && !head.upgrade
        && !head.expect
}

/// The request of a checked head, with an empty body.
pub(super) fn build(head: Checked<'_, '_>) -> Result<Request<Body>, HeadError> {
    let version = if head.http10 { Version::HTTP_10 } else { Version::HTTP_11 };
    let mut request = Request::new(Body::empty());
    *request.method_mut() = head.method;
    *request.uri_mut() = head.uri;
    *request.version_mut() = version;
    let map = request.headers_mut();
    map.reserve(head.headers.len());
    for line in head.headers {
        // Repeated, a length agreed with the first (checked): kept once, as hyper keeps it.
        if line.name.eq_ignore_ascii_case("content-length") && map.contains_key(header::CONTENT_LENGTH) {
            continue;
        }
        // httparse checked the bytes of both (tokens; visible ASCII, tab, space and obs-text),
        // which are the bytes these accept.
        let name = HeaderName::from_bytes(line.name.as_bytes())
            .map_err(|_| HeadError::Malformed(Malformation::Syntax("bad header name")))?;
        let value = HeaderValue::from_bytes(line.value)
            .map_err(|_| HeadError::Malformed(Malformation::Syntax("bad header value")))?;
        map.append(name, value);
    }
    Ok(request)
}

/// The error for a head that outgrew the limits: `414` when its request line alone is too
/// long, else `431`.
fn too_large(buf: &[u8]) -> HeadError {
    let line = buf.iter().position(|&b| b == b'\n').map_or(buf, |end| &buf[..end]);
    if line.len() > MAX_TARGET_BYTES { HeadError::UriTooLong } else { HeadError::TooLarge }
}

fn syntax_error(error: httparse::Error, buf: &[u8]) -> HeadError {
    match error {
        httparse::Error::TooManyHeaders => HeadError::TooLarge,
        httparse::Error::Version if buf.starts_with(b"PRI * HTTP/2") => {
            HeadError::Malformed(Malformation::Http2)
        }
        httparse::Error::Version => {
            HeadError::Malformed(Malformation::Syntax("the version is not HTTP/1.0 or HTTP/1.1"))
        }
        httparse::Error::HeaderName => HeadError::Malformed(Malformation::Syntax("bad header name")),
        httparse::Error::HeaderValue => HeadError::Malformed(Malformation::Syntax("bad header value")),
        httparse::Error::NewLine => HeadError::Malformed(Malformation::Syntax("bad line ending")),
        httparse::Error::Token => HeadError::Malformed(Malformation::Syntax("bad request line")),
        _ => HeadError::Malformed(Malformation::Syntax("bad request head")),
    }
}

/// The request-target forms of RFC 9112 §3.2, each with the method it belongs to, and the
/// target one `http::Uri` accepts (as hyper requires); returns it parsed.
fn check_target(method: &Method, target: &[u8]) -> Result<Uri, HeadError> {
    let bad = HeadError::Malformed(Malformation::Target);
    let uri = Uri::try_from(target).map_err(|_| bad)?;
    let fits = match target.first() {
        Some(b'/') => *method != Method::CONNECT,
        Some(b'*') => *method == Method::OPTIONS && target == b"*",
        _ if *method == Method::CONNECT => uri.scheme().is_none() && uri.authority().is_some(),
        _ => uri.scheme().is_some() && uri.authority().is_some(),
    };
    if fits { Ok(uri) } else { Err(bad) }
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2), or empty: no user info, no path.
fn check_host(value: &[u8]) -> Result<(), HeadError> {
    let bad = HeadError::Malformed(Malformation::HostValue);
    if value.is_empty() || plain_host(value) {
        return Ok(());
    }
    if value.contains(&b'@') {
        return Err(bad);
    }
    let authority = http::uri::Authority::try_from(value).map_err(|_| bad)?;
    // `Authority` checks the characters and brackets, not that a port is a 16-bit number.
    let text = authority.as_str();
    let port_ok = text.ends_with(']')
        || text.rsplit_once(':').is_none_or(|(_, port)| port.is_empty() || port.parse::<u16>().is_ok());
    if port_ok { Ok(()) } else { Err(bad) }
}

/// Whether `value` is a host name or IPv4 address of letters, digits, dots and hyphens, with
/// an optional port of 1 to 5 digits within 16 bits: the usual `Host`, taken without building
/// an [`http::uri::Authority`] (every such value is one it accepts). Anything else is judged
/// by the full check.
fn plain_host(value: &[u8]) -> bool {
    let (host, port) = match value.iter().position(|&b| b == b':') {
        Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
        None => (value, None),
    };
    let host_ok =
        !host.is_empty() && host.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|port| {
        (1..=5).contains(&port.len()) && digits(port).is_some_and(|n| n <= u64::from(u16::MAX))
    });
    host_ok && port_ok
}

/// A `Content-Length` value: one or more digits, nothing else (as hyper: no sign, no spaces,
/// no list).
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0_u64, |n, &b| match b {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
}

#[cfg(test)]
pub(super) mod fuzz;
#[cfg(test)]
mod tests;
