//! Latest value only, over random interleavings of publishes and reads: for every reader,
//! whatever it skips was replaced by a newer event of the same topic and key that it got, the
//! newest event of each key always arrives, events without a key or of topics not read that
//! way always arrive, and the survivors keep the hub's order. Readers: a subscription choosing
//! one topic (plus the hub's policy for another), a plain subscription (the policy alone), and
//! a chain of fetches reading every topic latest-only.
//!
//! Futures are driven with `now_or_never`, as in `properties.rs`: the in-memory storage answers
//! at once, and a failing case shrinks to a short list of operations.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::FutureExt;
use proptest::prelude::*;
use pushgate_hub::{
    Cursor, Event, FetchOptions, HistoryLimit, Hub, Item, NewEvent, SubscribeOptions, Subscription, TopicName,
};
use serde_json::json;

const TOPICS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Publish { topic: usize, key: Option<u8> },
    Recv { reader: usize, limit: usize },
    Fetch { limit: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..TOPICS, proptest::option::of(0u8..3)).prop_map(|(topic, key)| Op::Publish { topic, key }),
        1 => (0..2usize, 1..6usize).prop_map(|(reader, limit)| Op::Recv { reader, limit }),
        1 => (1..6usize).prop_map(|limit| Op::Fetch { limit }),
    ]
}

fn names() -> Vec<TopicName> {
    (0..TOPICS).map(|i| TopicName::new(&format!("t{i}")).unwrap()).collect()
}

/// Receives what is ready, without waiting.
fn recv_ready(sub: &mut Subscription, limit: usize, got: &mut Vec<Arc<Event>>) {
    let mut items = Vec::new();
    while let Some(received) = sub.recv_many(&mut items, limit).now_or_never() {
        received.expect("no lag, no close");
        for item in items.drain(..) {
            match item {
                Item::Event(event) => got.push(event),
                Item::Reset(reset) => panic!("unexpected {reset:?}"),
                // Nobody asked for join and leave notices.
                Item::Presence(change) => panic!("unexpected {change:?}"),
            }
        }
    }
}

/// Checks one reader's deliveries against everything published, given which topic indexes it
/// reads latest-only.
fn check(published: &[Arc<Event>], got: &[Arc<Event>], latest: &BTreeSet<usize>, names: &[TopicName]) {
    let is_latest = |event: &Event| latest.iter().any(|&i| names[i] == *event.topic());
    let positions: Vec<u64> = got.iter().map(|e| e.position()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "order kept: {positions:?}");
    let delivered: BTreeSet<u64> = positions.iter().copied().collect();
    // The newest position of each (topic, key).
    let mut newest: HashMap<(TopicName, String), u64> = HashMap::new();
    for event in published {
        if let Some(key) = event.latest_key() {
            newest.insert((event.topic().clone(), key.to_owned()), event.position());
        }
    }
    for event in published {
        let position = event.position();
        match event.latest_key() {
            Some(key) if is_latest(event) => {
                let last = newest[&(event.topic().clone(), key.to_owned())];
                if position == last {
                    assert!(delivered.contains(&position), "newest of key {key} delivered: {event:?}");
                } else if !delivered.contains(&position) {
                    // Skipped: a newer event of the same key was delivered.
                    assert!(
                        got.iter().any(|e| e.topic() == event.topic()
                            && e.latest_key() == Some(key)
                            && e.position() > position),
                        "{event:?} skipped without a newer value delivered"
                    );
                }
            }
            _ => assert!(delivered.contains(&position), "{event:?} must not be skipped"),
        }
    }
    assert!(got.iter().all(|e| published.iter().any(|p| p.position() == e.position())), "nothing invented");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn latest_readers_skip_only_values_a_newer_one_replaces(ops in proptest::collection::vec(op(), 1..80)) {
        let names = names();
        let policy = names[1].clone();
        let hub = Hub::builder()
            .history(HistoryLimit::default().max_events(10_000).max_age(None))
            .latest_topics(move |topic| *topic == policy)
            .build();
        let mut chosen = hub
            .subscribe_with(&names, Cursor::Now, SubscribeOptions::default().latest_topics([names[0].clone()]))
            .unwrap();
        let mut plain = hub.subscribe_with(&names, Cursor::Now, SubscribeOptions::default()).unwrap();
        let mut got = [Vec::new(), Vec::new()];
        let mut fetched = Vec::new();
        let mut cursor = hub.subscribe(&names, Cursor::Now).unwrap().cursor();
        let fetch = |cursor: Cursor, limit: usize| {
            hub.fetch(&names, cursor, &FetchOptions::default().limit(limit).latest(true))
                .now_or_never()
                .expect("a fetch without wait answers at once")
                .expect("fetch")
        };
        let mut published = Vec::new();
        for op in ops {
            match op {
                Op::Publish { topic, key } => {
                    let mut event = NewEvent::new(json!(published.len()));
                    if let Some(key) = key {
                        event = event.latest_key(format!("k{key}"));
                    }
                    published.push(hub.publish(&names[topic], event).now_or_never().unwrap().unwrap());
                }
                Op::Recv { reader, limit } => {
                    let sub = if reader == 0 { &mut chosen } else { &mut plain };
                    recv_ready(sub, limit, &mut got[reader]);
                }
                Op::Fetch { limit } => {
                    let batch = fetch(cursor, limit);
                    prop_assert!(batch.reset.is_none());
                    fetched.extend(batch.events);
                    cursor = batch.cursor;
                }
            }
        }
        recv_ready(&mut chosen, 1000, &mut got[0]);
        recv_ready(&mut plain, 1000, &mut got[1]);
        loop {
            let batch = fetch(cursor, 1000);
            if batch.events.is_empty() {
                break;
            }
            fetched.extend(batch.events);
            cursor = batch.cursor;
        }
        // Every reader's cursor is past everything, skipped or not.
        let head = Cursor::at(hub.epoch(), published.last().map_or(0, |e| e.position()));
        prop_assert_eq!(chosen.cursor(), head);
        prop_assert_eq!(plain.cursor(), head);
        prop_assert_eq!(cursor, head);
        check(&published, &got[0], &BTreeSet::from([0, 1]), &names);
        check(&published, &got[1], &BTreeSet::from([1]), &names);
        check(&published, &fetched, &BTreeSet::from([0, 1, 2]), &names);
    }
}

/// A reader behind by many values of a few keys gets one event per key, the newest, and its
/// cursor passes all of them.
#[test]
fn a_reader_behind_catches_up_with_one_event_per_key() {
    let topic = TopicName::new("prices").unwrap();
    let hub = Hub::new();
    let mut sub =
        hub.subscribe_with(&[topic.clone()], Cursor::Now, SubscribeOptions::default().latest(true)).unwrap();
    for n in 0..300u32 {
        let key = ["AAPL", "MSFT", "GOOG"][n as usize % 3];
        hub.publish(&topic, NewEvent::new(json!(n)).latest_key(key)).now_or_never().unwrap().unwrap();
    }
    hub.publish(&topic, NewEvent::new(json!("no key"))).now_or_never().unwrap().unwrap();
    let mut got = Vec::new();
    recv_ready(&mut sub, 1000, &mut got);
    let data: Vec<&str> = got.iter().map(|e| e.data().as_str()).collect();
    // One read takes everything up to the caller's limit: three values and the unkeyed event.
    assert_eq!(data, ["297", "298", "299", "\"no key\""]);
    assert_eq!(sub.cursor(), Cursor::at(hub.epoch(), 301));
}

/// A caller that takes two items at a time still gets the newest of each key at once: a
/// latest-only subscription reads a whole batch, not the caller's two.
#[test]
fn small_takes_do_not_shrink_what_one_read_skips() {
    let topic = TopicName::new("prices").unwrap();
    let hub = Hub::new();
    let mut sub =
        hub.subscribe_with(&[topic.clone()], Cursor::Now, SubscribeOptions::default().latest(true)).unwrap();
    for n in 0..200u32 {
        let key = ["AAPL", "MSFT", "GOOG"][n as usize % 3];
        hub.publish(&topic, NewEvent::new(json!(n)).latest_key(key)).now_or_never().unwrap().unwrap();
    }
    let mut got = Vec::new();
    recv_ready(&mut sub, 2, &mut got);
    let data: Vec<&str> = got.iter().map(|e| e.data().as_str()).collect();
    assert_eq!(data, ["197", "198", "199"]);
}
