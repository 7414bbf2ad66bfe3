//! Short and long polling over one keep-alive connection (opened again when the server closes
//! it). A short poller asks once per poll interval, whatever the answer; a long poller asks
//! again as soon as an answer arrives.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::{MissedTickBehavior, interval_at, sleep, timeout};
use tokio_util::sync::CancellationToken;

use super::{Meter, Receiver, Record, SETUP_TIMEOUT, Shared, Spec, now_us};
use crate::Transport;
use crate::conn::{self, HttpConn, Response};
use crate::http;
use crate::profile::{self, PollSpec, Resume};

/// Most times one poller opens its connection again before it gives up.
const MAX_RECONNECTS: u64 = 100;

/// Where the next request continues.
#[derive(Debug, Default)]
struct ResumeState {
    cursor: String,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// The `"cursor":"…"` member of a JSON poll answer (the last one, so event data cannot shadow it).
pub(super) fn body_cursor(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"cursor\":\"";
    let start = memchr::memmem::rfind(body, KEY)? + KEY.len();
    let len = memchr::memchr(b'"', &body[start..])?;
    String::from_utf8(body[start..start + len].to_vec()).ok()
}

impl ResumeState {
    fn request(&self, spec: &PollSpec, sub: &Spec) -> Vec<u8> {
        let path = profile::fill(&spec.path, &sub.topic_name, &self.cursor);
        let mut headers = Vec::new();
        let validators = spec.resume == Resume::Validators;
        if let Some(since) = self.last_modified.as_deref().filter(|_| validators) {
            headers.push(("If-Modified-Since", since));
        }
        if let Some(etag) = self.etag.as_deref().filter(|_| validators || spec.if_none_match) {
            headers.push(("If-None-Match", etag));
        }
        http::request("GET", &path, &sub.endpoint.host, &headers, None)
    }

    fn update(&mut self, spec: &PollSpec, response: &Response) {
        if let Some(etag) = &response.head.etag {
            self.etag = Some(etag.clone());
        }
        if let Some(last_modified) = &response.head.last_modified {
            self.last_modified = Some(last_modified.clone());
        }
        if spec.resume == Resume::BodyCursor
            && response.head.status == 200
            && let Some(cursor) = body_cursor(&response.body)
        {
            self.cursor = cursor;
        }
    }
}

/// `fut`, unless the run stops first.
async fn cancellable<T>(stop: &CancellationToken, fut: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        () = stop.cancelled() => None,
        value = fut => Some(value),
    }
}

async fn open(sub: &Spec) -> io::Result<HttpConn> {
    let stream = timeout(SETUP_TIMEOUT, conn::connect(sub.endpoint.addr, sub.source))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    Ok(HttpConn::new(stream))
}

/// Whether an I/O error means the server closed a keep-alive connection, which a client
/// handles by connecting again.
fn is_closed(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// Runs one short or long poller; see the module docs.
pub(super) async fn run(sub: Spec, shared: Arc<Shared>) -> Record {
    let long = sub.transport == Transport::Longpoll;
    let spec = if long { sub.profile.longpoll.clone() } else { sub.profile.poll.clone() };
    let mut receiver = Receiver::new(shared.clone(), &sub);
    let Some(spec) = spec else {
        shared.fail(format!("the profile has no [{}] section", sub.transport.name()));
        return receiver.into_record(0, 0, 0);
    };
    let stop = shared.stop.clone();
    let (mut read, mut written, mut requests, mut bad_statuses, mut reconnects) = (0, 0, 0, 0, 0);
    let mut state = ResumeState { cursor: spec.initial_cursor.clone(), ..ResumeState::default() };
    let Some(Ok(mut permit)) = cancellable(&stop, shared.setup_gate.acquire()).await.map(|p| p.map(Some))
    else {
        return receiver.into_record(0, 0, 0);
    };
    let started = Instant::now();
    let mut established = false;
    let mut conn: Option<HttpConn> = None;
    let mut ticks = None;
    let mut meter = Meter::default();
    // Each pass sends one request; the run's stop token ends it, and every wait is cancellable.
    loop {
        let mut current = match conn.take() {
            Some(current) => current,
            None => match cancellable(&stop, open(&sub)).await {
                None => break,
                Some(Ok(opened)) => {
                    reconnects += u64::from(established);
                    opened
                }
                Some(Err(err)) => {
                    shared.fail(format!("{}: connect: {err}", sub.transport.name()));
                    break;
                }
            },
        };
        let request = state.request(&spec, &sub);
        requests += 1;
        shared.request();
        let sent = cancellable(&stop, current.send(&request)).await;
        if long && !established && matches!(sent, Some(Ok(()))) {
            // A parked long poll sends nothing back: it is established once the request is out.
            let setup = current.stream.read + current.stream.written;
            shared.established(started, setup);
            meter.reported = setup;
            established = true;
            permit = None;
        }
        let response = match sent {
            None => None,
            Some(Ok(())) => cancellable(&stop, current.read_response()).await,
            Some(Err(err)) => Some(Err(err)),
        };
        let Some(response) = response else {
            (read, written) = (read + current.stream.read, written + current.stream.written);
            break;
        };
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                (read, written) = (read + current.stream.read, written + current.stream.written);
                if is_closed(&err) && reconnects < MAX_RECONNECTS {
                    continue;
                }
                shared.fail(format!("{}: {err}", sub.transport.name()));
                break;
            }
        };
        let received_us = now_us();
        let total = read + written + current.stream.read + current.stream.written;
        if !established {
            shared.established(started, total);
            meter.reported = total;
            established = true;
            permit = None;
        }
        meter.update(&shared, total);
        drop(permit.take());
        match response.head.status {
            200 => receiver.receive(&response.body, received_us),
            // 304: nothing new (short poll); 408: nchan's long-poll timeout.
            304 | 408 => {}
            status => {
                bad_statuses += 1;
                if status >= 500 && cancellable(&stop, sleep(Duration::from_millis(100))).await.is_none() {
                    (read, written) = (read + current.stream.read, written + current.stream.written);
                    break;
                }
            }
        }
        state.update(&spec, &response);
        if response.head.close {
            (read, written) = (read + current.stream.read, written + current.stream.written);
        } else {
            conn = Some(current);
        }
        if !long {
            let ticks = ticks.get_or_insert_with(|| {
                // Spread the pollers' phases over the interval, as independent clients would be.
                let phase = sub.poll_interval.mul_f64(((sub.index as f64) * 0.618_033_988_75).fract());
                let mut ticks = interval_at((Instant::now() + phase).into(), sub.poll_interval);
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                ticks
            });
            if cancellable(&stop, ticks.tick()).await.is_none() {
                break;
            }
        }
    }
    if let Some(current) = conn {
        (read, written) = (read + current.stream.read, written + current.stream.written);
    }
    let mut record = receiver.into_record(read, written, requests);
    record.bad_statuses = bad_statuses;
    record.reconnects = reconnects;
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_cursor_is_the_last_cursor_member() {
        let body = br#"{"events":[{"topic":"t","seq":1,"id":"a-1","data":{"pgb":[0,1,2]}}],"cursor":"a-1","reset":{"reason":"expired","topics":[]}}"#;
        assert_eq!(body_cursor(body).as_deref(), Some("a-1"));
        assert_eq!(body_cursor(br#"{"events":[]}"#), None);
    }
}
