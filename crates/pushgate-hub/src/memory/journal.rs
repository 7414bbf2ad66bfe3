//! The idempotency-key journal of an in-memory storage: a file the storage writes each key it
//! takes to before the event becomes readable, so that after a crash a restart resuming the
//! epoch still answers the key with the event's original numbers.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::cursor::Epoch;
use crate::topic::TopicName;

/// The first word of a journal file's header line; the format's version follows it.
const MAGIC: &str = "pushgate-keys 1";

/// Where a [`MemoryStorage`](crate::MemoryStorage) writes down the idempotency keys it takes, so
/// that a restart resuming its epoch ([`MemoryStorage::resume`](crate::MemoryStorage::resume))
/// still answers them ([`MemoryStorage::key_journal`](crate::MemoryStorage::key_journal)).
///
/// Why: a publisher that retries after the process died (a database source republishing the
/// changes it had not yet marked published) must get the original event's `seq` and position
/// back, not a second event, or readers that saw the first one get it twice. So each new key
/// is written, with its topic, `seq` and position, in the same critical section that sequences
/// the event and before the head moves past it: once a reader can see an event, its key is in
/// the file.
///
/// What it survives: a crash of the process (the write is in the kernel before anyone reads the
/// event). A crash of the machine can lose what the kernel had not written to disk; call
/// [`sync`](Self::sync) periodically to bound that (the gateway does every second).
///
/// A key's window does not run while the process is down: a key taken 60 s before the crash
/// is remembered for the rest of its window after the restart.
///
/// The file is bounded: writes go to `path`; when it holds as many keys as the storage
/// remembers, or is older than the window, it becomes `path.old` (replacing the previous one)
/// and a new `path` starts, so the two together hold every key the storage may still remember.
/// Each line after a header (`pushgate-keys 1 <epoch>`) is
/// `<unix ms> <seq> <position> <topic> <key>`; a file of another epoch is emptied on open.
pub struct KeyJournal {
    path: PathBuf,
    old_path: PathBuf,
    epoch: Epoch,
    writer: Mutex<Writer>,
    /// The keys read on open, until the storage takes them.
    remembered: Mutex<Remembering>,
}

/// What [`KeyJournal::open`] read, for [`KeyJournal::start`].
#[derive(Default)]
struct Remembering {
    lines: Vec<Line>,
    /// When the file was last written or synced: the process lived at least until then.
    alive_ms: u64,
}

impl std::fmt::Debug for KeyJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyJournal")
            .field("path", &self.path)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

struct Writer {
    file: File,
    /// Keys written to the current file.
    written: usize,
    /// When the current file was started (or opened).
    started: Instant,
    /// When to start a new file: after this many keys, or this long.
    max_keys: usize,
    max_age: Duration,
    /// A write failed and was reported; the next failures are not.
    failing: bool,
}

/// A key as the file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) at_ms: u64,
    pub(crate) seq: u64,
    pub(crate) position: u64,
    pub(crate) topic: TopicName,
    pub(crate) key: Box<str>,
}

/// A key read back, with how much of its window is left.
pub(crate) struct Remembered {
    pub(crate) line: Line,
    pub(crate) left: Duration,
}

impl KeyJournal {
    /// Opens the journal at `path` (and `path.old`) for a storage of `epoch`, creating it if
    /// missing, and reads the keys it holds. Files of another epoch, or unreadable, are
    /// emptied: their keys belong to positions this epoch never handed out.
    ///
    /// Only one process may use a journal: the caller locks it (the gateway keeps it beside its
    /// locked state file).
    ///
    /// # Errors
    /// The file cannot be opened, read or written.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::sync::Arc;
    /// use pushgate_hub::{Epoch, HistoryLimit, KeyJournal, MemoryStorage};
    ///
    /// let dir = std::env::temp_dir().join(format!("pushgate-journal-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let epoch = Epoch::from_u32(0x5eed);
    /// let journal = Arc::new(KeyJournal::open(&dir.join("keys"), epoch)?);
    /// let storage = MemoryStorage::new(HistoryLimit::default(), 100).resume(epoch, 1_000).key_journal(journal);
    /// # drop(storage); std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn open(path: &Path, epoch: Epoch) -> std::io::Result<Self> {
        let mut old_path = path.as_os_str().to_owned();
        old_path.push(".old");
        let old_path = PathBuf::from(old_path);
        let old = read(&old_path, epoch)?;
        let current = read(path, epoch)?;
        // The process was alive until about the newer of its last key and the last `sync`.
        let alive_ms = std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |at| u64::try_from(at.as_millis()).unwrap_or(u64::MAX));
        let (remembered, written, file) = match (old, current) {
            (Some(old), Some(current)) => {
                let written = current.len();
                let mut lines = old;
                lines.extend(current);
                (lines, written, OpenOptions::new().append(true).open(path)?)
            }
            (None, Some(current)) => {
                (current.clone(), current.len(), OpenOptions::new().append(true).open(path)?)
            }
            (old, None) => {
                // A new journal (or one of another epoch): start over, keeping an old file of
                // this epoch only.
                if old.is_none() {
                    remove_if_present(&old_path)?;
                }
                (old.unwrap_or_default(), 0, start(path, epoch)?)
            }
        };
        let remembered = Remembering { lines: remembered, alive_ms };
        let writer = Writer {
            file,
            written,
            started: Instant::now(),
            max_keys: usize::MAX,
            max_age: Duration::MAX,
            failing: false,
        };
        Ok(Self {
            path: path.to_owned(),
            old_path,
            epoch,
            writer: Mutex::new(writer),
            remembered: Mutex::new(remembered),
        })
    }

    /// The epoch the journal is for.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Asks the operating system to put what was written on disk, so that a crash of the
    /// machine loses none of it.
    /// It also dates the file now: on the next open, the keys' windows are taken to have run
    /// until the later of this and the last key written.
    ///
    /// # Errors
    /// The disk refuses.
    pub fn sync(&self) -> std::io::Result<()> {
        // A clone of the descriptor: syncing must not hold up the storage's writes.
        let file = self.writer.lock().file.try_clone()?;
        file.set_modified(SystemTime::now())?;
        file.sync_data()
    }

    /// The keys read on open that are still within `window` (the clock stopped while the process
    /// was down), oldest first, at most the newest `max_keys`; and the journal starts a new file
    /// after `max_keys` keys or `window`, so the two files always hold the keys a storage with
    /// these bounds remembers. Called once, by the storage.
    pub(crate) fn start(&self, window: Duration, max_keys: usize) -> Vec<Remembered> {
        {
            let mut writer = self.writer.lock();
            writer.max_keys = max_keys.max(1);
            writer.max_age = window;
        }
        let Remembering { lines, alive_ms } = std::mem::take(&mut *self.remembered.lock());
        let Some(newest) = lines.iter().map(|line| line.at_ms).max() else { return Vec::new() };
        // Windows ran until the process stopped, and not while it was down.
        let last = newest.max(alive_ms);
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let mut alive: Vec<Remembered> = lines
            .into_iter()
            .filter_map(|line| {
                let age = last.saturating_sub(line.at_ms);
                (age < window_ms).then(|| Remembered { left: Duration::from_millis(window_ms - age), line })
            })
            .collect();
        let surplus = alive.len().saturating_sub(max_keys);
        alive.drain(..surplus);
        alive
    }

    /// Writes a new key down; called in the storage's sequencing critical section, before the
    /// event is readable. A failure is logged (once until a write succeeds again) and the
    /// publish goes on: the key is then remembered by this process only.
    pub(crate) fn record(&self, topic: &TopicName, key: &str, seq: u64, position: u64) {
        let mut writer = self.writer.lock();
        let rotated = if writer.written >= writer.max_keys || writer.started.elapsed() >= writer.max_age {
            self.rotate(&mut writer)
        } else {
            Ok(())
        };
        let line = format!("{} {seq} {position} {topic} {key}\n", now_ms());
        // One write: the line is in the kernel whole before the event can be read.
        match rotated.and_then(|()| writer.file.write_all(line.as_bytes())) {
            Ok(()) => {
                writer.written += 1;
                writer.failing = false;
            }
            Err(error) if !writer.failing => {
                writer.failing = true;
                tracing::warn!(
                    path = %self.path.display(), %error,
                    "cannot write the idempotency-key journal: keys taken now are not remembered across a restart"
                );
            }
            Err(_) => {}
        }
    }

    /// Makes the current file the old one and starts a new one.
    fn rotate(&self, writer: &mut Writer) -> std::io::Result<()> {
        std::fs::rename(&self.path, &self.old_path)?;
        writer.file = start(&self.path, self.epoch)?;
        writer.written = 0;
        writer.started = Instant::now();
        Ok(())
    }
}

/// A new journal file at `path` holding only its header.
fn start(path: &Path, epoch: Epoch) -> std::io::Result<File> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
    file.write_all(format!("{MAGIC} {epoch}\n").as_bytes())?;
    Ok(file)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The keys of the journal file at `path`, or `None` when it is missing, empty, of another
/// epoch or not a journal. A line that does not parse (the last one, cut short when the machine
/// crashed) is passed over.
fn read(path: &Path, epoch: Epoch) -> std::io::Result<Option<Vec<Line>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut lines = BufReader::new(file).lines();
    let header = match lines.next() {
        Some(header) => header?,
        None => return Ok(None),
    };
    if header != format!("{MAGIC} {epoch}") {
        return Ok(None);
    }
    let mut keys = Vec::new();
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(parsed) = parse(&line) {
            keys.push(parsed);
        }
    }
    Ok(Some(keys))
}

fn parse(line: &str) -> Option<Line> {
    let mut fields = line.splitn(5, ' ');
    let at_ms = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let position = fields.next()?.parse().ok()?;
    let topic = TopicName::new(fields.next()?).ok()?;
    let key = fields.next().filter(|key| !key.is_empty())?;
    Some(Line { at_ms, seq, position, topic, key: key.into() })
}

fn now_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_line_is_read_back_as_written_and_a_cut_one_is_passed_over() {
        let topic = TopicName::new("db.items").unwrap();
        let line = format!("1700000000000 7 1234 {topic} src key:with spaces:9");
        assert_eq!(
            parse(&line),
            Some(Line {
                at_ms: 1_700_000_000_000,
                seq: 7,
                position: 1234,
                topic,
                key: "src key:with spaces:9".into()
            })
        );
        assert_eq!(parse("1700000000000 7 1234 db.items"), None, "no key: cut short");
        assert_eq!(parse("1700000000000 7 12"), None);
        assert_eq!(parse("17000000000x0 7 1234 db.items k"), None);
        assert_eq!(parse("1 7 1234 bad/topic k"), None);
    }
}
