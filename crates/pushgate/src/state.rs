//! The state file: what a single node without Redis keeps across restarts so that its clients'
//! cursors stay valid, namely the hub's epoch and a floor for its positions.
//!
//! Without it an in-memory hub takes a new epoch at every start, and every cursor from before
//! is answered with a reset. With it, the restarted hub resumes the epoch
//! ([`HubBuilder::resume`](pushgate_hub::HubBuilder::resume)); the database sources then continue
//! their topics' `seq` and serve the changes memory lost from their outboxes, so a client comes
//! back with its last id and misses nothing.
//!
//! Positions must never be handed out twice in one epoch (a cursor would then skip events). The
//! file records the highest position the hub may have used (`head`, its start floor plus every
//! event published since) every [`SAVE_EVERY`] and on shutdown. A crash loses at most the last
//! interval's events from that count, so the next start's floor adds, on top of the recorded
//! `head`, one position per microsecond since the record was written (and one interval's worth
//! more, for a clock set back): a hub publishing less than a million events a second cannot have
//! gone past it.
//!
//! Beside it, `<file>.keys` (and `<file>.keys.old`) is the hub's idempotency-key journal
//! ([`KeyJournal`]): a database source publishes each change with a key and marks it published in
//! the outbox only afterwards, so a crash between the two makes the restarted node publish the
//! change again; the journal answers it with the event's original numbers, and a subscriber that
//! already got it does not get it twice.
//!
//! The file is locked (`flock`) for as long as the process runs. A second process pointed at the
//! same file (two `pushgate serve` in one folder) does not share it: it runs with a fresh epoch
//! and says so. The format is one line of JSON, `{"epoch":"9f03c1d2","head":1234,"saved_at_ms":…}`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushgate_hub::{Epoch, Hub, KeyJournal};
use serde::{Deserialize, Serialize};

/// How often the running hub's `head` is written down.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The lines the file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    /// The epoch, 8 hex digits as in cursors.
    #[serde(with = "epoch_hex")]
    epoch: Epoch,
    /// The highest position the hub may have handed out.
    head: u64,
    /// When this was written, milliseconds since the Unix epoch.
    saved_at_ms: u64,
}

/// The state file, locked by this process.
#[derive(Debug)]
pub(crate) struct StateFile {
    file: File,
    path: PathBuf,
    epoch: Epoch,
    floor: u64,
    /// The hub's idempotency-key journal beside it; `None` when it could not be opened (said).
    journal: Option<Arc<KeyJournal>>,
}

/// What a hub resumes from the state file.
#[derive(Debug, Clone)]
pub(crate) struct Resume {
    pub(crate) epoch: Epoch,
    /// Every position the epoch used is at or below it.
    pub(crate) floor: u64,
    pub(crate) journal: Option<Arc<KeyJournal>>,
}

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the state file {}: {source}", path.display())]
pub(crate) struct StateError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl StateFile {
    /// Opens (creating if missing) and locks the state file at `path`, and returns it with the
    /// epoch and position floor the hub should resume: the recorded epoch and a floor past every
    /// position it may have used, or a fresh epoch when the file was new or unreadable.
    /// `Ok(None)` when another process holds the file: this one must not share it.
    pub(crate) fn open(path: &Path) -> Result<Option<Self>, StateError> {
        let failed = |source| StateError { path: path.to_owned(), source };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(source)) => return Err(failed(source)),
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(failed)?;
        let (epoch, floor) = match serde_json::from_str::<Saved>(text.trim()) {
            Ok(saved) => (saved.epoch, resume_floor(saved, now_ms())),
            Err(_) if text.trim().is_empty() => (Epoch::random(), 0),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "the state file is unreadable; starting a new epoch");
                (Epoch::random(), 0)
            }
        };
        let journal_path = journal_path(path);
        let journal = match KeyJournal::open(&journal_path, epoch) {
            Ok(journal) => Some(Arc::new(journal)),
            Err(error) => {
                tracing::warn!(
                    path = %journal_path.display(), %error,
                    "cannot use the idempotency-key journal: a change published just before a crash may be delivered again"
                );
                None
            }
        };
        let state = Self { file, path: path.to_owned(), epoch, floor, journal };
        state.save(floor).map_err(failed)?;
        Ok(Some(state))
    }

    /// The epoch to resume.
    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// What the hub resumes: the epoch, above its position floor, with the key journal.
    pub(crate) fn resume(&self) -> Resume {
        Resume { epoch: self.epoch, floor: self.floor, journal: self.journal.clone() }
    }

    /// The path, for logs.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records `head` (in place: the lock is on this file, so it is never replaced).
    fn save(&self, head: u64) -> std::io::Result<()> {
        let saved = Saved { epoch: self.epoch, head, saved_at_ms: now_ms() };
        let mut line = serde_json::to_string(&saved).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(line.as_bytes())?;
        file.set_len(line.len() as u64)?;
        file.sync_data()
    }

    /// Writes the hub's head down every [`SAVE_EVERY`] until the hub closes, and once more then.
    pub(crate) async fn keep(self, hub: Hub) {
        let mut every = tokio::time::interval(SAVE_EVERY);
        // A journal that cannot be synced is said once, until it can again.
        let mut sync_failing = false;
        loop {
            let closed = tokio::select! {
                _ = every.tick() => false,
                () = hub.closed() => true,
            };
            // Every new event takes one position above the floor.
            let head = self.floor.saturating_add(hub.stats().published);
            if let Err(error) = self.save(head) {
                tracing::warn!(path = %self.path.display(), %error, "cannot write the state file");
            }
            if let Some(journal) = &self.journal {
                // Off the runtime's threads: a sync waits for the disk.
                let journal = Arc::clone(journal);
                let synced = tokio::task::spawn_blocking(move || journal.sync())
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|synced| synced);
                match synced {
                    Ok(()) => sync_failing = false,
                    Err(error) if !sync_failing => {
                        sync_failing = true;
                        tracing::warn!(path = %self.path.display(), %error, "cannot sync the idempotency-key journal");
                    }
                    Err(_) => {}
                }
            }
            if closed {
                return;
            }
        }
    }
}

/// The key journal's path beside the state file at `path`: `<path>.keys`.
fn journal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".keys");
    PathBuf::from(name)
}

/// The floor a restart resumes above: the recorded head, plus one position per microsecond
/// since it was recorded and one save interval's worth (a clock set back adds nothing).
fn resume_floor(saved: Saved, now_ms: u64) -> u64 {
    let since = now_ms.saturating_sub(saved.saved_at_ms).saturating_mul(1000);
    let interval = u64::try_from(SAVE_EVERY.as_micros()).unwrap_or(u64::MAX);
    saved.head.saturating_add(since).saturating_add(interval)
}

fn now_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// An [`Epoch`] as the 8 hex digits of cursors.
mod epoch_hex {
    use pushgate_hub::Epoch;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(epoch: &Epoch, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(epoch)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Epoch, D::Error> {
        let text = String::deserialize(deserializer)?;
        u32::from_str_radix(&text, 16).map(Epoch::from_u32).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_restart_resumes_the_epoch_above_every_position_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pushgate-state");
        let first = StateFile::open(&path).unwrap().expect("free");
        assert_eq!(first.floor, 0);
        let epoch = first.epoch();
        // A second process finds it locked.
        assert!(StateFile::open(&path).unwrap().is_none());
        first.save(5000).unwrap();
        drop(first);

        let second = StateFile::open(&path).unwrap().expect("free again");
        assert_eq!(second.epoch(), epoch);
        assert!(second.floor > 5000 + 1_000_000 - 1, "{}", second.floor);
        drop(second);

        std::fs::write(&path, "not json").unwrap();
        let third = StateFile::open(&path).unwrap().expect("free");
        assert_ne!(third.epoch(), epoch);
        assert_eq!(third.floor, 0);
    }

    #[test]
    fn the_floor_counts_a_microsecond_a_position_and_never_goes_back() {
        let saved = Saved { epoch: Epoch::from_u32(1), head: 10, saved_at_ms: 1_000 };
        assert_eq!(resume_floor(saved, 3_000), 10 + 2_000_000 + 1_000_000);
        assert_eq!(resume_floor(saved, 0), 10 + 1_000_000, "a clock set back adds nothing");
        let text = serde_json::to_string(&saved).unwrap();
        assert_eq!(text, r#"{"epoch":"00000001","head":10,"saved_at_ms":1000}"#);
        assert_eq!(serde_json::from_str::<Saved>(&text).unwrap(), saved);
    }
}
