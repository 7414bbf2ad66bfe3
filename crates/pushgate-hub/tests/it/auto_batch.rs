//! Automatic batching: a subscriber that is behind (the oldest event of its batch waited 5 ms
//! or more) reads next after a pause, so what arrives meanwhile comes in one batch; one that
//! keeps up is never paused; and nothing is lost or reordered either way. Without the option,
//! a subscription with events waiting is always ready.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::Duration;

use futures_util::FutureExt;
use pushgate_hub::{Cursor, Hub, Item, NewEvent, RecvError, SubscribeOptions, Subscription, TopicName};
use serde_json::json;

fn seqs(items: &[Item]) -> Vec<u64> {
    items
        .iter()
        .map(|item| match item {
            Item::Event(event) => event.seq(),
            Item::Reset(reset) => panic!("unexpected {reset:?}"),
            Item::Presence(change) => panic!("unexpected {change:?}"),
        })
        .collect()
}

fn subscribe(hub: &Hub, topic: &TopicName) -> Subscription {
    hub.subscribe_with(&[topic.clone()], Cursor::Now, SubscribeOptions::default().auto_batch(true)).unwrap()
}

async fn publish(hub: &Hub, topic: &TopicName, n: u64) {
    hub.publish(topic, NewEvent::new(json!(n))).await.unwrap();
}

#[tokio::test]
async fn a_subscriber_behind_waits_and_takes_what_arrived_meanwhile_in_one_batch() {
    let hub = Hub::new();
    let topic = TopicName::new("t").unwrap();
    let mut sub = subscribe(&hub, &topic);
    let mut items = Vec::new();

    // Keeping up: every event is read at once, alone.
    for n in 1..=3 {
        publish(&hub, &topic, n).await;
        let got = sub.recv_many(&mut items, 64).now_or_never().expect("ready at once").unwrap();
        assert_eq!(got, 1);
    }
    assert_eq!(seqs(&items), [1, 2, 3]);
    items.clear();

    // Behind: the event waited 20 ms before the subscriber read it.
    publish(&hub, &topic, 4).await;
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(sub.recv_many(&mut items, 64).now_or_never().expect("read at once").unwrap(), 1);
    // The next events are there, but the next read waits for the pause (a quarter of the
    // 20 ms), then takes all of them.
    for n in 5..=7 {
        publish(&hub, &topic, n).await;
    }
    assert!(sub.recv_many(&mut items, 64).now_or_never().is_none(), "paused");
    let got =
        tokio::time::timeout(Duration::from_secs(5), sub.recv_many(&mut items, 64)).await.unwrap().unwrap();
    assert_eq!(got, 3);
    assert_eq!(seqs(&items), [4, 5, 6, 7]);

    // Without the option, the same read is ready at once.
    let mut plain = hub.subscribe(&[topic.clone()], Cursor::Now).unwrap();
    items.clear();
    publish(&hub, &topic, 8).await;
    std::thread::sleep(Duration::from_millis(20));
    plain.recv_many(&mut items, 64).now_or_never().expect("read at once").unwrap();
    publish(&hub, &topic, 9).await;
    plain.recv_many(&mut items, 64).now_or_never().expect("no pause").unwrap();
    assert_eq!(seqs(&items), [8, 9]);
}

#[tokio::test]
async fn a_closing_hub_ends_a_pause_at_once() {
    let hub = Hub::new();
    let topic = TopicName::new("t").unwrap();
    let mut sub = subscribe(&hub, &topic);
    let mut items = Vec::new();
    publish(&hub, &topic, 1).await;
    std::thread::sleep(Duration::from_millis(200));
    sub.recv_many(&mut items, 64).now_or_never().expect("read at once").unwrap();
    // Paused for 50 ms (the most); the close is seen before.
    let closer = hub.clone();
    let close = tokio::spawn(async move { closer.close() });
    let started = tokio::time::Instant::now();
    let err = sub.recv_many(&mut items, 64).await.unwrap_err();
    close.await.unwrap();
    assert_eq!(err, RecvError::Closed);
    assert!(started.elapsed() < Duration::from_millis(45), "{:?}", started.elapsed());
}

/// A publisher faster than a slow subscriber (each of its batches costs it 6 ms, so every read
/// after the first finds its oldest event 6 ms old and pauses): every event arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_subscriber_loses_nothing() {
    const EVENTS: u64 = 600;
    let hub = Hub::new();
    let topic = TopicName::new("t").unwrap();
    let sub = subscribe(&hub, &topic);
    let reader = tokio::spawn(read_all(sub, EVENTS));
    for n in 1..=EVENTS {
        publish(&hub, &topic, n).await;
        if n % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (seen, reads) = tokio::time::timeout(Duration::from_secs(30), reader).await.unwrap().unwrap();
    assert_eq!(seen, (1..=EVENTS).collect::<Vec<_>>());
    assert!(reads > 1);
}

async fn read_all(mut sub: Subscription, events: u64) -> (Vec<u64>, usize) {
    let mut items = Vec::new();
    let mut reads = 0;
    while (items.len() as u64) < events {
        sub.recv_many(&mut items, 1000).await.unwrap();
        reads += 1;
        std::thread::sleep(Duration::from_millis(6));
    }
    (seqs(&items), reads)
}
