//! `EncryptedCookieStore` behind a `SessionLayer`, over real HTTP: the session travels in a
//! cookie the client cannot read, and comes back; a tampered (every byte), truncated (every
//! length), foreign-key, other-cookie or expired value is no session, answered 200 with an
//! empty session, and the real cookie keeps working after each; an oversized session is a
//! 500 without a cookie; rotation keeps sessions; a configuration shared with Django is
//! refused at startup.

#![cfg(all(feature = "cookie-encrypted", feature = "axum"))]

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Map;
use sessionbase::{EncryptedCookieStore, Error, Session, SessionConfig, SessionKey, SessionLayer};
use time::Duration;

use crate::common::{client, set_cookies, spawn};

const SECRET: &str = "the encrypted store's integration secret (32+ bytes)";
const OLD: &str = "the secret before the rotation, also 32 bytes or more";

async fn set(session: Session, Query(q): Query<HashMap<String, String>>) -> &'static str {
    for (k, v) in q {
        session.insert(k, v).expect("insert");
    }
    "ok"
}

async fn get_all(session: Session) -> String {
    let items: Map<_, _> = session.items().into_iter().collect();
    serde_json::to_string(&items).expect("JSON")
}

async fn big(session: Session) -> &'static str {
    let mut noise = String::new();
    while noise.len() < 6000 {
        noise.push_str(SessionKey::generate().expect("rng").as_str());
    }
    session.insert("noise", noise).expect("insert");
    "ok"
}

fn store(secret: &str) -> EncryptedCookieStore {
    EncryptedCookieStore::new(secret).expect("long secret")
}

async fn serve(store: EncryptedCookieStore, config: SessionConfig) -> String {
    let app = Router::new()
        .route("/set", get(set))
        .route("/get", get(get_all))
        .route("/big", get(big))
        .layer(
            SessionLayer::new(store)
                .with_config(config)
                .expect("config"),
        );
    spawn(app).await
}

async fn call(base: &str, path: &str, cookie: Option<(&str, &str)>) -> reqwest::Response {
    let mut request = client().get(format!("{base}{path}"));
    if let Some((name, value)) = cookie {
        request = request.header("cookie", format!("{name}={value}"));
    }
    request.send().await.expect("request")
}

/// The value of the cookie `name` the response sets, if any.
fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.value)
}

/// `/get` with `value` as the `sessionid` cookie: status and body.
async fn get_with(base: &str, value: &str) -> (StatusCode, String) {
    let response = call(base, "/get", Some(("sessionid", value))).await;
    (response.status(), response.text().await.expect("body"))
}

/// A server and the cookie of a session holding `user=alice`.
async fn logged_in(config: SessionConfig) -> (String, String) {
    let base = serve(store(SECRET), config).await;
    let response = call(&base, "/set?user=alice", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let value = cookie(&response, "sessionid").expect("a session cookie");
    (base, value)
}

const ALICE: &str = r#"{"user":"alice"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_travels_encrypted_and_comes_back() {
    let (base, value) = logged_in(SessionConfig::default()).await;
    assert!(!value.contains("alice"));
    let bytes = URL_SAFE_NO_PAD.decode(&value).expect("base64url");
    assert!(
        !String::from_utf8_lossy(&bytes).contains("alice"),
        "readable"
    );
    assert_eq!(
        get_with(&base, &value).await,
        (StatusCode::OK, ALICE.into())
    );
    let response = call(&base, "/set?theme=dark", Some(("sessionid", &value))).await;
    let updated = cookie(&response, "sessionid").expect("a new cookie");
    assert_ne!(updated, value);
    let (_, body) = get_with(&base, &updated).await;
    assert_eq!(body, r#"{"user":"alice","theme":"dark"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampered_byte_is_no_session() {
    let (base, value) = logged_in(SessionConfig::default()).await;
    let bytes = URL_SAFE_NO_PAD.decode(&value).expect("base64url");
    for i in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x01;
        let tampered = URL_SAFE_NO_PAD.encode(&tampered);
        assert_eq!(
            get_with(&base, &tampered).await,
            (StatusCode::OK, "{}".into()),
            "byte {i}"
        );
    }
    assert_eq!(get_with(&base, &value).await.1, ALICE, "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_truncation_is_no_session() {
    let (base, value) = logged_in(SessionConfig::default()).await;
    for len in 1..value.len() {
        assert_eq!(
            get_with(&base, &value[..len]).await,
            (StatusCode::OK, "{}".into()),
            "length {len}"
        );
    }
    assert_eq!(get_with(&base, &value).await.1, ALICE, "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_of_another_key_or_another_name_is_no_session() {
    let (base, value) = logged_in(SessionConfig::default()).await;
    // Another app, another secret: its cookie does not open here.
    let other = serve(store(OLD), SessionConfig::default()).await;
    assert_eq!(
        get_with(&other, &value).await,
        (StatusCode::OK, "{}".into())
    );
    // Same secret, another cookie name: a value moved to it does not open.
    let config = SessionConfig::default().with_cookie_name("admin_session");
    let admin = serve(store(SECRET), config).await;
    let response = call(&admin, "/get", Some(("admin_session", &value))).await;
    assert_eq!(response.text().await.expect("body"), "{}");
    assert_eq!(get_with(&base, &value).await.1, ALICE, "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_replayed_after_its_age_is_no_session() {
    let config = SessionConfig::default().with_cookie_age(Duration::seconds(1));
    let (base, value) = logged_in(config).await;
    assert_eq!(get_with(&base, &value).await.1, ALICE);
    // Past the cookie age (whole seconds, as Django counts): refused though sent again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(get_with(&base, &value).await, (StatusCode::OK, "{}".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_session_is_a_500_without_a_cookie() {
    let base = serve(store(SECRET), SessionConfig::default()).await;
    let response = call(&base, "/big", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(cookie(&response, "sessionid").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_keeps_sessions_and_re_encrypts_them() {
    let before = serve(store(OLD), SessionConfig::default()).await;
    let value = cookie(&call(&before, "/set?user=bob", None).await, "sessionid").expect("cookie");
    let rotated = store(SECRET).with_fallbacks([OLD]).expect("fallback");
    let after = serve(rotated, SessionConfig::default()).await;
    let response = call(&after, "/set?seen=1", Some(("sessionid", &value))).await;
    let resealed = cookie(&response, "sessionid").expect("cookie");
    let only_new = serve(store(SECRET), SessionConfig::default()).await;
    let (_, body) = get_with(&only_new, &resealed).await;
    assert_eq!(body, r#"{"user":"bob","seen":"1"}"#);
}

#[cfg(feature = "django")]
#[tokio::test]
async fn a_layer_shared_with_django_refuses_it() {
    use sessionbase::django::DjangoConfig;

    let django = DjangoConfig::new("django secret")
        .session_config()
        .expect("config");
    let refused = SessionLayer::new(store(SECRET)).with_config(django);
    let Err(Error::Config(message)) = refused else {
        panic!("the encrypted store under a Django configuration must be refused");
    };
    assert!(message.contains("Django cannot decrypt"), "{message}");
    // And no SESSION_ENGINE builds it.
    let engine = DjangoConfig::new("django secret").with_session_engine("encrypted_cookies");
    assert!(matches!(engine.layer().await, Err(Error::Config(_))));
}
