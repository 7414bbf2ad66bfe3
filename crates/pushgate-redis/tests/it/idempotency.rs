//! Idempotent publish across nodes: the append script deduplicates a key atomically, so the same
//! key on the same topic stores one event whichever of two nodes it reaches, and a repeat
//! answers the original numbers. The sender and the latest-value key travel through the log too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::Duration;

use pushgate_hub::{Cursor, FetchOptions, HubError, NewEvent, Published};
use pushgate_redis::RedisOptions;
use pushgate_testkit::RedisServer;
use serde_json::json;

use crate::common;

use common::{node, topic, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_on_two_nodes_stores_one_event_and_answers_the_original() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis.url(), RedisOptions::default()).await;
    let (b, state_b) = node(&redis.url(), RedisOptions::default()).await;
    let t = topic("orders");
    let keyed = || NewEvent::new(json!({"order": 7})).idempotency_key("src:42");
    let first = a.publish_idempotent(&t, keyed()).await.unwrap();
    let Published::New(original) = &first else { panic!("the first is stored: {first:?}") };
    let again = b.publish_idempotent(&t, keyed()).await.unwrap();
    let Published::Replayed(replay) = &again else { panic!("the repeat is a replay: {again:?}") };
    assert_eq!((replay.seq, replay.position, replay.epoch), (original.seq(), original.position(), a.epoch()));
    // Hub::publish says so as an error carrying the same numbers.
    let err = a.publish(&t, keyed()).await.unwrap_err();
    assert!(matches!(&err, HubError::Duplicate(r) if r == replay), "{err:?}");
    // Nothing more was stored: the next event takes seq 2 on either node.
    let next = b.publish(&t, NewEvent::new(json!("next"))).await.unwrap();
    assert_eq!(next.seq(), 2);
    until("b to apply", || state_b.applied_position() == next.position()).await;
    let batch = b.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(redis.command(&["XLEN", "pushgate:log"]).await.unwrap().trim(), ":2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_publishes_of_one_key_on_two_nodes_store_it_once() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis.url(), RedisOptions::default()).await;
    let (b, _) = node(&redis.url(), RedisOptions::default()).await;
    let t = topic("race");
    for round in 0..20 {
        let key = format!("k{round}");
        let on = |hub: pushgate_hub::Hub, t, key: String| {
            tokio::spawn(async move {
                hub.publish_idempotent(&t, NewEvent::new(json!(1)).idempotency_key(key)).await.unwrap()
            })
        };
        let (x, y) = (on(a.clone(), t.clone(), key.clone()), on(b.clone(), t.clone(), key));
        let (x, y) = (x.await.unwrap(), y.await.unwrap());
        assert_eq!(u8::from(x.is_replay()) + u8::from(y.is_replay()), 1, "round {round}: {x:?} {y:?}");
        assert_eq!((x.seq(), x.position()), (y.seq(), y.position()));
        assert_eq!(x.seq(), round + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_scoped_to_their_topic_and_forgotten_after_the_window() {
    let redis = RedisServer::start().await.unwrap();
    let options = RedisOptions::default().idempotency_window(Duration::from_millis(300));
    let (a, _) = node(&redis.url(), options).await;
    // `a:b` with key `c` and `a` with key `b:c` are different records.
    let one =
        a.publish_idempotent(&topic("a:b"), NewEvent::new(json!(1)).idempotency_key("c")).await.unwrap();
    let two =
        a.publish_idempotent(&topic("a"), NewEvent::new(json!(2)).idempotency_key("b:c")).await.unwrap();
    assert!(!one.is_replay() && !two.is_replay());
    let t = topic("a");
    let replay = a.publish_idempotent(&t, NewEvent::new(json!(2)).idempotency_key("b:c")).await.unwrap();
    assert!(replay.is_replay());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = a.publish_idempotent(&t, NewEvent::new(json!(3)).idempotency_key("b:c")).await.unwrap();
    assert!(!later.is_replay(), "the window passed: {later:?}");
    assert_eq!(later.seq(), 2);
    // A zero window turns deduplication off.
    let (off, _) = node(&redis.url(), RedisOptions::default().idempotency_window(Duration::ZERO)).await;
    let again = off.publish_idempotent(&t, NewEvent::new(json!(4)).idempotency_key("b:c")).await.unwrap();
    let again2 = off.publish_idempotent(&t, NewEvent::new(json!(4)).idempotency_key("b:c")).await.unwrap();
    assert!(!again.is_replay() && !again2.is_replay());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_reaches_other_nodes_and_nodes_started_later() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis.url(), RedisOptions::default()).await;
    let (b, state_b) = node(&redis.url(), RedisOptions::default()).await;
    let t = topic("chat");
    let sent = a.publish(&t, NewEvent::new(json!("hi")).from("alice")).await.unwrap();
    assert_eq!(sent.from(), Some("alice"));
    let anonymous = a.publish(&t, NewEvent::new(json!("hey"))).await.unwrap();
    until("b to apply", || state_b.applied_position() == anonymous.position()).await;
    let (c, _) = node(&redis.url(), RedisOptions::default()).await;
    for hub in [&b, &c] {
        let batch = hub.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
        assert_eq!(batch.events.iter().map(|e| e.from()).collect::<Vec<_>>(), [Some("alice"), None]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_key_reaches_other_nodes_and_nodes_started_later() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis.url(), RedisOptions::default()).await;
    let (b, state_b) = node(&redis.url(), RedisOptions::default()).await;
    let t = topic("prices");
    let first = a.publish(&t, NewEvent::new(json!(1)).latest_key("AAPL").from("feed")).await.unwrap();
    assert_eq!((first.latest_key(), first.from()), (Some("AAPL"), Some("feed")));
    a.publish(&t, NewEvent::new(json!(2))).await.unwrap();
    let last = a.publish(&t, NewEvent::new(json!(3)).latest_key("AAPL")).await.unwrap();
    until("b to apply", || state_b.applied_position() == last.position()).await;
    let (c, _) = node(&redis.url(), RedisOptions::default()).await;
    for hub in [&b, &c] {
        let all = hub.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
        let keys: Vec<_> = all.events.iter().map(|e| (e.latest_key(), e.from())).collect();
        assert_eq!(keys, [(Some("AAPL"), Some("feed")), (None, None), (Some("AAPL"), None)]);
        let latest =
            hub.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default().latest(true)).await.unwrap();
        assert_eq!(latest.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [2, 3]);
    }
}
