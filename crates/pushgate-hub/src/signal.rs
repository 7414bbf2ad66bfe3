//! A reader's wake-up flag: the one synchronisation between publishers and readers.
//!
//! A publisher commits an event (publishing the storage head with a release store), then
//! [`notify`](Signal::notify)s the signal of every reader of the topic. A reader
//! [`clear`](Signal::clear)s its signal, looks at storage, and only if it found nothing waits
//! with [`poll_notified`](Signal::poll_notified). The flag must never lose a wake-up: a commit
//! that the reader's look missed must find the flag clear and wake it, or leave it set for the
//! wait to see. The `model` tests below check exactly that under every interleaving and
//! reordering the memory model allows (loom; run with
//! `RUSTFLAGS="--cfg pushgate_loom" cargo test -p pushgate-hub --lib --release signal`).

use std::task::{Context, Poll, Waker};

#[cfg(not(pushgate_loom))]
use futures_util::task::AtomicWaker;
#[cfg(pushgate_loom)]
use loom::future::AtomicWaker;
#[cfg(pushgate_loom)]
use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(pushgate_loom))]
use std::sync::atomic::{AtomicBool, Ordering};

/// A reader's wake-up flag.
#[derive(Default)]
pub(crate) struct Signal {
    notified: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    pub(crate) fn notify(&self) {
        // Skip the wake when one is already pending: the reader has not consumed it yet.
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Forgets earlier notifications; called before a reader looks at storage, so that a commit
    /// landing after the look sets the flag again.
    ///
    /// A swap, not a store: reading the flag makes the reader acquire what the last notifying
    /// publisher committed. With a plain store, a publisher's swap could see the flag still set
    /// (and skip the wake) while the reader's look missed that publisher's commit, and the
    /// reader would then wait for a wake-up that never comes.
    pub(crate) fn clear(&self) {
        self.notified.swap(false, Ordering::AcqRel);
    }

    pub(crate) fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        register(&self.waker, cx.waker());
        if self.notified.swap(false, Ordering::AcqRel) { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Keeps publishes from waking the reader until its next [`clear`](Self::clear): they
    /// find the flag already set and skip the wake. Only [`interrupt`](Self::interrupt) (the
    /// hub closing) still wakes it, through the waker registered here. For a reader that will
    /// look at storage anyway when its own timer fires.
    pub(crate) fn mute(&self, cx: &mut Context<'_>) {
        register(&self.waker, cx.waker());
        self.notified.store(true, Ordering::Release);
    }

    /// Wakes the reader even if it is [muted](Self::mute).
    pub(crate) fn interrupt(&self) {
        self.notified.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub(crate) async fn notified(&self) {
        std::future::poll_fn(|cx| self.poll_notified(cx)).await;
    }
}

#[cfg(not(pushgate_loom))]
fn register(slot: &AtomicWaker, waker: &Waker) {
    slot.register(waker);
}

#[cfg(pushgate_loom)]
fn register(slot: &AtomicWaker, waker: &Waker) {
    slot.register_by_ref(waker);
}

/// The flag under loom: every interleaving of a reader and its publishers, with the stale reads
/// the memory model allows. A lost wake-up shows as a deadlock, which loom reports.
#[cfg(all(test, pushgate_loom))]
mod model {
    use std::future::poll_fn;
    use std::task::Poll;

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use loom::thread;

    use super::Signal;

    /// Every interleaving with up to three preemptions, as tokio bounds its own models: deeper
    /// searches of these few operations find nothing new and take minutes instead of seconds.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// What a reader does: clear, look at storage (the head), wait only if the look found nothing.
    fn read_until(signal: &Signal, head: &AtomicUsize, want: usize) {
        loop {
            signal.clear();
            if head.load(Ordering::Acquire) >= want {
                return;
            }
            loom::future::block_on(signal.notified());
        }
    }

    #[test]
    fn a_commit_after_the_look_wakes_the_reader() {
        model(|| {
            let signal = Arc::new(Signal::default());
            let head = Arc::new(AtomicUsize::new(0));
            // A notification from an earlier commit is still pending when the reader clears.
            signal.notify();
            let publisher = {
                let (signal, head) = (Arc::clone(&signal), Arc::clone(&head));
                thread::spawn(move || {
                    head.store(1, Ordering::Release);
                    signal.notify();
                })
            };
            read_until(&signal, &head, 1);
            let _ = publisher.join();
        });
    }

    #[test]
    fn two_publishers_never_leave_the_reader_behind() {
        model(|| {
            let signal = Arc::new(Signal::default());
            let head = Arc::new(AtomicUsize::new(0));
            let publishers: Vec<_> = (0..2)
                .map(|_| {
                    let (signal, head) = (Arc::clone(&signal), Arc::clone(&head));
                    thread::spawn(move || {
                        head.fetch_add(1, Ordering::AcqRel);
                        signal.notify();
                    })
                })
                .collect();
            read_until(&signal, &head, 2);
            for publisher in publishers {
                let _ = publisher.join();
            }
        });
    }

    #[test]
    fn closing_wakes_a_muted_reader_whatever_publishers_do() {
        model(|| {
            let signal = Arc::new(Signal::default());
            let closed = Arc::new(AtomicBool::new(false));
            let closer = {
                let (signal, closed) = (Arc::clone(&signal), Arc::clone(&closed));
                thread::spawn(move || {
                    closed.store(true, Ordering::Release);
                    signal.interrupt();
                })
            };
            let publisher = {
                let signal = Arc::clone(&signal);
                thread::spawn(move || signal.notify())
            };
            // A reader in a coalescing window: muted, waiting for its timer (which never fires
            // here), so only the close may end the wait.
            loom::future::block_on(poll_fn(|cx| {
                signal.mute(cx);
                if closed.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
            }));
            let _ = closer.join();
            let _ = publisher.join();
        });
    }
}
