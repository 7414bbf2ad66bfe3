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

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};

enum Outgoing {
    /// An event or reset frame from the hub.
    Event(Bytes),
    /// A reply to a client frame, or a protocol Ping.
    Reply(Message),
}

/// Frames waiting for the socket.
#[derive(Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Outgoing>,
    events: usize,
    /// Frames were handed to the sink (or tungstenite queued a Pong) since the last flush.
    unflushed: bool,
}

impl Outbox {
    /// Queues a hub frame (event or reset), JSON text shared with other subscribers.
    pub(crate) fn push_event(&mut self, json: Bytes) {
        self.queue.push_back(Outgoing::Event(json));
        self.events += 1;
    }

    /// Queues a reply frame (JSON text).
    pub(crate) fn push_reply(&mut self, json: Bytes) {
        self.queue.push_back(Outgoing::Reply(Message::Frame(text_frame(json))));
    }

    /// Queues a protocol-level Ping.
    pub(crate) fn push_ping(&mut self) {
        self.queue.push_back(Outgoing::Reply(Message::Ping(Bytes::new())));
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
        while !self.queue.is_empty() {
            ready!(sink.poll_ready_unpin(cx))?;
            let Some(outgoing) = self.queue.pop_front() else { break };
            let message = match outgoing {
                Outgoing::Event(json) => {
                    self.events -= 1;
                    Message::Frame(text_frame(json))
                }
                Outgoing::Reply(message) => message,
            };
            self.unflushed = true;
            sink.start_send_unpin(message)?;
        }
        if self.unflushed {
            ready!(sink.poll_flush_unpin(cx))?;
            self.unflushed = false;
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
            Message::Ping(_) => b"ping".to_vec(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn drains_in_order_with_one_flush_and_survives_cancellation() {
        let mut outbox = Outbox::default();
        outbox.push_event(Bytes::from_static(b"1"));
        outbox.push_reply(Bytes::from_static(b"2"));
        outbox.push_ping();
        outbox.push_event(Bytes::from_static(b"3"));
        assert_eq!((outbox.events(), outbox.replies()), (2, 2));

        let mut sink = Recorder { sent: Vec::new(), room: 2, capacity: 2, flushes: 0 };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // The sink takes two frames, then blocks: the drain is pending and may be dropped.
        assert!(outbox.poll_drain(&mut cx, &mut sink).is_pending());
        assert_eq!((outbox.events(), outbox.replies()), (1, 1));
        assert!(outbox.has_work());

        sink.room = sink.capacity;
        assert!(outbox.poll_drain(&mut cx, &mut sink).is_ready());
        let sent: Vec<_> = sink.sent.iter().map(payload).collect();
        assert_eq!(sent, [b"1".to_vec(), b"2".to_vec(), b"ping".to_vec(), b"3".to_vec()]);
        assert_eq!(sink.flushes, 1);
        assert!(!outbox.has_work());

        outbox.mark_unflushed();
        assert!(outbox.poll_drain(&mut cx, &mut sink).is_ready());
        assert_eq!(sink.flushes, 2);
    }
}
