//! The wait for a first token: under an enforced policy a connection that neither sends an
//! `auth` frame nor subscribes to an anonymous topic within the auth timeout is closed with
//! 4408; one that does stays. (Tokens, refresh and expiry over every transport are tested
//! against the gateway, in `crates/pushgate/tests/it/auth.rs`.)

#![allow(clippy::unwrap_used)] // tests may panic

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use pushgate_auth::AccessPolicy;
use pushgate_hub::Hub;
use pushgate_ws::WsConfig;
use serde_json::json;
use support::{close_code, connect, next_json, send, serve};

fn config() -> WsConfig {
    let auth = AccessPolicy::builder()
        .hmac_secret("secret")
        .unwrap()
        .anonymous_subscribe(["public".parse().unwrap()])
        .build()
        .unwrap();
    WsConfig::default().authorize(Arc::new(auth)).auth_timeout(Duration::from_millis(300))
}

#[tokio::test]
async fn a_connection_without_a_token_is_closed_4408_after_the_auth_timeout() {
    let hub = Hub::new();
    let addr = serve(&hub, config()).await;
    let mut silent = connect(addr, "").await;
    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut silent).await, Some(4408));
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());

    // A forbidden subscribe does not count as subscribing.
    let mut refused = connect(addr, "").await;
    send(&mut refused, json!({"type": "subscribe", "topics": ["private"]})).await;
    assert_eq!(next_json(&mut refused).await["error"]["code"], "token_required");
    assert_eq!(close_code(&mut refused).await, Some(4408));
}

#[tokio::test]
async fn an_anonymous_subscriber_or_a_policy_that_allows_all_needs_no_token() {
    let hub = Hub::new();
    let addr = serve(&hub, config()).await;
    let mut anonymous = connect(addr, "").await;
    send(&mut anonymous, json!({"type": "subscribe", "topics": ["public"]})).await;
    assert_eq!(next_json(&mut anonymous).await["type"], "subscribed");
    let open = serve(&hub, WsConfig::default().auth_timeout(Duration::from_millis(300))).await;
    let mut unpoliced = connect(open, "").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for client in [&mut anonymous, &mut unpoliced] {
        send(client, json!({"type": "ping", "id": 1})).await;
        assert_eq!(next_json(client).await, json!({"type": "pong", "id": 1}));
    }
}
