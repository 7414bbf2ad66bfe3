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

/// A hub resuming `epoch` above `floor` with the journal at `path`, keys kept for `window`.
fn hub(path: &Path, epoch: Epoch, floor: u64, window: Duration, max_keys: usize) -> Hub {
    let journal = Arc::new(KeyJournal::open(path, epoch).unwrap());
    Hub::builder()
        .idempotency_window(window)
        .max_idempotency_keys(max_keys)
        .resume(epoch, floor)
        .key_journal(journal)
        .build()
}

async fn publish(hub: &Hub, t: &TopicName, key: &str) -> Published {
    hub.publish_idempotent(t, NewEvent::new(json!(key)).idempotency_key(key)).await.unwrap()
}

/// `(seq, position)` of a publish, and whether it was new.
fn numbers(published: &Published) -> (bool, u64, u64) {
    (matches!(published, Published::New(_)), published.seq(), published.position())
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn after_a_crash_a_resumed_hub_answers_the_keys_taken_before_and_continues_their_topics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let epoch = Epoch::from_u32(0x0c0ffee);
    let (t, u) = (topic("db.items"), topic("chat"));
    let first = hub(&path, epoch, 100, MINUTE, 1000);
    for key in ["src:1", "src:2", "src:3"] {
        assert!(numbers(&publish(&first, &t, key).await).0);
    }
    first.publish(&u, NewEvent::new(json!("no key"))).await.unwrap();
    assert_eq!(numbers(&publish(&first, &u, "u:1").await), (true, 2, 105));
    drop(first);

    let second = hub(&path, epoch, 1_000, MINUTE, 1000);
    // Retried after the crash: the original numbers, nothing stored.
    assert_eq!(numbers(&publish(&second, &t, "src:2").await), (false, 2, 102));
    assert_eq!(numbers(&publish(&second, &t, "src:1").await), (false, 1, 101));
    // A new key continues the topic after the keys remembered, above the floor.
    assert_eq!(numbers(&publish(&second, &t, "src:4").await), (true, 4, 1_001));
    assert_eq!(numbers(&publish(&second, &u, "u:2").await), (true, 3, 1_002));
    let batch = second.fetch(&[t.clone()], Cursor::at(epoch, 0), &FetchOptions::default()).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [4], "the replays stored nothing");
    drop(second);

    // The keys of the second run are remembered too, the first run's still.
    let third = hub(&path, epoch, 2_000, MINUTE, 1000);
    assert_eq!(numbers(&publish(&third, &t, "src:4").await), (false, 4, 1_001));
    assert_eq!(numbers(&publish(&third, &t, "src:3").await), (false, 3, 103));
    drop(third);

    // A hub of another epoch does not take them: those positions are not its.
    let other = hub(&path, Epoch::from_u32(0xbad), 0, MINUTE, 1000);
    assert_eq!(numbers(&publish(&other, &t, "src:1").await), (true, 1, 1));
}

#[tokio::test]
async fn a_key_is_remembered_for_what_was_left_of_its_window_when_the_process_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let epoch = Epoch::from_u32(7);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    // Written by a process that stopped just now: one key taken 70 s before, one 10 s before.
    let lines = format!(
        "pushgate-keys 1 {epoch}\n{} 1 11 t expired\n{} 2 12 t alive\n{} 4 14 t\n{} 3 13 t cut",
        now - 70_000,
        now - 10_000,
        now - 5_000,
        now
    );
    std::fs::write(&path, lines).unwrap();
    let t = topic("t");
    let hub = hub(&path, epoch, 100, MINUTE, 1000);
    assert_eq!(numbers(&publish(&hub, &t, "alive").await), (false, 2, 12));
    assert!(numbers(&publish(&hub, &t, "expired").await).0, "its window had passed");
    // The last line was cut short by a crash of the machine (no newline): still read, as its
    // fields are whole; a line missing a field is passed over.
    assert_eq!(numbers(&publish(&hub, &t, "cut").await), (false, 3, 13));
}

#[tokio::test]
async fn the_journal_stays_within_two_files_of_the_keys_a_hub_remembers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let epoch = Epoch::from_u32(9);
    let t = topic("t");
    let first = hub(&path, epoch, 0, MINUTE, 3);
    for n in 1..=10 {
        publish(&first, &t, &format!("k{n}")).await;
    }
    drop(first);
    let lines = |path: &Path| std::fs::read_to_string(path).map_or(0, |text| text.lines().count());
    let old = dir.path().join("keys.old");
    assert!(lines(&path) <= 1 + 3 && lines(&old) <= 1 + 3, "{} and {} lines", lines(&path), lines(&old));

    let second = hub(&path, epoch, 100, MINUTE, 3);
    // The three newest keys, as the first hub remembered them; older ones are new again.
    for n in 8..=10 {
        assert_eq!(numbers(&publish(&second, &t, &format!("k{n}")).await), (false, n, n));
    }
    assert!(numbers(&publish(&second, &t, "k7").await).0);
}
