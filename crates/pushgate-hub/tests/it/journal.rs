//! The idempotency-key journal: what a resumed in-memory hub remembers of the keys taken before
//! it crashed (each hub here is dropped without any shutdown, as a killed process is).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushgate_hub::{Cursor, Epoch, FetchOptions, Hub, KeyJournal, NewEvent, Published, TopicName};
use serde_json::json;

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

/// A hub resuming `epoch` above `floor` with the journal at `path`, keys kept for `window`.
fn hub_with(
    path: &Path,
    epoch: Epoch,
    floor: u64,
    window: Duration,
    max_keys: usize,
) -> (Hub, Arc<KeyJournal>) {
    let journal = Arc::new(KeyJournal::open(path, epoch).unwrap());
    let hub = Hub::builder()
        .idempotency_window(window)
        .max_idempotency_keys(max_keys)
        .resume(epoch, floor)
        .key_journal(Arc::clone(&journal))
        .build();
    (hub, journal)
}

fn hub(path: &Path, epoch: Epoch, floor: u64) -> Hub {
    hub_with(path, epoch, floor, MINUTE, 1000).0
}

async fn publish(hub: &Hub, t: &TopicName, key: &str) -> Published {
    hub.publish_idempotent(t, NewEvent::new(json!(key)).idempotency_key(key)).await.unwrap()
}

/// Whether a publish was new, and its `seq` and position.
fn numbers(published: &Published) -> (bool, u64, u64) {
    (matches!(published, Published::New(_)), published.seq(), published.position())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A journal line as the hub writes it.
fn line(at_ms: u64, seq: u64, position: u64, topic: &str, key: &str) -> String {
    format!("{at_ms} {seq} {position} {topic} {} {key}\n", key.len())
}

#[tokio::test]
async fn after_a_crash_a_resumed_hub_answers_the_keys_taken_before_and_continues_their_topics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let epoch = Epoch::from_u32(0x0c0ffee);
    let (t, u) = (topic("db.items"), topic("chat"));
    let first = hub(&path, epoch, 100);
    for key in ["src:1", "src:2", "src:3"] {
        assert!(numbers(&publish(&first, &t, key).await).0);
    }
    first.publish(&u, NewEvent::new(json!("no key"))).await.unwrap();
    assert_eq!(numbers(&publish(&first, &u, "u:1").await), (true, 2, 105));
    drop(first);

    let second = hub(&path, epoch, 1_000);
    // Retried after the crash: the original numbers, nothing stored.
    assert_eq!(numbers(&publish(&second, &t, "src:2").await), (false, 2, 102));
    assert_eq!(numbers(&publish(&second, &t, "src:1").await), (false, 1, 101));
    // A new key continues the topic after the newest key remembered, above the floor.
    assert_eq!(numbers(&publish(&second, &t, "src:4").await), (true, 4, 1_001));
    assert_eq!(numbers(&publish(&second, &u, "u:2").await), (true, 3, 1_002));
    let batch = second.fetch(&[t.clone()], Cursor::at(epoch, 0), &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [4], "the replays stored nothing");
    drop(second);

    // The keys of the second run are remembered too, the first run's still.
    let third = hub(&path, epoch, 2_000);
    assert_eq!(numbers(&publish(&third, &t, "src:4").await), (false, 4, 1_001));
    assert_eq!(numbers(&publish(&third, &t, "src:3").await), (false, 3, 103));
    drop(third);

    // A hub of another epoch does not take them: those positions are not its.
    let other = hub(&path, Epoch::from_u32(0xbad), 0);
    assert_eq!(numbers(&publish(&other, &t, "src:1").await), (true, 1, 1));
}

#[tokio::test]
async fn an_older_key_retried_after_a_sweep_neither_reuses_numbers_nor_hides_what_a_reader_missed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let epoch = Epoch::from_u32(0x5eed);
    let t = topic("t");
    let first = hub(&path, epoch, 0);
    publish(&first, &t, "k1").await;
    publish(&first, &t, "k2").await;
    first.publish(&t, NewEvent::new(json!("no key"))).await.unwrap();
    publish(&first, &t, "k4").await;
    drop(first);

    let second = hub(&path, epoch, 1_000);
    // The maintenance sweep forgets the empty topic record before anything is published.
    second.sweep();
    assert_eq!(numbers(&publish(&second, &t, "k1").await), (false, 1, 1));
    // New events are numbered after the newest keyed one the journal holds (the journal knows
    // keyed events only: an unkeyed one after it would have its number taken again).
    assert_eq!(numbers(&publish(&second, &t, "k5").await), (true, 5, 1_001));
    // A reader that had `k2` (position 2) missed the unkeyed event and `k4`: it is told it may
    // have, not served as if nothing happened.
    let batch = second.fetch(&[t.clone()], Cursor::at(epoch, 2), &FetchOptions::default()).await.unwrap();
    assert!(batch.reset.is_some(), "{batch:?}");
}

#[tokio::test]
async fn a_key_is_remembered_for_what_was_left_of_its_window_when_the_process_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let epoch = Epoch::from_u32(7);
    let t = topic("t");
    // A process that stopped 1,000 s ago: one key taken 70 s before it stopped, one 50 s before.
    let stopped = now_ms() - 1_000_000;
    let text = format!(
        "pushgate-keys 1 {epoch}\n{}{}",
        line(stopped - 70_000, 1, 11, "t", "expired"),
        line(stopped - 50_000, 2, 12, "t", "alive")
    );
    std::fs::write(&path, text).unwrap();
    let file = std::fs::File::options().append(true).open(&path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_millis(stopped)).unwrap();
    drop(file);

    let (second, journal) = hub_with(&path, epoch, 100, MINUTE, 1000);
    assert!(numbers(&publish(&second, &t, "expired").await).0, "its window had passed");
    // The 1,000 s down did not count: 10 s of its window were left.
    assert_eq!(numbers(&publish(&second, &t, "alive").await), (false, 2, 12));
    // This run lives on, dating the file now, then crashes; the next restart still counts only
    // the time the processes lived.
    journal.sync().unwrap();
    drop((second, journal));
    let third = hub(&path, epoch, 200);
    assert_eq!(numbers(&publish(&third, &t, "alive").await), (false, 2, 12));
}

#[tokio::test]
async fn a_line_cut_short_by_a_crash_is_dropped_and_the_next_one_starts_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let epoch = Epoch::from_u32(8);
    let t = topic("t");
    let now = now_ms();
    // The last line lost its end: `src:12` cut to `src:1` (a valid key of its own).
    let whole = line(now, 1, 11, "t", "src:11");
    let cut = line(now, 2, 12, "t", "src:12");
    std::fs::write(&path, format!("pushgate-keys 1 {epoch}\n{whole}{}", &cut[..cut.len() - 2])).unwrap();

    let second = hub(&path, epoch, 100);
    assert_eq!(numbers(&publish(&second, &t, "src:11").await), (false, 1, 11));
    assert!(numbers(&publish(&second, &t, "src:1").await).0, "the cut key is no key");
    assert!(numbers(&publish(&second, &t, "after").await).0);
    drop(second);
    let third = hub(&path, epoch, 200);
    // Written after the cut line, on a line of its own: read back.
    assert_eq!(numbers(&publish(&third, &t, "after").await), (false, 3, 102));
    assert_eq!(numbers(&publish(&third, &t, "src:1").await), (false, 2, 101));
}

#[tokio::test]
async fn the_journal_stays_within_two_files_of_the_keys_a_hub_remembers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let epoch = Epoch::from_u32(9);
    let t = topic("t");
    let (first, journal) = hub_with(&path, epoch, 0, MINUTE, 3);
    for n in 1..=10 {
        publish(&first, &t, &format!("k{n}")).await;
        journal.sync().unwrap();
    }
    drop((first, journal));
    let lines = |path: &Path| std::fs::read_to_string(path).map_or(0, |text| text.lines().count());
    let old = dir.path().join("keys.old");
    assert!(lines(&path) <= 1 + 3 && lines(&old) <= 1 + 3, "{} and {} lines", lines(&path), lines(&old));

    let second = hub_with(&path, epoch, 100, MINUTE, 3).0;
    // The three newest keys, as the first hub remembered them; older ones are new again.
    for n in 8..=10 {
        assert_eq!(numbers(&publish(&second, &t, &format!("k{n}")).await), (false, n, n));
    }
    assert!(numbers(&publish(&second, &t, "k7").await).0);
}
