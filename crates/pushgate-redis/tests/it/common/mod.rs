//! What the Redis storage tests share: a hub on a RedisStorage ("a node"), and bounded waits.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test file uses a part

use std::sync::Arc;
use std::time::Duration;

use pushgate_hub::{Event, Hub, Item, Subscription, TopicName};
use pushgate_redis::{RedisOptions, RedisState, RedisStorage};

pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// A hub on a RedisStorage connected to `url`, and the storage's state.
pub(crate) async fn node(url: &str, options: RedisOptions) -> (Hub, RedisState) {
    let storage = RedisStorage::connect(url, options).await.expect("connect");
    let state = storage.state();
    (Hub::builder().storage(Arc::new(storage)).build(), state)
}

pub(crate) fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

/// The subscription's next item, which must be an event, within [`WAIT`].
pub(crate) async fn next_event(sub: &mut Subscription) -> Arc<Event> {
    match tokio::time::timeout(WAIT, sub.recv()).await.expect("an item in time").expect("recv") {
        Item::Event(event) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Waits until `check` holds, failing the test after [`WAIT`].
pub(crate) async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
