//! Auth, the WebSocket `Origin` check and CORS, over real sockets against the gateway served by
//! `serve_on` with auth configured: every transport allows a valid token and refuses forged,
//! expired, `alg: none`, missing and wrong-topic tokens with the documented codes; streams end
//! when their token expires (SSE `token_expired`, WebSocket close 4401) unless refreshed in-band
//! (WebSocket `auth` frame); the publish API takes the admin key, a JWT publish claim or an
//! anonymous pattern, and nothing else.

#![allow(clippy::expect_used)] // minting a test token cannot fail; tests may panic

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt as _, StreamExt as _};
use jsonwebtoken::{EncodingKey, Header, encode};
use pushgate::{Config, Secret};
use pushgate_testkit::TestServer;
use serde_json::{Value, json};
use support::auth::Binary;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &str = "integration-test secret, 32 bytes+";
const ADMIN_KEY: &str = "admin-key-for-servers";
/// Every await in these tests is bounded by this.
const STEP: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A gateway to talk to: the testkit's on port 0 (dropping it stops the server), or a binary
/// run separately (no server held).
struct Gateway {
    addr: SocketAddr,
    _server: Option<TestServer>,
}

async fn start(config: Config) -> anyhow::Result<Gateway> {
    let server = TestServer::start_with(config).await?;
    Ok(Gateway { addr: server.addr(), _server: Some(server) })
}

/// Auth on: tokens signed with [`SECRET`], the admin key, `public.*` open to anonymous
/// subscribers and `guestbook` to anonymous publishers; no leeway, so expiry is exact.
fn auth_config() -> Config {
    Config::default()
        .with_jwt_secret(Some(Secret::new(SECRET)))
        .with_admin_key(Some(Secret::new(ADMIN_KEY)))
        .with_jwt_leeway(Duration::ZERO)
        .with_anonymous_subscribe(vec!["public.*".into()])
        .with_anonymous_publish(vec!["guestbook".into()])
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn sign(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).expect("a secret");
    encode(&Header::default(), claims, &key).expect("a token")
}

/// User 42's claims, expiring `secs` from now.
fn claims(secs: u64) -> Value {
    json!({"exp": now() + secs, "sub": "42", "subscribe": ["user:42", "chat.*"], "publish": ["chat.*"]})
}

fn valid(secs: u64) -> String {
    sign(&claims(secs), SECRET)
}

/// Each refused token, with the code it must get when subscribing to `user:42`.
fn bad_tokens() -> Vec<(&'static str, Option<String>, &'static str)> {
    let mut expired = claims(0);
    expired["exp"] = json!(now() - 60);
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let alg_none = format!("{}.{}.", part(&json!({"alg": "none", "typ": "JWT"})), part(&claims(600)));
    vec![
        ("forged", Some(sign(&claims(600), "some other secret")), "invalid_token"),
        ("expired", Some(sign(&expired, SECRET)), "token_expired"),
        ("alg none", Some(alg_none), "invalid_token"),
        ("missing", None, "token_required"),
    ]
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().timeout(STEP).build()?)
}

/// The query of a subscribe request to `topic` with `token`.
fn query(topic: &str, token: Option<&str>) -> String {
    match token {
        Some(token) => format!("topic={topic}&token={token}"),
        None => format!("topic={topic}"),
    }
}

/// Status and error code (empty for a success) of `GET path?query`.
async fn get(gateway: &Gateway, path_and_query: &str) -> anyhow::Result<(u16, String)> {
    let response = http()?.get(format!("http://{}{path_and_query}", gateway.addr)).send().await?;
    let status = response.status().as_u16();
    if status == 200 {
        return Ok((status, String::new()));
    }
    let body: Value = response.json().await?;
    Ok((status, body["error"]["code"].as_str().unwrap_or_default().to_owned()))
}

/// `pushgate_refused_total{reason}` from the gateway's `/metrics`.
async fn refused_total(gateway: &Gateway, reason: &str) -> anyhow::Result<u64> {
    let text = http()?.get(format!("http://{}/metrics", gateway.addr)).send().await?.text().await?;
    let name = format!("pushgate_refused_total{{reason=\"{reason}\"}} ");
    let line = text.lines().find_map(|line| line.strip_prefix(name.as_str()));
    Ok(line.context("no such sample")?.trim().parse()?)
}

/// The HTTP transports' paths with what makes them answer at once.
const HTTP_TRANSPORTS: [(&str, &str); 3] =
    [("/v1/poll", ""), ("/v1/longpoll", "&timeout=0"), ("/v1/sse", "")];

#[tokio::test]
async fn http_transports_allow_valid_tokens_and_refuse_the_rest_with_the_right_code() -> anyhow::Result<()> {
    let gateway = start(auth_config()).await?;
    let token = valid(600);
    for (path, extra) in HTTP_TRANSPORTS {
        let ok = get(&gateway, &format!("{path}?{}{extra}", query("user:42", Some(&token)))).await?;
        assert_eq!(ok, (200, String::new()), "{path} valid");
        let both = get(&gateway, &format!("{path}?topics=user:42,chat.a&token={token}{extra}")).await?;
        assert_eq!(both.0, 200, "{path} patterns");
        let anonymous = get(&gateway, &format!("{path}?topic=public.news{extra}")).await?;
        assert_eq!(anonymous.0, 200, "{path} anonymous pattern");

        let wrong = get(&gateway, &format!("{path}?{}{extra}", query("user:43", Some(&token)))).await?;
        assert_eq!(wrong, (403, "topic_forbidden".to_owned()), "{path} wrong topic");
        for (what, bad, code) in bad_tokens() {
            let refused =
                get(&gateway, &format!("{path}?{}{extra}", query("user:42", bad.as_deref()))).await?;
            assert_eq!(refused, (401, code.to_owned()), "{path} {what}");
        }
    }
    // The header works as well as the query, and a 401 names the scheme.
    let client = http()?;
    let base = format!("http://{}/v1/poll?topic=user:42", gateway.addr);
    let by_header = client.get(&base).bearer_auth(&token).send().await?;
    assert_eq!(by_header.status(), 200);
    let missing = client.get(&base).send().await?;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body = missing.text().await?;
    assert!(body.contains("user:42") && !body.contains(SECRET), "{body}");
    // Every refusal is a metric: each bad token on each transport and the missing header.
    let unauthorized = HTTP_TRANSPORTS.len() * bad_tokens().len() + 1;
    assert_eq!(refused_total(&gateway, "unauthorized").await?, unauthorized as u64);
    assert_eq!(refused_total(&gateway, "topic_forbidden").await?, HTTP_TRANSPORTS.len() as u64);
    Ok(())
}

#[tokio::test]
async fn without_a_secret_or_admin_key_everything_is_allowed() -> anyhow::Result<()> {
    let gateway = start(Config::default().with_anonymous_subscribe(vec!["nothing".into()])).await?;
    for (path, extra) in HTTP_TRANSPORTS {
        assert_eq!(get(&gateway, &format!("{path}?topic=user:42{extra}")).await?.0, 200, "{path}");
    }
    let mut ws = connect(&gateway, "topic=user:42").await?;
    send(&mut ws, json!({"type": "publish", "topic": "user:42", "data": 1})).await?;
    assert_eq!(next_json(&mut ws).await?["type"], "published");
    Ok(())
}

/// Reads an SSE body until `needle` shows up; returns everything read.
async fn read_until(
    mut response: reqwest::Response,
    needle: &str,
    within: Duration,
) -> anyhow::Result<String> {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while !text.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .with_context(|| format!("no {needle:?} in time; got {text:?}"))??;
        match chunk {
            Some(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
            None => bail!("the stream ended without {needle:?}: {text:?}"),
        }
    }
    Ok(text)
}

#[tokio::test]
async fn an_sse_stream_ends_with_token_expired_when_its_token_does() -> anyhow::Result<()> {
    let gateway = start(auth_config()).await?;
    let url = format!("http://{}/v1/sse?topic=user:42&token={}", gateway.addr, valid(2));
    let response = http()?.get(url).send().await?;
    ensure!(response.status() == 200, "{}", response.status());
    let started = std::time::Instant::now();
    let text = read_until(response, "token_expired", Duration::from_secs(5)).await?;
    assert!(text.contains("event: error\ndata: {\"code\":\"token_expired\""), "{text:?}");
    assert!(started.elapsed() >= Duration::from_secs(1), "ended too early: {:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn a_parked_long_poll_is_answered_401_when_its_token_expires_and_so_is_the_next() -> anyhow::Result<()>
{
    let gateway = start(auth_config()).await?;
    let token = valid(2);
    let started = std::time::Instant::now();
    let parked = get(&gateway, &format!("/v1/longpoll?topic=user:42&timeout=60&token={token}")).await?;
    // Never an empty 200 that the client would repeat at once with the same token.
    assert_eq!(parked, (401, "token_expired".to_owned()));
    assert!(started.elapsed() >= Duration::from_millis(900), "answered early: {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5), "held {:?}", started.elapsed());
    let next = get(&gateway, &format!("/v1/longpoll?topic=user:42&timeout=60&token={token}")).await?;
    assert_eq!(next, (401, "token_expired".to_owned()));
    Ok(())
}

// A far-future `exp` (beyond what the clocks can add) is capped, not a panic.

fn far_future(exp: u64) -> String {
    let mut claims = claims(0);
    claims["exp"] = json!(exp);
    sign(&claims, SECRET)
}

#[tokio::test]
async fn a_far_future_exp_opens_an_sse_stream_that_stays_open() -> anyhow::Result<()> {
    let gateway = start(auth_config()).await?;
    for exp in [u64::MAX, i64::MAX as u64 + 1] {
        let url = format!("http://{}/v1/sse?topic=user:42&token={}", gateway.addr, far_future(exp));
        let response = http()?.get(url).send().await?;
        ensure!(response.status() == 200, "exp {exp}: {}", response.status());
        let text = read_until(response, "retry:", STEP).await?;
        assert!(!text.contains("token_expired"), "exp {exp}: {text:?}");
    }
    Ok(())
}

// WebSocket.

async fn connect_request(request: tungstenite::handshake::client::Request) -> Result<Ws, tungstenite::Error> {
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request)).await {
        Ok(result) => result.map(|(ws, _)| ws),
        Err(_) => Err(tungstenite::Error::ConnectionClosed),
    }
}

async fn try_connect(gateway: &Gateway, query: &str) -> anyhow::Result<Result<Ws, tungstenite::Error>> {
    let request = format!("ws://{}/v1/ws?{query}", gateway.addr).into_client_request()?;
    Ok(connect_request(request).await)
}

async fn connect(gateway: &Gateway, query: &str) -> anyhow::Result<Ws> {
    Ok(try_connect(gateway, query).await??)
}

/// The HTTP status and error code of a refused upgrade.
fn refusal(result: Result<Ws, tungstenite::Error>) -> anyhow::Result<(u16, String)> {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default())?;
            Ok((response.status().as_u16(), body["error"]["code"].as_str().unwrap_or_default().to_owned()))
        }
        Err(other) => bail!("expected an HTTP refusal, got {other}"),
        Ok(_) => bail!("expected a refusal, the upgrade was accepted"),
    }
}

async fn send(ws: &mut Ws, value: Value) -> anyhow::Result<()> {
    tokio::time::timeout(STEP, ws.send(Message::text(value.to_string()))).await??;
    Ok(())
}

/// The next text frame as JSON, skipping control frames.
async fn next_json(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        match tokio::time::timeout(STEP, ws.next()).await? {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => bail!("expected a text frame, got {other:?}"),
        }
    }
}

/// The code of the server's Close frame, reading past anything else, within `within`.
async fn close_code(ws: &mut Ws, within: Duration) -> anyhow::Result<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.context("no close in time")? {
            Some(Ok(Message::Close(Some(frame)))) => return Ok(u16::from(frame.code)),
            Some(Ok(Message::Close(None))) | None => bail!("closed without a code"),
            Some(Ok(_)) => {}
            Some(Err(err)) => bail!("{err}"),
        }
    }
}

#[tokio::test]
async fn websocket_upgrades_check_the_query_token_before_upgrading() -> anyhow::Result<()> {
    let gateway = start(auth_config()).await?;
    let mut ws = connect(&gateway, &query("user:42", Some(&valid(600)))).await?;
    send(&mut ws, json!({"type": "ping", "id": 1})).await?;
    assert_eq!(next_json(&mut ws).await?, json!({"type": "pong", "id": 1}));

    let wrong = try_connect(&gateway, &query("user:43", Some(&valid(600)))).await?;
    assert_eq!(refusal(wrong)?, (403, "topic_forbidden".to_owned()));
    for (what, bad, code) in bad_tokens() {
        let refused = try_connect(&gateway, &query("user:42", bad.as_deref())).await?;
        assert_eq!(refusal(refused)?, (401, code.to_owned()), "{what}");
    }
    // An invalid token is refused even with no topic to check it against.
    let (_, forged, _) = bad_tokens().swap_remove(0);
    let refused = try_connect(&gateway, &format!("token={}", forged.unwrap_or_default())).await?;
    assert_eq!(refusal(refused)?, (401, "invalid_token".to_owned()));
    // Anonymous topics need no token.
    connect(&gateway, "topic=public.news").await?;
    Ok(())
}

#[tokio::test]
async fn a_far_future_exp_authenticates_a_websocket_in_the_query_and_in_an_auth_frame() -> anyhow::Result<()>
{
    let gateway = start(auth_config()).await?;
    let token = far_future(u64::MAX);
    let mut ws = connect(&gateway, &query("user:42", Some(&token))).await?;
    send(&mut ws, json!({"type": "ping", "id": 1})).await?;
    assert_eq!(next_json(&mut ws).await?, json!({"type": "pong", "id": 1}));
    send(&mut ws, json!({"type": "auth", "token": token})).await?;
    let authed = next_json(&mut ws).await?;
    assert_eq!(authed["type"], "authed", "{authed}");
    assert!(authed["expires"].as_u64().is_some_and(|at| at > now() + 1_000 * 365 * 86_400), "{authed}");
    send(&mut ws, json!({"type": "ping", "id": 2})).await?;
    assert_eq!(next_json(&mut ws).await?, json!({"type": "pong", "id": 2}));
    Ok(())
}

#[tokio::test]
async fn websocket_auth_frames_authenticate_and_frames_are_checked_one_by_one() -> anyhow::Result<()> {
    let gateway = start(auth_config()).await?;
    let mut ws = connect(&gateway, "").await?;
    send(&mut ws, json!({"type": "subscribe", "topics": ["user:42"]})).await?;
    let refused = next_json(&mut ws).await?;
    assert_eq!((refused["type"].as_str(), refused["request"].as_str()), (Some("error"), Some("subscribe")));
    assert_eq!(refused["error"]["code"], "token_required");

    for (what, bad, code) in bad_tokens() {
        let Some(bad) = bad else { continue };
        send(&mut ws, json!({"type": "auth", "token": bad})).await?;
        let answer = next_json(&mut ws).await?;
        assert_eq!(
            (answer["error"]["code"].as_str(), answer["request"].as_str()),
            (Some(code), Some("auth")),
            "{what}"
        );
    }

    let token = valid(600);
    send(&mut ws, json!({"type": "auth", "token": token})).await?;
    let authed = next_json(&mut ws).await?;
    assert_eq!(authed["type"], "authed");
    let expires = authed["expires"].as_u64().context("expires")?;
    assert!(expires >= now() + 590 && expires <= now() + 600, "{authed}");

    send(&mut ws, json!({"type": "subscribe", "topics": ["user:43"]})).await?;
    let forbidden = next_json(&mut ws).await?;
    assert_eq!(forbidden["error"]["code"], "topic_forbidden", "{forbidden}");
    assert!(forbidden["error"]["message"].as_str().unwrap_or_default().contains("user:43"), "{forbidden}");
    send(&mut ws, json!({"type": "subscribe", "topics": ["user:42", "chat.room"], "cursor": "oldest"}))
        .await?;
    assert_eq!(next_json(&mut ws).await?["type"], "subscribed");

    send(&mut ws, json!({"type": "publish", "topic": "user:42", "data": "nope"})).await?;
    let forbidden = next_json(&mut ws).await?;
    assert_eq!(
        (forbidden["error"]["code"].as_str(), forbidden["request"].as_str()),
        (Some("topic_forbidden"), Some("publish"))
    );
    send(&mut ws, json!({"type": "publish", "topic": "chat.room", "data": "hi"})).await?;
    // The event (the connection follows chat.room) and the answer, in either order.
    let mut kinds =
        vec![next_json(&mut ws).await?["type"].clone(), next_json(&mut ws).await?["type"].clone()];
    kinds.sort_by_key(ToString::to_string);
    assert_eq!(kinds, [json!("event"), json!("published")]);
    // In-band refusals are counted too: the first subscribe and each bad auth frame; the
    // forbidden subscribe and publish.
    let bad_frames = bad_tokens().iter().filter(|(_, bad, _)| bad.is_some()).count();
    assert_eq!(refused_total(&gateway, "unauthorized").await?, 1 + bad_frames as u64);
    assert_eq!(refused_total(&gateway, "topic_forbidden").await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_websocket_refreshed_in_band_outlives_its_first_token_and_an_unrefreshed_one_is_closed_4401()
-> anyhow::Result<()> {
    let gateway = start(auth_config()).await?;
    let mut refreshed = connect(&gateway, &query("user:42", Some(&valid(2)))).await?;
    let mut expiring = connect(&gateway, &query("user:42", Some(&valid(2)))).await?;
    send(&mut refreshed, json!({"type": "auth", "token": valid(600)})).await?;
    assert_eq!(next_json(&mut refreshed).await?["type"], "authed");

    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut expiring, Duration::from_secs(5)).await?, 4401);
    assert!(started.elapsed() >= Duration::from_millis(500), "{:?}", started.elapsed());

    // Past the first token's expiry the refreshed connection still gets its events.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = http()?
        .post(format!("http://{}/v1/publish/user:42", gateway.addr))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"data": "still here"}))
        .send()
        .await?;
    assert_eq!(published.status(), 200);
    let event = next_json(&mut refreshed).await?;
    assert_eq!((event["type"].as_str(), event["data"].as_str()), (Some("event"), Some("still here")));
    Ok(())
}

// The publish API.

async fn publish(gateway: &Gateway, topic: &str, bearer: Option<&str>) -> anyhow::Result<(u16, String)> {
    let mut request =
        http()?.post(format!("http://{}/v1/publish/{topic}", gateway.addr)).json(&json!({"data": 1}));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    Ok((status, body["error"]["code"].as_str().unwrap_or_default().to_owned()))
}

#[tokio::test]
async fn the_publish_api_takes_the_admin_key_a_publish_claim_or_an_anonymous_pattern() -> anyhow::Result<()> {
    let gateway = start(auth_config()).await?;
    let token = valid(600);
    assert_eq!(publish(&gateway, "user:42", Some(ADMIN_KEY)).await?.0, 200);
    assert_eq!(publish(&gateway, "anything.at.all", Some(ADMIN_KEY)).await?.0, 200);
    assert_eq!(publish(&gateway, "chat.room", Some(&token)).await?.0, 200);
    assert_eq!(publish(&gateway, "guestbook", None).await?.0, 200);

    assert_eq!(publish(&gateway, "user:42", Some(&token)).await?, (403, "topic_forbidden".to_owned()));
    assert_eq!(publish(&gateway, "chat.room", None).await?, (401, "token_required".to_owned()));
    assert_eq!(
        publish(&gateway, "chat.room", Some("admin-key-for-server")).await?,
        (401, "invalid_token".to_owned())
    );
    for (what, bad, code) in bad_tokens() {
        let refused = publish(&gateway, "chat.room", bad.as_deref()).await?;
        assert_eq!(refused, (401, code.to_owned()), "{what}");
    }
    // The admin key publishes, and nothing more: it is no subscriber's token.
    let (status, code) = get(&gateway, &format!("/v1/poll?topic=user:42&token={ADMIN_KEY}")).await?;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));
    Ok(())
}

// Presence.

/// Status and error code (empty for a success) of `GET /v1/presence/{topic}` with `bearer`.
async fn presence(gateway: &Gateway, topic: &str, bearer: Option<&str>) -> anyhow::Result<(u16, String)> {
    let mut request = http()?.get(format!("http://{}/v1/presence/{topic}", gateway.addr));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    if status == 200 {
        ensure!(body["topic"] == topic && body["total"].is_u64(), "{body}");
    }
    Ok((status, body["error"]["code"].as_str().unwrap_or_default().to_owned()))
}

#[tokio::test]
async fn presence_takes_a_token_allowed_to_subscribe_or_the_admin_key() -> anyhow::Result<()> {
    let gateway = start(auth_config()).await?;
    let token = valid(600);
    let ok = (200, String::new());
    assert_eq!(presence(&gateway, "user:42", Some(&token)).await?, ok);
    assert_eq!(get(&gateway, &format!("/v1/presence/user:42?token={token}")).await?, ok);
    assert_eq!(presence(&gateway, "user:43", Some(ADMIN_KEY)).await?, ok);
    assert_eq!(presence(&gateway, "public.news", None).await?, ok);

    // Whether user 43 is online is no one else's business.
    assert_eq!(presence(&gateway, "user:43", None).await?, (401, "token_required".to_owned()));
    assert_eq!(presence(&gateway, "user:43", Some(&token)).await?, (403, "topic_forbidden".to_owned()));
    // A publish right is not a subscribe right ("guestbook" is open to anonymous publishers).
    assert_eq!(presence(&gateway, "guestbook", None).await?, (401, "token_required".to_owned()));
    for (what, bad, code) in bad_tokens() {
        let refused = presence(&gateway, "user:42", bad.as_deref()).await?;
        assert_eq!(refused, (401, code.to_owned()), "{what}");
    }

    // Without auth, presence stays open.
    let open = start(Config::default()).await?;
    assert_eq!(presence(&open, "user:43", None).await?, ok);
    Ok(())
}

// Origin.

async fn upgrade_from(
    gateway: &Gateway,
    origin: Option<&str>,
) -> anyhow::Result<Result<Ws, tungstenite::Error>> {
    let mut request = format!("ws://{}/v1/ws", gateway.addr).into_client_request()?;
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse()?);
    }
    Ok(connect_request(request).await)
}

#[tokio::test]
async fn cross_origin_websocket_upgrades_are_refused_and_same_origin_ones_accepted() -> anyhow::Result<()> {
    let gateway = start(Config::default()).await?;
    let same = format!("http://{}", gateway.addr);
    assert!(upgrade_from(&gateway, Some(&same)).await?.is_ok(), "same origin");
    assert!(upgrade_from(&gateway, None).await?.is_ok(), "no Origin: not a browser");
    let evil = upgrade_from(&gateway, Some("http://evil.example")).await?;
    assert_eq!(refusal(evil)?, (403, "origin_forbidden".to_owned()));
    let other_port =
        upgrade_from(&gateway, Some(&format!("http://127.0.0.1:{}", gateway.addr.port() + 1))).await?;
    assert_eq!(refusal(other_port)?.0, 403);
    assert_eq!(refusal(upgrade_from(&gateway, Some("null")).await?)?.0, 403);
    assert_eq!(refused_total(&gateway, "origin_forbidden").await?, 3);
    Ok(())
}

#[tokio::test]
async fn an_origin_allowlist_replaces_same_origin_and_a_star_allows_all() -> anyhow::Result<()> {
    let listed = Config::default().with_allowed_origins(vec!["https://app.example".into()]);
    let gateway = start(listed).await?;
    assert!(upgrade_from(&gateway, Some("https://app.example")).await?.is_ok());
    assert!(upgrade_from(&gateway, Some("https://app.example:443")).await?.is_ok());
    assert_eq!(refusal(upgrade_from(&gateway, Some("http://app.example")).await?)?.0, 403);
    let same = format!("http://{}", gateway.addr);
    assert_eq!(refusal(upgrade_from(&gateway, Some(&same)).await?)?.0, 403);

    let any = start(Config::default().with_allowed_origins(vec!["*".into()])).await?;
    assert!(upgrade_from(&any, Some("http://evil.example")).await?.is_ok());
    Ok(())
}

// CORS.

#[tokio::test]
async fn cors_origins_match_as_origins_default_ports_and_case_normalised() -> anyhow::Result<()> {
    let configured = vec!["https://App.Example:443".into(), "http://localhost:3000".into()];
    let gateway = start(Config::default().with_cors_origins(configured)).await?;
    let client = http()?;
    let url = format!("http://{}/v1/poll?topic=a", gateway.addr);
    let allow_origin = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|value| value.to_str().unwrap_or("?").to_owned())
    };
    // What browsers send: no default port, lowercase host. The answer names the page's origin.
    for origin in ["https://app.example", "https://app.example:443", "http://localhost:3000"] {
        let answer = client.get(&url).header("origin", origin).send().await?;
        assert_eq!(answer.status(), 200);
        assert_eq!(allow_origin(&answer).as_deref(), Some(origin), "{origin}");
        let preflight = client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await?;
        assert_eq!(allow_origin(&preflight).as_deref(), Some(origin), "preflight from {origin}");
    }
    for origin in ["http://app.example", "https://app.example:8443", "http://localhost:3001", "null"] {
        let answer = client.get(&url).header("origin", origin).send().await?;
        assert_eq!(allow_origin(&answer), None, "{origin}");
    }
    Ok(())
}

#[tokio::test]
async fn cors_answers_preflights_and_marks_answers_only_when_configured() -> anyhow::Result<()> {
    let origin = "https://app.example";
    let gateway = start(Config::default().with_cors_origins(vec![origin.into()])).await?;
    let client = http()?;
    let url = format!("http://{}/v1/poll?topic=a", gateway.addr);
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization, last-event-id")
        .send()
        .await?;
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], origin);
    let allowed = headers["access-control-allow-headers"].to_str()?.to_ascii_lowercase();
    for header in ["authorization", "last-event-id", "content-type"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    let methods = headers["access-control-allow-methods"].to_str()?;
    assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");

    let simple = client.get(&url).header("origin", origin).send().await?;
    assert_eq!(simple.status(), 200);
    assert_eq!(simple.headers()["access-control-allow-origin"], origin);
    assert!(
        simple.headers()["access-control-expose-headers"].to_str()?.to_ascii_lowercase().contains("etag")
    );
    let stranger = client.get(&url).header("origin", "https://evil.example").send().await?;
    assert!(stranger.headers().get("access-control-allow-origin").is_none());
    // A long poll, which the keep-alive loop otherwise answers without the router, is marked
    // too, answered at once and after a wait.
    for query in ["timeout=0", "timeout=1"] {
        let url = format!("http://{}/v1/longpoll?topic=a&{query}", gateway.addr);
        let answer = client.get(&url).header("origin", origin).send().await?;
        assert_eq!(answer.status(), 200, "{query}");
        assert_eq!(answer.headers()["access-control-allow-origin"], origin, "{query}");
    }

    let plain = start(Config::default()).await?;
    let url = format!("http://{}/v1/poll?topic=a", plain.addr);
    let answer = client.get(&url).header("origin", origin).send().await?;
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("access-control-allow-origin").is_none());
    Ok(())
}

// Tokens in logs.

#[tokio::test]
async fn tokens_and_keys_never_reach_the_logs_even_at_trace_level() -> anyhow::Result<()> {
    let (binary, addr) =
        Binary::start(&["--jwt-secret", SECRET, "--admin-key", ADMIN_KEY, "--jwt-leeway", "0s"], &[])?;
    let gateway = Gateway { addr, _server: None };
    let token = valid(600);
    let (_, forged, _) = bad_tokens().swap_remove(0);
    let forged = forged.context("forged")?;
    for used in [&token, &forged] {
        for (path, extra) in HTTP_TRANSPORTS {
            get(&gateway, &format!("{path}?topic=user:42&token={used}{extra}")).await?;
        }
        try_connect(&gateway, &query("user:42", Some(used))).await?.ok();
        publish(&gateway, "chat.room", Some(used)).await?;
    }
    let mut ws = connect(&gateway, "").await?;
    send(&mut ws, json!({"type": "auth", "token": token})).await?;
    assert_eq!(next_json(&mut ws).await?["type"], "authed");
    send(&mut ws, json!({"type": "auth", "token": forged})).await?;
    assert_eq!(next_json(&mut ws).await?["type"], "error");
    assert_eq!(publish(&gateway, "anywhere", Some(ADMIN_KEY)).await?.0, 200);
    drop(ws);
    // Let the server log what it does after the last answer.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let logged = binary.logged();
    ensure!(logged.lines().count() > 3, "the binary logged almost nothing at trace level:\n{logged}");
    let signature = |jwt: &str| jwt.rsplit('.').next().unwrap_or_default().to_owned();
    for secret in [SECRET, ADMIN_KEY, &signature(&token), &signature(&forged)] {
        ensure!(!logged.contains(secret), "{secret:?} was logged:\n{logged}");
    }
    Ok(())
}

// The demo's REST API is its topics.

#[tokio::test]
async fn the_demo_api_reads_with_subscribe_rights_and_writes_with_publish_rights() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let gateway = start(auth_config().with_demo_db(Some(dir.path().join("demo.db")))).await?;
    let client = http()?;
    let url = |path: &str| format!("http://{}{path}", gateway.addr);
    let reader = sign(&json!({"exp": now() + 600, "subscribe": ["db.*"]}), SECRET);

    assert_eq!(client.get(url("/demo/users")).send().await?.status(), 401);
    assert_eq!(client.get(url("/demo/users")).bearer_auth(&reader).send().await?.status(), 200);
    assert_eq!(client.get(url(&format!("/demo/orders?token={reader}"))).send().await?.status(), 200);
    let write = |bearer: &str| {
        client.post(url("/demo/users")).bearer_auth(bearer).json(&json!({"name": "Ada"})).send()
    };
    assert_eq!(write(&reader).await?.status(), 403);
    let created = write(ADMIN_KEY).await?;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str()?.to_owned();
    assert_eq!(client.delete(url(&location)).send().await?.status(), 401);
    assert_eq!(client.delete(url(&location)).bearer_auth(ADMIN_KEY).send().await?.status(), 204);
    // An unknown table has no topic to check: it is the API's own 404.
    assert_eq!(client.get(url("/demo/nothing")).send().await?.status(), 404);
    Ok(())
}
