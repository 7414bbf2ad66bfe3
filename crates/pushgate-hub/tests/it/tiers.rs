//! History tiers and resumed epochs through the public API: a cursor older than memory is
//! answered from a deeper tier before anything is called a reset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cloned_ref_to_slice_refs)] // tests may panic

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pushgate_hub::{
    Cursor, Epoch, Event, FetchOptions, HistoryLimit, HistoryTier, Hub, HubError, Item, Missed, NewEvent,
    RecvError, ResetReason, Subscription, TierEvents, TierRead, TopicName,
};
use serde_json::json;

/// A tier holding whatever the test puts in it, with knobs for the ways a tier can fall short.
#[derive(Default)]
struct Archive {
    events: Mutex<Vec<Arc<Event>>>,
    /// It holds nothing at or before this position.
    missing_through: Mutex<u64>,
    fail: bool,
    hang: bool,
    reads: Mutex<Vec<TierRead>>,
}

impl Archive {
    fn keep(&self, event: &Arc<Event>) {
        self.events.lock().unwrap().push(Arc::clone(event));
    }
}

impl HistoryTier for Archive {
    fn read(&self, request: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>> {
        self.reads.lock().unwrap().push(request.clone());
        let missing = *self.missing_through.lock().unwrap();
        let events: Vec<Arc<Event>> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| request.topics.contains(e.topic()))
            .filter(|e| e.position() > request.after.max(missing) && e.position() <= request.upto)
            .take(request.limit)
            .cloned()
            .collect();
        let (fail, hang) = (self.fail, self.hang);
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            if fail {
                return Err(HubError::Unavailable { reason: "the archive is down".into() });
            }
            Ok(TierEvents::new(events).missing_through(missing))
        })
    }
}

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

/// A hub keeping `history` events per topic, with `archive` as its tier.
fn hub_with(history: usize, archive: &Arc<Archive>) -> Hub {
    Hub::builder()
        .history(HistoryLimit::default().max_events(history).max_age(None))
        .tier(Arc::clone(archive) as Arc<dyn HistoryTier>)
        .build()
}

/// Publishes `data` and archives the event, as a source's outbox would.
async fn publish(hub: &Hub, archive: &Archive, t: &TopicName, data: serde_json::Value) -> Arc<Event> {
    let event = hub.publish(t, NewEvent::new(data)).await.unwrap();
    archive.keep(&event);
    event
}

async fn next(sub: &mut Subscription) -> Item {
    tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("an item in time").expect("an item")
}

fn seqs(events: &[Arc<Event>]) -> Vec<(String, u64)> {
    events.iter().map(|e| (e.topic().as_str().to_owned(), e.seq())).collect()
}

#[tokio::test]
async fn a_cursor_older_than_memory_is_answered_from_the_tier_in_order_with_no_reset() {
    let archive = Arc::new(Archive::default());
    let hub = hub_with(3, &archive);
    let (a, b) = (topic("a"), topic("b"));
    let mut published = Vec::new();
    for i in 0..20 {
        let t = if i % 3 == 0 { &b } else { &a };
        published.push(publish(&hub, &archive, t, json!(i)).await);
    }
    // Small pages, so the backfill takes several chunks and merges with memory's events.
    let options = FetchOptions::default().limit(4);
    let mut cursor = Cursor::at(hub.epoch(), 0);
    let mut fetched = Vec::new();
    loop {
        let batch = hub.fetch(&[a.clone(), b.clone()], cursor, &options).await.unwrap();
        assert!(batch.reset.is_none(), "the tier holds everything: {:?}", batch.reset);
        if batch.events.is_empty() {
            break;
        }
        assert!(batch.events.len() <= 4);
        fetched.extend(batch.events);
        cursor = batch.cursor;
    }
    assert_eq!(seqs(&fetched), seqs(&published));
    let stats = hub.stats();
    assert!(stats.tier_reads > 0 && stats.tier_events > 0 && stats.tier_failures == 0, "{stats:?}");
    assert_eq!(stats.resets, 0);

    // A subscription from the same old cursor gets the same, then live events.
    let mut sub = hub.subscribe(&[a.clone(), b.clone()], Cursor::at(hub.epoch(), 0)).unwrap();
    let mut got = Vec::new();
    for _ in 0..published.len() {
        match next(&mut sub).await {
            Item::Event(event) => got.push(event),
            other => panic!("no reset expected: {other:?}"),
        }
    }
    assert_eq!(seqs(&got), seqs(&published));
    let live = publish(&hub, &archive, &a, json!("live")).await;
    let Item::Event(event) = next(&mut sub).await else { panic!("an event") };
    assert_eq!(event.position(), live.position());
}

#[tokio::test]
async fn only_what_no_tier_holds_is_reset_and_resume_seq_is_the_tiers_first() {
    let archive = Arc::new(Archive::default());
    let hub = hub_with(2, &archive);
    let t = topic("t");
    let mut published = Vec::new();
    for i in 0..10 {
        published.push(publish(&hub, &archive, &t, json!(i)).await);
    }
    // The tier lost seq 1..=4; memory holds 9 and 10.
    *archive.missing_through.lock().unwrap() = published[3].position();
    let batch = hub.fetch(&[t.clone()], Cursor::at(hub.epoch(), 0), &FetchOptions::default()).await.unwrap();
    let reset = batch.reset.expect("seq 1..=4 are gone everywhere");
    assert_eq!(*reset.reason(), ResetReason::Expired);
    assert_eq!(reset.topics()[0].resume_seq, 5);
    // The reader had not followed the topic: between 0 and 4 could be missing before seq 5.
    assert_eq!(reset.topics()[0].missed, Missed::between(0, 4));
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [5, 6, 7, 8, 9, 10]);

    // A reader positioned after the tier's gap misses nothing.
    let from = Cursor::at(hub.epoch(), published[4].position());
    let batch = hub.fetch(&[t.clone()], from, &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none());
    assert_eq!(batch.events.first().map(|e| e.seq()), Some(6));

    // A subscription gets the same reset first, then the events.
    let mut sub = hub.subscribe(&[t.clone()], Cursor::at(hub.epoch(), 0)).unwrap();
    let Item::Reset(reset) = next(&mut sub).await else { panic!("a reset first") };
    assert_eq!(reset.topics()[0].resume_seq, 5);
    let Item::Event(event) = next(&mut sub).await else { panic!("then events") };
    assert_eq!(event.seq(), 5);
}

#[tokio::test]
async fn a_failing_tier_falls_back_to_the_reset_of_a_hub_without_tiers() {
    let archive = Arc::new(Archive { fail: true, ..Archive::default() });
    let tiered = hub_with(2, &archive);
    let plain = Hub::builder().history(HistoryLimit::default().max_events(2).max_age(None)).build();
    let t = topic("t");
    let mut resets = Vec::new();
    for hub in [&tiered, &plain] {
        for i in 0..6 {
            hub.publish(&t, NewEvent::new(json!(i))).await.unwrap();
        }
        let batch =
            hub.fetch(&[t.clone()], Cursor::at(hub.epoch(), 1), &FetchOptions::default()).await.unwrap();
        assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [5, 6]);
        resets.push(batch.reset.expect("a reset").topics().to_vec());
    }
    assert_eq!(resets[0], resets[1]);
    assert_eq!(tiered.stats().tier_failures, 1);
    assert_eq!(tiered.stats().resets, 1);
}

#[tokio::test(start_paused = true)]
async fn a_tier_that_does_not_answer_times_out_into_the_reset() {
    let archive = Arc::new(Archive { hang: true, ..Archive::default() });
    let hub = Hub::builder()
        .history(HistoryLimit::default().max_events(2).max_age(None))
        .tier(Arc::clone(&archive) as Arc<dyn HistoryTier>)
        .tier_timeout(Duration::from_secs(2))
        .build();
    let t = topic("t");
    for i in 0..5 {
        hub.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    let mut sub = hub.subscribe(&[t.clone()], Cursor::at(hub.epoch(), 0)).unwrap();
    let started = tokio::time::Instant::now();
    let Item::Reset(reset) = next(&mut sub).await else { panic!("a reset") };
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(reset.topics()[0].resume_seq, 4);
    assert_eq!(hub.stats().tier_failures, 1);
    let Item::Event(event) = next(&mut sub).await else { panic!("an event") };
    assert_eq!(event.seq(), 4);
}

#[tokio::test]
async fn a_live_subscriber_whose_unread_events_were_evicted_is_backfilled_not_cut_off() {
    let archive = Arc::new(Archive::default());
    let hub = hub_with(2, &archive);
    let (a, b) = (topic("a"), topic("b"));
    let mut sub = hub.subscribe(&[a.clone(), b.clone()], Cursor::Now).unwrap();
    let mut published = Vec::new();
    for i in 0..12 {
        published.push(publish(&hub, &archive, if i % 2 == 0 { &a } else { &b }, json!(i)).await);
    }
    let mut items = Vec::new();
    while items.len() < published.len() {
        tokio::time::timeout(Duration::from_secs(5), sub.recv_many(&mut items, 5)).await.unwrap().unwrap();
    }
    let got: Vec<Arc<Event>> = items
        .into_iter()
        .map(|item| match item {
            Item::Event(event) => event,
            other => panic!("no reset expected: {other:?}"),
        })
        .collect();
    assert_eq!(seqs(&got), seqs(&published));
    assert_eq!(hub.stats().lagged, 0);
    assert!(sub.recv().now_or_never().is_none());

    // Without the tier, the same subscriber lags: what the tier changed.
    let plain = Hub::builder().history(HistoryLimit::default().max_events(2).max_age(None)).build();
    let mut sub = plain.subscribe(&[a.clone()], Cursor::Now).unwrap();
    for i in 0..5 {
        plain.publish(&a, NewEvent::new(json!(i))).await.unwrap();
    }
    assert!(matches!(sub.recv().await, Err(RecvError::Lagged { .. })));
}

#[tokio::test]
async fn a_live_subscriber_whose_events_are_gone_from_every_tier_lags_with_the_count() {
    let archive = Arc::new(Archive::default());
    let hub = hub_with(2, &archive);
    let t = topic("t");
    let mut sub = hub.subscribe(&[t.clone()], Cursor::Now).unwrap();
    let first = publish(&hub, &archive, &t, json!(0)).await;
    let Item::Event(event) = next(&mut sub).await else { panic!("an event") };
    assert_eq!(event.position(), first.position());
    let mut published = Vec::new();
    for i in 1..8 {
        published.push(publish(&hub, &archive, &t, json!(i)).await);
    }
    // seq 2..=4 are gone from the tier too; memory holds 7 and 8.
    *archive.missing_through.lock().unwrap() = published[2].position();
    assert_eq!(sub.recv().await.unwrap_err(), RecvError::Lagged { behind: 3 });
}

#[tokio::test]
async fn a_resumed_epoch_keeps_old_cursors_and_reads_before_the_restart_from_the_tier() {
    let archive = Arc::new(Archive::default());
    let t = topic("orders");
    // The run before the restart.
    let before = hub_with(1000, &archive);
    for i in 0..5 {
        publish(&before, &archive, &t, json!(i)).await;
    }
    let epoch = before.epoch();
    let last = archive.events.lock().unwrap().last().cloned().unwrap();
    let client = Cursor::at(epoch, archive.events.lock().unwrap()[1].position());
    drop(before);

    // The restart: same epoch, positions above the floor, the topic's seq restored.
    let floor = last.position() + 100;
    let hub = Hub::builder()
        .history(HistoryLimit::default().max_events(2).max_age(None))
        .resume(epoch, floor)
        .tier(Arc::clone(&archive) as Arc<dyn HistoryTier>)
        .build();
    let waiting = hub.subscribe(&[t.clone()], Cursor::Now).unwrap(); // names the topic before restore
    hub.restore_topic(&t, last.seq(), last.position()).unwrap();
    for i in 5..10 {
        let event = publish(&hub, &archive, &t, json!(i)).await;
        assert!(event.position() > floor);
    }
    drop(waiting);
    let batch = hub.fetch(&[t.clone()], client, &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), (3..=10).collect::<Vec<_>>());

    // Without the tier, the same cursor is told what it lost, no "epoch changed".
    let bare = Hub::builder().resume(epoch, floor).build();
    bare.restore_topic(&t, last.seq(), last.position()).unwrap();
    bare.publish(&t, NewEvent::new(json!("after"))).await.unwrap();
    let batch = bare.fetch(&[t.clone()], client, &FetchOptions::default()).await.unwrap();
    let reset = batch.reset.expect("seq 3..=5 are not here");
    assert_eq!(*reset.reason(), ResetReason::Expired);
    assert_eq!(reset.topics()[0].resume_seq, 6);
    // A cursor after the topic's last event before the restart missed nothing of it.
    let batch = bare.fetch(&[t.clone()], last.cursor(), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none());
    // Another topic, which the restarted hub knows nothing of, may have lost events.
    let other = topic("other");
    let batch = bare.fetch(&[other], client, &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.reset.expect("may have missed").topics()[0].missed, Missed::UNKNOWN);
}

#[tokio::test]
async fn restore_topic_never_moves_seq_backwards_or_under_events() {
    let hub = Hub::builder().resume(Epoch::from_u32(3), 50).build();
    let t = topic("t");
    hub.restore_topic(&t, 10, 40).unwrap();
    hub.restore_topic(&t, 10, 40).unwrap();
    assert_eq!(hub.publish(&t, NewEvent::new(json!(1))).await.unwrap().seq(), 11);
    for requested in [5, 10, 20] {
        let err = hub.restore_topic(&t, requested, 40).unwrap_err();
        assert!(matches!(err, HubError::RestoreConflict { current: 11, .. }), "{err:?}");
    }
    // A last position past the head moves the head: those positions were the epoch's.
    let u = topic("u");
    hub.restore_topic(&u, 2, 70).unwrap();
    assert_eq!(hub.publish(&u, NewEvent::new(json!(1))).await.unwrap().position(), 71);
}

#[tokio::test]
async fn a_forgotten_restored_topic_is_restored_again_before_its_next_publish() {
    let hub = Hub::builder().resume(Epoch::from_u32(4), 100).build();
    let t = topic("quiet");
    hub.restore_topic(&t, 9, 90).unwrap();
    assert_eq!(hub.sweep(), 1, "no event held, no reader: forgotten, its seq with it");
    hub.restore_topic(&t, 9, 90).unwrap();
    assert_eq!(hub.publish(&t, NewEvent::new(json!(10))).await.unwrap().seq(), 10);
    // Swept between the restore and the publish (the maintenance task runs beside the
    // publisher): the restore still holds for that publish.
    let u = topic("quiet-too");
    hub.restore_topic(&u, 4, 95).unwrap();
    assert_eq!(hub.sweep(), 1);
    assert_eq!(hub.publish(&u, NewEvent::new(json!(5))).await.unwrap().seq(), 5);
}

/// What a shared-store backend does: a replica filled by `apply`, its shared log as a tier.
#[tokio::test]
async fn a_replica_reads_what_its_shared_log_lost_or_never_gave_it_from_a_tier() {
    use pushgate_hub::{Data, EventParts, MemoryStorage};

    let epoch = Epoch::from_u32(0xabc);
    let replica = Arc::new(MemoryStorage::replica(epoch, HistoryLimit::default().max_events(2), 10));
    let archive = Arc::new(Archive::default());
    let hub =
        Hub::builder().storage(replica.clone()).tier(Arc::clone(&archive) as Arc<dyn HistoryTier>).build();
    let t = topic("t");
    for seq in 1..=6 {
        let parts = EventParts {
            topic: t.clone(),
            event_type: "message".into(),
            data: Data::from(json!(seq)),
            seq,
            position: seq * 10,
            epoch,
            timestamp_ms: 0,
            from: Some("node-a".into()),
            latest_key: None,
        };
        archive.keep(&replica.apply(parts).unwrap().unwrap());
    }
    let batch = hub.fetch(&[t.clone()], Cursor::at(epoch, 0), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
    assert!(batch.events.iter().all(|e| e.from() == Some("node-a")));
    // The shared log was trimmed while this node was away: every reader from before may have
    // missed events of any topic, unless the tier has them.
    replica.mark_lost_through(55);
    let batch = hub.fetch(&[t.clone()], Cursor::at(epoch, 20), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    assert_eq!(batch.events.first().map(|e| e.seq()), Some(3));
    let other = topic("other");
    let batch = hub.fetch(&[other], Cursor::at(epoch, 20), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none(), "the tier holds all of `other` (nothing) after 20");
}

#[tokio::test]
async fn a_long_backfill_is_read_in_batches_and_merged_with_memory_in_order() {
    let archive = Arc::new(Archive::default());
    let hub = hub_with(3, &archive);
    let (a, b, c) = (topic("a"), topic("b"), topic("c"));
    let mut published = Vec::new();
    for i in 0..700 {
        // `c` is quiet: its few events stay in memory and interleave with the backfilled ones.
        let t = if i % 250 == 50 {
            &c
        } else if i % 3 == 0 {
            &b
        } else {
            &a
        };
        published.push(publish(&hub, &archive, t, json!(i)).await);
    }
    let mut sub = hub.subscribe(&[a.clone(), b.clone(), c.clone()], Cursor::at(hub.epoch(), 0)).unwrap();
    let mut items = Vec::new();
    while items.len() < published.len() {
        let n = tokio::time::timeout(Duration::from_secs(5), sub.recv_many(&mut items, 7))
            .await
            .unwrap()
            .unwrap();
        assert!(n <= 7);
    }
    let got: Vec<Arc<Event>> = items
        .into_iter()
        .map(|item| match item {
            Item::Event(event) => event,
            other => panic!("no reset expected: {other:?}"),
        })
        .collect();
    assert_eq!(seqs(&got), seqs(&published));
    let reads = archive.reads.lock().unwrap();
    assert!(reads.len() >= 3, "{} reads", reads.len());
    assert!(
        reads.iter().all(|r| r.limit <= 256 && !r.topics.contains(&c)),
        "bounded chunks of the gap topics only"
    );
}
