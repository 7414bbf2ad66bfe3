//! The pull API behind both polling transports: [`Hub::fetch`] and its options and answer.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cursor::Cursor;
use crate::error::HubError;
use crate::event::Event;
use crate::hub::Hub;
use crate::hub::Inner;
use crate::latency::LabelCounters;
use crate::lease::PresenceHold;
use crate::notice::{Notices, PresenceChange};
use crate::reader::Reader;
use crate::registry::{Registry, Signal, Who};
use crate::reset::{Reset, ResetReason, TopicReset};
use crate::tier;
use crate::topic::TopicName;

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
    who: Who,
    hold: Option<PresenceHold>,
    notices: bool,
    latest: crate::latest::Choice,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            limit: 1000,
            max_bytes: 4 << 20,
            wait: Duration::ZERO,
            coalesce: Duration::ZERO,
            who: Who { label: Cow::Borrowed("fetch"), user: None, announced: false },
            notices: false,
            hold: None,
            latest: crate::latest::Choice::Policy,
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

    /// Answer latest value only: of the events with a [key](crate::NewEvent::latest_key) that
    /// one answer would hold, only the newest of each topic and key, as
    /// [`SubscribeOptions::latest`](crate::SubscribeOptions::latest) does for a subscription.
    /// The cursor moves past what is skipped. Off by default, except for the topics of the
    /// hub's [policy](crate::HubBuilder::latest_topics).
    ///
    /// ```
    /// use pushgate_hub::{Cursor, FetchOptions, Hub, NewEvent, TopicName};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = Hub::new();
    /// let topic = TopicName::new("score")?;
    /// for n in 0..3 {
    ///     hub.publish(&topic, NewEvent::new(serde_json::json!(n)).latest_key("home")).await?;
    /// }
    /// let batch = hub.fetch(&[topic], Cursor::Oldest, &FetchOptions::default().latest(true)).await?;
    /// assert_eq!(batch.events.len(), 1);
    /// assert_eq!(batch.events[0].seq(), 3);
    /// assert_eq!(batch.cursor, batch.events[0].cursor());
    /// # Ok(()) }
    /// ```
    pub fn latest(mut self, on: bool) -> Self {
        self.latest = if on { crate::latest::Choice::All } else { crate::latest::Choice::Policy };
        self
    }

    /// The name a waiting fetch is counted under in [`Presence`](crate::Presence) (default `"fetch"`).
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.who.label = label.into();
        self
    }

    /// The user a waiting fetch is listed under in [`Presence`](crate::Presence) (an opaque
    /// name; default none).
    pub fn user(mut self, user: Option<Arc<str>>) -> Self {
        self.who.user = user;
        self
    }

    /// Answer, while waiting, with the joins and leaves of the fetch's topics
    /// ([`Batch::presence`]) as soon as one happens (default `false`). Only those that happen
    /// while the fetch waits: a client between two fetches misses the ones in between.
    pub fn presence_events(mut self, on: bool) -> Self {
        self.notices = on;
        self
    }

    /// Counts the client in presence through the lease `hold` ([`Hub::hold`]) rather than while
    /// the fetch waits: from the fetch's start until the hold's ttl after it ends (or after its
    /// future is dropped), so a client that comes back within the ttl is counted without a
    /// break, and one that stops is no longer counted once the ttl passed. The lease takes
    /// the fetch's label and user. A lease the table refuses (full) leaves the fetch counted
    /// while it waits, as without one.
    pub fn hold(mut self, hold: Option<PresenceHold>) -> Self {
        self.hold = hold;
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
    /// Joins and leaves of the topics that happened while the fetch waited, when it asked for
    /// them ([`FetchOptions::presence_events`]); not events: the cursor does not move for them.
    pub presence: Vec<Arc<PresenceChange>>,
}

impl Hub {
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
            &inner.storage,
            topics,
            inner.limits.max_topics_per_subscription,
            inner.tiers.is_some(),
            |topic| crate::latest::applies(&options.latest, inner.latest.as_ref(), topic),
        )
        .inspect_err(|err| inner.counters.refused(err))?;
        let label = inner.registry.label_counters(&options.who.label);
        // Held from the start until the wait is over; the guard shortens it to the ttl when
        // the fetch ends, however it ends.
        let lease = options.hold.as_ref().and_then(|hold| {
            let hold = hold.clone().label(options.who.label.clone()).user(options.who.user.clone());
            let names: Vec<TopicName> = reader.names().cloned().collect();
            inner
                .leases
                .hold(&inner.registry, &names, &hold, options.wait)
                .then_some(LeaseGuard { inner, hold })
        });
        let mut disconnects_seen = inner.disconnects.now();
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
        let mut presence = Vec::new();
        loop {
            if let Some(w) = &waiting {
                w.signal.clear();
                // Only a waiting fetch is a reader to disconnect; one that answers at once is
                // a read like any other.
                if inner.disconnects.check(&mut disconnects_seen, reader.names()) {
                    return Err(HubError::Disconnected);
                }
                // Checked after the clear: a notice queued later sets the signal again.
                if let Some(notices) = &w.notices {
                    notices.drain_into(&mut presence);
                }
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
                None if events.is_empty() => !presence.is_empty() || now_or_never(),
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
                    let notices = options.notices.then(|| Arc::new(Notices::default()));
                    let registrations = reader
                        .names()
                        .map(|name| {
                            let who = if lease.is_some() { None } else { Some(&options.who) };
                            inner.registry.add(name, Some(&signal), who, notices.as_ref())
                        })
                        .collect();
                    label.joined();
                    waiting = Some(Waiting {
                        registry: &inner.registry,
                        signal,
                        registrations,
                        label: &label,
                        notices,
                    });
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
        // A coalescing window's steps each skipped within themselves; the answer as a whole.
        reader.conflate(&mut events, 0);
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
        Ok(Batch { events, cursor, reset, presence })
    }
}

/// A parked fetch's registrations, removed when the fetch ends or its future is dropped.
struct Waiting<'a> {
    registry: &'a Registry,
    signal: Arc<Signal>,
    registrations: Vec<crate::registry::Registration>,
    /// Counts the fetch as a live reader of its label while it waits.
    label: &'a LabelCounters,
    /// Where its join and leave notices wait, when it asked for them.
    notices: Option<Arc<Notices>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.label.left();
        for registration in self.registrations.drain(..) {
            self.registry.remove(registration);
        }
    }
}

/// A fetch's presence lease: at its end, held for the hold's ttl from then.
struct LeaseGuard<'a> {
    inner: &'a Inner,
    hold: PresenceHold,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        self.inner.leases.release_after(&self.hold);
    }
}

fn merge_gaps(reset: Option<Reset>, gaps: Vec<TopicReset>) -> Reset {
    match reset {
        Some(reset) => reset.with_more(gaps),
        None => Reset::new(ResetReason::Expired, gaps),
    }
}
