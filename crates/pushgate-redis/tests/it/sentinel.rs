//! RedisStorage through Redis Sentinel: a master, a replica and a Sentinel, private processes on
//! loopback. The master is killed mid-stream; Sentinel promotes the replica; the nodes follow
//! it, and every publish that was acknowledged is there afterwards, once, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushgate_hub::{Cursor, Event, FetchOptions, Hub, HubError, Item, NewEvent, TopicName};
use pushgate_redis::{RedisOptions, RedisState};
use pushgate_testkit::{RedisSentinel, RedisServer};
use serde_json::json;

use crate::common;

use common::{WAIT, until};

async fn node(url: &str) -> (Hub, RedisState) {
    // A publish no replica confirms within 2 s fails (rather than after the default 10 s).
    let options =
        RedisOptions::default().apply_wait(Duration::from_secs(2)).timeout(Duration::from_millis(500));
    common::node(url, options).await
}

fn replica_of(port: u16) -> Vec<String> {
    vec!["--replicaof".to_owned(), "127.0.0.1".to_owned(), port.to_string()]
}

/// What the publisher sent (the value `i`) and what its acknowledged publish returned.
type Acked = Arc<Mutex<Vec<(u64, Arc<Event>)>>>;

/// Publishes 0, 1, 2, … on alternating nodes until stopped, keeping what was acknowledged.
fn publisher(
    nodes: [Hub; 2],
    topic: TopicName,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut refused = 0;
        for i in 0u64.. {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            match nodes[i as usize % 2].publish(&topic, NewEvent::new(json!(i))).await {
                Ok(event) => acked.lock().unwrap().push((i, event)),
                Err(HubError::Unavailable { .. }) => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("publish {i}: {err:?}"),
            }
        }
        refused
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_of_the_master_loses_no_acknowledged_publish() {
    let mut master = RedisServer::start().await.unwrap();
    let replica = RedisServer::start_with(replica_of(master.port())).await.unwrap();
    replica.wait_for_master_link().await.unwrap();
    let sentinel = RedisSentinel::start("pushgate", master.port(), Duration::from_millis(300)).await.unwrap();
    sentinel.wait_for_replica().await.unwrap();
    let url = format!("redis+sentinel://127.0.0.1:{}/pushgate", sentinel.port());
    let (a, state_a) = node(&url).await;
    let (b, state_b) = node(&url).await;
    let t = TopicName::new("orders").unwrap();
    let mut on_b = b.subscribe(&[t.clone()], Cursor::Now).unwrap();

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let task = publisher([a.clone(), b.clone()], t.clone(), Arc::clone(&acked), Arc::clone(&stop));
    until("publishes before the failover", || acked.lock().unwrap().len() >= 20).await;

    master.kill().await.unwrap();
    let before = acked.lock().unwrap().len();
    sentinel.wait_for_master(replica.port()).await.unwrap();
    // The promoted replica has no replica of its own: nothing is confirmed, so nothing is
    // acknowledged, until the old master comes back as its replica.
    until("the nodes to follow the failover", || {
        state_a.waiting_for_replicas() || state_b.waiting_for_replicas()
    })
    .await;
    master.restart_with(replica_of(replica.port())).await.unwrap();
    master.wait_for_master_link().await.unwrap();
    until("publishes after the failover", || acked.lock().unwrap().len() >= before + 20).await;
    stop.store(true, Ordering::SeqCst);
    let refused = task.await.unwrap();
    assert!(refused > 0, "some publishes were refused while no replica could confirm them");

    let acked = acked.lock().unwrap().clone();
    // Every acknowledged publish is on the subscriber, in order, once, and nothing else is
    // delivered twice; the subscriber never needed a reset.
    let last = acked.last().unwrap().1.position();
    let mut seen = Vec::new();
    while seen.last().is_none_or(|e: &Arc<Event>| e.position() < last) {
        match tokio::time::timeout(WAIT, on_b.recv()).await.expect("delivered in time").unwrap() {
            Item::Event(event) => seen.push(event),
            other => panic!("no reset expected across the failover: {other:?}"),
        }
    }
    check(&acked, &seen);
    // A node started now, through the Sentinel, finds all of it in the new master's log.
    let (c, _) = node(&url).await;
    let batch = c.fetch(&[t], Cursor::Oldest, &FetchOptions::default().limit(10_000)).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    check(&acked, &batch.events);
}

/// `seen` holds every acknowledged event with the numbers its publish returned, each value at
/// most once, with positions increasing and `seq` counting up without a gap.
fn check(acked: &[(u64, Arc<Event>)], seen: &[Arc<Event>]) {
    let mut values = BTreeSet::new();
    for pair in seen.windows(2) {
        assert!(pair[0].position() < pair[1].position(), "out of order: {pair:?}");
        assert_eq!(pair[0].seq() + 1, pair[1].seq(), "seq gap: {pair:?}");
    }
    for event in seen {
        assert!(values.insert(event.data().as_str().to_owned()), "delivered twice: {event:?}");
    }
    for (i, event) in acked {
        let found = seen.iter().find(|e| e.data().as_str() == i.to_string());
        let found = found.unwrap_or_else(|| panic!("acknowledged publish {i} was lost"));
        assert_eq!((found.position(), found.seq()), (event.position(), event.seq()), "publish {i}");
    }
}
