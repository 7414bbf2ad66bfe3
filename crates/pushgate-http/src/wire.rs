//! The JSON every transport shares, for hub events: one event object, one reset object, one
//! poll batch. Their shapes are the protocol's (`pushgate-protocol`): the event object is
//! `{"topic","seq","id","event","data","ts"}`, plus `"from"` (who published it) when the
//! publisher was identified and `"key"` (what it is the newest value of) when the publisher
//! gave one. This writes them from the hub's types and caches the event object on each event,
//! and each thread's last poll answer for the next request that asks the same.

use std::sync::LazyLock;

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use pushgate_hub::{Batch, Cursor, EncodingSlot, Event, PresenceChange, Reset, ResetReason, TopicName};
use pushgate_protocol::{
    EventParts, Missed, ResetObject, ResetReason as WireReason, ResetTopic, write_event_object,
};

use crate::etag;
use crate::text::cursor_text;

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
/// assert!(json.get("from").is_none());
///
/// let said = hub.publish(&TopicName::new("chat")?, NewEvent::new(serde_json::json!("hi")).from("Zoë \"z\"")).await?;
/// let json: serde_json::Value = serde_json::from_slice(&pushgate_http::event_json(&said))?;
/// assert_eq!(json["from"], "Zoë \"z\"");
/// assert!(json.get("key").is_none());
///
/// let keyed = hub.publish(&TopicName::new("prices")?, NewEvent::new(serde_json::json!(1)).latest_key("EUR\"USD")).await?;
/// let json: serde_json::Value = serde_json::from_slice(&pushgate_http::event_json(&keyed))?;
/// assert_eq!(json["key"], "EUR\"USD");
/// # Ok(()) }
/// ```
pub fn event_json(event: &Event) -> Bytes {
    event.encoded(&EVENT_JSON, encode_event)
}

fn encode_event(event: &Event) -> Bytes {
    let text = write_event_object(&EventParts {
        topic: event.topic().as_str(),
        seq: event.seq(),
        id: event.cursor(),
        event: event.type_name(),
        data: event.data().as_str(),
        ts: event.timestamp_ms(),
        from: event.from(),
        key: event.latest_key(),
    });
    Bytes::from(text)
}

/// The reset object: `{"reason","topics":[{"topic","missed":{"at_least","at_most"},"resume_seq"}]}`.
///
/// `reason` is `"expired"` (the cursor is older than retained history) or `"epoch_changed"`
/// (the cursor is from another epoch); `at_most` is `null` when unknown.
pub fn reset_json(reset: &Reset) -> serde_json::Value {
    serde_json::to_value(reset_object(reset)).unwrap_or_default()
}

/// The protocol's reset object for a hub reset.
pub fn reset_object(reset: &Reset) -> ResetObject {
    let reason = match reset.reason() {
        ResetReason::Expired => WireReason::Expired,
        ResetReason::EpochChanged { .. } => WireReason::EpochChanged,
        _ => WireReason::Unknown,
    };
    let topics = reset
        .topics()
        .iter()
        .map(|t| ResetTopic {
            topic: t.topic.as_str().to_owned(),
            missed: Missed { at_least: t.missed.at_least, at_most: t.missed.at_most },
            resume_seq: t.resume_seq,
        })
        .collect();
    ResetObject { reason, topics }
}

/// The body of a poll answer: `{"events":[…],"cursor":"…"}`, plus `"reset":{…}` when there is one.
pub fn batch_body(batch: &Batch) -> Bytes {
    // One buffer, sized up front: each event object is its data plus an envelope (topic, type
    // and fixed fields of about 100 bytes), so this rarely grows and never by much.
    let estimate: usize = batch
        .events
        .iter()
        .map(|e| {
            e.data().as_str().len()
                + e.topic().as_str().len()
                + e.type_name().len()
                + e.from().map_or(0, |f| f.len() + 16)
                + e.latest_key().map_or(0, |k| k.len() + 16)
                + 100
        })
        .sum();
    let mut out = BytesMut::with_capacity(48 + estimate);
    out.put_slice(b"{\"events\":[");
    for (i, event) in batch.events.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&event_json(event));
    }
    out.put_slice(b"],\"cursor\":\"");
    out.put_slice(cursor_text(batch.cursor).as_bytes());
    out.put_u8(b'"');
    if let Some(reset) = &batch.reset {
        out.put_slice(b",\"reset\":");
        out.put_slice(reset_json(reset).to_string().as_bytes());
    }
    if !batch.presence.is_empty() {
        let changes: Vec<_> = batch.presence.iter().map(|change| presence_json(change)).collect();
        out.put_slice(b",\"presence\":");
        out.put_slice(serde_json::Value::Array(changes).to_string().as_bytes());
    }
    out.put_u8(b'}');
    out.freeze()
}

/// The JSON of a join or leave notice, the same on every transport:
/// `{"event":"join"|"leave","topic","user","transport","total"}` (`user` is `null` for an
/// anonymous reader; `total` counts the topic's readers after the change, on every node).
///
/// ```
/// use pushgate_hub::{ChangeKind, PresenceChange, TopicName};
///
/// let change = PresenceChange::new(TopicName::new("room")?, ChangeKind::Join, Some("42".into()), "sse".into(), 3);
/// assert_eq!(
///     pushgate_http::presence_json(&change).to_string(),
///     r#"{"event":"join","topic":"room","total":3,"transport":"sse","user":"42"}"#
/// );
/// # Ok::<(), pushgate_hub::InvalidTopic>(())
/// ```
pub fn presence_json(change: &PresenceChange) -> serde_json::Value {
    serde_json::json!({
        "event": change.kind.as_str(),
        "topic": change.topic.as_str(),
        "user": change.user.as_deref(),
        "transport": change.label,
        "total": change.total,
    })
}

/// A poll answer for `batch`, fetched for `topics` from `request_cursor`: 200 with
/// [`batch_body`], or 304 when the request's `If-None-Match` names this answer's `ETag`.
///
/// The tag names the answer, so one tag never stands for two different answers: it holds the
/// request cursor, the answer's cursor and first and last events (and a hash of the events
/// between them, when there are any), a short hash of the
/// request's topic set (sorted and deduplicated, so `topic=a&topic=b` and `topics=b,a` share
/// it), and, when the answer has a reset, a marker with a hash of that reset. An idle poller
/// (same topics, same cursor, nothing new) sends back the tag it got and is answered 304.
/// `If-None-Match: *` never gives 304: it would match any answer, new events included.
pub fn render_batch(
    topics: &[TopicName],
    request_cursor: Cursor,
    batch: &Batch,
    request_headers: &HeaderMap,
) -> Response {
    render(topics, request_cursor, batch, request_headers.get_all(header::IF_NONE_MATCH))
}

/// [`render_batch`] with the request's `If-None-Match` values.
pub(crate) fn render<'a>(
    topics: &[TopicName],
    request_cursor: Cursor,
    batch: &Batch,
    if_none_match: impl IntoIterator<Item = &'a HeaderValue>,
) -> Response {
    // Every poll answer is rendered here: its three headers go into a map sized for them, once.
    let mut headers = HeaderMap::with_capacity(3);
    let (status, body) = if let Some((tag, body)) = recent::find(topics, request_cursor, batch) {
        if etag::if_none_match(if_none_match, tag.as_bytes()) {
            headers.insert(header::ETAG, tag);
            (StatusCode::NOT_MODIFIED, Body::empty())
        } else {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(header::ETAG, tag);
            (StatusCode::OK, Body::from(body))
        }
    } else {
        let etag = etag::etag(topics, request_cursor, batch);
        // Notices move no cursor, so an answer carrying some must not be taken for the last one.
        let tag = batch.presence.is_empty().then(|| HeaderValue::from_bytes(etag.as_bytes()).ok()).flatten();
        let answer = if tag.is_some() && etag::if_none_match(if_none_match, etag.as_bytes()) {
            (StatusCode::NOT_MODIFIED, Body::empty())
        } else {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let body = batch_body(batch);
            if let Some(tag) = &tag {
                recent::keep(topics, request_cursor, batch, tag, &body);
            }
            (StatusCode::OK, Body::from(body))
        };
        if let Some(tag) = tag {
            headers.insert(header::ETAG, tag);
        }
        answer
    };
    // Caches may keep the answer but must revalidate it: the ETag makes that a 304.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The last `200` answer each thread rendered, for the next request that asks the same: when
/// an event is published, every parked long poll of its topic wakes with the same topics and
/// cursor and gets the same answer, so the first renders it and the others share its body.
mod recent {
    use std::cell::RefCell;
    use std::sync::Arc;

    use bytes::Bytes;
    use http::HeaderValue;
    use pushgate_hub::{Batch, Cursor, Event, TopicName};

    /// Larger answers are not kept: rendering them is mostly copying, which sharing saves
    /// little of, and a thread should not hold on to much.
    const MAX_BODY: usize = 16 * 1024;

    /// An answer and what it answered. The events are kept (not their addresses) so an event
    /// freed and another allocated in its place can never match.
    struct Rendered {
        topics: Vec<TopicName>,
        request_cursor: Cursor,
        cursor: Cursor,
        events: Vec<Arc<Event>>,
        tag: HeaderValue,
        body: Bytes,
    }

    impl Rendered {
        /// Whether it answered this: the same topics in the same order, the same cursors and the
        /// very same events, and nothing else in the answer (no reset, no notices), so its
        /// tag and body are this answer's too.
        fn answers(&self, topics: &[TopicName], request_cursor: Cursor, batch: &Batch) -> bool {
            batch.reset.is_none()
                && batch.presence.is_empty()
                && self.request_cursor == request_cursor
                && self.cursor == batch.cursor
                && self.events.len() == batch.events.len()
                && self.events.iter().zip(&batch.events).all(|(a, b)| Arc::ptr_eq(a, b))
                && self.topics == topics
        }
    }

    thread_local! {
        static LAST: RefCell<Option<Rendered>> = const { RefCell::new(None) };
    }

    /// The tag and body of the same answer, if this thread rendered it last.
    pub(super) fn find(
        topics: &[TopicName],
        request_cursor: Cursor,
        batch: &Batch,
    ) -> Option<(HeaderValue, Bytes)> {
        LAST.with_borrow(|last| {
            last.as_ref()
                .filter(|last| last.answers(topics, request_cursor, batch))
                .map(|last| (last.tag.clone(), last.body.clone()))
        })
    }

    /// Keeps `body` and `tag` as this thread's last answer, when it is plain and small.
    pub(super) fn keep(
        topics: &[TopicName],
        request_cursor: Cursor,
        batch: &Batch,
        tag: &HeaderValue,
        body: &Bytes,
    ) {
        if batch.reset.is_some() || !batch.presence.is_empty() || body.len() > MAX_BODY {
            return;
        }
        LAST.with_borrow_mut(|last| match last {
            // In place: an answer that is never asked again (a short poll's) should not cost
            // two allocations as well.
            Some(last) => {
                last.topics.clear();
                last.topics.extend_from_slice(topics);
                last.events.clear();
                last.events.extend_from_slice(&batch.events);
                (last.request_cursor, last.cursor) = (request_cursor, batch.cursor);
                (last.tag, last.body) = (tag.clone(), body.clone());
            }
            None => {
                *last = Some(Rendered {
                    topics: topics.to_vec(),
                    request_cursor,
                    cursor: batch.cursor,
                    events: batch.events.clone(),
                    tag: tag.clone(),
                    body: body.clone(),
                });
            }
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use pushgate_hub::{ChangeKind, FetchOptions, Hub, NewEvent, PresenceChange};

        /// `find` gives the kept answer back only for the very same question and a plain answer.
        #[tokio::test]
        async fn only_the_same_plain_answer_is_found() {
            let hub = Hub::new();
            let t = TopicName::new("t").expect("topic");
            let topics = [t.clone()];
            let start = hub
                .fetch(&topics, pushgate_hub::Cursor::Now, &FetchOptions::default())
                .await
                .expect("fetch")
                .cursor;
            for n in 0..4 {
                hub.publish(&t, NewEvent::new(serde_json::json!(n))).await.expect("publish");
            }
            let two = FetchOptions::default().limit(2);
            let first = hub.fetch(&topics, start, &two).await.expect("fetch");
            let next = hub.fetch(&topics, first.cursor, &two).await.expect("fetch");
            let tag = HeaderValue::from_static("\"t\"");
            let body = Bytes::from_static(b"{}");
            keep(&topics, start, &first, &tag, &body);

            let (found_tag, found_body) = find(&topics, start, &first).expect("the same question");
            assert_eq!(found_tag, tag);
            assert_eq!(found_body.as_ptr(), body.as_ptr(), "the body is shared, not copied");

            // Another answer cursor, the same events.
            let mut moved = first.clone();
            moved.cursor = next.cursor;
            assert!(find(&topics, start, &moved).is_none());
            // As many events, other ones.
            let mut other = first.clone();
            other.events.clone_from(&next.events);
            assert!(find(&topics, start, &other).is_none());
            // The same events with notices: never the plain answer (no tag, no 304).
            let mut noticed = first.clone();
            noticed.presence.push(Arc::new(PresenceChange::new(
                t.clone(),
                ChangeKind::Join,
                None,
                "sse".into(),
                1,
            )));
            assert!(find(&topics, start, &noticed).is_none());
            // An answer with notices or too large a body is not kept: the last plain one stays.
            keep(&topics, start, &noticed, &tag, &body);
            keep(&topics, start, &first, &tag, &Bytes::from(vec![b' '; MAX_BODY + 1]));
            assert_eq!(find(&topics, start, &first).map(|(_, b)| b.as_ptr()), Some(body.as_ptr()));
            // Kept again over it, in place: the newer answer only.
            keep(&topics, first.cursor, &next, &tag, &body);
            assert!(find(&topics, start, &first).is_none());
            assert!(find(&topics, first.cursor, &next).is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_hub::{Epoch, FetchOptions, Hub, NewEvent};
    use std::sync::Arc;

    fn topic(name: &str) -> TopicName {
        TopicName::new(name).expect("topic")
    }

    fn tag_of(response: &Response) -> HeaderValue {
        response.headers()[header::ETAG].clone()
    }

    fn if_none_match(tag: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(tag).expect("header value"));
        headers
    }

    async fn fetch(hub: &Hub, topics: &[TopicName], cursor: Cursor) -> Batch {
        hub.fetch(topics, cursor, &FetchOptions::default()).await.expect("fetch")
    }

    #[tokio::test]
    async fn an_idle_poll_repeats_its_etag_and_gets_304() {
        let hub = Hub::new();
        let topics = [topic("t")];
        let cursor = fetch(&hub, &topics, Cursor::Now).await.cursor;
        let idle = fetch(&hub, &topics, cursor).await;
        let response = render_batch(&topics, cursor, &idle, &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::OK);
        let tag = tag_of(&response);
        let headers = if_none_match(tag.to_str().expect("ascii"));
        let cached = render_batch(&topics, cursor, &idle, &headers);
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(tag_of(&cached), tag);
        let weak = if_none_match(&format!("\"other\", W/{}", tag.to_str().expect("ascii")));
        assert_eq!(render_batch(&topics, cursor, &idle, &weak).status(), StatusCode::NOT_MODIFIED);

        hub.publish(&topics[0], NewEvent::new(serde_json::json!(1))).await.expect("publish");
        let busy = fetch(&hub, &topics, cursor).await;
        assert_eq!(render_batch(&topics, cursor, &busy, &headers).status(), StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(&batch_body(&busy)).expect("json");
        assert_eq!(body["events"][0]["seq"], 1);
        assert_eq!(body["cursor"], busy.cursor.to_string());
        assert!(body.get("reset").is_none());
    }

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    /// Parked long polls of one topic wake to the same answer, rendered once per thread and
    /// shared: what is shared must be that answer and no other.
    #[tokio::test]
    async fn an_answer_rendered_again_is_the_same_and_only_for_the_same_question() {
        let hub = Hub::new();
        let t = topic("t");
        let topics = [t.clone()];
        let start = fetch(&hub, &topics, Cursor::Now).await.cursor;
        for n in 1..=2 {
            hub.publish(&t, NewEvent::new(serde_json::json!(n)).latest_key("k")).await.expect("publish");
        }
        let every = fetch(&hub, &topics, start).await;
        let first = render_batch(&topics, start, &every, &HeaderMap::new());
        let again = render_batch(&topics, start, &every, &HeaderMap::new());
        let first_tag = tag_of(&first);
        assert_eq!(tag_of(&again), first_tag);
        assert_eq!(first.headers(), again.headers());
        let (first_body, again_body) = (body_of(first).await, body_of(again).await);
        assert_eq!(first_body, again_body);
        assert_eq!(first_body["events"].as_array().map(Vec::len), Some(2));

        // Asked again with its tag: 304, with the tag.
        let cached = render_batch(&topics, start, &every, &if_none_match(first_tag.to_str().expect("ascii")));
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(tag_of(&cached), first_tag);

        // The same topics and cursors, other events (latest value only skips the first): not
        // the answer rendered before.
        let newest = hub.fetch(&topics, start, &FetchOptions::default().latest(true)).await.expect("fetch");
        assert_eq!(newest.cursor, every.cursor);
        let body = body_of(render_batch(&topics, start, &newest, &HeaderMap::new())).await;
        assert_eq!(body["events"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["events"][0]["data"], 2);

        // The same events for another topic set, or from another cursor: their own tags.
        let other = [t.clone(), topic("u")];
        let wider = fetch(&hub, &other, start).await;
        let tag = |topics: &[TopicName], from: Cursor, batch: &Batch| {
            tag_of(&render_batch(topics, from, batch, &HeaderMap::new()))
        };
        let every_tag = tag(&topics, start, &every);
        assert_ne!(tag(&other, start, &wider), every_tag);
        assert_eq!(tag(&topics, start, &every), every_tag);
        let from_oldest = fetch(&hub, &topics, Cursor::Oldest).await;
        assert_ne!(tag(&topics, Cursor::Oldest, &from_oldest), every_tag);
        assert_eq!(tag(&topics, start, &every), every_tag);
    }

    /// A latest-value answer and the full one from the same cursor can share their first and
    /// last events; their tags must differ all the same.
    #[tokio::test]
    async fn answers_that_differ_only_between_their_ends_have_their_own_tags() {
        let hub = Hub::new();
        let t = topic("t");
        let topics = [t.clone()];
        let start = fetch(&hub, &topics, Cursor::Now).await.cursor;
        for (n, key) in [(1, None), (2, Some("k")), (3, Some("k")), (4, None)] {
            let event = NewEvent::new(serde_json::json!(n));
            let event = match key {
                Some(key) => event.latest_key(key),
                None => event,
            };
            hub.publish(&t, event).await.expect("publish");
        }
        let full = fetch(&hub, &topics, start).await;
        let newest = hub.fetch(&topics, start, &FetchOptions::default().latest(true)).await.expect("fetch");
        assert_eq!((full.events.len(), newest.events.len()), (4, 3));
        assert!(
            Arc::ptr_eq(&full.events[0], &newest.events[0])
                && Arc::ptr_eq(&full.events[3], &newest.events[2])
        );
        let full_tag = tag_of(&render_batch(&topics, start, &full, &HeaderMap::new()));
        let newest_tag = tag_of(&render_batch(&topics, start, &newest, &HeaderMap::new()));
        assert_ne!(full_tag, newest_tag);
        let asked = if_none_match(full_tag.to_str().expect("ascii"));
        assert_eq!(render_batch(&topics, start, &newest, &asked).status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_wildcard_if_none_match_never_gives_304() {
        let hub = Hub::new();
        let topics = [topic("t")];
        let cursor = fetch(&hub, &topics, Cursor::Now).await.cursor;
        let idle = fetch(&hub, &topics, cursor).await;
        assert_eq!(render_batch(&topics, cursor, &idle, &if_none_match("*")).status(), StatusCode::OK);
        hub.publish(&topics[0], NewEvent::new(serde_json::json!(1))).await.expect("publish");
        let busy = fetch(&hub, &topics, cursor).await;
        assert_eq!(render_batch(&topics, cursor, &busy, &if_none_match("*")).status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_tag_depends_on_the_topic_set_but_not_on_its_order_or_repeats() {
        let hub = Hub::new();
        let (a, b) = (topic("a"), topic("b"));
        let start = fetch(&hub, &[a.clone(), b.clone()], Cursor::Now).await.cursor;
        for (name, n) in [(&a, 1), (&b, 2), (&a, 3)] {
            hub.publish(name, NewEvent::new(serde_json::json!(n))).await.expect("publish");
        }
        // Both answers run from a's first event to a's second, but only one holds b's event.
        let only_a = [a.clone()];
        let a_batch = fetch(&hub, &only_a, start).await;
        let both = [a.clone(), b.clone()];
        let both_batch = fetch(&hub, &both, start).await;
        assert_eq!(a_batch.events.len(), 2);
        assert_eq!(both_batch.events.len(), 3);
        assert_eq!(a_batch.cursor, both_batch.cursor);

        let a_tag = tag_of(&render_batch(&only_a, start, &a_batch, &HeaderMap::new()));
        let stale = if_none_match(a_tag.to_str().expect("ascii"));
        assert_eq!(render_batch(&both, start, &both_batch, &stale).status(), StatusCode::OK);

        let same_set = [b.clone(), a.clone(), b.clone()];
        let both_tag = tag_of(&render_batch(&both, start, &both_batch, &HeaderMap::new()));
        assert_eq!(tag_of(&render_batch(&same_set, start, &both_batch, &HeaderMap::new())), both_tag);
        assert_ne!(a_tag, both_tag);
    }

    #[tokio::test]
    async fn an_answer_with_a_reset_has_its_own_tag() {
        let hub = Hub::new();
        let topics = [topic("t")];
        hub.publish(&topics[0], NewEvent::new(serde_json::json!(1))).await.expect("publish");
        let stale = Cursor::at(Epoch::from_u32(hub.epoch().as_u32() ^ 1), 1);
        let mut batch = fetch(&hub, &topics, stale).await;
        assert!(batch.reset.is_some(), "a cursor of another epoch is a reset");
        let with_reset = tag_of(&render_batch(&topics, stale, &batch, &HeaderMap::new()));
        assert!(with_reset.to_str().expect("ascii").contains(".reset."), "{with_reset:?}");

        // The same events without the reset are another answer, so the tag must not match.
        batch.reset = None;
        let headers = if_none_match(with_reset.to_str().expect("ascii"));
        let response = render_batch(&topics, stale, &batch, &headers);
        assert_eq!(response.status(), StatusCode::OK);
        assert_ne!(tag_of(&response), with_reset);
    }
}
