//! The hub handle: publish, subscribe, presence and counters over one storage.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::builder::{HubBuilder, Limits};
use crate::cursor::{Cursor, Epoch};
use crate::disconnect::Disconnects;
use crate::error::HubError;
use crate::event::{Event, NewEvent};
use crate::latency::LabelStats;
use crate::lease::{Leases, PresenceHold};
use crate::notice::PresenceChange;
use crate::publish::Published;
use crate::reader::Reader;
use crate::registry::Registry;
use crate::stats::{Counters, Stats};
use crate::storage::{AppendRequest, Storage};
use crate::subscription::{SubscribeOptions, Subscription};
use crate::tier::Tiers;
use crate::topic::TopicName;

/// The event hub: topics, ordered events, history, cursors and fan-out.
///
/// Cheap to clone; all clones share one hub. See the [crate docs](crate) for the guarantees.
///
/// ```
/// use pushgate_hub::{Cursor, Hub, Item, NewEvent, TopicName};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::new();
/// let topic = TopicName::new("chat")?;
/// let mut sub = hub.subscribe(&[topic.clone()], Cursor::Now)?;
/// let sent = hub.publish(&topic, NewEvent::new(serde_json::json!({"text": "hi"}))).await?;
/// let Item::Event(got) = sub.recv().await? else { panic!() };
/// assert_eq!(got.position(), sent.position());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) counters: Counters,
    pub(crate) limits: Limits,
    /// The history tiers, if any: asked only when a read finds a gap.
    pub(crate) tiers: Option<Arc<Tiers>>,
    /// Presence leases of clients between requests.
    pub(crate) leases: Leases,
    /// Topics whose readers were disconnected on purpose, recently.
    pub(crate) disconnects: Disconnects,
    /// The topics every reader reads latest value only ([`HubBuilder::latest_topics`]).
    pub(crate) latest: Option<crate::latest::TopicPolicy>,
}

/// The most users [`Hub::presence`] lists.
pub const MAX_PRESENCE_USERS: usize = 1_000;

/// Live readers of a topic, per label and user. See [`Hub::presence`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Presence {
    /// All live readers.
    pub total: usize,
    /// Readers per label (`"sse"`, `"ws"`, …), largest count first.
    pub by_label: Vec<(String, usize)>,
    /// The distinct users of readers that have one, in name order; the first ones only (see
    /// [`Hub::presence_with`]).
    pub users: Vec<String>,
    /// How many distinct users there are, listed or not.
    pub users_total: usize,
}

impl Presence {
    /// The presence made of `by_label` counts and the listed `users` of `users_total` (another
    /// node's report, say).
    ///
    /// ```
    /// use pushgate_hub::Presence;
    ///
    /// let mut here = Presence::from_parts(vec![("sse".into(), 2)], vec!["al".into()], 1);
    /// let there = Presence::from_parts(vec![("ws".into(), 1), ("sse".into(), 1)], vec!["al".into(), "bo".into()], 2);
    /// here.add(&there, 1_000);
    /// assert_eq!(here.total, 4);
    /// assert_eq!(here.by_label, [("sse".to_owned(), 3), ("ws".to_owned(), 1)]);
    /// assert_eq!((here.users.as_slice(), here.users_total), (&["al".to_owned(), "bo".to_owned()][..], 2));
    /// ```
    pub fn from_parts(by_label: Vec<(String, usize)>, users: Vec<String>, users_total: usize) -> Self {
        let mut presence = Self { total: 0, by_label: Vec::new(), users: Vec::new(), users_total: 0 };
        presence.add(
            &Self { total: by_label.iter().map(|(_, n)| n).sum(), by_label, users, users_total },
            usize::MAX,
        );
        presence
    }

    /// Adds the readers of `other` (the same topic's on another node): counts summed, users
    /// merged, at most `max_users` listed. Users are told apart by name, so one on two nodes
    /// counts once; when a part listed only some of its users, `users_total` is the most that
    /// can be known (at least the largest part's count).
    pub fn add(&mut self, other: &Presence, max_users: usize) {
        self.total += other.total;
        for (label, count) in &other.by_label {
            match self.by_label.iter_mut().find(|(l, _)| l == label) {
                Some((_, n)) => *n += count,
                None => self.by_label.push((label.clone(), *count)),
            }
        }
        self.by_label.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let complete = self.users.len() == self.users_total && other.users.len() == other.users_total;
        let mut users: std::collections::BTreeSet<String> =
            std::mem::take(&mut self.users).into_iter().collect();
        users.extend(other.users.iter().cloned());
        let known = users.len();
        self.users_total = if complete { known } else { known.max(self.users_total).max(other.users_total) };
        self.users = users.into_iter().take(max_users).collect();
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with in-memory storage and default limits.
    pub fn new() -> Self {
        HubBuilder::default().build()
    }

    /// A builder for non-default limits or storage.
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    /// The epoch of the hub's history; part of every cursor it issues.
    pub fn epoch(&self) -> Epoch {
        self.inner.storage.epoch()
    }

    /// Publishes an event to `topic` (created on first use) and returns it as stored, with its
    /// `seq`, position and timestamp.
    ///
    /// Events of one topic get `seq` 1, 2, 3, … in the order their publishes complete; across
    /// topics, positions order them the same way for every reader.
    ///
    /// An event with an [idempotency key](NewEvent::idempotency_key) already used on the topic
    /// within the window is not stored again and fails with [`HubError::Duplicate`], which
    /// carries the original's numbers; [`publish_idempotent`](Self::publish_idempotent) answers
    /// it as a success instead.
    ///
    /// # Errors
    /// [`HubError::InvalidEventType`], [`HubError::InvalidSender`],
    /// [`HubError::InvalidIdempotencyKey`], [`HubError::DataTooLarge`], [`HubError::TopicLimit`],
    /// [`HubError::Duplicate`], [`HubError::Closed`], or a storage failure.
    ///
    /// ```
    /// use pushgate_hub::{Hub, NewEvent, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("db.users")?;
    /// let first = hub.publish(&topic, NewEvent::new(serde_json::json!({"id": 1})).event_type("insert")).await?;
    /// let second = hub.publish(&topic, NewEvent::new(serde_json::json!({"id": 1})).event_type("delete")).await?;
    /// assert_eq!((first.seq(), second.seq()), (1, 2));
    /// assert!(second.position() > first.position());
    /// # Ok(()) }
    /// ```
    pub async fn publish(&self, topic: &TopicName, event: NewEvent) -> Result<Arc<Event>, HubError> {
        match self.publish_idempotent(topic, event).await? {
            Published::New(event) => Ok(event),
            Published::Replayed(original) => Err(HubError::Duplicate(original)),
        }
    }

    /// Publishes like [`publish`](Self::publish), but a repeated idempotency key is an answer,
    /// not an error: [`Published::Replayed`] with the original event's topic, `seq` and
    /// position, and nothing is stored. What a server taking client keys (an HTTP
    /// `Idempotency-Key`) or a source re-publishing after a crash calls: the publisher gets the
    /// same answer however often it retries within the window.
    ///
    /// The storage checks the key atomically with sequencing, scoped to the topic: concurrent
    /// publishes with one key store one event. A key is remembered for the storage's window
    /// ([`HubBuilder::idempotency_window`], 5 minutes by default, on every node with a shared
    /// store).
    ///
    /// # Errors
    /// As [`publish`](Self::publish), except [`HubError::Duplicate`].
    ///
    /// ```
    /// use pushgate_hub::{Hub, NewEvent, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("payments")?;
    /// let key = "outbox:42";
    /// let first = hub.publish_idempotent(&topic, NewEvent::new(serde_json::json!(1)).idempotency_key(key)).await?;
    /// let retry = hub.publish_idempotent(&topic, NewEvent::new(serde_json::json!(1)).idempotency_key(key)).await?;
    /// assert!(!first.is_replay() && retry.is_replay());
    /// assert_eq!(retry.cursor(), first.cursor());
    /// // The same key on another topic is another event.
    /// let other = hub.publish_idempotent(&TopicName::new("refunds")?, NewEvent::new(serde_json::json!(1)).idempotency_key(key)).await?;
    /// assert!(!other.is_replay());
    /// # Ok(()) }
    /// ```
    pub async fn publish_idempotent(
        &self,
        topic: &TopicName,
        event: NewEvent,
    ) -> Result<Published, HubError> {
        if self.inner.registry.is_closed() {
            return Err(HubError::Closed);
        }
        event.validate()?;
        let limit = self.inner.limits.max_data_bytes;
        if event.data().len() > limit {
            let err = HubError::DataTooLarge { size: event.data().len(), limit };
            self.inner.counters.refused(&err);
            return Err(err);
        }
        let parts = event.into_parts();
        let published = self
            .inner
            .storage
            .append(AppendRequest {
                topic: topic.clone(),
                event_type: parts.event_type,
                data: parts.data,
                from: parts.from,
                idempotency_key: parts.idempotency_key,
                latest_key: parts.latest_key,
            })
            .await?;
        let counter = if published.is_replay() {
            &self.inner.counters.replayed
        } else {
            &self.inner.counters.published
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(published)
    }

    /// Continues `topic`'s `seq` after `last_seq`, its newest event (at `last_position`) having
    /// been published before this hub started: for a hub [resuming](HubBuilder::resume) an
    /// epoch, whose publisher (a source's tailer) knows each topic's numbers from its own
    /// store. Call it before publishing to the topic.
    ///
    /// Safe when the topic already exists without events (a subscriber named it), and a no-op
    /// when the topic is already at `last_seq`. Readers from before `last_position` are told
    /// they missed events of the topic, unless a tier holds them; readers from after it missed
    /// none of the topic's events from before the restart (the call says there were none). A `last_position` past the
    /// head moves the head there: those positions were used by the epoch, and are never handed
    /// out again. The shared Redis storage keeps `seq` itself and ignores this.
    ///
    /// A restore holds until the topic's next publish, even if the hub forgets the empty topic
    /// meanwhile. After that, a topic the hub forgets ([`sweep`](Self::sweep): no event held, no
    /// reader) starts again at `seq` 1, so a publisher that continues a topic's numbers restores
    /// it again before publishing after a quiet spell (the database sources do before every
    /// publish): while the topic is held at that `seq`, the call is a cheap no-op.
    ///
    /// # Errors
    /// [`HubError::RestoreConflict`] when the topic already holds events with other numbers
    /// (it would move its `seq` backwards, or under them); [`HubError::TopicLimit`].
    ///
    /// ```
    /// use pushgate_hub::{Epoch, Hub, HubError, NewEvent, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::builder().resume(Epoch::from_u32(9), 100).build();
    /// let topic = TopicName::new("orders")?;
    /// hub.restore_topic(&topic, 7, 90)?;
    /// assert_eq!(hub.publish(&topic, NewEvent::new(serde_json::json!(8))).await?.seq(), 8);
    /// assert!(hub.restore_topic(&topic, 8, 101).is_ok()); // already there
    /// assert!(matches!(hub.restore_topic(&topic, 3, 50), Err(HubError::RestoreConflict { current: 8, .. })));
    /// # Ok(()) }
    /// ```
    pub fn restore_topic(
        &self,
        topic: &TopicName,
        last_seq: u64,
        last_position: u64,
    ) -> Result<(), HubError> {
        self.inner.storage.restore_topic(topic, last_seq, last_position)
    }

    /// Follows `topics` live from `cursor`, with default [`SubscribeOptions`].
    ///
    /// # Errors
    /// [`HubError::NoTopics`], [`HubError::TooManyTopics`], [`HubError::CursorAhead`],
    /// [`HubError::Closed`]. Naming topics nobody published to is never
    /// [`HubError::TopicLimit`] with the built-in storages: readers do not make topics.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, Hub, HubError, TopicName};
    ///
    /// let hub = Hub::new();
    /// let sub = hub.subscribe(&[TopicName::new("a")?, TopicName::new("b")?], Cursor::Now)?;
    /// assert_eq!(hub.stats().subscribers, 1);
    /// drop(sub);
    /// assert_eq!(hub.stats().subscribers, 0);
    /// assert!(matches!(hub.subscribe(&[], Cursor::Now), Err(HubError::NoTopics)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, topics: &[TopicName], cursor: Cursor) -> Result<Subscription, HubError> {
        self.subscribe_with(topics, cursor, SubscribeOptions::default())
    }

    /// Follows `topics` live from `cursor`. See [`Subscription`] for what it delivers.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, Hub, SubscribeOptions, TopicName};
    ///
    /// let hub = Hub::new();
    /// let topic = TopicName::new("a")?;
    /// let _sub = hub.subscribe_with(&[topic.clone()], Cursor::Now, SubscribeOptions::default().label("sse"))?;
    /// assert_eq!(hub.presence(&topic).by_label, [("sse".to_owned(), 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_with(
        &self,
        topics: &[TopicName],
        cursor: Cursor,
        mut options: SubscribeOptions,
    ) -> Result<Subscription, HubError> {
        if self.inner.registry.is_closed() {
            return Err(HubError::Closed);
        }
        let reader = Reader::new(
            &self.inner.storage,
            topics,
            self.inner.limits.max_topics_per_subscription,
            self.inner.tiers.is_some(),
            |topic| crate::latest::applies(&options.latest, self.inner.latest.as_ref(), topic),
        )
        .inspect_err(|err| self.inner.counters.refused(err))?;
        if options.max_backlog.is_none() {
            options.max_backlog = self.inner.limits.max_backlog;
        }
        Subscription::new(Arc::clone(&self.inner), reader, cursor, options)
    }

    /// Ends every reader of `topic` on purpose (the application's server disconnecting its
    /// subscribers): its subscriptions fail with [`RecvError::Disconnected`](crate::RecvError::Disconnected)
    /// after the items they already read, and its waiting fetches with
    /// [`HubError::Disconnected`]. Readers that start afterwards are not affected. Returns how
    /// many readers the topic had. A reader in a [coalescing](SubscribeOptions::coalesce)
    /// window, which publishes do not wake, ends when its window does.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, Hub, RecvError, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("room")?;
    /// let mut sub = hub.subscribe(&[topic.clone()], Cursor::Now)?;
    /// assert_eq!(hub.disconnect(&topic), 1);
    /// assert_eq!(sub.recv().await.unwrap_err(), RecvError::Disconnected);
    /// let mut later = hub.subscribe(&[topic.clone()], Cursor::Now)?;
    /// hub.publish(&topic, pushgate_hub::NewEvent::new(serde_json::json!(1))).await?;
    /// assert!(matches!(later.recv().await?, pushgate_hub::Item::Event(_)), "a later reader is not affected");
    /// # Ok(()) }
    /// ```
    pub fn disconnect(&self, topic: &TopicName) -> usize {
        // Counted first: woken readers leave at once.
        let readers = self.presence(topic).total;
        self.inner.disconnects.disconnect(topic);
        self.inner.registry.wake(topic);
        readers
    }

    /// The topics that have live readers on this hub, in name order: at most `limit` of those
    /// after `after` (for paging), each with its [`presence`](Self::presence), and whether
    /// there are more.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, Hub, TopicName};
    ///
    /// let hub = Hub::new();
    /// let (a, b) = (TopicName::new("a")?, TopicName::new("b")?);
    /// let _readers = (hub.subscribe(&[b.clone()], Cursor::Now)?, hub.subscribe(&[a.clone(), b.clone()], Cursor::Now)?);
    /// let (page, more) = hub.topics_with_readers(None, 1);
    /// assert_eq!((page[0].0.as_str(), page[0].1.total, more), ("a", 1, true));
    /// let (page, more) = hub.topics_with_readers(Some("a"), 1);
    /// assert_eq!((page[0].0.as_str(), page[0].1.total, more), ("b", 2, false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topics_with_readers(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<(TopicName, Presence)>, bool) {
        let (names, more) = self.inner.registry.topics_after(after, limit);
        let topics = names
            .into_iter()
            .map(|name| {
                let presence = self.presence(&name);
                (name, presence)
            })
            .collect();
        (topics, more)
    }

    /// Live readers of `topic`: subscriptions and waiting fetches, per label.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, Hub, SubscribeOptions, TopicName};
    ///
    /// let hub = Hub::new();
    /// let topic = TopicName::new("room")?;
    /// let _a = hub.subscribe_with(&[topic.clone()], Cursor::Now, SubscribeOptions::default().label("ws"))?;
    /// let _b = hub.subscribe_with(&[topic.clone()], Cursor::Now, SubscribeOptions::default().label("ws"))?;
    /// let _c = hub.subscribe_with(&[topic.clone()], Cursor::Now, SubscribeOptions::default().label("sse"))?;
    /// let presence = hub.presence(&topic);
    /// assert_eq!(presence.total, 3);
    /// assert_eq!(presence.by_label, [("ws".to_owned(), 2), ("sse".to_owned(), 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn presence(&self, topic: &TopicName) -> Presence {
        self.presence_with(topic, MAX_PRESENCE_USERS)
    }

    /// [`presence`](Self::presence) listing at most `max_users` users.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, Hub, SubscribeOptions, TopicName};
    ///
    /// let hub = Hub::new();
    /// let topic = TopicName::new("room")?;
    /// let as_user = |user: &str| SubscribeOptions::default().label("ws").user(Some(user.into()));
    /// let _a = hub.subscribe_with(&[topic.clone()], Cursor::Now, as_user("bo"))?;
    /// let _b = hub.subscribe_with(&[topic.clone()], Cursor::Now, as_user("al"))?;
    /// let _c = hub.subscribe_with(&[topic.clone()], Cursor::Now, as_user("bo"))?;
    /// let presence = hub.presence_with(&topic, 1);
    /// assert_eq!((presence.total, presence.users_total), (3, 2));
    /// assert_eq!(presence.users, ["al"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn presence_with(&self, topic: &TopicName, max_users: usize) -> Presence {
        self.inner.leases.sweep(&self.inner.registry);
        self.inner.registry.presence(topic.as_str(), max_users)
    }

    /// The presence of every topic with readers: at most `max_topics` topics (those with the
    /// most readers), each listing at most `max_users` users. What a node reports to the others
    /// of a cluster.
    pub fn presence_all(&self, max_topics: usize, max_users: usize) -> Vec<(TopicName, Presence)> {
        self.inner.leases.sweep(&self.inner.registry);
        self.inner.registry.presence_all(max_topics, max_users)
    }

    /// Counts a client that is not connected between its requests (a short poll) as a reader
    /// of `topics` until `hold`'s ttl from now, renewing its lease if it holds one; `false`
    /// when the lease table (or the client's group) is full, and the client is not counted.
    /// [`FetchOptions::hold`](crate::FetchOptions::hold) does this for a fetch.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pushgate_hub::{Hub, PresenceHold, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("room")?;
    /// let hold = PresenceHold::new("tab-1", Duration::from_secs(10)).label("poll");
    /// assert!(hub.hold(&[topic.clone()], &hold));
    /// assert!(hub.hold(&[topic.clone()], &hold), "renewed, not counted twice");
    /// assert_eq!(hub.presence(&topic).by_label, [("poll".to_owned(), 1)]);
    /// tokio::time::sleep(Duration::from_secs(11)).await;
    /// assert_eq!(hub.presence(&topic).total, 0);
    /// # Ok(()) }
    /// ```
    pub fn hold(&self, topics: &[TopicName], hold: &PresenceHold) -> bool {
        if self.inner.registry.is_closed() {
            return false;
        }
        self.inner.leases.hold(&self.inner.registry, topics, hold, Duration::ZERO)
    }

    /// The joins and leaves of readers of every topic that a reader asked notices for
    /// ([`SubscribeOptions::presence_events`], [`FetchOptions::presence_events`](crate::FetchOptions::presence_events)), for
    /// the embedder to relay with [`notify_presence`](Self::notify_presence) (after filling in
    /// a total over several nodes, say, or sending it to them); `None` after the first call.
    /// Until someone takes it, no notices are made. Changes that come faster than they are
    /// taken (more than 4,096 waiting) are dropped. See [`crate::PresenceChange`].
    ///
    /// ```
    /// use pushgate_hub::{ChangeKind, Cursor, Hub, Item, SubscribeOptions, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let mut changes = hub.presence_changes().expect("the first call");
    /// let room = [TopicName::new("room")?];
    /// let mut watcher = hub.subscribe_with(&room, Cursor::Now, SubscribeOptions::default().presence_events(true))?;
    /// let alice = hub.subscribe_with(&room, Cursor::Now, SubscribeOptions::default().label("ws").user(Some("alice".into())))?;
    /// drop(alice);
    /// for kind in [ChangeKind::Join, ChangeKind::Join, ChangeKind::Leave] {
    ///     let change = changes.recv().await.expect("a change");
    ///     assert_eq!(change.kind, kind);
    ///     hub.notify_presence(change);
    /// }
    /// let Item::Presence(own) = watcher.recv().await? else { panic!() };
    /// assert_eq!((own.kind, own.user.as_deref()), (ChangeKind::Join, None));
    /// let Item::Presence(joined) = watcher.recv().await? else { panic!() };
    /// assert_eq!((joined.user.as_deref(), joined.label.as_str(), joined.total), (Some("alice"), "ws", 2));
    /// let Item::Presence(left) = watcher.recv().await? else { panic!() };
    /// assert_eq!((left.kind, left.total), (ChangeKind::Leave, 1));
    /// # Ok(()) }
    /// ```
    pub fn presence_changes(&self) -> Option<tokio::sync::mpsc::Receiver<PresenceChange>> {
        self.inner.registry.take_changes()
    }

    /// Hands `change` to every reader of its topic on this hub that asked for notices.
    pub fn notify_presence(&self, change: PresenceChange) {
        self.inner.registry.notify(change);
    }

    /// Ends the presence leases that expired now (their leave notices go out then). Reading
    /// presence, holding a lease and [`maintain`](Self::maintain) do it too; an embedder that
    /// relays notices calls it often, so that a poller's leave is not late.
    pub fn expire_leases(&self) {
        self.inner.leases.sweep(&self.inner.registry);
    }

    /// Presence leases held now.
    pub fn presence_leases(&self) -> usize {
        self.inner.leases.len()
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// # use pushgate_hub::Hub;
    /// assert_eq!(Hub::new().stats().published, 0);
    /// ```
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let history = self.inner.storage.history_use();
        Stats {
            published: c.published.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            lagged: c.lagged.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            subscribers: c.subscribers.load(Ordering::Relaxed),
            topics: self.inner.storage.topic_count() as u64,
            refused_too_many_topics: c.refused_too_many_topics.load(Ordering::Relaxed),
            refused_data_too_large: c.refused_data_too_large.load(Ordering::Relaxed),
            replayed: c.replayed.load(Ordering::Relaxed),
            tier_reads: c.tier_reads.load(Ordering::Relaxed),
            tier_events: c.tier_events.load(Ordering::Relaxed),
            tier_failures: c.tier_failures.load(Ordering::Relaxed),
            history_bytes: history.bytes,
            history_max_bytes: history.max_bytes,
            history_evicted: history.evicted,
        }
    }

    /// Readers per label (`"sse"`, `"ws"`, `"longpoll"`, …; see [`SubscribeOptions::label`] and
    /// [`FetchOptions::label`](crate::FetchOptions::label)): how many are live, fetches answered, and the latency from
    /// publish to hand-over of every event delivered. Cheap: the hub keeps these as it goes.
    /// Labels appear once first used, in that order; past 32 labels, further ones are counted
    /// under `"other"`.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, FetchOptions, Hub, NewEvent, SubscribeOptions, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("t")?;
    /// let mut sub = hub.subscribe_with(&[topic.clone()], Cursor::Now, SubscribeOptions::default().label("sse"))?;
    /// hub.publish(&topic, NewEvent::new(serde_json::json!(1))).await?;
    /// sub.recv().await?;
    /// hub.fetch(&[topic], Cursor::Oldest, &FetchOptions::default().label("poll")).await?;
    ///
    /// let stats = hub.stats_by_label();
    /// let sse = stats.iter().find(|s| s.label == "sse").unwrap();
    /// assert_eq!((sse.live, sse.latency.count), (1, 1));
    /// let poll = stats.iter().find(|s| s.label == "poll").unwrap();
    /// assert_eq!((poll.live, poll.fetches, poll.latency.count), (0, 1, 1));
    /// # Ok(()) }
    /// ```
    pub fn stats_by_label(&self) -> Vec<LabelStats> {
        self.inner.registry.label_stats()
    }

    /// Evicts expired events from every topic and forgets topics that are empty and unused,
    /// giving back their slots toward the topic limit. Returns how many topics were forgotten.
    /// [`maintain`](Self::maintain) calls it for you. (A topic that only readers named never
    /// took a slot: its record goes when its last reader does.)
    ///
    /// ```
    /// # use pushgate_hub::{Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A memory budget with room for the newest event only.
    /// let hub = Hub::builder().history_max_bytes(1).build();
    /// hub.publish(&TopicName::new("a")?, NewEvent::new(serde_json::json!(1))).await?;
    /// hub.publish(&TopicName::new("b")?, NewEvent::new(serde_json::json!(2))).await?;
    /// assert_eq!(hub.stats().topics, 2);
    /// assert_eq!(hub.sweep(), 1, "`a` lost its event to the budget: empty and unused");
    /// assert_eq!(hub.stats().topics, 1);
    /// # Ok(()) }
    /// ```
    pub fn sweep(&self) -> usize {
        self.inner.storage.sweep()
    }

    /// Runs [`sweep`](Self::sweep) every `every` until the hub is closed. The hub spawns no task
    /// of its own: the embedder owns this future (spawn it next to the server).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use pushgate_hub::Hub;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let hub = Hub::new();
    /// let maintenance = tokio::spawn(hub.clone().maintain(Duration::from_secs(30)));
    /// hub.close();
    /// # tokio::time::timeout(Duration::from_secs(60), maintenance).await.unwrap().unwrap();
    /// # }
    /// ```
    pub async fn maintain(self, every: Duration) {
        let mut interval = tokio::time::interval(every.max(Duration::from_millis(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let closed = self.inner.registry.closed();
        tokio::pin!(closed);
        loop {
            tokio::select! {
                () = &mut closed => return,
                _ = interval.tick() => {}
            }
            self.inner.leases.sweep(&self.inner.registry);
            let forgotten = self.sweep();
            if forgotten > 0 {
                tracing::debug!(forgotten, "swept idle topics");
            }
        }
    }

    /// Closes the hub: live subscriptions end with [`RecvError::Closed`](crate::RecvError::Closed),
    /// waiting fetches answer at once, and new publishes, subscriptions and fetches are refused.
    /// For graceful shutdown.
    ///
    /// ```
    /// # use pushgate_hub::{Cursor, Hub, RecvError, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let mut sub = hub.subscribe(&[TopicName::new("t")?], Cursor::Now)?;
    /// hub.close();
    /// assert_eq!(sub.recv().await.unwrap_err(), RecvError::Closed);
    /// assert!(hub.is_closed());
    /// # Ok(()) }
    /// ```
    pub fn close(&self) {
        self.inner.registry.close();
    }

    /// Resolves once the hub is closed: lets connections that hold no subscription (an idle
    /// WebSocket) learn of a shutdown.
    ///
    /// ```
    /// # use pushgate_hub::Hub;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let hub = Hub::new();
    /// let waiter = tokio::spawn({ let hub = hub.clone(); async move { hub.closed().await } });
    /// hub.close();
    /// waiter.await.unwrap();
    /// # }
    /// ```
    pub async fn closed(&self) {
        self.inner.registry.closed().await;
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.registry.is_closed()
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("epoch", &self.epoch()).field("stats", &self.stats()).finish()
    }
}
