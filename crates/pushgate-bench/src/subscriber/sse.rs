//! A Server-Sent Events subscriber: one request, then a body read as it streams. Only complete
//! lines are scanned for stamps, so a message split across reads is counted once it is whole.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::Buf as _;
use tokio::time::timeout;

use super::{Meter, Receiver, Record, SETUP_TIMEOUT, Shared, Spec, now_us};
use crate::conn::{self, HttpConn};
use crate::http::{self, BodyFraming, ChunkedDecoder};
use crate::profile;

/// Most bytes of an unfinished line kept while waiting for its end.
const MAX_LINE_BYTES: usize = 1 << 20;

async fn subscribe(sub: &Spec, path: &str) -> io::Result<(HttpConn, BodyFraming)> {
    let stream = conn::connect(sub.endpoint.addr, sub.source).await?;
    let mut conn = HttpConn::new(stream);
    let request = http::request(
        "GET",
        path,
        &sub.endpoint.host,
        &[("Accept", "text/event-stream"), ("Cache-Control", "no-cache")],
        None,
    );
    conn.send(&request).await?;
    let head = conn.read_head().await?;
    if head.status != 200 {
        return Err(io::Error::other(format!("status {}", head.status)));
    }
    Ok((conn, head.framing))
}

/// Runs one SSE subscriber until the stop token fires or the stream ends.
pub(super) async fn run(sub: Spec, shared: Arc<Shared>) -> Record {
    let mut receiver = Receiver::new(shared.clone(), &sub);
    let Some(spec) = sub.profile.sse.clone() else {
        shared.fail("the profile has no [sse] section".to_owned());
        return receiver.into_record(0, 0, 0);
    };
    let stop = shared.stop.clone();
    let path = profile::fill(&spec.path, &sub.topic_name, "");
    let setup = async {
        let _permit = shared.setup_gate.acquire().await;
        let started = Instant::now();
        let result = timeout(SETUP_TIMEOUT, subscribe(&sub, &path)).await;
        (started, result)
    };
    let (started, result) = tokio::select! {
        biased;
        () = stop.cancelled() => return receiver.into_record(0, 0, 0),
        setup = setup => setup,
    };
    let (mut conn, framing) = match result {
        Ok(Ok(subscribed)) => subscribed,
        Ok(Err(err)) => {
            shared.request();
            shared.fail(format!("sse: {err}"));
            return receiver.into_record(0, 0, 1);
        }
        Err(_) => {
            shared.fail("sse: subscribing timed out".to_owned());
            return receiver.into_record(0, 0, 1);
        }
    };
    shared.request();
    let mut meter = Meter::default();
    let setup_bytes = conn.stream.read + conn.stream.written;
    // The bytes of the subscription itself are counted once, as setup, not in the window.
    meter.reported = setup_bytes;
    shared.established(started, setup_bytes);
    let mut decoder = (framing == BodyFraming::Chunked).then(ChunkedDecoder::default);
    let mut lines: Vec<u8> = Vec::with_capacity(1024);
    let mut received_us = now_us();
    // Each pass consumes what one read brought; the stop token or the end of the stream ends it.
    loop {
        match &mut decoder {
            Some(decoder) => match decoder.decode(&conn.buf, &mut lines) {
                Ok(used) => conn.buf.advance(used),
                Err(err) => {
                    shared.fail(format!("sse: {err}"));
                    break;
                }
            },
            None => {
                lines.extend_from_slice(&conn.buf);
                conn.buf.clear();
            }
        }
        if let Some(last) = memchr::memrchr(b'\n', &lines) {
            receiver.receive(&lines[..=last], received_us);
            lines.drain(..=last);
        }
        if lines.len() > MAX_LINE_BYTES || decoder.as_ref().is_some_and(ChunkedDecoder::is_done) {
            shared.fail("sse: the stream ended or sent an over-long line".to_owned());
            break;
        }
        let read = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            read = conn.fill() => read,
        };
        received_us = now_us();
        meter.update(&shared, conn.stream.read + conn.stream.written);
        match read {
            Ok(0) => {
                shared.fail("sse: the server ended the stream".to_owned());
                break;
            }
            Ok(_) => {}
            Err(err) => {
                shared.fail(format!("sse: {err}"));
                break;
            }
        }
    }
    receiver.into_record(conn.stream.read, conn.stream.written, 1)
}
