//! Subscriptions: a reader that follows a set of topics live, from a cursor.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use futures_util::future::BoxFuture;
use tokio::time::Sleep;

use crate::cursor::{Cursor, Epoch};
use crate::error::RecvError;
use crate::event::Event;
use crate::hub::Inner;
use crate::latency::LabelCounters;
use crate::notice::{Notices, PresenceChange};
use crate::reader::Reader;
use crate::registry::{Label, Registration, Signal, Who};
use crate::reset::{Reset, ResetReason};
use crate::tier::{self, Chunk};
use crate::topic::TopicName;

/// What a subscription delivers.
#[derive(Debug, Clone)]
pub enum Item {
    /// The next event, in the hub's total order.
    Event(Arc<Event>),
    /// A reader of one of the topics joined or left; only for a subscription that asked
    /// ([`SubscribeOptions::presence_events`]). Not an event: it moves no cursor.
    Presence(Arc<PresenceChange>),
    /// History the cursor asked for is gone; comes first, before any event.
    Reset(Reset),
}

/// How a subscription behaves; see [`Hub::subscribe_with`](crate::Hub::subscribe_with).
///
/// ```
/// use pushgate_hub::SubscribeOptions;
///
/// let options = SubscribeOptions::default().label("sse").max_backlog(Some(500));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    pub(crate) who: Who,
    pub(crate) max_backlog: Option<usize>,
    pub(crate) coalesce: Duration,
    pub(crate) notices: bool,
    pub(crate) latest: crate::latest::Choice,
    pub(crate) auto_batch: bool,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            who: Who { label: Label::Borrowed("embedded"), user: None, announced: true },
            max_backlog: None,
            coalesce: Duration::ZERO,
            notices: false,
            latest: crate::latest::Choice::Policy,
            auto_batch: false,
        }
    }
}

impl SubscribeOptions {
    /// The name this subscriber is counted under in [`Presence`](crate::Presence), usually the
    /// transport (`"sse"`, `"ws"`). Defaults to `"embedded"`.
    pub fn label(mut self, label: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.who.label = label.into();
        self
    }

    /// The user this subscriber is listed under in [`Presence`](crate::Presence): an opaque
    /// name (the hub knows nothing of auth; the gateway gives the user its credentials name).
    /// Default none: counted, not listed.
    pub fn user(mut self, user: Option<Arc<str>>) -> Self {
        self.who.user = user;
        self
    }

    /// Deliver the joins and leaves of readers of its topics as [`Item::Presence`] (default
    /// `false`), once the embedder relays them ([`Hub::presence_changes`](crate::Hub::presence_changes)).
    pub fn presence_events(mut self, on: bool) -> Self {
        self.notices = on;
        self
    }

    /// Cut the subscriber off with [`RecvError::Lagged`] once more than `n` events are waiting
    /// for it. `None` (the default, unless the hub sets one) lets it fall behind until history
    /// evicts an event it has not read.
    ///
    /// The limit applies to live events only: while a subscriber replays the history it asked
    /// for (everything up to the head at the time it subscribed), only eviction can cut it off.
    /// Otherwise a client resuming with a large retained backlog would be cut off at once, and
    /// again each time it came back with the same cursor.
    pub fn max_backlog(mut self, n: Option<usize>) -> Self {
        self.max_backlog = n;
        self
    }

    /// Hold events for up to `window` so that several go out together: see
    /// [`Subscription::recv_many`]. Zero (the default) hands each event out as soon as it is
    /// read.
    pub fn coalesce(mut self, window: Duration) -> Self {
        self.coalesce = window;
        self
    }

    /// Read every topic latest value only: when the subscriber is behind, an event with a
    /// [key](crate::NewEvent::latest_key) is skipped if a newer event of the same topic and key
    /// is read with it. Events without a key are never skipped; the cursor moves past what is
    /// skipped, and `seq` then jumps (a gap that is not a loss: no reset is reported). Off by
    /// default, except for the topics the hub's [policy](crate::HubBuilder::latest_topics)
    /// names, which are read that way whatever this says.
    ///
    /// ```
    /// use pushgate_hub::{Cursor, Hub, Item, NewEvent, SubscribeOptions, TopicName};
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let prices = TopicName::new("prices")?;
    /// let mut sub = hub.subscribe_with(&[prices.clone()], Cursor::Now, SubscribeOptions::default().latest(true))?;
    /// for (symbol, price) in [("AAPL", 1), ("MSFT", 2), ("AAPL", 3)] {
    ///     hub.publish(&prices, NewEvent::new(json!(price)).latest_key(symbol)).await?;
    /// }
    /// let mut items = Vec::new();
    /// sub.recv_many(&mut items, 100).await?;
    /// let seen: Vec<_> = items.iter().map(|i| match i { Item::Event(e) => e.data().as_str().to_owned(), _ => unreachable!() }).collect();
    /// assert_eq!(seen, ["2", "3"]);
    /// # Ok(()) }
    /// ```
    pub fn latest(mut self, on: bool) -> Self {
        self.latest = if on { crate::latest::Choice::All } else { crate::latest::Choice::Policy };
        self
    }

    /// Batch automatically under overload: see [`Subscription::recv_many`]. Off by default, so
    /// that a subscription with events waiting is always ready; a transport that writes each
    /// batch in one go (SSE, WebSocket) turns it on.
    pub fn auto_batch(mut self, on: bool) -> Self {
        self.auto_batch = on;
        self
    }

    /// Read these topics latest value only (as [`latest`](Self::latest) does for all), the
    /// others in full.
    pub fn latest_topics(mut self, topics: impl IntoIterator<Item = TopicName>) -> Self {
        self.latest = crate::latest::Choice::Topics(topics.into_iter().collect());
        self
    }
}

/// A live reader of one or more topics, created by [`Hub::subscribe`](crate::Hub::subscribe).
///
/// Delivers, in order: a [`Reset`] if the starting cursor could not be honoured exactly, then
/// every retained event after the cursor, then live events as they are published, with no
/// loss, duplicate or reordering at the switch from history to live (both come from the same
/// ordered log; there is no separate live channel to race with).
///
/// **Order.** Events of all its topics arrive in the hub's single total order (by
/// [`Event::position`]), the same order every other subscriber and every poll sees.
///
/// **Lag.** Events are not copied into a per-subscriber queue; the subscription reads them from
/// history. A subscriber that falls behind by more than its backlog limit, or whose unread
/// events are evicted, gets [`RecvError::Lagged`] and nothing more: its transport closes it, and
/// the client resumes from its last cursor. Nobody else is slowed down by it.
///
/// **Close.** Dropping the subscription unregisters it. After [`Hub::close`](crate::Hub::close),
/// `recv` returns [`RecvError::Closed`].
///
/// ```
/// use pushgate_hub::{Cursor, Hub, Item, NewEvent, TopicName};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::new();
/// let (a, b) = (TopicName::new("a")?, TopicName::new("b")?);
/// hub.publish(&a, NewEvent::new(json!("old"))).await?;
///
/// let mut sub = hub.subscribe(&[a.clone(), b.clone()], Cursor::Oldest)?;
/// hub.publish(&b, NewEvent::new(json!("new"))).await?;
///
/// let mut seen = Vec::new();
/// for _ in 0..2 {
///     match sub.recv().await? {
///         Item::Event(event) => seen.push(event.data().as_str().to_owned()),
///         Item::Reset(reset) => panic!("unexpected {reset:?}"),
///         Item::Presence(change) => panic!("notices were not asked for: {change:?}"),
///     }
/// }
/// assert_eq!(seen, ["\"old\"", "\"new\""]);
/// # Ok(()) }
/// ```
pub struct Subscription {
    hub: Arc<Inner>,
    reader: Reader,
    signal: Arc<Signal>,
    registrations: Vec<Registration>,
    epoch: Epoch,
    position: u64,
    pending_reset: Option<Reset>,
    max_backlog: usize,
    /// The head when the subscription started: until the reader passes it, it is replaying
    /// history, which history's own bounds limit; the backlog limit applies after.
    live_from: u64,
    /// Items read but not yet handed out by `recv`/`poll_next`; at most one batch.
    buffer: VecDeque<Item>,
    scratch: Vec<Arc<Event>>,
    failed: Option<RecvError>,
    /// Whether this subscription was counted in the hub's subscriber gauge (and its label's).
    counted: bool,
    /// Whether an item was read: until then, what the tiers lack opens the stream as a reset;
    /// after, it is a lag.
    started: bool,
    /// Its label's counters: live readers and delivery latency.
    label: Arc<LabelCounters>,
    /// The coalescing window, if any; or, with a zero window, the pause of automatic batching
    /// while one is on. Boxed, so that subscriptions without one (and every idle connection
    /// holds one) pay a pointer for it.
    coalesce: Option<Box<Coalesce>>,
    /// A read of the history tiers in flight: only while backfilling a gap.
    tier_read: Option<BoxFuture<'static, Result<Chunk, crate::HubError>>>,
    /// The hub's disconnect count this subscription has looked at (see `disconnect`).
    disconnects_seen: u64,
    /// Where its join and leave notices wait, when it asked for them.
    notices: Option<Arc<Notices>>,
    /// [`SubscribeOptions::auto_batch`], without a coalescing window.
    auto_batch: bool,
}

struct Coalesce {
    /// Zero for automatic batching's pause, whose `timer` is the pause.
    window: Duration,
    /// Ends the window of the items in `buffer`; exists only while one is open, so an idle
    /// subscription holds no timer.
    timer: Option<Pin<Box<Sleep>>>,
    /// A window ended or a full batch was read: hand out what is there at once, until a look
    /// finds nothing new.
    draining: bool,
}

/// Events a subscription reads from history in one step.
const BATCH: usize = 256;

/// Automatic batching starts when the oldest event of a batch waited this long: a subscriber
/// that keeps up is never paused.
const AUTO_BATCH_LAG: Duration = Duration::from_millis(5);
/// The longest pause automatic batching takes between two reads.
const AUTO_BATCH_MAX: Duration = Duration::from_millis(50);

/// The pause before the next read of a subscriber whose batch's oldest event waited `lag`: a
/// quarter of it, so the pause grows with the backlog and adds at most a quarter to a delay
/// the event had already; `None` below [`AUTO_BATCH_LAG`].
fn auto_batch_pause(lag: Duration) -> Option<Duration> {
    (lag >= AUTO_BATCH_LAG).then(|| (lag / 4).min(AUTO_BATCH_MAX))
}

impl Subscription {
    pub(crate) fn new(
        hub: Arc<Inner>,
        reader: Reader,
        cursor: Cursor,
        options: SubscribeOptions,
    ) -> Result<Self, crate::HubError> {
        let signal = Arc::new(Signal::default());
        let notices = options.notices.then(|| Arc::new(Notices::default()));
        // Register before looking at the head: a commit after this point wakes us, a commit
        // before it is covered by the head we read next.
        let registrations = reader
            .names()
            .map(|name| hub.registry.add(name, Some(&signal), Some(&options.who), notices.as_ref()))
            .collect::<Vec<_>>();
        let epoch = hub.storage.epoch();
        let label = hub.registry.label_counters(&options.who.label);
        let disconnects_seen = hub.disconnects.now();
        let mut subscription = Self {
            hub,
            reader,
            signal,
            registrations,
            epoch,
            position: 0,
            pending_reset: None,
            max_backlog: options.max_backlog.unwrap_or(usize::MAX),
            live_from: 0,
            buffer: VecDeque::new(),
            scratch: Vec::new(),
            failed: None,
            counted: false,
            started: false,
            label,
            coalesce: (!options.coalesce.is_zero())
                .then(|| Box::new(Coalesce { window: options.coalesce, timer: None, draining: false })),
            tier_read: None,
            disconnects_seen,
            notices,
            auto_batch: options.auto_batch && options.coalesce.is_zero(),
        };
        // On error the half-built subscription is dropped, which unregisters it.
        if subscription.hub.registry.is_closed() {
            return Err(crate::HubError::Closed);
        }
        let head = subscription.hub.storage.head();
        let start = subscription.reader.start(cursor, epoch, head)?;
        subscription.position = start.position;
        subscription.live_from = head;
        if let Some(reset) = &start.reset {
            subscription.hub.counters.reset();
            tracing_reset(reset);
        }
        subscription.pending_reset = start.reset;
        subscription.hub.counters.subscribed();
        subscription.label.joined();
        subscription.counted = true;
        Ok(subscription)
    }

    /// The cursor that resumes right after the last item delivered: give it back to
    /// [`Hub::subscribe`](crate::Hub::subscribe) (on any transport) to continue where this left
    /// off.
    ///
    /// ```
    /// # use pushgate_hub::{Cursor, Hub, TopicName};
    /// let hub = Hub::new();
    /// let sub = hub.subscribe(&[TopicName::new("t")?], Cursor::Now)?;
    /// assert_eq!(sub.cursor(), Cursor::at(hub.epoch(), 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cursor(&self) -> Cursor {
        // Items still buffered were read but not delivered: resume before the first of them.
        // A window may hold a reset ahead of its events, so look past it.
        let position = self
            .buffer
            .iter()
            .find_map(|item| match item {
                Item::Event(event) => Some(event.position() - 1),
                Item::Reset(_) | Item::Presence(_) => None,
            })
            .unwrap_or(self.position);
        Cursor::at(self.epoch, position)
    }

    /// The topics followed, sorted and deduplicated.
    ///
    /// ```
    /// # use pushgate_hub::{Cursor, Hub, TopicName};
    /// let hub = Hub::new();
    /// let (a, b) = (TopicName::new("a")?, TopicName::new("b")?);
    /// let sub = hub.subscribe(&[b.clone(), a.clone(), b.clone()], Cursor::Now)?;
    /// assert_eq!(sub.topics().collect::<Vec<_>>(), [&a, &b]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topics(&self) -> impl Iterator<Item = &TopicName> {
        self.reader.names()
    }

    /// The topics read [latest value only](SubscribeOptions::latest), by the subscription's
    /// choice or the hub's policy, sorted.
    ///
    /// ```
    /// # use pushgate_hub::{Cursor, Hub, SubscribeOptions, TopicName};
    /// let hub = Hub::new();
    /// let (a, b) = (TopicName::new("a")?, TopicName::new("b")?);
    /// let options = SubscribeOptions::default().latest_topics([b.clone()]);
    /// let sub = hub.subscribe_with(&[a, b.clone()], Cursor::Now, options)?;
    /// assert_eq!(sub.latest_topics().collect::<Vec<_>>(), [&b]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn latest_topics(&self) -> impl Iterator<Item = &TopicName> {
        self.reader.latest_names()
    }

    /// The next item, waiting for one if needed. Cancel-safe: dropping the future loses nothing.
    pub async fn recv(&mut self) -> Result<Item, RecvError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Appends up to `limit` items to `buf`, waiting until there is at least one; returns how
    /// many were appended. Lets a transport write a burst in one syscall. Cancel-safe.
    ///
    /// **Coalescing.** With a [`coalesce`](SubscribeOptions::coalesce) window, the first items
    /// read by a caught-up subscription open the window, and nothing is handed out until it
    /// ends. Meanwhile publishes do not wake the subscription (only its timer and a closing
    /// hub do); at the end it reads everything pending and hands it out, `limit` at a time,
    /// over as many calls as that takes, without opening a new window until a look finds
    /// nothing: call again until `Pending` to write it all. A batch that fills `limit` on
    /// the first read is a backlog and goes out at once. The backlog limit and eviction are
    /// checked when the window's events are read, at its end: `max_backlog` must exceed what
    /// arrives within a window. If the subscription fails, the items read go out first, then
    /// the error; a closing hub ends a window at once. [`recv`](Self::recv) is never delayed.
    /// Without a window no timer is created.
    ///
    /// **Automatic batching** ([`auto_batch`](SubscribeOptions::auto_batch)). Without a window, a
    /// subscriber that is behind because the
    /// process is (a live batch that does not fill `limit` whose oldest event waited 5 ms or
    /// more) reads next only after a pause of a quarter of that wait, at most 50 ms, muted to
    /// publishes meanwhile: under overload each read, and each write of the transport, carries
    /// more events as the backlog grows, instead of a wake-up, a read and a write per event. A
    /// subscriber that keeps up, or replays history, or drains a backlog of its own (full
    /// batches), is never paused. What was read goes out at once; only the next read waits.
    ///
    /// ```
    /// # use pushgate_hub::{Cursor, Hub, NewEvent, TopicName};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("t")?;
    /// let mut sub = hub.subscribe(&[topic.clone()], Cursor::Now)?;
    /// for i in 0..5 {
    ///     hub.publish(&topic, NewEvent::new(serde_json::json!(i))).await?;
    /// }
    /// let mut items = Vec::new();
    /// assert_eq!(sub.recv_many(&mut items, 100).await?, 5);
    /// # Ok(()) }
    /// ```
    pub async fn recv_many(&mut self, buf: &mut Vec<Item>, limit: usize) -> Result<usize, RecvError> {
        std::future::poll_fn(|cx| self.poll_recv_many(cx, buf, limit)).await
    }

    /// Poll form of [`recv`](Self::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Item, RecvError>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Poll::Ready(Ok(item));
            }
            match self.poll_fill(cx, BATCH) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Poll form of [`recv_many`](Self::recv_many).
    pub fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<Item>,
        limit: usize,
    ) -> Poll<Result<usize, RecvError>> {
        let limit = limit.max(1);
        if let Some(mut coalesce) = self.coalesce.take_if(|c| !c.window.is_zero()) {
            let polled = self.poll_recv_coalesced(cx, buf, limit, &mut coalesce);
            self.coalesce = Some(coalesce);
            return polled;
        }
        if self.buffer.is_empty() {
            // Automatic batching's pause.
            if let Some(pause) = self.coalesce.as_mut().and_then(|c| c.timer.as_mut()) {
                if pause.as_mut().poll(cx).is_pending() {
                    // Muted before the closed flag is read: a close after the read interrupts us.
                    self.signal.mute(cx);
                    if !self.hub.registry.is_closed() {
                        return Poll::Pending;
                    }
                }
                self.coalesce = None;
            }
            match self.poll_fill(cx, limit) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.buffer.len().min(limit);
        buf.extend(self.buffer.drain(..n));
        Poll::Ready(Ok(n))
    }

    /// Automatic batching: after a live batch that did not fill `limit` but whose oldest event
    /// waited [`AUTO_BATCH_LAG`] or more, the subscriber is behind because the process is (a
    /// subscriber's own backlog fills whole batches). Deliveries then cost a wake-up, a read
    /// and a write each, so the next read waits a little ([`auto_batch_pause`]), muted to
    /// publishes: what arrives meanwhile goes out in one read and one write, and the work
    /// per delivery falls as the load rises.
    ///
    /// Called with the batch in `scratch`, read with `limit`, whose oldest event waited
    /// `lag_us` (as the latency histogram measured it, to the publisher's millisecond).
    fn pause_if_behind(&mut self, limit: usize, lag_us: u64) {
        if !self.auto_batch || self.scratch.len() >= limit {
            return;
        }
        let Some(oldest) = self.scratch.first() else { return };
        if oldest.position() <= self.live_from || self.reader.backfilling() {
            // History asked for, or read back from the tiers: old, but no sign of overload.
            return;
        }
        let Some(pause) = auto_batch_pause(Duration::from_micros(lag_us)) else { return };
        // A timer needs tokio's; a reader driven by another executor reads without pauses.
        if tokio::runtime::Handle::try_current().is_ok() {
            let timer = Some(Box::pin(tokio::time::sleep(pause)));
            self.coalesce = Some(Box::new(Coalesce { window: Duration::ZERO, timer, draining: false }));
        }
    }

    /// [`poll_recv_many`](Self::poll_recv_many) with a window. The first items read open it;
    /// until it ends the subscription sleeps on its timer alone, muted to publishes (a wake-up
    /// per event would cost about as much as the write the window saves), and only a closing
    /// hub cuts it short. Then everything pending is read and handed out, in as many calls as
    /// `limit` requires, without a new window until a look finds nothing.
    fn poll_recv_coalesced(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<Item>,
        limit: usize,
        coalesce: &mut Coalesce,
    ) -> Poll<Result<usize, RecvError>> {
        if let Some(timer) = coalesce.timer.as_mut() {
            if timer.as_mut().poll(cx).is_pending() {
                // Muted before the closed flag is read: a close after the read interrupts us.
                self.signal.mute(cx);
                if !self.hub.registry.is_closed() {
                    return Poll::Pending;
                }
            }
            coalesce.timer = None;
            coalesce.draining = true;
        }
        while self.buffer.len() < limit {
            match self.poll_fill(cx, limit - self.buffer.len()) {
                Poll::Ready(Ok(())) => {}
                // With items waiting, they go out now and the error with the next call.
                Poll::Ready(Err(_)) if !self.buffer.is_empty() => break,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending if self.buffer.is_empty() => {
                    coalesce.draining = false;
                    return Poll::Pending;
                }
                Poll::Pending if coalesce.draining => break,
                // Caught up, with something read: that opens a window.
                Poll::Pending => {
                    let mut timer = Box::pin(tokio::time::sleep(coalesce.window));
                    // A window below the timer's resolution may be over at once.
                    if timer.as_mut().poll(cx).is_ready() {
                        break;
                    }
                    coalesce.timer = Some(timer);
                    // A close since the look woke the waker `poll_fill` just registered.
                    self.signal.mute(cx);
                    return Poll::Pending;
                }
            }
        }
        // A full batch read without a window is a backlog being caught up: no window for it.
        coalesce.draining = true;
        let n = self.buffer.len().min(limit);
        buf.extend(self.buffer.drain(..n));
        Poll::Ready(Ok(n))
    }

    /// Reads the next batch into `buffer`, or registers to be woken.
    fn poll_fill(&mut self, cx: &mut Context<'_>, limit: usize) -> Poll<Result<(), RecvError>> {
        // A reader of latest values reads a whole batch, whatever the caller takes at a time:
        // the more one read holds, the more it skips, and one that was away catches up at once.
        let limit = if self.reader.reads_latest() { limit.max(BATCH) } else { limit };
        if let Some(err) = self.failed {
            return Poll::Ready(Err(err));
        }
        // A reset found before the read began goes first, alone; one that a backfill is
        // still adding to waits for its end or for the first events.
        if !self.reader.backfilling()
            && let Some(reset) = self.pending_reset.take()
        {
            self.started = true;
            self.buffer.push_back(Item::Reset(reset));
            return Poll::Ready(Ok(()));
        }
        loop {
            if self.hub.registry.is_closed() {
                return Poll::Ready(Err(self.fail(RecvError::Closed)));
            }
            if self.hub.disconnects.check(&mut self.disconnects_seen, self.reader.names()) {
                return Poll::Ready(Err(self.fail(RecvError::Disconnected)));
            }
            if let Some(read) = &mut self.tier_read {
                let Poll::Ready(answer) = read.as_mut().poll(cx) else { return Poll::Pending };
                self.tier_read = None;
                self.hub.counters.tier_read(&answer);
                let mut losses = Vec::new();
                self.reader.supply(self.position, answer, &mut losses);
                if !losses.is_empty() {
                    if self.started {
                        // Events this subscriber had not read are gone everywhere: it lagged.
                        let behind: u64 = losses.iter().map(|g| g.missed.at_least.max(1)).sum();
                        self.hub.counters.lagged();
                        tracing::debug!(behind, "subscriber lagged past its history tiers");
                        return Poll::Ready(Err(self.fail(RecvError::Lagged { behind })));
                    }
                    // What no tier holds of an old cursor's range opens the stream.
                    self.pending_reset = Some(match self.pending_reset.take() {
                        Some(reset) => reset.with_more(losses),
                        None => {
                            self.hub.counters.reset();
                            Reset::new(ResetReason::Expired, losses)
                        }
                    });
                }
            }
            self.signal.clear();
            // After the clear: a notice queued later sets the signal again.
            if let Some(notices) = self.notices.as_ref().filter(|n| !n.is_empty()) {
                let mut changes = Vec::new();
                notices.drain_into(&mut changes);
                self.buffer.extend(changes.into_iter().map(Item::Presence));
                return Poll::Ready(Ok(()));
            }
            let head = self.hub.storage.head();
            if head > self.position {
                let mut gaps = Vec::new();
                let step =
                    self.reader.step(self.position, head, limit, usize::MAX, &mut self.scratch, &mut gaps);
                if step.tier
                    && let Some(tiers) = &self.hub.tiers
                {
                    // Chunks of a full batch, whatever the caller takes at a time: what is read
                    // ahead waits in the reader, bounded by the batch.
                    let request = self.reader.tier_request(self.epoch, self.position, limit.max(BATCH));
                    self.tier_read = Some(tier::read_chunk(tiers, request));
                    continue;
                }
                let replaying = self.position < self.live_from;
                if !gaps.is_empty() || (step.backlog > self.max_backlog && !replaying) {
                    self.scratch.clear();
                    let lost: u64 = gaps.iter().map(|g| g.missed.at_least.max(1)).sum();
                    let behind = lost + step.backlog as u64;
                    self.hub.counters.lagged();
                    tracing::debug!(behind, topics = ?gaps.iter().map(|g| &g.topic).collect::<Vec<_>>(), "subscriber lagged");
                    return Poll::Ready(Err(self.fail(RecvError::Lagged { behind })));
                }
                self.position = step.cursor;
                if !self.scratch.is_empty() {
                    self.open_with_reset();
                    self.hub.counters.delivered(self.scratch.len());
                    let lag_us = self.label.delivered(&self.scratch);
                    self.pause_if_behind(limit, lag_us);
                    self.buffer.extend(self.scratch.drain(..).map(Item::Event));
                    self.started = true;
                    return Poll::Ready(Ok(()));
                }
                if self.position < head {
                    // A stretch the tiers held nothing of for this reader: read on.
                    continue;
                }
            }
            if self.open_with_reset() {
                return Poll::Ready(Ok(()));
            }
            if self.signal.poll_notified(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Hands out the reset a backfill gathered, if any, ahead of everything else; returns
    /// whether there was one.
    fn open_with_reset(&mut self) -> bool {
        let Some(reset) = self.pending_reset.take() else { return false };
        tracing_reset(&reset);
        self.buffer.push_back(Item::Reset(reset));
        self.started = true;
        true
    }

    /// Items already read (only a coalescing window holds any here) still go out, before
    /// the error: they precede the failure in order, so a client that got them resumes after
    /// them.
    fn fail(&mut self, err: RecvError) -> RecvError {
        self.failed = Some(err);
        err
    }
}

fn tracing_reset(reset: &Reset) {
    let topics: Vec<&str> = reset.topics().iter().map(|t| t.topic.as_str()).collect();
    match reset.reason() {
        ResetReason::Expired => tracing::debug!(?topics, "cursor older than retained history"),
        ResetReason::EpochChanged { cursor, current } => {
            tracing::debug!(?topics, %cursor, %current, "cursor from another epoch")
        }
    }
}

impl Stream for Subscription {
    type Item = Result<Item, RecvError>;

    /// Yields items until the subscription fails, yields that error once, then ends.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed.is_some() && this.buffer.is_empty() && this.pending_reset.is_none() {
            return Poll::Ready(None);
        }
        this.poll_recv(cx).map(Some)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for registration in self.registrations.drain(..) {
            self.hub.registry.remove(registration);
        }
        if self.counted {
            self.hub.counters.unsubscribed();
            self.label.left();
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("topics", &self.reader.names().collect::<Vec<_>>())
            .field("cursor", &self.cursor())
            .finish_non_exhaustive()
    }
}
