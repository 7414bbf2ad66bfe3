use super::*;

fn lite(head: &[u8]) -> (Request<Body>, usize, bool) {
    match parse(head, true) {
        Ok(Parsed::Lite { request, head_len, close, .. }) => (request, head_len, close),
        other => panic!("not lite: {other:?}"),
    }
}

fn hyper(text: &str) -> Head {
    assert!(matches!(parse(text.as_bytes(), true), Ok(Parsed::Hyper)), "not hyper's: {text:?}");
    match head(text.as_bytes()) {
        Ok(Some(head)) => head,
        other => panic!("no head: {text:?} {other:?}"),
    }
}

fn refused(head: &str) -> HeadError {
    match parse(head.as_bytes(), true) {
        Err(error) => error,
        other => panic!("not refused: {head:?} {other:?}"),
    }
}

#[test]
fn heads_parse_into_requests() {
    let head = b"GET /v1/sse?topic=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1-2\r\nX: a\r\nX: b\r\n\r\nGET";
    let (request, head_len, close) = lite(head);
    assert_eq!(request.uri(), "/v1/sse?topic=a");
    assert_eq!(request.headers()["last-event-id"], "1-2");
    assert_eq!(request.headers().get_all("x").iter().count(), 2);
    assert_eq!(head_len, head.len() - 3, "the pipelined bytes after it are not its");
    assert!(!close);
    assert!(matches!(parse(&head[..20], true), Ok(Parsed::Partial)));
    assert!(parse(b"GET /v1/sse HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", true).is_err());
}

#[test]
fn keep_alive_follows_the_version_and_the_connection_header() {
    assert!(lite(b"GET /v1/poll HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n").2);
    assert!(lite(b"GET /v1/poll HTTP/1.0\r\n\r\n").2);
    assert!(!lite(b"GET /v1/poll HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").2);
    assert!(!lite(b"GET /v1/poll HTTP/1.1\r\nHost: x\r\nConnection: te, keep-alive\r\n\r\n").2);
    assert!(lite(b"GET /v1/poll HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n").2);
}

#[test]
fn requests_with_a_body_an_upgrade_or_another_method_are_hyper_s() {
    for (head, body, upgrade) in [
        (
            "POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
            BodyLength::Fixed(2),
            false,
        ),
        ("HEAD /v1/poll HTTP/1.1\r\nHost: x\r\n\r\n", BodyLength::Fixed(0), false),
        ("OPTIONS /v1/poll HTTP/1.1\r\nHost: x\r\n\r\n", BodyLength::Fixed(0), false),
        ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", BodyLength::Fixed(0), false),
        ("GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n", BodyLength::Fixed(0), false),
        ("GET /v1/poll HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", BodyLength::Fixed(5), false),
        (
            "GET /v1/poll HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            BodyLength::Chunked,
            false,
        ),
        ("GET /v1/sse HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", BodyLength::Fixed(0), true),
        ("GET /v1/poll HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", BodyLength::Fixed(0), false),
        ("GET http://x/v1/poll HTTP/1.1\r\nHost: x\r\n\r\n", BodyLength::Fixed(0), false),
        ("CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", BodyLength::Fixed(0), true),
        // HTTP/1.0 does not switch protocols.
        ("GET /v1/ws HTTP/1.0\r\nUpgrade: websocket\r\n\r\n", BodyLength::Fixed(0), false),
    ] {
        let parsed = hyper(head);
        assert_eq!((parsed.body, parsed.upgrade), (body, upgrade), "{head}");
        assert!(parsed.len <= head.len(), "{head}");
    }
    lite(b"GET /v1/poll?topic=a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    // With the keep-alive loop off, every request is hyper's.
    assert!(matches!(parse(b"GET /v1/poll HTTP/1.1\r\nHost: x\r\n\r\n", false), Ok(Parsed::Hyper)));
}

#[test]
fn a_head_over_the_limits_is_431_and_a_long_target_414() {
    let mut head = b"GET /v1/poll?topic=a HTTP/1.1\r\nHost: x\r\nCookie: ".to_vec();
    head.resize(MAX_HEAD_BYTES, b'a');
    assert_eq!(parse(&head, true).err(), Some(HeadError::TooLarge), "incomplete at the limit");
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(parse(&head, true).err(), Some(HeadError::TooLarge), "complete but over the limit");
    let lines: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{lines}\r\n");
    assert_eq!(refused(&many), HeadError::TooLarge);
    let lines: String = (0..MAX_HEADERS - 1).map(|i| format!("X-{i}: {i}\r\n")).collect();
    hyper(&format!("GET / HTTP/1.1\r\nHost: x\r\n{lines}\r\n"));

    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(MAX_TARGET_BYTES));
    assert_eq!(refused(&long), HeadError::UriTooLong);
    let endless = format!("GET /{}", "a".repeat(MAX_HEAD_BYTES));
    assert_eq!(refused(&endless), HeadError::UriTooLong, "a request line that never ends");
    assert_eq!(HeadError::TooLarge.to_api_error().code().status(), 431);
    assert_eq!(HeadError::UriTooLong.to_api_error().code().status(), 414);
}

#[test]
fn host_is_required_once_in_http_1_1() {
    assert!(matches!(refused("GET /v1/poll HTTP/1.1\r\n\r\n"), HeadError::Malformed(_)));
    assert!(matches!(
        refused("GET /v1/poll HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
        HeadError::Malformed(_)
    ));
    assert!(matches!(
        refused("GET /v1/poll HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
        HeadError::Malformed(_)
    ));
    for host in ["a", "", "a.example:8080", "127.0.0.1:1", "[::1]", "[::1]:443", "a:"] {
        lite(format!("GET /v1/poll HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    }
    for host in ["user@a", "a b", "a:99999", "a:x", "a/b", "[::1", "a:1:2"] {
        let head = format!("GET /v1/poll HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert!(matches!(refused(&head), HeadError::Malformed(_)), "{host:?}");
    }
}

#[test]
fn body_framing_is_unambiguous() {
    let malformed = |head: &str| assert!(matches!(refused(head), HeadError::Malformed(_)), "{head}");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
    malformed("POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
    malformed("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n");
    assert_eq!(
        refused("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        HeadError::UnsupportedCoding
    );
    assert_eq!(
        refused("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
        HeadError::UnsupportedCoding
    );
    assert_eq!(HeadError::UnsupportedCoding.to_api_error().code().status(), 501);
    // The same length twice is one length (RFC 9110 §8.6).
    let same = hyper("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n");
    assert_eq!(same.body, BodyLength::Fixed(3));
    assert_eq!(
        hyper("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n").body,
        BodyLength::Fixed(7)
    );
    assert_eq!(
        hyper("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n").body,
        BodyLength::Chunked
    );
}

#[test]
fn malformed_heads_are_refused() {
    for head in [
        // obs-fold, bare CR, a space before the colon, no colon
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost\r\n\r\n",
        // HTTP/0.9, HTTP/2's preface, unknown versions, a bad method or target
        "GET /\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET / HTTP/1.2\r\nHost: x\r\n\r\n",
        "GET / HTTP/2\r\nHost: x\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        "CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET relative/path HTTP/1.1\r\nHost: x\r\n\r\n",
        // a control character, a non-ASCII header name
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX\u{e9}: a\r\n\r\n",
    ] {
        assert!(matches!(refused(head), HeadError::Malformed(_)), "{head:?}");
    }
    // Non-ASCII bytes in a header value are obs-text: allowed, and kept as they came.
    let (request, ..) = lite("GET /v1/poll HTTP/1.1\r\nHost: x\r\nX: caf\u{e9}\r\n\r\n".as_bytes());
    assert_eq!(request.headers()["x"].as_bytes(), "caf\u{e9}".as_bytes());
    // Bytes above ASCII in the target are taken as `http::Uri` takes them (hyper as well).
    hyper("GET /caf\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n");
    // Empty lines before the request line are skipped (RFC 9112 §2.2), as hyper does.
    lite(b"\r\nGET /v1/poll HTTP/1.1\r\nHost: x\r\n\r\n");
}
