//! The two floods of issue 15, against the gateway binary with small limits so they take
//! seconds: one client publishing 1 MB bodies to new topics as fast as the default publish rate
//! lets it must leave the process's memory within its history budget plus a stated margin, and
//! a thousand short polls (with held SSE streams) naming topics nobody published to must leave
//! publishers room to make new ones. Others keep publishing and reading throughout.
//!
//! A test binary of its own, not a module of `tests/it`: `cargo test` runs one binary's tests in
//! parallel threads, and these floods keep both cores busy for seconds while they sample the
//! gateway's peak memory, which depends on how fast the flood gets through. Alone (binaries run
//! one after another), the bound is checked against the flood only, as docs/deployment.md
//! quotes it, and no other test's time bound has to share the machine with it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use pushgate_testkit::{Delivery, GatewayProcess, Transport};
use serde_json::Value;

/// Bound on any one request, and on waiting for one event.
const WAIT: Duration = Duration::from_secs(10);

/// The history budget the memory flood runs under (`--history-max-bytes`).
const BUDGET: u64 = 8 << 20;
/// What the gateway may hold above its idle RSS and the budget while one client floods it with
/// 1 MB publishes, four at a time: each publish in flight holds its body, its parsed JSON and
/// the compact data the hub keeps (3 to 4 MB), frames being written to the SSE reader of the
/// flood topics, and the blocks the allocator keeps to reuse. docs/deployment.md states the
/// same margin.
const MARGIN: u64 = 40 << 20;
/// Publishes of 1 MB the flood makes accepted: ten times what the budget holds.
const FLOOD: usize = 80;

async fn gateway(args: &[&str]) -> anyhow::Result<GatewayProcess> {
    let args: Vec<&str> = ["--no-demo"].iter().chain(args).copied().collect();
    GatewayProcess::start(Path::new(env!("CARGO_BIN_EXE_pushgate")), &std::env::temp_dir(), &args).await
}

/// An HTTP client whose connections come from `from` (any of 127.0.0.0/8): the publish rate is
/// per client address, so each client of a test is its own address.
fn client_from(from: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(from))
        .timeout(WAIT)
        .build()
        .expect("an HTTP client")
}

/// The gateway's resident memory, from `/proc`.
fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    let kb: u64 = line.split_whitespace().nth(1).context("VmRSS value")?.parse()?;
    Ok(kb * 1024)
}

/// A sample of the Prometheus text.
async fn metric(client: &reqwest::Client, node: &GatewayProcess, name: &str) -> anyhow::Result<f64> {
    let text = client.get(node.url("/metrics")).send().await?.text().await?;
    let line = text.lines().find(|l| l.split_whitespace().next() == Some(name));
    let line = line.with_context(|| format!("no {name} in:\n{text}"))?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

async fn publish(
    client: &reqwest::Client,
    node: &GatewayProcess,
    topic: &str,
    body: String,
) -> anyhow::Result<u16> {
    let response = client
        .post(node.url(&format!("/v1/publish/{topic}")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_new_topics_with_large_bodies_leaves_memory_within_the_budget() -> anyhow::Result<()>
{
    let node = gateway(&["--history-max-bytes", "8MiB"]).await?;
    let pid = node.pid().context("the gateway's pid")?;
    let steady = client_from(Ipv4Addr::new(127, 0, 0, 2));
    // Readers: one of a steady topic, one of the first hundred flood topics (their 1 MB
    // events get an SSE frame encoded and cached on them, which the budget counts too).
    let sse = Transport::Sse.client()?;
    let mut steady_feed = sse.connect_url(node.base_url(), &["steady"], None).await?;
    let flood_query: Vec<String> = (0..100).map(|n| format!("topic=flood.{n}")).collect();
    let mut flood_stream = steady
        .get(node.url(&format!("/v1/sse?{}", flood_query.join("&"))))
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(3600))
        .send()
        .await?;
    ensure!(flood_stream.status() == 200);
    let flood_read = Arc::new(AtomicUsize::new(0));
    let flood_reader = {
        let read = Arc::clone(&flood_read);
        tokio::spawn(async move {
            // Bytes only, as fast as they come, until the stream ends (a slow reader may be
            // cut off: that is allowed) or the test does.
            while let Ok(Some(chunk)) = flood_stream.chunk().await {
                read.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        })
    };
    ensure!(publish(&steady, &node, "steady", r#"{"data":0}"#.into()).await? == 200);
    let baseline = rss(pid)?;

    // The gateway's peak memory, sampled until the flood is over.
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(now) = rss(pid) {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // Another client keeps publishing small events meanwhile; every one must go through.
    let steady_publisher = {
        let (done, client, url) = (Arc::clone(&done), steady.clone(), node.url("/v1/publish/steady"));
        tokio::spawn(async move {
            let mut sent = 1;
            while !done.load(Ordering::Relaxed) {
                let response =
                    client.post(&url).header("content-type", "application/json").body(r#"{"data":1}"#);
                let status = response.send().await?.status();
                ensure!(status == 200, "a steady publish during the flood got {status}");
                sent += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok::<_, anyhow::Error>(sent)
        })
    };

    // The flood: one address, four connections at once, 1 MB to a new topic each time, as
    // fast as its publish rate allows (a 429 waits a little and tries the next).
    let flooder = client_from(Ipv4Addr::new(127, 0, 0, 9));
    let body = format!(r#"{{"data":"{}"}}"#, "x".repeat(1_000_000));
    let (next, accepted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut flood = Vec::new();
    for _ in 0..4 {
        let (client, body, next, accepted) = (flooder.clone(), body.clone(), next.clone(), accepted.clone());
        let base = node.base_url().to_owned();
        flood.push(tokio::spawn(async move {
            while accepted.load(Ordering::Relaxed) < FLOOD {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let response = client
                    .post(format!("{base}/v1/publish/flood.{n}"))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                match response.status().as_u16() {
                    200 => _ = accepted.fetch_add(1, Ordering::Relaxed),
                    429 => tokio::time::sleep(Duration::from_millis(20)).await,
                    other => bail!("a flood publish got {other}: {}", response.text().await?),
                }
            }
            Ok(())
        }));
    }
    for task in flood {
        task.await??;
    }
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    let sent = steady_publisher.await??;
    let after = rss(pid)?;
    let peak = peak.load(Ordering::Relaxed);

    let limit = baseline + BUDGET + MARGIN;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let report = format!(
        "idle {:.1} MiB, peak {:.1} MiB, after {:.1} MiB; limit {:.1} MiB (idle + budget + margin)",
        mib(baseline),
        mib(peak),
        mib(after),
        mib(limit)
    );
    ensure!(peak <= limit && after <= limit, "{FLOOD} MB published: {report}");
    let held = metric(&steady, &node, "pushgate_history_bytes").await?;
    ensure!(held <= BUDGET as f64, "history holds {held} bytes, over its budget");
    ensure!(metric(&steady, &node, "pushgate_history_max_bytes").await? == BUDGET as f64);
    let evicted = metric(&steady, &node, "pushgate_history_evicted_total").await?;
    ensure!(evicted >= (FLOOD - 8) as f64, "{evicted} evicted of {FLOOD} MB into 8 MiB");
    // The steady reader got every steady event, in order.
    for seq in 1..=sent {
        match steady_feed.next(WAIT).await? {
            Some(Delivery::Event(event)) => ensure!(event["seq"] == seq, "{event}"),
            other => bail!("steady event {seq} of {sent}: {other:?}"),
        }
    }
    let streamed = flood_read.load(Ordering::Relaxed);
    ensure!(streamed > 1_000_000, "the flood reader got {streamed} bytes, not one event");
    flood_reader.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_flood_naming_new_topics_leaves_room_for_new_topics_to_be_published() -> anyhow::Result<()> {
    let node = gateway(&["--max-topics", "1000"]).await?;
    let client = reqwest::Client::builder().no_proxy().timeout(WAIT).build()?;
    // Held SSE streams naming 2,000 new topics between them, twice the topic limit.
    let sse = Transport::Sse.client()?;
    let mut held = Vec::new();
    for i in 0..20 {
        let topics: Vec<String> = (0..100).map(|j| format!("held.{i}.{j}")).collect();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        held.push(sse.connect_url(node.base_url(), &refs, None).await?);
    }
    // A publisher making new topics while a thousand short polls name a hundred new ones each.
    let polls_done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (client, done, base) = (client.clone(), Arc::clone(&polls_done), node.base_url().to_owned());
        tokio::spawn(async move {
            let mut made = 0;
            while !done.load(Ordering::Relaxed) && made < 200 {
                let url = format!("{base}/v1/publish/new.{made}");
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(r#"{"data":1}"#)
                    .send()
                    .await?;
                let status = response.status();
                ensure!(status == 200, "publishing to new topic {made} during the reader flood: {status}");
                made += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, anyhow::Error>(made)
        })
    };
    let next = Arc::new(AtomicUsize::new(0));
    let mut polls = Vec::new();
    for _ in 0..16 {
        let (client, next, base) = (client.clone(), Arc::clone(&next), node.base_url().to_owned());
        polls.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= 1000 {
                    return Ok::<_, anyhow::Error>(());
                }
                let query: Vec<String> = (0..100).map(|j| format!("topic=poll.{n}.{j}")).collect();
                let answer = client.get(format!("{base}/v1/poll?{}", query.join("&"))).send().await?;
                ensure!(answer.status() == 200, "poll {n}: {}", answer.status());
            }
        }));
    }
    for poll in polls {
        poll.await??;
    }
    polls_done.store(true, Ordering::Relaxed);
    let made = publisher.await??;
    ensure!(made > 0, "the publisher made no topic");

    // After it too, a new topic can be made; the table counts only the published ones.
    ensure!(publish(&client, &node, "after", r#"{"data":1}"#.into()).await? == 200);
    ensure!(metric(&client, &node, "pushgate_topics").await? == (made + 1) as f64);
    // Presence still counts the streams waiting on topics nobody published to.
    let presence: Value = client.get(node.url("/v1/presence/held.5.5")).send().await?.json().await?;
    ensure!(presence["total"] == 1 && presence["by_transport"]["sse"] == 1, "{presence}");
    // And a stream waiting on a topic gets its first event when it is published.
    ensure!(publish(&client, &node, "held.3.7", r#"{"data":"first"}"#.into()).await? == 200);
    match held[3].next(WAIT).await? {
        Some(Delivery::Event(event)) => {
            ensure!(event["topic"] == "held.3.7" && event["seq"] == 1 && event["data"] == "first", "{event}");
        }
        other => bail!("the held stream got {other:?}"),
    }
    Ok(())
}
