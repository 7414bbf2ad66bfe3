//! Coalescing windows through the public API: a subscription's `recv_many` and a waiting
//! `fetch` hold what arrives within the window and hand it out together, end early when the
//! hub closes (and a subscription's, when its batch fills), and change nothing without a window. Time is tokio's paused
//! clock, so the waits are exact.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::Duration;

use pushgate_hub::{Cursor, FetchOptions, Hub, Item, NewEvent, RecvError, SubscribeOptions, TopicName};
use serde_json::json;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_millis(200);

fn topic() -> TopicName {
    TopicName::new("t").expect("valid test topic")
}

/// Publishes `n` events 10 ms apart, starting at once.
fn publish_spaced(hub: &Hub, n: usize) -> tokio::task::JoinHandle<()> {
    let hub = hub.clone();
    tokio::spawn(async move {
        for i in 0..n {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            hub.publish(&topic(), NewEvent::new(json!(i))).await.unwrap();
        }
    })
}

fn values(items: &[Item]) -> Vec<i64> {
    items
        .iter()
        .map(|item| match item {
            Item::Event(event) => event.data().as_str().parse().unwrap(),
            Item::Reset(reset) => panic!("unexpected {reset:?}"),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_window_hands_out_what_arrives_within_it_together() {
    let hub = Hub::new();
    let options = SubscribeOptions::default().coalesce(WINDOW);
    let mut sub = hub.subscribe_with(&[topic()], Cursor::Now, options).unwrap();
    let start = Instant::now();
    publish_spaced(&hub, 3);

    let mut items = Vec::new();
    assert_eq!(sub.recv_many(&mut items, 64).await.unwrap(), 3);
    assert_eq!(values(&items), [0, 1, 2]);
    // The window opens with the first event, at 0 ms.
    assert_eq!(start.elapsed(), WINDOW);
    assert_eq!(sub.cursor(), Cursor::at(hub.epoch(), 3));

    // The next event opens a new window.
    items.clear();
    publish_spaced(&hub, 1);
    let again = Instant::now();
    assert_eq!(sub.recv_many(&mut items, 64).await.unwrap(), 1);
    assert_eq!(again.elapsed(), WINDOW);
}

#[tokio::test(start_paused = true)]
async fn without_a_window_each_wake_hands_out_what_is_there() {
    let hub = Hub::new();
    let mut sub = hub.subscribe(&[topic()], Cursor::Now).unwrap();
    publish_spaced(&hub, 3);
    let mut items = Vec::new();
    assert_eq!(sub.recv_many(&mut items, 64).await.unwrap(), 1);
    assert_eq!(values(&items), [0]);
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_ends_the_window_early() {
    let hub = Hub::new();
    let options = SubscribeOptions::default().coalesce(WINDOW);
    let mut sub = hub.subscribe_with(&[topic()], Cursor::Now, options).unwrap();
    for i in 0..5 {
        hub.publish(&topic(), NewEvent::new(json!(i))).await.unwrap();
    }
    let start = Instant::now();
    let mut items = Vec::new();
    assert_eq!(sub.recv_many(&mut items, 3).await.unwrap(), 3);
    assert_eq!(start.elapsed(), Duration::ZERO);
    // The remaining two are read and open a window of their own.
    assert_eq!(sub.recv_many(&mut items, 3).await.unwrap(), 2);
    assert_eq!(values(&items), [0, 1, 2, 3, 4]);
    assert_eq!(start.elapsed(), WINDOW);
}

#[tokio::test(start_paused = true)]
async fn a_closing_hub_ends_the_window_at_once_then_the_subscription() {
    let hub = Hub::new();
    let options = SubscribeOptions::default().coalesce(WINDOW);
    let mut sub = hub.subscribe_with(&[topic()], Cursor::Now, options).unwrap();
    let closer = hub.clone();
    let start = Instant::now();
    tokio::spawn(async move {
        closer.publish(&topic(), NewEvent::new(json!(0))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        closer.close();
    });
    let mut items = Vec::new();
    assert_eq!(sub.recv_many(&mut items, 64).await.unwrap(), 1);
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(sub.recv_many(&mut items, 64).await, Err(RecvError::Closed));
}

#[tokio::test(start_paused = true)]
async fn a_lagging_subscriber_gets_what_it_read_then_the_error() {
    let hub = Hub::new();
    let options = SubscribeOptions::default().coalesce(WINDOW).max_backlog(Some(3));
    let mut sub = hub.subscribe_with(&[topic()], Cursor::Now, options).unwrap();
    let mut items = Vec::new();
    hub.publish(&topic(), NewEvent::new(json!(0))).await.unwrap();
    // The first event is read and opens the window; then five more arrive at once.
    let read = tokio::time::timeout(Duration::from_millis(1), sub.recv_many(&mut items, 64)).await;
    assert!(read.is_err(), "the window should still be open");
    for i in 1..6 {
        hub.publish(&topic(), NewEvent::new(json!(i))).await.unwrap();
    }
    assert_eq!(sub.recv_many(&mut items, 64).await.unwrap(), 1);
    assert_eq!(values(&items), [0]);
    assert!(matches!(sub.recv_many(&mut items, 64).await, Err(RecvError::Lagged { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_fetch_answers_with_everything_its_window_saw() {
    let hub = Hub::new();
    let options = FetchOptions::default().wait(Duration::from_secs(25)).coalesce(WINDOW);
    let start = Instant::now();
    publish_spaced(&hub, 3);
    let batch = hub.fetch(&[topic()], Cursor::at(hub.epoch(), 0), &options).await;
    // The fetch started before the first publish (the task runs only once this one waits).
    let batch = batch.unwrap();
    assert_eq!(batch.events.len(), 3);
    assert_eq!(start.elapsed(), WINDOW);
    assert_eq!(batch.cursor, batch.events[2].cursor());
}

#[tokio::test(start_paused = true)]
async fn a_fetch_that_finds_events_answers_at_once() {
    let hub = Hub::new();
    hub.publish(&topic(), NewEvent::new(json!(0))).await.unwrap();
    let options = FetchOptions::default().wait(Duration::from_secs(25)).coalesce(WINDOW);
    let start = Instant::now();
    let batch = hub.fetch(&[topic()], Cursor::at(hub.epoch(), 0), &options).await.unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_fetch_window_ends_with_its_wait_or_when_the_hub_closes() {
    let hub = Hub::new();
    let epoch = hub.epoch();
    // The wait ends before the window does.
    let short = FetchOptions::default().wait(Duration::from_millis(100)).coalesce(Duration::from_secs(1));
    let start = Instant::now();
    let publisher = hub.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(60)).await;
        publisher.publish(&topic(), NewEvent::new(json!(0))).await.unwrap();
    });
    assert_eq!(hub.fetch(&[topic()], Cursor::at(epoch, 0), &short).await.unwrap().events.len(), 1);
    assert_eq!(start.elapsed(), Duration::from_millis(100));

    // The answer holds at most `limit` events, and continues after them.
    let two = FetchOptions::default().wait(Duration::from_secs(25)).coalesce(WINDOW).limit(2);
    let start = Instant::now();
    publish_spaced(&hub, 3);
    let batch = hub.fetch(&[topic()], Cursor::at(epoch, 1), &two).await.unwrap();
    assert_eq!(batch.events.len(), 2);
    assert_eq!(batch.cursor, Cursor::at(epoch, 3));
    assert_eq!(start.elapsed(), WINDOW);

    // The hub closes.
    let hub = Hub::new();
    let epoch = hub.epoch();
    let long = FetchOptions::default().wait(Duration::from_secs(25)).coalesce(Duration::from_secs(5));
    let start = Instant::now();
    let closer = hub.clone();
    tokio::spawn(async move {
        closer.publish(&topic(), NewEvent::new(json!(9))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        closer.close();
    });
    let batch = hub.fetch(&[topic()], Cursor::at(epoch, 0), &long).await.unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(start.elapsed(), Duration::from_millis(30));
}
