//! Properties of the request-head parser over generated and mutated heads, seeded with the bad
//! inputs a black-box attack tried (duplicate `Content-Length`, `Content-Length` with
//! `Transfer-Encoding`, obs-fold, bare CR, absolute-form, `PRI *`, HTTP/0.9, huge heads,
//! non-ASCII bytes, …). A bounded number of cases runs in `cargo test`; set `PROPTEST_CASES`
//! to run more.
//!
//! The generators are shared with the differential test against hyper (`gate/differential.rs`).

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

/// Requests the attack and the RFCs name, whole (head, and sometimes a body).
pub(in crate::server) const CORPUS: &[&[u8]] = &[
    b"GET /v1/poll?topic=a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: x\r\n\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    b"POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5 \r\n\r\nhello",
    b"POST /v1/publish/a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\rHost: x\r\r",
    b"GET / HTTP/1.1\nHost: x\n\n",
    b"GET http://x/v1/poll?topic=a HTTP/1.1\r\nHost: y\r\n\r\n",
    b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-\xc3\xa9: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n",
    b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: \x00\r\n\r\n",
    b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"GET /v1/poll HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
    b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
];

/// One of `items`, as bytes.
fn one_of(items: &'static [&'static str]) -> BoxedStrategy<Vec<u8>> {
    proptest::sample::select(items).prop_map(|item| item.as_bytes().to_vec()).boxed()
}

fn method() -> BoxedStrategy<Vec<u8>> {
    one_of(&[
        "GET", "GET", "POST", "POST", "HEAD", "OPTIONS", "PUT", "CONNECT", "PATCH", "get", "G(T", "PRI", "",
    ])
}

fn target() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        8 => one_of(&[
            "/v1/poll?topic=a", "/v1/sse?topic=a&cursor=now", "/v1/longpoll", "/v1/publish/a", "/healthz", "/",
            "*", "http://x/v1/poll", "https://h:8080/p?q", "x:443", "/caf\u{e9}", "relative", "/a b", "/a%20b",
            "//x", "/?", "/#f",
        ]),
        1 => (8100usize..8300).prop_map(|n| { let mut t = b"/".to_vec(); t.resize(n, b'a'); t }),
    ]
    .boxed()
}

fn version() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        8 => one_of(&["HTTP/1.1", "HTTP/1.0"]),
        1 => one_of(&["HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/1", ""]),
    ]
    .boxed()
}

fn name() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        8 => one_of(&[
            "Host", "host", "Content-Length", "content-length", "Transfer-Encoding", "Connection", "Upgrade",
            "Expect", "Last-Event-ID", "Cookie", "X-Pad",
        ]),
        1 => one_of(&["Host ", " Host", "X\u{e9}", "X:Y", "", "Content-Length\t", "X Y"]),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        8 => one_of(&[
            "x", "x:80", "[::1]:1", "", "0", "2", "5", "10", "-1", " 5", "5,5", "005", "18446744073709551615",
            "chunked", "Chunked", "gzip", "gzip, chunked", "chunked, chunked", "close", "keep-alive",
            "Upgrade", "websocket", "100-continue", "h:99999", "u@h", "caf\u{e9}",
        ]),
        2 => prop::collection::vec(any::<u8>(), 0..24),
        1 => (1usize..17_000).prop_map(|n| vec![b'a'; n]),
    ]
    .boxed()
}

fn line_end() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![16 => Just(b"\r\n".to_vec()), 1 => Just(b"\n".to_vec()), 1 => Just(b"\r".to_vec())].boxed()
}

fn body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        2 => prop::collection::vec(any::<u8>(), 0..24),
        2 => one_of(&[
            "0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", "3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n", "zz\r\n", "5\r\nhel",
            "A \r\n0123456789\r\n0\r\n\r\n", "0\r\n\rX",
        ]),
    ]
    .boxed()
}

/// A request built from parts, most of them valid, some not.
pub(in crate::server) fn request() -> BoxedStrategy<Vec<u8>> {
    let header = (name(), value(), line_end(), prop::bool::weighted(0.03));
    (method(), target(), version(), line_end(), prop::collection::vec(header, 0..8), line_end(), body())
        .prop_map(|(method, target, version, end, headers, last, body)| {
            let mut out = Vec::new();
            for part in [&method[..], b" ", &target, b" ", &version, &end] {
                out.extend_from_slice(part);
            }
            for (name, value, end, folded) in headers {
                out.extend_from_slice(&name);
                out.extend_from_slice(b": ");
                out.extend_from_slice(&value);
                if folded {
                    out.extend_from_slice(b"\r\n folded");
                }
                out.extend_from_slice(&end);
            }
            out.extend_from_slice(&last);
            out.extend_from_slice(&body);
            out
        })
        .boxed()
}

/// A corpus request with a few bytes inserted, removed or replaced.
pub(in crate::server) fn mutated() -> BoxedStrategy<Vec<u8>> {
    let edit = (any::<Index>(), 0u8..3, any::<u8>());
    (proptest::sample::select(CORPUS), prop::collection::vec(edit, 1..4))
        .prop_map(|(base, edits)| {
            let mut out = base.to_vec();
            for (at, kind, byte) in edits {
                let at = at.index(out.len() + 1);
                match kind {
                    0 => out.insert(at, byte),
                    1 if at < out.len() => {
                        out.remove(at);
                    }
                    _ if at < out.len() => out[at] = byte,
                    _ => out.push(byte),
                }
            }
            out
        })
        .boxed()
}

/// Any input: the corpus, built requests, mutations, and raw bytes.
pub(in crate::server) fn input() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => proptest::sample::select(CORPUS).prop_map(<[u8]>::to_vec),
        6 => request(),
        4 => mutated(),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
    .boxed()
}

/// The outcome of a parse, comparable across the two modes.
fn outcome(parsed: &Result<Parsed, HeadError>) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(Parsed::Partial) => Ok(None),
        Ok(Parsed::Lite { head_len, .. }) => Ok(Some(*head_len)),
        Ok(Parsed::Hyper) => Ok(Some(0)),
        Err(error) => Err(*error),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

    /// The `Host` values taken without an `Authority` are ones the full check takes too.
    #[test]
    fn a_plain_host_is_a_valid_authority(value in "[a-z0-9.:\\[\\]@_%-]{0,24}") {
        if plain_host(value.as_bytes()) {
            let authority = http::uri::Authority::try_from(value.as_bytes());
            prop_assert!(authority.is_ok(), "{value:?}: {authority:?}");
            let port = value.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
            prop_assert!(port.is_none_or(|port| port.is_ok()), "{value:?}");
        }
    }

    /// Every input gets an answer without a panic; the keep-alive loop and the gate agree on it;
    /// a head that passes is within the limits, and every prefix of it is just incomplete, so
    /// a head that arrives in pieces is judged as if it came whole.
    #[test]
    fn heads_are_judged_the_same_whole_or_in_pieces(input in input(), cuts in prop::collection::vec(any::<Index>(), 4)) {
        let lite = parse(&input, true);
        let head = head(&input);
        match (&lite, &head) {
            (Ok(Parsed::Partial), Ok(None)) => {
                for cut in &cuts {
                    let prefix = &input[..cut.index(input.len() + 1)];
                    prop_assert!(matches!(head_of(prefix), Ok(None)), "a prefix of an incomplete head is incomplete");
                }
            }
            (Ok(Parsed::Lite { head_len, request, .. }), Ok(Some(head))) => {
                prop_assert_eq!(*head_len, head.len);
                prop_assert_eq!(request.method(), Method::GET);
                prop_assert_eq!(head.body, BodyLength::Fixed(0));
            }
            (Ok(Parsed::Hyper), Ok(Some(_))) => {}
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            other => prop_assert!(false, "the two modes disagree: {:?}", other),
        }
        prop_assert_eq!(outcome(&parse(&input, false)).map(|o| o.is_some()), head.map(|h| h.is_some()));
        if let Ok(Some(head)) = head {
            prop_assert!(head.len <= MAX_HEAD_BYTES && head.len <= input.len());
            for cut in cuts {
                let prefix = &input[..cut.index(head.len)];
                prop_assert_eq!(head_of(prefix), Ok(None), "prefix of {} bytes", prefix.len());
            }
            prop_assert_eq!(head_of(&input[..head.len]), Ok(Some(head)), "the head alone");
        }
        if let Err(error) = lite {
            let status = error.to_api_error().code().status();
            prop_assert!([400, 414, 431, 501].contains(&status), "{status}");
        }
    }
}

fn head_of(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    head(buf)
}

#[test]
fn the_corpus_is_judged_as_the_rfc_says() {
    let verdicts: Vec<&str> = CORPUS
        .iter()
        .map(|input| match head(input) {
            Ok(None) => "partial",
            Ok(Some(_)) => "ok",
            Err(HeadError::Malformed(_)) => "400",
            Err(HeadError::UriTooLong) => "414",
            Err(HeadError::TooLarge) => "431",
            Err(HeadError::UnsupportedCoding) => "501",
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            "ok", "400", "ok", "400", "400", "501", "501", "400", "400", "ok", "ok", "400", "ok", "400",
            "400", "400", "400", "ok", "ok", "ok", "ok", "400", "400", "400", "400", "400", "400", "ok",
            "ok", "400", "ok", "ok", "ok", "400", "400", "ok",
        ]
    );
}
