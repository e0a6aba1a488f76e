//! `CookieStore` behind a `SessionLayer`: the session travels in the cookie, in Django's
//! format, and comes back; tampered cookies are no session; an oversized session is a 500
//! with no cookie rather than a cookie the browser would drop.

#![cfg(all(feature = "cookie", feature = "axum"))]

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, json};
use sessionbase::signing::{COOKIE_SALT, Signer};
use sessionbase::{CookieStore, Session, SessionConfig, SessionKey, SessionLayer};
use std::collections::HashMap;
use time::Duration;
use tower::ServiceExt;

const SECRET: &str = "integration secret";

async fn set(session: Session, Query(q): Query<HashMap<String, String>>) -> &'static str {
    for (k, v) in q {
        session.insert(k, v).unwrap();
    }
    "ok"
}

async fn get_all(session: Session) -> String {
    serde_json::to_string(&session.items().into_iter().collect::<Map<_, _>>()).unwrap()
}

async fn big(session: Session) -> &'static str {
    let mut noise = String::new();
    while noise.len() < 6000 {
        noise.push_str(SessionKey::generate().unwrap().as_str());
    }
    session.insert("noise", noise).unwrap();
    "ok"
}

async fn logout(session: Session) -> &'static str {
    session.flush().await.unwrap();
    "ok"
}

fn app(store: CookieStore) -> Router {
    app_with_config(store, SessionConfig::default())
}

fn app_with_config(store: CookieStore, config: SessionConfig) -> Router {
    Router::new()
        .route("/set", get(set))
        .route("/get", get(get_all))
        .route("/big", get(big))
        .route("/logout", get(logout))
        .layer(SessionLayer::new(store).with_config(config).unwrap())
}

async fn call(app: &Router, uri: &str, cookie: Option<&str>) -> Response {
    let mut request = Request::get(uri);
    if let Some(value) = cookie {
        request = request.header(header::COOKIE, format!("sessionid={value}"));
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

/// The value of the `sessionid` cookie the response sets, if any.
fn set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("sessionid="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

async fn body(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn the_session_travels_in_a_django_signed_cookie() {
    let app = app(CookieStore::new(SECRET));
    let response = call(&app, "/set?user=alice", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = set_cookie(&response).expect("a session cookie");
    // Django's signing.loads with the same secret and salt reads it.
    let data = Signer::new(SECRET, COOKIE_SALT)
        .loads(&cookie, Some(1_209_600))
        .unwrap();
    assert_eq!(data["user"], json!("alice"));

    let response = call(&app, "/get", Some(&cookie)).await;
    assert!(
        set_cookie(&response).is_none(),
        "an unmodified session is not re-sent"
    );
    assert_eq!(body(response).await, r#"{"user":"alice"}"#);

    // A change re-signs the whole session into a new cookie.
    let response = call(&app, "/set?theme=dark", Some(&cookie)).await;
    let updated = set_cookie(&response).expect("a new cookie");
    assert_ne!(updated, cookie);
    let response = call(&app, "/get", Some(&updated)).await;
    assert_eq!(body(response).await, r#"{"user":"alice","theme":"dark"}"#);

    // Logging out deletes the cookie (the old value itself cannot be revoked).
    let response = call(&app, "/logout", Some(&updated)).await;
    assert_eq!(set_cookie(&response).as_deref(), Some(""));
}

#[tokio::test]
async fn a_django_cookie_loads_and_a_forged_one_does_not() {
    let django = "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc";
    // The layer hands its cookie age to the store: Django's vector was signed long ago.
    let app_ = app_with_config(
        CookieStore::new("django_tests_secret_key"),
        SessionConfig::default().with_cookie_age(Duration::weeks(5200)),
    );
    let response = call(&app_, "/get", Some(django)).await;
    assert_eq!(body(response).await, r#"{"hello":"world"}"#);

    let forged = django.replacen("eyJoZWxsbyI6IndvcmxkIn0", "eyJoZWxsbyI6Im1vb24ifQ", 1);
    let response = call(&app_, "/get", Some(&forged)).await;
    assert_eq!(body(response).await, "{}");
    // The default cookie age has long passed for a 2023 cookie.
    let app_ = app(CookieStore::new("django_tests_secret_key"));
    let response = call(&app_, "/get", Some(django)).await;
    assert_eq!(body(response).await, "{}");
}

#[tokio::test]
async fn a_rotated_secret_keeps_sessions_and_re_signs_them() {
    let before = app(CookieStore::new("old"));
    let cookie = set_cookie(&call(&before, "/set?user=bob", None).await).unwrap();
    let after = app(CookieStore::new("new").with_fallbacks(["old"]));
    let response = call(&after, "/set?seen=1", Some(&cookie)).await;
    let resigned = set_cookie(&response).unwrap();
    let only_new = app(CookieStore::new("new"));
    let response = call(&only_new, "/get", Some(&resigned)).await;
    assert_eq!(body(response).await, r#"{"user":"bob","seen":"1"}"#);
}

#[tokio::test]
async fn an_oversized_session_is_a_500_without_a_cookie() {
    let app = app(CookieStore::new(SECRET));
    let response = call(&app, "/big", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookie(&response).is_none());
}

fn app_with_cookie_name(name: &str) -> Router {
    // The size limit counts the layer's cookie name: the store takes it from the layer.
    let store = CookieStore::new(SECRET);
    Router::new().route("/set", get(set)).layer(
        SessionLayer::new(store)
            .with_config(SessionConfig::default().with_cookie_name(name))
            .unwrap(),
    )
}

#[tokio::test]
async fn the_store_size_limit_matches_the_configured_cookie_name() {
    // 4050 + 1 + the value of even a tiny session (about 75 bytes) is over 4096.
    let app = app_with_cookie_name(&"n".repeat(4050));
    let request = Request::get("/set?a=1").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    // With 4000 it fits.
    let app = app_with_cookie_name(&"n".repeat(4000));
    let request = Request::get("/set?a=1").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::SET_COOKIE).is_some());
}
