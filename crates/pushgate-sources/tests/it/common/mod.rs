//! Helpers shared by the database tests (`tests/it/<db>.rs`): whether the server is
//! there, unique names, a running `Source`, and bounded waits for hub events. Nothing here
//! speaks SQL: each test file talks to its database with sqlx directly.
// A build without some database's feature uses a subset; the helpers are test code, so a panic is the failure report.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pushgate_hub::{Event, HistoryLimit, Hub, Item, Subscription, TopicName};
use pushgate_sources::{Source, SourceConfig, SourceState};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

// The database tests' skip policy, shared with the gateway's tests (pushgate-testkit), which
// this crate cannot depend on.
#[path = "../../../../pushgate-testkit/src/skip.rs"]
pub mod skip;

/// The bound of every wait for events.
pub const WAIT: Duration = Duration::from_secs(15);

/// Whether the database at `url` can be reached. When it cannot, the test fails, unless
/// `PUSHGATE_SKIP_DB=1`: then the skip is reported (see [`skip`]) and the caller returns early.
/// SQLite is always there. Only reachability is probed (a TCP connection): a server that is up
/// but refuses the test is a failure, not a skip.
pub async fn require_db(url: &str) -> bool {
    let scheme = url.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let (db, port) = match scheme.as_str() {
        "sqlite" => return true,
        "postgres" | "postgresql" => ("postgres", 5432),
        "mysql" | "mariadb" => ("mysql", 3306),
        other => panic!("no database test helper for scheme {other:?}"),
    };
    let address = host_port(url, port);
    let reached = match timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    match reached {
        Ok(()) => true,
        Err(why) => {
            skip::database_unreachable(&format!("{db} at {url}"), &format!("{address}: {why}"));
            false
        }
    }
}

/// `host:port` of a `scheme://user:pass@host:port/db` URL.
fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if host.is_empty() { "localhost" } else { host };
    if host.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

/// A prefix no other test (in this run or a parallel one) uses: `<tag><8 hex>_`, short enough
/// that `<prefix><prefix>table_suffix` trigger names stay valid identifiers.
pub fn unique_prefix(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    format!("{tag}{:08x}_", hasher.finish() as u32)
}

/// A hub whose history holds every event a test produces (a few thousand, some large).
pub fn test_hub() -> Hub {
    Hub::builder().history(HistoryLimit::default().max_events(20_000).max_bytes(256 << 20)).build()
}

/// A topic name, unwrapped.
pub fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

/// A SQLite database file under the temp dir, deleted (with its WAL files) on drop.
pub struct TempSqlite {
    pub path: PathBuf,
}

impl TempSqlite {
    pub fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("pushgate-{}.db", unique_prefix(tag).trim_end_matches('_')));
        Self { path }
    }

    /// `sqlite:<path>`.
    pub fn url(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
        // The lease files beside it, `<file>-<outbox>.lock`.
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else { return };
        let prefix = format!("{}-", name.to_string_lossy());
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&prefix) && file.ends_with(".lock") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A `Source` running in a task against a hub.
pub struct Running {
    pub source: Arc<Source>,
    pub hub: Hub,
    task: JoinHandle<()>,
}

impl Running {
    /// Spawns `Source::run` for `config` and waits (bounded) until it is live.
    pub async fn start(config: SourceConfig, hub: &Hub) -> Self {
        let running = Self::spawn(config, hub);
        running.wait_live().await;
        running
    }

    /// Spawns `Source::run` for `config`, without waiting.
    pub fn spawn(config: SourceConfig, hub: &Hub) -> Self {
        let source = Arc::new(Source::new(config).unwrap());
        let task = tokio::spawn({
            let (source, hub) = (Arc::clone(&source), hub.clone());
            async move { source.run(hub).await }
        });
        Self { source, hub: hub.clone(), task }
    }

    /// Waits (bounded) until the source reports `Live`.
    pub async fn wait_live(&self) {
        self.wait_for(WAIT, "live", SourceState::is_live).await;
    }

    /// Waits until the source's state passes `check`, panicking after `within`; returns how
    /// long it took.
    pub async fn wait_for(
        &self,
        within: Duration,
        what: &str,
        check: impl Fn(&SourceState) -> bool,
    ) -> Duration {
        let started = Instant::now();
        let mut changes = self.source.state_changes();
        let reached = timeout(within, changes.wait_for(|state| check(state))).await;
        assert!(matches!(reached, Ok(Ok(_))), "source not {what} within {within:?}: {}", self.source.state());
        started.elapsed()
    }

    /// Ends the task where it is, as a crash would: no batch is finished, and the lease's
    /// session or file closes with it.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// The source's state.
    pub fn state(&self) -> SourceState {
        self.source.state()
    }

    /// Stops the tailer between batches (under a `quiesce` guard, so no batch is half done) and
    /// waits for its task to end. The hub stays open.
    pub async fn stop(self) {
        let guard = self.source.quiesce(&self.hub).await;
        self.task.abort();
        let _ = self.task.await;
        drop(guard);
    }
}

/// Two sources of `config`, each into a hub of its own, as on two nodes without a shared hub:
/// the first leads, the second stands by.
pub async fn leader_and_standby(leader: SourceConfig, standby: SourceConfig) -> (Running, Running) {
    let leader = Running::start(leader, &test_hub()).await;
    let standby = Running::spawn(standby, &test_hub());
    standby.wait_for(WAIT, "standing by", |state| *state == SourceState::Standby).await;
    assert!(leader.source.is_leader() && !standby.source.is_leader());
    (leader, standby)
}

/// The next `n` events of `sub`, panicking with what did arrive if they take longer than
/// [`WAIT`] or a reset or error comes instead.
pub async fn next_events(sub: &mut Subscription, n: usize) -> Vec<Arc<Event>> {
    let deadline = Instant::now() + WAIT;
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Ok(Item::Event(event))) => events.push(event),
            Ok(Ok(other)) => panic!("unexpected {other:?} after {} events", events.len()),
            Ok(Err(err)) => panic!("subscription ended after {} events: {err}", events.len()),
            Err(_) => panic!(
                "only {} of {n} events within {WAIT:?}; last: {:?}",
                events.len(),
                events.last().map(|e| e.data().as_str().chars().take(300).collect::<String>())
            ),
        }
    }
    events
}

/// The next event of `sub`.
pub async fn next_event(sub: &mut Subscription) -> Arc<Event> {
    next_events(sub, 1).await.remove(0)
}

/// Asserts that `sub` receives nothing for `quiet`.
pub async fn assert_quiet(sub: &mut Subscription, quiet: Duration) {
    if let Ok(item) = timeout(quiet, sub.recv()).await {
        panic!("expected no event, got {item:?}");
    }
}

/// An event's data as JSON.
pub fn data(event: &Event) -> Value {
    event.data().to_value().unwrap()
}

/// The outbox ids (`data.id`) of `events`, asserting they strictly increase (outbox order,
/// hence no duplicates) and returning them.
pub fn increasing_ids(events: &[Arc<Event>]) -> Vec<i64> {
    let ids: Vec<i64> = events.iter().map(|e| data(e)["id"].as_i64().expect("numeric id")).collect();
    for pair in ids.windows(2) {
        assert!(pair[0] < pair[1], "outbox ids out of order or repeated: {} then {}", pair[0], pair[1]);
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    ids
}

/// Polls `check` every 20 ms until it holds, panicking after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// About `bytes` bytes of text with everything JSON has to escape: quotes, backslashes,
/// newlines, tabs, and multi-byte characters.
pub fn large_text(bytes: usize) -> String {
    let piece = "line \"quoted\" \\ back\tslash é ü 漢字 🚀\n";
    let mut text = String::with_capacity(bytes + piece.len());
    let mut n = 0u32;
    while text.len() < bytes {
        text.push_str(&n.to_string());
        text.push_str(piece);
        n += 1;
    }
    text
}
