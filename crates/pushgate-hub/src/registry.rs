//! Who is waiting on which topic: wake-ups and presence.
//!
//! Each reader owns one [`Signal`] registered on every topic it reads. A commit to a topic sets
//! the signal of each of that topic's readers and wakes its task; the reader then reads the new
//! events from storage itself. The publisher's cost is one atomic swap (and at most one wake)
//! per reader, whatever the reader's backlog, and no reader can delay another. A reader in a
//! coalescing window mutes its signal (leaves it set), so commits skip even that wake; closing
//! the hub wakes every reader regardless.
//!
//! It also keeps the counters of each label ([`LabelCounters`]): readers find theirs once and
//! update it with atomics.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;
use parking_lot::RwLock;
use slab::Slab;

use crate::latency::{LabelCounters, LabelStats};
pub(crate) use crate::signal::Signal;
use crate::topic::TopicName;

/// A transport's name for its readers in presence counts (`"sse"`, `"ws"`, …).
pub(crate) type Label = Cow<'static, str>;

#[derive(Default)]
struct Readers {
    signals: Slab<(Arc<Signal>, Label)>,
    by_label: Vec<(Label, usize)>,
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
}

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
    pub(crate) fn add(&self, topic: &TopicName, signal: &Arc<Signal>, label: &Label) -> Registration {
        // Inserting under the map's entry guard keeps `remove` from dropping the topic's
        // record between our lookup and our insert.
        let entry = self.topics.entry(topic.clone()).or_default();
        let mut readers = entry.0.write();
        let key = readers.signals.insert((Arc::clone(signal), label.clone()));
        match readers.by_label.iter_mut().find(|(l, _)| l == label) {
            Some((_, count)) => *count += 1,
            None => readers.by_label.push((label.clone(), 1)),
        }
        Registration { topic: topic.clone(), key }
    }

    pub(crate) fn remove(&self, registration: Registration) {
        self.topics.remove_if(registration.topic.as_str(), |_, entry| {
            let mut readers = entry.0.write();
            if readers.signals.contains(registration.key) {
                let (_, label) = readers.signals.remove(registration.key);
                if let Some(i) = readers.by_label.iter().position(|(l, _)| *l == label) {
                    readers.by_label[i].1 -= 1;
                    if readers.by_label[i].1 == 0 {
                        readers.by_label.swap_remove(i);
                    }
                }
            }
            readers.signals.is_empty()
        });
    }

    pub(crate) fn wake(&self, topic: &TopicName) {
        let Some(entry) = self.topics.get(topic.as_str()).map(|e| Arc::clone(&e)) else {
            return;
        };
        for (_, (signal, _)) in entry.0.read().signals.iter() {
            signal.notify();
        }
    }

    /// Readers of `topic` per label, largest first.
    pub(crate) fn presence(&self, topic: &str) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = self
            .topics
            .get(topic)
            .map(|e| e.0.read().by_label.iter().map(|(l, n)| (l.to_string(), *n)).collect())
            .unwrap_or_default();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
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
            for (_, (signal, _)) in entry.value().0.read().signals.iter() {
                signal.interrupt();
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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
