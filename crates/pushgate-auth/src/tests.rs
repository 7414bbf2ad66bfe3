use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode};
use pushgate_http::{Action, AuthError, AuthRequest, Authorize, ClientInfo, ErrorCode, Grant};
use pushgate_hub::TopicName;
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"test secret, long enough for HS256";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn topics(names: &[&str]) -> Vec<TopicName> {
    names.iter().map(|name| TopicName::new(name).unwrap()).collect()
}

fn sign(claims: &serde_json::Value, header: &Header, secret: &[u8]) -> String {
    encode(header, claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

fn token(claims: &serde_json::Value) -> String {
    sign(claims, &Header::default(), SECRET)
}

/// A token whose header is `header` verbatim and whose signature is `signature`.
fn crafted(header: &serde_json::Value, claims: &serde_json::Value, signature: &str) -> String {
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{signature}", part(header), part(claims))
}

/// A policy with the HMAC secret, changed by `with`.
fn hmac(with: impl FnOnce(PolicyBuilder) -> PolicyBuilder) -> AccessPolicy {
    with(AccessPolicy::builder().hmac_secret(SECRET).unwrap()).build().unwrap()
}

/// The answer of a check that needs no waiting (no auth proxy, no key set to fetch).
fn check(
    policy: &AccessPolicy,
    token: Option<&str>,
    action: Action,
    topics: &[TopicName],
) -> Result<Grant, AuthError> {
    let client = ClientInfo::default();
    let mut check = policy.check(&AuthRequest::new(action, topics, token, "poll", &client));
    assert!(check.is_ready(), "a check without a proxy or a key set answers at once");
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(&mut check).poll(&mut cx) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => unreachable!(),
    }
}

fn code(result: Result<Grant, AuthError>) -> ErrorCode {
    result.unwrap_err().code()
}

fn user_42() -> serde_json::Value {
    json!({"exp": now() + 600, "sub": "42", "subscribe": ["user:42", "chat.*"], "publish": ["chat.*"]})
}

#[test]
fn a_valid_token_allows_what_its_claims_list_until_exp() {
    let auth = hmac(|b| b.leeway(Duration::ZERO));
    let claims = user_42();
    let token = token(&claims);
    let grant = check(&auth, Some(&token), Action::Subscribe, &topics(&["user:42", "chat.a.b"])).unwrap();
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(grant.expires_unix(), Some(exp));
    assert!(check(&auth, Some(&token), Action::Publish, &topics(&["chat.room"])).is_ok());
    // Only the token itself is checked when no topic is named.
    assert!(check(&auth, Some(&token), Action::Subscribe, &[]).is_ok());

    let forbidden = check(&auth, Some(&token), Action::Subscribe, &topics(&["user:42", "user:43"]));
    assert_eq!(
        forbidden,
        Err(AuthError::TopicForbidden { action: Action::Subscribe, topic: topics(&["user:43"])[0].clone() })
    );
    assert_eq!(
        code(check(&auth, Some(&token), Action::Publish, &topics(&["user:42"]))),
        ErrorCode::TopicForbidden
    );
    assert_eq!(
        code(check(&auth, Some(&token), Action::Subscribe, &topics(&["chat"]))),
        ErrorCode::TopicForbidden
    );
}

#[test]
fn forged_expired_and_malformed_tokens_are_refused() {
    let auth = hmac(|b| b.leeway(Duration::ZERO));
    let claims = user_42();
    let some = topics(&["user:42"]);
    let try_token = |token: &str| code(check(&auth, Some(token), Action::Subscribe, &some));

    assert_eq!(try_token(&sign(&claims, &Header::default(), b"another secret")), ErrorCode::InvalidToken);
    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 10);
    assert_eq!(try_token(&token(&expired)), ErrorCode::TokenExpired);
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(try_token(&token(&no_exp)), ErrorCode::InvalidToken);
    let mut bad_list = claims.clone();
    bad_list["subscribe"] = json!("user:42");
    assert_eq!(try_token(&token(&bad_list)), ErrorCode::InvalidToken);
    assert_eq!(try_token("not a jwt"), ErrorCode::InvalidToken);
    let malformed = check(&auth, Some("abc.def.ghi"), Action::Subscribe, &some).unwrap_err();
    assert_eq!(malformed, AuthError::InvalidToken { reason: "the token is not a well-formed JWT".into() });
    let wrong_shape = check(&auth, Some(&token(&bad_list)), Action::Subscribe, &some).unwrap_err();
    assert_eq!(
        wrong_shape,
        AuthError::InvalidToken { reason: "the token's claims are not pushgate claims".into() }
    );
    assert_eq!(try_token(""), ErrorCode::InvalidToken);
    // Even an invalid token is refused when no topic is named.
    assert_eq!(code(check(&auth, Some("x.y.z"), Action::Subscribe, &[])), ErrorCode::InvalidToken);
}

#[test]
fn only_the_configured_algorithm_is_accepted() {
    let auth = hmac(|b| b);
    let claims = user_42();
    let some = topics(&["user:42"]);
    let try_token = |token: &str| check(&auth, Some(token), Action::Subscribe, &some);

    let none = crafted(&json!({"alg": "none", "typ": "JWT"}), &claims, "");
    let not_accepted =
        AuthError::InvalidToken { reason: "the token's algorithm is not accepted here".into() };
    assert_eq!(try_token(&none), Err(not_accepted.clone()));
    let none_signed = crafted(&json!({"alg": "none"}), &claims, "c2ln");
    assert_eq!(code(try_token(&none_signed)), ErrorCode::InvalidToken);
    // RS/HS confusion: an RS256 header over an HMAC made with the secret (taken as a public key).
    let valid = token(&claims);
    let hmac_signature = valid.rsplit('.').next().unwrap();
    let rs256 = crafted(&json!({"alg": "RS256", "typ": "JWT"}), &claims, hmac_signature);
    assert_eq!(try_token(&rs256), Err(not_accepted.clone()));
    let hs512 = sign(&claims, &Header::new(jsonwebtoken::Algorithm::HS512), SECRET);
    assert_eq!(code(try_token(&hs512)), ErrorCode::InvalidToken);
    assert!(try_token(&valid).is_ok());
    let strict = hmac(|b| b.hmac_algorithm(HmacAlgorithm::Hs512));
    assert!(check(&strict, Some(&hs512), Action::Subscribe, &some).is_ok());
    assert_eq!(code(check(&strict, Some(&valid), Action::Subscribe, &some)), ErrorCode::InvalidToken);
}

#[test]
fn the_leeway_extends_acceptance_and_the_grant() {
    let auth = hmac(|b| b.leeway(Duration::from_secs(30)));
    let mut claims = user_42();
    let exp = now() - 10;
    claims["exp"] = json!(exp);
    let grant = check(&auth, Some(&token(&claims)), Action::Subscribe, &topics(&["user:42"])).unwrap();
    assert_eq!(grant.expires_unix(), Some(exp + 30));
}

#[test]
fn anonymous_patterns_apply_to_everyone_and_nothing_else_is_open() {
    let auth = hmac(|b| {
        b.anonymous_subscribe(["news.*".parse().unwrap()]).anonymous_publish(["guestbook".parse().unwrap()])
    });
    assert_eq!(check(&auth, None, Action::Subscribe, &topics(&["news.a"])), Ok(Grant::forever()));
    assert_eq!(check(&auth, None, Action::Publish, &topics(&["guestbook"])), Ok(Grant::forever()));
    assert_eq!(check(&auth, None, Action::Subscribe, &[]), Ok(Grant::forever()));
    assert_eq!(
        check(&auth, None, Action::Subscribe, &topics(&["news.a", "user:42"])),
        Err(AuthError::TokenRequired { action: Action::Subscribe, topic: topics(&["user:42"])[0].clone() })
    );
    assert_eq!(code(check(&auth, None, Action::Publish, &topics(&["news.a"]))), ErrorCode::TokenRequired);
    // A token holder keeps what anonymous clients have.
    let token = token(&user_42());
    assert!(check(&auth, Some(&token), Action::Subscribe, &topics(&["user:42", "news.b"])).is_ok());
    let nothing = AccessPolicy::builder().build().unwrap();
    assert!(check(&nothing, None, Action::Subscribe, &topics(&["a"])).is_err());
}

#[test]
fn the_admin_key_publishes_anywhere_and_nothing_more() {
    let auth =
        AccessPolicy::builder().admin_key("k3y").anonymous_subscribe(["*".parse().unwrap()]).build().unwrap();
    assert_eq!(
        check(&auth, Some("k3y"), Action::Publish, &topics(&["any.topic", "user:1"])),
        Ok(Grant::server()),
        "the application's server: never expires, never rate-limited"
    );
    assert_eq!(code(check(&auth, Some("k3y "), Action::Publish, &topics(&["a"]))), ErrorCode::InvalidToken);
    assert_eq!(code(check(&auth, Some("k3"), Action::Publish, &topics(&["a"]))), ErrorCode::InvalidToken);
    assert_eq!(code(check(&auth, None, Action::Publish, &topics(&["a"]))), ErrorCode::TokenRequired);
    // Anonymous subscribing still works; a token is refused: there is no secret to check it.
    assert!(check(&auth, None, Action::Subscribe, &topics(&["a"])).is_ok());
    let token = token(&user_42());
    assert_eq!(
        code(check(&auth, Some(&token), Action::Subscribe, &topics(&["user:42"]))),
        ErrorCode::InvalidToken
    );
}

#[test]
fn claims_round_trip_and_debug_hides_secrets() {
    let claims = Claims::new(7).subject("42").subscribe(["user:42"]).publish(["chat.*"]);
    let value = serde_json::to_value(&claims).unwrap();
    assert_eq!(value, json!({"exp": 7, "sub": "42", "subscribe": ["user:42"], "publish": ["chat.*"]}));
    assert_eq!(serde_json::to_value(Claims::new(1)).unwrap(), json!({"exp": 1}));
    let debug = format!("{:?}", hmac(|b| b.admin_key("k3y")));
    assert!(!debug.contains("k3y") && !debug.contains("test secret"), "{debug}");
    assert_eq!(AccessPolicy::builder().hmac_secret("").unwrap_err(), EmptySecret);
}

#[test]
fn a_far_future_exp_is_capped_instead_of_overflowing() {
    let auth = hmac(|b| b);
    for exp in [u64::MAX, u64::MAX - 5, i64::MAX as u64 + 1, MAX_EXPIRY + 1] {
        let mut claims = user_42();
        claims["exp"] = json!(exp);
        let grant = check(&auth, Some(&token(&claims)), Action::Subscribe, &topics(&["user:42"])).unwrap();
        assert_eq!(grant.expires_unix(), Some(MAX_EXPIRY), "exp {exp}");
        assert!(grant.remaining().unwrap() > Duration::from_secs(7000 * 365 * 86_400), "exp {exp}");
    }
}

// Public keys, identity, revocation.

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_pem(&key_file(&format!("{name}.pub"))).unwrap()
}

fn signed(
    claims: &serde_json::Value,
    algorithm: jsonwebtoken::Algorithm,
    name: &str,
    kid: Option<&str>,
) -> String {
    let pem = key_file(&format!("{name}.key"));
    let key = match algorithm {
        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        jsonwebtoken::Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap();
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).unwrap()
}

#[test]
fn rs256_es256_and_eddsa_tokens_verify_with_their_public_keys_only() {
    use jsonwebtoken::Algorithm::{ES256, ES384, EdDSA, PS256, RS256};
    let policy = AccessPolicy::builder()
        .public_key(public("rsa1"))
        .public_key(public("ec256"))
        .public_key(public("ed25519"))
        .build()
        .unwrap();
    let some = topics(&["user:42"]);
    for (algorithm, key) in [(RS256, "rsa1"), (PS256, "rsa1"), (ES256, "ec256"), (EdDSA, "ed25519")] {
        let token = signed(&user_42(), algorithm, key, Some("any"));
        let grant = check(&policy, Some(&token), Action::Subscribe, &some).unwrap();
        assert_eq!(grant.user(), Some("42"), "{algorithm:?}");
    }
    // Signed by a key the server does not have, or naming another curve's algorithm.
    let other = signed(&user_42(), RS256, "rsa2", None);
    assert_eq!(code(check(&policy, Some(&other), Action::Subscribe, &some)), ErrorCode::InvalidToken);
    let wrong_curve = signed(&user_42(), ES384, "ec384", None);
    assert_eq!(code(check(&policy, Some(&wrong_curve), Action::Subscribe, &some)), ErrorCode::InvalidToken);
    // HS256 made with a public key's bytes as the secret (the RS/HS confusion): no secret here.
    let confused = sign(&user_42(), &Header::default(), &key_file("rsa1.pub"));
    assert_eq!(code(check(&policy, Some(&confused), Action::Subscribe, &some)), ErrorCode::InvalidToken);
    // A private key is not accepted as `--jwt-public-key`.
    assert_eq!(PublicKey::from_pem(&key_file("rsa1.key")).unwrap_err(), KeyError::PrivateKey);
}

#[test]
fn audience_and_issuer_are_required_when_configured() {
    let policy = AccessPolicy::builder()
        .public_key(public("rsa1"))
        .audience(["pushgate"])
        .issuer(["https://id.example/realms/app"])
        .build()
        .unwrap();
    let some = topics(&["user:42"]);
    let mut claims = user_42();
    let check_claims = |claims: &serde_json::Value| {
        let token = signed(claims, jsonwebtoken::Algorithm::RS256, "rsa1", Some("k1"));
        check(&policy, Some(&token), Action::Subscribe, &some)
    };
    assert_eq!(code(check_claims(&claims)), ErrorCode::InvalidToken, "no aud, no iss");
    claims["aud"] = json!(["account", "pushgate"]);
    claims["iss"] = json!("https://id.example/realms/app");
    // What an identity provider adds is ignored.
    claims["scope"] = json!("openid profile");
    claims["realm_access"] = json!({"roles": ["user"]});
    assert!(check_claims(&claims).is_ok());
    claims["aud"] = json!("account");
    assert_eq!(code(check_claims(&claims)), ErrorCode::InvalidToken, "another audience");
    claims["aud"] = json!("pushgate");
    claims["iss"] = json!("https://evil.example");
    assert_eq!(code(check_claims(&claims)), ErrorCode::InvalidToken, "another issuer");
}

#[test]
fn a_token_without_topic_claims_gets_the_user_patterns_and_nested_claims_count() {
    let policy = hmac(|b| {
        b.user_subscribe(["user:{user}".parse().unwrap(), "lobby".parse().unwrap()])
            .user_publish(["room.{user}.*".parse().unwrap()])
    });
    let plain = token(&json!({"exp": now() + 600, "sub": "42"}));
    assert!(check(&policy, Some(&plain), Action::Subscribe, &topics(&["user:42", "lobby"])).is_ok());
    assert!(check(&policy, Some(&plain), Action::Publish, &topics(&["room.42.general"])).is_ok());
    assert_eq!(
        code(check(&policy, Some(&plain), Action::Subscribe, &topics(&["user:43"]))),
        ErrorCode::TopicForbidden
    );
    // A subject that cannot name a topic gets nothing from a template naming it.
    let odd = token(&json!({"exp": now() + 600, "sub": "auth0|42"}));
    assert!(check(&policy, Some(&odd), Action::Subscribe, &topics(&["lobby"])).is_ok());
    assert_eq!(
        code(check(&policy, Some(&odd), Action::Subscribe, &topics(&["user:auth0"]))),
        ErrorCode::TopicForbidden
    );
    let wildcard = token(&json!({"exp": now() + 600, "sub": "4*"}));
    assert_eq!(
        code(check(&policy, Some(&wildcard), Action::Subscribe, &topics(&["user:42"]))),
        ErrorCode::TopicForbidden
    );
    // Patterns in a `pushgate` object claim, as an identity provider's mapper writes them.
    let nested = token(&json!({"exp": now() + 600, "sub": "7", "pushgate": {"subscribe": ["chat.*"]}}));
    assert!(check(&policy, Some(&nested), Action::Subscribe, &topics(&["chat.a", "user:7"])).is_ok());
}

#[test]
fn revoked_tokens_are_refused_and_newer_ones_accepted() {
    let policy = hmac(|b| b);
    let some = topics(&["user:42"]);
    let mut old = user_42();
    old["iat"] = json!(now() - 100);
    let old = token(&old);
    let mut new = user_42();
    new["iat"] = json!(now() + 1);
    let new = token(&new);
    assert!(check(&policy, Some(&old), Action::Subscribe, &some).is_ok());
    let now = SystemTime::now();
    policy.revoke("42", now, now + Duration::from_secs(3600)).unwrap();
    assert_eq!(code(check(&policy, Some(&old), Action::Subscribe, &some)), ErrorCode::TokenRevoked);
    assert_eq!(
        code(check(&policy, Some(&token(&user_42())), Action::Subscribe, &some)),
        ErrorCode::TokenRevoked,
        "no iat"
    );
    assert!(check(&policy, Some(&new), Action::Subscribe, &some).is_ok());
    let other = token(&json!({"exp": super::tests::now() + 600, "sub": "43", "subscribe": ["user:42"]}));
    assert!(check(&policy, Some(&other), Action::Subscribe, &some).is_ok());
}

#[test]
fn connections_per_user_are_limited_and_given_back() {
    let policy = hmac(|b| b.max_connections_per_user(Some(1)));
    let client = ClientInfo::default();
    let some = topics(&["user:42"]);
    let token = token(&user_42());
    let open = |current: Option<&Grant>| {
        let mut request =
            AuthRequest::new(Action::Subscribe, &some, Some(&token), "sse", &client).holds_connection();
        if let Some(current) = current {
            request = request.current(current);
        }
        let mut check = policy.check(&request);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::Pin::new(&mut check).poll(&mut cx) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => unreachable!(),
        }
    };
    let first = open(None).unwrap();
    assert_eq!(code(open(None)), ErrorCode::TooManyConnectionsForUser);
    // The connection's own later checks reuse its place.
    let again = open(Some(&first)).unwrap();
    drop(first);
    assert_eq!(code(open(None)), ErrorCode::TooManyConnectionsForUser, "still held by the later grant");
    drop(again);
    assert!(open(None).is_ok());
    // Short polls hold nothing.
    assert!(check(&policy, Some(&token), Action::Subscribe, &some).is_ok());
}
