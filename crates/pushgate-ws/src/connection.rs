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
//! `max_backlog`. A client that stops reading altogether fills its socket, then leaves its Pings
//! unanswered, and is dropped within `ping_interval + pong_timeout + close_timeout`.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use pushgate_http::{ApiError, ErrorCode, SubscribeParams};
use pushgate_hub::{Cursor, Hub, HubError, Item, RecvError, SubscribeOptions, Subscription, TopicName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::close::CloseReason;
use crate::config::WsConfig;
use crate::frame::{self, ClientFrame};
use crate::outbox::Outbox;

type Socket = WebSocketStream<TokioIo<Upgraded>>;
type Sink = SplitSink<Socket, Message>;
type Stream = SplitStream<Socket>;

/// Most items taken from the hub at once; they are written back to back and flushed once. It
/// also bounds the connection's queue: nothing more is taken until they are all written.
const BATCH: usize = 64;
/// Client frames are not read while this many replies wait for the socket: a client that sends
/// without reading is slowed down by TCP instead of growing the queue.
const MAX_QUEUED_REPLIES: usize = 32;

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
    subscription: Option<Subscription>,
    /// Where a subscribe frame without a cursor starts when there is no subscription: the
    /// query's cursor at first, the last subscription's cursor after an unsubscribe from all.
    position: Cursor,
    outbox: Outbox,
    /// When the Ping in flight must have been answered.
    pong_due: Option<Instant>,
}

impl Connection {
    /// A connection subscribed to the query's topics, if it named any.
    pub(crate) fn new(
        id: u64,
        hub: Hub,
        config: &WsConfig,
        params: SubscribeParams,
    ) -> Result<Self, HubError> {
        let mut connection = Self {
            id,
            hub,
            max_backlog: config.max_backlog,
            subscription: None,
            position: params.cursor,
            outbox: Outbox::default(),
            pong_due: None,
        };
        if !params.topics.is_empty() {
            connection.subscription = Some(connection.open(&params.topics, params.cursor)?);
        }
        Ok(connection)
    }

    fn open(&self, topics: &[TopicName], cursor: Cursor) -> Result<Subscription, HubError> {
        let options = SubscribeOptions::default().label("ws").max_backlog(Some(self.max_backlog));
        self.hub.subscribe_with(topics, cursor, options)
    }

    /// Waits for hyper to hand over the socket (after the 101 is sent), then serves it.
    pub(crate) async fn serve(mut self, on_upgrade: OnUpgrade, config: WsConfig) {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(connection = self.id, transport = "ws", %err, "upgrade failed");
                return;
            }
        };
        let socket = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(config.tungstenite()),
        )
        .await;
        let (mut sink, mut stream) = socket.split();
        let end = self.run(&mut sink, &mut stream, &config).await;
        self.subscription = None;
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
        finish(sink, stream, end, config.close_timeout).await;
    }

    async fn run(&mut self, sink: &mut Sink, stream: &mut Stream, config: &WsConfig) -> End {
        let hub = self.hub.clone();
        let closed = hub.closed();
        tokio::pin!(closed);
        let mut ping = time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut items = Vec::with_capacity(BATCH);
        loop {
            let draining = self.outbox.has_work();
            let reading = self.outbox.replies() < MAX_QUEUED_REPLIES;
            // The next batch is taken only once the last one is in tungstenite's hands: events
            // not yet written stay in the hub, which counts them against `max_backlog`.
            let pulling = self.subscription.is_some() && self.outbox.events() == 0;
            let pong_due = self.pong_due;
            tokio::select! {
                () = &mut closed => return End::Close(CloseReason::ShuttingDown),
                written = self.outbox.drain(sink), if draining => {
                    if let Err(err) = written {
                        return write_failed(err);
                    }
                }
                () = time::sleep_until(pong_due.unwrap_or_else(Instant::now)), if pong_due.is_some() => {
                    return End::Close(CloseReason::PingTimeout);
                }
                _ = ping.tick() => {
                    if self.pong_due.is_none() {
                        self.outbox.push_ping();
                        self.pong_due = Some(Instant::now() + config.pong_timeout);
                    }
                }
                message = stream.next(), if reading => {
                    if let Some(end) = self.on_message(message).await {
                        return end;
                    }
                }
                received = next_batch(self.subscription.as_mut(), &mut items), if pulling => {
                    if let Some(end) = self.on_batch(received, &mut items) {
                        return end;
                    }
                }
            }
        }
    }

    async fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Option<End> {
        match message? {
            Ok(Message::Text(text)) => self.on_text(text.as_str()).await,
            Ok(Message::Binary(_)) => {
                let error =
                    ApiError::new(ErrorCode::InvalidJson, "binary frames are not accepted: send JSON text");
                self.outbox.push_reply(frame::error(None, &error));
            }
            // tungstenite has queued the Pong; it goes out with the next flush.
            Ok(Message::Ping(_)) => self.outbox.mark_unflushed(),
            Ok(Message::Pong(_)) => self.pong_due = None,
            Ok(Message::Close(_)) => return Some(End::ClientClosed),
            Ok(Message::Frame(_)) => {}
            Err(err) => return Some(read_failed(err)),
        }
        None
    }

    async fn on_text(&mut self, text: &str) {
        let reply = match frame::parse(text) {
            Err(bad) => frame::error(bad.request.as_deref(), &bad.error),
            Ok(ClientFrame::Ping { id }) => frame::pong(&id),
            Ok(ClientFrame::Subscribe { topics, cursor }) => {
                let mut all: Vec<TopicName> = self.topics().cloned().collect();
                all.extend(topics);
                let cursor = cursor.unwrap_or_else(|| self.cursor());
                self.resubscribe(&all, cursor, "subscribe")
            }
            Ok(ClientFrame::Unsubscribe { topics }) => {
                let rest: Vec<TopicName> = self.topics().filter(|t| !topics.contains(t)).cloned().collect();
                if rest.is_empty() {
                    self.position = self.cursor();
                    self.subscription = None;
                    frame::subscribed(std::iter::empty(), self.position)
                } else {
                    self.resubscribe(&rest, self.cursor(), "unsubscribe")
                }
            }
            Ok(ClientFrame::Publish { topic, event }) => match self.hub.publish(&topic, event).await {
                Ok(event) => frame::published(&event),
                Err(err) => frame::error(Some("publish"), &ApiError::from(err)),
            },
        };
        self.outbox.push_reply(reply);
    }

    fn topics(&self) -> impl Iterator<Item = &TopicName> {
        self.subscription.iter().flat_map(Subscription::topics)
    }

    /// The connection's position: right after the last event taken from the hub.
    fn cursor(&self) -> Cursor {
        self.subscription.as_ref().map_or(self.position, Subscription::cursor)
    }

    /// Replaces the subscription with one for `topics` from `cursor`. The hub's cursor is one
    /// position in its single order, so continuing from the current cursor neither loses nor
    /// repeats events of the topics that stay. On error the old subscription stays.
    fn resubscribe(&mut self, topics: &[TopicName], cursor: Cursor, request: &str) -> bytes::Bytes {
        match self.open(topics, cursor) {
            Ok(subscription) => {
                let reply = frame::subscribed(subscription.topics(), subscription.cursor());
                self.subscription = Some(subscription);
                reply
            }
            Err(err) => frame::error(Some(request), &ApiError::from(err)),
        }
    }

    fn on_batch(&mut self, received: Result<usize, RecvError>, items: &mut Vec<Item>) -> Option<End> {
        match received {
            Ok(_) => {
                for item in items.drain(..) {
                    match item {
                        Item::Event(event) => self.outbox.push_event(frame::event(&event)),
                        Item::Reset(reset) => self.outbox.push_event(frame::reset(&reset)),
                    }
                }
                None
            }
            Err(RecvError::Lagged { behind }) => Some(End::Close(CloseReason::SlowConsumer { behind })),
            Err(_) => Some(End::Close(CloseReason::ShuttingDown)),
        }
    }
}

async fn next_batch(
    subscription: Option<&mut Subscription>,
    items: &mut Vec<Item>,
) -> Result<usize, RecvError> {
    match subscription {
        Some(subscription) => subscription.recv_many(items, BATCH).await,
        None => std::future::pending().await,
    }
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
                if let Ok(mut socket) = stream.reunite(sink) {
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
