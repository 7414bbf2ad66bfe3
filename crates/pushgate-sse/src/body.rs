//! The response body of one SSE connection: a stream of chunks read from a subscription.
//!
//! The body owns the [`Subscription`]: when the client goes away, hyper drops the body and the
//! subscription with it, so presence and hub counters follow the connection exactly, with no
//! task to clean up.

use std::cell::Cell;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use pushgate_http::{Cut, Grant};
use pushgate_hub::{Cursor, Item, RecvError, Reset, Subscription};
use tokio::time::{Instant, Sleep};

use crate::config::SseConfig;
use crate::framing::{self, Chunk, HEARTBEAT};

/// Chunks of `text/event-stream` for one subscriber; ends after an `event: error` frame when
/// the subscription fails (slow consumer, shutdown).
pub(crate) struct SseBody {
    /// `None` once the final frame has been produced.
    subscription: Option<Subscription>,
    /// The `retry:` frame, until the first chunk carries it.
    retry: Option<Bytes>,
    heartbeat: Option<Heartbeat>,
    batch_size: usize,
    chunk: Chunk,
    /// Fires when the subscriber's token expires, which ends the stream.
    expiry: Option<Pin<Box<Sleep>>>,
    /// Fires when the application's server cuts the subscriber's user off, which ends the
    /// stream too.
    cutoff: Option<Pin<Box<dyn Future<Output = Cut> + Send>>>,
    /// The access granted to the stream, held while it lives (a policy may count it as one of
    /// its user's connections until it is dropped).
    _grant: Grant,
}

thread_local! {
    /// The batch buffer, one per worker thread for all the streams it polls: a read empties it
    /// before returning, so a stream needs none of its own between polls (a buffer of
    /// `batch_size` items per stream was 2.6 KB of every idle connection).
    static ITEMS: Cell<Vec<Item>> = const { Cell::new(Vec::new()) };
}

/// A timer that fires every `every`; a heartbeat is due when nothing was written since it
/// last fired, so one goes out after at least one and less than two intervals of silence.
/// The opening write (the `retry:` frame, at the very start of the first interval) does not
/// count: counted, it would make an idle stream's first heartbeat come after exactly two
/// intervals, the longest silence a proxy is told to allow, instead of one.
/// Writes only set a flag: a busy stream reads no clock and touches no timer per chunk (it read
/// the clock on every chunk, 2% of the gateway's CPU at 100,000 deliveries/s).
struct Heartbeat {
    every: Duration,
    wrote: bool,
    opened: bool,
    sleep: Pin<Box<Sleep>>,
}

impl Heartbeat {
    fn new(every: Duration) -> Self {
        Self { every, wrote: false, opened: false, sleep: Box::pin(tokio::time::sleep(every)) }
    }

    /// Whether a heartbeat is due now; otherwise the timer is armed to wake the task.
    fn poll_due(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            self.sleep.as_mut().reset(Instant::now() + self.every);
            if !std::mem::take(&mut self.wrote) {
                return true;
            }
        }
    }

    fn wrote(&mut self) {
        if self.opened {
            self.wrote = true;
        }
        self.opened = true;
    }
}

impl SseBody {
    pub(crate) fn new(subscription: Subscription, config: &SseConfig) -> Self {
        Self {
            subscription: Some(subscription),
            retry: Some(framing::retry_frame(config.retry)),
            heartbeat: (!config.heartbeat.is_zero()).then(|| Heartbeat::new(config.heartbeat)),
            batch_size: config.batch_size,
            chunk: Chunk::new(config.max_chunk_bytes),
            expiry: None,
            cutoff: None,
            _grant: Grant::forever(),
        }
    }

    /// Holds `grant` while the stream lives, and ends the stream with `token_expired` when it
    /// expires (never, for a grant without expiry), or with the cut's code when it is cut off.
    pub(crate) fn holding(mut self, grant: Grant) -> Self {
        self.expiry = grant.remaining().map(|after| Box::pin(tokio::time::sleep(after)));
        self.cutoff = grant.cutoff().map(|cutoff| {
            let cut: Pin<Box<dyn Future<Output = Cut> + Send>> = Box::pin(cutoff.clone().wait());
            cut
        });
        self._grant = grant;
        self
    }
}

/// Moves whatever `subscription` has ready, up to `batch_size` items, into `chunk`. Returns the
/// error that ended the subscription, if it did.
fn read_ready(
    chunk: &mut Chunk,
    batch_size: usize,
    subscription: &mut Subscription,
    cx: &mut Context<'_>,
) -> Option<RecvError> {
    // A reset comes first, and its `id:` should let a client that reconnects right after it
    // resume without being reset again. The subscription's own cursor at that point is still
    // the stale one; the event that follows (from history, so normally in the same read)
    // tells where delivery really resumes: just before it.
    let mut reset: Option<(Reset, Cursor)> = None;
    let mut failed = None;
    let mut taken = 0;
    let mut items = ITEMS.take();
    while taken < batch_size {
        match subscription.poll_recv_many(cx, &mut items, batch_size - taken) {
            Poll::Pending => break,
            Poll::Ready(Err(err)) => {
                failed = Some(err);
                break;
            }
            Poll::Ready(Ok(n)) => {
                taken += n.max(1);
                for item in items.drain(..) {
                    match item {
                        Item::Event(event) => {
                            if let Some((reset, _)) = reset.take() {
                                let resume = Cursor::at(event.epoch(), event.position().saturating_sub(1));
                                chunk.push(framing::reset_frame(&reset, resume));
                            }
                            chunk.push(framing::event_frame(&event));
                        }
                        Item::Reset(next) => reset = Some((next, subscription.cursor())),
                        Item::Presence(change) => chunk.push(framing::presence_frame(&change)),
                    }
                }
            }
        }
    }
    ITEMS.set(items);
    if let Some((reset, resume)) = reset {
        chunk.push(framing::reset_frame(&reset, resume));
    }
    failed
}

impl Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // What the last read gathered goes out first, one capped chunk per call; the next batch
        // is read only when it is all gone, so a subscriber holds at most one batch of frames.
        if !this.chunk.is_empty() {
            return Poll::Ready(Some(Ok(this.write())));
        }
        // Used where it lies: a subscription is a few hundred bytes, and taking it out and
        // putting it back copied it twice on every poll.
        let Some(subscription) = this.subscription.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(retry) = this.retry.take() {
            this.chunk.push(retry);
        }
        let last = if this.expiry.as_mut().is_some_and(|expiry| expiry.as_mut().poll(cx).is_ready()) {
            tracing::debug!(transport = "sse", topics = ?subscription.topics().collect::<Vec<_>>(), "token expired, stream ended");
            Some(framing::expired_frame())
        } else if let Some(cut) = this.cutoff.as_mut().and_then(|cutoff| match cutoff.as_mut().poll(cx) {
            Poll::Ready(cut) => Some(cut),
            Poll::Pending => None,
        }) {
            tracing::debug!(transport = "sse", topics = ?subscription.topics().collect::<Vec<_>>(), ?cut, "stream cut off by the server");
            Some(framing::cut_frame(cut))
        } else if let Some(err) = read_ready(&mut this.chunk, this.batch_size, subscription, cx) {
            // The final frame goes out with whatever was read before the failure.
            tracing::debug!(transport = "sse", topics = ?subscription.topics().collect::<Vec<_>>(), %err, "stream ended");
            Some(framing::end_frame(err))
        } else {
            None
        };
        if let Some(last) = last {
            // Dropped here, the subscription is released before the client has even read the
            // final frame.
            this.subscription = None;
            this.chunk.push(last);
            return Poll::Ready(Some(Ok(this.write())));
        }
        if this.chunk.is_empty() {
            let due = this.heartbeat.as_mut().is_some_and(|heartbeat| heartbeat.poll_due(cx));
            if !due {
                return Poll::Pending;
            }
            // Not noted as a write: the next heartbeat is due after the next silent interval.
            return Poll::Ready(Some(Ok(Bytes::from_static(HEARTBEAT))));
        }
        Poll::Ready(Some(Ok(this.write())))
    }
}

impl SseBody {
    /// The next chunk to write, noted by the heartbeat.
    fn write(&mut self) -> Bytes {
        if let Some(heartbeat) = &mut self.heartbeat {
            heartbeat.wrote();
        }
        self.chunk.take()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::SystemTime;

    use super::*;
    use futures_util::StreamExt;
    use pushgate_hub::{HistoryLimit, Hub, NewEvent, SubscribeOptions, TopicName};

    async fn publish(hub: &Hub, topic: &TopicName, n: usize) -> Vec<Bytes> {
        let mut frames = Vec::new();
        for i in 0..n {
            let event = hub.publish(topic, NewEvent::new(serde_json::json!(i))).await.unwrap();
            frames.push(framing::event_frame(&event));
        }
        frames
    }

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.concat()
    }

    async fn next(body: &mut SseBody) -> Option<Bytes> {
        tokio::time::timeout(Duration::from_secs(60), body.next()).await.unwrap().map(|chunk| chunk.unwrap())
    }

    #[tokio::test]
    async fn ready_events_go_out_together_in_chunks_of_at_most_a_batch() {
        let hub = Hub::new();
        let topic = TopicName::new("t").unwrap();
        let old = publish(&hub, &topic, 10).await;
        let sub = hub.subscribe(&[topic.clone()], Cursor::Oldest).unwrap();
        let mut body = SseBody::new(sub, &SseConfig::default().batch_size(4));

        let retry = framing::retry_frame(Duration::from_secs(2));
        let first = [&[retry][..], &old[..4]].concat();
        assert_eq!(next(&mut body).await.unwrap(), concat(&first));
        assert_eq!(next(&mut body).await.unwrap(), concat(&old[4..8]));
        assert_eq!(next(&mut body).await.unwrap(), concat(&old[8..]));

        // A single frame is the shared, cached buffer itself.
        let live = publish(&hub, &topic, 1).await;
        assert_eq!(next(&mut body).await.unwrap().as_ptr(), live[0].as_ptr());
    }

    #[tokio::test]
    async fn large_events_go_out_as_their_shared_frames_and_small_ones_joined_under_the_cap() {
        let hub = Hub::builder().history(HistoryLimit::default().max_bytes(64 << 20)).build();
        let topic = TopicName::new("t").unwrap();
        let big = serde_json::json!("x".repeat((1 << 20) - 64));
        let mut frames = Vec::new();
        for n in 0..8 {
            let data = if n % 4 == 3 { big.clone() } else { serde_json::json!(n) };
            let event = hub.publish(&topic, NewEvent::new(data)).await.unwrap();
            frames.push(framing::event_frame(&event));
        }
        let sub = hub.subscribe(&[topic.clone()], Cursor::Oldest).unwrap();
        // The default cap is 64 KiB.
        let mut body = SseBody::new(sub, &SseConfig::default());

        let retry = framing::retry_frame(Duration::from_secs(2));
        let mut chunks = Vec::new();
        while chunks.iter().map(Bytes::len).sum::<usize>() < retry.len() + concat(&frames).len() {
            chunks.push(next(&mut body).await.unwrap());
        }
        // The retry line and three small events, then the large one as the cached frame itself.
        assert_eq!(chunks.len(), 4, "{:?}", chunks.iter().map(Bytes::len).collect::<Vec<_>>());
        assert_eq!(chunks[0], concat(&[&[retry][..], &frames[..3]].concat()));
        assert_eq!(chunks[1].as_ptr(), frames[3].as_ptr());
        assert_eq!(chunks[2], concat(&frames[4..7]));
        assert_eq!(chunks[3].as_ptr(), frames[7].as_ptr());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_gets_its_first_heartbeat_after_one_interval() {
        let hub = Hub::new();
        let sub = hub.subscribe(&[TopicName::new("t").unwrap()], Cursor::Now).unwrap();
        let mut body = SseBody::new(sub, &SseConfig::default().heartbeat(Duration::from_secs(15)));
        let start = Instant::now();
        assert_eq!(next(&mut body).await.unwrap(), &b"retry: 2000\n\n"[..]);
        assert_eq!(next(&mut body).await.unwrap(), HEARTBEAT);
        assert_eq!(start.elapsed(), Duration::from_secs(15));
        assert_eq!(next(&mut body).await.unwrap(), HEARTBEAT);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_is_sent_at_the_end_of_each_silent_interval() {
        let hub = Hub::new();
        let topic = TopicName::new("t").unwrap();
        let sub = hub.subscribe(&[topic.clone()], Cursor::Now).unwrap();
        let mut body = SseBody::new(sub, &SseConfig::default().heartbeat(Duration::from_secs(15)));
        let start = Instant::now();
        assert_eq!(next(&mut body).await.unwrap(), &b"retry: 2000\n\n"[..]);

        // The interval [0 s, 15 s) saw the retry frame and an event, so the first heartbeat
        // goes out at the end of the next one, which is silent; then one every interval.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let event = publish(&hub, &topic, 1).await;
        assert_eq!(next(&mut body).await.unwrap(), event[0]);
        assert_eq!(next(&mut body).await.unwrap(), HEARTBEAT);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(next(&mut body).await.unwrap(), HEARTBEAT);
        assert_eq!(start.elapsed(), Duration::from_secs(45));
        // An event at 50 s: the interval ending at 60 s was not silent, the one ending at 75 s is.
        tokio::time::sleep_until(start + Duration::from_secs(50)).await;
        let event = publish(&hub, &topic, 1).await;
        assert_eq!(next(&mut body).await.unwrap(), event[0]);
        assert_eq!(next(&mut body).await.unwrap(), HEARTBEAT);
        assert_eq!(start.elapsed(), Duration::from_secs(75));
    }

    #[tokio::test]
    async fn a_lagging_subscriber_gets_its_events_then_the_error_then_the_end() {
        let hub = Hub::new();
        let topic = TopicName::new("t").unwrap();
        let options = SubscribeOptions::default().label("sse").max_backlog(Some(3));
        let sub = hub.subscribe_with(&[topic.clone()], Cursor::Now, options).unwrap();
        let mut body = SseBody::new(sub, &SseConfig::default());
        let events = publish(&hub, &topic, 2).await;
        let expected = [&[framing::retry_frame(Duration::from_secs(2))][..], &events[..]].concat();
        assert_eq!(next(&mut body).await.unwrap(), concat(&expected));

        publish(&hub, &topic, 5).await;
        let last = next(&mut body).await.unwrap();
        assert!(last.starts_with(b"event: error\ndata: {\"code\":\"slow_consumer\""), "{last:?}");
        // The subscription is released with the final frame, before the client reads it.
        assert_eq!(hub.presence(&topic).total, 0);
        assert_eq!(next(&mut body).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_expiring_token_ends_the_stream_with_token_expired() {
        let hub = Hub::new();
        let topic = TopicName::new("t").unwrap();
        let sub = hub.subscribe(&[topic.clone()], Cursor::Now).unwrap();
        let config = SseConfig::default().heartbeat(Duration::ZERO);
        let mut body =
            SseBody::new(sub, &config).holding(Grant::until(SystemTime::now() + Duration::from_secs(30)));
        let start = Instant::now();
        assert_eq!(next(&mut body).await.unwrap(), &b"retry: 2000\n\n"[..]);
        let event = publish(&hub, &topic, 1).await;
        assert_eq!(next(&mut body).await.unwrap(), event[0]);
        let last = next(&mut body).await.unwrap();
        assert!(last.starts_with(b"event: error\ndata: {\"code\":\"token_expired\""), "{last:?}");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(hub.presence(&topic).total, 0);
        assert_eq!(next(&mut body).await, None);
    }

    #[tokio::test]
    async fn a_closed_hub_ends_the_stream_with_shutting_down() {
        let hub = Hub::new();
        let topic = TopicName::new("t").unwrap();
        let sub = hub.subscribe(&[topic], Cursor::Now).unwrap();
        let mut body = SseBody::new(sub, &SseConfig::default().heartbeat(Duration::ZERO));
        assert_eq!(next(&mut body).await.unwrap(), &b"retry: 2000\n\n"[..]);
        hub.close();
        let last = next(&mut body).await.unwrap();
        assert!(last.starts_with(b"event: error\ndata: {\"code\":\"shutting_down\""), "{last:?}");
        assert_eq!(next(&mut body).await, None);
    }
}
