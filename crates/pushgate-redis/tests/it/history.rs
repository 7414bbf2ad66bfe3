//! The Redis log as the deeper history tier: a node keeping 10 events per topic in memory
//! answers a cursor from the start of a 1,000-event log without a reset, a reader that fell
//! behind further than the log reaches is told exactly how many events it missed, and a node
//! whose memory budget evicted events another node still holds reads them from the log too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::sync::Arc;

use pushgate_hub::{Cursor, FetchOptions, HistoryLimit, Hub, Item, NewEvent, RecvError, ResetReason};
use pushgate_redis::{RedisOptions, RedisState, RedisStorage};
use pushgate_testkit::RedisServer;
use serde_json::json;

use crate::common;

use common::{WAIT, next_event, topic, until};

/// A node with 10 events per topic in memory over a log of about 1,000, reading its log as a
/// tier.
async fn node(redis: &RedisServer) -> (Hub, RedisState) {
    let options = RedisOptions::default()
        .history(HistoryLimit::default().max_events(10).max_age(None))
        .history_events(1000);
    let storage = RedisStorage::connect(&redis.url(), options).await.unwrap();
    let state = storage.state();
    let tier = storage.history_tier();
    (Hub::builder().storage(Arc::new(storage)).tier(tier).build(), state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_older_than_memory_is_answered_from_the_log_in_order_without_a_reset() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis).await;
    let (b, state_b) = node(&redis).await;
    let (x, y) = (topic("x"), topic("y"));
    let mut last = 0;
    for i in 0..100 {
        let t = if i % 3 == 0 { &y } else { &x };
        last = a.publish(t, NewEvent::new(json!(i))).await.unwrap().position();
    }
    until("b to apply", || state_b.applied_position() == last).await;
    let start = Cursor::at(b.epoch(), 0);
    let batch = b.fetch(&[x.clone(), y.clone()], start, &FetchOptions::default().limit(1000)).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    let data: Vec<String> = batch.events.iter().map(|e| e.data().as_str().to_owned()).collect();
    assert_eq!(data, (0..100).map(|i| i.to_string()).collect::<Vec<_>>(), "all 100, in publish order");
    assert!(batch.events.windows(2).all(|w| w[0].position() < w[1].position()));
    // A subscription from the start gets the same, then live events.
    let mut sub = b.subscribe(&[x.clone(), y.clone()], start).unwrap();
    for i in 0..100 {
        let event = next_event(&mut sub).await;
        assert_eq!(event.data().as_str(), i.to_string());
    }
    b.publish(&x, NewEvent::new(json!("live"))).await.unwrap();
    assert_eq!(next_event(&mut sub).await.data().as_str(), "\"live\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_behind_more_than_the_log_holds_learns_exactly_what_it_missed() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis).await;
    let t = topic("busy");
    let mut sub = a.subscribe(&[t.clone()], Cursor::Now).unwrap();
    let first = a.publish(&t, NewEvent::new(json!(1))).await.unwrap();
    assert_eq!(next_event(&mut sub).await.seq(), 1);
    // More than the log keeps: it trims its oldest entries (in whole stream nodes).
    for i in 2..=1500 {
        a.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    let oldest = redis.command(&["XRANGE", "pushgate:log", "-", "+", "COUNT", "1"]).await.unwrap();
    let oldest_seq: u64 = oldest.lines().skip_while(|l| *l != "seq").nth(2).unwrap().parse().unwrap();
    assert!((2..=600).contains(&oldest_seq), "the log kept about 1,000: oldest seq {oldest_seq}");
    // The subscriber had seq 1: it missed exactly seq 2 up to the log's oldest.
    let err = tokio::time::timeout(WAIT, sub.recv()).await.unwrap().unwrap_err();
    assert_eq!(err, RecvError::Lagged { behind: oldest_seq - 2 });
    // A client resuming with seq 1's cursor gets a reset naming where the log resumes, then
    // everything from there: the log, then memory.
    let batch = a.fetch(&[t.clone()], first.cursor(), &FetchOptions::default().limit(2000)).await.unwrap();
    let reset = batch.reset.expect("seq 2.. before the log's oldest are gone everywhere");
    assert_eq!(*reset.reason(), ResetReason::Expired);
    assert_eq!(reset.topics()[0].resume_seq, oldest_seq);
    let seqs: Vec<u64> = batch.events.iter().map(|e| e.seq()).collect();
    assert_eq!(seqs, (oldest_seq..=1500).collect::<Vec<_>>());
    // A subscription from there too, with the reset first.
    let mut again = a.subscribe(&[t], first.cursor()).unwrap();
    match tokio::time::timeout(WAIT, again.recv()).await.unwrap().unwrap() {
        Item::Reset(reset) => assert_eq!(reset.topics()[0].resume_seq, oldest_seq),
        other => panic!("a reset first: {other:?}"),
    }
    assert_eq!(next_event(&mut again).await.seq(), oldest_seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_memory_budget_evicted_what_others_hold_reads_it_from_the_log() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis).await;
    // Room in memory for a handful of events of all topics together.
    let options = RedisOptions::default().history_max_bytes(4 << 10).history_events(1000);
    let storage = RedisStorage::connect(&redis.url(), options).await.unwrap();
    let state_b = storage.state();
    let tier = storage.history_tier();
    let b = Hub::builder().storage(Arc::new(storage)).tier(tier).build();
    let (x, y) = (topic("x"), topic("y"));
    // A live reader on the small node that reads nothing while the events arrive.
    let mut sub = b.subscribe(&[x.clone(), y.clone()], Cursor::Now).unwrap();
    let mut last = 0;
    for i in 0..100 {
        let t = if i % 3 == 0 { &y } else { &x };
        last = a.publish(t, NewEvent::new(json!(i))).await.unwrap().position();
    }
    until("b to apply", || state_b.applied_position() == last).await;
    let held = b.stats();
    assert!(held.history_bytes <= 4 << 10 && held.history_evicted > 50, "{held:?}");
    assert_eq!(a.stats().history_evicted, 0, "the other node, on the default budget, holds them all");
    // What b evicted comes from the log: no reset, no lag, every event in order.
    let start = Cursor::at(b.epoch(), 0);
    let batch = b.fetch(&[x.clone(), y.clone()], start, &FetchOptions::default().limit(1000)).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    assert_eq!(batch.events.len(), 100);
    for i in 0..100 {
        let item = tokio::time::timeout(WAIT, sub.recv()).await.unwrap().unwrap();
        let Item::Event(event) = item else {
            panic!("no reset or lag: the log holds everything, got {item:?}")
        };
        assert_eq!(event.data().as_str(), i.to_string());
    }
}
