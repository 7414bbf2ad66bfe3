//! The hub through its public API: ordering, resumption, resets, lag, long polling, presence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cloned_ref_to_slice_refs)] // tests may panic

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use pushgate_hub::{
    Cursor, Epoch, Event, FetchOptions, HistoryLimit, Hub, HubError, Item, NewEvent, RecvError, ResetReason,
    SubscribeOptions, TopicName,
};
use serde_json::json;

fn topic(name: &str) -> TopicName {
    TopicName::new(name).expect("valid test topic")
}

async fn publish(hub: &Hub, t: &TopicName, value: serde_json::Value) -> Arc<Event> {
    hub.publish(t, NewEvent::new(value)).await.expect("publish")
}

async fn next_event(sub: &mut pushgate_hub::Subscription) -> Arc<Event> {
    match tokio::time::timeout(Duration::from_secs(5), sub.recv()).await {
        Ok(Ok(Item::Event(e))) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn seq_counts_per_topic_and_positions_order_all_topics() {
    let hub = Hub::new();
    let (a, b) = (topic("a"), topic("b"));
    let mut seen = Vec::new();
    for i in 0..6 {
        let t = if i % 3 == 0 { &b } else { &a };
        seen.push(publish(&hub, t, json!(i)).await);
    }
    let seqs: Vec<_> = seen.iter().map(|e| (e.topic().as_str().to_owned(), e.seq())).collect();
    assert_eq!(
        seqs,
        [("b", 1), ("a", 1), ("a", 2), ("b", 2), ("a", 3), ("a", 4)].map(|(t, s)| (t.to_owned(), s))
    );
    assert!(seen.windows(2).all(|w| w[0].position() < w[1].position()));
    assert!(seen.iter().all(|e| e.type_name() == "message" && e.epoch() == hub.epoch()));
}

#[tokio::test]
async fn now_skips_the_past_and_oldest_replays_it_then_both_go_live() {
    let hub = Hub::new();
    let t = topic("t");
    publish(&hub, &t, json!("past")).await;
    let mut now = hub.subscribe(&[t.clone()], Cursor::Now).expect("subscribe");
    let mut oldest = hub.subscribe(&[t.clone()], Cursor::Oldest).expect("subscribe");
    publish(&hub, &t, json!("live")).await;
    assert_eq!(next_event(&mut now).await.data().as_str(), "\"live\"");
    assert_eq!(next_event(&mut oldest).await.data().as_str(), "\"past\"");
    assert_eq!(next_event(&mut oldest).await.data().as_str(), "\"live\"");
    assert!(now.recv().now_or_never().is_none(), "nothing more for `now`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_from_history_to_live_loses_and_duplicates_nothing_under_concurrent_publishing() {
    // History larger than the run: this test is about the switch, not about lagging.
    let hub = Hub::builder().history(HistoryLimit::default().max_events(10_000)).build();
    let t = topic("race");
    let publisher = {
        let (hub, t) = (hub.clone(), t.clone());
        tokio::spawn(async move {
            for i in 0..2000u64 {
                hub.publish(&t, NewEvent::new(json!(i))).await.expect("publish");
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // Subscribers join at different moments while the publisher runs; each must see seq 1..=2000.
    let mut readers = Vec::new();
    for _ in 0..8 {
        let sub = hub.subscribe(&[t.clone()], Cursor::Oldest).expect("subscribe");
        readers.push(tokio::spawn(async move {
            let mut sub = sub;
            let mut seqs = Vec::new();
            while seqs.len() < 2000 {
                match sub.recv().await.expect("recv") {
                    Item::Event(e) => seqs.push(e.seq()),
                    other => panic!("no reset expected: {other:?}"),
                }
            }
            seqs
        }));
        tokio::task::yield_now().await;
    }
    publisher.await.expect("publisher");
    for reader in readers {
        let seqs = reader.await.expect("reader");
        assert_eq!(seqs, (1..=2000).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_returning_reader_gets_exactly_what_it_missed() {
    let hub = Hub::new();
    let t = topic("t");
    let mut sub = hub.subscribe(&[t.clone()], Cursor::Now).expect("subscribe");
    publish(&hub, &t, json!(1)).await;
    let first = next_event(&mut sub).await;
    let cursor_text = sub.cursor().to_string();
    assert_eq!(cursor_text, first.cursor().to_string());
    drop(sub);
    for i in 2..=4 {
        publish(&hub, &t, json!(i)).await;
    }
    let cursor: Cursor = cursor_text.parse().expect("cursor round-trips through text");
    let mut back = hub.subscribe(&[t.clone()], cursor).expect("resubscribe");
    for i in 2..=4 {
        assert_eq!(next_event(&mut back).await.data().as_str(), i.to_string());
    }
    assert!(back.recv().now_or_never().is_none());
    // The same cursor works for a poll too.
    let batch = hub.fetch(&[t], cursor, &FetchOptions::default()).await.expect("fetch");
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [2, 3, 4]);
}

#[tokio::test]
async fn a_cursor_older_than_history_gets_a_reset_then_the_oldest_retained() {
    let hub = Hub::builder().history(HistoryLimit::default().max_events(3)).build();
    let (t, quiet) = (topic("busy"), topic("quiet"));
    let first = publish(&hub, &t, json!(1)).await;
    let quiet_event = publish(&hub, &quiet, json!("q")).await;
    for i in 2..=10 {
        publish(&hub, &t, json!(i)).await;
    }
    let mut sub = hub.subscribe(&[t.clone(), quiet.clone()], first.cursor()).expect("subscribe");
    let Ok(Item::Reset(reset)) = sub.recv().await else { panic!("reset first") };
    assert_eq!(*reset.reason(), ResetReason::Expired);
    assert_eq!(reset.topics().len(), 1, "only the topic that lost events: {reset:?}");
    let lost = &reset.topics()[0];
    assert_eq!(lost.topic, t);
    assert_eq!(lost.resume_seq, 8);
    // Events seq 2..=7 were missed: 6. The hub knows 1 <= missed <= 7 without the evicted records.
    assert!(lost.missed.at_least >= 1 && lost.missed.at_least <= 6);
    assert!(lost.missed.at_most.is_some_and(|m| (6..=7).contains(&m)));
    let mut order = Vec::new();
    for _ in 0..4 {
        let e = next_event(&mut sub).await;
        order.push((e.topic().as_str().to_owned(), e.seq()));
    }
    assert_eq!(order[0], ("quiet".to_owned(), 1), "total order: quiet's event came before busy's 8..10");
    assert_eq!(order[1..], [("busy".to_owned(), 8), ("busy".to_owned(), 9), ("busy".to_owned(), 10)]);
    assert_eq!(quiet_event.seq(), 1);
    assert_eq!(hub.stats().resets, 1);
}

#[tokio::test(start_paused = true)]
async fn history_expires_by_age() {
    let hub = Hub::builder().history(HistoryLimit::default().max_age(Some(Duration::from_secs(10)))).build();
    let t = topic("t");
    let old = publish(&hub, &t, json!("old")).await;
    let before = Cursor::at(hub.epoch(), old.position() - 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    let batch = hub.fetch(&[t.clone()], Cursor::Oldest, &FetchOptions::default()).await.expect("fetch");
    assert!(batch.events.is_empty(), "expired events are not replayed");
    assert!(batch.reset.is_none(), "`oldest` never reports a reset");
    let batch = hub.fetch(&[t.clone()], before, &FetchOptions::default()).await.expect("fetch");
    let reset = batch.reset.expect("a cursor before an expired event is told so");
    assert_eq!(reset.topics()[0].missed.exact(), Some(1));
}

#[tokio::test]
async fn a_cursor_from_another_epoch_is_reset_never_misread() {
    let hub = Hub::new();
    let t = topic("t");
    for i in 0..3 {
        publish(&hub, &t, json!(i)).await;
    }
    let other = Epoch::from_u32(hub.epoch().as_u32().wrapping_add(1));
    // Position 2 exists in this epoch too; a naive reader would resume after it.
    let mut sub = hub.subscribe(&[t.clone()], Cursor::at(other, 2)).expect("subscribe");
    let Ok(Item::Reset(reset)) = sub.recv().await else { panic!("reset first") };
    assert_eq!(*reset.reason(), ResetReason::EpochChanged { cursor: other, current: hub.epoch() });
    assert_eq!(reset.topics()[0].missed.exact(), None);
    assert_eq!(next_event(&mut sub).await.seq(), 1, "then everything retained");
}

#[tokio::test]
async fn bad_cursors_are_errors_not_restarts() {
    let hub = Hub::new();
    let t = topic("t");
    publish(&hub, &t, json!(1)).await;
    let ahead = Cursor::at(hub.epoch(), 99);
    assert!(matches!(
        hub.subscribe(&[t.clone()], ahead),
        Err(HubError::CursorAhead { position: 99, head: 1 })
    ));
    assert!(matches!(
        hub.fetch(&[t.clone()], ahead, &FetchOptions::default()).await,
        Err(HubError::CursorAhead { .. })
    ));
    assert!("12345678-zz".parse::<Cursor>().is_err());
    assert_eq!(hub.stats().subscribers, 0, "a refused subscription is not counted");
    assert_eq!(hub.presence(&t).total, 0, "nor left registered");
}

#[tokio::test]
async fn input_limits_are_typed_errors() {
    let hub = Hub::builder().max_topics(2).max_topics_per_subscription(2).max_data_bytes(10).build();
    let t = topic("t");
    let err = hub.publish(&t, NewEvent::new(json!("0123456789"))).await.unwrap_err();
    assert!(matches!(err, HubError::DataTooLarge { size: 12, limit: 10 }), "{err}");
    let err = hub.publish(&t, NewEvent::new(json!(1)).event_type("bad type")).await.unwrap_err();
    assert!(matches!(err, HubError::InvalidEventType(_)), "{err}");
    for reserved in ["reset", "error"] {
        let err = hub.publish(&t, NewEvent::new(json!(1)).event_type(reserved)).await.unwrap_err();
        assert!(matches!(err, HubError::InvalidEventType(_)), "{reserved}: {err}");
    }
    let many = [topic("x"), topic("y"), topic("z")];
    assert!(matches!(hub.subscribe(&many, Cursor::Now), Err(HubError::TooManyTopics { count: 3, limit: 2 })));
    // Duplicates count once.
    assert!(hub.subscribe(&[topic("x"), topic("x")], Cursor::Now).is_ok());
    publish(&hub, &topic("x"), json!(1)).await;
    publish(&hub, &topic("y"), json!(1)).await;
    let err = hub.publish(&topic("z"), NewEvent::new(json!(1))).await.unwrap_err();
    assert!(matches!(err, HubError::TopicLimit { limit: 2 }), "{err}");
}

#[tokio::test]
async fn multi_topic_subscribers_all_see_one_total_order() {
    let hub = Hub::new();
    let topics: Vec<TopicName> = (0..5).map(|i| topic(&format!("t{i}"))).collect();
    let mut subs: Vec<_> = (0..3).map(|_| hub.subscribe(&topics, Cursor::Now).expect("subscribe")).collect();
    let mut tasks = Vec::new();
    for (i, t) in topics.iter().enumerate() {
        let (hub, t) = (hub.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..100 {
                hub.publish(&t, NewEvent::new(json!([i, n]))).await.expect("publish");
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("publisher");
    }
    let mut orders = Vec::new();
    for sub in &mut subs {
        let mut order = Vec::new();
        for _ in 0..500 {
            order.push(next_event(sub).await.position());
        }
        assert!(order.windows(2).all(|w| w[0] < w[1]), "positions strictly increase");
        orders.push(order);
    }
    assert!(orders.windows(2).all(|w| w[0] == w[1]), "every subscriber saw the same order");
}

#[tokio::test]
async fn a_slow_subscriber_is_cut_off_and_the_others_keep_receiving() {
    let hub = Hub::builder().history(HistoryLimit::default().max_events(50)).build();
    let t = topic("t");
    let mut slow = hub.subscribe(&[t.clone()], Cursor::Now).expect("subscribe");
    let mut fast = hub.subscribe(&[t.clone()], Cursor::Now).expect("subscribe");
    let mut bounded = hub
        .subscribe_with(&[t.clone()], Cursor::Now, SubscribeOptions::default().max_backlog(Some(10)))
        .expect("subscribe");
    publish(&hub, &t, json!(0)).await;
    assert_eq!(next_event(&mut slow).await.seq(), 1);
    assert_eq!(next_event(&mut fast).await.seq(), 1);
    let resume_from = slow.cursor();
    for i in 1..100 {
        publish(&hub, &t, json!(i)).await;
        assert_eq!(next_event(&mut fast).await.seq(), i + 1, "fast is never held back");
    }
    // 99 unread events, only 50 retained: slow is 99 behind, 49 of them lost.
    assert_eq!(slow.recv().await.unwrap_err(), RecvError::Lagged { behind: 99 });
    assert_eq!(slow.recv().await.unwrap_err(), RecvError::Lagged { behind: 99 }, "and stays ended");
    assert!(matches!(bounded.recv().await, Err(RecvError::Lagged { behind }) if behind > 10));
    assert_eq!(hub.stats().lagged, 2);
    // Resuming from its last cursor tells it exactly what is gone.
    let batch = hub.fetch(&[t.clone()], resume_from, &FetchOptions::default()).await.expect("fetch");
    let reset = batch.reset.expect("reset");
    assert_eq!(reset.topics()[0].resume_seq, 51);
    assert_eq!(batch.events.first().map(|e| e.seq()), Some(51));
    assert_eq!(batch.events.len(), 50);
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_waits_for_a_publish_or_its_deadline() {
    let hub = Hub::new();
    let (t, other) = (topic("t"), topic("other"));
    let idle = hub.fetch(&[t.clone()], Cursor::Now, &FetchOptions::default()).await.expect("fetch");
    let options = FetchOptions::default().wait(Duration::from_secs(25)).label("longpoll");

    // Nothing happens: the poll ends at its deadline with no events and the same cursor,
    // even though another topic moved the hub's head meanwhile.
    let started = tokio::time::Instant::now();
    let poll = {
        let (hub, t, options) = (hub.clone(), t.clone(), options.clone());
        tokio::spawn(async move { hub.fetch(&[t], idle.cursor, &options).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hub.presence(&t).by_label, [("longpoll".to_owned(), 1)], "a parked poll is present");
    publish(&hub, &other, json!("unrelated")).await;
    let batch = poll.await.expect("join").expect("fetch");
    assert!(batch.events.is_empty());
    assert_eq!(batch.cursor, idle.cursor, "unchanged, so an HTTP cache can answer 304");
    assert_eq!(started.elapsed(), Duration::from_secs(25));
    assert_eq!(hub.presence(&t).total, 0);

    // A publish wakes it at once.
    let poll = {
        let (hub, t, options) = (hub.clone(), t.clone(), options.clone());
        tokio::spawn(async move { hub.fetch(&[t], idle.cursor, &options).await })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = tokio::time::Instant::now();
    publish(&hub, &t, json!("hello")).await;
    let batch = poll.await.expect("join").expect("fetch");
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.cursor, batch.events[0].cursor());
}

#[tokio::test]
async fn fetch_batches_up_to_its_limit_and_continues() {
    let hub = Hub::new();
    let t = topic("t");
    for i in 0..25 {
        publish(&hub, &t, json!(i)).await;
    }
    let options = FetchOptions::default().limit(10);
    let mut cursor = Cursor::Oldest;
    let mut seqs = Vec::new();
    for expected in [10, 10, 5, 0] {
        let batch = hub.fetch(&[t.clone()], cursor, &options).await.expect("fetch");
        assert_eq!(batch.events.len(), expected);
        seqs.extend(batch.events.iter().map(|e| e.seq()));
        cursor = batch.cursor;
    }
    assert_eq!(seqs, (1..=25).collect::<Vec<_>>());
    assert_eq!(hub.stats().delivered, 25);
}

#[tokio::test]
async fn presence_counts_live_readers_per_label() {
    let hub = Hub::new();
    let t = topic("room");
    let sse = SubscribeOptions::default().label("sse");
    let a = hub.subscribe_with(&[t.clone(), topic("other")], Cursor::Now, sse.clone()).expect("subscribe");
    let b = hub.subscribe_with(&[t.clone()], Cursor::Now, sse).expect("subscribe");
    let c =
        hub.subscribe_with(&[t.clone()], Cursor::Now, SubscribeOptions::default().label("ws")).expect("s");
    let presence = hub.presence(&t);
    assert_eq!(presence.total, 3);
    assert_eq!(presence.by_label, [("sse".to_owned(), 2), ("ws".to_owned(), 1)]);
    assert_eq!(hub.presence(&topic("other")).total, 1);
    drop((a, c));
    assert_eq!(hub.presence(&t).by_label, [("sse".to_owned(), 1)]);
    assert_eq!(hub.presence(&topic("other")).total, 0);
    assert_eq!(hub.stats().subscribers, 1);
    drop(b);
    assert_eq!(hub.stats().subscribers, 0);
}

#[tokio::test]
async fn close_ends_subscriptions_answers_parked_polls_and_refuses_new_work() {
    let hub = Hub::new();
    let t = topic("t");
    let mut sub = hub.subscribe(&[t.clone()], Cursor::Now).expect("subscribe");
    let poll = {
        let (hub, t) = (hub.clone(), t.clone());
        tokio::spawn(async move {
            hub.fetch(&[t], Cursor::Now, &FetchOptions::default().wait(Duration::from_secs(3600))).await
        })
    };
    tokio::task::yield_now().await;
    let maintenance = tokio::spawn(hub.clone().maintain(Duration::from_secs(3600)));
    hub.close();
    assert_eq!(sub.recv().await.unwrap_err(), RecvError::Closed);
    let batch = tokio::time::timeout(Duration::from_secs(5), poll).await.expect("prompt").expect("join");
    assert!(batch.expect("answered").events.is_empty());
    tokio::time::timeout(Duration::from_secs(5), maintenance).await.expect("maintenance ends").expect("join");
    assert!(matches!(hub.publish(&t, NewEvent::new(json!(1))).await, Err(HubError::Closed)));
    assert!(matches!(hub.subscribe(&[t.clone()], Cursor::Now), Err(HubError::Closed)));
}

#[tokio::test(start_paused = true)]
async fn idle_topics_are_forgotten_and_old_cursors_told_they_may_have_missed_events() {
    let hub = Hub::builder().history(HistoryLimit::default().max_age(Some(Duration::from_secs(60)))).build();
    let (gone, kept) = (topic("gone"), topic("kept"));
    let before = Cursor::at(hub.epoch(), 0);
    publish(&hub, &gone, json!(1)).await;
    let _holder = hub.subscribe(&[kept.clone()], Cursor::Now).expect("subscribe");
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(hub.sweep(), 1, "`gone` is empty and unused; `kept` is held");
    assert_eq!(hub.stats().topics, 0, "`kept` was only named by a reader: it takes no slot");
    let batch = hub.fetch(&[gone.clone()], before, &FetchOptions::default()).await.expect("fetch");
    let reset = batch.reset.expect("the hub cannot know what a forgotten topic held, so it says so");
    assert_eq!(reset.topics()[0].missed.at_most, None);
}

#[tokio::test]
async fn subscriptions_are_streams_and_batch_receivers() {
    use futures_util::StreamExt;
    let hub = Hub::new();
    let t = topic("t");
    let mut sub = hub.subscribe(&[t.clone()], Cursor::Now).expect("subscribe");
    for i in 0..3 {
        publish(&hub, &t, json!(i)).await;
    }
    let mut items = Vec::new();
    assert_eq!(sub.recv_many(&mut items, 2).await.expect("recv_many"), 2);
    let third = sub.next().await.expect("item").expect("ok");
    assert!(matches!(third, Item::Event(e) if e.seq() == 3));
    hub.close();
    assert!(matches!(sub.next().await, Some(Err(RecvError::Closed))));
    assert!(sub.next().await.is_none(), "the stream ends after its error");
}

#[tokio::test]
async fn the_backlog_limit_spares_a_replay_of_retained_history() {
    let hub = Hub::new();
    let t = topic("t");
    for i in 0..100 {
        publish(&hub, &t, json!(i)).await;
    }
    let options = SubscribeOptions::default().max_backlog(Some(10));
    let mut sub = hub.subscribe_with(&[t.clone()], Cursor::Oldest, options).expect("subscribe");
    for seq in 1..=100 {
        assert_eq!(next_event(&mut sub).await.seq(), seq, "100 retained events replay past a limit of 10");
    }
    // Once live, the limit holds.
    for i in 0..11 {
        publish(&hub, &t, json!(i)).await;
    }
    assert_eq!(sub.recv().await.unwrap_err(), RecvError::Lagged { behind: 11 });
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_abandoned_while_parked_leaves_nothing_behind() {
    let hub = Hub::new();
    let t = topic("t");
    let options = FetchOptions::default().wait(Duration::from_secs(25)).label("longpoll");
    let topics = [t.clone()];
    let parked = tokio::time::timeout(Duration::from_secs(1), hub.fetch(&topics, Cursor::Now, &options));
    assert!(parked.await.is_err(), "still parked when its caller gives up");
    assert_eq!(hub.presence(&t).total, 0, "dropping the future unregisters it");
    assert_eq!(hub.sweep(), 0, "and the record it was given went with it: nothing left to forget");
}

#[tokio::test]
async fn a_fetch_stops_at_its_byte_budget_but_always_returns_one_event() {
    let hub = Hub::new();
    let t = topic("t");
    let big = "x".repeat(10_000);
    for _ in 0..10 {
        publish(&hub, &t, json!(big)).await;
    }
    let options = FetchOptions::default().max_bytes(35_000);
    let first = hub.fetch(&[t.clone()], Cursor::Oldest, &options).await.expect("fetch");
    assert_eq!(first.events.len(), 3, "three 10 KB events fit in 35 KB, a fourth would not");
    let rest = hub.fetch(&[t.clone()], first.cursor, &options).await.expect("fetch");
    assert_eq!(rest.events.first().map(|e| e.seq()), Some(4), "continues where the budget stopped");
    let tiny = FetchOptions::default().max_bytes(1);
    let one = hub.fetch(&[t.clone()], Cursor::Oldest, &tiny).await.expect("fetch");
    assert_eq!(one.events.len(), 1, "an event larger than the budget still goes, alone");
}

#[tokio::test]
async fn numbers_pass_through_exactly_as_published() {
    // Money columns and 64-bit ids must not be rounded through f64 on their way to clients.
    let hub = Hub::new();
    let t = topic("t");
    let text = r#"{"amount":12345678901234567890.12,"id":9007199254740993,"tiny":1e-400}"#;
    let data = pushgate_hub::Data::from_json(text).expect("valid JSON");
    assert_eq!(data.as_str(), text);
    let event = hub.publish(&t, NewEvent::new(data)).await.expect("publish");
    assert_eq!(event.data().as_str(), text);
}

fn label_stats(hub: &Hub, label: &str) -> pushgate_hub::LabelStats {
    hub.stats_by_label().into_iter().find(|s| s.label == label).unwrap_or_default()
}

#[tokio::test]
async fn readers_are_counted_per_label_with_their_delivery_latency() {
    let hub = Hub::new();
    let t = topic("room");
    let sse = SubscribeOptions::default().label("sse");
    // A subscription with two topics is one reader.
    let mut a =
        hub.subscribe_with(&[t.clone(), topic("other")], Cursor::Now, sse.clone()).expect("subscribe");
    let b = hub.subscribe_with(&[t.clone()], Cursor::Now, sse).expect("subscribe");
    assert_eq!(label_stats(&hub, "sse").live, 2);

    // A parked fetch is a live reader of its label until it is answered.
    let parked = {
        let hub = hub.clone();
        let t = t.clone();
        tokio::spawn(async move {
            let options = FetchOptions::default().wait(Duration::from_secs(5)).label("longpoll");
            hub.fetch(&[t], Cursor::Now, &options).await
        })
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        while label_stats(&hub, "longpoll").live == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the long poll parks");
    publish(&hub, &t, json!(1)).await;
    let batch = parked.await.expect("join").expect("fetch");
    assert_eq!(batch.events.len(), 1);
    next_event(&mut a).await;

    let longpoll = label_stats(&hub, "longpoll");
    assert_eq!((longpoll.live, longpoll.fetches, longpoll.latency.count), (0, 1, 1));
    let sse = label_stats(&hub, "sse");
    // `b` has not read yet: only what was handed over counts.
    assert_eq!((sse.live, sse.latency.count), (2, 1));
    assert_eq!(sse.latency.counts.iter().sum::<u64>(), 1);
    assert!(sse.latency.sum_seconds < 5.0);
    drop((a, b));
    assert_eq!(label_stats(&hub, "sse").live, 0);
}

#[tokio::test]
async fn refusals_by_the_hub_are_counted() {
    let hub = Hub::builder().max_topics_per_subscription(2).max_data_bytes(10).build();
    let three = [topic("a"), topic("b"), topic("c")];
    assert!(matches!(hub.subscribe(&three, Cursor::Now), Err(HubError::TooManyTopics { .. })));
    let fetched = hub.fetch(&three, Cursor::Now, &FetchOptions::default()).await;
    assert!(matches!(fetched, Err(HubError::TooManyTopics { .. })));
    let big = hub.publish(&topic("a"), NewEvent::new(json!("far more than ten bytes"))).await;
    assert!(matches!(big, Err(HubError::DataTooLarge { .. })));
    hub.publish(&topic("a"), NewEvent::new(json!(1))).await.expect("small data is fine");
    let stats = hub.stats();
    assert_eq!((stats.refused_too_many_topics, stats.refused_data_too_large), (2, 1));
}
