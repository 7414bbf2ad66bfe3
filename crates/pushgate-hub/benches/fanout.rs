//! One publish fanned out to 10,000 subscribers of one topic.
//!
//! Run: `cargo bench -p pushgate-hub --bench fanout`. Two views of the same work:
//! - `direct`: the subscribers are polled in place, one after another, on the bench thread:
//!   the hub's own cost per delivery (wake flag, history read, `Arc` clone), no scheduler.
//! - `tasks`: each subscriber is a tokio task on a 2-worker runtime, as a transport would run
//!   it; an iteration ends when every task has received the event.
//!
//! Throughput is reported in deliveries (elements) per second.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)] // bench harness code

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use pushgate_hub::{Cursor, Hub, Item, NewEvent, TopicName};

const SUBSCRIBERS: usize = 10_000;

fn direct(c: &mut Criterion) {
    let hub = Hub::new();
    let topic = TopicName::new("fanout").unwrap();
    let mut subs: Vec<_> =
        (0..SUBSCRIBERS).map(|_| hub.subscribe(std::slice::from_ref(&topic), Cursor::Now).unwrap()).collect();
    let payload = serde_json::json!({"price": 101.25, "symbol": "ACME"});
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("direct/10000", |b| {
        b.iter(|| {
            hub.publish(&topic, NewEvent::new(payload.clone())).now_or_never().unwrap().unwrap();
            for sub in &mut subs {
                match sub.recv().now_or_never() {
                    Some(Ok(Item::Event(_))) => {}
                    other => panic!("expected an event, got {other:?}"),
                }
            }
        })
    });
    group.finish();
}

fn tasks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let hub = Hub::new();
    let topic = TopicName::new("fanout").unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let target = Arc::new(AtomicU64::new(u64::MAX));
    runtime.block_on(async {
        for _ in 0..SUBSCRIBERS {
            let mut sub = hub.subscribe(std::slice::from_ref(&topic), Cursor::Now).unwrap();
            let (delivered, done, target) = (delivered.clone(), done.clone(), target.clone());
            tokio::spawn(async move {
                let mut items = Vec::with_capacity(64);
                while let Ok(n) = sub.recv_many(&mut items, 64).await {
                    items.clear();
                    let total = delivered.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
                    if total == target.load(Ordering::Acquire) {
                        done.notify_one();
                    }
                }
            });
        }
    });
    let payload = serde_json::json!({"price": 101.25, "symbol": "ACME"});
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("tasks/10000", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let goal = delivered.load(Ordering::Acquire) + SUBSCRIBERS as u64;
                    target.store(goal, Ordering::Release);
                    let start = Instant::now();
                    hub.publish(&topic, NewEvent::new(payload.clone())).await.unwrap();
                    while delivered.load(Ordering::Acquire) < goal {
                        let _ = tokio::time::timeout(Duration::from_millis(5), done.notified()).await;
                    }
                    elapsed += start.elapsed();
                }
                elapsed
            })
        })
    });
    group.finish();
    hub.close();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = direct, tasks
}
criterion_main!(benches);
