//! The event hub at the core of pushgate: topics, ordered events, bounded history, cursors and
//! fan-out, with no knowledge of HTTP or databases.
//!
//! Transports (short poll, long poll, SSE, WebSocket) and sources (publish API, database change
//! feeds) are thin adapters over one [`Hub`]. Everything they promise about order, loss and
//! resumption is promised here first; this page is that specification.
//!
//! # Topics and events
//!
//! A topic is named by 1 to 128 characters of `[A-Za-z0-9_.:-]` ([`TopicName`]) and is made by
//! its first publish. A reader may name a topic before anything is published to it: it is woken
//! by the topic's first event like by any other, but it does not make the topic, and takes no
//! slot toward the hub's topic limit ([`HubBuilder::max_topics`]), so readers naming topics
//! cannot crowd out publishers. [`Hub::publish`] stores an [`Event`] with a type (default `"message"`), JSON
//! [`Data`], and a server timestamp in milliseconds, and assigns two numbers:
//!
//! - `seq`: the event's place in its topic, 1, 2, 3, … with no gaps;
//! - `position`: its place in the hub's single order across all topics, strictly increasing
//!   (with gaps, from a topic's point of view: the numbers in between went to other topics).
//!
//! Publishes are applied in one order; for every reader, in every transport, events are
//! delivered in that order: **a total order across topics**, not only within each. It costs one
//! short critical section per publish (see [`MemoryStorage`]) and buys a lot: a multi-topic
//! subscriber sees the same interleaving live as on replay and as every other subscriber, and
//! one number describes how far it has read in *all* its topics.
//!
//! # Cursors and epochs
//!
//! A [`Cursor`] is that number plus the history's [`Epoch`]: `9f03c1d2-2a` means "after position
//! 42 of epoch 9f03c1d2". It is opaque and URL-safe, identical on every transport (an SSE
//! `Last-Event-ID`, a query parameter, a JSON field), and the same short string whatever the
//! number of topics in the subscription. Every event's [`Event::cursor`] resumes right after it,
//! and is the same for all its readers, so transports can encode an event once
//! ([`Event::encoded`]) and send identical bytes to every subscriber.
//!
//! Keywords: `now` (the default) starts after the newest event; `oldest` replays everything
//! retained.
//!
//! The epoch changes whenever history is lost (an in-memory hub restarts without
//! [resuming](#surviving-a-restart-resumed-epochs) its epoch, a Redis store is replaced; nodes
//! restore a Redis that restarted empty under the same epoch). A cursor from another epoch is
//! recognised as such and never compared by position.
//!
//! # History
//!
//! Each topic keeps its recent events, bounded by count, age and bytes ([`HistoryLimit`];
//! defaults 1,000 events, 10 minutes, 8 MiB), evicting oldest first. Topics that are empty and
//! unused are forgotten by [`Hub::sweep`], so memory stays bounded as topics come and go.
//!
//! All history together is bounded too: a memory budget ([`HubBuilder::history_max_bytes`],
//! default 128 MiB) counts what retained events really hold (payload, the event itself, each
//! encoding transports cache on it) and the idempotency keys. Past it, **the oldest events of
//! the whole hub go first**, whatever their topic, so one publisher flooding new topics cannot
//! grow memory without bound; the newest event is always kept. A reader of an evicted event is
//! told exactly as for any eviction (below): a reset, a lag, or a backfill from a tier.
//! [`Stats::history_bytes`] shows what is held.
//!
//! # Reading: subscriptions and fetches
//!
//! [`Hub::subscribe`] follows topics live; [`Hub::fetch`] answers "events after this cursor, at
//! most N" without holding anything, optionally waiting until there is one (long polling).
//! Both read from the same ordered history, so:
//!
//! - **Resumption is exact.** From a cursor, a reader gets every retained event after it, then
//!   live ones, with no loss, duplicate or reordering at the switch: there is no separate live
//!   channel whose start could race with the history read.
//! - **A lost past is announced.** If events after the cursor were evicted (and no
//!   [history tier](#history-past-memory-tiers) holds them), or the cursor is from another
//!   epoch, the reader first gets a [`Reset`] naming the topics and how many events were missed
//!   ([`Missed`], exact where known), never silence, then continues from the oldest retained
//!   event.
//! - **A malformed cursor is an error** ([`CursorError`]), and so is one pointing past the newest
//!   event of this epoch ([`HubError::CursorAhead`]); neither silently restarts. On a shared store
//!   a cursor up to [`Storage::max_lead`] past this node's head is another node's, not an error:
//!   it reads as "nothing yet" until the head passes it.
//!
//! # Fan-out and slow readers
//!
//! An event is stored once (`Arc<Event>`) and never copied into per-subscriber queues: each
//! subscriber reads new events from history itself when woken. A publish costs one wake-up per
//! subscriber of the topic, whatever they are doing, so **a slow subscriber delays no one**.
//! Its backlog is bounded: when it passes [`SubscribeOptions::max_backlog`], or when an event it
//! has not read is evicted, its next `recv` returns [`RecvError::Lagged`] with how far behind it
//! was, and the subscription ends; the transport closes the connection with a reason and the
//! client resumes from its last cursor. Memory does not grow with slowness. With a history
//! tier, an evicted unread event is read back from the tier instead, and only what no tier
//! holds cuts the subscriber off.
//!
//! # Publishing once: idempotency keys
//!
//! A publish may carry an [idempotency key](NewEvent::idempotency_key). The storage checks it
//! atomically with sequencing, per topic: the same key on the same topic within the window
//! ([`HubBuilder::idempotency_window`], default 5 minutes) stores nothing and answers with the
//! original event's `seq` and position ([`Hub::publish_idempotent`] returns
//! [`Published::Replayed`]). Retries after a lost answer, a crash or a takeover therefore publish
//! once. The in-memory storage remembers a bounded number of keys, oldest forgotten first: more
//! keyed publishes than that within one window is the one way a repeated key gets through. A
//! shared store keeps its keys where every node sees them.
//!
//! # Senders
//!
//! [`NewEvent::from`] names who published an event (an authenticated user, a source), and every
//! reader sees it as [`Event::from`]. The hub carries it and bounds its length; the server sets
//! it from what it knows, never from what a client claims.
//!
//! # History past memory: tiers
//!
//! Memory holds the recent past. A [`HistoryTier`] holds more (a Redis log, a database's outbox
//! table), and is asked before anything is called lost: when a read finds a gap (its cursor is
//! older than what memory holds of a topic, certainly or possibly), it asks the tiers
//! ([`HubBuilder::tier`], in order) for the missing range of those topics and delivers what they
//! hold merged with the other topics' events, **in the same total order**, then reads on from
//! memory. The reset (or, for a subscriber already reading, the lag) reports only what no tier
//! holds. Backfill is read in chunks of at most the reader's batch, so it is bounded in memory;
//! the tiers are only asked on a gap, so delivery costs nothing more when there is none. A tier
//! that fails or does not answer within [`HubBuilder::tier_timeout`] counts as holding nothing
//! (the reset of a hub without tiers), and is counted in [`Stats::tier_failures`].
//!
//! `missed` is exact when the reader had been following the topic (it knows the `seq` it
//! expected); for a cursor that starts a read it is a range, from 1 when no tier held any of
//! the missing stretch, from 0 when a tier held part of it (what it lacked may have held no
//! event of the topic). `Cursor::Oldest` means what memory retains and asks no tier.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use futures_util::future::BoxFuture;
//! use pushgate_hub::{
//!     Cursor, Event, FetchOptions, HistoryLimit, HistoryTier, Hub, HubError, NewEvent, TierEvents,
//!     TierRead, TopicName,
//! };
//!
//! /// Every event ever published, kept in a Vec: a stand-in for a database table.
//! #[derive(Default)]
//! struct Archive(Mutex<Vec<Arc<Event>>>);
//!
//! impl HistoryTier for Archive {
//!     fn read(&self, r: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>> {
//!         let events: Vec<Arc<Event>> = self.0.lock().unwrap().iter()
//!             .filter(|e| r.topics.contains(e.topic()) && e.position() > r.after && e.position() <= r.upto)
//!             .take(r.limit)
//!             .cloned()
//!             .collect();
//!         // It holds everything: the answer claims completeness.
//!         Box::pin(async move { Ok(TierEvents::new(events)) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let archive = Arc::new(Archive::default());
//! let hub = Hub::builder()
//!     .history(HistoryLimit::default().max_events(2)) // memory keeps 2 events per topic
//!     .tier(archive.clone())
//!     .build();
//! let topic = TopicName::new("orders")?;
//! for n in 1..=5 {
//!     let event = hub.publish(&topic, NewEvent::new(serde_json::json!(n))).await?;
//!     archive.0.lock().unwrap().push(event);
//! }
//! // A reader from before all of it gets all five, 1 to 3 from the archive: no reset.
//! let batch = hub.fetch(&[topic], Cursor::at(hub.epoch(), 0), &FetchOptions::default()).await?;
//! assert!(batch.reset.is_none());
//! assert_eq!(batch.events.iter().map(|e| e.seq()).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
//! # Ok(()) }
//! ```
//!
//! # Surviving a restart: resumed epochs
//!
//! An in-memory hub starts a new epoch, so every cursor from before a restart gets a reset.
//! When a tier keeps the history across the restart (a source's outbox), the hub can continue
//! the epoch instead ([`HubBuilder::resume`]): positions go on above a floor the embedder keeps,
//! each topic's `seq` continues where its publisher says it stopped ([`Hub::restore_topic`]),
//! and a cursor from before the restart is still this epoch's. This hub holds none of that
//! past, so a reader from before the floor is told it *may* have missed events of a topic
//! (the rule for a topic the hub forgot), unless a tier has them: then it gets them, and no
//! reset.
//!
//! # Storage
//!
//! Sequencing and history sit behind the [`Storage`] and [`TopicLog`] traits.
//! [`MemoryStorage`] is the default; a multi-node backend (the `pushgate-redis` crate)
//! implements the same traits without any transport changing, keeping a
//! [`MemoryStorage::replica`] that it fills with [`MemoryStorage::apply`], and can offer its
//! shared log as a [`HistoryTier`] of the hub built on it.
//!
//! # Presence and counters
//!
//! [`Hub::presence`] counts live readers of a topic by a label the transport supplies
//! (`"sse"`, `"ws"`, …) and lists their users (an opaque name given with the subscription or
//! fetch, [`SubscribeOptions::user`]); readers that are not connected between requests (short
//! polls) are counted for a while after each one through a lease ([`Hub::hold`],
//! [`FetchOptions::hold`]); [`Hub::stats`] gives published, replayed, delivered, lagged, resets,
//! current subscribers, tier reads and failures, and the refusals the hub makes (too many
//! topics, data too large) for metrics;
//! [`Hub::stats_by_label`] gives, per label, the live readers, the fetches answered and a
//! histogram of delivery latency (publish timestamp to hand-over, [`LatencyHistogram`]). All
//! are kept as the hub goes, with atomics, so reading them costs no walk over topics.
//!
//! # Example
//!
//! ```
//! use pushgate_hub::{Cursor, FetchOptions, Hub, Item, NewEvent, TopicName};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::new();
//! let orders = TopicName::new("orders")?;
//!
//! // A live subscriber...
//! let mut live = hub.subscribe(&[orders.clone()], Cursor::Now)?;
//! hub.publish(&orders, NewEvent::new(json!({"id": 1, "status": "hurry"})).event_type("alert")).await?;
//! let Item::Event(event) = live.recv().await? else { unreachable!() };
//! assert_eq!(event.type_name(), "alert");
//!
//! // ...drops off, misses one event, and comes back with its cursor.
//! let cursor = live.cursor();
//! drop(live);
//! hub.publish(&orders, NewEvent::new(json!({"id": 2}))).await?;
//! let batch = hub.fetch(&[orders.clone()], cursor, &FetchOptions::default()).await?;
//! assert_eq!(batch.events.len(), 1);
//! assert_eq!(batch.events[0].seq(), 2);
//! assert!(batch.reset.is_none());
//! # Ok(()) }
//! ```

mod backoff;
mod budget;
mod builder;
mod cursor;
mod disconnect;
mod error;
mod event;
mod fetch;
mod hub;
mod idempotency;
mod latency;
mod latest;
mod lease;
mod memory;
mod notice;
mod publish;
mod reader;
mod registry;
mod reset;
mod signal;
mod stats;
mod storage;
mod subscription;
mod tier;
mod topic;

pub use backoff::Backoff;
pub use budget::DEFAULT_HISTORY_MAX_BYTES;
pub use builder::HubBuilder;
pub use cursor::{Cursor, CursorError, Epoch};
pub use error::{HubError, InvalidIdempotencyKey, RecvError};
pub use event::{
    DEFAULT_EVENT_TYPE, Data, EncodingSlot, Event, EventParts, MAX_EVENT_TYPE_LEN, MAX_IDEMPOTENCY_KEY_LEN,
    MAX_SENDER_LEN, NewEvent, RESERVED_EVENT_TYPES,
};
pub use fetch::{Batch, FetchOptions};
pub use hub::{Hub, MAX_PRESENCE_USERS, Presence};
pub use latency::{LATENCY_BUCKETS, LabelStats, LatencyHistogram};
pub use lease::{DEFAULT_MAX_LEASES, DEFAULT_MAX_LEASES_PER_GROUP, MAX_CLIENT_ID_LEN, PresenceHold};
pub use memory::{HistoryLimit, KeyJournal, MemoryStorage};
pub use notice::{ChangeKind, MAX_QUEUED_NOTICES, PresenceChange};
pub use publish::{Published, Replay};
pub use reset::{Missed, Reset, ResetReason, TopicReset};
pub use stats::Stats;
pub use storage::{AppendRequest, Gap, HistoryUse, Notifier, Storage, TopicLog, TopicRead};
pub use subscription::{Item, SubscribeOptions, Subscription};
pub use tier::{HistoryTier, TierEvents, TierRead};
pub use topic::{InvalidTopic, MAX_TOPIC_LEN, TopicName};
