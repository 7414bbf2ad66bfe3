//! Idempotent publish and sender identity through the public API.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::Duration;

use pushgate_hub::{
    Cursor, FetchOptions, Hub, HubError, InvalidIdempotencyKey, MAX_IDEMPOTENCY_KEY_LEN, MAX_SENDER_LEN,
    NewEvent, Published, TopicName,
};
use serde_json::json;

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

fn keyed(key: &str, n: u64) -> NewEvent {
    NewEvent::new(json!(n)).idempotency_key(key)
}

#[tokio::test]
async fn a_repeated_key_stores_nothing_and_answers_the_original() {
    let hub = Hub::new();
    let t = topic("t");
    let Published::New(original) = hub.publish_idempotent(&t, keyed("k1", 1)).await.unwrap() else {
        panic!("the first publish stores")
    };
    hub.publish(&t, NewEvent::new(json!("between"))).await.unwrap();
    // A retry with other data is still the same publish: the key decides.
    let again = hub.publish_idempotent(&t, keyed("k1", 2)).await.unwrap();
    let Published::Replayed(replay) = &again else { panic!("a replay: {again:?}") };
    assert_eq!((replay.topic.clone(), replay.seq, replay.position), (t.clone(), 1, original.position()));
    assert_eq!(again.cursor(), original.cursor());
    assert!(again.event().is_none());
    // `publish` refuses it with the original's numbers.
    let err = hub.publish(&t, keyed("k1", 3)).await.unwrap_err();
    assert!(matches!(&err, HubError::Duplicate(r) if r == replay), "{err:?}");
    let batch = hub.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.events.len(), 2, "one keyed event and one plain: the retries stored nothing");
    let stats = hub.stats();
    assert_eq!((stats.published, stats.replayed), (2, 2));
}

#[tokio::test]
async fn keys_are_scoped_to_their_topic() {
    let hub = Hub::new();
    let a = hub.publish_idempotent(&topic("a"), keyed("same", 1)).await.unwrap();
    let b = hub.publish_idempotent(&topic("b"), keyed("same", 1)).await.unwrap();
    assert!(!a.is_replay() && !b.is_replay());
}

#[tokio::test(start_paused = true)]
async fn a_key_is_forgotten_after_its_window() {
    let hub = Hub::builder().idempotency_window(Duration::from_secs(60)).build();
    let t = topic("t");
    let first = hub.publish_idempotent(&t, keyed("k", 1)).await.unwrap();
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(hub.publish_idempotent(&t, keyed("k", 1)).await.unwrap().is_replay());
    tokio::time::advance(Duration::from_secs(1)).await;
    let later = hub.publish_idempotent(&t, keyed("k", 1)).await.unwrap();
    assert!(!later.is_replay(), "past the window the key is new");
    assert_eq!((first.seq(), later.seq()), (1, 2));
    // The new use of the key starts a new window.
    assert!(hub.publish_idempotent(&t, keyed("k", 1)).await.unwrap().is_replay());
}

#[tokio::test]
async fn past_the_key_bound_the_oldest_keys_are_forgotten_first() {
    let hub = Hub::builder().max_idempotency_keys(3).build();
    let t = topic("t");
    for key in ["k1", "k2", "k3", "k4"] {
        hub.publish_idempotent(&t, keyed(key, 0)).await.unwrap();
    }
    for (key, replay) in [("k2", true), ("k3", true), ("k4", true), ("k1", false)] {
        assert_eq!(hub.publish_idempotent(&t, keyed(key, 0)).await.unwrap().is_replay(), replay, "{key}");
    }
}

#[tokio::test]
async fn a_zero_window_turns_keys_off() {
    let hub = Hub::builder().idempotency_window(Duration::ZERO).build();
    let t = topic("t");
    for seq in 1..=2 {
        assert_eq!(hub.publish(&t, keyed("k", 0)).await.unwrap().seq(), seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_with_one_key_store_one_event() {
    let hub = Hub::new();
    let t = topic("t");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (hub, t) = (hub.clone(), t.clone());
            tokio::spawn(async move { hub.publish_idempotent(&t, keyed("once", i)).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap());
    }
    assert_eq!(outcomes.iter().filter(|p| !p.is_replay()).count(), 1);
    assert!(outcomes.iter().all(|p| p.position() == outcomes[0].position() && p.seq() == 1));
    assert_eq!(hub.stats().published, 1);
}

#[tokio::test]
async fn keys_and_senders_are_checked() {
    let hub = Hub::new();
    let t = topic("t");
    let long = "k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1);
    for (key, expected) in [
        ("", InvalidIdempotencyKey::Empty),
        (long.as_str(), InvalidIdempotencyKey::TooLong { len: MAX_IDEMPOTENCY_KEY_LEN + 1 }),
        ("tab\there", InvalidIdempotencyKey::BadCharacter { index: 3 }),
    ] {
        let err = hub.publish(&t, keyed(key, 0)).await.unwrap_err();
        assert!(matches!(err, HubError::InvalidIdempotencyKey(e) if e == expected), "{key:?}");
    }
    let edge = " ~".repeat(MAX_IDEMPOTENCY_KEY_LEN / 2);
    hub.publish(&t, keyed(&edge, 0)).await.unwrap();

    for sender in [String::new(), "é".repeat(MAX_SENDER_LEN / 2 + 1)] {
        let err = hub.publish(&t, NewEvent::new(json!(0)).from(sender.as_str())).await.unwrap_err();
        assert!(matches!(err, HubError::InvalidSender { len } if len == sender.len()), "{err:?}");
    }
    let anyone = "Zoë \"z\" \n <b>".to_owned();
    let event = hub.publish(&t, NewEvent::new(json!(0)).from(anyone.as_str())).await.unwrap();
    assert_eq!(event.from(), Some(anyone.as_str()));
    let batch = hub.fetch(&[t], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.events.last().and_then(|e| e.from()), Some(anyone.as_str()));
    assert_eq!(hub.stats().published, 2, "refused publishes store nothing");
}
