use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode};
use pushgate_http::{Action, AuthError, Authorize, ErrorCode, Grant};
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

fn code(result: Result<Grant, AuthError>) -> ErrorCode {
    result.unwrap_err().code()
}

fn user_42() -> serde_json::Value {
    json!({"exp": now() + 600, "sub": "42", "subscribe": ["user:42", "chat.*"], "publish": ["chat.*"]})
}

#[test]
fn a_valid_token_allows_what_its_claims_list_until_exp() {
    let auth = JwtAuth::new(SECRET).unwrap().leeway(Duration::ZERO);
    let claims = user_42();
    let token = token(&claims);
    let grant = auth.check(Some(&token), Action::Subscribe, &topics(&["user:42", "chat.a.b"])).unwrap();
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(grant.expires_unix(), Some(exp));
    assert!(auth.check(Some(&token), Action::Publish, &topics(&["chat.room"])).is_ok());
    // Only the token itself is checked when no topic is named.
    assert!(auth.check(Some(&token), Action::Subscribe, &[]).is_ok());

    let forbidden = auth.check(Some(&token), Action::Subscribe, &topics(&["user:42", "user:43"]));
    assert_eq!(
        forbidden,
        Err(AuthError::TopicForbidden { action: Action::Subscribe, topic: topics(&["user:43"])[0].clone() })
    );
    assert_eq!(
        code(auth.check(Some(&token), Action::Publish, &topics(&["user:42"]))),
        ErrorCode::TopicForbidden
    );
    assert_eq!(
        code(auth.check(Some(&token), Action::Subscribe, &topics(&["chat"]))),
        ErrorCode::TopicForbidden
    );
}

#[test]
fn forged_expired_and_malformed_tokens_are_refused() {
    let auth = JwtAuth::new(SECRET).unwrap().leeway(Duration::ZERO);
    let claims = user_42();
    let some = topics(&["user:42"]);
    let check = |token: &str| code(auth.check(Some(token), Action::Subscribe, &some));

    assert_eq!(check(&sign(&claims, &Header::default(), b"another secret")), ErrorCode::InvalidToken);
    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 10);
    assert_eq!(check(&token(&expired)), ErrorCode::TokenExpired);
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(&token(&no_exp)), ErrorCode::InvalidToken);
    let mut bad_list = claims.clone();
    bad_list["subscribe"] = json!("user:42");
    assert_eq!(check(&token(&bad_list)), ErrorCode::InvalidToken);
    assert_eq!(check("not a jwt"), ErrorCode::InvalidToken);
    let malformed = auth.check(Some("abc.def.ghi"), Action::Subscribe, &some).unwrap_err();
    assert_eq!(malformed, AuthError::InvalidToken { reason: "the token is not a well-formed JWT".into() });
    let wrong_shape = auth.check(Some(&token(&bad_list)), Action::Subscribe, &some).unwrap_err();
    assert_eq!(
        wrong_shape,
        AuthError::InvalidToken { reason: "the token's claims are not pushgate claims".into() }
    );
    assert_eq!(check(""), ErrorCode::InvalidToken);
    // Even an invalid token is refused when no topic is named.
    assert_eq!(code(auth.check(Some("x.y.z"), Action::Subscribe, &[])), ErrorCode::InvalidToken);
}

#[test]
fn only_the_configured_algorithm_is_accepted() {
    let auth = JwtAuth::new(SECRET).unwrap();
    let claims = user_42();
    let some = topics(&["user:42"]);
    let check = |token: &str| auth.check(Some(token), Action::Subscribe, &some);

    let none = crafted(&json!({"alg": "none", "typ": "JWT"}), &claims, "");
    let not_accepted =
        AuthError::InvalidToken { reason: "the token's algorithm is not accepted here".into() };
    assert_eq!(check(&none), Err(not_accepted.clone()));
    let none_signed = crafted(&json!({"alg": "none"}), &claims, "c2ln");
    assert_eq!(code(check(&none_signed)), ErrorCode::InvalidToken);
    // RS/HS confusion: an RS256 header over an HMAC made with the secret (taken as a public key).
    let valid = token(&claims);
    let hmac_signature = valid.rsplit('.').next().unwrap();
    let rs256 = crafted(&json!({"alg": "RS256", "typ": "JWT"}), &claims, hmac_signature);
    assert_eq!(check(&rs256), Err(not_accepted.clone()));
    let hs512 = sign(&claims, &Header::new(jsonwebtoken::Algorithm::HS512), SECRET);
    assert_eq!(code(check(&hs512)), ErrorCode::InvalidToken);
    assert!(check(&valid).is_ok());
    let strict = JwtAuth::new(SECRET).unwrap().algorithm(HmacAlgorithm::Hs512);
    assert!(strict.check(Some(&hs512), Action::Subscribe, &some).is_ok());
    assert_eq!(code(strict.check(Some(&valid), Action::Subscribe, &some)), ErrorCode::InvalidToken);
}

#[test]
fn the_leeway_extends_acceptance_and_the_grant() {
    let auth = JwtAuth::new(SECRET).unwrap().leeway(Duration::from_secs(30));
    let mut claims = user_42();
    let exp = now() - 10;
    claims["exp"] = json!(exp);
    let grant = auth.check(Some(&token(&claims)), Action::Subscribe, &topics(&["user:42"])).unwrap();
    assert_eq!(grant.expires_unix(), Some(exp + 30));
}

#[test]
fn anonymous_patterns_apply_to_everyone_and_nothing_else_is_open() {
    let auth = JwtAuth::new(SECRET)
        .unwrap()
        .anonymous_subscribe(["news.*".parse().unwrap()])
        .anonymous_publish(["guestbook".parse().unwrap()]);
    assert_eq!(auth.check(None, Action::Subscribe, &topics(&["news.a"])), Ok(Grant::forever()));
    assert_eq!(auth.check(None, Action::Publish, &topics(&["guestbook"])), Ok(Grant::forever()));
    assert_eq!(auth.check(None, Action::Subscribe, &[]), Ok(Grant::forever()));
    assert_eq!(
        auth.check(None, Action::Subscribe, &topics(&["news.a", "user:42"])),
        Err(AuthError::TokenRequired { action: Action::Subscribe, topic: topics(&["user:42"])[0].clone() })
    );
    assert_eq!(code(auth.check(None, Action::Publish, &topics(&["news.a"]))), ErrorCode::TokenRequired);
    // A token holder keeps what anonymous clients have.
    let token = token(&user_42());
    assert!(auth.check(Some(&token), Action::Subscribe, &topics(&["user:42", "news.b"])).is_ok());
    assert!(JwtAuth::default().check(None, Action::Subscribe, &topics(&["a"])).is_err());
}

#[test]
fn the_admin_key_publishes_anywhere_and_nothing_more() {
    let auth = JwtAuth::without_tokens().admin_key("k3y").anonymous_subscribe(["*".parse().unwrap()]);
    assert_eq!(
        auth.check(Some("k3y"), Action::Publish, &topics(&["any.topic", "user:1"])),
        Ok(Grant::server()),
        "the application's server: never expires, never rate-limited"
    );
    assert_eq!(code(auth.check(Some("k3y "), Action::Publish, &topics(&["a"]))), ErrorCode::InvalidToken);
    assert_eq!(code(auth.check(Some("k3"), Action::Publish, &topics(&["a"]))), ErrorCode::InvalidToken);
    assert_eq!(code(auth.check(None, Action::Publish, &topics(&["a"]))), ErrorCode::TokenRequired);
    // Anonymous subscribing still works; a token is refused: there is no secret to check it.
    assert!(auth.check(None, Action::Subscribe, &topics(&["a"])).is_ok());
    let token = token(&user_42());
    assert_eq!(
        code(auth.check(Some(&token), Action::Subscribe, &topics(&["user:42"]))),
        ErrorCode::InvalidToken
    );
}

#[test]
fn claims_round_trip_and_debug_hides_secrets() {
    let claims = Claims::new(7).subject("42").subscribe(["user:42"]).publish(["chat.*"]);
    let value = serde_json::to_value(&claims).unwrap();
    assert_eq!(value, json!({"exp": 7, "sub": "42", "subscribe": ["user:42"], "publish": ["chat.*"]}));
    assert_eq!(serde_json::to_value(Claims::new(1)).unwrap(), json!({"exp": 1}));
    let debug = format!("{:?}", JwtAuth::new(SECRET).unwrap().admin_key("k3y"));
    assert!(!debug.contains("k3y") && !debug.contains("test secret"), "{debug}");
    assert_eq!(JwtAuth::new("").unwrap_err(), EmptySecret);
}

#[test]
fn a_far_future_exp_is_capped_instead_of_overflowing() {
    let auth = JwtAuth::new(SECRET).unwrap();
    for exp in [u64::MAX, u64::MAX - 5, i64::MAX as u64 + 1, MAX_EXPIRY + 1] {
        let mut claims = user_42();
        claims["exp"] = json!(exp);
        let grant = auth.check(Some(&token(&claims)), Action::Subscribe, &topics(&["user:42"])).unwrap();
        assert_eq!(grant.expires_unix(), Some(MAX_EXPIRY), "exp {exp}");
        assert!(grant.remaining().unwrap() > Duration::from_secs(7000 * 365 * 86_400), "exp {exp}");
    }
}
