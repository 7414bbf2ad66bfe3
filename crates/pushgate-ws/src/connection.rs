//! One WebSocket connection: a task that multiplexes the client's frames, the hub's events and
//! the heartbeat over one socket, then closes it with the right code.
//!
//! The task owns everything it uses (socket, subscription, queue) and holds no lock across an
//! `.await`. It ends when the client closes or disappears, when a Ping goes unanswered, when the
//! client falls more than `max_backlog` events behind, on a protocol error, or when the hub
//! closes; then it drops its subscription (leaving presence at once), sends its Close frame and
//! waits at most `close_timeout` for the client to answer.
//!
//! Memory stays bounded whatever the client does: tungstenite holds at most
//! `max_write_buffer_size` bytes, the queue at most one batch of (shared) event frames plus a
//! few replies, and unread events stay in the hub, which cuts the subscription off past
//! `max_backlog`. A client that stops reading altogether fills its socket; once nothing more can
//! be written for `pong_timeout` it is closed, and its Pings go unanswered anyway (only a Pong
//! carrying the payload of a Ping actually flushed to the socket counts, so sending Pongs
//! without reading keeps no one alive). Either way it is dropped within
//! `ping_interval + pong_timeout + close_timeout`.
//!
//! A `publish` frame is not awaited inline: with Redis a publish can take seconds (script
//! timeout, apply wait), and the connection must go on delivering, answering Pings and closing
//! meanwhile. One publish runs at a time as a future polled by the connection's loop; later
//! ones wait their turn (in order) in a short queue, past which client frames are not read.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use pushgate_http::{
    Action, ApiError, AuthError, ErrorCode, Grant, PublishAllowance, Refusal, Refusals, SubscribeParams,
};
use pushgate_hub::{
    Cursor, Hub, HubError, Item, NewEvent, Published, RecvError, SubscribeOptions, Subscription, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::auth::Auth;
use crate::close::CloseReason;
use crate::config::WsConfig;
use crate::frame::{self, ClientFrame};
use crate::outbox::Outbox;
use crate::reopen::{self, Floors};
use crate::woken::Woken;

type Socket = WebSocketStream<TokioIo<Upgraded>>;
type Sink = SplitSink<Socket, Message>;
type Stream = Woken<SplitStream<Socket>>;

/// Most items taken from the hub at once; they are written back to back and flushed once. It
/// also bounds the connection's queue: nothing more is taken until they are all written.
const BATCH: usize = 64;
/// Client frames are not read while this many replies wait for the socket: a client that sends
/// without reading is slowed down by TCP instead of growing the queue.
const MAX_QUEUED_REPLIES: usize = 32;
/// Client frames are not read while this many `publish` frames wait for the one in flight.
const MAX_WAITING_PUBLISHES: usize = 16;

/// The publish in flight: owns what it uses, so the connection's loop can poll it next to the
/// socket and the subscription.
type Publishing = Pin<Box<dyn Future<Output = Result<Published, HubError>> + Send>>;

/// A frame waiting for the access policy's answer (the application being asked): the connection
/// goes on delivering events and answering pings meanwhile, and reads no further frame.
/// Its answer is boxed: the connection's `select!` keeps room for the largest answer of its
/// branches in every idle connection's future.
type Checking = Pin<Box<dyn Future<Output = Box<(Asked, Result<Grant, AuthError>)>> + Send>>;

/// What a frame under check will do once allowed.
enum Asked {
    Auth { token: String },
    Subscribe { topics: Vec<TopicName>, cursor: Option<Cursor>, latest: bool },
    Publish { topic: TopicName, event: NewEvent },
}

impl Asked {
    fn request(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Subscribe { .. } => "subscribe",
            Self::Publish { .. } => "publish",
        }
    }
}

/// A `publish` frame waiting for the one in flight.
enum Waiting {
    /// Accepted (checked and counted against the rate): to be published.
    Publish(TopicName, NewEvent),
    /// Refused: its answer, kept in line so that publishes are answered in the order sent.
    Refused(bytes::Bytes),
}

thread_local! {
    /// Batch buffers, recycled per worker thread: a batch is taken from the hub and handed to
    /// the outbox within one turn of the loop, so no connection needs a buffer of its own while
    /// it waits (one of `BATCH` items per connection was 2.6 KB of every idle one).
    static ITEMS: Cell<Vec<Item>> = const { Cell::new(Vec::new()) };
}

/// What the connection's one timer waits for.
#[derive(Debug, Clone, Copy)]
enum Due {
    /// A deadline that closes the connection (Ping unanswered, client stalled, token expired).
    Close(CloseReason),
    /// The end of the wait for an `auth` frame.
    AuthWait,
}

/// How the connection loop ended.
enum End {
    /// The server closes, for this reason.
    Close(CloseReason),
    /// The client sent a Close frame; tungstenite has queued the answer.
    ClientClosed,
    /// The socket failed or vanished: nothing more can be sent.
    Lost,
}

/// A connection's state: its one subscription (the current topic set) and what waits to be
/// written.
pub(crate) struct Connection {
    id: u64,
    hub: Hub,
    max_backlog: usize,
    coalesce: Duration,
    auto_batch: bool,
    /// Whether its subscription gets join and leave notices (`presence=1` on the upgrade, or
    /// `"presence": true` in a `subscribe` frame).
    notices: bool,
    subscription: Option<Subscription>,
    /// What the subscription reads again after a change of topics and must skip.
    floors: Floors,
    /// The subscription was reopened for a change of topics: its own reset (told from where it
    /// reopened) is replaced by resets told from each topic's own start.
    resets_replaced: bool,
    /// Where a subscribe frame without a cursor starts when there is no subscription: the
    /// query's cursor at first, the last subscription's cursor after an unsubscribe from all.
    position: Cursor,
    outbox: Outbox,
    /// When the Ping in flight must have been answered.
    pong_due: Option<Instant>,
    /// Pings sent so far; each carries a payload derived from its number and `ping_key`.
    pings: u64,
    /// Makes Ping payloads unpredictable, so a Pong proves the Ping was read.
    ping_key: u64,
    /// The allowance `publish` frames take from: the client's (shared by its connections) when
    /// the server keeps one, else the connection's own.
    publishes: PublishAllowance,
    refusals: Refusals,
    auth: Auth,
    /// The `publish` frame being carried out, if any.
    publishing: Option<Publishing>,
    /// `publish` frames waiting for it, in the order sent.
    waiting_publishes: VecDeque<Waiting>,
    /// The frame whose check is under way, if the policy could not answer at once.
    checking: Option<Checking>,
}

impl Connection {
    /// A connection subscribed to the query's topics, if it named any, publishing from
    /// `publishes`.
    pub(crate) fn new(
        id: u64,
        hub: Hub,
        config: &WsConfig,
        params: SubscribeParams,
        notices: bool,
        auth: Auth,
        publishes: PublishAllowance,
    ) -> Result<Self, HubError> {
        let mut connection = Self {
            id,
            hub,
            max_backlog: config.max_backlog,
            coalesce: config.coalesce,
            auto_batch: config.auto_batch,
            notices,
            subscription: None,
            floors: Floors::default(),
            resets_replaced: false,
            position: params.cursor,
            outbox: Outbox::default(),
            pong_due: None,
            pings: 0,
            ping_key: RandomState::new().hash_one(id),
            publishes,
            refusals: config.refusals.clone(),
            auth,
            publishing: None,
            waiting_publishes: VecDeque::new(),
            checking: None,
        };
        if !params.topics.is_empty() {
            let latest = if params.latest { params.topics.clone() } else { Vec::new() };
            connection.subscription = Some(connection.open(&params.topics, params.cursor, latest)?);
        }
        Ok(connection)
    }

    fn open(
        &self,
        topics: &[TopicName],
        cursor: Cursor,
        latest: Vec<TopicName>,
    ) -> Result<Subscription, HubError> {
        self.hub.subscribe_with(topics, cursor, self.options(latest))
    }

    /// The options of a subscription reading `latest` latest value only. Which topics those
    /// are is kept by the subscription itself, not in the connection, whose every byte each
    /// idle connection pays.
    fn options(&self, latest: Vec<TopicName>) -> SubscribeOptions {
        let options = SubscribeOptions::default()
            .label("ws")
            .user(self.auth.user_arc().cloned())
            .presence_events(self.notices)
            .max_backlog(Some(self.max_backlog))
            .coalesce(self.coalesce)
            .auto_batch(self.auto_batch);
        if latest.is_empty() { options } else { options.latest_topics(latest) }
    }

    /// The topics now read latest value only, but for `except`.
    fn latest_except(&self, except: &[TopicName]) -> Vec<TopicName> {
        self.subscription
            .iter()
            .flat_map(Subscription::latest_topics)
            .filter(|topic| !except.contains(topic))
            .cloned()
            .collect()
    }

    /// Waits for hyper to hand over the socket (after the 101 is sent), then serves it.
    pub(crate) async fn serve(mut self, on_upgrade: OnUpgrade, config: Arc<WsConfig>) {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(connection = self.id, transport = "ws", %err, "upgrade failed");
                return;
            }
        };
        let socket = Box::pin(WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(config.tungstenite()),
        ))
        .await;
        let (mut sink, stream) = socket.split();
        let mut stream = Woken::new(stream);
        let end = self.run(&mut sink, &mut stream, &config).await;
        self.subscription = None;
        if let End::Close(CloseReason::TooBig { .. }) = end {
            self.refusals.count(Refusal::MessageTooLarge);
        }
        match &end {
            End::Close(reason) => tracing::debug!(
                connection = self.id,
                transport = "ws",
                code = reason.code(),
                reason = %reason.reason(),
                "closing websocket"
            ),
            End::ClientClosed => tracing::debug!(connection = self.id, transport = "ws", "client closed"),
            End::Lost => tracing::debug!(connection = self.id, transport = "ws", "connection lost"),
        }
        // Boxed, like `on_message`: only a closing connection needs the state of a close.
        Box::pin(finish(sink, stream, end, config.close_timeout)).await;
    }

    async fn run(&mut self, sink: &mut Sink, stream: &mut Stream, config: &WsConfig) -> End {
        let hub = self.hub.clone();
        let closed = hub.closed();
        tokio::pin!(closed);
        let mut ping = time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            while self.publishing.is_none() {
                match self.waiting_publishes.pop_front() {
                    Some(Waiting::Publish(topic, event)) => {
                        let hub = self.hub.clone();
                        self.publishing =
                            Some(Box::pin(async move { hub.publish_idempotent(&topic, event).await }));
                    }
                    Some(Waiting::Refused(reply)) => self.outbox.push_reply(reply),
                    None => break,
                }
            }
            let publishing = self.publishing.is_some();
            let draining = self.outbox.has_work();
            let reading = self.outbox.replies() < MAX_QUEUED_REPLIES
                && self.waiting_publishes.len() < MAX_WAITING_PUBLISHES
                && self.checking.is_none();
            let checking = self.checking.is_some();
            // The next batch is taken only once the last one is in tungstenite's hands: events
            // not yet written stay in the hub, which counts them against `max_backlog`.
            let pulling = self.subscription.is_some() && self.outbox.events() == 0;
            // One timer for both deadlines (a timer is 112 bytes of every connection's future):
            // the unanswered Ping, and a client that stopped reading, whose socket has taken
            // nothing for a pong timeout.
            let stalled = self.outbox.waiting_since().map(|since| since + config.pong_timeout);
            // The token's expiry and the wait for an `auth` frame share that timer too.
            let deadline = [
                self.pong_due.map(|at| (at, Due::Close(CloseReason::PingTimeout))),
                stalled.map(|at| (at, Due::Close(CloseReason::Stalled))),
                self.auth.expires_at().map(|at| (at, Due::Close(CloseReason::TokenExpired))),
                self.auth.deadline().map(|at| (at, Due::AuthWait)),
            ]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at);
            tokio::select! {
                () = &mut closed => return End::Close(CloseReason::ShuttingDown),
                written = self.outbox.drain(sink), if draining => {
                    if let Err(err) = written {
                        return write_failed(err);
                    }
                }
                () = time::sleep_until(deadline.map_or_else(Instant::now, |(at, _)| at)), if deadline.is_some() => {
                    match deadline.map(|(_, due)| due) {
                        Some(Due::Close(reason)) => {
                            if reason == CloseReason::TokenExpired {
                                self.refusals.count(Refusal::Unauthorized);
                            }
                            return End::Close(reason);
                        }
                        // A client that subscribed to topics open to anonymous clients needs no
                        // token.
                        Some(Due::AuthWait) if self.subscription.is_none() => {
                            self.refusals.count(Refusal::Unauthorized);
                            return End::Close(CloseReason::AuthTimeout);
                        }
                        Some(Due::AuthWait) => self.auth.stop_waiting(),
                        None => {}
                    }
                }
                cut = std::future::poll_fn(|cx| self.auth.poll_cut(cx)), if self.auth.may_be_cut() => {
                    tracing::debug!(connection = self.id, transport = "ws", ?cut, "cut off by the server");
                    return End::Close(CloseReason::of_cut(cut));
                }
                _ = ping.tick() => {
                    if self.pong_due.is_none() {
                        self.pings += 1;
                        self.outbox.push_ping(self.ping_key.wrapping_add(self.pings));
                        self.pong_due = Some(Instant::now() + config.pong_timeout);
                    }
                }
                message = stream.next(), if reading => {
                    // Boxed: handling a client frame (a subscribe change, a publish) needs far
                    // more state than waiting does, and would make every idle connection's
                    // future that large.
                    if let Some(end) = Box::pin(self.on_message(message)).await {
                        return end;
                    }
                }
                checked = next_checked(self.checking.as_mut()), if checking => {
                    self.checking = None;
                    let (asked, allowed) = *checked;
                    Box::pin(self.on_checked(asked, allowed)).await;
                }
                published = next_published(self.publishing.as_mut()), if publishing => {
                    self.publishing = None;
                    let reply = match published {
                        Ok(published) => frame::published(&published),
                        Err(err) => frame::error(Some("publish"), &ApiError::from(err)),
                    };
                    self.outbox.push_reply(reply);
                }
                received = next_batch(self.subscription.as_mut()), if pulling => {
                    if let Some(end) = self.on_batch(received) {
                        return end;
                    }
                }
            }
        }
    }

    async fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Option<End> {
        // The stream ends only once the connection is closed or failed: polling it again would
        // return `None` at once, forever.
        let Some(message) = message else { return Some(End::Lost) };
        match message {
            Ok(Message::Text(text)) => self.on_text(text.as_str()).await,
            Ok(Message::Binary(_)) => {
                let error =
                    ApiError::new(ErrorCode::InvalidJson, "binary frames are not accepted: send JSON text");
                self.outbox.push_reply(frame::error(None, &error));
            }
            // tungstenite has queued the Pong; it goes out with the next flush.
            Ok(Message::Ping(_)) => self.outbox.mark_unflushed(),
            Ok(Message::Pong(payload)) => {
                if self.outbox.answers_ping(&payload) {
                    self.pong_due = None;
                }
            }
            Ok(Message::Close(_)) => return Some(End::ClientClosed),
            Ok(Message::Frame(_)) => {}
            Err(err) => return Some(read_failed(err)),
        }
        None
    }

    /// The error frame for an access-control refusal, counted.
    fn refused(&self, request: Option<&str>, err: &ApiError) -> bytes::Bytes {
        if let Some(reason) = Refusal::of_access_error(err.code()) {
            self.refusals.count(reason);
        }
        frame::error(request, err)
    }

    async fn on_text(&mut self, text: &str) {
        let reply = match frame::parse(text) {
            Err(bad) => frame::error(bad.request.as_deref(), &bad.error),
            Ok(ClientFrame::Ping { id }) => frame::pong(&id),
            Ok(ClientFrame::Auth { token }) => return self.check(Asked::Auth { token }).await,
            Ok(ClientFrame::Subscribe { topics, cursor, presence, latest }) => {
                // The connection's one subscription gets notices for all its topics or none;
                // the frame's choice holds from the next time it is built.
                if let Some(presence) = presence {
                    self.notices = presence;
                }
                return self.check(Asked::Subscribe { topics, cursor, latest }).await;
            }
            Ok(ClientFrame::Unsubscribe { topics }) => {
                let rest: Vec<TopicName> = self.topics().filter(|t| !topics.contains(t)).cloned().collect();
                if !rest.is_empty() {
                    let latest = self.latest_except(&topics);
                    return self.change(&rest, &[], None, latest, "unsubscribe").await;
                }
                self.position = self.cursor();
                self.subscription = None;
                self.floors = Floors::default();
                frame::subscribed(std::iter::empty(), self.position)
            }
            Ok(ClientFrame::Publish { topic, event }) => {
                return self.check(Asked::Publish { topic, event }).await;
            }
        };
        self.outbox.push_reply(reply);
    }

    /// Asks the access policy about a frame: carries it out (or refuses it) at once when the
    /// policy answers at once, else once it has answered (see [`Checking`]).
    async fn check(&mut self, asked: Asked) {
        let current: Vec<TopicName>;
        let (action, topics, token) = match &asked {
            Asked::Auth { token } => {
                current = self.topics().cloned().collect();
                (Action::Subscribe, &current[..], Some(token.as_str()))
            }
            Asked::Subscribe { topics, .. } => (Action::Subscribe, &topics[..], None),
            Asked::Publish { topic, .. } => (Action::Publish, std::slice::from_ref(topic), None),
        };
        match self.auth.ask(action, topics, token) {
            None => self.on_checked(asked, Ok(Grant::forever())).await,
            Some(check) if check.is_ready() => {
                let allowed = check.await;
                self.on_checked(asked, allowed).await;
            }
            Some(check) => self.checking = Some(Box::pin(async move { Box::new((asked, check.await)) })),
        }
    }

    /// Carries out a frame the policy allowed, or answers its refusal.
    async fn on_checked(&mut self, asked: Asked, allowed: Result<Grant, AuthError>) {
        let grant = match allowed {
            Ok(grant) => grant,
            Err(err) => {
                let reply = self.refused(Some(asked.request()), &ApiError::from(err));
                return match asked {
                    Asked::Publish { .. } => self.refuse_publish(reply),
                    _ => self.outbox.push_reply(reply),
                };
            }
        };
        match asked {
            Asked::Auth { token } => {
                let expires = grant.expires_unix();
                self.auth.hold(grant, Some(token));
                self.outbox.push_reply(frame::authed(expires));
            }
            Asked::Subscribe { topics, cursor, latest } => {
                self.auth.hold(grant, None);
                // Each subscribe frame says how its topics are read.
                let mut reads_latest = self.latest_except(&topics);
                if latest {
                    reads_latest.extend(topics.iter().cloned());
                }
                if self.subscription.is_some() {
                    let keep: Vec<TopicName> = self.topics().cloned().collect();
                    return self.change(&keep, &topics, cursor, reads_latest, "subscribe").await;
                }
                let reply = self.start(&topics, cursor.unwrap_or(self.position), reads_latest);
                self.outbox.push_reply(reply);
            }
            Asked::Publish { topic, event } => {
                let server = grant.is_server();
                self.auth.hold(grant, None);
                self.publish(topic, event, server);
            }
        }
    }

    /// Carries out an allowed `publish` frame: in line behind the ones before it, unless the
    /// client publishes faster than its allowance (the application's own `server` publishes for
    /// many clients and is never limited). The event's sender is the connection's user.
    fn publish(&mut self, topic: TopicName, mut event: NewEvent, server: bool) {
        if let Some(user) = self.auth.user() {
            event = event.from(user);
        }
        if !server && let Err(wait) = self.publishes.try_take(Instant::now().into_std()) {
            self.refusals.count(Refusal::RateLimited);
            let message = format!(
                "this client publishes faster than its limit; the next publish is allowed in {} ms",
                wait.as_millis().max(1)
            );
            let reply = frame::error(Some("publish"), &ApiError::new(ErrorCode::RateLimited, message));
            return self.refuse_publish(reply);
        }
        // Answered by the connection's loop once published.
        self.waiting_publishes.push_back(Waiting::Publish(topic, event));
    }

    /// Answers a refused `publish` frame: at once, or after the publishes sent before it.
    fn refuse_publish(&mut self, reply: bytes::Bytes) {
        if self.publishing.is_some() || !self.waiting_publishes.is_empty() {
            self.waiting_publishes.push_back(Waiting::Refused(reply));
        } else {
            self.outbox.push_reply(reply);
        }
    }

    fn topics(&self) -> impl Iterator<Item = &TopicName> {
        self.subscription.iter().flat_map(Subscription::topics)
    }

    /// The connection's position: right after the last event taken from the hub. While floors
    /// are in force, topics may stand further on; this is where none loses anything.
    fn cursor(&self) -> Cursor {
        self.subscription.as_ref().map_or(self.position, Subscription::cursor)
    }

    /// Subscribes a connection that follows nothing to `topics` from `cursor`, reading `latest`
    /// latest value only.
    fn start(&mut self, topics: &[TopicName], cursor: Cursor, latest: Vec<TopicName>) -> bytes::Bytes {
        match self.open(topics, cursor, latest) {
            Ok(subscription) => {
                let reply = frame::subscribed(subscription.topics(), subscription.cursor());
                self.subscription = Some(subscription);
                self.floors = Floors::default();
                self.resets_replaced = false;
                reply
            }
            Err(err) => frame::error(Some("subscribe"), &ApiError::from(err)),
        }
    }

    /// Changes the topic set to `keep` plus `add` (the added topics starting at `cursor`, or
    /// where the connection stands), without losing or repeating events of the kept topics;
    /// see [`reopen`]. Queues the reply, then the resets due, before any event of the new
    /// subscription. On error the old subscription stays.
    /// `latest` are the topics to read latest value only.
    async fn change(
        &mut self,
        keep: &[TopicName],
        add: &[TopicName],
        cursor: Option<Cursor>,
        latest: Vec<TopicName>,
        request: &str,
    ) {
        let plan = reopen::plan(self.cursor(), &self.floors, keep, add, cursor);
        let reopened = match reopen::reopen(&self.hub, self.options(latest), plan).await {
            Ok(reopened) => reopened,
            Err(err) => return self.outbox.push_reply(frame::error(Some(request), &ApiError::from(err))),
        };
        let reply = frame::subscribed(reopened.subscription.topics(), reopened.subscription.cursor());
        self.outbox.push_reply(reply);
        for reset in frame::resets(&reopened.resets) {
            self.outbox.push_event(reset);
        }
        self.subscription = Some(reopened.subscription);
        self.floors = reopened.floors;
        self.resets_replaced = true;
    }

    fn on_batch(&mut self, received: Result<Vec<Item>, RecvError>) -> Option<End> {
        match received {
            Ok(mut items) => {
                for item in items.drain(..) {
                    match item {
                        Item::Event(event) if self.floors.admits(&event) => {
                            self.outbox.push_event(frame::event(&event));
                        }
                        Item::Event(_) => {}
                        Item::Reset(_) if self.resets_replaced => {}
                        Item::Reset(reset) => self.outbox.push_event(frame::reset(&reset)),
                        Item::Presence(change) => self.outbox.push_event(frame::presence(&change)),
                    }
                }
                ITEMS.set(items);
                if !self.floors.is_empty() {
                    self.floors.passed(self.cursor());
                }
                None
            }
            Err(RecvError::Lagged { behind }) => Some(End::Close(CloseReason::SlowConsumer { behind })),
            Err(RecvError::Disconnected) => Some(End::Close(CloseReason::Disconnected)),
            Err(_) => Some(End::Close(CloseReason::ShuttingDown)),
        }
    }
}

async fn next_checked(checking: Option<&mut Checking>) -> Box<(Asked, Result<Grant, AuthError>)> {
    match checking {
        Some(checking) => checking.await,
        None => std::future::pending().await,
    }
}

async fn next_published(publishing: Option<&mut Publishing>) -> Result<Published, HubError> {
    match publishing {
        Some(publishing) => publishing.await,
        None => std::future::pending().await,
    }
}

/// The next batch of up to [`BATCH`] items, in a buffer from this thread's [`ITEMS`] (give it
/// back there once drained). Cancel-safe: the buffer is held only within a poll.
async fn next_batch(subscription: Option<&mut Subscription>) -> Result<Vec<Item>, RecvError> {
    let Some(subscription) = subscription else { return std::future::pending().await };
    std::future::poll_fn(|cx| {
        let mut items = ITEMS.take();
        match subscription.poll_recv_many(cx, &mut items, BATCH) {
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(items)),
            Poll::Ready(Err(err)) => {
                ITEMS.set(items);
                Poll::Ready(Err(err))
            }
            Poll::Pending => {
                ITEMS.set(items);
                Poll::Pending
            }
        }
    })
    .await
}

fn read_failed(err: WsError) -> End {
    match err {
        WsError::Capacity(CapacityError::MessageTooLong { max_size, .. }) => {
            End::Close(CloseReason::TooBig { limit: max_size })
        }
        WsError::Utf8(_) => End::Close(CloseReason::InvalidUtf8),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Lost,
        WsError::Protocol(_) | WsError::Capacity(_) => End::Close(CloseReason::Protocol),
        _ => End::Lost,
    }
}

fn write_failed(err: WsError) -> End {
    match err {
        // A frame larger than the write buffer can hold: a configuration error, not the client's.
        WsError::WriteBufferFull(_) | WsError::Capacity(_) => {
            tracing::warn!(%err, "websocket frame too large for max_write_buffer_size");
            End::Close(CloseReason::Internal)
        }
        _ => End::Lost,
    }
}

/// Ends the connection: answers a client's Close, or sends ours and waits for the answer, all
/// within `wait`.
async fn finish(mut sink: Sink, mut stream: Stream, end: End, wait: Duration) {
    let closing = async move {
        match end {
            End::Lost => {}
            End::ClientClosed => {
                let _ = sink.flush().await;
            }
            End::Close(reason) => {
                if sink.send(Message::Close(Some(reason.frame()))).await.is_err() {
                    return;
                }
                // Frames the client sent before its Close are dropped.
                while let Some(Ok(_)) = stream.next().await {}
                // Half-close, then read to the end instead of dropping the socket: closing with
                // unread input (the rest of a too-big message) makes the kernel send a reset,
                // which can destroy our Close frame before the client reads it.
                if let Ok(mut socket) = stream.into_inner().reunite(sink) {
                    let io = socket.get_mut();
                    let _ = io.shutdown().await;
                    let mut scrap = [0u8; 1024];
                    while matches!(io.read(&mut scrap).await, Ok(n) if n > 0) {}
                }
            }
        }
    };
    let _ = time::timeout(wait, closing).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_end_of_the_client_stream_ends_the_connection() {
        let params = SubscribeParams::from_query(&pushgate_http::Query::parse(None), None).unwrap();
        let config = WsConfig::default();
        let auth =
            Auth::new(&config, None, pushgate_http::ClientInfo::default(), pushgate_http::Grant::forever());
        let publishes = PublishAllowance::new(config.publish_rate, Instant::now().into_std());
        let mut connection = Connection::new(1, Hub::new(), &config, params, false, auth, publishes).unwrap();
        // Answering `None` with "carry on" would poll the ended stream again at once, forever.
        assert!(matches!(connection.on_message(None).await, Some(End::Lost)));
    }

    /// Every idle connection holds its task's future, so its size is memory per connection:
    /// the states only a client frame or a close needs are boxed to keep it small (3.2 KB
    /// before, 1.7 KB after, in a test build).
    #[test]
    fn an_idle_connection_future_stays_small() {
        let params = SubscribeParams::from_query(&pushgate_http::Query::parse(None), None).unwrap();
        let config = WsConfig::default();
        let auth =
            Auth::new(&config, None, pushgate_http::ClientInfo::default(), pushgate_http::Grant::forever());
        let publishes = PublishAllowance::new(config.publish_rate, Instant::now().into_std());
        let connection = Connection::new(1, Hub::new(), &config, params, false, auth, publishes).unwrap();
        let on_upgrade = hyper::upgrade::on(http::Request::new(()));
        let serve = connection.serve(on_upgrade, Arc::new(WsConfig::default()));
        let size = std::mem::size_of_val(&serve);
        // 2 KiB, a few words for the arm that waits for the server API to cut the user off, and
        // the 16 bytes the join and leave notices' flag costs (a byte, padded, in the two places
        // the future holds the connection).
        assert!(size <= 2048 + 32 + 16, "the connection future is {size} bytes");
    }
}
