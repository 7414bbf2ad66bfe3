//! `/v1/ws` over a real socket with a real client: subscribing, resuming, resets, topic changes,
//! publishing, bad frames, pings, presence, shutdown and refused handshakes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use futures_util::{SinkExt, StreamExt};
use pushgate_hub::{HistoryLimit, Hub};
use pushgate_ws::WsConfig;
use serde_json::{Value, json};
use support::*;
use tokio_tungstenite::tungstenite::{Bytes, Message};

#[tokio::test]
async fn a_query_subscription_receives_the_exact_event_object() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "topic=chat").await;

    let event = publish(&hub, "chat", json!({"text": "hi", "n": [1, 2]})).await;
    let frame = next_json(&mut client).await;
    assert_eq!(frame, event_frame(&event));
    assert_eq!(frame["type"], "event");
    assert_eq!(frame["id"], event.cursor().to_string());
}

#[tokio::test]
async fn a_subscribe_frame_subscribes_from_now() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let before = publish(&hub, "news", json!("before")).await;
    let mut client = connect(addr, "").await;

    send(&mut client, json!({"type": "subscribe", "topics": ["news"]})).await;
    let subscribed = next_json(&mut client).await;
    assert_eq!(subscribed["type"], "subscribed");
    assert_eq!(subscribed["topics"], json!(["news"]));
    assert_eq!(subscribed["cursor"], before.cursor().to_string());

    let event = publish(&hub, "news", json!("after")).await;
    assert_eq!(next_json(&mut client).await, event_frame(&event));
}

#[tokio::test]
async fn resuming_with_the_last_id_gets_exactly_the_missed_events() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut first = connect(addr, "topic=r").await;
    for n in 1..=3 {
        publish(&hub, "r", json!(n)).await;
    }
    let mut last = Value::Null;
    for seq in 1..=3 {
        last = next_json(&mut first).await;
        assert_eq!(last["seq"], seq);
    }
    bounded(first.close(None)).await.unwrap();
    drop(first);

    let missed = [publish(&hub, "r", json!(4)).await, publish(&hub, "r", json!(5)).await];
    let cursor = last["id"].as_str().unwrap();
    let mut second = connect(addr, &format!("topic=r&cursor={cursor}")).await;
    for event in &missed {
        assert_eq!(next_json(&mut second).await, event_frame(event));
    }
    // Nothing else was waiting: the next frame is the next event.
    let live = publish(&hub, "r", json!(6)).await;
    assert_eq!(next_json(&mut second).await, event_frame(&live));
}

#[tokio::test]
async fn a_stale_cursor_gets_a_reset_frame_first() {
    let hub = Hub::builder().history(HistoryLimit::default().max_events(2)).build();
    let addr = serve(&hub, WsConfig::default()).await;
    let first = publish(&hub, "s", json!(1)).await;
    let mut retained = Vec::new();
    for n in 2..=5 {
        retained.push(publish(&hub, "s", json!(n)).await);
    }

    let mut client = connect(addr, &format!("topic=s&cursor={}", first.cursor())).await;
    let reset = next_json(&mut client).await;
    assert_eq!(reset["type"], "reset");
    assert_eq!(reset["reason"], "expired");
    assert_eq!(reset["topics"][0]["topic"], "s");
    assert_eq!(reset["topics"][0]["resume_seq"], 4);
    // Exactly the reset object every transport reports for this cursor.
    let batch = hub.fetch(&[topic("s")], first.cursor(), &Default::default()).await.unwrap();
    let mut expected = pushgate_http::reset_json(&batch.reset.unwrap());
    expected["type"] = json!("reset");
    assert_eq!(reset, expected);
    for event in &retained[2..] {
        assert_eq!(next_json(&mut client).await, event_frame(event));
    }
}

#[tokio::test]
async fn subscribe_and_unsubscribe_change_the_topic_set_without_loss() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "topic=a").await;

    let a1 = publish(&hub, "a", json!("a1")).await;
    assert_eq!(next_json(&mut client).await, event_frame(&a1));
    send(&mut client, json!({"type": "subscribe", "topics": ["b", "c"]})).await;
    let subscribed = next_json(&mut client).await;
    assert_eq!(subscribed["type"], "subscribed");
    assert_eq!(subscribed["topics"], json!(["a", "b", "c"]));
    assert_eq!(subscribed["cursor"], a1.cursor().to_string());
    assert_eq!(ws_presence(&hub, "b"), 1);

    let events = [
        publish(&hub, "b", json!("b1")).await,
        publish(&hub, "a", json!("a2")).await,
        publish(&hub, "c", json!("c1")).await,
    ];
    for event in &events {
        assert_eq!(next_json(&mut client).await, event_frame(event));
    }

    send(&mut client, json!({"type": "unsubscribe", "topics": ["a", "c", "never"]})).await;
    let subscribed = next_json(&mut client).await;
    assert_eq!(subscribed["topics"], json!(["b"]));
    assert_eq!(subscribed["cursor"], events[2].cursor().to_string());
    assert_eq!((ws_presence(&hub, "a"), ws_presence(&hub, "b")), (0, 1));
    publish(&hub, "a", json!("ignored")).await;
    let b2 = publish(&hub, "b", json!("b2")).await;
    assert_eq!(next_json(&mut client).await, event_frame(&b2));

    // Unsubscribing from everything leaves an idle connection that can subscribe again,
    // from where it stood.
    send(&mut client, json!({"type": "unsubscribe", "topics": ["b"]})).await;
    let idle = next_json(&mut client).await;
    assert_eq!(idle, json!({"type": "subscribed", "topics": [], "cursor": b2.cursor().to_string()}));
    assert_eq!(ws_presence(&hub, "b"), 0);
    let b3 = publish(&hub, "b", json!("b3")).await;
    send(&mut client, json!({"type": "subscribe", "topics": ["b"]})).await;
    assert_eq!(next_json(&mut client).await["topics"], json!(["b"]));
    assert_eq!(next_json(&mut client).await, event_frame(&b3));
}

#[tokio::test]
async fn changing_topics_while_events_flow_loses_and_repeats_nothing() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "topic=a").await;

    let publisher = tokio::spawn({
        let hub = hub.clone();
        async move {
            for n in 1..=200 {
                publish(&hub, "a", json!(n)).await;
                if n % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    for name in ["b", "c", "d"] {
        send(&mut client, json!({"type": "subscribe", "topics": [name]})).await;
    }
    send(&mut client, json!({"type": "unsubscribe", "topics": ["b", "c"]})).await;
    bounded(publisher).await.unwrap();

    let (mut seqs, mut replies) = (Vec::new(), 0);
    while seqs.len() < 200 || replies < 4 {
        let frame = next_json(&mut client).await;
        match frame["type"].as_str() {
            Some("event") => seqs.push(frame["seq"].as_u64().unwrap()),
            Some("subscribed") => replies += 1,
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    send(&mut client, json!({"type": "ping", "id": "end"})).await;
    assert_eq!(next_json(&mut client).await, json!({"type": "pong", "id": "end"}));
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_lives_on() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "").await;

    let expect_error = |frame: Value, code: &str, request: Value| {
        assert_eq!(frame["type"], "error", "{frame}");
        assert_eq!(frame["error"]["code"], code, "{frame}");
        assert!(frame["error"]["message"].is_string());
        assert_eq!(frame["request"], request, "{frame}");
    };
    bounded(client.send(Message::text("{not json"))).await.unwrap();
    expect_error(next_json(&mut client).await, "invalid_json", Value::Null);
    send(&mut client, json!({"type": "shout"})).await;
    expect_error(next_json(&mut client).await, "invalid_json", json!("shout"));
    bounded(client.send(Message::Binary(Bytes::from_static(b"\x00\x01")))).await.unwrap();
    expect_error(next_json(&mut client).await, "invalid_json", Value::Null);
    send(&mut client, json!({"type": "subscribe", "topics": ["no spaces"]})).await;
    expect_error(next_json(&mut client).await, "invalid_topic", json!("subscribe"));
    send(&mut client, json!({"type": "subscribe", "topics": ["t"], "cursor": "garbage"})).await;
    expect_error(next_json(&mut client).await, "invalid_cursor", json!("subscribe"));
    let ahead = format!("{}-ffff", hub.epoch());
    send(&mut client, json!({"type": "subscribe", "topics": ["t"], "cursor": ahead})).await;
    expect_error(next_json(&mut client).await, "cursor_ahead", json!("subscribe"));
    send(&mut client, json!({"type": "publish", "topic": "t", "event": "bad type!", "data": 1})).await;
    expect_error(next_json(&mut client).await, "invalid_event_type", json!("publish"));

    send(&mut client, json!({"type": "ping", "id": {"still": "alive"}})).await;
    assert_eq!(next_json(&mut client).await, json!({"type": "pong", "id": {"still": "alive"}}));
}

#[tokio::test]
async fn a_publish_frame_is_answered_and_delivered_to_other_clients() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut reader = connect(addr, "topic=p").await;
    let mut writer = connect(addr, "").await;

    send(&mut writer, json!({"type": "publish", "topic": "p", "event": "tick", "data": {"n": 1}})).await;
    let published = next_json(&mut writer).await;
    assert_eq!(published["type"], "published");
    assert_eq!(published["topic"], "p");
    assert_eq!(published["seq"], 1);

    let event = next_json(&mut reader).await;
    assert_eq!(event["type"], "event");
    assert_eq!(
        (&event["event"], &event["data"], &event["seq"]),
        (&json!("tick"), &json!({"n": 1}), &json!(1))
    );
    assert_eq!(event["id"], published["id"]);

    // `null` is data like any other.
    send(&mut writer, json!({"type": "publish", "topic": "p", "data": null})).await;
    assert_eq!(next_json(&mut writer).await["seq"], 2);
    let event = next_json(&mut reader).await;
    assert_eq!((&event["event"], &event["data"]), (&json!("message"), &Value::Null));
}

#[tokio::test]
async fn application_and_protocol_pings_are_answered() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut client = connect(addr, "").await;

    send(&mut client, json!({"type": "ping", "id": 42})).await;
    assert_eq!(next_json(&mut client).await, json!({"type": "pong", "id": 42}));

    bounded(client.send(Message::Ping(Bytes::from_static(b"are you there")))).await.unwrap();
    match bounded(client.next()).await {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a Pong, got {other:?}"),
    }
}

#[tokio::test]
async fn presence_counts_ws_subscribers_while_connected() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut one = connect(addr, "topic=room").await;
    let two = connect(addr, "topic=room&topic=hall").await;
    assert_eq!(ws_presence(&hub, "room"), 2);
    assert_eq!(ws_presence(&hub, "hall"), 1);

    bounded(one.close(None)).await.unwrap();
    eventually(|| ws_presence(&hub, "room") == 1).await;
    drop(two); // no Close frame: the socket just goes away
    eventually(|| ws_presence(&hub, "room") == 0 && ws_presence(&hub, "hall") == 0).await;
}

#[tokio::test]
async fn closing_the_hub_closes_every_connection_with_1001() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let mut subscribed = connect(addr, "topic=t").await;
    let mut idle = connect(addr, "").await;

    hub.close();
    assert_eq!(close_code(&mut subscribed).await, Some(1001));
    assert_eq!(close_code(&mut idle).await, Some(1001));
    assert_eq!(ws_presence(&hub, "t"), 0);

    // New connections are refused with the usual JSON error.
    let refused = bounded(tokio_tungstenite::connect_async(url(addr, "topic=t"))).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else { panic!("{refused:?}") };
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn a_plain_get_is_told_to_upgrade() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let response = bounded(reqwest::get(format!("http://{addr}/v1/ws?topic=t"))).await.unwrap();
    assert_eq!(response.status(), 426);
    assert_eq!(response.headers()["upgrade"], "websocket");
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = bounded(response.json()).await.unwrap();
    assert_eq!(body["error"]["code"], "upgrade_required");

    let post = bounded(reqwest::Client::new().post(format!("http://{addr}/v1/ws")).send()).await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET");
}

#[tokio::test]
async fn bad_subscribe_queries_are_http_errors_before_the_upgrade() {
    let hub = Hub::new();
    let addr = serve(&hub, WsConfig::default()).await;
    let ahead = format!("topic=t&cursor={}-ff", hub.epoch());
    for (query, code) in [
        ("topic=a%20b", "invalid_topic"),
        ("topic=t&cursor=nope", "invalid_cursor"),
        (&ahead, "cursor_ahead"),
    ] {
        let refused = bounded(tokio_tungstenite::connect_async(url(addr, query))).await;
        let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
            panic!("{query}: {refused:?}")
        };
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], code, "{query}");
    }
    assert_eq!(ws_presence(&hub, "t"), 0);
}
