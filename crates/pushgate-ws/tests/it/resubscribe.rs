//! `subscribe` frames with a cursor on a connection that already follows topics: the added
//! topics start at the cursor, the followed ones go on from the connection's position, and
//! neither loses nor repeats an event, whether the cursor is behind the position, ahead of it,
//! or a keyword.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use pushgate_hub::{Cursor, Epoch, HistoryLimit, Hub};
use pushgate_ws::WsConfig;
use serde_json::{Value, json};
use support::*;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;

#[tokio::test]
async fn a_cursor_behind_the_position_adds_the_topic_from_there_without_repeating_the_others() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "topic=a").await;

    let a1 = publish(&hub, "a", json!("a1")).await;
    let b1 = publish(&hub, "b", json!("b1")).await;
    let a2 = publish(&hub, "a", json!("a2")).await;
    let b2 = publish(&hub, "b", json!("b2")).await;
    assert_eq!(next_json(&mut client).await, event_frame(&a1));
    assert_eq!(next_json(&mut client).await, event_frame(&a2));

    // b from just after a1: b1 and b2, but a2 was delivered already.
    send(&mut client, json!({"type": "subscribe", "topics": ["b"], "cursor": a1.cursor().to_string()})).await;
    let subscribed = next_json(&mut client).await;
    assert_eq!(subscribed["topics"], json!(["a", "b"]));
    // The position from which the whole set resumes without loss.
    assert_eq!(subscribed["cursor"], a1.cursor().to_string());
    assert_eq!(next_json(&mut client).await, event_frame(&b1));
    assert_eq!(next_json(&mut client).await, event_frame(&b2));

    let live = [publish(&hub, "a", json!("a3")).await, publish(&hub, "b", json!("b3")).await];
    for event in &live {
        assert_eq!(next_json(&mut client).await, event_frame(event));
    }
}

/// The connection's position is behind the cursor when its client has not read everything
/// yet: here its socket is full, so events of `a` wait in the hub. A cursor ahead must not skip
/// them, and the added topic must start at the cursor all the same.
#[tokio::test]
async fn a_cursor_ahead_of_the_position_skips_nothing_of_the_followed_topics() {
    const EVENTS: u64 = 100;
    let hub = Hub::new();
    // Small buffers everywhere: a few events fill the connection and the rest wait in the hub.
    let listener = TcpSocket::new_v4().unwrap();
    listener.set_send_buffer_size(4096).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = WsConfig::default().write_buffer_size(4096).max_write_buffer_size(16 * 1024);
    let addr = serve_on(listener.listen(64).unwrap(), &hub, config);
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = bounded(socket.connect(addr)).await.unwrap();
    let (mut client, _) =
        bounded(tokio_tungstenite::client_async(url(addr, "topic=a"), MaybeTlsStream::Plain(stream)))
            .await
            .unwrap();
    assert_eq!(ws_presence(&hub, "a"), 1);

    let pad = "x".repeat(8 * 1024);
    for n in 1..=EVENTS {
        publish(&hub, "a", json!({"n": n, "pad": pad})).await;
    }
    let b1 = publish(&hub, "b", json!("b1")).await;
    let b2 = publish(&hub, "b", json!("b2")).await;
    // Let the connection write what fits and get stuck.
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&mut client, json!({"type": "subscribe", "topics": ["b"], "cursor": b1.cursor().to_string()})).await;

    let (mut events, mut replies) = (Vec::new(), 0);
    while events.len() < EVENTS as usize + 1 {
        let frame = next_json(&mut client).await;
        match frame["type"].as_str() {
            Some("event") => events.push((frame["topic"].clone(), frame["seq"].as_u64().unwrap())),
            Some("subscribed") => replies += 1,
            _ => panic!("unexpected {frame}"),
        }
    }
    let mut expected: Vec<(Value, u64)> = (1..=EVENTS).map(|seq| (json!("a"), seq)).collect();
    expected.push((json!("b"), b2.seq()));
    assert_eq!(events, expected);
    assert_eq!(replies, 1);
    send(&mut client, json!({"type": "ping", "id": "end"})).await;
    assert_eq!(next_json(&mut client).await, json!({"type": "pong", "id": "end"}));
}

#[tokio::test]
async fn now_oldest_and_a_cursor_of_another_epoch_apply_to_the_added_topics_only() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "topic=a").await;
    let a1 = publish(&hub, "a", json!("a1")).await;
    assert_eq!(next_json(&mut client).await, event_frame(&a1));
    for name in ["b", "c", "d"] {
        publish(&hub, name, json!(format!("{name}1"))).await;
    }

    // `now`: b starts live; its history is not delivered.
    send(&mut client, json!({"type": "subscribe", "topics": ["b"], "cursor": "now"})).await;
    assert_eq!(next_json(&mut client).await["topics"], json!(["a", "b"]));

    // `oldest`: c's history, and nothing of a or b again.
    send(&mut client, json!({"type": "subscribe", "topics": ["c"], "cursor": "oldest"})).await;
    assert_eq!(next_json(&mut client).await["topics"], json!(["a", "b", "c"]));
    let c1 = next_json(&mut client).await;
    assert_eq!((&c1["topic"], &c1["seq"]), (&json!("c"), &json!(1)));

    // Another epoch: a reset for d only, d's history, and nothing else again.
    let stale = Cursor::at(Epoch::from_u32(hub.epoch().as_u32() ^ 1), 9);
    send(&mut client, json!({"type": "subscribe", "topics": ["d"], "cursor": stale.to_string()})).await;
    assert_eq!(next_json(&mut client).await["topics"], json!(["a", "b", "c", "d"]));
    let reset = next_json(&mut client).await;
    assert_eq!(
        reset,
        json!({"type": "reset", "reason": "epoch_changed",
               "topics": [{"topic": "d", "missed": {"at_least": 0, "at_most": null}, "resume_seq": 1}]})
    );
    let d1 = next_json(&mut client).await;
    assert_eq!((&d1["topic"], &d1["seq"]), (&json!("d"), &json!(1)));

    let live = [
        publish(&hub, "a", json!("a2")).await,
        publish(&hub, "b", json!("b2")).await,
        publish(&hub, "c", json!("c2")).await,
        publish(&hub, "d", json!("d2")).await,
    ];
    for event in &live {
        assert_eq!(next_json(&mut client).await, event_frame(event));
    }
}

#[tokio::test]
async fn a_cursor_ahead_of_the_newest_event_is_refused_and_the_subscription_stays() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "topic=a").await;
    let ahead = Cursor::at(hub.epoch(), 99);
    send(&mut client, json!({"type": "subscribe", "topics": ["b"], "cursor": ahead.to_string()})).await;
    let error = next_json(&mut client).await;
    assert_eq!((&error["error"]["code"], &error["request"]), (&json!("cursor_ahead"), &json!("subscribe")));
    assert_eq!(ws_presence(&hub, "b"), 0);
    let a1 = publish(&hub, "a", json!("a1")).await;
    assert_eq!(next_json(&mut client).await, event_frame(&a1));
}

/// Reopening from before the connection's position must not report losses the followed topics
/// suffered before it: a1 is gone, but it was delivered.
#[tokio::test]
async fn a_loss_before_the_position_is_not_reported_again() {
    let hub = Hub::builder().history(HistoryLimit::default().max_events(2)).build();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "topic=a").await;
    for n in 1..=3 {
        let event = publish(&hub, "a", json!(n)).await;
        assert_eq!(next_json(&mut client).await, event_frame(&event));
    }
    let b1 = publish(&hub, "b", json!("b1")).await;
    let start = Cursor::at(hub.epoch(), 0);
    send(&mut client, json!({"type": "subscribe", "topics": ["b"], "cursor": start.to_string()})).await;
    assert_eq!(next_json(&mut client).await["type"], "subscribed");
    assert_eq!(next_json(&mut client).await, event_frame(&b1));
    let a4 = publish(&hub, "a", json!(4)).await;
    assert_eq!(next_json(&mut client).await, event_frame(&a4));
}
