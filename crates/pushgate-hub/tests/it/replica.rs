//! A replica `MemoryStorage` filled by `apply`, behind a real hub: what a shared-store backend
//! relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::sync::Arc;
use std::time::Duration;

use pushgate_hub::{
    Cursor, Data, Epoch, EventParts, FetchOptions, HistoryLimit, Hub, Item, MemoryStorage, Storage, TopicName,
};
use serde_json::json;

fn replica() -> Arc<MemoryStorage> {
    Arc::new(MemoryStorage::replica(Epoch::from_u32(0xabc), HistoryLimit::default(), 10))
}

/// A log entry as a shared store would hand it over.
fn entry(
    position: u64,
    topic: &TopicName,
    seq: u64,
    event_type: &str,
    data: serde_json::Value,
    ts: u64,
) -> EventParts {
    EventParts {
        topic: topic.clone(),
        event_type: event_type.into(),
        data: Data::from(data),
        seq,
        position,
        epoch: Epoch::from_u32(0xabc),
        timestamp_ms: ts,
        from: None,
        latest_key: None,
    }
}

#[tokio::test]
async fn applied_events_wake_subscribers_and_keep_their_numbers() {
    let storage = replica();
    let hub = Hub::builder().storage(storage.clone()).build();
    let topic = TopicName::new("t").unwrap();
    let mut sub = hub.subscribe(&[topic.clone()], Cursor::Now).unwrap();
    storage.apply(entry(3, &topic, 1, "message", json!(1), 42)).unwrap();
    storage.apply(entry(9, &topic, 2, "x", json!(2), 43)).unwrap();
    for (position, seq) in [(3, 1), (9, 2)] {
        let item = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.unwrap().unwrap();
        let Item::Event(event) = item else { panic!("expected an event, got {item:?}") };
        assert_eq!((event.position(), event.seq(), event.epoch()), (position, seq, Epoch::from_u32(0xabc)));
    }
    assert_eq!(storage.head(), 9);
    assert_eq!(storage.last_seqs(), vec![(topic.clone(), 2)]);
    // Old or repeated positions change nothing.
    assert!(storage.apply(entry(9, &topic, 2, "x", json!(2), 43)).unwrap().is_none());
    assert!(storage.apply(entry(4, &topic, 9, "x", json!(2), 43)).unwrap().is_none());
    assert_eq!(storage.head(), 9);
}

#[tokio::test]
async fn a_topic_first_seen_past_seq_1_reports_a_gap_to_older_cursors() {
    let storage = replica();
    let hub = Hub::builder().storage(storage.clone()).build();
    let topic = TopicName::new("t").unwrap();
    let epoch = Epoch::from_u32(0xabc);
    storage.apply(entry(10, &topic, 5, "message", json!(5), 0)).unwrap();
    let batch = hub.fetch(&[topic.clone()], Cursor::at(epoch, 2), &FetchOptions::default()).await.unwrap();
    let reset = batch.reset.expect("events 1..=4 were never seen here: a reset, not silence");
    assert_eq!(reset.topics()[0].resume_seq, 5);
    assert_eq!(batch.events.len(), 1);
    // A cursor at the position just before it missed nothing of this topic.
    let batch = hub.fetch(&[topic.clone()], Cursor::at(epoch, 9), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none());
    assert_eq!(batch.events[0].seq(), 5);
}

fn apply(storage: &MemoryStorage, position: u64, topic: &TopicName, seq: u64) {
    storage.apply(entry(position, topic, seq, "message", json!(seq), 0)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_swept_topic_subscribed_to_again_is_not_cut_off_by_its_next_event() {
    let epoch = Epoch::from_u32(0xabc);
    let limit = HistoryLimit::default().max_age(Some(Duration::from_secs(60)));
    let storage = Arc::new(MemoryStorage::replica(epoch, limit, 10));
    let hub = Hub::builder().storage(storage.clone()).build();
    let (quiet, other) = (TopicName::new("quiet").unwrap(), TopicName::new("other").unwrap());
    apply(&storage, 1, &quiet, 1);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(hub.sweep(), 1, "the quiet topic is forgotten, its next seq with it");
    apply(&storage, 2, &other, 1);
    let mut sub = hub.subscribe(&[quiet.clone()], Cursor::Now).unwrap();
    apply(&storage, 3, &other, 2);
    apply(&storage, 4, &quiet, 2);
    let item = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.unwrap();
    let Ok(Item::Event(event)) = item else { panic!("expected the event, got {item:?}") };
    assert_eq!((event.position(), event.seq()), (4, 2));
    // A poller from before the sweep may have missed seq 1: a reset.
    let batch = hub.fetch(&[quiet], Cursor::at(epoch, 0), &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.reset.expect("a reset").topics()[0].resume_seq, 2);
}

#[tokio::test]
async fn apply_next_takes_only_the_position_right_after_the_head() {
    let storage = replica();
    let hub = Hub::builder().storage(storage.clone()).build();
    let topic = TopicName::new("t").unwrap();
    let mut sub = hub.subscribe(&[topic.clone()], Cursor::Now).unwrap();
    storage.apply(entry(4, &topic, 1, "message", json!(1), 42)).unwrap();
    // A gap before it (position 5 is still unread here): given back, nothing changes.
    let given_back = storage.apply_next(entry(6, &topic, 3, "message", json!(3), 44)).unwrap();
    assert_eq!(given_back.map(|event| event.position()).unwrap_err().position, 6);
    assert_eq!(storage.head(), 4);
    // Right after the head: taken, and readers are woken.
    let taken = storage.apply_next(entry(5, &topic, 2, "message", json!(2), 43)).unwrap().unwrap();
    assert_eq!((taken.position(), taken.seq()), (5, 2));
    assert_eq!(storage.head(), 5);
    // Already here: given back; the log's copy of it, read later, changes nothing either.
    assert!(storage.apply_next(entry(5, &topic, 2, "message", json!(2), 43)).unwrap().is_err());
    assert!(storage.apply(entry(5, &topic, 2, "message", json!(2), 43)).unwrap().is_none());
    storage.apply(entry(6, &topic, 3, "message", json!(3), 44)).unwrap();
    for (position, seq) in [(4, 1), (5, 2), (6, 3)] {
        let item = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.unwrap().unwrap();
        let Item::Event(event) = item else { panic!("expected an event, got {item:?}") };
        assert_eq!((event.position(), event.seq()), (position, seq));
    }
}
