//! The SSE wire format, without I/O: turning hub items into `text/event-stream` bytes.
//!
//! Every frame is a handful of `field: value` lines ended by a blank line. Values never contain
//! a line break: event types and cursors are restricted to `[A-Za-z0-9_.:-]`, and the event and
//! reset objects are compact JSON, which escapes control characters inside strings. So each
//! frame has exactly one `data:` line and a WHATWG parser hands the JSON back unchanged.
//!
//! An event's frame is the same for every subscriber (its `id:` is the event's own cursor), so
//! it is encoded once per event and shared ([`event_frame`]).

use std::collections::VecDeque;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use pushgate_http::{Cut, ErrorCode, event_json, reset_json};
use pushgate_hub::{Cursor, EncodingSlot, Event, PresenceChange, RecvError, Reset};

static SSE_FRAME: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);

/// The comment sent after a stretch of silence, so proxies and idle timers keep the stream open.
pub(crate) const HEARTBEAT: &[u8] = b": hb\n\n";

/// `id: <cursor>\nevent: <type>\ndata: <event object>\n\n`, encoded once per event.
pub(crate) fn event_frame(event: &Event) -> Bytes {
    event.encoded(&SSE_FRAME, encode_event_frame)
}

fn encode_event_frame(event: &Event) -> Bytes {
    let json = event_json(event);
    let id = event.cursor().to_string();
    let kind = event.type_name();
    let mut out = BytesMut::with_capacity(24 + id.len() + kind.len() + json.len());
    out.put_slice(b"id: ");
    out.put_slice(id.as_bytes());
    out.put_slice(b"\nevent: ");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(&json);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// `event: reset\nid: <resume>\ndata: <reset object>\n\n`. The `id:` lets a client that
/// reconnects right after the reset resume from where the reset left it.
pub(crate) fn reset_frame(reset: &Reset, resume: Cursor) -> Bytes {
    Bytes::from(format!("event: reset\nid: {resume}\ndata: {}\n\n", reset_json(reset)))
}

/// `event: pushgate.join` (or `pushgate.leave`) and the notice's JSON
/// ([`presence_json`](pushgate_http::presence_json)), with no `id:`: a notice is not an event,
/// and the browser's last event id must stay the last event's.
pub(crate) fn presence_frame(change: &PresenceChange) -> Bytes {
    let json = pushgate_http::presence_json(change);
    Bytes::from(format!("event: pushgate.{}\ndata: {json}\n\n", change.kind.as_str()))
}

/// `retry: <ms>\n\n`: how long a browser waits before reconnecting.
pub(crate) fn retry_frame(retry: Duration) -> Bytes {
    Bytes::from(format!("retry: {}\n\n", retry.as_millis()))
}

/// `event: error\ndata: {"code":…,"message":…}\n\n`: the last frame of a stream that the server
/// ends.
pub(crate) fn error_frame(code: &str, message: &str) -> Bytes {
    let data = serde_json::json!({ "code": code, "message": message });
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

/// The frame that ends a stream whose subscription failed with `err`.
pub(crate) fn end_frame(err: RecvError) -> Bytes {
    match err {
        RecvError::Lagged { behind } => error_frame(
            ErrorCode::SlowConsumer.as_str(),
            &format!("subscriber fell {behind} events behind; reconnect with the last event id"),
        ),
        RecvError::Closed => error_frame(ErrorCode::ShuttingDown.as_str(), "the server is shutting down"),
        RecvError::Disconnected => error_frame(
            ErrorCode::Disconnected.as_str(),
            "the server disconnected this topic's subscribers; do not reconnect on your own",
        ),
        _ => error_frame(ErrorCode::Internal.as_str(), &err.to_string()),
    }
}

/// The frame that ends a stream cut off on purpose: `disconnected` (do not reconnect) or
/// `token_revoked` (reconnect only with a fresh token).
pub(crate) fn cut_frame(cut: Cut) -> Bytes {
    let error = cut.error();
    error_frame(error.code().as_str(), error.message())
}

/// The frame that ends a stream whose token expired: reconnect with a fresh token.
pub(crate) fn expired_frame() -> Bytes {
    error_frame(
        ErrorCode::TokenExpired.as_str(),
        "the token has expired; reconnect with a fresh token and the last event id",
    )
}

/// The default for [`Chunk`]'s cap: about one TCP window's worth, so joining saves writes
/// without building large per-subscriber buffers.
pub(crate) const DEFAULT_MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Frames gathered for writing, handed out as chunks of at most `max_bytes` each.
///
/// Small frames are joined so that a burst goes out in a few writes; a frame that does not fit
/// under the cap is handed out on its own, as the shared, cached buffer itself. Joining is the
/// only copy a subscriber makes, so its memory is bounded by the cap whatever the event sizes:
/// a catching-up client with 1 MiB events holds references to the shared frames, not a joined
/// copy of them.
#[derive(Debug)]
pub(crate) struct Chunk {
    parts: VecDeque<Bytes>,
    max_bytes: usize,
}

impl Default for Chunk {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_CHUNK_BYTES)
    }
}

impl Chunk {
    /// An empty chunk whose joined buffers stay within `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self { parts: VecDeque::new(), max_bytes }
    }

    pub(crate) fn push(&mut self, frame: Bytes) {
        self.parts.push_back(frame);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The next chunk to write, leaving what did not fit for later calls: the leading frames
    /// joined while they fit in `max_bytes` together, or the first frame alone (not copied) when
    /// it does not fit with the next one. Empty when nothing is left.
    pub(crate) fn take(&mut self) -> Bytes {
        let Some(first) = self.parts.pop_front() else { return Bytes::new() };
        let mut len = first.len();
        let joined = self.parts.iter().take_while(|part| {
            len += part.len();
            len <= self.max_bytes
        });
        let count = joined.count();
        if count == 0 {
            return first;
        }
        let total = first.len() + self.parts.iter().take(count).map(Bytes::len).sum::<usize>();
        let mut out = BytesMut::with_capacity(total);
        out.put_slice(&first);
        for part in self.parts.drain(..count) {
            out.put_slice(&part);
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    use pushgate_hub::{Data, Epoch, EventParts, FetchOptions, Hub, NewEvent, TopicName};

    fn event(event_type: &str, data: serde_json::Value) -> Event {
        Event::from_parts(EventParts {
            topic: TopicName::new("chat").unwrap(),
            event_type: event_type.into(),
            data: Data::from(data),
            seq: 3,
            position: 42,
            epoch: Epoch::from_u32(0x9f03c1d2),
            timestamp_ms: 1_763_750_000_000,
            from: None,
            latest_key: None,
        })
    }

    /// Parses `bytes` the way a browser would.
    async fn parse(bytes: Bytes) -> Vec<eventsource_stream::Event> {
        let stream = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]);
        stream.eventsource().map(|e| e.unwrap()).collect().await
    }

    #[test]
    fn an_event_frame_carries_its_cursor_type_and_object_on_one_data_line() {
        let event = event("message", serde_json::json!({"text": "hi\nthere"}));
        let frame = event_frame(&event);
        let expected = concat!(
            "id: 9f03c1d2-2a\nevent: message\n",
            r#"data: {"topic":"chat","seq":3,"id":"9f03c1d2-2a","event":"message","#,
            r#""data":{"text":"hi\nthere"},"ts":1763750000000}"#,
            "\n\n"
        );
        assert_eq!(std::str::from_utf8(&frame).unwrap(), expected);
    }

    #[test]
    fn an_event_frame_is_encoded_once_and_shared() {
        let event = event("alert", serde_json::json!(1));
        let first = event_frame(&event);
        let second = event_frame(&event);
        assert_eq!(first.as_ptr(), second.as_ptr());
    }

    #[tokio::test]
    async fn a_browser_parser_reads_back_the_event_object() {
        let event = event("alert", serde_json::json!({"a": [1, "two\r\n"]}));
        let parsed = parse(event_frame(&event)).await;
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].event, "alert");
        assert_eq!(parsed[0].id, "9f03c1d2-2a");
        assert_eq!(parsed[0].data.as_bytes(), &event_json(&event)[..]);
    }

    #[tokio::test]
    async fn a_reset_frame_names_the_reset_and_where_to_resume() {
        let hub = Hub::new();
        let topic = TopicName::new("t").unwrap();
        hub.publish(&topic, NewEvent::new(serde_json::json!(1))).await.unwrap();
        let stale = Cursor::at(Epoch::from_u32(hub.epoch().as_u32() ^ 1), 7);
        let reset = hub.fetch(&[topic], stale, &FetchOptions::default()).await.unwrap().reset.unwrap();
        let resume = Cursor::at(hub.epoch(), 0);

        let frame = reset_frame(&reset, resume);
        assert!(frame.starts_with(b"event: reset\nid: "));
        let parsed = parse(frame).await;
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].event, "reset");
        assert_eq!(parsed[0].id, resume.to_string());
        let data: serde_json::Value = serde_json::from_str(&parsed[0].data).unwrap();
        assert_eq!(data, reset_json(&reset));
        assert_eq!(data["reason"], "epoch_changed");
    }

    #[tokio::test]
    async fn end_frames_are_error_events_with_a_code() {
        for (err, code) in
            [(RecvError::Lagged { behind: 9 }, "slow_consumer"), (RecvError::Closed, "shutting_down")]
        {
            let parsed = parse(end_frame(err)).await;
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].event, "error");
            let data: serde_json::Value = serde_json::from_str(&parsed[0].data).unwrap();
            assert_eq!(data["code"], code);
            assert!(data["message"].is_string());
        }
    }

    #[test]
    fn retry_and_heartbeat_frames() {
        assert_eq!(&retry_frame(Duration::from_millis(2000))[..], b"retry: 2000\n\n");
        assert_eq!(HEARTBEAT, b": hb\n\n");
    }

    #[test]
    fn a_chunk_joins_frames_and_passes_a_single_frame_through() {
        let mut chunk = Chunk::default();
        assert!(chunk.is_empty());
        let one = Bytes::from_static(b"a\n\n");
        chunk.push(one.clone());
        let taken = chunk.take();
        assert_eq!(taken.as_ptr(), one.as_ptr());
        assert!(chunk.is_empty());

        chunk.push(retry_frame(Duration::from_secs(1)));
        chunk.push(Bytes::from_static(HEARTBEAT));
        assert_eq!(&chunk.take()[..], b"retry: 1000\n\n: hb\n\n");
        assert!(chunk.is_empty());
        assert_eq!(chunk.take(), Bytes::new());
    }

    fn frame(byte: u8, len: usize) -> Bytes {
        Bytes::from(vec![byte; len])
    }

    #[test]
    fn a_chunk_stays_within_its_cap_and_sends_large_frames_uncopied() {
        let mut chunk = Chunk::new(100);
        let small = [frame(b'a', 30), frame(b'b', 30), frame(b'c', 40), frame(b'd', 1)];
        let large = frame(b'L', 1000);
        let tail = [frame(b'e', 60), frame(b'f', 60)];
        for part in small.iter().chain([&large]).chain(&tail) {
            chunk.push(part.clone());
        }

        // Small frames go together up to the cap (exactly 100 here); the next one waits.
        assert_eq!(chunk.take(), [&small[0][..], &small[1], &small[2]].concat());
        // A frame that does not fit with the next goes alone, even a small one...
        assert_eq!(chunk.take().as_ptr(), small[3].as_ptr());
        // ...and a frame over the cap is the shared buffer itself, never copied.
        let taken = chunk.take();
        assert_eq!((taken.as_ptr(), taken.len()), (large.as_ptr(), 1000));
        assert_eq!(chunk.take().as_ptr(), tail[0].as_ptr());
        assert_eq!(chunk.take().as_ptr(), tail[1].as_ptr());
        assert!(chunk.is_empty());
    }

    #[test]
    fn a_burst_of_large_frames_is_never_joined() {
        let mut chunk = Chunk::default();
        let frames: Vec<Bytes> = (0..64u8).map(|n| frame(n, 1 << 20)).collect();
        for part in &frames {
            chunk.push(part.clone());
        }
        for part in &frames {
            assert_eq!(chunk.take().as_ptr(), part.as_ptr());
        }
        assert!(chunk.is_empty());
    }
}
