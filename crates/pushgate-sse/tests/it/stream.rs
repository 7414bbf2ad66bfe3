//! `GET /v1/sse` over a real socket with a real client: delivery, resumption, resets, headers and
//! request errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{raw, start, topic};
use pushgate_hub::{Cursor, Epoch, HistoryLimit, Hub, NewEvent};
use pushgate_sse::SseConfig;
use serde_json::json;

#[tokio::test]
async fn an_event_arrives_as_the_event_object_with_its_cursor_as_id() {
    let server = start(Hub::new(), SseConfig::default()).await;
    let mut stream = server.events("topic=chat&topic=other", None).await;

    let event = server
        .hub
        .publish(&topic("chat"), NewEvent::new(json!({"text": "hi"})).event_type("alert"))
        .await
        .unwrap();
    let other = server.hub.publish(&topic("other"), NewEvent::new(json!(null))).await.unwrap();

    let got = stream.event().await;
    assert_eq!(got.event, "alert");
    assert_eq!(got.id, event.cursor().to_string());
    assert_eq!(got.data.as_bytes(), &pushgate_http::event_json(&event)[..]);
    let object: serde_json::Value = serde_json::from_str(&got.data).unwrap();
    assert_eq!(
        object,
        json!({"topic": "chat", "seq": 1, "id": event.cursor().to_string(), "event": "alert",
               "data": {"text": "hi"}, "ts": event.timestamp_ms()})
    );

    let got = stream.event().await;
    assert_eq!((got.event.as_str(), got.id), ("message", other.cursor().to_string()));
}

#[tokio::test]
async fn the_response_is_an_uncached_unbuffered_event_stream_starting_with_retry() {
    let server = start(Hub::new(), SseConfig::default()).await;
    let response = server.get("topic=t", None).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");

    let mut stream = raw(response);
    assert_eq!(stream.read_until("\n\n").await, "retry: 2000\n\n");
}

/// Resumes after a disconnect with `cursor` given as the header or as `last_event_id`, and
/// checks the missed events come exactly once: the next live event follows them directly.
#[tokio::test]
async fn a_reconnect_gets_exactly_the_missed_events_once() {
    let server = start(Hub::new(), SseConfig::default()).await;
    let t = topic("t");
    let publish = |n: u64| {
        let hub = server.hub.clone();
        let t = t.clone();
        async move { hub.publish(&t, NewEvent::new(json!(n))).await.unwrap() }
    };
    let seq = |event: &eventsource_stream::Event| -> u64 {
        serde_json::from_str::<serde_json::Value>(&event.data).unwrap()["seq"].as_u64().unwrap()
    };

    let mut next = 1;
    for via_header in [true, false] {
        let mut stream = server.events("topic=t", None).await;
        publish(next).await;
        let last = stream.event().await;
        assert_eq!(seq(&last), next);
        drop(stream);
        server.wait_presence("t", "sse", 0).await;

        // Missed while disconnected.
        publish(next + 1).await;
        publish(next + 2).await;

        let mut stream = if via_header {
            server.events("topic=t", Some(&last.id)).await
        } else {
            server.events(&format!("topic=t&last_event_id={}", last.id), None).await
        };
        assert_eq!(seq(&stream.event().await), next + 1);
        assert_eq!(seq(&stream.event().await), next + 2);
        publish(next + 3).await;
        assert_eq!(seq(&stream.event().await), next + 3);
        next += 4;
    }
}

#[tokio::test]
async fn a_cursor_from_another_epoch_gets_a_reset_first_then_the_retained_events() {
    let server = start(Hub::new(), SseConfig::default()).await;
    let t = topic("t");
    for n in 1..=2 {
        server.hub.publish(&t, NewEvent::new(json!(n))).await.unwrap();
    }
    let stale = Cursor::at(Epoch::from_u32(server.hub.epoch().as_u32() ^ 1), 5);
    let mut stream = server.events(&format!("topic=t&cursor={stale}"), None).await;

    let reset = stream.event().await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.id, Cursor::at(server.hub.epoch(), 0).to_string());
    let body: serde_json::Value = serde_json::from_str(&reset.data).unwrap();
    assert_eq!(
        body,
        json!({"reason": "epoch_changed",
               "topics": [{"topic": "t", "missed": {"at_least": 0, "at_most": null}, "resume_seq": 1}]})
    );
    for seq in 1..=2 {
        let event = stream.event().await;
        assert_eq!(serde_json::from_str::<serde_json::Value>(&event.data).unwrap()["seq"], seq);
    }

    // Reconnecting with the reset's id, as a browser would right after it, resets no more.
    let mut again = server.events("topic=t", Some(&reset.id)).await;
    let first = again.event().await;
    assert_eq!(
        (
            first.event.as_str(),
            serde_json::from_str::<serde_json::Value>(&first.data).unwrap()["seq"].as_u64()
        ),
        ("message", Some(1))
    );
}

#[tokio::test]
async fn an_expired_cursor_gets_a_reset_whose_id_resumes_without_another_reset() {
    let hub = Hub::builder().history(HistoryLimit::default().max_events(2)).build();
    let server = start(hub, SseConfig::default()).await;
    let t = topic("t");
    let mut published = Vec::new();
    for n in 1..=5 {
        published.push(server.hub.publish(&t, NewEvent::new(json!(n))).await.unwrap());
    }
    // Events 2 and 3 are gone; 4 and 5 are retained.
    let mut stream = server.events("topic=t", Some(&published[0].cursor().to_string())).await;
    let reset = stream.event().await;
    assert_eq!(reset.event, "reset");
    let body: serde_json::Value = serde_json::from_str(&reset.data).unwrap();
    assert_eq!(body["reason"], "expired");
    assert_eq!(body["topics"][0]["resume_seq"], 4);
    assert_eq!(body["topics"][0]["missed"]["at_least"], 1);
    assert_eq!(reset.id, published[2].cursor().to_string());
    assert_eq!(stream.event().await.id, published[3].cursor().to_string());

    let mut again = server.events("topic=t", Some(&reset.id)).await;
    let first = again.event().await;
    assert_eq!((first.event.as_str(), first.id), ("message", published[3].cursor().to_string()));
}

/// Large events are written as their shared frames rather than joined into one buffer per
/// subscriber; over the wire a burst of them, mixed with small ones, still arrives whole and in
/// order, both for a client catching up from history and for one following live.
#[tokio::test]
async fn a_burst_of_large_events_arrives_intact_and_in_order() {
    let hub = Hub::builder().history(HistoryLimit::default().max_bytes(64 << 20)).build();
    let server = start(hub, SseConfig::default()).await;
    let t = topic("t");
    let mut live = server.events("topic=t", None).await;
    server.wait_presence("t", "sse", 1).await;

    let mut published = Vec::new();
    for n in 0..16u8 {
        // Every other event is just under the hub's 1 MiB data limit, each with its own filler.
        let data = if n % 2 == 0 {
            json!({"n": n, "pad": char::from(b'a' + n).to_string().repeat((1 << 20) - 64)})
        } else {
            json!({"n": n})
        };
        published.push(server.hub.publish(&t, NewEvent::new(data)).await.unwrap());
    }
    let mut catching_up = server.events("topic=t&cursor=oldest", None).await;

    for stream in [&mut live, &mut catching_up] {
        for event in &published {
            let got = stream.event().await;
            assert_eq!(got.id, event.cursor().to_string());
            assert!(got.data.as_bytes() == &pushgate_http::event_json(event)[..], "seq {}", event.seq());
        }
    }
}

#[tokio::test]
async fn bad_requests_get_json_errors_before_any_stream() {
    let server = start(Hub::new(), SseConfig::default()).await;
    for (query, header, status, code) in [
        ("topic=t&cursor=junk", None, 400, "invalid_cursor"),
        ("topic=t", Some("not-a-cursor"), 400, "invalid_cursor"),
        ("", None, 400, "no_topics"),
        ("topic=a%20b", None, 400, "invalid_topic"),
    ] {
        let response = server.get(query, header).await;
        assert_eq!(response.status(), status, "{query}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}");
    }

    // A cursor of this epoch past the newest event was never issued.
    let ahead = Cursor::at(server.hub.epoch(), 99);
    let response = server.get(&format!("topic=t&cursor={ahead}"), None).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"]["code"], "cursor_ahead");
}
