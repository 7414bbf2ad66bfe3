// Run: cargo run --release -p pushgate-redis --example append_rate -- [--seconds 10] [--publishers 16] [--payload 100] [--replica] [--url redis://…]
//! How many publishes per second one Redis stream takes through pushgate's Lua append, with two
//! nodes (two `RedisStorage` hubs in this process) publishing at once, each with `--publishers`
//! concurrent publishers. By default it starts a private `redis-server` (and with `--replica` a
//! replica, so every publish also waits for `WAIT 1`); `--url` targets another Redis instead
//! (its `pushgate:` keys are used: never point it at a production Redis).
//!
//! It prints publishes/s (all, and per node), the publish latency (p50, p99, max: Lua append,
//! then the node applying its own event) and the share of one core the Redis server used. A
//! Redis near 100 % is the stream's ceiling: every publish runs on Redis's one command thread.
//! Both nodes also apply every event, as real nodes do, so on a small machine they compete with
//! Redis for cores: measure on a quiet machine with cores to spare (docs/benchmarks.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use pushgate_hub::{Hub, NewEvent, TopicName};
use pushgate_redis::{RedisOptions, RedisStorage};
use pushgate_testkit::RedisServer;

struct Args {
    seconds: u64,
    publishers: usize,
    payload: usize,
    replica: bool,
    url: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args { seconds: 10, publishers: 16, payload: 100, replica: false, url: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => args.seconds = value()?.parse()?,
            "--publishers" => args.publishers = value()?.parse()?,
            "--payload" => args.payload = value()?.parse()?,
            "--url" => args.url = Some(value()?),
            "--replica" => args.replica = true,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// Seconds of CPU the Redis server has used (`INFO cpu`).
async fn redis_cpu(connection: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(connection).await?;
    let field = |name: &str| {
        info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<f64>().ok())
    };
    Ok(field("used_cpu_sys").unwrap_or(0.0) + field("used_cpu_user").unwrap_or(0.0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let (_servers, url) = match &args.url {
        Some(url) => (Vec::new(), url.clone()),
        None => {
            let master = RedisServer::start().await?;
            let url = master.url();
            let mut servers = vec![master];
            if args.replica {
                let port = servers[0].port().to_string();
                let replica =
                    RedisServer::start_with(vec!["--replicaof".into(), "127.0.0.1".into(), port]).await?;
                replica.wait_for_master_link().await?;
                servers.push(replica);
            }
            (servers, url)
        }
    };
    let options = || RedisOptions::default().min_replicas_ack(usize::from(args.replica));
    let nodes = [
        Hub::builder().storage(Arc::new(RedisStorage::connect(&url, options()).await?)).build(),
        Hub::builder().storage(Arc::new(RedisStorage::connect(&url, options()).await?)).build(),
    ];
    let mut probe = redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?;
    let payload = serde_json::Value::String("x".repeat(args.payload));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = redis_cpu(&mut probe).await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, hub) in nodes.iter().enumerate() {
        for p in 0..args.publishers {
            let (hub, stop, payload) = (hub.clone(), Arc::clone(&stop), payload.clone());
            // A topic per publisher: one stream for all topics is what is measured.
            let topic = TopicName::new(&format!("bench.{n}.{p}"))?;
            tasks.push((
                n,
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let at = Instant::now();
                        hub.publish(&topic, NewEvent::new(payload.clone())).await?;
                        latencies.push(at.elapsed());
                    }
                    anyhow::Ok(latencies)
                }),
            ));
        }
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut per_node = [0usize; 2];
    let mut latencies = Vec::new();
    for (n, task) in tasks {
        let done = task.await??;
        per_node[n] += done.len();
        latencies.extend(done);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (redis_cpu(&mut probe).await? - cpu_before) / elapsed;
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).copied().unwrap_or_default()
    };
    let total = per_node[0] + per_node[1];
    println!(
        "{} publishes/s ({} + {} per node), {} publishers per node, {} B payload, replica acks: {}",
        (total as f64 / elapsed).round(),
        (per_node[0] as f64 / elapsed).round(),
        (per_node[1] as f64 / elapsed).round(),
        args.publishers,
        args.payload,
        args.replica,
    );
    println!("latency p50 {:?}, p99 {:?}, max {:?}", at(0.5), at(0.99), at(1.0));
    println!("redis-server used {:.0} % of one core", cpu * 100.0);
    Ok(())
}
