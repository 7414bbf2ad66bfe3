//! `GET /metrics` and `GET /readyz` over a real socket, on the testkit's `TestServer`.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use pushgate_testkit::TestServer;

/// A gateway on port 0 with `config`; stopped when dropped.
async fn start(config: pushgate::Config) -> anyhow::Result<TestServer> {
    TestServer::start_with(config).await
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build()?)
}

/// The value of the sample line that starts with `name ` (labels included in `name`).
fn sample(text: &str, name: &str) -> anyhow::Result<f64> {
    let line = text
        .lines()
        .find(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ')))
        .with_context(|| format!("no sample {name} in:\n{text}"))?;
    Ok(line[name.len()..].trim().parse()?)
}

#[tokio::test]
async fn metrics_count_a_publish_a_fetch_and_a_subscriber() -> anyhow::Result<()> {
    let server = start(pushgate::Config::default()).await?;
    let addr = server.addr();
    let client = client()?;
    let published = client
        .post(format!("http://{addr}/v1/publish/news"))
        .header("content-type", "application/json")
        .body(r#"{"data":{"n":1}}"#)
        .send()
        .await?;
    ensure!(published.status() == 200, "publish: {}", published.status());
    let polled = client.get(format!("http://{addr}/v1/poll?topic=news&cursor=oldest")).send().await?;
    ensure!(polled.status() == 200, "poll: {}", polled.status());
    // An SSE stream stays open, and subscribed, while the response is held.
    let stream = client
        .get(format!("http://{addr}/v1/sse?topic=news"))
        .header("accept", "text/event-stream")
        .send()
        .await?;
    ensure!(stream.status() == 200, "sse: {}", stream.status());

    // What Prometheus sends: it takes OpenMetrics first.
    let response = client
        .get(format!("http://{addr}/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await?;
    ensure!(response.status() == 200, "metrics: {}", response.status());
    let content_type = response.headers()["content-type"].to_str()?.to_owned();
    ensure!(content_type.starts_with("application/openmetrics-text"), "content-type {content_type}");
    let text = response.text().await?;
    ensure!(text.contains("# TYPE pushgate_events_published counter"), "{text}");
    ensure!(text.ends_with("# EOF\n"), "{text}");
    // A scraper of the older text format gets counters typed under their samples' names.
    let old = client
        .get(format!("http://{addr}/metrics"))
        .header("accept", "text/plain; version=0.0.4")
        .send()
        .await?;
    let content_type = old.headers()["content-type"].to_str()?.to_owned();
    ensure!(content_type.starts_with("text/plain; version=0.0.4"), "content-type {content_type}");
    let old = old.text().await?;
    ensure!(old.contains("# TYPE pushgate_events_published_total counter\n"), "{old}");
    ensure!(!old.contains("# EOF") && !old.contains("# TYPE pushgate_events_published counter"), "{old}");
    assert_eq!(sample(&old, "pushgate_events_published_total")?, 1.0, "{old}");
    assert_eq!(sample(&text, "pushgate_events_published_total")?, 1.0, "{text}");
    assert_eq!(sample(&text, "pushgate_events_delivered_total")?, 1.0, "{text}");
    assert_eq!(sample(&text, "pushgate_subscribers")?, 1.0, "{text}");
    assert_eq!(sample(&text, "pushgate_topics")?, 1.0, "{text}");
    ensure!(sample(&text, "pushgate_history_bytes")? > 0.0, "{text}");
    assert_eq!(sample(&text, "pushgate_history_max_bytes")?, f64::from(128_u32 << 20), "{text}");
    assert_eq!(sample(&text, "pushgate_history_evicted_total")?, 0.0, "{text}");
    for name in [
        "pushgate_events_replayed_total",
        "pushgate_history_tier_reads_total",
        "pushgate_history_tier_events_total",
        "pushgate_history_tier_failures_total",
    ] {
        assert_eq!(sample(&text, name)?, 0.0, "{text}");
    }
    assert_eq!(sample(&text, "pushgate_subscribers_lagged_total")?, 0.0, "{text}");
    assert_eq!(sample(&text, "pushgate_draining")?, 0.0, "{text}");
    // The SSE stream and the scrape's own connection at least (the client may pool more).
    ensure!(sample(&text, "pushgate_connections_open")? >= 2.0, "{text}");
    ensure!(sample(&text, "pushgate_connections_accepted_total")? >= 2.0, "{text}");
    drop(stream);
    Ok(())
}

#[tokio::test]
async fn a_replayed_publish_is_counted_and_not_published() -> anyhow::Result<()> {
    let server = start(pushgate::Config::default()).await?;
    let addr = server.addr();
    let client = client()?;
    for _ in 0..3 {
        let answer = client
            .post(format!("http://{addr}/v1/publish/orders"))
            .header("idempotency-key", "order-1")
            .header("content-type", "application/json")
            .body(r#"{"data":{"n":1}}"#)
            .send()
            .await?;
        ensure!(answer.status() == 200, "publish: {}", answer.status());
    }
    let text = client.get(format!("http://{addr}/metrics")).send().await?.text().await?;
    assert_eq!(sample(&text, "pushgate_events_published_total")?, 1.0, "{text}");
    assert_eq!(sample(&text, "pushgate_events_replayed_total")?, 2.0, "{text}");
    Ok(())
}

#[tokio::test]
async fn ready_without_sources() -> anyhow::Result<()> {
    let server = start(pushgate::Config::default()).await?;
    let addr = server.addr();
    let response = client()?.get(format!("http://{addr}/readyz")).send().await?;
    ensure!(response.status() == 200, "readyz: {}", response.status());
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body, serde_json::json!({ "ready": true }));
    Ok(())
}

#[tokio::test]
async fn not_ready_while_a_source_cannot_connect() -> anyhow::Result<()> {
    // Nothing listens on port 1, so the source is connecting or retrying, never live.
    let url = "postgres://app:secret@127.0.0.1:1/shop";
    let config = pushgate::Config::default().with_sources(vec![url.to_owned()]);
    let server = start(config).await?;
    let addr = server.addr();
    let client = client()?;
    let response = client.get(format!("http://{addr}/readyz")).send().await?;
    ensure!(response.status() == 503, "readyz: {}", response.status());
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["ready"], false, "{body}");
    let reasons = body["reasons"].as_array().context("reasons")?;
    ensure!(reasons.len() == 1, "{body}");
    let reason = reasons[0].as_str().context("a string")?;
    ensure!(reason.starts_with("source postgres://app:***@127.0.0.1:1/shop is "), "{reason}");
    ensure!(!reason.contains("secret"), "{reason}");

    // Liveness is not readiness: /healthz still answers 200, and /metrics shows the source down.
    let health = client.get(format!("http://{addr}/healthz")).send().await?;
    ensure!(health.status() == 200, "healthz: {}", health.status());
    let metrics = client.get(format!("http://{addr}/metrics")).send().await?.text().await?;
    let name = r#"pushgate_source_live{url="postgres://app:***@127.0.0.1:1/shop"}"#;
    assert_eq!(sample(&metrics, name)?, 0.0, "{metrics}");
    Ok(())
}
