//! The life of an SSE connection over a real socket: heartbeats, slow consumers, shutdown, and
//! presence following the connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::{WAIT, events, raw, serve, start, topic};
use pushgate_hub::{Hub, NewEvent};
use pushgate_sse::SseConfig;
use serde_json::json;
use tokio::time::Instant;

/// Paused time with real sockets: the runtime jumps the clock only when every task is idle and
/// no socket is ready, so the server's heartbeat timer fires every 15 virtual seconds exactly.
#[tokio::test(start_paused = true)]
async fn a_heartbeat_follows_each_silent_15_second_interval() {
    let server = start(Hub::new(), SseConfig::default()).await;
    let mut stream = raw(server.get("topic=t", None).await);
    // Virtual seconds: longer than a heartbeat interval.
    stream.wait = Duration::from_secs(60);
    assert_eq!(stream.read_until("\n\n").await, "retry: 2000\n\n");

    // Events every 10 s keep the stream busy: no heartbeat.
    for n in 0..3 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        server.hub.publish(&topic("t"), NewEvent::new(json!(n))).await.unwrap();
        let frame = stream.read_until("\n\n").await;
        assert!(frame.starts_with("id: "), "{frame:?}");
    }

    // A heartbeat goes out at the end of each 15 s interval in which nothing was sent: after
    // at least one and less than two intervals of silence, then one every interval.
    let quiet_since = Instant::now();
    assert_eq!(stream.read_until("\n\n").await, ": hb\n\n");
    let first = quiet_since.elapsed();
    assert!(first >= Duration::from_secs(15) && first < Duration::from_secs(30), "{first:?}");
    assert_eq!(stream.read_until("\n\n").await, ": hb\n\n");
    assert_eq!(quiet_since.elapsed(), first + Duration::from_secs(15));
}

/// One client stops reading while events keep coming; its socket buffers fill, its backlog
/// passes the limit, and when it reads again it finds an unbroken prefix of the events, then
/// `slow_consumer`, then the end. A second client that keeps up gets everything.
#[tokio::test]
async fn a_slow_consumer_is_cut_off_while_a_fast_one_gets_everything() {
    // A small send buffer on the listening socket (inherited by accepted ones) makes the slow
    // client's connection fill up after a few hundred KiB instead of megabytes.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let server = serve(socket.listen(64).unwrap(), Hub::new(), SseConfig::default().max_backlog(Some(8)));

    let slow = server.get("topic=t", None).await;
    let mut fast = server.events("topic=t", None).await;
    let (seen_tx, mut seen) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(event) = fast.next().await {
            let seq = serde_json::from_str::<serde_json::Value>(&event.data).unwrap()["seq"].as_u64();
            seen_tx.send(seq).await.unwrap();
        }
    });

    // 256 events of 8 KiB: 2 MiB, about four times what the slow connection buffers here.
    // Bursts of 4, each awaited by the fast client, keep its backlog under the limit.
    const EVENTS: u64 = 256;
    let payload = "x".repeat(8 * 1024);
    for burst in 0..EVENTS / 4 {
        for _ in 0..4 {
            server.hub.publish(&topic("t"), NewEvent::new(json!(payload))).await.unwrap();
        }
        for n in 1..=4 {
            let seq = tokio::time::timeout(WAIT, seen.recv()).await.unwrap().unwrap();
            assert_eq!(seq, Some(burst * 4 + n));
        }
    }

    let mut slow = events(slow);
    let mut delivered = 0;
    let last = loop {
        let event = slow.event().await;
        if event.event != "message" {
            break event;
        }
        delivered += 1;
        let seq = serde_json::from_str::<serde_json::Value>(&event.data).unwrap()["seq"].as_u64();
        assert_eq!(seq, Some(delivered));
    };
    assert!(delivered < EVENTS, "the slow client was never cut off");
    assert_eq!(last.event, "error");
    let error: serde_json::Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(error["code"], "slow_consumer");
    assert!(slow.next().await.is_none(), "the stream ends after the error");
    assert_eq!(server.hub.stats().lagged, 1);
    // Only the fast client is still subscribed.
    server.wait_presence("t", "sse", 1).await;
}

#[tokio::test]
async fn closing_the_hub_ends_streams_with_shutting_down() {
    let server = start(Hub::new(), SseConfig::default()).await;
    let mut stream = server.events("topic=t", None).await;
    server.hub.publish(&topic("t"), NewEvent::new(json!(1))).await.unwrap();
    assert_eq!(stream.event().await.event, "message");

    server.hub.close();
    let last = stream.event().await;
    assert_eq!(last.event, "error");
    let error: serde_json::Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(error["code"], "shutting_down");
    assert!(stream.next().await.is_none(), "the stream ends after the error");

    // New streams are refused.
    let response = server.get("topic=t", None).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"]["code"], "shutting_down");
}

#[tokio::test]
async fn presence_counts_a_connection_until_the_client_disconnects() {
    let server = start(Hub::new(), SseConfig::default()).await;
    let first = server.events("topic=room", None).await;
    let second = server.events("topics=room,other", None).await;
    assert_eq!(server.hub.presence(&topic("room")).by_label, [("sse".to_owned(), 2)]);

    drop(first);
    server.wait_presence("room", "sse", 1).await;
    drop(second);
    server.wait_presence("room", "sse", 0).await;
    server.wait_presence("other", "sse", 0).await;
    assert_eq!(server.hub.presence(&topic("room")).total, 0);
    assert_eq!(server.hub.stats().subscribers, 0);
}
