//! The JSON every transport shares: one event object, one reset object, one poll batch.
//!
//! The event object is `{"topic","seq","id","event","data","ts"}`. It is written by hand rather
//! than through serde: topics and event types are restricted to characters that need no JSON
//! escaping, the id is a hex cursor, and `data` is already compact JSON, so the object is a few
//! concatenations, done once per event and shared by every subscriber.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use pushgate_hub::{Batch, Cursor, EncodingSlot, Event, Reset, ResetReason};

static EVENT_JSON: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);

/// The event object, encoded once per event and shared.
///
/// ```
/// # use pushgate_hub::{Hub, NewEvent, TopicName};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::new();
/// let event = hub.publish(&TopicName::new("chat")?, NewEvent::new(serde_json::json!({"text": "hi"}))).await?;
/// let json: serde_json::Value = serde_json::from_slice(&pushgate_http::event_json(&event))?;
/// assert_eq!(json["topic"], "chat");
/// assert_eq!(json["seq"], 1);
/// assert_eq!(json["id"], event.cursor().to_string());
/// assert_eq!(json["event"], "message");
/// assert_eq!(json["data"], serde_json::json!({"text": "hi"}));
/// assert_eq!(json["ts"], event.timestamp_ms());
/// # Ok(()) }
/// ```
pub fn event_json(event: &Event) -> Bytes {
    event.encoded(&EVENT_JSON, encode_event)
}

fn encode_event(event: &Event) -> Bytes {
    use std::fmt::Write as _;
    let data = event.data().as_str();
    let mut out = String::with_capacity(96 + data.len() + event.topic().as_str().len());
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"{{"topic":"{}","seq":{},"id":"{}","event":"{}","data":{},"ts":{}}}"#,
        event.topic(),
        event.seq(),
        event.cursor(),
        event.type_name(),
        data,
        event.timestamp_ms()
    );
    Bytes::from(out)
}

/// The reset object: `{"reason","topics":[{"topic","missed":{"at_least","at_most"},"resume_seq"}]}`.
///
/// `reason` is `"expired"` (the cursor is older than retained history) or `"epoch_changed"`
/// (the cursor is from another epoch); `at_most` is `null` when unknown.
pub fn reset_json(reset: &Reset) -> serde_json::Value {
    let reason = match reset.reason() {
        ResetReason::Expired => "expired",
        ResetReason::EpochChanged { .. } => "epoch_changed",
        _ => "unknown",
    };
    let topics: Vec<_> = reset
        .topics()
        .iter()
        .map(|t| {
            serde_json::json!({
                "topic": t.topic.as_str(),
                "missed": {"at_least": t.missed.at_least, "at_most": t.missed.at_most},
                "resume_seq": t.resume_seq,
            })
        })
        .collect();
    serde_json::json!({ "reason": reason, "topics": topics })
}

/// The body of a poll answer: `{"events":[…],"cursor":"…"}`, plus `"reset":{…}` when there is one.
pub fn batch_body(batch: &Batch) -> Bytes {
    let encoded: Vec<Bytes> = batch.events.iter().map(|e| event_json(e)).collect();
    let events_len: usize = encoded.iter().map(|e| e.len() + 1).sum();
    let mut out = BytesMut::with_capacity(48 + events_len);
    out.put_slice(b"{\"events\":[");
    for (i, event) in encoded.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(event);
    }
    out.put_slice(b"],\"cursor\":\"");
    out.put_slice(batch.cursor.to_string().as_bytes());
    out.put_u8(b'"');
    if let Some(reset) = &batch.reset {
        out.put_slice(b",\"reset\":");
        out.put_slice(reset_json(reset).to_string().as_bytes());
    }
    out.put_u8(b'}');
    out.freeze()
}

/// A poll answer for `batch`: 200 with [`batch_body`], or 304 when the request's
/// `If-None-Match` already names this answer. The ETag is derived from the request cursor and
/// the answer's cursor, so an idle poller (same cursor in, same cursor out) costs a 304.
pub fn render_batch(request_cursor: Cursor, batch: &Batch, request_headers: &HeaderMap) -> Response {
    let etag = etag(request_cursor, batch);
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = (StatusCode::OK, batch_body(batch)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    // Caches may keep the answer but must revalidate it: the ETag makes that a 304.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn etag(request_cursor: Cursor, batch: &Batch) -> String {
    // Only an empty, reset-free answer that leaves the cursor where it was is a repeatable
    // answer; anything else gets a tag naming its own content (its first and last event).
    match (batch.events.first(), batch.events.last(), &batch.reset) {
        (None, _, None) if request_cursor == batch.cursor => format!("\"idle-{}\"", batch.cursor),
        (Some(first), Some(last), _) => {
            format!("\"{}-{}-{}\"", request_cursor, first.cursor(), last.cursor())
        }
        _ => format!("\"r-{}-{}\"", request_cursor, batch.cursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_hub::{FetchOptions, Hub, NewEvent, TopicName};

    #[tokio::test]
    async fn an_idle_poll_repeats_its_etag_and_gets_304() {
        let hub = Hub::new();
        let topic = TopicName::new("t").expect("topic");
        let first = hub.fetch(&[topic.clone()], Cursor::Now, &FetchOptions::default()).await.expect("fetch");
        let cursor = first.cursor;
        let idle = hub.fetch(&[topic.clone()], cursor, &FetchOptions::default()).await.expect("fetch");
        let response = render_batch(cursor, &idle, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::OK);
        let tag = response.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(render_batch(cursor, &idle, &headers).status(), StatusCode::NOT_MODIFIED);

        hub.publish(&topic, NewEvent::new(serde_json::json!(1))).await.expect("publish");
        let busy = hub.fetch(&[topic], cursor, &FetchOptions::default()).await.expect("fetch");
        assert_eq!(render_batch(cursor, &busy, &headers).status(), StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(&batch_body(&busy)).expect("json");
        assert_eq!(body["events"][0]["seq"], 1);
        assert_eq!(body["cursor"], busy.cursor.to_string());
        assert!(body.get("reset").is_none());
    }
}
