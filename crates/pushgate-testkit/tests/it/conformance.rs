//! The conformance suite: what docs/protocol.md promises on every transport, checked over real
//! sockets against a real gateway.
//!
//! Each test is an `async fn name(subscriber: Subscriber, path: ServerPath) -> anyhow::Result<()>`
//! written once; `conformance!(poll, longpoll, sse, ws)` instantiates every test of the list in
//! `suite!` once per transport and per server path (the gateway's keep-alive loop in front, as
//! by default, or every request on hyper), as `<transport>::<path>::<test>` (`cargo test -p
//! pushgate-testkit sse::` runs one transport, `cargo test -p pushgate-testkit hyper::` one
//! path, `cargo test -p pushgate-testkit resume` one test everywhere). Adding a test means
//! writing the function and adding its name to `suite!`. The tests of `rust_client_suite!` also
//! run through the Rust client (`pushgate-client`) on each transport, as
//! `<transport>::rust_client::keep_alive_loop::<test>`.
//!
//! Every wait is bounded ([`WAIT`]), so a transport that does not deliver fails in seconds with
//! what it did instead. Real time, not tokio's paused clock: client and server talk over real
//! sockets, and a paused clock would jump past those timeouts while the runtime waits on I/O.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use pushgate_testkit::{
    Delivery, Feed, Published, Rejected, RustClient, TestServer, Transport, TransportClient,
};
use serde_json::{Value, json};

/// The longest any single expectation waits.
const WAIT: Duration = Duration::from_secs(5);

/// One `#[tokio::test]` per test, for the transport named by the enclosing module and the
/// server path `$path`. Adding a test means adding its name here.
macro_rules! suite {
    ($path:expr) => {
        instantiate!(
            $path;
            receive_exact_event_object,
            resume_from_last_cursor,
            stale_cursor_resets_then_replays,
            multi_topic_in_publish_order,
            bad_input_is_a_400_with_json_error,
            shutdown_ends_the_feed,
        );
    };
}

/// The tests that hold for the Rust client too: the others check what a raw transport does on
/// refusals and shutdowns, which the client answers by reconnecting (its own tests cover that).
macro_rules! rust_client_suite {
    ($path:expr) => {
        instantiate!(
            $path;
            receive_exact_event_object,
            resume_from_last_cursor,
            stale_cursor_resets_then_replays,
            multi_topic_in_publish_order,
        );
    };
}

macro_rules! instantiate {
    ($path:expr; $($test:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $test() -> anyhow::Result<()> {
            crate::conformance::$test(super::subscriber(), $path).await
        }
    )+};
}

/// A module per transport holding the whole suite once per server path.
macro_rules! conformance {
    ($($transport:ident),+ $(,)?) => {$(
        mod $transport {
            fn transport() -> pushgate_testkit::Transport {
                stringify!($transport).parse().expect("a transport name")
            }

            fn subscriber() -> crate::conformance::Subscriber {
                crate::conformance::Subscriber { transport: transport(), rust_client: false }
            }

            mod keep_alive_loop {
                suite!(crate::conformance::ServerPath::KeepAliveLoop);
            }

            mod hyper {
                suite!(crate::conformance::ServerPath::Hyper);
            }

            /// The same tests through `pushgate-client`.
            mod rust_client {
                fn subscriber() -> crate::conformance::Subscriber {
                    crate::conformance::Subscriber { transport: super::transport(), rust_client: true }
                }

                mod keep_alive_loop {
                    rust_client_suite!(crate::conformance::ServerPath::KeepAliveLoop);
                }
            }
        }
    )+};
}

conformance!(poll, longpoll, sse, ws);

/// Who subscribes: the testkit's raw client of a transport, or the Rust client over it.
#[derive(Debug, Clone, Copy)]
struct Subscriber {
    transport: Transport,
    rust_client: bool,
}

impl Subscriber {
    fn client(self) -> anyhow::Result<Box<dyn TransportClient>> {
        if self.rust_client { Ok(Box::new(RustClient::new(self.transport))) } else { self.transport.client() }
    }
}

impl std::fmt::Display for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rust_client {
            write!(f, "{} (Rust client)", self.transport)
        } else {
            write!(f, "{}", self.transport)
        }
    }
}

/// How the gateway under test serves HTTP: polls, long polls and SSE streams in its own
/// keep-alive loop (the default), or every request on hyper (`Config::keep_alive_loop` off).
/// Both must keep the same promises.
#[derive(Debug, Clone, Copy)]
enum ServerPath {
    KeepAliveLoop,
    Hyper,
}

impl ServerPath {
    /// A gateway serving this way.
    async fn start(self) -> anyhow::Result<TestServer> {
        let loop_on = matches!(self, Self::KeepAliveLoop);
        TestServer::start_with(pushgate::Config::default().with_no_keep_alive_loop(!loop_on)).await
    }
}

// ---------------------------------------------------------------------------------------------
// The tests, each for any transport.

/// (a) An event published over HTTP arrives as exactly the event object.
async fn receive_exact_event_object(subscriber: Subscriber, path: ServerPath) -> anyhow::Result<()> {
    let server = path.start().await?;
    let mut feed = connect(subscriber, &server, &["chat"], None).await?;

    let typed = json!({"text": "hé \"quoted\"\nsecond line", "n": [1, 2.5, true, null], "nested": {}});
    let before = now_ms();
    let first = server.publish_as("chat", "greeting", typed.clone()).await?;
    let second = server.publish("chat", Value::Null).await?;
    let window = before..=now_ms();

    let got = next_event(&mut *feed).await?;
    check_event(&got, &first, "greeting", &typed, &window)?;
    let got = next_event(&mut *feed).await?;
    check_event(&got, &second, "message", &Value::Null, &window)?;
    ensure!(second.seq == first.seq + 1, "publish answered seq {} then {}", first.seq, second.seq);
    ensure!(
        feed.cursor() == Some(second.id.as_str()),
        "after the last event the feed's cursor is {:?}, expected its id {:?}",
        feed.cursor(),
        second.id
    );
    Ok(())
}

/// (b) Disconnect after one event, miss five, reconnect with the last cursor: exactly those five,
/// in order, once.
async fn resume_from_last_cursor(subscriber: Subscriber, path: ServerPath) -> anyhow::Result<()> {
    let server = path.start().await?;
    let mut feed = connect(subscriber, &server, &["orders"], None).await?;
    let seen = server.publish("orders", json!({"n": 0})).await?;
    expect_exactly(&mut *feed, std::slice::from_ref(&seen)).await?;
    let cursor = feed.cursor().context("the feed has no cursor after an event")?.to_owned();
    drop(feed);

    let mut missed = Vec::new();
    for n in 1..=5 {
        missed.push(server.publish("orders", json!({ "n": n })).await?);
    }
    let mut feed = connect(subscriber, &server, &["orders"], Some(&cursor)).await?;
    expect_exactly(&mut *feed, &missed).await.context("replaying the five missed events")?;
    // A duplicate or an extra event would arrive before this one.
    let live = server.publish("orders", json!({"n": 6})).await?;
    expect_exactly(&mut *feed, &[live]).await.context("the first live event after the replay")?;
    Ok(())
}

/// (c) A cursor from another server (another epoch) gets a reset first, then the retained events.
async fn stale_cursor_resets_then_replays(subscriber: Subscriber, path: ServerPath) -> anyhow::Result<()> {
    let stale = {
        let other = path.start().await?;
        other.publish("news", json!("from another epoch")).await?.id
    };
    let server = path.start().await?;
    let mut retained = Vec::new();
    for n in 1..=3 {
        retained.push(server.publish("news", json!({ "n": n })).await?);
    }

    let mut feed = connect(subscriber, &server, &["news"], Some(&stale)).await?;
    let expected = json!({
        "reason": "epoch_changed",
        "topics": [{"topic": "news", "missed": {"at_least": 0, "at_most": null}, "resume_seq": 1}],
    });
    match next(&mut *feed).await.context("waiting for the reset")? {
        Delivery::Reset(reset) => ensure!(reset == expected, "reset {reset}, expected {expected}"),
        Delivery::Event(event) => bail!("expected a reset first, got the event {event}"),
    }
    expect_exactly(&mut *feed, &retained).await.context("the retained events after the reset")?;
    let live = server.publish("news", json!({"n": 4})).await?;
    expect_exactly(&mut *feed, &[live]).await.context("the first live event after the replay")?;
    Ok(())
}

/// (d) Two topics arrive interleaved in publish order; a third, unsubscribed topic never does.
async fn multi_topic_in_publish_order(subscriber: Subscriber, path: ServerPath) -> anyhow::Result<()> {
    let server = path.start().await?;
    let mut feed = connect(subscriber, &server, &["alpha", "beta"], None).await?;
    let plan = ["alpha", "gamma", "beta", "alpha", "gamma", "beta", "beta", "alpha", "gamma", "beta"];
    let mut expected = Vec::new();
    for (n, topic) in plan.iter().enumerate() {
        let published = server.publish(topic, json!({ "n": n })).await?;
        if *topic != "gamma" {
            expected.push(published);
        }
    }
    // The plan ends on a subscribed topic, so a leaked `gamma` event would arrive before it.
    expect_exactly(&mut *feed, &expected).await
}

/// (e) A malformed cursor and an invalid topic are refused with 400 and `{"error":{"code","message"}}`
/// (on WebSocket: before the upgrade).
async fn bad_input_is_a_400_with_json_error(subscriber: Subscriber, path: ServerPath) -> anyhow::Result<()> {
    let server = path.start().await?;
    let cases: [(&[&str], Option<&str>, &str); 2] =
        [(&["fine"], Some("not-a-cursor"), "invalid_cursor"), (&["not a topic!"], None, "invalid_topic")];
    for (topics, cursor, code) in cases {
        let case = format!("topics {topics:?}, cursor {cursor:?}");
        let rejected = match subscriber.client()?.connect(&server, topics, cursor).await {
            Ok(mut feed) => match feed.next(WAIT).await {
                Ok(delivery) => bail!("{case}: accepted, then delivered {delivery:?}"),
                Err(error) => bail!("{case}: accepted, then failed: {error:#}"),
            },
            Err(error) => match error.downcast::<Rejected>() {
                Ok(rejected) => rejected,
                Err(error) => bail!("{case}: failed without an HTTP error answer: {error:#}"),
            },
        };
        check_error(&rejected, 400, code).with_context(|| case.clone())?;
    }
    Ok(())
}

/// Shutting the server down ends a live feed promptly, whatever it was doing.
async fn shutdown_ends_the_feed(subscriber: Subscriber, path: ServerPath) -> anyhow::Result<()> {
    let server = path.start().await?;
    let mut feed = connect(subscriber, &server, &["bye"], None).await?;
    let stopped = server.shutdown().await;
    let ended = match feed.next(WAIT).await {
        Err(_) => Ok(()),
        Ok(None) => Err(anyhow::anyhow!("the feed was still open {WAIT:?} after shutdown")),
        Ok(Some(delivery)) => Err(anyhow::anyhow!("the feed delivered {delivery:?} after shutdown")),
    };
    match (stopped, ended) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(stop), Ok(())) => Err(stop),
        (Ok(()), Err(end)) => Err(end),
        (Err(stop), Err(end)) => Err(end.context(format!("and the server did not stop: {stop:#}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Across transports.

/// (f) One publish reaches a subscriber of every transport as the same JSON value.
#[tokio::test]
async fn same_event_object_on_every_transport() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let mut clients = Vec::new();
    let mut feeds = Vec::new();
    for transport in Transport::ALL {
        let client = transport.client()?;
        feeds.push(client.connect(&server, &["same"], None).await.context(transport)?);
        clients.push(client);
    }
    let data = json!({"text": "one for all", "list": [1, "two", {"three": 3.5}]});
    let before = now_ms();
    let published = server.publish_as("same", "note", data.clone()).await?;
    let window = before..=now_ms();

    let mut problems = Vec::new();
    let mut values = Vec::new();
    for feed in &mut feeds {
        match next_event(&mut **feed).await {
            Ok(event) => {
                if let Err(error) = check_event(&event, &published, "note", &data, &window) {
                    problems.push(format!("{error:#}"));
                }
                values.push((feed.transport(), event));
            }
            Err(error) => problems.push(format!("{error:#}")),
        }
    }
    if let Some((first_transport, first)) = values.first() {
        for (transport, value) in &values[1..] {
            if value != first {
                problems.push(format!("{transport} delivered {value}, but {first_transport} {first}"));
            }
        }
    }
    // Every client counted at least its subscribe request and the event's bytes.
    let event_len = values.first().map_or(0, |(_, event)| event.to_string().len());
    for client in &clients {
        let traffic = client.traffic();
        if traffic.requests() == 0 || traffic.bytes() < u64::try_from(event_len)? {
            problems.push(format!("{}: implausible traffic counters: {traffic}", client.transport()));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers.

async fn connect(
    subscriber: Subscriber,
    server: &TestServer,
    topics: &[&str],
    cursor: Option<&str>,
) -> anyhow::Result<Box<dyn Feed>> {
    let client = subscriber.client()?;
    client
        .connect(server, topics, cursor)
        .await
        .with_context(|| format!("{subscriber}: subscribing to {topics:?} from {cursor:?}"))
}

/// The next delivery, failing after [`WAIT`].
async fn next(feed: &mut dyn Feed) -> anyhow::Result<Delivery> {
    let transport = feed.transport();
    match feed.next(WAIT).await.with_context(|| format!("{transport}: the feed failed"))? {
        Some(delivery) => Ok(delivery),
        None => bail!("{transport}: nothing arrived within {WAIT:?}"),
    }
}

/// The next delivery, which must be an event.
async fn next_event(feed: &mut dyn Feed) -> anyhow::Result<Value> {
    match next(feed).await? {
        Delivery::Event(event) => Ok(event),
        Delivery::Reset(reset) => bail!("{}: expected an event, got the reset {reset}", feed.transport()),
    }
}

/// The next events are exactly `expected`, in order (matched by topic, seq and id).
async fn expect_exactly(feed: &mut dyn Feed, expected: &[Published]) -> anyhow::Result<()> {
    for (i, want) in expected.iter().enumerate() {
        let got = next_event(feed).await.with_context(|| format!("waiting for event {i} ({want:?})"))?;
        let same =
            got["topic"] == want.topic.as_str() && got["seq"] == want.seq && got["id"] == want.id.as_str();
        ensure!(same, "{}: event {i} is {got}, expected {want:?}", feed.transport());
    }
    Ok(())
}

/// `event` is exactly the event object of `published`, with a plausible timestamp.
fn check_event(
    event: &Value,
    published: &Published,
    event_type: &str,
    data: &Value,
    window: &RangeInclusive<u64>,
) -> anyhow::Result<()> {
    let ts = event["ts"].as_u64().with_context(|| format!("`ts` is not a whole number in {event}"))?;
    // Clocks are read on both sides of the publish; allow a second for rounding and skew.
    ensure!(
        ts.saturating_add(1000) >= *window.start() && ts <= window.end().saturating_add(1000),
        "ts {ts} is outside the publish window {window:?}"
    );
    let expected = json!({
        "topic": published.topic,
        "seq": published.seq,
        "id": published.id,
        "event": event_type,
        "data": data,
        "ts": ts,
    });
    ensure!(*event == expected, "event object {event}, expected {expected}");
    Ok(())
}

/// `rejected` is `status` with the protocol's error body carrying `code`.
fn check_error(rejected: &Rejected, status: u16, code: &str) -> anyhow::Result<()> {
    ensure!(rejected.status == status, "status {}, expected {status}: {rejected}", rejected.status);
    let media_type = rejected.content_type.as_deref().unwrap_or_default();
    ensure!(media_type.starts_with("application/json"), "Content-Type {media_type:?}: {rejected}");
    let body = rejected.json().with_context(|| format!("the body is not JSON: {rejected}"))?;
    let error = body.get("error").and_then(Value::as_object).context("no `error` object")?;
    let keys = |v: &serde_json::Map<String, Value>| v.keys().cloned().collect::<Vec<_>>();
    ensure!(body.as_object().map(keys) == Some(vec!["error".to_owned()]), "body {body}");
    ensure!(keys(error) == ["code", "message"], "error object {body}");
    ensure!(error["code"] == code, "code {}, expected {code:?}", error["code"]);
    let message = error["message"].as_str().unwrap_or_default();
    ensure!(!message.is_empty(), "no human-readable `message` in {body}");
    Ok(())
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
