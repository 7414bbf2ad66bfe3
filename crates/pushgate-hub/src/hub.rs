//! The hub handle: publish, subscribe, fetch, presence and counters over one storage.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::cursor::{Cursor, Epoch};
use crate::error::HubError;
use crate::event::{Event, NewEvent};
use crate::latency::{LabelCounters, LabelStats};
use crate::memory::{DEFAULT_IDEMPOTENCY_WINDOW, DEFAULT_MAX_IDEMPOTENCY_KEYS, HistoryLimit, MemoryStorage};
use crate::publish::Published;
use crate::reader::Reader;
use crate::registry::{Label, Registry, Signal};
use crate::reset::{Reset, ResetReason, TopicReset};
use crate::storage::{AppendRequest, Notifier, Storage};
use crate::subscription::{SubscribeOptions, Subscription};
use crate::tier::{self, HistoryTier, Tiers};
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
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) counters: Counters,
    limits: Limits,
    /// The history tiers, if any: asked only when a read finds a gap.
    pub(crate) tiers: Option<Arc<Tiers>>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_topics_per_subscription: usize,
    max_data_bytes: usize,
    max_backlog: Option<usize>,
}

/// Builds a [`Hub`] with non-default limits or storage.
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::{HistoryLimit, Hub};
///
/// let hub = Hub::builder()
///     .history(HistoryLimit::default().max_events(100).max_age(Some(Duration::from_secs(60))))
///     .max_topics(10_000)
///     .max_topics_per_subscription(50)
///     .max_data_bytes(64 * 1024)
///     .max_backlog(Some(1_000))
///     .build();
/// # let _ = hub;
/// ```
pub struct HubBuilder {
    history: HistoryLimit,
    max_topics: Option<usize>,
    limits: Option<Limits>,
    storage: Option<Arc<dyn Storage>>,
    idempotency_window: Duration,
    max_idempotency_keys: usize,
    resume: Option<(Epoch, u64)>,
    tiers: Vec<Arc<dyn HistoryTier>>,
    tier_timeout: Duration,
}

impl Default for HubBuilder {
    fn default() -> Self {
        Self {
            history: HistoryLimit::default(),
            max_topics: None,
            limits: None,
            storage: None,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            max_idempotency_keys: DEFAULT_MAX_IDEMPOTENCY_KEYS,
            resume: None,
            tiers: Vec::new(),
            tier_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_topics_per_subscription: 100, max_data_bytes: 1 << 20, max_backlog: None }
    }
}

impl HubBuilder {
    fn limits(&mut self) -> &mut Limits {
        self.limits.get_or_insert_with(Limits::default)
    }

    /// History kept per topic by the default in-memory storage (default: 1,000 events, 10
    /// minutes, 8 MiB). Ignored when a [`storage`](Self::storage) is given.
    pub fn history(mut self, limit: HistoryLimit) -> Self {
        self.history = limit;
        self
    }

    /// Most topics the in-memory storage holds at once (default 100,000). Ignored when a
    /// [`storage`](Self::storage) is given.
    pub fn max_topics(mut self, n: usize) -> Self {
        self.max_topics = Some(n);
        self
    }

    /// Most distinct topics one subscription or fetch may name (default 100).
    pub fn max_topics_per_subscription(mut self, n: usize) -> Self {
        self.limits().max_topics_per_subscription = n.max(1);
        self
    }

    /// Largest event data accepted, as compact JSON bytes (default 1 MiB).
    pub fn max_data_bytes(mut self, n: usize) -> Self {
        self.limits().max_data_bytes = n;
        self
    }

    /// Default backlog limit of subscriptions that set none (default `None`: bounded by history).
    pub fn max_backlog(mut self, n: Option<usize>) -> Self {
        self.limits().max_backlog = n;
        self
    }

    /// Sequence and keep events in `storage` instead of this process's memory.
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// How long the in-memory storage remembers an idempotency key (default 5 minutes; zero
    /// turns keys off). Ignored when a [`storage`](Self::storage) is given: a shared store has
    /// its own window. See [`MemoryStorage::idempotency`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use pushgate_hub::Hub;
    /// let hub = Hub::builder().idempotency_window(Duration::from_secs(60)).build();
    /// # let _ = hub;
    /// ```
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// Most idempotency keys the in-memory storage remembers (default 100,000), the oldest
    /// forgotten first. Ignored when a [`storage`](Self::storage) is given.
    ///
    /// ```
    /// # use pushgate_hub::Hub;
    /// let hub = Hub::builder().max_idempotency_keys(10_000).build();
    /// # let _ = hub;
    /// ```
    pub fn max_idempotency_keys(mut self, n: usize) -> Self {
        self.max_idempotency_keys = n;
        self
    }

    /// Continue `epoch` instead of starting a fresh one, handing out positions above
    /// `position_floor`: cursors issued before a restart stay valid. Ignored when a
    /// [`storage`](Self::storage) is given. See [`MemoryStorage::resume`] for what readers from
    /// before the floor get, and [`Hub::restore_topic`] for continuing each topic's `seq`.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, Epoch, FetchOptions, Hub, NewEvent, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::builder().resume(Epoch::from_u32(0x5eed), 500).build();
    /// assert_eq!(hub.epoch(), Epoch::from_u32(0x5eed));
    /// let topic = TopicName::new("orders")?;
    /// hub.restore_topic(&topic, 41, 480)?;
    /// let event = hub.publish(&topic, NewEvent::new(serde_json::json!(42))).await?;
    /// assert_eq!((event.seq(), event.position()), (42, 501));
    /// // A cursor from before the restart is still this epoch's: no "epoch changed" reset.
    /// let batch = hub.fetch(&[topic], Cursor::at(hub.epoch(), 480), &FetchOptions::default()).await?;
    /// assert!(batch.reset.is_none() && batch.events.len() == 1);
    /// # Ok(()) }
    /// ```
    pub fn resume(mut self, epoch: Epoch, position_floor: u64) -> Self {
        self.resume = Some((epoch, position_floor));
        self
    }

    /// Adds a deeper store of past events, asked (in the order added) for what memory no
    /// longer holds before a reader is told it missed anything. See [`HistoryTier`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use futures_util::future::BoxFuture;
    /// # use pushgate_hub::{HistoryTier, Hub, HubError, TierEvents, TierRead};
    /// struct Empty;
    /// impl HistoryTier for Empty {
    ///     fn read(&self, _: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>> {
    ///         Box::pin(async { Ok(TierEvents::nothing()) })
    ///     }
    /// }
    /// let hub = Hub::builder().tier(Arc::new(Empty)).build();
    /// # let _ = hub;
    /// ```
    pub fn tier(mut self, tier: Arc<dyn HistoryTier>) -> Self {
        self.tiers.push(tier);
        self
    }

    /// The longest one tier read may take before the hub gives up on it and reports the gap as
    /// if no tier held it (default 5 seconds).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use pushgate_hub::Hub;
    /// let hub = Hub::builder().tier_timeout(Duration::from_secs(2)).build();
    /// # let _ = hub;
    /// ```
    pub fn tier_timeout(mut self, timeout: Duration) -> Self {
        self.tier_timeout = timeout;
        self
    }

    /// Builds the hub.
    pub fn build(self) -> Hub {
        let storage = self.storage.unwrap_or_else(|| {
            let mut storage = MemoryStorage::new(self.history, self.max_topics.unwrap_or(100_000))
                .idempotency(self.idempotency_window, self.max_idempotency_keys);
            if let Some((epoch, floor)) = self.resume {
                storage = storage.resume(epoch, floor);
            }
            Arc::new(storage)
        });
        let registry = Arc::new(Registry::default());
        storage.attach(Notifier(Arc::clone(&registry)));
        let tiers = (!self.tiers.is_empty())
            .then(|| Arc::new(Tiers { tiers: self.tiers, timeout: self.tier_timeout }));
        Hub {
            inner: Arc::new(Inner {
                storage,
                registry,
                counters: Counters::default(),
                limits: self.limits.unwrap_or_default(),
                tiers,
            }),
        }
    }
}

/// Options of [`Hub::fetch`], the pull API behind both polling transports.
///
/// ```
/// use std::time::Duration;
/// use pushgate_hub::FetchOptions;
///
/// let short_poll = FetchOptions::default().limit(100);
/// let long_poll = FetchOptions::default().wait(Duration::from_secs(25)).label("longpoll");
/// # let _ = (short_poll, long_poll);
/// ```
#[derive(Debug, Clone)]
pub struct FetchOptions {
    limit: usize,
    max_bytes: usize,
    wait: Duration,
    coalesce: Duration,
    label: Label,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            limit: 1000,
            max_bytes: 4 << 20,
            wait: Duration::ZERO,
            coalesce: Duration::ZERO,
            label: Cow::Borrowed("fetch"),
        }
    }
}

impl FetchOptions {
    /// Most events returned (default 1,000, at least 1).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n.max(1);
        self
    }

    /// About how many bytes of events one answer may hold (default 4 MiB): an answer stops
    /// before the event that would pass it, and the returned cursor continues from there. The
    /// first event is always included, however large, so every event can be delivered.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// How long to wait for an event when there is none yet (default zero: answer at once).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Once a waiting fetch has something to answer, wait `window` longer (never past its
    /// `wait`) and then answer with everything there is (up to `limit` and `max_bytes`); a
    /// closing hub ends the window at once. The window costs one timer, not a wake-up per
    /// event. A fetch that finds events already there when
    /// it starts answers at once: it is catching up, and its events are old already. Default
    /// zero: answer as soon as there is something.
    pub fn coalesce(mut self, window: Duration) -> Self {
        self.coalesce = window;
        self
    }

    /// The name a waiting fetch is counted under in [`Presence`] (default `"fetch"`).
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = label.into();
        self
    }
}

/// The answer to a [`Hub::fetch`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Batch {
    /// Events after the cursor, in the hub's total order.
    pub events: Vec<Arc<Event>>,
    /// Where the next fetch should start. Unchanged from the request's cursor when nothing
    /// happened in these topics, so an idle poller can be answered from an HTTP cache.
    pub cursor: Cursor,
    /// Set when the request's cursor could not be honoured exactly; `events` then start at the
    /// oldest retained event.
    ///
    /// A cursor is one position, so a paged read (a `limit` smaller than what is retained) from
    /// an expired cursor reports the same reset on each page until its cursor passes the lost
    /// range: each page is true on its own. The repeated `resume_seq` identifies the same loss;
    /// a client that sums `missed` across pages must count each `(topic, resume_seq)` once.
    pub reset: Option<Reset>,
}

/// Live readers of a topic, per label. See [`Hub::presence`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Presence {
    /// All live readers.
    pub total: usize,
    /// Readers per label (`"sse"`, `"ws"`, …), largest count first.
    pub by_label: Vec<(String, usize)>,
}

/// A snapshot of the hub's counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events published since the hub was built.
    pub published: u64,
    /// Event deliveries (one per event per reader, subscriptions and fetches alike).
    pub delivered: u64,
    /// Subscribers cut off for lagging.
    pub lagged: u64,
    /// Resets reported (subscriptions and fetches).
    pub resets: u64,
    /// Live subscriptions now.
    pub subscribers: u64,
    /// Topics the storage holds now.
    pub topics: u64,
    /// Subscriptions and fetches refused for naming more topics than allowed
    /// ([`HubError::TooManyTopics`]).
    pub refused_too_many_topics: u64,
    /// Publishes refused for data over the limit ([`HubError::DataTooLarge`]).
    pub refused_data_too_large: u64,
    /// Publishes whose idempotency key had been used: answered with the original, not stored.
    pub replayed: u64,
    /// Reads of the history tiers (one per chunk of a backfill).
    pub tier_reads: u64,
    /// Events read from the history tiers.
    pub tier_events: u64,
    /// Tier reads that failed or timed out, so the gap was reported as without tiers.
    pub tier_failures: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    lagged: AtomicU64,
    resets: AtomicU64,
    subscribers: AtomicU64,
    refused_too_many_topics: AtomicU64,
    refused_data_too_large: AtomicU64,
    replayed: AtomicU64,
    tier_reads: AtomicU64,
    tier_events: AtomicU64,
    tier_failures: AtomicU64,
}

impl Counters {
    /// Counts `err` when it is a refusal by a limit.
    fn refused(&self, err: &HubError) {
        match err {
            HubError::TooManyTopics { .. } => &self.refused_too_many_topics,
            HubError::DataTooLarge { .. } => &self.refused_data_too_large,
            _ => return,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn delivered(&self, n: usize) {
        self.delivered.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn lagged(&self) {
        self.lagged.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn subscribed(&self) {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn unsubscribed(&self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
    /// Counts one tier read and what it gave.
    pub(crate) fn tier_read<T>(&self, answer: &Result<crate::tier::Chunk, T>) {
        self.tier_reads.fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(chunk) => self.tier_events.fetch_add(chunk.events.len() as u64, Ordering::Relaxed),
            Err(_) => self.tier_failures.fetch_add(1, Ordering::Relaxed),
        };
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
    /// [`HubError::TopicLimit`], [`HubError::Closed`].
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
            &*self.inner.storage,
            topics,
            self.inner.limits.max_topics_per_subscription,
            self.inner.tiers.is_some(),
        )
        .inspect_err(|err| self.inner.counters.refused(err))?;
        if options.max_backlog.is_none() {
            options.max_backlog = self.inner.limits.max_backlog;
        }
        Subscription::new(Arc::clone(&self.inner), reader, cursor, options)
    }

    /// The pull API: events of `topics` after `cursor`, at most `options.limit`, without
    /// holding a subscription. With a non-zero `options.wait` and nothing to return yet, waits
    /// until something is published to one of the topics or the wait ends (long polling); the
    /// waiting costs no task and no timer beyond the caller's own. Short polling is the same call
    /// with no wait.
    ///
    /// A closed hub answers a waiting fetch at once with what it has, so parked long polls
    /// end promptly on shutdown.
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe), and [`HubError::Closed`] for a fetch that starts after
    /// the hub closed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pushgate_hub::{Cursor, FetchOptions, Hub, NewEvent, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("jobs")?;
    /// let idle = hub.fetch(&[topic.clone()], Cursor::Now, &FetchOptions::default()).await?;
    /// assert!(idle.events.is_empty());
    ///
    /// let publisher = hub.clone();
    /// let t = topic.clone();
    /// tokio::spawn(async move { publisher.publish(&t, NewEvent::new(serde_json::json!(1))).await });
    /// let options = FetchOptions::default().wait(Duration::from_secs(25));
    /// let batch = hub.fetch(&[topic], idle.cursor, &options).await?;
    /// assert_eq!(batch.events.len(), 1);
    /// assert_eq!(batch.cursor, batch.events[0].cursor());
    /// # Ok(()) }
    /// ```
    pub async fn fetch(
        &self,
        topics: &[TopicName],
        cursor: Cursor,
        options: &FetchOptions,
    ) -> Result<Batch, HubError> {
        let inner = &*self.inner;
        if inner.registry.is_closed() {
            return Err(HubError::Closed);
        }
        let deadline = Instant::now() + options.wait;
        let mut reader = Reader::new(
            &*inner.storage,
            topics,
            inner.limits.max_topics_per_subscription,
            inner.tiers.is_some(),
        )
        .inspect_err(|err| inner.counters.refused(err))?;
        let label = inner.registry.label_counters(&options.label);
        let epoch = inner.storage.epoch();
        let start = reader.start(cursor, epoch, inner.storage.head())?;
        let mut reset = start.reset;
        let mut position = start.position;
        let mut events = Vec::new();
        // Dropped with the future too: a client that disconnects from a parked long poll must
        // not leave its registrations behind.
        let mut waiting: Option<Waiting<'_>> = None;
        // With a coalescing window: when it ends, once a parked fetch has found something.
        let mut linger: Option<Instant> = None;
        let mut bytes = 0usize;
        loop {
            if let Some(w) = &waiting {
                w.signal.clear();
            }
            let head = inner.storage.head();
            let mut full = false;
            while head > position {
                let mut gaps = Vec::new();
                let first = events.len();
                let step = reader.step(
                    position,
                    head,
                    options.limit - first,
                    options.max_bytes.saturating_sub(bytes),
                    &mut events,
                    &mut gaps,
                );
                if let Some(tiers) = inner.tiers.as_ref().filter(|_| step.tier) {
                    let request = reader.tier_request(epoch, position, options.limit - first);
                    let answer = tier::read_chunk(tiers, request).await;
                    inner.counters.tier_read(&answer);
                    // A fetch reports what no tier holds in its reset, whenever it is found.
                    let mut losses = Vec::new();
                    reader.supply(position, answer, &mut losses);
                    if !losses.is_empty() {
                        reset = Some(merge_gaps(reset, losses));
                    }
                    continue;
                }
                if !gaps.is_empty() {
                    reset = Some(merge_gaps(reset, gaps));
                }
                let added: usize = events[first..].iter().map(|e| e.approx_size()).sum();
                if first > 0 && bytes.saturating_add(added) > options.max_bytes {
                    // A step always takes one event, however large; after a window's earlier
                    // steps that one belongs in the next answer.
                    events.truncate(first);
                    full = true;
                    break;
                }
                let moved = step.cursor > position;
                position = step.cursor;
                bytes = bytes.saturating_add(added);
                full = position < head || events.len() >= options.limit;
                // A step ends early only at the limits, or where a backfill's chunk from the
                // tiers ends: then there is more to read at once.
                if !full || events.len() >= options.limit || !moved || !reader.backfilling() {
                    break;
                }
            }
            let now_or_never = || Instant::now() >= deadline || inner.registry.is_closed();
            let done = match linger {
                _ if reset.is_some() || options.wait.is_zero() || full => true,
                Some(until) => Instant::now() >= until || now_or_never(),
                None if events.is_empty() => now_or_never(),
                // A fetch that waited opens the window; one that found events at once answers.
                None if options.coalesce.is_zero() || waiting.is_none() => true,
                None => {
                    linger = Some(deadline.min(Instant::now() + options.coalesce));
                    false
                }
            };
            if done {
                break;
            }
            match &waiting {
                None => {
                    // Register, then look again before sleeping: a publish between the look
                    // above and this registration would otherwise go unnoticed.
                    let signal = Arc::new(Signal::default());
                    let registrations = reader
                        .names()
                        .map(|name| inner.registry.add(name, &signal, &options.label))
                        .collect();
                    label.joined();
                    waiting =
                        Some(Waiting { registry: &inner.registry, signal, registrations, label: &label });
                }
                // The window: one timer, which only a closing hub cuts short. What arrives
                // meanwhile is read once it ends: waking for each event would cost a wake-up,
                // a look and a timer per event, more than the window saves.
                Some(_) if let Some(until) = linger => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = inner.registry.closed() => {}
                    }
                }
                Some(w) => {
                    if tokio::time::timeout_at(deadline, w.signal.notified()).await.is_err() {
                        continue; // one last look, then the deadline check ends the loop
                    }
                }
            }
        }
        drop(waiting);
        inner.counters.delivered(events.len());
        label.fetched();
        label.delivered(&events);
        if reset.is_some() {
            inner.counters.reset();
        }
        let cursor = match cursor {
            Cursor::At { epoch: theirs, .. } if events.is_empty() && reset.is_none() && theirs == epoch => {
                cursor
            }
            _ => Cursor::at(epoch, position),
        };
        Ok(Batch { events, cursor, reset })
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
        let by_label = self.inner.registry.presence(topic.as_str());
        Presence { total: by_label.iter().map(|(_, n)| n).sum(), by_label }
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// # use pushgate_hub::Hub;
    /// assert_eq!(Hub::new().stats().published, 0);
    /// ```
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
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
        }
    }

    /// Readers per label (`"sse"`, `"ws"`, `"longpoll"`, …; see [`SubscribeOptions::label`] and
    /// [`FetchOptions::label`]): how many are live, fetches answered, and the latency from
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

    /// Evicts expired events from every topic and forgets topics that are empty and unused.
    /// Returns how many topics were forgotten. [`maintain`](Self::maintain) calls it for you.
    ///
    /// ```
    /// # use pushgate_hub::{Cursor, Hub, TopicName};
    /// let hub = Hub::new();
    /// drop(hub.subscribe(&[TopicName::new("gone")?], Cursor::Now)?);
    /// assert_eq!(hub.stats().topics, 1);
    /// assert_eq!(hub.sweep(), 1);
    /// assert_eq!(hub.stats().topics, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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

/// A parked fetch's registrations, removed when the fetch ends or its future is dropped.
struct Waiting<'a> {
    registry: &'a Registry,
    signal: Arc<Signal>,
    registrations: Vec<crate::registry::Registration>,
    /// Counts the fetch as a live reader of its label while it waits.
    label: &'a LabelCounters,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.label.left();
        for registration in self.registrations.drain(..) {
            self.registry.remove(registration);
        }
    }
}

fn merge_gaps(reset: Option<Reset>, gaps: Vec<TopicReset>) -> Reset {
    match reset {
        Some(reset) => reset.with_more(gaps),
        None => Reset::new(ResetReason::Expired, gaps),
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("epoch", &self.epoch()).field("stats", &self.stats()).finish()
    }
}
