//! One error shape for requests that are not valid HTTP/1.1: each gets its status and the JSON
//! error body, then the connection is closed, whichever path serves the connection (the
//! keep-alive loop, hyper behind its gate, or hyper alone with the loop turned off) and
//! whether it is the connection's first request or comes after a poll or a publish; the
//! `Host` rules of RFC 9112 §3.2; a `Last-Event-ID` that is not ASCII.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pushgate::Config;
use pushgate_testkit::{RawHttp, TestServer};

/// A request that breaks a rule, and the status and code that answer it.
struct Case {
    what: &'static str,
    request: String,
    status: u16,
    code: &'static str,
}

fn case(what: &'static str, request: impl Into<String>, status: u16, code: &'static str) -> Case {
    Case { what, request: request.into(), status, code }
}

fn cases() -> Vec<Case> {
    let lines: String = (0..101).map(|i| format!("X-{i}: {i}\r\n")).collect();
    vec![
        case(
            "a line without a colon",
            "GET /v1/poll?topic=a HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            400,
            "malformed_request",
        ),
        case("obs-fold", "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400, "malformed_request"),
        case("a bare CR", "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400, "malformed_request"),
        case(
            "a space before the colon",
            "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
            400,
            "malformed_request",
        ),
        case("no Host", "GET /v1/poll?topic=a HTTP/1.1\r\n\r\n", 400, "malformed_request"),
        case("no Host on hyper's path", "GET /healthz HTTP/1.1\r\n\r\n", 400, "malformed_request"),
        case(
            "two Hosts",
            "GET /v1/sse?topic=a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
            "malformed_request",
        ),
        case("a Host with user info", "GET /healthz HTTP/1.1\r\nHost: u@x\r\n\r\n", 400, "malformed_request"),
        case("HTTP/0.9", "GET /v1/poll\r\n\r\n", 400, "malformed_request"),
        case("HTTP/2's preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "malformed_request"),
        case(
            "two different Content-Lengths",
            "POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            400,
            "malformed_request",
        ),
        case(
            "an invalid Content-Length",
            "POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: -2\r\n\r\n{}",
            400,
            "malformed_request",
        ),
        case(
            "Content-Length with Transfer-Encoding",
            "POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "malformed_request",
        ),
        case(
            "a transfer coding other than chunked",
            "POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "not_implemented",
        ),
        case(
            "a long target",
            format!("GET /v1/poll?topic={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000)),
            414,
            "uri_too_long",
        ),
        case(
            "a large head",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\r\n", "a".repeat(17 * 1024)),
            431,
            "headers_too_large",
        ),
        case(
            "too many header lines",
            format!("GET /v1/poll?topic=a HTTP/1.1\r\nHost: x\r\n{lines}\r\n"),
            431,
            "headers_too_large",
        ),
    ]
}

/// What the connection served before the bad request (sent with it, in one write).
const BEFORE: [(&str, &str); 3] = [
    ("first", ""),
    ("after a poll", "GET /v1/poll?topic=b HTTP/1.1\r\nHost: x\r\n\r\n"),
    (
        "after a publish",
        "POST /v1/publish/b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"data\":1}",
    ),
];

async fn every_malformed_request_gets_its_json_error_then_the_close(config: Config) {
    let server = TestServer::start_with(config).await.unwrap();
    for case in cases() {
        for (when, before) in BEFORE {
            let mut raw = RawHttp::connect(server.addr()).await.unwrap();
            raw.send(format!("{before}{}", case.request)).await.unwrap();
            if !before.is_empty() {
                let first = raw.answer().await.unwrap();
                assert_eq!(first.status, 200, "{}, {when}: the request before: {first:?}", case.what);
            }
            let answer = raw.answer().await.unwrap_or_else(|err| panic!("{}, {when}: {err:#}", case.what));
            assert_eq!(
                (answer.status, answer.code().as_str()),
                (case.status, case.code),
                "{}, {when}: {answer:?}",
                case.what
            );
            assert_eq!(answer.header("content-type"), Some("application/json"), "{}, {when}", case.what);
            assert_eq!(answer.header("connection"), Some("close"), "{}, {when}", case.what);
            assert!(answer.header("date").is_some(), "{}, {when}: {answer:?}", case.what);
            raw.closed().await.unwrap_or_else(|err| panic!("{}, {when}: {err:#}", case.what));
        }
    }
}

#[tokio::test]
async fn malformed_requests_get_json_errors_on_every_path() {
    every_malformed_request_gets_its_json_error_then_the_close(Config::default()).await;
}

#[tokio::test]
async fn malformed_requests_get_json_errors_with_the_keep_alive_loop_off() {
    every_malformed_request_gets_its_json_error_then_the_close(
        Config::default().with_no_keep_alive_loop(true),
    )
    .await;
}

#[tokio::test]
async fn a_bad_head_behind_a_slow_answer_waits_for_it() {
    // The publish's answer is still being made when the bad head arrives: the publish is
    // answered in full first, then the error, then the close.
    let server = TestServer::start().await.unwrap();
    let mut raw = RawHttp::connect(server.addr()).await.unwrap();
    raw.send("POST /v1/publish/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"data\"")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    raw.send(":1}GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1 \r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let published = raw.answer().await.unwrap();
    assert_eq!(published.status, 200, "{published:?}");
    assert!(published.body.contains(r#""seq":1"#), "{published:?}");
    let refused = raw.answer().await.unwrap();
    assert_eq!((refused.status, refused.code().as_str()), (400, "malformed_request"), "{refused:?}");
    raw.closed().await.unwrap();
}

#[tokio::test]
async fn valid_requests_of_every_form_are_served_on_both_paths() {
    for config in [Config::default(), Config::default().with_no_keep_alive_loop(true)] {
        let server = TestServer::start_with(config).await.unwrap();
        let mut raw = RawHttp::connect(server.addr()).await.unwrap();
        for request in [
            // HTTP/1.0 needs no Host; absolute-form names the host in the target; a repeated
            // identical Content-Length is one length; chunked bodies are framed exactly.
            "GET /v1/poll?topic=f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            "GET http://x/v1/poll?topic=f HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /v1/publish/f HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\ncontent-length: 10\r\n\r\n{\"data\":1}",
            "POST /v1/publish/f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"da\r\n6\r\nta\":2}\r\n0\r\nX-Trailer: t\r\n\r\n",
            "GET /v1/poll?topic=f&cursor=oldest HTTP/1.1\r\nHost: \r\n\r\n",
        ] {
            raw.send(request).await.unwrap();
            let answer = raw.answer().await.unwrap();
            assert_eq!(answer.status, 200, "{request:?}: {answer:?}");
        }
        raw.send("GET /v1/poll?topic=f&cursor=oldest HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let events = raw.answer().await.unwrap();
        assert!(events.body.contains(r#""data":1"#) && events.body.contains(r#""data":2"#), "{events:?}");
    }
}

#[tokio::test]
async fn a_last_event_id_that_is_not_ascii_is_an_invalid_cursor() {
    for config in [Config::default(), Config::default().with_no_keep_alive_loop(true)] {
        let server = TestServer::start_with(config).await.unwrap();
        let mut raw = RawHttp::connect(server.addr()).await.unwrap();
        for path in ["/v1/poll", "/v1/longpoll", "/v1/sse"] {
            let mut request =
                format!("GET {path}?topic=a&cursor=now&timeout=1 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ")
                    .into_bytes();
            request.extend_from_slice(b"\xff\xfe-1\r\n\r\n");
            raw.send(&request).await.unwrap();
            let answer = raw.answer().await.unwrap();
            assert_eq!(
                (answer.status, answer.code().as_str()),
                (400, "invalid_cursor"),
                "{path}: {answer:?}"
            );
            assert_eq!(answer.header("connection"), None, "{path}: a handler's error keeps the connection");
        }
        let mut upgrade =
            b"GET /v1/ws?topic=a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nLast-Event-ID: caf"
                .to_vec();
        upgrade.extend_from_slice(b"\xe9\r\n\r\n");
        raw.send(&upgrade).await.unwrap();
        let answer = raw.answer().await.unwrap();
        assert_eq!((answer.status, answer.code().as_str()), (400, "invalid_cursor"), "ws: {answer:?}");
    }
}
