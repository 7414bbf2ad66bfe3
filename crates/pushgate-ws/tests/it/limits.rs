//! `/v1/ws` limits over real sockets: message size (1009), slow consumers (4008) and the
//! protocol heartbeat (1001).
//!
//! These run on real time: tokio's paused clock would jump ahead whenever the runtime waits for
//! socket I/O, firing heartbeats early. Intervals are a few hundred milliseconds and every wait
//! is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pushgate_hub::Hub;
use pushgate_ws::WsConfig;
use serde_json::json;
use support::*;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_message_over_the_limit_closes_with_1009() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default().max_message_size(1024)).await;
    let mut client = connect(addr, "topic=t").await;

    // Just under the limit is fine.
    let padded = json!({"type": "ping", "id": "x".repeat(900)}).to_string();
    assert!(padded.len() < 1024);
    bounded(client.send(Message::text(padded))).await.unwrap();
    assert_eq!(next_json(&mut client).await["type"], "pong");

    bounded(client.send(Message::text("x".repeat(70_000)))).await.unwrap();
    assert_eq!(close_code(&mut client).await, Some(1009));
    eventually(|| ws_presence(&hub, "t") == 0).await;
}

#[tokio::test]
async fn the_default_limit_is_64_kib() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "").await;
    bounded(client.send(Message::text(" ".repeat(64 * 1024 + 1)))).await.unwrap();
    assert_eq!(close_code(&mut client).await, Some(1009));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_4008_while_a_fast_one_gets_everything() {
    const EVENTS: u64 = 200;
    let hub = Hub::new();
    // Small kernel buffers (accepted sockets inherit the listener's) make the slow client's
    // socket fill after a few events instead of after megabytes.
    let listener = TcpSocket::new_v4().unwrap();
    listener.set_send_buffer_size(4096).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let config =
        WsConfig::default().max_backlog(4).write_buffer_size(4096).close_timeout(Duration::from_secs(10));
    let addr = serve_on(listener.listen(64).unwrap(), &hub, config);

    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = bounded(socket.connect(addr)).await.unwrap();
    let (mut slow, _) =
        bounded(tokio_tungstenite::client_async(url(addr, "topic=firehose"), stream)).await.unwrap();
    let mut fast = connect(addr, "topic=firehose").await;
    assert_eq!(ws_presence(&hub, "firehose"), 2);

    let pad = "x".repeat(8 * 1024);
    for n in 1..=EVENTS {
        let event = publish(&hub, "firehose", json!({"n": n, "pad": pad})).await;
        // Paced by the fast client, which therefore never falls behind.
        assert_eq!(next_json(&mut fast).await, event_frame(&event));
    }
    // When it finally reads: a gapless prefix of the events, then, as soon as its socket has
    // room again and the server sees how far behind it is, a Close with 4008.
    let mut seen = 0;
    let code = loop {
        match bounded(slow.next()).await {
            Some(Ok(Message::Text(text))) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                seen += 1;
                assert_eq!(frame["seq"], seen);
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, Some(4008));
    assert!(seen < EVENTS / 2, "received {seen} of {EVENTS}");
    eventually(|| ws_presence(&hub, "firehose") == 1).await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_by_the_heartbeat() {
    let hub = Hub::new();
    let listener = TcpSocket::new_v4().unwrap();
    listener.set_send_buffer_size(4096).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = WsConfig::default()
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_millis(200));
    let addr = serve_on(listener.listen(64).unwrap(), &hub, config);
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = bounded(socket.connect(addr)).await.unwrap();
    let (mut stalled, _) =
        bounded(tokio_tungstenite::client_async(url(addr, "topic=flood"), stream)).await.unwrap();

    let pad = "x".repeat(8 * 1024);
    for n in 1..=100 {
        publish(&hub, "flood", json!({"n": n, "pad": pad})).await;
    }
    // Its socket is full and its Pings go unanswered: the server gives up on it.
    eventually(|| ws_presence(&hub, "flood") == 0).await;

    // What reached its socket is a gapless prefix; then the stream ends, with or without a
    // Close frame (there was no room left to write one).
    let mut seen = 0;
    loop {
        match bounded(stalled.next()).await {
            Some(Ok(Message::Text(text))) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                seen += 1;
                assert_eq!(frame["seq"], seen);
            }
            Some(Ok(Message::Ping(_))) => {}
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1001));
                break;
            }
            Some(Err(_)) | None => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(seen < 100, "received all {seen}");
}

#[tokio::test]
async fn replaying_requested_history_is_not_slowness() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default().max_backlog(4)).await;
    for n in 1..=50 {
        publish(&hub, "h", json!({"n": n, "pad": "x".repeat(4096)})).await;
    }
    let mut client = connect(addr, "topic=h&cursor=oldest").await;
    for seq in 1..=50 {
        assert_eq!(next_json(&mut client).await["seq"], seq);
    }
    send(&mut client, json!({"type": "ping", "id": "still here"})).await;
    assert_eq!(next_json(&mut client).await["type"], "pong");
}

#[tokio::test]
async fn the_server_pings_and_closes_a_silent_client_with_1001() {
    let hub = Hub::new();
    let config = WsConfig::default()
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(500));
    let addr = serve(&hub, config).await;
    let mut lively = connect(addr, "topic=t").await;
    let mut silent = connect(addr, "topic=t").await;

    // A client that keeps reading answers Pings (tokio-tungstenite does so automatically) and
    // stays connected well past interval + timeout.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1200);
    while let Ok(message) = tokio::time::timeout_at(deadline, lively.next()).await {
        match message {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 5, "{pings} pings");
    send(&mut lively, json!({"type": "ping", "id": 1})).await;
    assert_eq!(next_json(&mut lively).await, json!({"type": "pong", "id": 1}));

    // The silent one read nothing meanwhile: it finds one Ping, then the Close.
    match bounded(silent.next()).await {
        Some(Ok(Message::Ping(_))) => {}
        other => panic!("expected a Ping, got {other:?}"),
    }
    assert_eq!(close_code(&mut silent).await, Some(1001));
    assert_eq!(ws_presence(&hub, "t"), 1);
}
