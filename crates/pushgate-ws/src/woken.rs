//! The read half of a connection, polled only when it asked to be.
//!
//! A connection's loop wakes for many reasons (a batch of events, a write that drained, a
//! timer) and `select!` polls every enabled branch each time. Polling tungstenite's read half
//! when the socket has nothing new still walks its machinery (the split lock, the context
//! proxies, the frame reader), on every delivery. [`Woken`] gives the read half a waker of its
//! own: it is polled again only after that waker fired (the socket or whatever else it waited
//! on is ready) or after it yielded an item (more may be buffered). Nothing is skipped that
//! could make progress: a stream that returned `Pending` has registered the waker it was given,
//! and will call it before it can.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use futures_util::task::{ArcWake, AtomicWaker, waker_ref};

/// A stream polled only once woken; see the module documentation.
pub(crate) struct Woken<S> {
    inner: S,
    /// Also the waker the inner stream is given: it sets the flag, then wakes the task. (Only
    /// the `Arc` is kept, and the waker made from it at each poll without touching its count:
    /// every idle connection holds this.)
    flag: Arc<Flag>,
}

struct Flag {
    /// Whether the inner stream may have progressed since it last returned `Pending`.
    woken: AtomicBool,
    /// The task polling this stream.
    task: AtomicWaker,
}

impl ArcWake for Flag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        // Release: the task that sees the flag sees what the waker's caller did before.
        arc_self.woken.store(true, Ordering::Release);
        arc_self.task.wake();
    }
}

impl<S> Woken<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner, flag: Arc::new(Flag { woken: AtomicBool::new(true), task: AtomicWaker::new() }) }
    }

    pub(crate) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Stream + Unpin> Stream for Woken<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        this.flag.task.register(cx.waker());
        // Taken before polling: a wake that comes during the poll is kept for the next one.
        if !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = waker_ref(&this.flag);
        let polled = Pin::new(&mut this.inner).poll_next(&mut Context::from_waker(&waker));
        if polled.is_ready() {
            // It may hold more without waking anyone: poll it again next time.
            this.flag.woken.store(true, Ordering::Release);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicUsize;

    use futures_util::StreamExt as _;

    use super::*;

    /// Counts its polls; yields what is sent on a channel.
    struct Counted {
        inner: futures_util::stream::BoxStream<'static, u32>,
        polls: Arc<AtomicUsize>,
    }

    impl Stream for Counted {
        type Item = u32;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.inner.poll_next_unpin(cx)
        }
    }

    #[tokio::test]
    async fn the_inner_stream_is_polled_only_after_its_waker_fired_or_it_yielded() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = Counted { inner: tokio_stream_of(rx), polls: Arc::clone(&polls) };
        let mut woken = Woken::new(counted);
        let noop = std::task::Waker::noop();
        let mut cx = Context::from_waker(noop);
        assert!(woken.poll_next_unpin(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 1);
        // Woken for something else: the inner stream is not asked again.
        for _ in 0..10 {
            assert!(woken.poll_next_unpin(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1);
        // Two items arrive: the first wakes it; after an item it is asked again at once.
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(woken.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(woken.poll_next_unpin(&mut cx), Poll::Ready(Some(2)));
        assert!(woken.poll_next_unpin(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 4);
        drop(tx);
        assert_eq!(woken.next().await, None, "the end is seen too");
    }

    fn tokio_stream_of(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<u32>,
    ) -> futures_util::stream::BoxStream<'static, u32> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
    }
}
