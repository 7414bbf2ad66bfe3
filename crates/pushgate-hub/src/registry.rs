//! Who is waiting on which topic: wake-ups and presence.
//!
//! Each reader owns one [`Signal`] registered on every topic it reads. A commit to a topic sets
//! the signal of each of that topic's readers and wakes its task; the reader then reads the new
//! events from storage itself. The publisher's cost is one atomic swap (and at most one wake)
//! per reader, whatever the reader's backlog, and no reader can delay another. A reader in a
//! coalescing window mutes its signal (leaves it set), so commits skip even that wake; closing
//! the hub wakes every reader regardless.
//!
//! The same records are the topic's presence: readers per label and per user (an opaque name
//! the embedder gives with the subscription; the hub knows nothing of auth). A presence lease
//! (see [`crate::lease`]) is a record without a signal: it counts, and is never woken.
//!
//! It also keeps the counters of each label ([`LabelCounters`]): readers find theirs once and
//! update it with atomics.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use parking_lot::RwLock;
use slab::Slab;
use tokio::sync::mpsc;

use crate::hub::Presence;
use crate::latency::{LabelCounters, LabelStats};
use crate::notice::{ChangeKind, Notices, PresenceChange};
pub(crate) use crate::signal::Signal;
use crate::topic::TopicName;

/// A transport's name for its readers in presence counts (`"sse"`, `"ws"`, …).
pub(crate) type Label = Cow<'static, str>;

/// Who a reader is, as presence counts it: its label and its user, if any, and whether its
/// joining and leaving are announced (not for a parked long poll without a lease, which comes
/// and goes with every poll).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Who {
    pub(crate) label: Label,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) announced: bool,
}

/// One record on a topic: a reader (woken through its signal) or a lease (no signal); counted
/// in presence when it has a `who` (a waiting fetch whose client holds a lease is counted
/// through the lease only); given the topic's join and leave notices when it has `notices`.
struct Record {
    signal: Option<Arc<Signal>>,
    who: Option<Who>,
    notices: Option<Arc<Notices>>,
}

#[derive(Default)]
struct Readers {
    records: Slab<Record>,
    /// Records with a `who`.
    counted: usize,
    /// Records with `notices`.
    watching: usize,
    by_label: Vec<(Label, usize)>,
    /// Records per user; readers without a user are counted in `by_label` only.
    users: HashMap<Arc<str>, usize>,
}

#[derive(Default)]
struct TopicReaders(RwLock<Readers>);

/// Every topic's readers, and the hub's closed flag (closing is a wake-up like any other).
#[derive(Default)]
pub(crate) struct Registry {
    topics: DashMap<TopicName, Arc<TopicReaders>>,
    closed: AtomicBool,
    /// Wakes owners of background work (maintenance) on close; readers use their signals.
    on_close: tokio::sync::Notify,
    /// Counters per label, at most [`MAX_LABELS`]; a few transports, so a scan is cheapest.
    labels: RwLock<Vec<Arc<LabelCounters>>>,
    /// Where joins and leaves of watched topics go, once someone asked for them.
    changes: OnceLock<mpsc::Sender<PresenceChange>>,
    /// Whether joins and leaves of every topic are reported, not only of topics a reader here
    /// watches: readers on other nodes may watch them ([`HubBuilder::announce_everywhere`]).
    ///
    /// [`HubBuilder::announce_everywhere`]: crate::HubBuilder::announce_everywhere
    announce_everywhere: bool,
}

/// Changes waiting for the embedder: past this, changes are dropped (and logged).
const CHANGES_CAPACITY: usize = 4096;

/// Most labels counted apart; readers of further labels are counted under [`OTHER_LABEL`], so
/// an embedder that makes up labels cannot grow the list without bound.
const MAX_LABELS: usize = 32;
/// Where readers of labels beyond [`MAX_LABELS`] are counted.
const OTHER_LABEL: &str = "other";

/// Proof of one reader's registration on one topic; give it back to [`Registry::remove`].
pub(crate) struct Registration {
    topic: TopicName,
    key: usize,
}

impl Registry {
    /// A registry that reports joins and leaves of every topic when `announce_everywhere`.
    pub(crate) fn new(announce_everywhere: bool) -> Self {
        Self { announce_everywhere, ..Self::default() }
    }

    /// Registers a reader woken through `signal` (or, with none, a lease) on `topic`, counted
    /// in presence as `who` (or not at all), given the topic's notices in `notices` (if any).
    pub(crate) fn add(
        &self,
        topic: &TopicName,
        signal: Option<&Arc<Signal>>,
        who: Option<&Who>,
        notices: Option<&Arc<Notices>>,
    ) -> Registration {
        // Inserting under the map's entry guard keeps `remove` from dropping the topic's
        // record between our lookup and our insert.
        let entry = self.topics.entry(topic.clone()).or_default();
        let mut readers = entry.0.write();
        let record = Record { signal: signal.cloned(), who: who.cloned(), notices: notices.cloned() };
        let key = readers.records.insert(record);
        readers.watching += usize::from(notices.is_some());
        if let Some(who) = who {
            readers.counted += 1;
            match readers.by_label.iter_mut().find(|(l, _)| *l == who.label) {
                Some((_, count)) => *count += 1,
                None => readers.by_label.push((who.label.clone(), 1)),
            }
            if let Some(user) = &who.user {
                *readers.users.entry(Arc::clone(user)).or_default() += 1;
            }
            if who.announced && (readers.watching > 0 || self.announce_everywhere) {
                self.changed(topic, ChangeKind::Join, who, readers.counted);
            }
        }
        Registration { topic: topic.clone(), key }
    }

    /// Reports a join or leave of a watched topic to whoever asked for them.
    fn changed(&self, topic: &TopicName, kind: ChangeKind, who: &Who, total: usize) {
        let Some(changes) = self.changes.get() else { return };
        let change = PresenceChange::new(topic.clone(), kind, who.user.clone(), who.label.to_string(), total);
        if changes.try_send(change).is_err() {
            tracing::debug!(
                topic = topic.as_str(),
                "presence changes come faster than they are handed out; one dropped"
            );
        }
    }

    /// The receiver of joins and leaves of watched topics; `None` after the first call.
    pub(crate) fn take_changes(&self) -> Option<mpsc::Receiver<PresenceChange>> {
        let (sender, receiver) = mpsc::channel(CHANGES_CAPACITY);
        self.changes.set(sender).ok().map(|()| receiver)
    }

    /// Queues `change` for every reader of its topic that asked for notices, and wakes them.
    pub(crate) fn notify(&self, change: PresenceChange) {
        let Some(entry) = self.topics.get(change.topic.as_str()).map(|e| Arc::clone(&e)) else {
            return;
        };
        let change = Arc::new(change);
        for (_, record) in entry.0.read().records.iter() {
            if let Some(notices) = &record.notices
                && notices.push(&change)
                && let Some(signal) = &record.signal
            {
                signal.notify();
            }
        }
    }

    pub(crate) fn remove(&self, registration: Registration) {
        self.topics.remove_if(registration.topic.as_str(), |_, entry| {
            let mut readers = entry.0.write();
            if readers.records.contains(registration.key) {
                let Record { who, notices, .. } = readers.records.remove(registration.key);
                readers.watching -= usize::from(notices.is_some());
                let Some(who) = who else {
                    return readers.records.is_empty();
                };
                readers.counted -= 1;
                if who.announced && (readers.watching > 0 || self.announce_everywhere) {
                    self.changed(&registration.topic, ChangeKind::Leave, &who, readers.counted);
                }
                if let Some(i) = readers.by_label.iter().position(|(l, _)| *l == who.label) {
                    readers.by_label[i].1 -= 1;
                    if readers.by_label[i].1 == 0 {
                        readers.by_label.swap_remove(i);
                    }
                }
                if let Some(user) = &who.user
                    && let Some(count) = readers.users.get_mut(user)
                {
                    *count -= 1;
                    if *count == 0 {
                        readers.users.remove(user);
                    }
                }
            }
            readers.records.is_empty()
        });
    }

    pub(crate) fn wake(&self, topic: &TopicName) {
        let Some(entry) = self.topics.get(topic.as_str()).map(|e| Arc::clone(&e)) else {
            return;
        };
        for (_, record) in entry.0.read().records.iter() {
            if let Some(signal) = &record.signal {
                signal.notify();
            }
        }
    }

    /// Readers of `topic`, with at most `max_users` of its users listed.
    pub(crate) fn presence(&self, topic: &str, max_users: usize) -> Presence {
        let Some(entry) = self.topics.get(topic).map(|e| Arc::clone(&e)) else {
            return Presence::default();
        };
        let readers = entry.0.read();
        presence_of(&readers, max_users)
    }

    /// The presence of every topic with readers, at most `max_topics` of them (those with the
    /// most readers first) and `max_users` users each.
    pub(crate) fn presence_all(&self, max_topics: usize, max_users: usize) -> Vec<(TopicName, Presence)> {
        let mut all: Vec<(TopicName, Arc<TopicReaders>, usize)> = self
            .topics
            .iter()
            .map(|e| {
                let total = e.value().0.read().counted;
                (e.key().clone(), Arc::clone(e.value()), total)
            })
            .collect();
        if all.len() > max_topics {
            all.select_nth_unstable_by(max_topics, |a, b| b.2.cmp(&a.2));
            all.truncate(max_topics);
        }
        all.into_iter()
            .map(|(topic, readers, _)| {
                let presence = presence_of(&readers.0.read(), max_users);
                (topic, presence)
            })
            .filter(|(_, presence)| presence.total > 0)
            .collect()
    }

    /// The counters of `label`, created on first use.
    pub(crate) fn label_counters(&self, label: &Label) -> Arc<LabelCounters> {
        if let Some(found) = self.labels.read().iter().find(|c| c.label() == label) {
            return Arc::clone(found);
        }
        let mut labels = self.labels.write();
        let label = if labels.len() >= MAX_LABELS { &Label::Borrowed(OTHER_LABEL) } else { label };
        if let Some(found) = labels.iter().find(|c| c.label() == label) {
            return Arc::clone(found);
        }
        let counters = Arc::new(LabelCounters::new(label.clone()));
        labels.push(Arc::clone(&counters));
        counters
    }

    /// Every label's counters, in the order the labels were first used.
    pub(crate) fn label_stats(&self) -> Vec<LabelStats> {
        self.labels.read().iter().map(|c| c.snapshot()).collect()
    }

    /// Resolves once the registry is closed.
    pub(crate) async fn closed(&self) {
        let notified = self.on_close.notified();
        tokio::pin!(notified);
        // Enable before checking the flag so a close in between is not missed.
        notified.as_mut().enable();
        if !self.is_closed() {
            notified.await;
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.on_close.notify_waiters();
        for entry in self.topics.iter() {
            for (_, record) in entry.value().0.read().records.iter() {
                if let Some(signal) = &record.signal {
                    signal.interrupt();
                }
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// The presence of one topic's `readers`: per label, largest first; users in name order, the
/// first `max_users` of them.
fn presence_of(readers: &Readers, max_users: usize) -> Presence {
    let mut by_label: Vec<(String, usize)> =
        readers.by_label.iter().map(|(l, n)| (l.to_string(), *n)).collect();
    by_label.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut users: Vec<&Arc<str>> = readers.users.keys().collect();
    if users.len() > max_users {
        // The first names in order without sorting them all.
        users.select_nth_unstable(max_users);
        users.truncate(max_users);
    }
    users.sort_unstable();
    Presence {
        total: readers.counted,
        by_label,
        users: users.into_iter().map(|user| user.to_string()).collect(),
        users_total: readers.users.len(),
    }
}

impl Registry {
    /// The topics that have readers, at most `limit` of those sorting after `after`, in order;
    /// and whether there are more.
    pub(crate) fn topics_after(&self, after: Option<&str>, limit: usize) -> (Vec<TopicName>, bool) {
        let mut names: Vec<TopicName> = self
            .topics
            .iter()
            .map(|entry| entry.key().clone())
            .filter(|name| after.is_none_or(|after| name.as_str() > after))
            .collect();
        names.sort_unstable();
        let more = names.len() > limit;
        names.truncate(limit);
        (names, more)
    }
}
