//! RedisStorage against a real, private redis-server: two hubs ("nodes") in one process share
//! positions, history and cursors, and survive Redis going away.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::sync::Arc;
use std::time::Duration;

use pushgate_hub::{Cursor, FetchOptions, Hub, HubError, NewEvent};
use pushgate_redis::{RedisOptions, RedisState, RedisStorage};
use pushgate_testkit::{RedisServer, Relay};
use serde_json::json;

use crate::common;

use common::{WAIT, next_event, topic, until};

async fn node(redis: &RedisServer, options: RedisOptions) -> (Hub, RedisState) {
    common::node(&redis.url(), options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_on_one_node_reaches_the_other_with_the_same_numbers() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis, RedisOptions::default()).await;
    let (b, _) = node(&redis, RedisOptions::default()).await;
    assert_eq!(a.epoch(), b.epoch(), "nodes share the epoch, so cursors are portable");
    let t = topic("chat");
    let mut on_b = b.subscribe(&[t.clone()], Cursor::Now).unwrap();
    let mut sent = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        sent.push(node.publish(&t, NewEvent::new(json!(i))).await.unwrap());
    }
    for (i, expected) in sent.iter().enumerate() {
        let got = next_event(&mut on_b).await;
        assert_eq!((got.position(), got.seq()), (expected.position(), expected.seq()));
        assert_eq!(got.seq(), i as u64 + 1);
        assert_eq!(got.data().as_str(), i.to_string());
    }
    // A cursor from A resumes on B exactly.
    let cursor = sent[9].cursor();
    let batch = b.fetch(&[t.clone()], cursor, &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none());
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), (11..=20).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_later_answers_cursors_from_before_it_started() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis, RedisOptions::default()).await;
    let t = topic("orders");
    let first = a.publish(&t, NewEvent::new(json!(1))).await.unwrap();
    for i in 2..=5 {
        a.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    let (c, _) = node(&redis, RedisOptions::default()).await;
    let batch = c.fetch(&[t.clone()], first.cursor(), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none());
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_whose_start_was_trimmed_reports_a_reset_on_a_new_node() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis, RedisOptions::default()).await;
    let t = topic("trimmed");
    for i in 1..=6 {
        a.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    // Exact trim to the newest 3 entries: seq 1..=3 are gone from the shared log.
    let reply = redis.command(&["XTRIM", "pushgate:log", "MAXLEN", "3"]).await.unwrap();
    assert_eq!(reply.trim(), ":3");
    let (c, _) = node(&redis, RedisOptions::default()).await;
    let batch = c.fetch(&[t.clone()], Cursor::at(c.epoch(), 0), &FetchOptions::default()).await.unwrap();
    let reset = batch.reset.expect("seq 1..=3 were lost: a reset, not silence");
    assert_eq!(reset.topics()[0].resume_seq, 4);
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), vec![4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_ahead_of_this_node_waits_and_one_too_far_ahead_is_an_error() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis, RedisOptions::default().max_lead(100)).await;
    let t = topic("ahead");
    let head = a.publish(&t, NewEvent::new(json!(0))).await.unwrap().position();
    // As if issued by a node that applied 3 more events than this one.
    let ahead = Cursor::at(a.epoch(), head + 3);
    let batch = a.fetch(&[t.clone()], ahead, &FetchOptions::default()).await.unwrap();
    assert!(batch.events.is_empty() && batch.reset.is_none());
    assert_eq!(batch.cursor, ahead, "a short poll answers empty with the same cursor");
    let waiting = {
        let a = a.clone();
        let t = t.clone();
        tokio::spawn(async move {
            a.fetch(&[t], ahead, &FetchOptions::default().wait(WAIT)).await.map(|b| b.events)
        })
    };
    let mut sub = a.subscribe(&[t.clone()], ahead).unwrap();
    for i in 1..=4 {
        a.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    // Positions up to the cursor count as seen; the first one past it is delivered.
    let got = next_event(&mut sub).await;
    assert_eq!(got.position(), head + 4);
    let events = waiting.await.unwrap().unwrap();
    assert_eq!(events.iter().map(|e| e.position()).collect::<Vec<_>>(), vec![head + 4]);
    let too_far = Cursor::at(a.epoch(), head + 4 + 101);
    let err = a.fetch(&[t], too_far, &FetchOptions::default()).await.unwrap_err();
    assert!(matches!(err, HubError::CursorAhead { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarting_empty_is_survived_with_increasing_positions_and_no_loss() {
    let mut redis = RedisServer::start().await.unwrap();
    let (a, state_a) = node(&redis, RedisOptions::default()).await;
    let (b, state_b) = node(&redis, RedisOptions::default()).await;
    let epoch = a.epoch();
    let t = topic("outage");
    let mut on_a = a.subscribe(&[t.clone()], Cursor::Now).unwrap();
    let mut on_b = b.subscribe(&[t.clone()], Cursor::Now).unwrap();
    let mut last = 0;
    for i in 1..=3 {
        last = a.publish(&t, NewEvent::new(json!(i))).await.unwrap().position();
    }
    until("b to apply", || state_b.applied_position() == last).await;

    redis.kill().await.unwrap();
    until("a to notice", || !state_a.connected()).await;
    let err = b.publish(&t, NewEvent::new(json!("lost"))).await.unwrap_err();
    assert!(matches!(err, HubError::Unavailable { .. }), "{err:?}");
    assert!(state_a.last_error().is_some());

    redis.restart().await.unwrap();
    until("both to reconnect", || state_a.connected() && state_b.connected()).await;
    assert_eq!(
        redis.command(&["GET", "pushgate:epoch"]).await.unwrap().lines().nth(1),
        Some(&*epoch.to_string())
    );
    let mut positions = Vec::new();
    for i in 4..=6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let event = node.publish(&t, NewEvent::new(json!(i))).await.unwrap();
        assert_eq!(event.epoch(), epoch);
        assert_eq!(event.seq(), i, "seq continues from what the nodes had");
        positions.push(event.position());
    }
    assert!(positions[0] > last, "positions keep increasing across the wipe");
    for sub in [&mut on_a, &mut on_b] {
        for seq in 1..=6 {
            assert_eq!(next_event(sub).await.seq(), seq);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_another_epoch_stops_the_node_rather_than_mixing_histories() {
    let redis = RedisServer::start().await.unwrap();
    let (a, state) = node(&redis, RedisOptions::default()).await;
    let t = topic("x");
    a.publish(&t, NewEvent::new(json!(1))).await.unwrap();
    assert_eq!(redis.command(&["SET", "pushgate:epoch", "00000001"]).await.unwrap().trim(), "+OK");
    let err = a.publish(&t, NewEvent::new(json!(2))).await.unwrap_err();
    assert!(matches!(err, HubError::Unavailable { .. }), "{err:?}");
    until("the node to give up", || state.fatal().is_some()).await;
    assert!(!state.connected());
    assert!(state.fatal().unwrap().contains("00000001"));
    let err = a.publish(&t, NewEvent::new(json!(3))).await.unwrap_err();
    assert!(matches!(err, HubError::Unavailable { .. }), "{err:?}");
    // What it holds is still readable.
    let batch = a.fetch(&[t], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.events.len(), 1);
}

#[tokio::test]
async fn connecting_to_nothing_is_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = RedisOptions::default().timeout(Duration::from_millis(500));
    let err = RedisStorage::connect(&format!("redis://127.0.0.1:{port}"), options).await.unwrap_err();
    assert!(err.to_string().contains("redis"), "{err}");
    let err = RedisStorage::connect("http://nope", RedisOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("invalid redis url"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_found_behind_this_node_on_reconnect_are_raised_before_publishing() {
    let redis = RedisServer::start().await.unwrap();
    let (a, state) = node(&redis, RedisOptions::default()).await;
    let t = topic("raised");
    let mut last = None;
    for i in 1..=3 {
        last = Some(a.publish(&t, NewEvent::new(json!(i))).await.unwrap());
    }
    let last = last.unwrap();
    // The store kept its epoch but lost counters (as when another node restored it from less).
    assert_eq!(redis.command(&["SET", "pushgate:pos", "1"]).await.unwrap().trim(), "+OK");
    assert_eq!(redis.command(&["HSET", "pushgate:seq", "raised", "1"]).await.unwrap().trim(), ":0");
    redis.command(&["CLIENT", "KILL", "TYPE", "normal"]).await.unwrap();
    until("a to reconnect", || state.connected()).await;
    let event = loop {
        match a.publish(&t, NewEvent::new(json!(4))).await {
            Ok(event) => break event,
            Err(HubError::Unavailable { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(err) => panic!("{err:?}"),
        }
    };
    // Past what the node had read by a margin (other nodes may have read further), never back.
    assert!(event.position() > last.position(), "{} > {}", event.position(), last.position());
    assert_eq!(event.seq(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_not_written_by_pushgate_is_passed_over_without_stopping_the_node() {
    let redis = RedisServer::start().await.unwrap();
    let (a, state) = node(&redis, RedisOptions::default()).await;
    let t = topic("t");
    let first = a.publish(&t, NewEvent::new(json!(1))).await.unwrap();
    // A foreign entry at the next position, with the counter moved past it.
    let id = format!("{}-0", first.position() + 1);
    redis.command(&["XADD", "pushgate:log", &id, "junk", "1"]).await.unwrap();
    redis.command(&["INCR", "pushgate:pos"]).await.unwrap();
    let second = a.publish(&t, NewEvent::new(json!(2))).await.unwrap();
    assert_eq!((second.position(), second.seq()), (first.position() + 2, 2));
    assert!(state.connected());
    // A node started now loads past it too.
    let (b, _) = node(&redis, RedisOptions::default()).await;
    let batch = b.fetch(&[t], Cursor::Oldest, &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_keeps_its_subscribers_and_catches_up_when_back() {
    let redis = RedisServer::start().await.unwrap();
    let relay = Relay::start(redis.port()).await.unwrap();
    let storage = RedisStorage::connect(&relay.redis_url(), RedisOptions::default()).await.unwrap();
    let state_a = storage.state();
    let a = Hub::builder().storage(Arc::new(storage)).build();
    let (b, _) = node(&redis, RedisOptions::default()).await;
    let t = topic("catch-up");
    let mut on_a = a.subscribe(&[t.clone()], Cursor::Now).unwrap();
    for i in 1..=2 {
        b.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    for seq in 1..=2 {
        assert_eq!(next_event(&mut on_a).await.seq(), seq);
    }

    relay.cut();
    until("a to notice", || !state_a.connected()).await;
    let err = a.publish(&t, NewEvent::new(json!("refused"))).await.unwrap_err();
    assert!(matches!(err, HubError::Unavailable { .. }), "{err:?}");
    for i in 3..=5 {
        b.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    let nothing = tokio::time::timeout(Duration::from_millis(300), on_a.recv()).await;
    assert!(nothing.is_err(), "a cannot see b's events while cut off: {nothing:?}");

    relay.resume();
    for seq in 3..=5 {
        assert_eq!(next_event(&mut on_a).await.seq(), seq, "caught up in order");
    }
    until("a to reconnect", || state_a.connected()).await;
    let event = a.publish(&t, NewEvent::new(json!(6))).await.unwrap();
    assert_eq!(event.seq(), 6);
    assert_eq!(next_event(&mut on_a).await.seq(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscriber_to_a_topic_new_to_this_node_is_not_cut_off_by_its_earlier_events() {
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis, RedisOptions::default()).await;
    let (old, quiet) = (topic("old"), topic("quiet"));
    for i in 1..=3 {
        a.publish(&old, NewEvent::new(json!(i))).await.unwrap();
    }
    let mut last_old = None;
    for i in 1..=3 {
        last_old = Some(a.publish(&quiet, NewEvent::new(json!(i))).await.unwrap());
    }
    let first_quiet = last_old.unwrap().position() - 2;
    // `old`'s entries leave the shared log: a node started now never sees them.
    assert_eq!(redis.command(&["XTRIM", "pushgate:log", "MAXLEN", "3"]).await.unwrap().trim(), ":3");
    let (b, state_b) = node(&redis, RedisOptions::default()).await;
    let mut live = b.subscribe(&[old.clone()], Cursor::Now).unwrap();
    let subscribed_at = state_b.applied_position();
    // Another topic moves the head past the subscriber before `old` speaks again.
    let other = a.publish(&quiet, NewEvent::new(json!(4))).await.unwrap();
    until("b to apply", || state_b.applied_position() == other.position()).await;
    let fourth = a.publish(&old, NewEvent::new(json!(4))).await.unwrap();
    assert_eq!(fourth.seq(), 4);
    let got = next_event(&mut live).await;
    assert_eq!((got.position(), got.seq()), (fourth.position(), 4), "delivered, not Lagged");
    // A poller from before b knew the topic may have missed seq 1..=3: a reset.
    let batch =
        b.fetch(&[old.clone()], Cursor::at(b.epoch(), first_quiet), &FetchOptions::default()).await.unwrap();
    let reset = batch.reset.expect("an older cursor may have missed seq 1..=3");
    assert_eq!(reset.topics()[0].resume_seq, 4);
    // One from when the subscriber started missed nothing.
    let batch =
        b.fetch(&[old], Cursor::at(b.epoch(), subscribed_at), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), vec![4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_restored_by_a_node_that_read_less_hands_out_no_position_another_node_holds() {
    let mut redis = RedisServer::start().await.unwrap();
    let (relay_a, relay_b) =
        (Relay::start(redis.port()).await.unwrap(), Relay::start(redis.port()).await.unwrap());
    let storage_a = RedisStorage::connect(&relay_a.redis_url(), RedisOptions::default()).await.unwrap();
    let storage_b = RedisStorage::connect(&relay_b.redis_url(), RedisOptions::default()).await.unwrap();
    let (state_a, state_b) = (storage_a.state(), storage_b.state());
    let a = Hub::builder().storage(Arc::new(storage_a)).build();
    let b = Hub::builder().storage(Arc::new(storage_b)).build();
    let t = topic("reissue");
    let mut on_b = b.subscribe(&[t.clone()], Cursor::Now).unwrap();
    a.publish(&t, NewEvent::new(json!(1))).await.unwrap();
    // A falls behind: B publishes (and applies) two more that A never reads.
    relay_a.cut();
    until("a to notice", || !state_a.connected()).await;
    for i in 2..=3 {
        b.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    for seq in 1..=3 {
        assert_eq!(next_event(&mut on_b).await.seq(), seq);
    }
    // Redis loses everything; A, which read less than B, restores it alone.
    relay_b.cut();
    until("b to notice", || !state_b.connected()).await;
    redis.restart().await.unwrap();
    relay_a.resume();
    until("a to restore", || state_a.connected()).await;
    let after = a.publish(&t, NewEvent::new(json!("after"))).await.unwrap();
    assert!(after.position() > state_b.applied_position(), "a position b holds was handed out again");
    relay_b.resume();
    // B must not skip it as "already applied".
    let got = next_event(&mut on_b).await;
    assert_eq!(got.position(), after.position());
    assert_eq!(got.data().as_str(), "\"after\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_away_while_the_log_was_trimmed_past_it_resets_older_readers() {
    let redis = RedisServer::start().await.unwrap();
    let relay = Relay::start(redis.port()).await.unwrap();
    let storage = RedisStorage::connect(&relay.redis_url(), RedisOptions::default()).await.unwrap();
    let state_a = storage.state();
    let a = Hub::builder().storage(Arc::new(storage)).build();
    let (b, _) = node(&redis, RedisOptions::default()).await;
    let (busy, quiet) = (topic("busy"), topic("quiet"));
    let first = b.publish(&busy, NewEvent::new(json!(1))).await.unwrap();
    until("a to apply", || state_a.applied_position() == first.position()).await;

    relay.cut();
    until("a to notice", || !state_a.connected()).await;
    for i in 1..=3 {
        b.publish(&quiet, NewEvent::new(json!(i))).await.unwrap();
    }
    let last = b.publish(&busy, NewEvent::new(json!(2))).await.unwrap();
    // `quiet`'s events leave the log before A reads them, and nothing of it comes after.
    assert_eq!(redis.command(&["XTRIM", "pushgate:log", "MAXLEN", "1"]).await.unwrap().trim(), ":4");
    relay.resume();
    until("a to catch up", || state_a.applied_position() == last.position()).await;

    let old = Cursor::at(a.epoch(), first.position());
    let batch = a.fetch(&[quiet.clone()], old, &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_some(), "quiet's seq 1..=3 were lost to this reader: a reset, not silence");
    let batch = a.fetch(&[busy.clone()], old, &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), vec![2]);
    // A reader from after the trimmed range missed nothing.
    let now = Cursor::at(a.epoch(), last.position() - 1);
    let batch = a.fetch(&[quiet, busy], now, &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_none(), "{:?}", batch.reset);
    assert_eq!(batch.events.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_node_stops_on_entries_of_another_epoch_instead_of_applying_them() {
    let redis = RedisServer::start().await.unwrap();
    let (a, state_a) = node(&redis, RedisOptions::default()).await;
    let t = topic("wiped");
    let mut on_a = a.subscribe(&[t.clone()], Cursor::Now).unwrap();
    a.publish(&t, NewEvent::new(json!(1))).await.unwrap();
    assert_eq!(next_event(&mut on_a).await.seq(), 1);
    // Wiped without a restart: A's connections live on, and a new node makes a new epoch.
    assert_eq!(redis.command(&["FLUSHALL"]).await.unwrap().trim(), "+OK");
    let (c, _) = node(&redis, RedisOptions::default()).await;
    assert_ne!(c.epoch(), a.epoch());
    for i in 1..=3 {
        c.publish(&t, NewEvent::new(json!(i))).await.unwrap();
    }
    until("a to give up", || state_a.fatal().is_some()).await;
    assert!(state_a.fatal().unwrap().contains(&c.epoch().to_string()), "{:?}", state_a.fatal());
    assert!(!state_a.connected());
    let nothing = tokio::time::timeout(Duration::from_millis(300), on_a.recv()).await;
    assert!(nothing.is_err(), "another epoch's event applied as this one's: {nothing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_redis_took_succeeds_even_before_this_node_applied_it() {
    let redis = RedisServer::start().await.unwrap();
    // No time at all to apply: every publish answers before (or as) the tail applies it.
    let (a, _) = node(&redis, RedisOptions::default().apply_wait(Duration::ZERO)).await;
    let t = topic("committed");
    let mut sub = a.subscribe(&[t.clone()], Cursor::Now).unwrap();
    let mut sent = Vec::new();
    for i in 1..=20 {
        let event =
            a.publish(&t, NewEvent::new(json!(i))).await.expect("stored in redis, so not unavailable");
        assert_eq!(event.seq(), i);
        assert_eq!(event.data().as_str(), i.to_string());
        sent.push(event.position());
    }
    for (i, position) in sent.iter().enumerate() {
        let got = next_event(&mut sub).await;
        assert_eq!((got.position(), got.seq()), (*position, i as u64 + 1), "each once, in order");
    }
}

/// A server that speaks just enough RESP to say it is Redis 6.0 (no such redis-server is
/// installed here): `INFO` answers with that version, every other command with `+OK`.
async fn old_redis() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let mut line = String::new();
                loop {
                    line.clear();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let Some(count) = line.trim().strip_prefix('*').and_then(|n| n.parse::<usize>().ok())
                    else {
                        return;
                    };
                    let mut args = Vec::new();
                    for _ in 0..count {
                        line.clear();
                        read.read_line(&mut line).await.unwrap();
                        let len: usize = line.trim().trim_start_matches('$').parse().unwrap();
                        let mut arg = vec![0; len + 2];
                        read.read_exact(&mut arg).await.unwrap();
                        args.push(String::from_utf8_lossy(&arg[..len]).to_uppercase());
                    }
                    let reply = if args.first().map(String::as_str) == Some("INFO") {
                        let info = "# Server\r\nredis_version:6.0.16\r\nredis_mode:standalone\r\n";
                        format!("${}\r\n{info}\r\n", info.len())
                    } else {
                        "+OK\r\n".to_owned()
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn a_redis_older_than_6_2_is_refused_with_a_clear_error() {
    let (port, server) = old_redis().await;
    let options = RedisOptions::default().timeout(Duration::from_secs(2));
    let err = RedisStorage::connect(&format!("redis://127.0.0.1:{port}"), options).await.unwrap_err();
    assert!(matches!(err, pushgate_redis::ConnectError::TooOld { .. }), "{err:?}");
    assert_eq!(err.to_string(), "redis 6.0.16 is too old: pushgate needs redis 6.2 or newer");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_of_many_topics_sets_the_epoch_only_after_every_seq_counter() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut redis = RedisServer::start().await.unwrap();
    let relay = Relay::start(redis.port()).await.unwrap();
    let storage = RedisStorage::connect(&relay.redis_url(), RedisOptions::default()).await.unwrap();
    let state = storage.state();
    let a = Hub::builder().storage(Arc::new(storage)).build();
    // More topics than one restore call carries (500), so the restore takes several calls.
    for i in 0..1200 {
        a.publish(&topic(&format!("t{i}")), NewEvent::new(json!(i))).await.unwrap();
    }
    relay.cut();
    until("a to notice", || !state.connected()).await;
    redis.restart().await.unwrap();
    // Watch every command Redis runs, scripts' included, while the node restores.
    let mut monitor = tokio::net::TcpStream::connect(("127.0.0.1", redis.port())).await.unwrap();
    monitor.write_all(b"MONITOR\r\n").await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let n = monitor.read(&mut buf).await.unwrap();
    seen.extend_from_slice(&buf[..n]);
    relay.resume();
    until("a to restore", || state.connected()).await;
    let event = a.publish(&topic("t1199"), NewEvent::new(json!("after"))).await.unwrap();
    assert_eq!(event.seq(), 2);
    while !String::from_utf8_lossy(&seen).contains("\"t1199\"")
        || !String::from_utf8_lossy(&seen).contains("XADD")
    {
        let n = tokio::time::timeout(WAIT, monitor.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "monitor closed");
        seen.extend_from_slice(&buf[..n]);
    }
    let log = String::from_utf8_lossy(&seen);
    let lines: Vec<&str> = log.lines().collect();
    let epoch_set = lines
        .iter()
        .position(|l| l.contains("\"SET\" \"pushgate:epoch\""))
        .unwrap_or_else(|| panic!("no SET of the epoch in {log}"));
    // Up to the publish after the restore (its own HSET comes after the epoch, rightly).
    let publish =
        lines.iter().position(|l| l.contains("\"XADD\"") && l.contains("\"topic\"")).unwrap_or(lines.len());
    let lines = &lines[..publish];
    let last_seq = lines.iter().rposition(|l| l.contains("\"HSET\" \"pushgate:seq\""));
    let restored = lines.iter().filter(|l| l.contains("\"HSET\" \"pushgate:seq\"")).count();
    assert!(restored >= 1200, "every topic's seq restored ({restored})");
    assert!(
        last_seq.is_some_and(|last| last < epoch_set),
        "the epoch (which lets publishes in) was set before every seq counter was back"
    );
}

#[tokio::test]
async fn a_redis_cluster_node_is_refused_with_a_clear_error() {
    let redis = RedisServer::start_with(vec!["--cluster-enabled".into(), "yes".into()]).await.unwrap();
    let err = RedisStorage::connect(&redis.url(), RedisOptions::default()).await.unwrap_err();
    assert!(matches!(err, pushgate_redis::ConnectError::Cluster), "{err:?}");
    assert!(err.to_string().contains("cluster mode"), "{err}");
}

/// A node applies its own publish from the script's answer when nothing before it is unread
/// (`publish.rs`), and from its tail otherwise: with two nodes each publishing from two tasks at
/// once, the two paths race all the time. Every node's subscribers must still see every event
/// once, in log order, with each topic's `seq` counting up by one, and each publish's answer must
/// be the event they see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_on_two_nodes_reach_both_once_and_in_log_order() {
    const PER_TASK: u64 = 150;
    let redis = RedisServer::start().await.unwrap();
    let (a, _) = node(&redis, RedisOptions::default()).await;
    let (b, _) = node(&redis, RedisOptions::default()).await;
    let topics = [topic("race.one"), topic("race.two")];
    let mut readers = Vec::new();
    for hub in [&a, &b] {
        readers.push(hub.subscribe(&topics, Cursor::Now).unwrap());
    }
    let mut tasks = Vec::new();
    for (n, hub) in [&a, &a, &b, &b].into_iter().enumerate() {
        let (hub, t) = (hub.clone(), topics[n % 2].clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..PER_TASK {
                sent.push(hub.publish(&t, NewEvent::new(json!(format!("{n}:{i}")))).await.unwrap());
            }
            sent
        }));
    }
    let mut sent = std::collections::HashMap::new();
    for task in tasks {
        for event in task.await.unwrap() {
            assert!(sent.insert(event.position(), event).is_none(), "a position answered twice");
        }
    }
    let total = sent.len();
    assert_eq!(total as u64, 4 * PER_TASK);
    for reader in &mut readers {
        let mut last_position = 0;
        let mut next_seq = std::collections::HashMap::new();
        for _ in 0..total {
            let got = next_event(reader).await;
            assert!(got.position() > last_position, "out of log order at {}", got.position());
            last_position = got.position();
            let seq = next_seq.entry(got.topic().clone()).or_insert(1);
            assert_eq!(got.seq(), *seq, "{}: seq skipped or repeated", got.topic());
            *seq += 1;
            let answered = &sent[&got.position()];
            assert_eq!(
                (got.topic(), got.seq(), got.data().as_str()),
                (answered.topic(), answered.seq(), answered.data().as_str()),
                "the event seen is not the one the publish answered"
            );
        }
        let extra = tokio::time::timeout(Duration::from_millis(200), reader.recv()).await;
        assert!(extra.is_err(), "an event delivered twice: {extra:?}");
    }
}
