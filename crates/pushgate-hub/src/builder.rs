//! Building a hub: limits, storage, idempotency, a resumed epoch, history tiers.

use std::sync::Arc;
use std::time::Duration;

use crate::budget::DEFAULT_HISTORY_MAX_BYTES;
use crate::cursor::Epoch;
use crate::disconnect::Disconnects;
use crate::hub::{Hub, Inner};
use crate::lease::{DEFAULT_MAX_LEASES, DEFAULT_MAX_LEASES_PER_GROUP, Leases};
use crate::memory::{
    DEFAULT_IDEMPOTENCY_WINDOW, DEFAULT_MAX_IDEMPOTENCY_KEYS, HistoryLimit, KeyJournal, MemoryStorage,
};
use crate::registry::Registry;
use crate::stats::Counters;
use crate::storage::{Notifier, Storage};
use crate::tier::{HistoryTier, Tiers};

/// Limits a hub applies to every publish, subscription and fetch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_topics_per_subscription: usize,
    pub(crate) max_data_bytes: usize,
    pub(crate) max_backlog: Option<usize>,
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
    history_max_bytes: usize,
    max_topics: Option<usize>,
    limits: Option<Limits>,
    storage: Option<Arc<dyn Storage>>,
    idempotency_window: Duration,
    max_idempotency_keys: usize,
    resume: Option<(Epoch, u64)>,
    key_journal: Option<Arc<KeyJournal>>,
    tiers: Vec<Arc<dyn HistoryTier>>,
    tier_timeout: Duration,
    leases: (usize, usize),
    announce_everywhere: bool,
    latest: Option<crate::latest::TopicPolicy>,
}

impl Default for HubBuilder {
    fn default() -> Self {
        Self {
            history: HistoryLimit::default(),
            history_max_bytes: DEFAULT_HISTORY_MAX_BYTES,
            max_topics: None,
            limits: None,
            storage: None,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            max_idempotency_keys: DEFAULT_MAX_IDEMPOTENCY_KEYS,
            resume: None,
            key_journal: None,
            tiers: Vec::new(),
            tier_timeout: Duration::from_secs(5),
            leases: (DEFAULT_MAX_LEASES, DEFAULT_MAX_LEASES_PER_GROUP),
            announce_everywhere: false,
            latest: None,
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

    /// The most bytes all history of the in-memory storage may hold together (default 128 MiB,
    /// [`DEFAULT_HISTORY_MAX_BYTES`]): past it the oldest events of any topic are evicted first.
    /// Ignored when a [`storage`](Self::storage) is given. See
    /// [`MemoryStorage::history_max_bytes`].
    ///
    /// ```
    /// # use pushgate_hub::Hub;
    /// let hub = Hub::builder().history_max_bytes(16 << 20).build();
    /// assert_eq!(hub.stats().history_max_bytes, 16 << 20);
    /// ```
    pub fn history_max_bytes(mut self, bytes: usize) -> Self {
        self.history_max_bytes = bytes;
        self
    }

    /// Most topics the in-memory storage holds at once (default 100,000): topics published to
    /// and not forgotten yet; topics only readers name do not count. Ignored when a
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

    /// Most presence leases ([`Hub::hold`]) held at once (default 100,000) and per group, that
    /// is per client address (default 64). Past either, a client is answered but not counted.
    pub fn presence_leases(mut self, max: usize, max_per_group: usize) -> Self {
        self.leases = (max, max_per_group);
        self
    }

    /// Reports joins and leaves ([`Hub::presence_changes`]) of every topic, not only of topics
    /// that a reader of this hub asked notices for (default `false`): for an embedder that
    /// relays them to other nodes, whose readers may be the ones that asked.
    pub fn announce_everywhere(mut self, yes: bool) -> Self {
        self.announce_everywhere = yes;
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

    /// Writes the in-memory storage's idempotency keys to `journal`, and remembers those it
    /// holds from before a restart: with [`resume`](Self::resume), a keyed publish retried after
    /// a crash is answered with the original event. Ignored when a [`storage`](Self::storage) is
    /// given. See [`MemoryStorage::key_journal`].
    pub fn key_journal(mut self, journal: Arc<KeyJournal>) -> Self {
        self.key_journal = Some(journal);
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

    /// The topics every reader reads latest value only, as if each had asked for it
    /// ([`SubscribeOptions::latest`](crate::SubscribeOptions::latest)): tickers, dashboards,
    /// counters. Asked once per topic when a subscription or fetch starts. Default: none.
    ///
    /// ```
    /// # use pushgate_hub::Hub;
    /// let hub = Hub::builder().latest_topics(|topic| topic.as_str().starts_with("prices.")).build();
    /// # let _ = hub;
    /// ```
    pub fn latest_topics(
        mut self,
        topics: impl Fn(&crate::TopicName) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.latest = Some(Arc::new(topics));
        self
    }

    /// Builds the hub.
    pub fn build(self) -> Hub {
        let storage = self.storage.unwrap_or_else(|| {
            let mut storage = MemoryStorage::new(self.history, self.max_topics.unwrap_or(100_000))
                .history_max_bytes(self.history_max_bytes)
                .idempotency(self.idempotency_window, self.max_idempotency_keys);
            if let Some((epoch, floor)) = self.resume {
                storage = storage.resume(epoch, floor);
            }
            if let Some(journal) = self.key_journal {
                storage = storage.key_journal(journal);
            }
            Arc::new(storage)
        });
        let registry = Arc::new(Registry::new(self.announce_everywhere));
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
                leases: Leases::new(self.leases.0, self.leases.1),
                disconnects: Disconnects::default(),
                latest: self.latest,
            }),
        }
    }
}
