//! The event hub at the core of pushgate: topics, ordered events, bounded history, cursors and
//! fan-out, with no knowledge of HTTP or databases.
//!
//! Transports (short poll, long poll, SSE, WebSocket) and sources (publish API, database change
//! feeds) are thin adapters over one [`Hub`]. Everything they promise about order, loss and
//! resumption is promised here first; this page is that specification.
//!
//! # Topics and events
//!
//! A topic is named by 1 to 128 characters of `[A-Za-z0-9_.:-]` ([`TopicName`]) and exists from
//! its first use. [`Hub::publish`] stores an [`Event`] with a type (default `"message"`), JSON
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
//! The epoch changes whenever history is lost (an in-memory hub restarts, a Redis store is
//! replaced; nodes restore a Redis that restarted empty under the same epoch). A cursor from
//! another epoch is recognised as such and never compared by position.
//!
//! # History
//!
//! Each topic keeps its recent events, bounded by count, age and bytes ([`HistoryLimit`];
//! defaults 1,000 events, 10 minutes, 8 MiB), evicting oldest first. Topics that are empty and
//! unused are forgotten by [`Hub::sweep`], so memory stays bounded as topics come and go.
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
//! - **A lost past is announced.** If events after the cursor were evicted, or the cursor is from
//!   another epoch, the reader first gets a [`Reset`] naming the topics and how many events were
//!   missed ([`Missed`], exact where known), never silence, then continues from the oldest
//!   retained event.
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
//! client resumes from its last cursor. Memory does not grow with slowness.
//!
//! # Storage
//!
//! Sequencing and history sit behind the [`Storage`] and [`TopicLog`] traits.
//! [`MemoryStorage`] is the default; a multi-node backend (the `pushgate-redis` crate)
//! implements the same traits without any transport changing, keeping a
//! [`MemoryStorage::replica`] that it fills with [`MemoryStorage::apply`].
//!
//! # Presence and counters
//!
//! [`Hub::presence`] counts live readers of a topic by a label the transport supplies
//! (`"sse"`, `"ws"`, …); [`Hub::stats`] gives published, delivered, lagged, resets, current
//! subscribers and the refusals the hub makes (too many topics, data too large) for metrics;
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

mod cursor;
mod error;
mod event;
mod hub;
mod latency;
mod memory;
mod publish;
mod reader;
mod registry;
mod reset;
mod storage;
mod subscription;
mod tier;
mod topic;

pub use cursor::{Cursor, CursorError, Epoch};
pub use error::{HubError, InvalidIdempotencyKey, RecvError};
pub use event::{
    DEFAULT_EVENT_TYPE, Data, EncodingSlot, Event, EventParts, MAX_EVENT_TYPE_LEN, MAX_IDEMPOTENCY_KEY_LEN,
    MAX_SENDER_LEN, NewEvent, RESERVED_EVENT_TYPES,
};
pub use hub::{Batch, FetchOptions, Hub, HubBuilder, Presence, Stats};
pub use latency::{LATENCY_BUCKETS, LabelStats, LatencyHistogram};
pub use memory::{HistoryLimit, MemoryStorage};
pub use publish::{Published, Replay};
pub use reset::{Missed, Reset, ResetReason, TopicReset};
pub use storage::{AppendRequest, Gap, Notifier, Storage, TopicLog, TopicRead};
pub use subscription::{Item, SubscribeOptions, Subscription};
pub use tier::{HistoryTier, TierEvents, TierRead};
pub use topic::{InvalidTopic, MAX_TOPIC_LEN, TopicName};
