//! The hub's error types. Each variant carries the numbers a transport needs for its message.

use crate::cursor::CursorError;
use crate::event::MAX_IDEMPOTENCY_KEY_LEN;
use crate::event::MAX_SENDER_LEN;
use crate::publish::Replay;
use crate::topic::{InvalidTopic, TopicName};

/// Why a publish, subscribe or fetch was refused.
///
/// Variants that come from client input (`InvalidTopic`, `InvalidEventType`, `InvalidCursor`,
/// `CursorAhead`, `NoTopics`, `TooManyTopics`, `DataTooLarge`, `InvalidIdempotencyKey`, `InvalidLatestKey`) map to a
/// 4xx status or a WebSocket error frame; `InvalidSender` is the server's own (it sets the
/// sender), and so are `TopicLimit`, `Closed`, `Unavailable`, `Storage` and `RestoreConflict`.
/// `Duplicate` is only returned by [`Hub::publish`](crate::Hub::publish): a server that takes
/// idempotency keys calls [`Hub::publish_idempotent`](crate::Hub::publish_idempotent), which
/// answers a replay instead.
///
/// ```
/// use pushgate_hub::{Hub, HubError, NewEvent, TopicName};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let hub = Hub::builder().max_data_bytes(8).build();
/// let err = hub
///     .publish(&TopicName::new("t").unwrap(), NewEvent::new(serde_json::json!("far too long")))
///     .await
///     .unwrap_err();
/// assert!(matches!(err, HubError::DataTooLarge { size: 14, limit: 8 }));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// A topic name failed validation.
    #[error("invalid topic: {0}")]
    InvalidTopic(#[from] InvalidTopic),
    /// An event type failed validation (same alphabet as topics, at most 64 bytes).
    #[error("invalid event type: {0}")]
    InvalidEventType(#[source] InvalidTopic),
    /// A cursor string could not be parsed.
    #[error(transparent)]
    InvalidCursor(#[from] CursorError),
    /// A cursor of this epoch points past the newest event: the hub never issued it.
    #[error("cursor position {position} is ahead of the newest event ({head})")]
    CursorAhead {
        /// Position named by the cursor.
        position: u64,
        /// Newest position the hub has.
        head: u64,
    },
    /// A subscription or fetch named no topic.
    #[error("at least one topic is required")]
    NoTopics,
    /// A subscription or fetch named more distinct topics than allowed.
    #[error("{count} topics requested; at most {limit} per subscription")]
    TooManyTopics {
        /// Distinct topics requested.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// An event's JSON data is larger than allowed.
    #[error("event data is {size} bytes; the limit is {limit}")]
    DataTooLarge {
        /// Size of the compact JSON text.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Publishing to a new topic would pass the hub-wide topic limit.
    #[error("the hub already holds its limit of {limit} topics")]
    TopicLimit {
        /// The configured limit.
        limit: usize,
    },
    /// The hub has been closed (shutting down).
    #[error("the hub is closed")]
    Closed,
    /// A waiting fetch's topic was disconnected on purpose
    /// ([`Hub::disconnect`](crate::Hub::disconnect)).
    #[error("the server disconnected this topic's subscribers")]
    Disconnected,
    /// The storage backend cannot take writes now (a shared store is unreachable); retrying later
    /// may succeed. Reads of what this node already holds keep working.
    #[error("storage unavailable: {reason}")]
    Unavailable {
        /// What is down, for the error message.
        reason: String,
    },
    /// The storage backend failed.
    #[error("storage failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An idempotency key is empty, too long or holds a character outside printable ASCII.
    #[error("invalid idempotency key: {0}")]
    InvalidIdempotencyKey(#[source] InvalidIdempotencyKey),
    /// A latest-value key ([`NewEvent::latest_key`](crate::NewEvent::latest_key)) breaks the
    /// idempotency key's rules.
    #[error("invalid key: {0}")]
    InvalidLatestKey(#[source] InvalidIdempotencyKey),
    /// A sender ([`NewEvent::from`](crate::NewEvent::from)) is empty or longer than
    /// [`MAX_SENDER_LEN`] bytes.
    #[error("sender is {len} bytes; 1 to {MAX_SENDER_LEN} are allowed")]
    InvalidSender {
        /// Length of the rejected sender in bytes.
        len: usize,
    },
    /// [`Hub::publish`](crate::Hub::publish) of an event whose idempotency key was already used
    /// on the topic within the window: nothing was published; the original's numbers are here.
    #[error("idempotency key already used in {} (seq {})", .0.topic, .0.seq)]
    Duplicate(Replay),
    /// [`Hub::restore_topic`](crate::Hub::restore_topic) would move a topic's `seq` backwards,
    /// or under events it already holds.
    #[error("topic {topic} is at seq {current}; it cannot be restored to {requested}")]
    RestoreConflict {
        /// The topic.
        topic: TopicName,
        /// The `seq` of its newest event here.
        current: u64,
        /// The `seq` the restore asked for.
        requested: u64,
    },
}

/// Why a string is not a valid idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] bytes of
/// printable ASCII (space to `~`), so it fits an HTTP header and a Redis key unescaped.
///
/// ```
/// use pushgate_hub::{Hub, HubError, InvalidIdempotencyKey, NewEvent, TopicName};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let hub = Hub::new();
/// let event = NewEvent::new(serde_json::json!(1)).idempotency_key("caf\u{e9}");
/// let err = hub.publish(&TopicName::new("t").unwrap(), event).await.unwrap_err();
/// assert!(matches!(err, HubError::InvalidIdempotencyKey(InvalidIdempotencyKey::BadCharacter { index: 3 })));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidIdempotencyKey {
    /// The key is empty.
    #[error("the key is empty")]
    Empty,
    /// The key is longer than [`MAX_IDEMPOTENCY_KEY_LEN`] bytes.
    #[error("the key is {len} bytes long; the limit is {MAX_IDEMPOTENCY_KEY_LEN}")]
    TooLong {
        /// Length of the rejected key in bytes.
        len: usize,
    },
    /// The key holds a byte outside printable ASCII.
    #[error("the key has a character outside printable ASCII at byte {index}")]
    BadCharacter {
        /// Byte offset of the first bad character.
        index: usize,
    },
}

/// Why [`Subscription::recv`](crate::Subscription::recv) returned no event. Both are final: the
/// subscription delivers nothing more.
///
/// ```
/// use pushgate_hub::RecvError;
///
/// let err = RecvError::Lagged { behind: 1200 };
/// assert_eq!(err.to_string(), "subscriber lagged 1200 events behind and was cut off");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The subscriber fell too far behind: its backlog passed its limit, or events it had not
    /// read yet were evicted from history. `behind` counts the events it had not read: those
    /// lost to eviction (at least) plus those still retained.
    /// Reconnecting from the last delivered cursor replays what is still retained and reports a
    /// [`Reset`](crate::Reset) for the rest.
    #[error("subscriber lagged {behind} events behind and was cut off")]
    Lagged {
        /// Unread events when it was cut off, lost and retained.
        behind: u64,
    },
    /// The hub was closed.
    #[error("the hub is closed")]
    Closed,
    /// The application's server disconnected the readers of one of the topics on purpose
    /// ([`Hub::disconnect`](crate::Hub::disconnect)): clients should not come back on their own.
    #[error("the server disconnected this topic's subscribers")]
    Disconnected,
}
