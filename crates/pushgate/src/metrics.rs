//! `GET /metrics` in the Prometheus text format (OpenMetrics 1.0 when the scraper's `Accept`
//! takes it, the 0.0.4 text otherwise; see `format`), and `GET /readyz`.
//!
//! Every value is read when scraped (the hub's counters, the accept loop's connection counts,
//! each source's state), so a fresh registry is filled and encoded per scrape: nothing is
//! counted twice and nothing runs between scrapes. The metrics:
//!
//! | name | type | what |
//! |---|---|---|
//! | `pushgate_events_published_total` | counter | events published into the hub |
//! | `pushgate_events_delivered_total` | counter | event deliveries, one per event per reader |
//! | `pushgate_subscribers_lagged_total` | counter | subscribers cut off for lagging |
//! | `pushgate_resets_total` | counter | resets reported to subscriptions and fetches |
//! | `pushgate_subscribers` | gauge | live subscriptions |
//! | `pushgate_topics` | gauge | topics the hub holds: published to and not forgotten yet (the ones `--max-topics` counts) |
//! | `pushgate_history_bytes` | gauge | memory the retained history holds: events, their cached encodings, idempotency keys |
//! | `pushgate_history_max_bytes` | gauge | the budget it is kept within (`--history-max-bytes`) |
//! | `pushgate_history_evicted_total` | counter | events evicted, oldest first across topics, to keep within it |
//! | `pushgate_events_replayed_total` | counter | publishes whose idempotency key was seen before: answered with the original event, nothing published |
//! | `pushgate_history_tier_reads_total` | counter | reads of history past memory (the Redis log, the sources' outboxes) before a reset |
//! | `pushgate_history_tier_events_total` | counter | events those reads delivered |
//! | `pushgate_history_tier_failures_total` | counter | those reads that failed or timed out, answered with the reset memory alone gives |
//! | `pushgate_connections_open` | gauge | connections being served |
//! | `pushgate_connections_accepted_total` | counter | connections accepted, over-limit ones included |
//! | `pushgate_draining` | gauge | 1 once shutdown began |
//! | `pushgate_source_live{url}` | gauge | 1 when the source (URL, password hidden) is live, else 0 |
//! | `pushgate_source_leader{source}` | gauge | 1 when this node holds the source's lease and tails it, else 0 (standing by, or not connected): across the nodes running a source, exactly one shows 1 |
//! | `pushgate_subscriptions{transport}` | gauge | live readers per transport: SSE streams and subscribed WebSockets (one each), parked long polls |
//! | `pushgate_fetches_total{transport}` | counter | poll and long-poll answers (`poll`, `longpoll`) |
//! | `pushgate_delivery_latency_seconds{transport}` | histogram | publish timestamp to hand-over to a reader, per event delivered |
//! | `pushgate_refused_total{reason}` | counter | refusals by a limit; see below |
//! | `pushgate_redis_connected` | gauge | with `--redis`: 1 while connected and following the log, else 0 |
//! | `pushgate_redis_applied_position` | gauge | with `--redis`: the newest log position this node applied |
//! | `pushgate_redis_waiting_for_replicas` | gauge | with `--redis-min-replicas-ack`: 1 while fewer replicas confirm the log than required (nothing new is delivered, publishes fail), else 0 |
//!
//! Per transport: an SSE stream or a WebSocket with topics holds one subscription, so
//! `pushgate_subscriptions` is also their connection count (a WebSocket that follows no topic
//! is not in it); a long poll counts while it is parked. Short polls hold nothing between
//! requests; `pushgate_fetches_total{transport="poll"}` counts them instead. The values come
//! from the hub's per-label counters ([`Hub::stats_by_label`]), kept as it goes, so a scrape
//! walks no topics. Transports appear once first used.
//!
//! Delivery latency is measured from the event's publish timestamp (whole milliseconds of the
//! publishing node's clock) to its hand-over to the transport's reader, before it is written to
//! the socket; buckets run from 1 ms to 10 s. Replayed history counts with its age.
//!
//! Refusal reasons (`pushgate_refused_total{reason}`), each listed from the start at 0:
//! `connections` (over `--max-connections`, 503 `overloaded`), `connections_per_ip` (over
//! `--max-connections-per-ip`, 429 `too_many_connections_from_ip`), `rate_limited` (a publish
//! over its client address's `--publish-rate`, 429 or a WebSocket error frame), `too_many_topics` (a subscription
//! or poll over `--max-topics-per-subscription`, 400 or an error frame), `message_too_large`
//! (a publish body over `--max-body-bytes` or event data over the hub's limit, 413; a WebSocket
//! message over `--ws-max-message-bytes`, close 1009), `unauthorized` (no valid token where one
//! is needed: 401, a WebSocket error frame or close 4401/4408), `topic_forbidden` (403 or an
//! error frame), `origin_forbidden` (a WebSocket upgrade from a page not allowed, 403).

mod format;

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
use pushgate_http::Refusal;
use pushgate_hub::{Hub, LATENCY_BUCKETS, LabelStats};
use pushgate_redis::RedisState;
use serde_json::json;

use crate::api::json_response;
use crate::server::ServerStatus;
use crate::sources::Sources;

/// What `/metrics` and `/readyz` read.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub(crate) hub: Hub,
    pub(crate) sources: Sources,
    pub(crate) server: Arc<ServerStatus>,
    /// The Redis storage's state, when the hub runs on one.
    pub(crate) redis: Option<RedisState>,
}

/// `GET /metrics`, in the format the scraper's `Accept` asks for.
pub(crate) async fn metrics(State(observed): State<Observed>, headers: HeaderMap) -> Response {
    match render(&observed) {
        Ok(text) => {
            let (text, content_type) = if format::wants_openmetrics(&headers) {
                (text, format::OPENMETRICS)
            } else {
                (format::to_prometheus_text(&text), format::PROMETHEUS_TEXT)
            };
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The metrics as text.
fn render(observed: &Observed) -> Result<String, std::fmt::Error> {
    let stats = observed.hub.stats();
    let mut registry = Registry::with_prefix("pushgate");
    register(&mut registry, "events_published", "Events published into the hub", counter(stats.published));
    register(
        &mut registry,
        "events_delivered",
        "Event deliveries, one per event per reader",
        counter(stats.delivered),
    );
    register(&mut registry, "subscribers_lagged", "Subscribers cut off for lagging", counter(stats.lagged));
    register(&mut registry, "resets", "Resets reported to subscriptions and fetches", counter(stats.resets));
    register(&mut registry, "subscribers", "Live subscriptions", gauge(stats.subscribers));
    register(
        &mut registry,
        "topics",
        "Topics the hub holds (published to, not forgotten yet)",
        gauge(stats.topics),
    );
    register(
        &mut registry,
        "history_bytes",
        "Memory the retained history holds: events, their cached encodings, idempotency keys",
        gauge(stats.history_bytes),
    );
    register(
        &mut registry,
        "history_max_bytes",
        "The memory budget of the retained history (--history-max-bytes)",
        gauge(stats.history_max_bytes),
    );
    register(
        &mut registry,
        "history_evicted",
        "Events evicted, oldest first across topics, to keep history within its budget",
        counter(stats.history_evicted),
    );
    register(
        &mut registry,
        "events_replayed",
        "Publishes whose idempotency key was seen before: answered with the original event, nothing published",
        counter(stats.replayed),
    );
    register(
        &mut registry,
        "history_tier_reads",
        "Reads of history past memory (the Redis log, the sources' outboxes) before a reset",
        counter(stats.tier_reads),
    );
    register(
        &mut registry,
        "history_tier_events",
        "Events read from history past memory",
        counter(stats.tier_events),
    );
    register(
        &mut registry,
        "history_tier_failures",
        "Reads of history past memory that failed or timed out (the reader got the reset memory alone gives)",
        counter(stats.tier_failures),
    );
    let server = &observed.server;
    register(&mut registry, "connections_open", "Connections being served", gauge(server.open_connections()));
    register(
        &mut registry,
        "connections_accepted",
        "Connections accepted, over-limit ones included",
        counter(server.accepted_connections()),
    );
    register(&mut registry, "draining", "1 once shutdown began", gauge(u64::from(server.is_draining())));
    let sources = Family::<Vec<(String, String)>, Gauge>::default();
    for (url, state) in observed.sources.states() {
        sources.get_or_create(&vec![("url".to_owned(), url)]).set(i64::from(state.is_live()));
    }
    register(&mut registry, "source_live", "1 when the database source is live, else 0", sources);
    let leaders = Family::<Vec<(String, String)>, Gauge>::default();
    for (url, state) in observed.sources.states() {
        leaders.get_or_create(&vec![("source".to_owned(), url)]).set(i64::from(state.is_live()));
    }
    register(
        &mut registry,
        "source_leader",
        "1 when this node holds the database source's lease and tails it, else 0",
        leaders,
    );
    let by_label = observed.hub.stats_by_label();
    let subscriptions = labelled::<Gauge>("transport", &by_label, |s, g| {
        g.set(i64::try_from(s.live).unwrap_or(i64::MAX));
    });
    register(
        &mut registry,
        "subscriptions",
        "Live readers per transport: SSE streams, subscribed WebSockets, parked long polls",
        subscriptions,
    );
    let fetches = labelled::<Counter>("transport", &by_label, |s, c| {
        c.inc_by(s.fetches);
    });
    register(&mut registry, "fetches", "Poll and long-poll answers per transport", fetches);
    register(
        &mut registry,
        "delivery_latency_seconds",
        "Time from an event's publish timestamp to its hand-over to a reader, per transport",
        LatencyHistograms(by_label),
    );
    let refused = Family::<Vec<(String, String)>, Counter>::default();
    let server_refusals = observed.server.refusals();
    for reason in Refusal::ALL {
        let from_hub = match reason {
            Refusal::TooManyTopics => stats.refused_too_many_topics,
            Refusal::MessageTooLarge => stats.refused_data_too_large,
            _ => 0,
        };
        let count = server_refusals.get(reason) + from_hub;
        refused.get_or_create(&vec![("reason".to_owned(), reason.as_str().to_owned())]).inc_by(count);
    }
    register(&mut registry, "refused", "Connections and requests refused by a limit, per reason", refused);
    if let Some(redis) = &observed.redis {
        register_redis(&mut registry, redis);
    }
    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

/// A family with one member per label of `stats`, filled by `set`.
fn labelled<M: Default + Clone + prometheus_client::metrics::TypedMetric + EncodeMetric>(
    name: &str,
    stats: &[LabelStats],
    set: impl Fn(&LabelStats, &M),
) -> Family<Vec<(String, String)>, M> {
    let family = Family::<Vec<(String, String)>, M>::default();
    for s in stats {
        set(s, &family.get_or_create(&vec![(name.to_owned(), s.label.clone())]));
    }
    family
}

/// The hub's latency histograms, one per transport. `prometheus-client`'s own histogram
/// takes observations one by one; these arrive already bucketed from the hub.
#[derive(Debug)]
struct LatencyHistograms(Vec<LabelStats>);

impl EncodeMetric for LatencyHistograms {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        for stats in &self.0 {
            let labels = vec![("transport".to_owned(), stats.label.clone())];
            let latency = &stats.latency;
            let bounds = LATENCY_BUCKETS.iter().copied().chain(std::iter::once(f64::INFINITY));
            let buckets: Vec<(f64, u64)> = bounds.zip(latency.counts.iter().copied()).collect();
            encoder.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                latency.sum_seconds,
                latency.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn register_redis(registry: &mut Registry, redis: &RedisState) {
    let connected = gauge(u64::from(redis.connected()));
    register(
        registry,
        "redis_connected",
        "1 while connected to Redis and following its log, else 0",
        connected,
    );
    let applied = gauge(redis.applied_position());
    register(registry, "redis_applied_position", "The newest Redis log position this node applied", applied);
    let waiting = gauge(u64::from(redis.waiting_for_replicas()));
    register(
        registry,
        "redis_waiting_for_replicas",
        "1 while fewer Redis replicas confirm the log than --redis-min-replicas-ack requires, else 0",
        waiting,
    );
}

fn register(registry: &mut Registry, name: &str, help: &str, metric: impl Metric) {
    registry.register(name, help, metric);
}

fn counter(value: u64) -> Counter {
    let counter = Counter::default();
    counter.inc_by(value);
    counter
}

fn gauge(value: u64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    gauge
}

/// `GET /readyz`: `200 {"ready":true}` when every source is live or standing by (another node
/// leads it: this one serves all the same), Redis (if used) is connected and the server is not
/// draining; else `503 {"ready":false,"reasons":[…]}`, one sentence per reason. With Redis the
/// body also has `"redis":{"connected","error"}`.
pub(crate) async fn readyz(State(observed): State<Observed>) -> Response {
    let mut reasons = Vec::new();
    if observed.server.is_draining() {
        reasons.push("draining: shutdown began".to_owned());
    }
    for (url, state) in observed.sources.states() {
        if !state.is_ready() {
            reasons.push(format!("source {url} is {state}"));
        }
    }
    if let Some(redis) = &observed.redis {
        if let Some(fatal) = redis.fatal() {
            reasons.push(format!("redis: {fatal}"));
        } else if !redis.connected() {
            let error = redis.last_error().unwrap_or_else(|| "not connected yet".to_owned());
            reasons.push(format!("redis is disconnected: {error}"));
        }
    }
    let (status, mut body) = if reasons.is_empty() {
        (StatusCode::OK, json!({ "ready": true }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, json!({ "ready": false, "reasons": reasons }))
    };
    if let Some(redis) = &observed.redis {
        let connected = redis.connected();
        let error = if connected { None } else { redis.fatal().or_else(|| redis.last_error()) };
        body["redis"] = json!({ "connected": connected, "error": error });
    }
    let mut response = json_response(status, body.to_string());
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
