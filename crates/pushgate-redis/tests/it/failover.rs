//! What keeps a failover from losing acknowledged events or diverging silently, shown on one
//! private redis-server whose state is changed by hand the way a failover changes it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::Duration;

use pushgate_hub::{Cursor, FetchOptions, HubError, Item, NewEvent, ResetReason, TopicName};
use pushgate_redis::RedisOptions;
use pushgate_testkit::{RedisServer, Relay};
use serde_json::json;

use crate::common;

use common::{WAIT, node, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replica_acks_nothing_is_delivered_or_acknowledged_before_a_replica_holds_it() {
    let master = RedisServer::start().await.unwrap();
    let options = RedisOptions::default().min_replicas_ack(1).apply_wait(Duration::from_millis(1500));
    let (hub, state) = node(&master.url(), options).await;
    let t = TopicName::new("acked").unwrap();
    let mut sub = hub.subscribe(&[t.clone()], Cursor::Now).unwrap();
    // No replica: Redis takes the event, but no replica confirms it.
    let err = hub.publish(&t, NewEvent::new(json!("unconfirmed"))).await.unwrap_err();
    assert!(matches!(&err, HubError::Unavailable { reason } if reason.contains("not confirmed")), "{err:?}");
    assert!(state.waiting_for_replicas());
    let err = hub.publish(&t, NewEvent::new(json!("refused"))).await.unwrap_err();
    assert!(matches!(&err, HubError::Unavailable { reason } if reason.contains("replica")), "{err:?}");
    let nothing = tokio::time::timeout(Duration::from_millis(300), sub.recv()).await;
    assert!(nothing.is_err(), "delivered before a replica held it: {nothing:?}");

    let replica =
        RedisServer::start_with(vec!["--replicaof".into(), "127.0.0.1".into(), master.port().to_string()])
            .await
            .unwrap();
    replica.wait_for_master_link().await.unwrap();
    // The event Redis took is delivered now that a replica holds it (its publish said it might
    // be), then publishing works again.
    let first = match tokio::time::timeout(WAIT, sub.recv()).await.unwrap().unwrap() {
        Item::Event(event) => event,
        other => panic!("{other:?}"),
    };
    assert_eq!((first.seq(), first.data().as_str()), (1, "\"unconfirmed\""));
    until("the node to see the replica", || !state.waiting_for_replicas()).await;
    let event = hub.publish(&t, NewEvent::new(json!("confirmed"))).await.unwrap();
    assert_eq!(event.seq(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_applied_events_the_new_master_lost_changes_the_epoch_and_stops() {
    let redis = RedisServer::start().await.unwrap();
    let relay = Relay::start(redis.port()).await.unwrap();
    // No replica acknowledgements: a node applies what the master alone holds.
    let (a, state_a) = node(&relay.redis_url(), RedisOptions::default()).await;
    let t = TopicName::new("diverged").unwrap();
    let mut last = None;
    for i in 1..=3 {
        last = Some(a.publish(&t, NewEvent::new(json!(i))).await.unwrap());
    }
    let last = last.unwrap();
    let epoch = a.epoch();
    relay.cut();
    until("a to notice", || !state_a.connected()).await;
    // A failover to a replica that had only the first event: the new master lacks 2 and 3, and
    // another node publishes there, taking position 2 again.
    let e = epoch.to_string();
    let entry = ["topic", "diverged", "seq", "1", "type", "message", "data", "1", "ts", "0", "epoch", &e];
    redis.command(&["DEL", "pushgate:log"]).await.unwrap();
    redis.command(&[&["XADD", "pushgate:log", "1-0"][..], &entry].concat()).await.unwrap();
    redis.command(&["SET", "pushgate:pos", "1"]).await.unwrap();
    redis.command(&["HSET", "pushgate:seq", "diverged", "1"]).await.unwrap();
    let (c, state_c) = node(&redis.url(), RedisOptions::default()).await;
    let reused = c.publish(&t, NewEvent::new(json!("other"))).await.unwrap();
    assert_eq!((reused.position(), reused.seq()), (2, 2), "position 2 handed out again");

    relay.resume();
    until("a to give up", || state_a.fatal().is_some()).await;
    let reason = state_a.fatal().unwrap();
    assert!(reason.contains("lost events") && reason.contains(&epoch.to_string()), "{reason}");
    let now = redis.command(&["GET", "pushgate:epoch"]).await.unwrap();
    assert!(!now.contains(&epoch.to_string()), "the epoch was changed: {now}");
    // The other node stops too rather than mixing the epochs.
    let err = c.publish(&t, NewEvent::new(json!("late"))).await.unwrap_err();
    assert!(matches!(err, HubError::Unavailable { .. }), "{err:?}");
    until("c to give up", || state_c.fatal().is_some()).await;
    // A node restarted into the new epoch resets the client that had seen seq 3 at position 3.
    let (d, _) = node(&redis.url(), RedisOptions::default()).await;
    assert_ne!(d.epoch(), epoch);
    let batch = d.fetch(&[t], last.cursor(), &FetchOptions::default()).await.unwrap();
    let reset = batch.reset.expect("a cursor into the lost history must be reset");
    assert!(matches!(reset.reason(), ResetReason::EpochChanged { .. }), "{reset:?}");
}
