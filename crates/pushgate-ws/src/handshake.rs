//! The opening handshake (RFC 6455 section 4.2): check the upgrade request, answer 101 with
//! `Sec-WebSocket-Accept`, or refuse with a JSON error before anything is upgraded.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use pushgate_http::{ApiError, ErrorCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Why an upgrade request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a GET.
    Method,
    /// Not HTTP/1.1.
    HttpVersion,
    /// No `Upgrade: websocket`: a plain HTTP request to a WebSocket endpoint.
    NotWebSocket,
    /// `Connection` does not carry the `upgrade` token.
    Connection,
    /// `Sec-WebSocket-Key` is missing or not 16 base64-encoded bytes.
    Key,
    /// `Sec-WebSocket-Version` is missing or not 13.
    WebSocketVersion,
}

impl Refusal {
    fn code(self) -> ErrorCode {
        match self {
            Self::Method => ErrorCode::MethodNotAllowed,
            Self::NotWebSocket | Self::WebSocketVersion => ErrorCode::UpgradeRequired,
            Self::HttpVersion | Self::Connection | Self::Key => ErrorCode::InvalidParameter,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Method => "a WebSocket upgrade is a GET request",
            Self::HttpVersion => "a WebSocket upgrade needs HTTP/1.1",
            Self::NotWebSocket => "this endpoint speaks WebSocket only: send an RFC 6455 upgrade request",
            Self::Connection => "`Connection` must include `upgrade`",
            Self::Key => "`Sec-WebSocket-Key` must be 16 bytes in base64",
            Self::WebSocketVersion => "`Sec-WebSocket-Version` must be 13",
        }
    }
}

impl IntoResponse for Refusal {
    /// The usual `{"error":{…}}` body, with the status and headers RFC 6455 and RFC 9110 ask
    /// for: 426 names the protocol (`Upgrade`) and version (`Sec-WebSocket-Version`) to use, 405
    /// the method (`Allow`).
    fn into_response(self) -> Response {
        let mut response = ApiError::new(self.code(), self.message()).into_response();
        let headers = response.headers_mut();
        match self {
            Self::Method => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::NotWebSocket | Self::WebSocketVersion => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            _ => {}
        }
        response
    }
}

/// Checks an upgrade request and returns the `Sec-WebSocket-Accept` value to answer with.
///
/// Subprotocols and extensions (`permessage-deflate`) are not negotiated: the answer names
/// none, which RFC 6455 allows, and clients then speak plain WebSocket.
pub(crate) fn accept(method: &Method, version: Version, headers: &HeaderMap) -> Result<String, Refusal> {
    if method != Method::GET {
        return Err(Refusal::Method);
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(Refusal::NotWebSocket);
    }
    if version != Version::HTTP_11 {
        return Err(Refusal::HttpVersion);
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Refusal::Connection);
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
        return Err(Refusal::WebSocketVersion);
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    match (keys.next(), keys.next()) {
        (Some(key), None) if is_valid_key(key.as_bytes()) => Ok(derive_accept_key(key.as_bytes())),
        _ => Err(Refusal::Key),
    }
}

/// The `101 Switching Protocols` answer.
pub(crate) fn switching_protocols(accept: &str) -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// Whether a comma-separated header (all its lines) holds `token`, case-insensitively.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// 16 bytes in base64 are 22 symbols and `==`.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const GOOD: [(&str, &str); 4] = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn accepts_the_rfc_example() {
        let key = accept(&Method::GET, Version::HTTP_11, &request(&GOOD));
        // RFC 6455 section 1.3.
        assert_eq!(key.as_deref(), Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        // Token lists and case do not matter.
        let lists = request(&[
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert!(accept(&Method::GET, Version::HTTP_11, &lists).is_ok());
    }

    #[test]
    fn refuses_what_is_not_an_upgrade() {
        let without =
            |name: &str| request(&GOOD.iter().copied().filter(|(n, _)| *n != name).collect::<Vec<_>>());
        let check = |headers: &HeaderMap| accept(&Method::GET, Version::HTTP_11, headers).unwrap_err();
        assert_eq!(check(&HeaderMap::new()), Refusal::NotWebSocket);
        assert_eq!(check(&without("upgrade")), Refusal::NotWebSocket);
        assert_eq!(check(&without("connection")), Refusal::Connection);
        assert_eq!(check(&without("sec-websocket-version")), Refusal::WebSocketVersion);
        assert_eq!(check(&without("sec-websocket-key")), Refusal::Key);

        let mut old = without("sec-websocket-version");
        old.insert("sec-websocket-version", HeaderValue::from_static("8"));
        assert_eq!(check(&old), Refusal::WebSocketVersion);
        let mut short = without("sec-websocket-key");
        short.insert("sec-websocket-key", HeaderValue::from_static("c2hvcnQ="));
        assert_eq!(check(&short), Refusal::Key);
        let mut twice = request(&GOOD);
        twice.append("sec-websocket-key", HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(check(&twice), Refusal::Key);

        assert_eq!(accept(&Method::POST, Version::HTTP_11, &request(&GOOD)), Err(Refusal::Method));
        assert_eq!(accept(&Method::GET, Version::HTTP_10, &request(&GOOD)), Err(Refusal::HttpVersion));
    }

    #[test]
    fn refusals_are_json_with_the_headers_the_rfcs_ask_for() {
        let response = Refusal::NotWebSocket.into_response();
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[header::UPGRADE], "websocket");
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(Refusal::Key.into_response().status(), StatusCode::BAD_REQUEST);
        assert_eq!(Refusal::Method.into_response().headers()[header::ALLOW], "GET");

        let ok = switching_protocols("abc");
        assert_eq!(ok.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(ok.headers()[header::SEC_WEBSOCKET_ACCEPT], "abc");
    }
}
