//! The client against the real gateway (the testkit's `TestServer`), on every transport: it
//! resumes from its cursor, surfaces a reset as a value, and refreshes an expiring token.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use jsonwebtoken::{EncodingKey, Header, encode};
use pushgate::{Config, Secret};
use pushgate_client::protocol::{Cursor, Epoch, ResetReason};
use pushgate_client::{Backoff, Client, Item, SubscribeOptions, Subscription, Transport};
use pushgate_hub::{NewEvent, TopicName};
use pushgate_testkit::TestServer;
use serde_json::json;

const STEP: Duration = Duration::from_secs(10);
const SECRET: &str = "client-test secret, 32 bytes long+";

/// A client that polls briskly, so the short-poll tests take no longer than the others.
fn client(server: &TestServer) -> anyhow::Result<pushgate_client::ClientBuilder> {
    Ok(Client::builder(server.base_url())
        .poll_interval(Duration::from_millis(50))
        .backoff(Backoff { base: Duration::from_millis(50), max: Duration::from_millis(500) }))
}

async fn next(subscription: &mut Subscription) -> anyhow::Result<Item> {
    match tokio::time::timeout(STEP, subscription.next()).await {
        Err(_) => bail!("nothing within {STEP:?}"),
        Ok(None) => bail!("the subscription ended"),
        Ok(Some(item)) => Ok(item?),
    }
}

/// The next `n` items, which must be events: their `seq`s.
async fn seqs(subscription: &mut Subscription, n: usize) -> anyhow::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        match next(subscription).await? {
            Item::Event(event) => seqs.push(event.seq),
            other => bail!("expected an event, got {other:?}"),
        }
    }
    Ok(seqs)
}

/// Waits until the subscription is in place: a marker published until it arrives.
async fn settle(server: &TestServer, subscription: &mut Subscription, topic: &str) -> anyhow::Result<u64> {
    for _ in 0..50 {
        let published = server.hub().publish(&TopicName::new(topic)?, NewEvent::new(json!("marker"))).await?;
        if let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(300), subscription.next()).await {
            match item? {
                Item::Event(event) => return Ok(event.seq.max(published.seq())),
                other => bail!("expected the marker, got {other:?}"),
            }
        }
    }
    bail!("the subscription never started")
}

async fn resumes_from_its_cursor(transport: Transport) -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = client(&server)?.build()?;
    let options = SubscribeOptions::default().transport(transport);
    let mut first = client.subscribe(["orders"], options);
    let marker = settle(&server, &mut first, "orders").await?;
    for n in 1..=3 {
        let published =
            client.publish("orders", &json!({"n": n, "total": 12345678901234567890.5_f64})).send().await?;
        assert_eq!(published.topic, "orders");
    }
    assert_eq!(seqs(&mut first, 3).await?, [marker + 1, marker + 2, marker + 3]);
    let cursor = first.cursor().context("a cursor after three events")?;
    drop(first);

    // Published while nobody listens, then read from the cursor: exactly these, in order.
    for n in 4..=5 {
        client.publish("orders", &json!({"n": n})).send().await?;
    }
    let mut second = client.subscribe(["orders"], options.cursor(cursor));
    assert_eq!(seqs(&mut second, 2).await?, [marker + 4, marker + 5]);
    client.publish("orders", &json!({"n": 6})).send().await?;
    let Item::Event(event) = next(&mut second).await? else { bail!("an event") };
    assert_eq!((event.seq, event.data_as::<serde_json::Value>()?), (marker + 6, json!({"n": 6})));
    Ok(())
}

async fn surfaces_a_reset_as_a_value(transport: Transport) -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = client(&server)?.build()?;
    let topic = TopicName::new("orders")?;
    server.hub().publish(&topic, NewEvent::new(json!(1))).await?;
    // A cursor of another epoch: the server lost what it pointed into.
    let stale = Cursor::at(Epoch::from_u32(server.hub().epoch().as_u32() ^ 1), 1);
    let mut subscription =
        client.subscribe(["orders"], SubscribeOptions::default().transport(transport).cursor(stale));
    let Item::Reset(reset) = next(&mut subscription).await? else { bail!("a reset first") };
    assert_eq!(reset.reason, ResetReason::EpochChanged);
    assert_eq!(reset.topics.iter().map(|t| t.topic.as_str()).collect::<Vec<_>>(), ["orders"]);
    // What is retained follows, then live events, and the stream goes on.
    assert_eq!(seqs(&mut subscription, 1).await?, [1]);
    server.hub().publish(&topic, NewEvent::new(json!(2))).await?;
    assert_eq!(seqs(&mut subscription, 1).await?, [2]);
    Ok(())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn token(lifetime_secs: u64) -> anyhow::Result<String> {
    let claims = json!({"exp": now() + lifetime_secs, "sub": "bot", "subscribe": ["orders"]});
    Ok(encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())?)?)
}

async fn refreshes_an_expiring_token(transport: Transport) -> anyhow::Result<()> {
    let config = Config::default().with_jwt_secret(Some(Secret::new(SECRET))).with_jwt_leeway(Duration::ZERO);
    let server = TestServer::start_with(config).await?;
    let refreshes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&refreshes);
    let client = client(&server)?
        // Expires at the next second boundary but one: within two seconds.
        .token(token(2)?)
        .refresh_token(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { token(3600) }
        })
        .long_poll_wait(Duration::from_secs(5))
        .build()?;
    let mut subscription = client.subscribe(["orders"], SubscribeOptions::default().transport(transport));
    let marker = settle(&server, &mut subscription, "orders").await?;
    let topic = TopicName::new("orders")?;
    // Events before, across and after the expiry: every one arrives, once, in order.
    let mut expected = Vec::new();
    for _ in 0..8 {
        expected.push(server.hub().publish(&topic, NewEvent::new(json!("tick"))).await?.seq());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(expected.first(), Some(&(marker + 1)));
    assert_eq!(seqs(&mut subscription, expected.len()).await?, expected);
    assert!(refreshes.load(Ordering::SeqCst) >= 1, "the token expired during the test, so it was refreshed");
    Ok(())
}

#[tokio::test]
async fn without_a_refresh_callback_an_expired_token_ends_the_subscription() -> anyhow::Result<()> {
    let config = Config::default().with_jwt_secret(Some(Secret::new(SECRET))).with_jwt_leeway(Duration::ZERO);
    let server = TestServer::start_with(config).await?;
    let client = client(&server)?.token(token(0)?).build()?;
    let mut subscription =
        client.subscribe(["orders"], SubscribeOptions::default().transport(Transport::Sse));
    let ended = tokio::time::timeout(STEP, subscription.next()).await?.context("an item")?;
    let err = ended.expect_err("an expired token is refused");
    assert_eq!(err.code(), Some(pushgate_client::protocol::ErrorCode::TokenExpired), "{err}");
    assert!(tokio::time::timeout(STEP, subscription.next()).await?.is_none(), "and then the stream ends");
    Ok(())
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_answered_as_replayed() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = Client::new(server.base_url())?;
    let first = client.publish("orders", &json!(1)).idempotency_key("order-1").send().await?;
    let again = client.publish("orders", &json!(1)).idempotency_key("order-1").send().await?;
    assert!(!first.replayed && again.replayed);
    assert_eq!((again.seq, again.id), (first.seq, first.id));
    let refused = client.publish("no spaces", &json!(1)).send().await.expect_err("a bad topic");
    assert_eq!(refused.code(), Some(pushgate_client::protocol::ErrorCode::InvalidTopic), "{refused}");
    Ok(())
}

macro_rules! on_every_transport {
    ($($name:ident: $transport:expr;)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn resumes_from_its_cursor() -> anyhow::Result<()> {
                super::resumes_from_its_cursor($transport).await
            }

            #[tokio::test]
            async fn surfaces_a_reset_as_a_value() -> anyhow::Result<()> {
                super::surfaces_a_reset_as_a_value($transport).await
            }

            #[tokio::test]
            async fn refreshes_an_expiring_token() -> anyhow::Result<()> {
                super::refreshes_an_expiring_token($transport).await
            }
        }
    )*};
}

on_every_transport! {
    websocket: Transport::WebSocket;
    sse: Transport::Sse;
    long_poll: Transport::LongPoll;
    poll: Transport::Poll;
}
