//! Events: what publishers hand the hub ([`NewEvent`]) and what readers get back ([`Event`]).

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::time::Instant;

use crate::budget::{Charge, ENCODING_OVERHEAD, EVENT_OVERHEAD};
use crate::cursor::{Cursor, Epoch};
use crate::error::{HubError, InvalidIdempotencyKey};
use crate::topic::{InvalidTopic, TopicName, validate_name};

/// The event type used when a publisher names none.
pub const DEFAULT_EVENT_TYPE: &str = "message";
/// The longest event type accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 64;
/// Event types publishers may not use: the transports send their own control messages under
/// these names (an SSE `event: reset` or `event: error` must not be forgeable by a publisher,
/// and a browser's `EventSource` fires `onerror` for an event named `error`; join and leave
/// notices are `pushgate.join` and `pushgate.leave` on SSE).
pub const RESERVED_EVENT_TYPES: [&str; 4] = ["reset", "error", "pushgate.join", "pushgate.leave"];
/// The longest sender ([`NewEvent::from`]) accepted, in bytes.
pub const MAX_SENDER_LEN: usize = 256;
/// The longest idempotency key ([`NewEvent::idempotency_key`]) accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// An event's payload: one JSON value, kept as compact JSON text.
///
/// The text is produced once at publish time and shared by every reader, so a transport can
/// splice it into its frames without re-serializing.
///
/// ```
/// use pushgate_hub::Data;
/// use serde_json::json;
///
/// let data = Data::from_json(r#"{ "id": 1,  "name": "Ada" }"#)?;
/// assert_eq!(data.as_str(), r#"{"id":1,"name":"Ada"}"#);
/// assert_eq!(data.to_value()?, json!({"id": 1, "name": "Ada"}));
/// assert!(Data::from_json("{not json").is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Data(Bytes);

impl Data {
    /// Parses `text` as JSON and keeps its compact form: the same text without the whitespace
    /// between tokens, every number, string escape and member order as written.
    ///
    /// The text is checked by serde_json's parser but never read into a
    /// [`serde_json::Value`], so numbers keep every digit without the host program needing
    /// serde_json's `arbitrary_precision` (which this crate does not turn on).
    ///
    /// ```
    /// # use pushgate_hub::Data;
    /// assert_eq!(Data::from_json("[1, 2]")?.as_str(), "[1,2]");
    /// assert_eq!(Data::from_json(r#" {"big": 12345678901234567890.12, "s": "a b\" c"} "#)?.as_str(),
    ///            r#"{"big":12345678901234567890.12,"s":"a b\" c"}"#);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let raw: &serde_json::value::RawValue = serde_json::from_str(text)?;
        match compact(raw.get()) {
            Some(compact) => Ok(Self(Bytes::from(compact))),
            // Nested deeper than serde_json reads a `Value`: its parser says why (and the
            // `Ok` cannot happen, but would be the same data).
            None => serde_json::from_str::<serde_json::Value>(text).map(Self::from),
        }
    }

    /// The compact JSON text.
    ///
    /// ```
    /// # use pushgate_hub::Data;
    /// assert_eq!(Data::from(serde_json::json!(null)).as_str(), "null");
    /// ```
    pub fn as_str(&self) -> &str {
        // Only ever built from serde_json output, which is UTF-8; fall back rather than panic.
        std::str::from_utf8(&self.0).unwrap_or("null")
    }

    /// The compact JSON text as shared bytes (cloning is a reference count increment).
    ///
    /// ```
    /// # use pushgate_hub::Data;
    /// assert_eq!(&Data::from(serde_json::json!(1)).bytes()[..], b"1");
    /// ```
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// Size of the JSON text in bytes.
    ///
    /// ```
    /// # use pushgate_hub::Data;
    /// assert_eq!(Data::from(serde_json::json!("ab")).len(), 4);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: the smallest JSON value is one byte long. Present for clippy's sake.
    ///
    /// ```
    /// # use pushgate_hub::Data;
    /// assert!(!Data::from(serde_json::json!(0)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the text back into a [`serde_json::Value`].
    ///
    /// ```
    /// # use pushgate_hub::Data;
    /// assert_eq!(Data::from(serde_json::json!([true])).to_value()?, serde_json::json!([true]));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }
}

impl From<&serde_json::Value> for Data {
    fn from(value: &serde_json::Value) -> Self {
        // Serializing a Value cannot fail: its map keys are strings by construction.
        let mut text = value.to_string();
        // The text grew by doubling; history keeps it for minutes, and counts it by its length
        // against the memory budget, so it must not hold up to as much again unused.
        text.shrink_to_fit();
        Self(Bytes::from(text))
    }
}

/// How deep values may nest: serde_json's own limit for a `Value`, so data can always be read
/// back ([`Data::to_value`]).
const MAX_DEPTH: usize = 128;

/// Valid JSON `json` without the whitespace between its tokens; `None` when it nests deeper
/// than [`MAX_DEPTH`].
fn compact(json: &str) -> Option<String> {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped, mut depth) = (false, false, 0_usize);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => continue,
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return None;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(c);
    }
    Some(out)
}

impl From<serde_json::Value> for Data {
    fn from(value: serde_json::Value) -> Self {
        Self::from(&value)
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as a publisher hands it to [`Hub::publish`](crate::Hub::publish): a type and data,
/// and optionally who sent it and an idempotency key. The hub adds the topic, positions and
/// timestamp.
///
/// ```
/// use pushgate_hub::NewEvent;
/// use serde_json::json;
///
/// let event = NewEvent::new(json!({"id": 7})).event_type("insert");
/// assert_eq!(event.type_name(), "insert");
/// assert_eq!(NewEvent::new(json!(1)).type_name(), "message");
/// ```
#[derive(Clone, Debug)]
pub struct NewEvent {
    event_type: Option<Box<str>>,
    data: Data,
    from: Option<Box<str>>,
    idempotency_key: Option<Box<str>>,
    latest_key: Option<Box<str>>,
}

impl NewEvent {
    /// An event of the default type (`"message"`) carrying `data`.
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// let event = NewEvent::new(serde_json::json!("hello"));
    /// assert_eq!(event.data().as_str(), "\"hello\"");
    /// ```
    pub fn new(data: impl Into<Data>) -> Self {
        Self { event_type: None, data: data.into(), from: None, idempotency_key: None, latest_key: None }
    }

    /// Sets the event type. It is validated at publish time: 1 to 64 characters from
    /// `[A-Za-z0-9_.:-]`, so it can stand unescaped in an SSE `event:` field, and not one of
    /// [`RESERVED_EVENT_TYPES`].
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// assert_eq!(NewEvent::new(serde_json::json!(1)).event_type("tick").type_name(), "tick");
    /// ```
    pub fn event_type(mut self, event_type: impl Into<Box<str>>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Names the sender: who published the event, as the server established it (an
    /// authenticated user, a source). Readers get it as [`Event::from`]. Any UTF-8 of 1 to
    /// [`MAX_SENDER_LEN`] bytes, checked at publish time ([`HubError::InvalidSender`]); the hub
    /// does not authenticate it, so a server must set it from its own knowledge, never from what
    /// a client claims.
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// let event = NewEvent::new(serde_json::json!("hi")).from("user:ada");
    /// assert_eq!(event.sender(), Some("user:ada"));
    /// assert_eq!(NewEvent::new(serde_json::json!("hi")).sender(), None);
    /// ```
    #[allow(clippy::wrong_self_convention)] // a builder step named after the event member it sets
    pub fn from(mut self, sender: impl Into<Box<str>>) -> Self {
        self.from = Some(sender.into());
        self
    }

    /// Makes the publish idempotent: the same `key` on the same topic within the storage's
    /// window publishes nothing the second time and answers with the original event's numbers
    /// (see [`Hub::publish_idempotent`](crate::Hub::publish_idempotent)). 1 to
    /// [`MAX_IDEMPOTENCY_KEY_LEN`] bytes of printable ASCII (space to `~`), checked at publish
    /// time ([`HubError::InvalidIdempotencyKey`]).
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// let event = NewEvent::new(serde_json::json!(1)).idempotency_key("order-7-paid");
    /// assert_eq!(event.key(), Some("order-7-paid"));
    /// ```
    pub fn idempotency_key(mut self, key: impl Into<Box<str>>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Names what the event is the newest value of (a ticker symbol, a counter's name), for
    /// readers that want only the latest value: a reader with the *latest only* policy
    /// ([`SubscribeOptions::latest`](crate::SubscribeOptions::latest),
    /// [`FetchOptions::latest`](crate::FetchOptions::latest),
    /// [`HubBuilder::latest_topics`](crate::HubBuilder::latest_topics)) that is behind skips an
    /// event when a newer one of the same topic and key is already waiting for it. Events
    /// without a key are never skipped. Same rules as an idempotency key: 1 to
    /// [`MAX_IDEMPOTENCY_KEY_LEN`] bytes of printable ASCII, checked at publish time
    /// ([`HubError::InvalidLatestKey`]).
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// let event = NewEvent::new(serde_json::json!(101.5)).latest_key("AAPL");
    /// assert_eq!(event.latest_key_name(), Some("AAPL"));
    /// ```
    pub fn latest_key(mut self, key: impl Into<Box<str>>) -> Self {
        self.latest_key = Some(key.into());
        self
    }

    /// The key set with [`latest_key`](Self::latest_key), if any.
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// assert_eq!(NewEvent::new(serde_json::json!(2)).latest_key_name(), None);
    /// ```
    pub fn latest_key_name(&self) -> Option<&str> {
        self.latest_key.as_deref()
    }

    /// The event type, or `"message"` when none was set.
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// assert_eq!(NewEvent::new(serde_json::json!(1)).type_name(), "message");
    /// ```
    pub fn type_name(&self) -> &str {
        self.event_type.as_deref().unwrap_or(DEFAULT_EVENT_TYPE)
    }

    /// The payload.
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// assert_eq!(NewEvent::new(serde_json::json!(2)).data().as_str(), "2");
    /// ```
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The sender set with [`from`](Self::from), if any.
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// assert_eq!(NewEvent::new(serde_json::json!(2)).from("ada").sender(), Some("ada"));
    /// ```
    pub fn sender(&self) -> Option<&str> {
        self.from.as_deref()
    }

    /// The idempotency key set with [`idempotency_key`](Self::idempotency_key), if any.
    ///
    /// ```
    /// # use pushgate_hub::NewEvent;
    /// assert_eq!(NewEvent::new(serde_json::json!(2)).key(), None);
    /// ```
    pub fn key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// Checks the event type, sender and key; called by the hub before the event reaches
    /// storage.
    pub(crate) fn validate(&self) -> Result<(), HubError> {
        match &self.event_type {
            Some(name) if RESERVED_EVENT_TYPES.contains(&&**name) => {
                return Err(HubError::InvalidEventType(InvalidTopic::Reserved { name: name.to_string() }));
            }
            Some(name) => validate_name(name, MAX_EVENT_TYPE_LEN).map_err(HubError::InvalidEventType)?,
            None => {}
        }
        if let Some(from) = &self.from
            && (from.is_empty() || from.len() > MAX_SENDER_LEN)
        {
            return Err(HubError::InvalidSender { len: from.len() });
        }
        if let Some(key) = &self.idempotency_key {
            validate_key(key).map_err(HubError::InvalidIdempotencyKey)?;
        }
        if let Some(key) = &self.latest_key {
            validate_key(key).map_err(HubError::InvalidLatestKey)?;
        }
        Ok(())
    }

    /// Splits into the parts a storage backend needs.
    pub(crate) fn into_parts(self) -> NewEventParts {
        NewEventParts {
            event_type: self.event_type.unwrap_or_else(|| DEFAULT_EVENT_TYPE.into()),
            data: self.data,
            from: self.from,
            idempotency_key: self.idempotency_key,
            latest_key: self.latest_key,
        }
    }
}

/// A validated [`NewEvent`], taken apart.
pub(crate) struct NewEventParts {
    pub(crate) event_type: Box<str>,
    pub(crate) data: Data,
    pub(crate) from: Option<Box<str>>,
    pub(crate) idempotency_key: Option<Box<str>>,
    pub(crate) latest_key: Option<Box<str>>,
}

fn validate_key(key: &str) -> Result<(), InvalidIdempotencyKey> {
    if key.is_empty() {
        return Err(InvalidIdempotencyKey::Empty);
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(InvalidIdempotencyKey::TooLong { len: key.len() });
    }
    match key.bytes().position(|b| !(b' '..=b'~').contains(&b)) {
        Some(index) => Err(InvalidIdempotencyKey::BadCharacter { index }),
        None => Ok(()),
    }
}

/// Everything a storage backend supplies to build an [`Event`].
///
/// Only storage implementations construct events; readers get them as `Arc<Event>` from the hub.
#[derive(Debug)]
pub struct EventParts {
    /// The topic the event was published to.
    pub topic: TopicName,
    /// The event type (already validated by the hub).
    pub event_type: Box<str>,
    /// The payload.
    pub data: Data,
    /// Position within the topic: 1 for its first event, then +1 each, with no gaps.
    pub seq: u64,
    /// Position in the hub-wide order, strictly increasing across all topics of the epoch.
    pub position: u64,
    /// The epoch the positions belong to.
    pub epoch: Epoch,
    /// Server time of publication, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Who published it ([`NewEvent::from`]), when the publisher said.
    pub from: Option<Box<str>>,
    /// What it is the newest value of ([`NewEvent::latest_key`]), when the publisher said.
    pub latest_key: Option<Box<str>>,
}

/// The number of distinct encodings an event caches; see [`EncodingSlot`].
const MAX_ENCODINGS: usize = 4;

/// A published event, as every reader sees it. Shared (`Arc<Event>`) between history and all
/// readers; never copied per subscriber.
///
/// ```
/// use pushgate_hub::{Cursor, Hub, NewEvent, TopicName};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
/// let hub = Hub::new();
/// let topic = TopicName::new("orders")?;
/// let event = hub.publish(&topic, NewEvent::new(json!({"id": 1})).event_type("insert")).await?;
/// assert_eq!(event.topic(), &topic);
/// assert_eq!(event.seq(), 1);
/// assert_eq!(event.type_name(), "insert");
/// assert_eq!(event.data().as_str(), r#"{"id":1}"#);
/// assert_eq!(event.cursor(), Cursor::at(hub.epoch(), event.position()));
/// # Ok(()) }
/// ```
pub struct Event {
    parts: EventParts,
    stored_at: Instant,
    encodings: OnceLock<Box<[OnceLock<Bytes>; MAX_ENCODINGS]>>,
    /// What the event costs its storage's memory budget while retained.
    charge: Charge,
}

impl Event {
    /// Builds an event; for storage backends.
    ///
    /// ```
    /// use pushgate_hub::{Data, Epoch, Event, EventParts, TopicName};
    ///
    /// let event = Event::from_parts(EventParts {
    ///     topic: TopicName::new("t")?,
    ///     event_type: "message".into(),
    ///     data: Data::from(serde_json::json!(1)),
    ///     seq: 1,
    ///     position: 10,
    ///     epoch: Epoch::from_u32(3),
    ///     timestamp_ms: 0,
    ///     from: None,
    ///     latest_key: None,
    /// });
    /// assert_eq!(event.cursor().to_string(), "00000003-a");
    /// # Ok::<(), pushgate_hub::InvalidTopic>(())
    /// ```
    pub fn from_parts(parts: EventParts) -> Self {
        Self { parts, stored_at: Instant::now(), encodings: OnceLock::new(), charge: Charge::none() }
    }

    /// An event retained by an in-memory storage, its cost (and that of every encoding later
    /// cached on it) charged to the storage's budget until [`release`](Self::release).
    pub(crate) fn retained(parts: EventParts, budget: &std::sync::Arc<crate::budget::Budget>) -> Self {
        let mut event = Self::from_parts(parts);
        event.charge = Charge::new(budget, event.retained_size());
        event
    }

    /// Gives back what the event costs its storage's budget: it left history.
    pub(crate) fn release(&self) {
        self.charge.release();
    }

    /// The topic.
    pub fn topic(&self) -> &TopicName {
        &self.parts.topic
    }

    /// The event type (`"message"` unless the publisher named one).
    pub fn type_name(&self) -> &str {
        &self.parts.event_type
    }

    /// The payload.
    pub fn data(&self) -> &Data {
        &self.parts.data
    }

    /// Position within the topic: 1, 2, 3, … with no gaps, in publish order.
    pub fn seq(&self) -> u64 {
        self.parts.seq
    }

    /// Position in the hub-wide order of the epoch.
    pub fn position(&self) -> u64 {
        self.parts.position
    }

    /// The epoch of [`position`](Self::position).
    pub fn epoch(&self) -> Epoch {
        self.parts.epoch
    }

    /// Server time of publication, in milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> u64 {
        self.parts.timestamp_ms
    }

    /// Who published it, when the publisher said ([`NewEvent::from`]).
    ///
    /// ```
    /// use pushgate_hub::{Hub, NewEvent, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("chat")?;
    /// let said = hub.publish(&topic, NewEvent::new(serde_json::json!("hi")).from("ada")).await?;
    /// assert_eq!(said.from(), Some("ada"));
    /// let anonymous = hub.publish(&topic, NewEvent::new(serde_json::json!("hi"))).await?;
    /// assert_eq!(anonymous.from(), None);
    /// # Ok(()) }
    /// ```
    pub fn from(&self) -> Option<&str> {
        self.parts.from.as_deref()
    }

    /// What the event is the newest value of ([`NewEvent::latest_key`]), if the publisher said.
    pub fn latest_key(&self) -> Option<&str> {
        self.parts.latest_key.as_deref()
    }

    /// The cursor that resumes right after this event, for any subscription that includes its
    /// topic. It is the same for every subscriber, which is what lets a transport encode an
    /// event once and send the same bytes to all.
    pub fn cursor(&self) -> Cursor {
        Cursor::at(self.parts.epoch, self.parts.position)
    }

    /// When this process stored the event; drives age-based eviction.
    pub(crate) fn stored_at(&self) -> Instant {
        self.stored_at
    }

    /// Bytes of memory the event accounts for in history limits (payload plus fixed overhead).
    pub(crate) fn approx_size(&self) -> usize {
        const OVERHEAD: usize = std::mem::size_of::<Event>() + 32;
        OVERHEAD + self.variable_size()
    }

    /// What the event holds while retained, before any encoding is cached on it: what the
    /// memory budget charges.
    pub(crate) fn retained_size(&self) -> usize {
        EVENT_OVERHEAD + self.variable_size()
    }

    fn variable_size(&self) -> usize {
        self.parts.data.len()
            + self.parts.event_type.len()
            + self.parts.from.as_ref().map_or(0, |f| f.len())
            + self.parts.latest_key.as_ref().map_or(0, |k| k.len())
    }

    /// This event encoded by `encode`, computed once per slot and shared by every later caller.
    ///
    /// A transport allocates one [`EncodingSlot`] for its wire format and asks every event for
    /// its bytes through it: the first subscriber to need them pays for the encoding, the other
    /// thousands clone a reference-counted buffer.
    ///
    /// ```
    /// use std::sync::LazyLock;
    /// use bytes::Bytes;
    /// use pushgate_hub::{EncodingSlot, Hub, NewEvent, TopicName};
    ///
    /// static UPPER: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pushgate_hub::HubError> {
    /// let hub = Hub::new();
    /// let event = hub.publish(&TopicName::new("t")?, NewEvent::new(serde_json::json!("hi"))).await?;
    /// let mut calls = 0;
    /// for _ in 0..3 {
    ///     let bytes = event.encoded(&UPPER, |e| {
    ///         calls += 1;
    ///         Bytes::from(e.data().as_str().to_uppercase())
    ///     });
    ///     assert_eq!(&bytes[..], b"\"HI\"");
    /// }
    /// assert_eq!(calls, 1);
    /// # Ok(()) }
    /// ```
    pub fn encoded(&self, slot: &EncodingSlot, encode: impl FnOnce(&Event) -> Bytes) -> Bytes {
        let Some(index) = slot.index() else {
            return encode(self);
        };
        // What caching adds to a retained event is charged to its storage's memory budget: the
        // encodings of one event together hold about as much as its payload, once per format.
        let mut added = 0;
        let slots = self.encodings.get_or_init(|| {
            added += std::mem::size_of::<[OnceLock<Bytes>; MAX_ENCODINGS]>() + 16;
            Default::default()
        });
        let bytes = slots[index]
            .get_or_init(|| {
                let bytes = encode(self);
                added += bytes.len() + ENCODING_OVERHEAD;
                bytes
            })
            .clone();
        if added > 0 {
            self.charge.add(added);
        }
        bytes
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("topic", &self.parts.topic)
            .field("seq", &self.parts.seq)
            .field("position", &self.parts.position)
            .field("type", &self.parts.event_type)
            .field("data", &self.parts.data)
            .field("from", &self.parts.from)
            .field("latest_key", &self.parts.latest_key)
            .finish_non_exhaustive()
    }
}

/// A cache slot for one encoding of events (one per wire format). See [`Event::encoded`].
///
/// The hub has room for four slots per event; slots allocated beyond that still work but do not
/// cache. Allocate one per format for the life of the process, typically in a `static`.
///
/// ```
/// use std::sync::LazyLock;
/// use pushgate_hub::EncodingSlot;
///
/// static SSE_FRAME: LazyLock<EncodingSlot> = LazyLock::new(EncodingSlot::new);
/// # let _ = &*SSE_FRAME;
/// ```
#[derive(Debug)]
pub struct EncodingSlot(usize);

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

impl EncodingSlot {
    /// Allocates the next slot.
    ///
    /// ```
    /// # use pushgate_hub::EncodingSlot;
    /// let slot = EncodingSlot::new();
    /// # let _ = slot;
    /// ```
    #[allow(clippy::new_without_default)] // a Default would hide that each call takes a slot
    pub fn new() -> Self {
        Self(NEXT_SLOT.fetch_add(1, Ordering::Relaxed))
    }

    fn index(&self) -> Option<usize> {
        (self.0 < MAX_ENCODINGS).then_some(self.0)
    }
}
