//! Join and leave notices: readers that asked for them learn when a reader of one of their
//! topics joins or leaves.
//!
//! They are not events: they are not stored, take no `seq` and move no cursor, so a topic's
//! events stay numbered without gaps for every reader, and a reader that did not ask sees
//! nothing of them. The registry reports each change of a topic that has a reader asking
//! ([`Hub::presence_changes`](crate::Hub::presence_changes)); the embedder decides what the
//! notice says (a total over several nodes, say) and hands it back to the hub
//! ([`Hub::notify_presence`](crate::Hub::notify_presence)), which queues it for each such
//! reader of the topic, at most [`MAX_QUEUED_NOTICES`] each (the newest are dropped past it: a
//! reader that far behind should read the presence again).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::topic::TopicName;

/// The most notices waiting for one reader.
pub const MAX_QUEUED_NOTICES: usize = 256;

/// Whether a reader joined or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A reader started reading the topic.
    Join,
    /// A reader stopped: it unsubscribed, its connection dropped, or its lease expired.
    Leave,
}

impl ChangeKind {
    /// `"join"` or `"leave"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
        }
    }
}

/// One reader joining or leaving a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceChange {
    /// The topic.
    pub topic: TopicName,
    /// Joined or left.
    pub kind: ChangeKind,
    /// The reader's user, if it has one.
    pub user: Option<Arc<str>>,
    /// The reader's label (its transport).
    pub label: String,
    /// The topic's readers after the change: on this node as the hub reports it, or whatever the
    /// embedder puts there before [`Hub::notify_presence`](crate::Hub::notify_presence).
    pub total: usize,
}

impl PresenceChange {
    /// A change of `topic`.
    pub fn new(
        topic: TopicName,
        kind: ChangeKind,
        user: Option<Arc<str>>,
        label: String,
        total: usize,
    ) -> Self {
        Self { topic, kind, user, label, total }
    }
}

/// The notices waiting for one reader.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    queue: Mutex<VecDeque<Arc<PresenceChange>>>,
}

impl Notices {
    /// Queues `change`; `false` when the queue is full and it was dropped.
    pub(crate) fn push(&self, change: &Arc<PresenceChange>) -> bool {
        let mut queue = self.queue.lock();
        if queue.len() >= MAX_QUEUED_NOTICES {
            return false;
        }
        queue.push_back(Arc::clone(change));
        true
    }

    /// Moves every waiting notice to `out`.
    pub(crate) fn drain_into(&self, out: &mut Vec<Arc<PresenceChange>>) {
        out.extend(self.queue.lock().drain(..));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }
}
