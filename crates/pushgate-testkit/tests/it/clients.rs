//! The testkit's own clients behave as documented (what the conformance suite relies on).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::ensure;
use pushgate_testkit::{Delivery, TestServer, Transport};

/// An idle short-poll feed keeps polling, revalidating with `If-None-Match`: the server answers
/// `304` without a body, so requests grow while received bytes do not.
#[tokio::test]
async fn idle_short_poll_revalidates_with_etag() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let client = Transport::Poll.client()?;
    let mut feed = client.connect(&server, &["quiet"], None).await?;
    ensure!(client.traffic().requests() == 1, "after connect: {}", client.traffic());
    ensure!(feed.cursor().is_some_and(|c| c != "now"), "the first poll gave the cursor {:?}", feed.cursor());

    // The first poll asked from `now`, the second from the cursor it answered: a new URL, so a
    // full answer whose ETag the polls after it send back.
    ensure!(feed.next(Duration::from_millis(200)).await?.is_none(), "an idle topic delivered something");
    let (requests, bytes) = (client.traffic().requests(), client.traffic().bytes());
    ensure!(feed.next(Duration::from_millis(400)).await?.is_none(), "an idle topic delivered something");
    let traffic = client.traffic();
    ensure!(traffic.requests() >= requests + 3, "an idle poll feed did not keep polling: {traffic}");
    ensure!(traffic.bytes() == bytes, "idle polls carried bodies (no 304 for the ETag?): {traffic}");

    let published = server.publish("quiet", serde_json::json!("wake")).await?;
    let Some(Delivery::Event(event)) = feed.next(Duration::from_secs(5)).await? else {
        anyhow::bail!("the event after the idle period did not arrive");
    };
    ensure!(event["id"] == published.id.as_str(), "got {event}");
    Ok(())
}
