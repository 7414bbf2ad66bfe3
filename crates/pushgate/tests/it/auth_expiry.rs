//! A token that expires while its client long-polls: the client, polling as the browser client
//! does (a first poll with a zero wait, then each poll as soon as the last is answered), gets
//! `401 token_expired` within a few requests, never a stream of empty `200`s (thousands in the
//! second around the expiry, before the fix). Several clients at once, each on its own.

#![allow(clippy::expect_used)]

use crate::support;

use std::time::Duration;

use pushgate::{Config, Secret};
use pushgate_testkit::TestServer;
use serde_json::json;
use support::auth::{hs256, http, now};

const SECRET: &str = "integration-test secret, 32 bytes+";
const CLIENTS: usize = 8;

/// Long-polls `topic` with `token` until an answer is not `200`; returns how many requests
/// that took and the last answer's status and body.
async fn poll_until_refused(
    server: &TestServer,
    topic: &str,
    token: &str,
) -> anyhow::Result<(usize, u16, String)> {
    let client = http()?;
    let mut cursor = "now".to_owned();
    for requests in 1..=1000 {
        let wait = if requests == 1 { 0 } else { 25 };
        let url =
            server.url(&format!("/v1/longpoll?topic={topic}&cursor={cursor}&timeout={wait}&token={token}"));
        let response = client.get(url).send().await?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await?;
        if status != 200 {
            return Ok((requests, status, body["error"]["code"].as_str().unwrap_or_default().to_owned()));
        }
        cursor = body["cursor"].as_str().unwrap_or("now").to_owned();
    }
    anyhow::bail!("1000 answers of 200 for a token that expires in two seconds")
}

#[tokio::test]
async fn a_long_polling_client_whose_token_expires_gets_401_within_a_few_requests() -> anyhow::Result<()> {
    let config = Config::default().with_jwt_secret(Some(Secret::new(SECRET))).with_jwt_leeway(Duration::ZERO);
    let server = TestServer::start_with(config).await?;
    // `exp` is whole seconds: these expire at the next second boundary but one, 1 to 2 s away.
    let token = hs256(&json!({"exp": now() + 2, "sub": "42", "subscribe": ["user:42"]}), SECRET)?;
    let started = std::time::Instant::now();
    let clients = (0..CLIENTS).map(|_| poll_until_refused(&server, "user:42", &token));
    for outcome in futures_util::future::join_all(clients).await {
        let (requests, status, code) = outcome?;
        assert_eq!((status, code.as_str()), (401, "token_expired"));
        assert!(requests < 5, "{requests} requests before the 401");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn a_short_poll_with_an_expired_token_is_refused_at_once() -> anyhow::Result<()> {
    let config = Config::default().with_jwt_secret(Some(Secret::new(SECRET))).with_jwt_leeway(Duration::ZERO);
    let server = TestServer::start_with(config).await?;
    let expired = hs256(&json!({"exp": now() - 1, "sub": "42", "subscribe": ["user:42"]}), SECRET)?;
    let response = http()?.get(server.url(&format!("/v1/poll?topic=user:42&token={expired}"))).send().await?;
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["error"]["code"], "token_expired");
    Ok(())
}
