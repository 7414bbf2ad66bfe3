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

/// The header line's first words; the epoch follows.
const MAGIC: &str = "pushgate-keys 1";

/// Where a [`MemoryStorage`](crate::MemoryStorage) writes down the idempotency keys it takes, so
/// that a restart resuming its epoch ([`MemoryStorage::resume`](crate::MemoryStorage::resume))
/// still answers them ([`MemoryStorage::key_journal`](crate::MemoryStorage::key_journal)).
///
/// Why: a publisher that retries after the process died (a database source republishing the
/// changes it had not yet marked published) must get the original event's `seq` and position
/// back, not a second event, or readers that saw the first one get it twice. So each new key
/// is written, with its topic, `seq` and position, in the critical section that sequences the
/// event and before the event is stored where readers look: once a reader can see an event,
/// its key is in the file.
///
/// What it survives: a crash of the process (the line is in the kernel before anyone reads the
/// event). A crash of the machine can lose what the kernel had not written to disk yet.
///
/// **Call [`sync`](Self::sync) periodically** (the gateway does every second, off its runtime's
/// threads): it puts what was written on disk, dates the file (a key's window does not run
/// while the process is down: a key taken 60 s before the crash is remembered for the rest of
/// its window after the restart), and keeps the journal bounded: when the current file holds
/// as many keys as the storage remembers, or is older than the window, it alone holds every
/// key still remembered, so it becomes `path.old` (the previous one is deleted) and a new
/// `path` starts. Without `sync` the journal only grows.
///
/// Each line after a header (`pushgate-keys 1 <epoch>`) is
/// `<unix ms> <seq> <position> <topic> <key length> <key>`; a line cut short by a crash fails
/// its length and is passed over. A file of another epoch is emptied on open. The clock is the
/// wall clock: a clock set back or forward while the process is down shortens or stretches
/// what is left of the windows.
pub struct KeyJournal {
    path: PathBuf,
    old_path: PathBuf,
    /// Where a new file is prepared before it takes `path`'s place.
    next_path: PathBuf,
    epoch: Epoch,
    writer: Mutex<Writer>,
    /// The keys read on open, until the storage takes them.
    remembered: Mutex<Remembering>,
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
    /// Keys in the current file.
    written: usize,
    /// When the current file was started (or its keys rewritten).
    started: Instant,
    /// When the current file alone holds every key still remembered.
    max_keys: usize,
    max_age: Duration,
    /// A write failed and was reported; the next failures are not.
    failing: bool,
    /// A write failed, maybe halfway: the next line starts on a line of its own.
    torn: bool,
    /// Keys were written since the last sync.
    dirty: bool,
}

/// What [`KeyJournal::open`] read, for [`KeyJournal::start`].
#[derive(Default)]
struct Remembering {
    lines: Vec<Line>,
    /// When the file was last written or synced: the process lived at least until then.
    alive_ms: u64,
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

impl Line {
    fn text(&self) -> String {
        line_text(self.at_ms, self.seq, self.position, &self.topic, &self.key)
    }
}

/// A key's line in the file.
fn line_text(at_ms: u64, seq: u64, position: u64, topic: &TopicName, key: &str) -> String {
    format!("{at_ms} {seq} {position} {topic} {} {key}\n", key.len())
}

/// A key read back, with how much of its window is left.
pub(crate) struct Remembered {
    pub(crate) line: Line,
    pub(crate) left: Duration,
}

impl KeyJournal {
    /// Opens the journal at `path` (and `path.old`) for a storage of `epoch`, creating it if
    /// missing, and reads the keys it holds. Files of another epoch, or not journals, are
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
        let beside = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        let (old_path, next_path) = (beside(".old"), beside(".next"));
        // The process lived until about the newer of its last key and the last `sync`.
        let alive_ms = std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |at| u64::try_from(at.as_millis()).unwrap_or(u64::MAX));
        let old = read(&old_path, epoch)?;
        let current = read(path, epoch)?;
        let (lines, written, file) = match (old, current) {
            (old, Some(current)) => {
                let file = OpenOptions::new().append(true).open(path)?;
                // A line cut short by a crash would glue itself to the next one.
                if file.metadata()?.len() > current.whole_bytes {
                    file.set_len(current.whole_bytes)?;
                }
                let written = current.lines.len();
                let mut lines = old.map(|old| old.lines).unwrap_or_default();
                lines.extend(current.lines);
                (lines, written, file)
            }
            (old, None) => {
                if old.is_none() {
                    remove_if_present(&old_path)?;
                }
                (old.map(|old| old.lines).unwrap_or_default(), 0, new_file(path, epoch)?)
            }
        };
        let writer = Writer {
            file,
            written,
            started: Instant::now(),
            max_keys: usize::MAX,
            max_age: Duration::MAX,
            failing: false,
            torn: false,
            dirty: false,
        };
        Ok(Self {
            path: path.to_owned(),
            old_path,
            next_path,
            epoch,
            writer: Mutex::new(writer),
            remembered: Mutex::new(Remembering { lines, alive_ms }),
        })
    }

    /// The epoch the journal is for.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Puts what was written on disk, dates the file now (the keys' windows ran until then),
    /// and starts a new file when the current one alone holds every key still remembered; see
    /// [`KeyJournal`]. Blocks on the disk: call it off an async runtime's worker threads.
    ///
    /// # Errors
    /// The disk refuses.
    pub fn sync(&self) -> std::io::Result<()> {
        let due = {
            let writer = self.writer.lock();
            writer.written >= writer.max_keys || writer.started.elapsed() >= writer.max_age
        };
        if due {
            self.rotate()?;
        }
        // A clone of the descriptor: syncing must not hold up the storage's writes.
        let (file, dirty) = {
            let mut writer = self.writer.lock();
            (writer.file.try_clone()?, std::mem::take(&mut writer.dirty))
        };
        file.set_modified(SystemTime::now())?;
        // Nothing new, nothing to wait for: an idle journal costs no disk flush (which would
        // also hold up the application's own commits on the same disk).
        if !dirty {
            return Ok(());
        }
        file.sync_data().inspect_err(|_| self.writer.lock().dirty = true)
    }

    /// Makes the current file the old one and starts a new one. The slow parts (deleting the
    /// old file, making the new one, syncing) happen outside the writer's lock, which the
    /// storage's sequencing waits on.
    fn rotate(&self) -> std::io::Result<()> {
        // The current file alone holds every key still remembered: the old one may go first.
        remove_if_present(&self.old_path)?;
        let next = new_file(&self.next_path, self.epoch)?;
        let previous = {
            let mut writer = self.writer.lock();
            std::fs::rename(&self.path, &self.old_path)?;
            if let Err(error) = std::fs::rename(&self.next_path, &self.path) {
                // Back as it was: the writer keeps appending to the current file.
                std::fs::rename(&self.old_path, &self.path)?;
                return Err(error);
            }
            writer.written = 0;
            writer.started = Instant::now();
            writer.torn = false;
            std::mem::replace(&mut writer.file, next)
        };
        previous.sync_data()?;
        sync_folder(&self.path)
    }

    /// The keys read on open that are still within `window` (the clock stopped while the process
    /// was down), oldest first, at most the newest `max_keys`. They are written again into a
    /// fresh file, dated as if taken that long before now, so their windows stay stopped across
    /// further restarts; from then on the journal is bounded for a storage with these bounds.
    /// Called once, by the storage.
    pub(crate) fn start(&self, window: Duration, max_keys: usize) -> Vec<Remembered> {
        let Remembering { lines, alive_ms } = std::mem::take(&mut *self.remembered.lock());
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let last = lines.iter().map(|line| line.at_ms).max().unwrap_or(0).max(alive_ms);
        let mut alive: Vec<Remembered> = lines
            .into_iter()
            .filter_map(|line| {
                let age = last.saturating_sub(line.at_ms);
                (age < window_ms).then(|| Remembered { left: Duration::from_millis(window_ms - age), line })
            })
            .collect();
        let surplus = alive.len().saturating_sub(max_keys);
        alive.drain(..surplus);
        let mut writer = self.writer.lock();
        writer.max_keys = max_keys.max(1);
        writer.max_age = window;
        let now = now_ms();
        let rewritten = alive.iter().map(|kept| {
            let age = window.saturating_sub(kept.left);
            Line {
                at_ms: now.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(0)),
                ..kept.line.clone()
            }
        });
        match self.rewrite(rewritten) {
            Ok(file) => {
                writer.file = file;
                writer.written = alive.len();
                writer.started = Instant::now();
            }
            Err(error) => tracing::warn!(
                path = %self.path.display(), %error,
                "cannot rewrite the idempotency-key journal; appending to it as it is"
            ),
        }
        alive
    }

    /// Replaces the journal with a new file holding `lines`; returns it, open for appending.
    fn rewrite(&self, lines: impl Iterator<Item = Line>) -> std::io::Result<File> {
        let text: String = lines.map(|line| line.text()).collect();
        let mut file = new_file(&self.next_path, self.epoch)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        std::fs::rename(&self.next_path, &self.path)?;
        remove_if_present(&self.old_path)?;
        sync_folder(&self.path)?;
        drop(file);
        OpenOptions::new().append(true).open(&self.path)
    }

    /// Lets go of the keys read on open, for a storage that will not take them.
    pub(crate) fn forget(&self) {
        *self.remembered.lock() = Remembering::default();
    }

    /// Writes a new key down; called in the storage's sequencing critical section, before the
    /// event is readable. A failure is logged (once until a write succeeds again) and the
    /// publish goes on: the key is then remembered by this process only.
    /// `at_ms` is when the event was published (its timestamp, already read).
    pub(crate) fn record(&self, at_ms: u64, topic: &TopicName, key: &str, seq: u64, position: u64) {
        let mut text = line_text(at_ms, seq, position, topic, key);
        let mut writer = self.writer.lock();
        if writer.torn {
            text.insert(0, '\n');
        }
        // One write: the line is in the kernel whole before the event can be read.
        match writer.file.write_all(text.as_bytes()) {
            Ok(()) => {
                writer.written += 1;
                writer.failing = false;
                writer.torn = false;
                writer.dirty = true;
            }
            Err(error) => {
                writer.torn = true;
                if !writer.failing {
                    writer.failing = true;
                    tracing::warn!(
                        path = %self.path.display(), %error,
                        "cannot write the idempotency-key journal: keys taken now are not remembered across a restart"
                    );
                }
            }
        }
    }
}

/// A new journal file at `path` holding only its header.
fn new_file(path: &Path, epoch: Epoch) -> std::io::Result<File> {
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

/// Syncs the folder holding `path`, so a rename in it survives a crash of the machine.
fn sync_folder(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        Some(folder) => File::open(folder)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// A journal file's keys, and how many of its bytes are whole lines.
struct Read {
    lines: Vec<Line>,
    whole_bytes: u64,
}

/// The keys of the journal file at `path`, or `None` when it is missing, empty, of another
/// epoch or not a journal. A line that does not parse (cut short by a crash) is passed over.
fn read(path: &Path, epoch: Epoch) -> std::io::Result<Option<Read>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut reader = BufReader::new(file);
    let mut header = Vec::new();
    let mut whole_bytes = reader.read_until(b'\n', &mut header)? as u64;
    if header.strip_suffix(b"\n") != Some(format!("{MAGIC} {epoch}").as_bytes()) {
        return Ok(None);
    }
    let mut lines = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        let Some(whole) = line.strip_suffix(b"\n") else { break };
        whole_bytes += n as u64;
        if let Some(parsed) = std::str::from_utf8(whole).ok().and_then(parse) {
            lines.push(parsed);
        }
    }
    Ok(Some(Read { lines, whole_bytes }))
}

fn parse(line: &str) -> Option<Line> {
    let mut fields = line.splitn(6, ' ');
    let at_ms = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let position = fields.next()?.parse().ok()?;
    let topic = TopicName::new(fields.next()?).ok()?;
    let len: usize = fields.next()?.parse().ok()?;
    let key = fields.next().filter(|key| key.len() == len && len > 0)?;
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
        let line = Line {
            at_ms: 1_700_000_000_000,
            seq: 7,
            position: 1234,
            topic: TopicName::new("db.items").unwrap(),
            key: "src key:with spaces:12".into(),
        };
        let text = line.text();
        assert_eq!(text, "1700000000000 7 1234 db.items 22 src key:with spaces:12\n");
        assert_eq!(parse(text.trim_end_matches('\n')), Some(line));
        // Cut anywhere, it fails: even where the rest would be a valid shorter key.
        for cut in 1..text.len() - 1 {
            assert_eq!(parse(&text[..cut]), None, "cut at {cut}: {:?}", &text[..cut]);
        }
        assert_eq!(parse("17000000000x0 7 1234 db.items 1 k"), None);
        assert_eq!(parse("1 7 1234 bad/topic 1 k"), None);
        assert_eq!(parse("1 7 1234 t 0 "), None);
    }
}
