//! Auth through the application (`--auth-proxy`), against the gateway on a real socket and an
//! application stub (a small HTTP server in the test) that allows by session cookie, refuses
//! with 401 or 403, answers too late, or is not there: on every transport, with the decision
//! kept per cookie for polls and per connection for WebSocket frames; a token or the
//! application may grant; 503 `auth_unavailable` is never an allow; the sender `from` is the
//! server's to set; connections per user are limited; https to the application works.

#![allow(clippy::expect_used)]

use crate::support;

use std::time::Duration;

use pushgate::{Config, Secret};
use pushgate_testkit::TestServer;
use serde_json::{Value, json};
use support::auth::{
    Answer, STEP, Stub, closed_port, hs256, http, now, send, ws_next, ws_next_of, ws_open, ws_send,
};

const SECRET: &str = "integration-test secret, 32 bytes+";
const ADMIN_KEY: &str = "admin-key-for-servers";

/// The application: `session=alice` is user alice (her topic and chat), `session=banned` is
/// refused with 403, anything else with 401; `POST /slow` answers after 5 s.
fn application(path: &str, asked: &Value) -> Answer {
    let cookie = asked["headers"]["Cookie"].as_str().unwrap_or_default();
    let delay = if path == "POST /slow" { Duration::from_secs(5) } else { Duration::ZERO };
    let (status, body) = match cookie {
        "session=alice" => (
            200,
            json!({"user": "alice", "subscribe": ["user:alice", "chat.*"], "publish": ["chat.*"], "expires_in": 300}),
        ),
        "session=banned" => (403, json!({"error": "banned"})),
        _ => (401, json!({})),
    };
    (status, body, delay)
}

fn proxied(stub: &Stub, path: &str) -> Config {
    Config::default()
        .with_auth_proxy(Some(format!("http://{}{path}", stub.addr)))
        .with_auth_proxy_timeout(Duration::from_millis(300))
        .with_anonymous_subscribe(vec!["public.*".into()])
}

/// The HTTP transports' paths with what makes them answer at once.
const HTTP_TRANSPORTS: [(&str, &str, &str); 3] =
    [("poll", "/v1/poll", ""), ("longpoll", "/v1/longpoll", "&timeout=0"), ("sse", "/v1/sse", "")];

async fn subscribe(
    server: &TestServer,
    path: &str,
    topic: &str,
    extra: &str,
    cookie: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut request = http()?.get(server.url(&format!("{path}?topic={topic}{extra}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie).header("origin", "https://app.example");
    }
    send(request).await
}

#[tokio::test]
async fn the_application_decides_by_cookie_on_every_http_transport() -> anyhow::Result<()> {
    let stub = Stub::start(application).await?;
    let server = TestServer::start_with(proxied(&stub, "/auth")).await?;
    for (name, path, extra) in HTTP_TRANSPORTS {
        let alice = Some("session=alice");
        assert_eq!(
            subscribe(&server, path, "user:alice", extra, alice).await?,
            (200, String::new()),
            "{name}"
        );
        assert_eq!(
            subscribe(&server, path, "user:bob", extra, alice).await?,
            (403, "topic_forbidden".into()),
            "{name}"
        );
        let expired = subscribe(&server, path, "user:alice", extra, Some("session=expired")).await?;
        assert_eq!(expired, (401, "unauthenticated".into()), "{name}");
        let banned = subscribe(&server, path, "user:alice", extra, Some("session=banned")).await?;
        assert_eq!(banned, (403, "topic_forbidden".into()), "{name}");
        // Open topics need no one.
        assert_eq!(subscribe(&server, path, "public.news", extra, None).await?.0, 200, "{name}");
    }
    // What the application was told: the first question, and each transport's name.
    let asked = stub.requests("POST /auth");
    let first = &asked[0];
    assert_eq!(first["action"], "subscribe");
    assert_eq!(first["topics"], json!(["user:alice"]));
    assert_eq!(first["transport"], "poll");
    assert_eq!(first["client_ip"], "127.0.0.1");
    assert_eq!(first["headers"]["Cookie"], "session=alice");
    assert_eq!(first["headers"]["Origin"], "https://app.example");
    assert!(first["headers"]["User-Agent"].is_null() && first["token"].is_null(), "{first}");
    for (name, _, _) in HTTP_TRANSPORTS {
        assert!(asked.iter().any(|q| q["transport"] == name), "{name} was never named");
    }
    // Alice's decision is kept for its `expires_in`: asked once, then covered (user:bob is not
    // covered, so it was asked each time); refusals without `expires_in` are not kept.
    let for_cookie = |cookie: &str| asked.iter().filter(|q| q["headers"]["Cookie"] == cookie).count();
    assert_eq!(for_cookie("session=alice"), 1 + HTTP_TRANSPORTS.len(), "{asked:#?}");
    assert_eq!(for_cookie("session=expired"), HTTP_TRANSPORTS.len());
    for _ in 0..3 {
        assert_eq!(subscribe(&server, "/v1/poll", "chat.room", "", Some("session=alice")).await?.0, 200);
    }
    assert_eq!(stub.requests("POST /auth").len(), asked.len(), "later polls use the kept decision");
    Ok(())
}

#[tokio::test]
async fn a_websocket_is_asked_at_upgrade_and_for_frames_its_decision_does_not_cover() -> anyhow::Result<()> {
    let stub = Stub::start(application).await?;
    let server = TestServer::start_with(proxied(&stub, "/auth")).await?;
    let alice = [("cookie", "session=alice")];
    // Refused upgrades are HTTP answers.
    let refused = ws_open(server.addr(), "topic=user:alice", &[("cookie", "session=expired")]).await?;
    assert_eq!(refused.err(), Some((401, "unauthenticated".to_owned())));
    let forbidden = ws_open(server.addr(), "topic=user:bob", &alice).await?;
    assert_eq!(forbidden.err(), Some((403, "topic_forbidden".to_owned())));

    let Ok(mut ws) = ws_open(server.addr(), "", &alice).await? else { anyhow::bail!("refused") };
    let before = stub.requests("POST /auth").len();
    ws_send(&mut ws, json!({"type": "subscribe", "topics": ["chat.room", "user:alice"]})).await?;
    assert_eq!(ws_next(&mut ws).await?["type"], "subscribed");
    ws_send(&mut ws, json!({"type": "publish", "topic": "chat.room", "data": "hi"})).await?;
    let event = ws_next_of(&mut ws, "event").await?;
    assert_eq!((event["data"].as_str(), event["from"].as_str()), (Some("hi"), Some("alice")));
    assert_eq!(stub.requests("POST /auth").len(), before, "the connection's decision covered both frames");
    // A client cannot name the sender.
    ws_send(&mut ws, json!({"type": "publish", "topic": "chat.room", "data": "x", "from": "admin"})).await?;
    let refused = ws_next_of(&mut ws, "error").await?;
    assert_eq!(
        (refused["error"]["code"].as_str(), refused["request"].as_str()),
        (Some("invalid_json"), Some("publish"))
    );
    // A topic outside the decision is asked about, and refused.
    ws_send(&mut ws, json!({"type": "subscribe", "topics": ["user:bob"]})).await?;
    let refused = ws_next_of(&mut ws, "error").await?;
    assert_eq!(refused["error"]["code"], "topic_forbidden", "{refused}");
    let asked = stub.requests("POST /auth");
    let last = asked.last().expect("asked");
    assert_eq!((last["transport"].as_str(), last["topics"].clone()), (Some("ws"), json!(["user:bob"])));
    Ok(())
}

#[tokio::test]
async fn a_websocket_delivers_events_while_the_application_is_asked_about_a_frame() -> anyhow::Result<()> {
    // The application takes its time over one topic.
    let stub = Stub::start(|path, asked| {
        let (status, body, _) = application(path, asked);
        let slow = asked["topics"].as_array().is_some_and(|topics| topics.contains(&json!("lobby.slow")));
        (status, body, if slow { Duration::from_millis(1500) } else { Duration::ZERO })
    })
    .await?;
    let config = proxied(&stub, "/auth").with_auth_proxy_timeout(Duration::from_secs(5));
    let server = TestServer::start_with(config).await?;
    let Ok(mut ws) = ws_open(server.addr(), "topic=chat.room", &[("cookie", "session=alice")]).await? else {
        anyhow::bail!("refused")
    };
    ws_send(&mut ws, json!({"type": "subscribe", "topics": ["lobby.slow"]})).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let topic = pushgate_hub::TopicName::new("chat.room")?;
    server.hub().publish(&topic, pushgate_hub::NewEvent::new(json!("meanwhile"))).await?;
    let first = ws_next(&mut ws).await?;
    assert_eq!(
        (first["type"].as_str(), first["data"].as_str()),
        (Some("event"), Some("meanwhile")),
        "{first}"
    );
    let answer = ws_next(&mut ws).await?;
    assert_eq!(
        (answer["type"].as_str(), answer["error"]["code"].as_str()),
        (Some("error"), Some("topic_forbidden"))
    );
    Ok(())
}

#[tokio::test]
async fn an_application_that_is_slow_or_down_is_503_auth_unavailable_never_an_allow() -> anyhow::Result<()> {
    let stub = Stub::start(application).await?;
    let slow = TestServer::start_with(proxied(&stub, "/slow")).await?;
    let down_addr = closed_port().await?;
    let down = TestServer::start_with(
        Config::default()
            .with_auth_proxy(Some(format!("http://{down_addr}/auth")))
            .with_anonymous_subscribe(vec!["public.*".into()]),
    )
    .await?;
    for server in [&slow, &down] {
        for (name, path, extra) in HTTP_TRANSPORTS {
            let unavailable = subscribe(server, path, "user:alice", extra, Some("session=alice")).await?;
            assert_eq!(unavailable, (503, "auth_unavailable".into()), "{name}");
            assert_eq!(
                subscribe(server, path, "public.news", extra, None).await?.0,
                200,
                "{name}: open topics"
            );
        }
        let upgrade = ws_open(server.addr(), "topic=user:alice", &[("cookie", "session=alice")]).await?;
        assert_eq!(upgrade.err(), Some((503, "auth_unavailable".to_owned())));
        let Ok(mut ws) = ws_open(server.addr(), "topic=public.news", &[]).await? else {
            anyhow::bail!("refused")
        };
        ws_send(&mut ws, json!({"type": "subscribe", "topics": ["user:alice"]})).await?;
        assert_eq!(ws_next_of(&mut ws, "error").await?["error"]["code"], "auth_unavailable");
        let publish = send(
            http()?
                .post(server.url("/v1/publish/chat.room"))
                .header("cookie", "session=alice")
                .json(&json!({"data": 1})),
        )
        .await?;
        assert_eq!(publish, (503, "auth_unavailable".into()));
    }
    Ok(())
}

#[tokio::test]
async fn a_token_or_the_application_may_grant() -> anyhow::Result<()> {
    let stub = Stub::start(application).await?;
    let config =
        proxied(&stub, "/auth").with_jwt_secret(Some(Secret::new(SECRET))).with_jwt_leeway(Duration::ZERO);
    let server = TestServer::start_with(config).await?;
    let token = hs256(&json!({"exp": now() + 600, "sub": "42", "subscribe": ["user:42"]}), SECRET)?;
    let expired = hs256(&json!({"exp": now() - 60, "sub": "42", "subscribe": ["user:42"]}), SECRET)?;
    let poll = |topic: &str, token: Option<&str>, cookie: Option<&str>| {
        let mut request = http().expect("client").get(server.url(&format!("/v1/poll?topic={topic}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        send(request)
    };
    assert_eq!(poll("user:42", Some(&token), None).await?.0, 200);
    assert!(stub.requests("POST /auth").is_empty(), "a token that allows needs no application");
    assert_eq!(
        poll("user:alice", Some(&token), Some("session=alice")).await?.0,
        200,
        "the application allows"
    );
    assert_eq!(poll("user:alice", Some(&expired), Some("session=alice")).await?.0, 200);
    // Neither allows: the token's own refusal tells the client what to do.
    assert_eq!(poll("user:42", Some(&expired), Some("session=nobody")).await?, (401, "token_expired".into()));
    let asked = stub.requests("POST /auth");
    assert!(asked.iter().any(|q| q["token"] == expired.as_str()), "the application sees the token too");
    Ok(())
}

#[tokio::test]
async fn the_sender_is_the_publishers_user_and_only_the_admin_key_may_name_another() -> anyhow::Result<()> {
    let config = Config::default()
        .with_jwt_secret(Some(Secret::new(SECRET)))
        .with_admin_key(Some(Secret::new(ADMIN_KEY)))
        .with_anonymous_subscribe(vec!["chat.*".into()]);
    let server = TestServer::start_with(config).await?;
    let token = hs256(&json!({"exp": now() + 600, "sub": "42", "publish": ["chat.*"]}), SECRET)?;
    let publish = |bearer: &str, body: Value| {
        send(
            http().expect("client").post(server.url("/v1/publish/chat.room")).bearer_auth(bearer).json(&body),
        )
    };
    assert_eq!(
        publish(&token, json!({"data": "forged", "from": "admin"})).await?,
        (400, "invalid_json".into())
    );
    assert_eq!(publish(&token, json!({"data": "mine"})).await?.0, 200);
    assert_eq!(publish(ADMIN_KEY, json!({"data": "system", "from": "billing"})).await?.0, 200);
    assert_eq!(publish(ADMIN_KEY, json!({"data": "server"})).await?.0, 200);
    let answer: Value =
        http()?.get(server.url("/v1/poll?topic=chat.room&cursor=oldest")).send().await?.json().await?;
    let senders: Vec<(Value, Value)> = answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["data"].clone(), e["from"].clone()))
        .collect();
    assert_eq!(
        senders,
        [(json!("mine"), json!("42")), (json!("system"), json!("billing")), (json!("server"), Value::Null)]
    );
    Ok(())
}

#[tokio::test]
async fn connections_per_user_are_limited_and_given_back() -> anyhow::Result<()> {
    let config =
        Config::default().with_jwt_secret(Some(Secret::new(SECRET))).with_max_connections_per_user(2);
    let server = TestServer::start_with(config).await?;
    let token = |sub: &str| hs256(&json!({"exp": now() + 600, "sub": sub, "subscribe": ["chat.*"]}), SECRET);
    let open = |token: String| {
        http().expect("client").get(server.url(&format!("/v1/sse?topic=chat.a&token={token}"))).send()
    };
    let first = open(token("42")?).await?;
    let _second = open(token("42")?).await?;
    assert_eq!((first.status().as_u16(), _second.status().as_u16()), (200, 200));
    assert_eq!(
        support::auth::outcome(open(token("42")?).await?).await?,
        (429, "too_many_connections_for_user".into())
    );
    let Ok(_ws) = ws_open(server.addr(), &format!("topic=chat.a&token={}", token("43")?), &[]).await? else {
        anyhow::bail!("another user is not limited")
    };
    let refused = ws_open(server.addr(), &format!("topic=chat.a&token={}", token("42")?), &[]).await?;
    assert_eq!(refused.err(), Some((429, "too_many_connections_for_user".to_owned())));
    // Short polls hold nothing.
    assert_eq!(
        send(http()?.get(server.url(&format!("/v1/poll?topic=chat.a&token={}", token("42")?)))).await?.0,
        200
    );
    // A closed stream gives its place back.
    drop(first);
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let again = open(token("42")?).await?;
        if again.status() == 200 {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the closed stream's place never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn the_application_is_asked_over_https_with_its_certificate_checked() -> anyhow::Result<()> {
    let stub = Stub::start_tls(application).await?;
    let url = format!("https://127.0.0.1:{}/auth", stub.addr.port());
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/tls/ca.crt");
    let ca = ca.to_str().expect("a UTF-8 path");
    let poll = |addr: std::net::SocketAddr| {
        send(
            http()
                .expect("client")
                .get(format!("http://{addr}/v1/poll?topic=user:alice"))
                .header("cookie", "session=alice"),
        )
    };
    // Trusting the test CA (as OpenSSL does, through SSL_CERT_FILE).
    let (trusting, addr) = support::auth::Binary::start(&["--auth-proxy", &url], &[("SSL_CERT_FILE", ca)])?;
    assert_eq!(poll(addr).await?, (200, String::new()));
    // Trusting only the system's roots: the certificate is refused, so nothing is allowed.
    let empty = tempfile::NamedTempFile::new()?;
    let empty = empty.path().to_str().expect("a UTF-8 path").to_owned();
    let (_strict, addr) =
        support::auth::Binary::start(&["--auth-proxy", &url], &[("SSL_CERT_FILE", &empty)])?;
    assert_eq!(poll(addr).await?, (503, "auth_unavailable".into()));
    assert_eq!(stub.requests("POST /auth").len(), 1, "the untrusted handshake sent nothing");
    // Cookies are credentials: never logged, even at trace level.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logged = trusting.logged();
    anyhow::ensure!(!logged.contains("session=alice"), "the cookie was logged:\n{logged}");
    Ok(())
}
