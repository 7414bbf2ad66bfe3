//! Frames waiting for the socket, and the cancel-safe drain that writes them in batches.
//!
//! The connection loop pushes frames here and drains them whenever the socket can take more.
//! Everything pushed between two drains goes out back to back and is flushed once. A drain may
//! be dropped at any `.await` (the loop's `select!` does so whenever something else is ready)
//! without losing or repeating a frame: each frame leaves the queue only as it is handed to the
//! sink.
//!
//! The queue is bounded by its users: events by taking the next batch from the hub only once the
//! queue holds none, replies by pausing the reading of client frames.
//!
//! It also tells the connection what only the writing side knows: which protocol Ping has
//! actually been flushed to the socket (the only one a Pong may answer), and since when frames
//! have been waiting without the socket taking any (a client that stopped reading).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};

enum Outgoing {
    /// An event or reset frame from the hub.
    Event(Bytes),
    /// A reply to a client frame.
    Reply(Message),
    /// A protocol Ping with this payload.
    Ping(u64),
}

/// Frames waiting for the socket.
#[derive(Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Outgoing>,
    events: usize,
    /// Frames were handed to the sink (or tungstenite queued a Pong) since the last flush.
    unflushed: bool,
    /// The Ping handed to the sink since the last flush.
    ping_sent: Option<u64>,
    /// The last Ping flushed to the socket.
    ping_flushed: Option<u64>,
    /// Since when frames have waited without the sink accepting any or a flush completing.
    waiting_since: Option<Instant>,
}

impl Outbox {
    /// Queues a hub frame (event or reset), JSON text shared with other subscribers.
    pub(crate) fn push_event(&mut self, json: Bytes) {
        self.push(Outgoing::Event(json));
        self.events += 1;
    }

    /// Queues a reply frame (JSON text).
    pub(crate) fn push_reply(&mut self, json: Bytes) {
        self.push(Outgoing::Reply(Message::Frame(text_frame(json))));
    }

    /// Queues a protocol-level Ping carrying `payload`.
    pub(crate) fn push_ping(&mut self, payload: u64) {
        self.push(Outgoing::Ping(payload));
    }

    fn push(&mut self, outgoing: Outgoing) {
        self.queue.push_back(outgoing);
        self.waiting_since.get_or_insert_with(Instant::now);
    }

    /// Whether `pong` (a Pong frame's payload) answers the last Ping flushed to the socket. A
    /// Pong for a Ping still queued, or an unsolicited one, answers nothing.
    pub(crate) fn answers_ping(&self, pong: &[u8]) -> bool {
        self.ping_flushed.is_some_and(|payload| pong == payload.to_be_bytes())
    }

    /// Since when frames have been waiting without the socket taking any; `None` when nothing
    /// waits.
    pub(crate) fn waiting_since(&self) -> Option<Instant> {
        self.waiting_since
    }

    /// Hub frames queued.
    pub(crate) fn events(&self) -> usize {
        self.events
    }

    /// Replies (and Pings) queued.
    pub(crate) fn replies(&self) -> usize {
        self.queue.len() - self.events
    }

    /// tungstenite holds something to send that only a flush will write (an automatic Pong).
    pub(crate) fn mark_unflushed(&mut self) {
        self.unflushed = true;
        self.waiting_since.get_or_insert_with(Instant::now);
    }

    /// Whether a drain has anything to do.
    pub(crate) fn has_work(&self) -> bool {
        self.unflushed || !self.queue.is_empty()
    }

    /// Hands every queued frame to `sink`, then flushes once. Cancel-safe.
    pub(crate) async fn drain<S>(&mut self, sink: &mut S) -> Result<(), S::Error>
    where
        S: Sink<Message> + Unpin,
    {
        poll_fn(|cx| self.poll_drain(cx, sink)).await
    }

    fn poll_drain<S>(&mut self, cx: &mut Context<'_>, sink: &mut S) -> Poll<Result<(), S::Error>>
    where
        S: Sink<Message> + Unpin,
    {
        let mut progressed = false;
        let drained = self.poll_send_all(cx, sink, &mut progressed);
        match drained {
            Poll::Pending if progressed => self.waiting_since = Some(Instant::now()),
            Poll::Pending | Poll::Ready(Err(_)) => {}
            Poll::Ready(Ok(())) => self.waiting_since = None,
        }
        drained
    }

    fn poll_send_all<S>(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut S,
        progressed: &mut bool,
    ) -> Poll<Result<(), S::Error>>
    where
        S: Sink<Message> + Unpin,
    {
        while !self.queue.is_empty() {
            ready!(sink.poll_ready_unpin(cx))?;
            let Some(outgoing) = self.queue.pop_front() else { break };
            let message = match outgoing {
                Outgoing::Event(json) => {
                    self.events -= 1;
                    Message::Frame(text_frame(json))
                }
                Outgoing::Reply(message) => message,
                Outgoing::Ping(payload) => {
                    self.ping_sent = Some(payload);
                    Message::Ping(Bytes::copy_from_slice(&payload.to_be_bytes()))
                }
            };
            self.unflushed = true;
            *progressed = true;
            sink.start_send_unpin(message)?;
        }
        if self.unflushed {
            ready!(sink.poll_flush_unpin(cx))?;
            self.unflushed = false;
            if let Some(payload) = self.ping_sent.take() {
                self.ping_flushed = Some(payload);
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// A text frame over shared bytes. `Message::Text` would re-check the UTF-8 of every frame for
/// every subscriber; these bytes are JSON this crate wrote, UTF-8 by construction.
fn text_frame(json: Bytes) -> Frame {
    Frame::message(json, OpCode::Data(OpData::Text), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;

    /// A sink that accepts `capacity` messages per flush, and records them.
    struct Recorder {
        sent: Vec<Message>,
        room: usize,
        capacity: usize,
        flushes: usize,
        /// The flush never completes, like a socket whose peer stopped reading.
        stuck: bool,
    }

    impl Recorder {
        fn new(capacity: usize) -> Self {
            Self { sent: Vec::new(), room: capacity, capacity, flushes: 0, stuck: false }
        }
    }

    impl Sink<Message> for Recorder {
        type Error = std::convert::Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            if self.room > 0 { Poll::Ready(Ok(())) } else { Poll::Pending }
        }
        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
            self.room -= 1;
            self.sent.push(item);
            Ok(())
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            if self.stuck {
                return Poll::Pending;
            }
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    fn payload(message: &Message) -> Vec<u8> {
        match message {
            Message::Frame(frame) => frame.payload().to_vec(),
            Message::Ping(payload) => [b"ping".as_slice(), payload].concat(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn drains_in_order_with_one_flush_and_survives_cancellation() {
        let mut outbox = Outbox::default();
        outbox.push_event(Bytes::from_static(b"1"));
        outbox.push_reply(Bytes::from_static(b"2"));
        outbox.push_ping(7);
        outbox.push_event(Bytes::from_static(b"3"));
        assert_eq!((outbox.events(), outbox.replies()), (2, 2));

        let mut sink = Recorder::new(2);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // The sink takes two frames, then blocks: the drain is pending and may be dropped.
        assert!(outbox.poll_drain(&mut cx, &mut sink).is_pending());
        assert_eq!((outbox.events(), outbox.replies()), (1, 1));
        assert!(outbox.has_work());

        sink.room = sink.capacity;
        assert!(outbox.poll_drain(&mut cx, &mut sink).is_ready());
        let sent: Vec<_> = sink.sent.iter().map(payload).collect();
        let ping = [b"ping".as_slice(), &7u64.to_be_bytes()].concat();
        assert_eq!(sent, [b"1".to_vec(), b"2".to_vec(), ping, b"3".to_vec()]);
        assert_eq!(sink.flushes, 1);
        assert!(!outbox.has_work());

        outbox.mark_unflushed();
        assert!(outbox.poll_drain(&mut cx, &mut sink).is_ready());
        assert_eq!(sink.flushes, 2);
    }

    /// A sink that takes frames but whose flush never completes (a full socket).
    fn blocked_flush() -> Recorder {
        Recorder { stuck: true, ..Recorder::new(8) }
    }

    #[test]
    fn only_a_pong_for_the_last_flushed_ping_counts() {
        let mut outbox = Outbox::default();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(!outbox.answers_ping(b""));
        outbox.push_ping(1);
        assert!(!outbox.answers_ping(&1u64.to_be_bytes()), "still queued");

        // Handed to the socket, but not flushed: the client cannot have seen it.
        let mut blocked = blocked_flush();
        assert!(outbox.poll_drain(&mut cx, &mut blocked).is_pending());
        assert!(!outbox.answers_ping(&1u64.to_be_bytes()));

        let mut sink = Recorder::new(8);
        assert!(outbox.poll_drain(&mut cx, &mut sink).is_ready());
        assert!(outbox.answers_ping(&1u64.to_be_bytes()));
        assert!(!outbox.answers_ping(&2u64.to_be_bytes()));
        assert!(!outbox.answers_ping(b""));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_timed_from_the_last_progress() {
        let mut outbox = Outbox::default();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert_eq!(outbox.waiting_since(), None);
        let start = Instant::now();
        outbox.push_event(Bytes::from_static(b"1"));
        assert_eq!(outbox.waiting_since(), Some(start));

        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        // The socket takes the frame but cannot flush it: progress, then waiting again.
        let mut blocked = blocked_flush();
        assert!(outbox.poll_drain(&mut cx, &mut blocked).is_pending());
        let progressed = Instant::now();
        assert_eq!(outbox.waiting_since(), Some(progressed));
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        outbox.push_reply(Bytes::from_static(b"2"));
        assert!(outbox.poll_drain(&mut cx, &mut Recorder { room: 0, ..blocked_flush() }).is_pending());
        assert_eq!(outbox.waiting_since(), Some(progressed), "no progress, no reset");

        let mut sink = Recorder::new(8);
        assert!(outbox.poll_drain(&mut cx, &mut sink).is_ready());
        assert_eq!(outbox.waiting_since(), None);
    }
}
