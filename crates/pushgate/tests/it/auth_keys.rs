//! Public-key JWTs against the gateway on a real socket: RS256, ES256 and EdDSA tokens shaped
//! like an identity provider's (key id, `aud`, `iss`, `sub`, scopes in claims of its own, no
//! topic claims) verified with PEM files and with a JWKS endpoint (a stub server in the test)
//! whose keys rotate; algorithm confusion and made-up key ids are refused, and a flood of them
//! costs the identity provider nothing more.

#![allow(clippy::expect_used)]

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::Algorithm::{self, ES256, EdDSA, RS256};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use pushgate::Config;
use pushgate_testkit::TestServer;
use serde_json::{Value, json};
use support::auth::{Stub, hs256, http, key_path, now, send, signed};

const ISSUER: &str = "https://id.example/realms/app";

/// What Keycloak or Auth0 put in an access token: no topic claims, scopes of their own.
fn idp_claims(sub: &str) -> Value {
    json!({
        "exp": now() + 600, "iat": now(), "sub": sub, "iss": ISSUER, "aud": ["account", "pushgate"],
        "azp": "web", "scope": "openid profile", "realm_access": {"roles": ["user"]},
        "permissions": ["read:orders"]
    })
}

/// Tokens carry no topics: every user gets its own topic and the lobby.
fn idp_config() -> Config {
    Config::default()
        .with_jwt_audience(vec!["pushgate".into()])
        .with_jwt_issuer(vec![ISSUER.into()])
        .with_user_subscribe(vec!["user:{user}".into(), "lobby".into()])
}

async fn poll(server: &TestServer, topic: &str, token: &str) -> anyhow::Result<(u16, String)> {
    send(http()?.get(server.url(&format!("/v1/poll?topic={topic}"))).bearer_auth(token)).await
}

async fn sse(server: &TestServer, topic: &str, token: &str) -> anyhow::Result<(u16, String)> {
    send(http()?.get(server.url(&format!("/v1/sse?topic={topic}&token={token}")))).await
}

#[tokio::test]
async fn identity_provider_tokens_verify_with_pem_public_keys() -> anyhow::Result<()> {
    let keys = ["rsa1.pub", "ec256.pub", "ed25519.pub"].map(key_path).to_vec();
    let server = TestServer::start_with(idp_config().with_jwt_public_keys(keys)).await?;
    for (algorithm, key) in [(RS256, "rsa1"), (ES256, "ec256"), (EdDSA, "ed25519")] {
        let token = signed(&idp_claims("42"), algorithm, key, Some("some-kid"))?;
        assert_eq!(poll(&server, "user:42", &token).await?, (200, String::new()), "{algorithm:?}");
        assert_eq!(sse(&server, "lobby", &token).await?.0, 200, "{algorithm:?}");
        assert_eq!(poll(&server, "user:43", &token).await?, (403, "topic_forbidden".into()), "{algorithm:?}");
    }
    let mut wrong_audience = idp_claims("42");
    wrong_audience["aud"] = json!("account");
    let refused = [
        ("another key", signed(&idp_claims("42"), RS256, "rsa2", None)?),
        ("another audience", signed(&wrong_audience, RS256, "rsa1", None)?),
        // HS256 with the public key as the secret: the RS/HS confusion.
        (
            "hmac with the public key",
            hs256(&idp_claims("42"), &std::fs::read_to_string(key_path("rsa1.pub"))?)?,
        ),
        // An EC key's token claiming RSA: a key of the wrong type.
        ("wrong key type", with_rs256_header(&signed(&idp_claims("42"), ES256, "ec256", None)?)),
    ];
    for (what, token) in refused {
        assert_eq!(poll(&server, "user:42", &token).await?, (401, "invalid_token".into()), "{what}");
    }
    Ok(())
}

/// `token` with its header replaced by `{"typ":"JWT","alg":"RS256"}`.
fn with_rs256_header(token: &str) -> String {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256"}"#);
    let rest = token.split_once('.').map_or("", |(_, rest)| rest);
    format!("{header}.{rest}")
}

/// The JWK of the private key `name` for `algorithm`, with `kid`.
fn jwk(name: &str, algorithm: Algorithm, kid: &str) -> anyhow::Result<Jwk> {
    let pem = std::fs::read(key_path(&format!("{name}.key")))?;
    let key = match algorithm {
        ES256 => EncodingKey::from_ec_pem(&pem)?,
        EdDSA => EncodingKey::from_ed_pem(&pem)?,
        _ => EncodingKey::from_rsa_pem(&pem)?,
    };
    let mut jwk = Jwk::from_encoding_key(&key, algorithm)?;
    jwk.common.key_id = Some(kid.to_owned());
    Ok(jwk)
}

#[tokio::test]
async fn jwks_keys_are_fetched_rotated_in_on_an_unknown_kid_and_made_up_kids_cost_nothing()
-> anyhow::Result<()> {
    let published = Arc::new(Mutex::new(JwkSet {
        keys: vec![jwk("rsa1", RS256, "k1")?, jwk("ec256", ES256, "e1")?, jwk("ed25519", EdDSA, "d1")?],
    }));
    let set = Arc::clone(&published);
    let stub = Stub::start(move |_, _| {
        let keys = set.lock().map(|set| serde_json::to_value(&*set).unwrap_or_default()).unwrap_or_default();
        (200, keys, Duration::ZERO)
    })
    .await?;
    let config = idp_config().with_jwks_url(Some(format!("http://{}/certs", stub.addr)));
    let server = TestServer::start_with(config).await?;
    for (algorithm, key, kid) in [(RS256, "rsa1", "k1"), (ES256, "ec256", "e1"), (EdDSA, "ed25519", "d1")] {
        let token = signed(&idp_claims("42"), algorithm, key, Some(kid))?;
        assert_eq!(poll(&server, "user:42", &token).await?, (200, String::new()), "{algorithm:?}");
    }
    let fetches = || stub.requests("GET /certs").len();
    let loaded = fetches();
    assert!(loaded >= 1, "the set was fetched");

    // The identity provider rotates: a new key appears, the old one goes.
    *published.lock().expect("lock") = JwkSet { keys: vec![jwk("rsa2", RS256, "k2")?] };
    let rotated = signed(&idp_claims("42"), RS256, "rsa2", Some("k2"))?;
    assert_eq!(
        poll(&server, "user:42", &rotated).await?,
        (200, String::new()),
        "the new key after a refresh"
    );
    assert_eq!(fetches(), loaded + 1);
    let retired = signed(&idp_claims("42"), RS256, "rsa1", Some("k1"))?;
    assert_eq!(poll(&server, "user:42", &retired).await?, (401, "invalid_token".into()), "the retired key");

    // Tokens naming made-up key ids, all at once: refused, with no more fetches (at most one
    // per interval), and the good token still works meanwhile.
    let floods = (0..20).map(|i| {
        let token = signed(&idp_claims("42"), RS256, "rsa2", Some(&format!("made-up-{i}"))).expect("a token");
        let server = &server;
        async move { poll(server, "user:42", &token).await }
    });
    for outcome in futures_util::future::join_all(floods).await {
        assert_eq!(outcome?, (401, "invalid_token".into()));
    }
    assert_eq!(fetches(), loaded + 1, "a flood of unknown key ids fetched the set again");
    assert_eq!(poll(&server, "user:42", &rotated).await?.0, 200);
    Ok(())
}
