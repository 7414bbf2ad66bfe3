//! Topics are made by publishing, not by reading: a subscription, fetch or presence read naming
//! a topic that was never published takes no slot toward `max_topics`, its record goes with its
//! last reader, and it still gets the topic's first event.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::Duration;

use pushgate_hub::{Cursor, FetchOptions, Hub, HubError, Item, NewEvent, SubscribeOptions, TopicName};
use serde_json::json;

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

fn names(prefix: &str, n: usize) -> Vec<TopicName> {
    (0..n).map(|i| topic(&format!("{prefix}.{i}"))).collect()
}

#[tokio::test]
async fn readers_naming_unpublished_topics_take_no_slot_from_publishers() {
    let hub = Hub::builder().max_topics(3).build();
    // Held streams, each naming a hundred topics nobody published to.
    let held: Vec<_> = (0..10)
        .map(|i| {
            let options = SubscribeOptions::default().label("sse");
            hub.subscribe_with(&names(&format!("held{i}"), 100), Cursor::Now, options).unwrap()
        })
        .collect();
    // A parked long poll, and a stream of short polls, each naming new ones.
    let parked = {
        let hub = hub.clone();
        let topics = names("parked", 100);
        tokio::spawn(async move {
            let options = FetchOptions::default().wait(Duration::from_secs(60));
            hub.fetch(&topics, Cursor::Now, &options).await
        })
    };
    for i in 0..100 {
        let batch = hub.fetch(&names(&format!("poll{i}"), 100), Cursor::Now, &FetchOptions::default()).await;
        assert!(batch.unwrap().events.is_empty());
    }
    assert_eq!(hub.stats().topics, 0, "no reader took a slot");
    assert_eq!(hub.presence(&topic("held3.7")).by_label, [("sse".to_owned(), 1)], "presence counts them");
    for t in ["a", "b", "c"] {
        hub.publish(&topic(t), NewEvent::new(json!(1))).await.expect("a publisher gets every slot");
    }
    let err = hub.publish(&topic("d"), NewEvent::new(json!(1))).await.unwrap_err();
    assert!(matches!(err, HubError::TopicLimit { limit: 3 }), "{err:?}");
    // Publishing to a topic readers hold takes a slot like any other: the table is full.
    let err = hub.publish(&topic("held0.0"), NewEvent::new(json!(1))).await.unwrap_err();
    assert!(matches!(err, HubError::TopicLimit { limit: 3 }), "{err:?}");
    assert_eq!(hub.stats().topics, 3);
    drop(held);
    parked.abort();
    assert!(parked.await.unwrap_err().is_cancelled());
    assert_eq!(hub.sweep(), 0, "the readers' records went with them, and d was never made");
    assert_eq!(hub.stats().topics, 3, "the published topics keep their events and slots");
}

#[tokio::test]
async fn a_subscriber_of_an_unpublished_topic_gets_its_first_event_while_polls_come_and_go() {
    let hub = Hub::builder().max_topics(10).build();
    let t = topic("later");
    let mut sub = hub.subscribe(&[t.clone()], Cursor::Now).unwrap();
    assert_eq!(hub.stats().topics, 0, "waiting for a topic takes no slot");
    for _ in 0..10 {
        // Each poll is given the record the subscription holds, and lets go of it.
        let batch = hub.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
        assert!(batch.events.is_empty() && batch.reset.is_none());
    }
    let published = hub.publish(&t, NewEvent::new(json!("first"))).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("woken").unwrap();
    let Item::Event(got) = item else { panic!("an event, got {item:?}") };
    assert_eq!((got.seq(), got.position()), (1, published.position()));
    // A fetch from before the topic's first event, after all its readers left, sees it too.
    drop(sub);
    let batch = hub.fetch(&[t], Cursor::at(hub.epoch(), 0), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none());
    assert_eq!(batch.events.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_made_and_dropped_by_readers_never_lose_a_publishers_events() {
    let hub = Hub::builder().max_topics(100).build();
    let topics = names("race", 8);
    // Subscribers made while polls churn the same topics' records and publishers start.
    let mut subscribers = Vec::new();
    for t in &topics {
        let sub = hub.subscribe(&[t.clone()], Cursor::at(hub.epoch(), 0)).unwrap();
        subscribers.push(sub);
    }
    assert_eq!(hub.stats().topics, 0);
    let churn: Vec<_> = (0..2)
        .map(|_| {
            let (hub, topics) = (hub.clone(), topics.clone());
            tokio::spawn(async move {
                for n in 0..2_000 {
                    let t = &topics[n % topics.len()];
                    hub.fetch(std::slice::from_ref(t), Cursor::Now, &FetchOptions::default()).await.unwrap();
                    drop(hub.subscribe(std::slice::from_ref(t), Cursor::Now).unwrap());
                }
            })
        })
        .collect();
    let publishers: Vec<_> = topics
        .iter()
        .map(|t| {
            let (hub, t) = (hub.clone(), t.clone());
            tokio::spawn(async move {
                for n in 0..200 {
                    hub.publish(&t, NewEvent::new(json!(n))).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in churn.into_iter().chain(publishers) {
        task.await.unwrap();
    }
    for mut sub in subscribers {
        for seq in 1..=200 {
            let item =
                tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("in time").unwrap();
            let Item::Event(event) = item else { panic!("no reset expected: {item:?}") };
            assert_eq!(event.seq(), seq);
        }
    }
    assert_eq!(hub.stats().topics, 8);
}
