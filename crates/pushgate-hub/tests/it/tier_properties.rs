//! Properties of reads backed by a history tier, over random interleavings of publishes across
//! topics, subscriptions from any cursor, receives and paged fetches, with a memory history far
//! smaller than the run.
//!
//! The tier holds every event after a position `S` (0: all of them), as a trimmed Redis log or
//! an outbox past its retention would. What is checked, for every reader:
//! - events arrive once each, in strictly increasing position, from its topics only;
//! - no event after `S` is ever skipped: memory evicting it does not lose it;
//! - an event that is skipped (it was at or before `S` and memory had evicted it) is listed in
//!   the reader's opening reset (a fetch page's reset), with a `Missed` range holding the true
//!   count and the `resume_seq` the reader then gets; a listed topic that lost nothing says
//!   `at_least: 0`; with `S = 0` there is never a reset;
//! - a subscription that had started reading and then lost events everywhere lags instead.
//!
//! The tier answers at once, so every future is driven with `now_or_never` inside a runtime
//! (the hub's tier reads carry a timeout, which needs tokio's timer).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use proptest::prelude::*;
use proptest::sample::Index;
use pushgate_hub::{
    Cursor, Event, FetchOptions, HistoryLimit, HistoryTier, Hub, HubError, Item, NewEvent, RecvError, Reset,
    Subscription, TierEvents, TierRead, TopicName,
};
use serde_json::json;

const TOPICS: usize = 3;

/// Holds every archived event after `missing_through`.
struct Archive {
    events: Arc<Mutex<Vec<Arc<Event>>>>,
    missing_through: u64,
}

impl HistoryTier for Archive {
    fn read(&self, request: TierRead) -> BoxFuture<'static, Result<TierEvents, HubError>> {
        let after = request.after.max(self.missing_through);
        let events: Vec<Arc<Event>> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                request.topics.contains(e.topic()) && e.position() > after && e.position() <= request.upto
            })
            .take(request.limit)
            .cloned()
            .collect();
        let answer = TierEvents::new(events).missing_through(self.missing_through);
        Box::pin(async move { Ok(answer) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Published {
    topic: usize,
    seq: u64,
    position: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Publish { topic: usize },
    Subscribe { topics: u8, start: Index },
    Recv { reader: Index, limit: usize },
    Fetch { topics: u8, start: Index, limit: usize },
}

struct Reader {
    sub: Subscription,
    topics: BTreeSet<usize>,
    start: u64,
    delivered: Vec<Published>,
    reset: Option<Reset>,
    items: usize,
    done: bool,
}

struct Model {
    hub: Hub,
    names: Vec<TopicName>,
    archive: Arc<Mutex<Vec<Arc<Event>>>>,
    /// The tier holds every event after this position.
    tier_from: u64,
    /// Events memory keeps per topic.
    history: u64,
    log: Vec<Published>,
    counts: [u64; TOPICS],
    readers: Vec<Reader>,
}

fn topic_set(mask: u8) -> BTreeSet<usize> {
    (0..TOPICS).filter(|i| mask & (1 << i) != 0).collect()
}

impl Model {
    fn new(history: usize, tier_from: u64) -> Self {
        let archive = Arc::new(Mutex::new(Vec::new()));
        let tier = Archive { events: Arc::clone(&archive), missing_through: tier_from };
        let hub = Hub::builder()
            .history(HistoryLimit::default().max_events(history).max_age(None))
            .tier(Arc::new(tier))
            .build();
        Self {
            hub,
            names: (0..TOPICS).map(|i| TopicName::new(&format!("t{i}")).unwrap()).collect(),
            archive,
            tier_from,
            history: history as u64,
            log: Vec::new(),
            counts: [0; TOPICS],
            readers: Vec::new(),
        }
    }

    fn head(&self) -> u64 {
        self.log.last().map_or(0, |p| p.position)
    }

    fn observe(&self, event: &Event) -> Published {
        let topic = self.names.iter().position(|n| n == event.topic()).unwrap();
        let published = Published { topic, seq: event.seq(), position: event.position() };
        assert!(self.log.contains(&published), "a published event: {published:?}");
        published
    }

    fn start(&self, start: &Index) -> u64 {
        start.index(self.log.len() + 1) as u64
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Publish { topic } => {
                let event = self
                    .hub
                    .publish(&self.names[*topic], NewEvent::new(json!(self.log.len())))
                    .now_or_never();
                let event = event.unwrap().unwrap();
                self.counts[*topic] += 1;
                assert_eq!(event.seq(), self.counts[*topic]);
                self.archive.lock().unwrap().push(Arc::clone(&event));
                self.log.push(Published { topic: *topic, seq: event.seq(), position: event.position() });
            }
            Op::Subscribe { topics, start } => {
                let topics = topic_set(*topics);
                let start = self.start(start);
                let names: Vec<TopicName> = topics.iter().map(|&t| self.names[t].clone()).collect();
                let sub = self.hub.subscribe(&names, Cursor::at(self.hub.epoch(), start)).unwrap();
                self.readers.push(Reader {
                    sub,
                    topics,
                    start,
                    delivered: Vec::new(),
                    reset: None,
                    items: 0,
                    done: false,
                });
            }
            Op::Recv { reader, limit } => {
                if self.readers.is_empty() {
                    return;
                }
                let r = reader.index(self.readers.len());
                self.recv(r, *limit);
            }
            Op::Fetch { topics, start, limit } => {
                let topics = topic_set(*topics);
                let start = self.start(start);
                self.fetch(&topics, start, *limit);
            }
        }
    }

    fn recv(&mut self, r: usize, limit: usize) {
        if self.readers[r].done {
            return;
        }
        let mut items = Vec::new();
        let outcome = self.readers[r].sub.recv_many(&mut items, limit).now_or_never();
        for item in items {
            match item {
                Item::Reset(reset) => {
                    let reader = &mut self.readers[r];
                    assert_eq!(reader.items, 0, "a reset only comes first");
                    assert!(
                        self.tier_from > reader.start,
                        "no reset when the tier holds everything after the cursor"
                    );
                    reader.reset = Some(reset);
                    reader.items += 1;
                }
                Item::Event(event) => {
                    let got = self.observe(&event);
                    let reader = &mut self.readers[r];
                    assert!(reader.topics.contains(&got.topic));
                    let last = reader.delivered.last().map_or(reader.start, |p| p.position);
                    assert!(got.position > last, "strictly increasing: {got:?} after {last}");
                    reader.delivered.push(got);
                    reader.items += 1;
                }
                Item::Presence(change) => panic!("no notices were asked for: {change:?}"),
            }
        }
        match outcome {
            Some(Ok(_)) => {
                let through = self.readers[r].delivered.last().map_or(self.readers[r].start, |p| p.position);
                self.check_reader(r, through, false);
            }
            // Caught up: everything up to the head is accounted for.
            None => self.check_reader(r, self.head(), true),
            Some(Err(RecvError::Lagged { behind })) => {
                let reader = &mut self.readers[r];
                assert!(reader.items > 0, "only a subscriber that had started reading lags");
                assert!(behind >= 1);
                let last = reader.delivered.last().map_or(reader.start, |p| p.position);
                assert!(last < self.tier_from, "lagged though the tier holds everything after {last}");
                reader.done = true;
            }
            Some(Err(err)) => panic!("unexpected {err:?}"),
        }
    }

    /// What `topics` owe a reader from `start` up to `through`: delivered, or skipped (at or
    /// before the tier's start, and then listed in `reset`). With `lost`, the reset's counts are
    /// checked against how many events of each topic the read could not get.
    fn check_read(
        &self,
        topics: &BTreeSet<usize>,
        start: u64,
        through: u64,
        delivered: &[Published],
        reset: Option<&Reset>,
        lost: Option<&dyn Fn(usize) -> u64>,
    ) {
        let owed: Vec<&Published> = self
            .log
            .iter()
            .filter(|p| topics.contains(&p.topic) && p.position > start && p.position <= through)
            .collect();
        assert!(delivered.iter().all(|d| owed.contains(&d)), "only owed events");
        for &topic in topics {
            let listed = reset.and_then(|r| r.topics().iter().find(|t| t.topic == self.names[topic]));
            for p in owed.iter().filter(|p| p.topic == topic && !delivered.contains(p)) {
                assert!(p.position <= self.tier_from, "{p:?} is in the tier but was skipped");
                assert!(listed.is_some(), "{p:?} was skipped silently");
            }
            let Some(entry) = listed else { continue };
            if let Some(first) = delivered.iter().find(|d| d.topic == topic) {
                assert_eq!(entry.resume_seq, first.seq, "resume_seq is the first event delivered: {entry:?}");
            }
            if let Some(lost) = lost {
                let lost = lost(topic);
                assert!(entry.missed.at_least <= lost, "{entry:?} but {lost} lost");
                assert!(entry.missed.at_most.is_none_or(|most| lost <= most), "{entry:?} but {lost} lost");
            }
        }
    }

    fn check_reader(&self, r: usize, through: u64, caught_up: bool) {
        let reader = &self.readers[r];
        let never_delivered = |topic: usize| {
            self.log
                .iter()
                .filter(|p| p.topic == topic && p.position > reader.start && !reader.delivered.contains(p))
                .count() as u64
        };
        let lost: Option<&dyn Fn(usize) -> u64> = if caught_up { Some(&never_delivered) } else { None };
        self.check_read(
            &reader.topics,
            reader.start,
            through,
            &reader.delivered,
            reader.reset.as_ref(),
            lost,
        );
    }

    /// Fetches page by page from `start` to the end; each page is a read from its own cursor.
    fn fetch(&mut self, topics: &BTreeSet<usize>, start: u64, limit: usize) {
        let names: Vec<TopicName> = topics.iter().map(|&t| self.names[t].clone()).collect();
        let options = FetchOptions::default().limit(limit);
        let epoch = self.hub.epoch();
        let mut cursor = start;
        let mut all = Vec::new();
        for page in 0.. {
            assert!(page <= self.log.len() + 1, "pages end");
            let batch =
                self.hub.fetch(&names, Cursor::at(epoch, cursor), &options).now_or_never().unwrap().unwrap();
            assert!(batch.events.len() <= limit);
            let got: Vec<Published> = batch.events.iter().map(|e| self.observe(e)).collect();
            assert!(got.windows(2).all(|w| w[0].position < w[1].position));
            if self.tier_from <= cursor {
                assert!(batch.reset.is_none(), "no reset when the tier holds everything after the cursor");
            }
            let Cursor::At { position: next, .. } = batch.cursor else { panic!("{:?}", batch.cursor) };
            assert!(next >= cursor && next <= self.head());
            // What a read from this page's cursor cannot get: evicted from memory, not in the tier.
            let unavailable = |topic: usize| {
                self.log
                    .iter()
                    .filter(|p| p.topic == topic && p.position > cursor && p.position <= self.tier_from)
                    .filter(|p| p.seq + self.history <= self.counts[topic])
                    .count() as u64
            };
            self.check_read(topics, cursor, next, &got, batch.reset.as_ref(), Some(&unavailable));
            all.extend(got);
            if batch.events.is_empty() {
                // The last page: everything up to the head is accounted for.
                self.check_read(topics, cursor, self.head(), &[], batch.reset.as_ref(), None);
                break;
            }
            cursor = next;
        }
        // Over all pages, nothing the tier holds is missing.
        let expected: Vec<Published> = self
            .log
            .iter()
            .filter(|p| topics.contains(&p.topic) && p.position > start.max(self.tier_from))
            .copied()
            .collect();
        let tail: Vec<Published> = all.iter().filter(|p| p.position > self.tier_from).copied().collect();
        assert_eq!(tail, expected);
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..TOPICS).prop_map(|topic| Op::Publish { topic }),
        2 => (1u8..8, any::<Index>()).prop_map(|(topics, start)| Op::Subscribe { topics, start }),
        5 => (any::<Index>(), 1usize..6).prop_map(|(reader, limit)| Op::Recv { reader, limit }),
        2 => (1u8..8, any::<Index>(), 1usize..8).prop_map(|(topics, start, limit)| Op::Fetch { topics, start, limit }),
    ]
}

fn run(history: usize, tier_from: u64, ops: &[Op]) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        let mut model = Model::new(history, tier_from);
        for op in ops {
            model.apply(op);
        }
        // Every reader catches up in the end.
        for r in 0..model.readers.len() {
            for _ in 0..model.log.len() + 2 {
                if model.readers[r].done {
                    break;
                }
                model.recv(r, 7);
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(192) })]

    /// A tier holding everything: every reader gets every event once, in order, and no reset,
    /// however small memory is.
    #[test]
    fn a_tier_holding_everything_means_no_reader_misses_anything(
        history in 1usize..5,
        ops in prop::collection::vec(op(), 1..150),
    ) {
        run(history, 0, &ops);
    }

    /// A tier holding a suffix: what is neither in memory nor in the tier is reported, exactly
    /// the topics that lost events (or `at_least: 0`), nothing the tier holds is lost.
    #[test]
    fn a_tier_holding_a_suffix_reports_exactly_what_is_missing(
        history in 1usize..5,
        tier_from in 0u64..60,
        ops in prop::collection::vec(op(), 1..150),
    ) {
        run(history, tier_from, &ops);
    }
}
