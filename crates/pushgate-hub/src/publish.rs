//! What a publish did: stored a new event, or recognised a replay of an idempotent one.

use std::sync::Arc;

use crate::cursor::{Cursor, Epoch};
use crate::event::Event;
use crate::topic::TopicName;

/// The outcome of [`Hub::publish_idempotent`](crate::Hub::publish_idempotent) and of
/// [`Storage::append`](crate::Storage::append).
///
/// Either the event was stored now, or its idempotency key had already been used on the topic
/// within the window and nothing was stored: then the numbers are the original event's, so the
/// publisher can be answered exactly as the first time.
///
/// ```
/// use pushgate_hub::{Hub, NewEvent, Published, TopicName};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
/// let hub = Hub::new();
/// let topic = TopicName::new("orders")?;
/// let paid = || NewEvent::new(serde_json::json!({"id": 7})).idempotency_key("order-7-paid");
/// let first = hub.publish_idempotent(&topic, paid()).await?;
/// let again = hub.publish_idempotent(&topic, paid()).await?;
/// assert!(matches!(first, Published::New(_)) && !first.is_replay());
/// assert!(again.is_replay());
/// assert_eq!((again.seq(), again.cursor()), (first.seq(), first.cursor()));
/// assert_eq!(hub.stats().published, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub enum Published {
    /// The event was stored now.
    New(Arc<Event>),
    /// The key had been used on this topic within the window: nothing was stored.
    Replayed(Replay),
}

impl Published {
    /// Whether this was a replay (nothing was stored).
    ///
    /// ```
    /// # use pushgate_hub::{Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// let published = hub.publish_idempotent(&TopicName::new("t")?, NewEvent::new(serde_json::json!(1))).await?;
    /// assert!(!published.is_replay());
    /// # Ok(()) }
    /// ```
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }

    /// The topic.
    ///
    /// ```
    /// # use pushgate_hub::{Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("t")?;
    /// assert_eq!(hub.publish_idempotent(&topic, NewEvent::new(serde_json::json!(1))).await?.topic(), &topic);
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &TopicName {
        match self {
            Self::New(event) => event.topic(),
            Self::Replayed(replay) => &replay.topic,
        }
    }

    /// The event's `seq` in its topic (the original's, for a replay).
    ///
    /// ```
    /// # use pushgate_hub::{Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// assert_eq!(hub.publish_idempotent(&TopicName::new("t")?, NewEvent::new(serde_json::json!(1))).await?.seq(), 1);
    /// # Ok(()) }
    /// ```
    pub fn seq(&self) -> u64 {
        match self {
            Self::New(event) => event.seq(),
            Self::Replayed(replay) => replay.seq,
        }
    }

    /// The event's hub-wide position (the original's, for a replay).
    ///
    /// ```
    /// # use pushgate_hub::{Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// assert_eq!(hub.publish_idempotent(&TopicName::new("t")?, NewEvent::new(serde_json::json!(1))).await?.position(), 1);
    /// # Ok(()) }
    /// ```
    pub fn position(&self) -> u64 {
        match self {
            Self::New(event) => event.position(),
            Self::Replayed(replay) => replay.position,
        }
    }

    /// The epoch of [`position`](Self::position).
    ///
    /// ```
    /// # use pushgate_hub::{Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// assert_eq!(hub.publish_idempotent(&TopicName::new("t")?, NewEvent::new(serde_json::json!(1))).await?.epoch(), hub.epoch());
    /// # Ok(()) }
    /// ```
    pub fn epoch(&self) -> Epoch {
        match self {
            Self::New(event) => event.epoch(),
            Self::Replayed(replay) => replay.epoch,
        }
    }

    /// The event's cursor: its `id` on the wire, the same for a replay as the first time.
    ///
    /// ```
    /// # use pushgate_hub::{Cursor, Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// let published = hub.publish_idempotent(&TopicName::new("t")?, NewEvent::new(serde_json::json!(1))).await?;
    /// assert_eq!(published.cursor(), Cursor::at(hub.epoch(), 1));
    /// # Ok(()) }
    /// ```
    pub fn cursor(&self) -> Cursor {
        Cursor::at(self.epoch(), self.position())
    }

    /// The stored event, when this call stored it.
    ///
    /// ```
    /// # use pushgate_hub::{Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// let published = hub.publish_idempotent(&TopicName::new("t")?, NewEvent::new(serde_json::json!(1))).await?;
    /// assert_eq!(published.event().map(|e| e.data().as_str()), Some("1"));
    /// # Ok(()) }
    /// ```
    pub fn event(&self) -> Option<&Arc<Event>> {
        match self {
            Self::New(event) => Some(event),
            Self::Replayed(_) => None,
        }
    }
}

/// The original event's numbers, answered for a replayed idempotency key. See [`Published`].
///
/// ```
/// use pushgate_hub::{Cursor, Epoch, Replay, TopicName};
///
/// let replay = Replay { topic: TopicName::new("t")?, seq: 3, position: 42, epoch: Epoch::from_u32(1) };
/// assert_eq!(replay.cursor(), Cursor::at(Epoch::from_u32(1), 42));
/// # Ok::<(), pushgate_hub::InvalidTopic>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The topic.
    pub topic: TopicName,
    /// The original event's `seq`.
    pub seq: u64,
    /// The original event's position.
    pub position: u64,
    /// The epoch of `position`.
    pub epoch: Epoch,
}

impl Replay {
    /// The original event's cursor.
    ///
    /// ```
    /// # use pushgate_hub::{Cursor, Epoch, Replay, TopicName};
    /// let replay = Replay { topic: TopicName::new("t")?, seq: 1, position: 9, epoch: Epoch::from_u32(2) };
    /// assert_eq!(replay.cursor().to_string(), "00000002-9");
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn cursor(&self) -> Cursor {
        Cursor::at(self.epoch, self.position)
    }
}
