//! The hub-wide memory budget (`HubBuilder::history_max_bytes`) through the public API: the
//! oldest events of all topics go first, readers of what it evicted get the usual exact reset,
//! lag or tier backfill, and what is counted includes cached encodings and idempotency keys.
//! (Random interleavings under a budget are in `properties.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cloned_ref_to_slice_refs)] // tests may panic

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use pushgate_hub::{
    Cursor, Data, EncodingSlot, Epoch, Event, EventParts, FetchOptions, HistoryLimit, HistoryTier, Hub,
    HubError, Item, MemoryStorage, Missed, NewEvent, RecvError, Storage, TierEvents, TierRead, TopicName,
};
use serde_json::json;

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

async fn publish(hub: &Hub, t: &TopicName, data: serde_json::Value) -> Arc<Event> {
    hub.publish(t, NewEvent::new(data)).await.expect("publish")
}

/// What one event of `data` costs the budget: measured on a hub with room for everything.
async fn cost_of(data: &serde_json::Value) -> u64 {
    let hub = Hub::new();
    publish(&hub, &topic("probe"), data.clone()).await;
    hub.stats().history_bytes
}

/// The positions of the events a hub retains of `topics`.
async fn retained(hub: &Hub, topics: &[TopicName]) -> Vec<u64> {
    let options = FetchOptions::default().limit(10_000);
    let batch = hub.fetch(topics, Cursor::Oldest, &options).await.unwrap();
    batch.events.iter().map(|e| e.position()).collect()
}

#[tokio::test]
async fn the_oldest_events_of_all_topics_go_first_and_the_total_stays_within_the_budget() {
    let kilobyte = json!("x".repeat(1000));
    let cost = cost_of(&kilobyte).await;
    assert!(cost > 1000, "an event costs its payload and more: {cost}");
    let hub = Hub::builder().history_max_bytes((10 * cost) as usize).build();
    let topics: Vec<TopicName> = (0..7).map(|i| topic(&format!("t{i}"))).collect();
    let mut positions = Vec::new();
    for n in 0..100 {
        // An uneven spread, so no topic's own bound could explain what is kept.
        let t = &topics[(n * n) % topics.len()];
        positions.push(publish(&hub, t, kilobyte.clone()).await.position());
        let stats = hub.stats();
        assert!(stats.history_bytes <= stats.history_max_bytes, "{stats:?}");
    }
    assert_eq!(
        retained(&hub, &topics).await,
        positions[90..],
        "exactly the ten newest, whatever their topic"
    );
    let stats = hub.stats();
    assert_eq!((stats.history_bytes, stats.history_evicted), (10 * cost, 90));
}

#[tokio::test]
async fn readers_of_what_the_budget_evicted_get_an_exact_reset_or_lag() {
    let cost = cost_of(&json!(0)).await;
    let hub = Hub::builder().history_max_bytes((3 * cost) as usize).build();
    let (quiet, busy) = (topic("quiet"), topic("busy"));
    let mut follower = hub.subscribe(&[quiet.clone()], Cursor::Now).unwrap();
    let first = publish(&hub, &quiet, json!(0)).await;
    let Item::Event(got) = follower.recv().await.unwrap() else { panic!("an event") };
    assert_eq!(got.seq(), 1);
    publish(&hub, &quiet, json!(0)).await;
    publish(&hub, &quiet, json!(0)).await;
    // Another topic's traffic pushes both of quiet's newer events out: quiet's ring is empty.
    for _ in 0..3 {
        publish(&hub, &busy, json!(0)).await;
    }
    assert_eq!(retained(&hub, &[quiet.clone()]).await, Vec::<u64>::new());
    assert_eq!(follower.recv().await.unwrap_err(), RecvError::Lagged { behind: 2 }, "it had read seq 1");
    drop(follower);
    // From the first event's cursor: seq 2 and 3 are gone, and the reset says so exactly.
    let batch =
        hub.fetch(&[quiet.clone(), busy.clone()], first.cursor(), &FetchOptions::default()).await.unwrap();
    let reset = batch.reset.expect("a reset for quiet");
    let lost = &reset.topics()[0];
    assert_eq!((lost.topic.as_str(), lost.resume_seq, lost.missed), ("quiet", 4, Missed::between(1, 3)));
    assert_eq!(batch.events.len(), 3, "then busy's three events");
    // quiet goes on at seq 4 (its record is kept, with what it lost).
    assert_eq!(publish(&hub, &quiet, json!(0)).await.seq(), 4);
}

/// A tier holding every event published: what memory's budget evicted is read back from it.
#[derive(Default)]
struct Archive(Mutex<Vec<Arc<Event>>>);

impl HistoryTier for Archive {
    fn read(&self, r: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>> {
        let events: Vec<Arc<Event>> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| r.topics.contains(e.topic()) && e.position() > r.after && e.position() <= r.upto)
            .take(r.limit)
            .cloned()
            .collect();
        Box::pin(async move { Ok(TierEvents::new(events)) })
    }
}

#[tokio::test]
async fn a_live_subscriber_is_backfilled_from_a_tier_with_what_the_budget_evicted() {
    let cost = cost_of(&json!(0)).await;
    let archive = Arc::new(Archive::default());
    let hub = Hub::builder().history_max_bytes((2 * cost) as usize).tier(archive.clone()).build();
    let (a, b) = (topic("a"), topic("b"));
    let mut sub = hub.subscribe(&[a.clone(), b.clone()], Cursor::Now).unwrap();
    let mut published = Vec::new();
    for n in 0..10 {
        let event = publish(&hub, if n % 3 == 0 { &a } else { &b }, json!(0)).await;
        archive.0.lock().unwrap().push(Arc::clone(&event));
        published.push((event.topic().as_str().to_owned(), event.seq()));
    }
    assert_eq!(hub.stats().history_evicted, 8);
    let mut got = Vec::new();
    while got.len() < 10 {
        match sub.recv().await.unwrap() {
            Item::Event(event) => got.push((event.topic().as_str().to_owned(), event.seq())),
            other => panic!("no reset: a tier holds everything, {other:?}"),
        }
    }
    assert_eq!(got, published, "everything, in order, eight of them from the tier");
}

static FRAME: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);

#[tokio::test]
async fn cached_encodings_count_while_their_event_is_retained() {
    let hub = Hub::builder().history_max_bytes(1 << 20).build();
    let t = topic("t");
    let event = publish(&hub, &t, json!("small")).await;
    let before = hub.stats().history_bytes;
    let frame = Bytes::from(vec![b'x'; 100_000]);
    assert_eq!(event.encoded(&FRAME, |_| frame.clone()).len(), 100_000);
    let with_frame = hub.stats().history_bytes;
    assert!(with_frame >= before + 100_000, "{before} -> {with_frame}: the encoding is counted");
    // Cached once: asking again adds nothing.
    event.encoded(&FRAME, |_| unreachable!("cached"));
    assert_eq!(hub.stats().history_bytes, with_frame);
    // Ten such events pass the budget: the oldest (and their encodings) make room.
    for _ in 0..10 {
        let event = publish(&hub, &t, json!("small")).await;
        event.encoded(&FRAME, |_| frame.clone());
    }
    let stats = hub.stats();
    assert!(stats.history_bytes <= 1 << 20, "{stats:?}");
    assert!(stats.history_evicted > 0);
    // An evicted event's encodings are no longer history's: caching one on it costs nothing.
    let gone = hub.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    assert!(gone.events[0].seq() > event.seq(), "the first event is gone");
    let bytes = hub.stats().history_bytes;
    static LATE: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);
    event.encoded(&LATE, |_| frame.clone());
    assert_eq!(hub.stats().history_bytes, bytes);
}

#[tokio::test]
async fn an_encoding_that_passes_the_budget_evicts_at_once() {
    let hub = Hub::builder().history_max_bytes(200_000).build();
    let t = topic("t");
    let old = publish(&hub, &t, json!(1)).await;
    publish(&hub, &t, json!(2)).await;
    old.encoded(&FRAME, |_| Bytes::from(vec![b'x'; 300_000]));
    // No publish since: the encoding itself made room, taking its own (oldest) event with it.
    let stats = hub.stats();
    assert!(stats.history_bytes <= 200_000, "{stats:?}");
    assert_eq!(retained(&hub, &[t]).await, [old.position() + 1]);
}

#[tokio::test]
async fn idempotency_keys_count_and_take_at_most_a_quarter_of_the_budget() {
    let budget = 64 << 10;
    let hub = Hub::builder()
        .history_max_bytes(budget)
        .idempotency_window(Duration::from_secs(3600))
        .max_idempotency_keys(1_000_000)
        .build();
    let t = topic("t");
    let key = |n: usize| format!("{n:0>100}");
    let plain = Hub::new();
    plain.publish(&t, NewEvent::new(json!(0))).await.unwrap();
    let keyed = Hub::new();
    keyed.publish(&t, NewEvent::new(json!(0)).idempotency_key(key(0))).await.unwrap();
    assert!(keyed.stats().history_bytes >= plain.stats().history_bytes + 100, "a key is counted");
    for n in 0..2_000 {
        hub.publish_idempotent(&t, NewEvent::new(json!(0)).idempotency_key(key(n))).await.unwrap();
        assert!(hub.stats().history_bytes <= budget as u64);
    }
    // Well within the window and the count, the first key was forgotten for its bytes.
    let again = hub.publish_idempotent(&t, NewEvent::new(json!(0)).idempotency_key(key(0))).await.unwrap();
    assert!(!again.is_replay(), "the oldest keys go once they pass a quarter of the budget");
    let recent =
        hub.publish_idempotent(&t, NewEvent::new(json!(0)).idempotency_key(key(1_999))).await.unwrap();
    assert!(recent.is_replay(), "recent keys are kept");
    // Events keep the other three quarters: far more than the keys' share would leave.
    let events = retained(&hub, &[t]).await.len() as u64;
    assert!(events * cost_of(&json!(0)).await >= (budget as u64) / 2, "{events} events retained");
}

#[tokio::test]
async fn a_replica_keeps_within_its_budget_and_reports_what_it_evicted_as_a_gap() {
    let epoch = Epoch::from_u32(7);
    let cost = cost_of(&json!(0)).await;
    let replica = Arc::new(
        MemoryStorage::replica(epoch, HistoryLimit::default(), 100).history_max_bytes((4 * cost) as usize),
    );
    let hub = Hub::builder().storage(replica.clone()).build();
    let topics = [topic("a"), topic("b")];
    for position in 1..=20_u64 {
        // a at odd positions, b at even ones: seq 1, 2, 3, … in each.
        let parts = EventParts {
            topic: topics[(position % 2) as usize].clone(),
            event_type: "message".into(),
            data: Data::from(json!(0)),
            seq: position.div_ceil(2),
            position,
            epoch,
            timestamp_ms: 0,
            from: None,
            latest_key: None,
        };
        replica.apply(parts).unwrap().expect("applied");
        assert!(replica.history_use().bytes <= 4 * cost);
    }
    assert_eq!(retained(&hub, &topics).await, [17, 18, 19, 20]);
    let batch = hub.fetch(&topics, Cursor::at(epoch, 10), &FetchOptions::default()).await.unwrap();
    let reset = batch.reset.expect("what the replica evicted is a gap, for a tier to fill");
    assert_eq!(reset.topics().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_and_readers_keep_the_budget() {
    let budget = 256 << 10;
    let hub = Hub::builder().history_max_bytes(budget).build();
    static SLOT: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);
    let topics: Vec<TopicName> = (0..50).map(|i| topic(&format!("t{i}"))).collect();
    let mut readers = Vec::new();
    for chunk in topics.chunks(10) {
        let mut sub = hub.subscribe(chunk, Cursor::Now).unwrap();
        readers.push(tokio::spawn(async move {
            // Encodes what it reads, as a transport does, until it lags or the hub closes.
            while let Ok(Item::Event(event)) = sub.recv().await {
                event.encoded(&SLOT, |e| Bytes::from(e.data().as_str().repeat(2)));
            }
        }));
    }
    let mut publishers = Vec::new();
    for p in 0..4 {
        let (hub, topics) = (hub.clone(), topics.clone());
        publishers.push(tokio::spawn(async move {
            for n in 0..500 {
                let data = json!("y".repeat(100 + (n * 37 + p * 11) % 900));
                hub.publish(&topics[(n * 7 + p) % topics.len()], NewEvent::new(data)).await.unwrap();
            }
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    hub.close();
    for reader in readers {
        reader.await.unwrap();
    }
    // Concurrent appends may each pass the budget by their own event before evicting, and an
    // encoding made while another thread evicts waits for the next append.
    let stats = hub.stats();
    assert!(stats.history_bytes <= budget as u64 + 4 * 4 * 1024, "{stats:?}");
    assert!(stats.history_evicted > 1_000);
}
