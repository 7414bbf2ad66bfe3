use super::*;

fn framer() -> Framer {
    Framer { state: State::Head, heads: 0 }
}

/// Everything `input` lets through with unlimited room.
fn admit(framer: &mut Framer, input: &str) -> (usize, Stop) {
    framer.admit(input.as_bytes(), usize::MAX)
}

#[test]
fn pipelined_requests_pass_with_their_bodies() {
    let first = "POST /v1/publish/a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"data\":1}\n";
    let second = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let input = format!("{first}{second}");
    let mut framer = framer();
    assert_eq!(admit(&mut framer, &input), (input.len(), Stop::Done));
    assert_eq!((framer.heads, framer.state), (2, State::Head));
}

#[test]
fn an_incomplete_head_is_held_at_its_start() {
    let done = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let input = format!("{done}GET /next HTTP/1.1\r\nHo");
    let mut framer = framer();
    assert_eq!(admit(&mut framer, &input), (done.len(), Stop::Hold));
    assert_eq!(framer.heads, 1);
}

#[test]
fn a_bad_head_is_refused_and_nothing_of_it_passes() {
    let done = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let input =
        format!("{done}POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
    let mut framer = framer();
    assert_eq!(admit(&mut framer, &input), (done.len(), Stop::Refused));
    assert!(matches!(framer.state, State::Refused(HeadError::Malformed(_))));
    assert_eq!(framer.admit(b"more", 10), (0, Stop::Refused), "refused for good");
}

#[test]
fn room_is_respected_inside_heads_and_bodies() {
    let input =
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut framer = framer();
    let mut passed = 0;
    // Three bytes at a time, as if hyper's buffer had only that much room.
    while passed < input.len() {
        let (n, stop) = framer.admit(&input.as_bytes()[passed..], 3);
        assert!(n <= 3 && (n > 0 || stop != Stop::Done), "{n} {stop:?} at {passed}");
        passed += n;
    }
    assert_eq!((framer.heads, framer.state), (2, State::Head));
}

#[test]
fn chunked_bodies_end_where_hyper_ends_them() {
    let head = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let next = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for body in [
        "0\r\n\r\n",
        "5\r\nhello\r\n0\r\n\r\n",
        "5;ext=1\r\nhello\r\nA \r\n0123456789\r\n0\r\n\r\n",
        "3\r\nabc\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n",
        // A body that looks like a request head is a body.
        "1c\r\nGET /x HTTP/1.1\r\nHost: y\r\n\r\n\r\n0\r\n\r\n",
    ] {
        let input = format!("{head}{body}{next}");
        let mut framer = framer();
        assert_eq!(admit(&mut framer, &input), (input.len(), Stop::Done), "{body:?}");
        assert_eq!((framer.heads, framer.state), (2, State::Head), "{body:?}");
        // The body byte by byte, the same.
        let mut framer = self::framer();
        assert_eq!(admit(&mut framer, head), (head.len(), Stop::Done));
        for (at, byte) in body.bytes().enumerate() {
            assert_eq!(framer.admit(&[byte], 1), (1, Stop::Done), "{body:?} at {at}");
        }
        assert_eq!((framer.heads, framer.state), (1, State::Head), "{body:?}");
    }
}

#[test]
fn broken_chunked_framing_passes_through_for_hyper_to_refuse() {
    let head = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in ["x\r\n", "5\r\nhelloX", "5;a\nb", "5 5\r\n", "10000000000000000\r\n", "0\r\n\rX"] {
        let input = format!("{head}{body}GET / HTTP/1.1\r\n\r\n");
        let mut framer = framer();
        assert_eq!(admit(&mut framer, &input), (input.len(), Stop::Done), "{body:?}");
        assert_eq!(framer.state, State::Opaque, "{body:?}");
    }
}

#[test]
fn a_request_to_switch_protocols_waits_for_its_answer() {
    let upgrade = "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let input = format!("{upgrade}\u{81}\u{85}frame");
    let mut framer = framer();
    assert_eq!(admit(&mut framer, &input), (upgrade.len(), Stop::Wait));
    let exchange = Exchange::default();
    assert_eq!(exchange.switched_at(1), None, "not answered yet");
    exchange.answered(true);
    assert_eq!(exchange.switched_at(1), Some(true));
    assert!(!exchange.all_finished(1));
    exchange.finished();
    assert!(exchange.all_finished(1));
    // Switched: the rest is the new protocol's, whatever it looks like.
    framer.state = State::Opaque;
    assert_eq!(framer.admit(b"GET / HTTP/1.1\r\n\r\n", 5), (5, Stop::Done));
}
