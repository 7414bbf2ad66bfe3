//! Coalescing windows through the public API: a subscription's `recv_many` and a waiting
//! `fetch` hold what arrives within the window and hand it out together (a subscription in as
//! many batches as it takes), are not woken by publishes meanwhile, end early when the hub
//! closes, and change nothing without a window. Time is tokio's paused clock, so the waits
//! are exact.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use pushgate_hub::{
    Cursor, FetchOptions, HistoryLimit, Hub, Item, NewEvent, RecvError, SubscribeOptions, Subscription,
    TopicName,
};
use serde_json::json;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_millis(200);

fn topic() -> TopicName {
    TopicName::new("t").expect("valid test topic")
}

/// A subscription to `topic()` from now, with a [`WINDOW`].
fn windowed(hub: &Hub) -> Subscription {
    hub.subscribe_with(&[topic()], Cursor::Now, SubscribeOptions::default().coalesce(WINDOW)).unwrap()
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
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_window_hands_out_what_arrives_within_it_together() {
    let hub = Hub::new();
    let mut sub = windowed(&hub);
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
async fn a_full_first_batch_is_a_backlog_and_goes_out_at_once() {
    let hub = Hub::new();
    let mut sub = windowed(&hub);
    for i in 0..5 {
        hub.publish(&topic(), NewEvent::new(json!(i))).await.unwrap();
    }
    let start = Instant::now();
    let mut items = Vec::new();
    assert_eq!(sub.recv_many(&mut items, 3).await.unwrap(), 3);
    // The rest of the backlog follows without a window of its own.
    assert_eq!(sub.recv_many(&mut items, 3).await.unwrap(), 2);
    assert_eq!(values(&items), [0, 1, 2, 3, 4]);
    assert_eq!(start.elapsed(), Duration::ZERO);

    // Caught up, the next event opens a window again.
    publish_spaced(&hub, 1);
    assert_eq!(sub.recv_many(&mut items, 3).await.unwrap(), 1);
    assert_eq!(start.elapsed(), WINDOW);
}

#[tokio::test(start_paused = true)]
async fn a_window_that_gathered_more_than_a_batch_hands_it_all_out_when_it_ends() {
    let hub = Hub::new();
    let mut sub = windowed(&hub);
    let start = Instant::now();
    publish_spaced(&hub, 8);
    let mut items = Vec::new();
    // A full batch no longer ends the window: all eight arrive within it (70 ms).
    assert_eq!(sub.recv_many(&mut items, 3).await.unwrap(), 3);
    assert_eq!(start.elapsed(), WINDOW);
    assert_eq!(sub.recv_many(&mut items, 3).await.unwrap(), 3);
    assert_eq!(sub.recv_many(&mut items, 3).await.unwrap(), 2);
    assert_eq!(values(&items), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(start.elapsed(), WINDOW);
}

/// Counts how often the task that polls with it is woken.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn publishes_within_a_window_do_not_wake_the_subscriber_but_a_close_does() {
    let hub = Hub::new();
    // Far longer than the test: its timer must not be what wakes us.
    let options = SubscribeOptions::default().coalesce(Duration::from_secs(60));
    let mut sub = hub.subscribe_with(&[topic()], Cursor::Now, options).unwrap();
    let wakes = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&wakes));
    let mut cx = Context::from_waker(&waker);
    let mut items = Vec::new();

    assert!(sub.poll_recv_many(&mut cx, &mut items, 64).is_pending(), "nothing published yet");
    hub.publish(&topic(), NewEvent::new(json!(0))).await.unwrap();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the first event wakes an idle subscriber");
    assert!(sub.poll_recv_many(&mut cx, &mut items, 64).is_pending(), "the event opens a window");

    for i in 1..20 {
        hub.publish(&topic(), NewEvent::new(json!(i))).await.unwrap();
    }
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "publishes within the window woke the subscriber");
    // A poll anyway (another branch of its task's select) does not unmute it.
    assert!(sub.poll_recv_many(&mut cx, &mut items, 64).is_pending());
    hub.publish(&topic(), NewEvent::new(json!(20))).await.unwrap();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);

    hub.close();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 2, "a closing hub must wake a subscriber in its window");
    assert!(matches!(sub.poll_recv_many(&mut cx, &mut items, 64), Poll::Ready(Ok(1))));
    assert_eq!(values(&items), [0]);
    assert!(matches!(sub.poll_recv_many(&mut cx, &mut items, 64), Poll::Ready(Err(RecvError::Closed))));
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_whose_window_outlived_the_history_gets_lagged_when_it_ends() {
    let hub = Hub::builder().history(HistoryLimit::default().max_events(3)).build();
    let mut sub = windowed(&hub);
    let start = Instant::now();
    publish_spaced(&hub, 10);
    let mut items = Vec::new();
    assert_eq!(sub.recv_many(&mut items, 64).await.unwrap(), 1);
    assert_eq!(values(&items), [0]);
    assert_eq!(start.elapsed(), WINDOW);
    assert!(matches!(sub.recv_many(&mut items, 64).await, Err(RecvError::Lagged { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_closing_hub_ends_the_window_at_once_then_the_subscription() {
    let hub = Hub::new();
    let mut sub = windowed(&hub);
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

#[tokio::test(start_paused = true)]
async fn the_cursor_of_a_window_that_holds_a_reset_resumes_before_its_events() {
    let hub = Hub::new();
    for i in 0..3 {
        hub.publish(&topic(), NewEvent::new(json!(i))).await.unwrap();
    }
    let other = pushgate_hub::Epoch::from_u32(hub.epoch().as_u32().wrapping_add(1));
    let options = SubscribeOptions::default().coalesce(WINDOW);
    let mut sub = hub.subscribe_with(&[topic()], Cursor::at(other, 2), options).unwrap();
    // The reset and the three retained events are read and held by the window; the caller
    // gives up before it ends, so none of them was delivered.
    let mut items = Vec::new();
    let waited = tokio::time::timeout(WINDOW / 2, sub.recv_many(&mut items, 10)).await;
    assert!(waited.is_err() && items.is_empty(), "the window still holds them: {items:?}");
    assert_eq!(sub.cursor(), Cursor::at(hub.epoch(), 0), "resuming from it would skip events");
}
