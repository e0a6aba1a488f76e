//! "Pages that do not outlive a logout" over real HTTP: `cache_control_no_store` puts
//! `Cache-Control: no-store` on every response that used the session (read it, or set or
//! deleted its cookie), merged with what the handler set; `cookie_partitioned` adds
//! `Partitioned` to the cookie and its removal, and needs `Secure`.
//!
//! The tests with a store run on both dispatch paths (`on_both_paths!`, as `http.rs`).

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use sessionbase::{Error, SameSite, Session, SessionConfig, SessionLayer};

use crate::common::{SuiteStore, client, on_both_paths, session_cookie, set_cookies, spawn, vary};

/// `?op=…&cc=…&cc=…`: does `op` to the session (`none`: never extracts it; `extract`: takes
/// it and leaves it alone; `read`; `set`; `flush`; `delete_midway`; `fail`: reads it and
/// answers 500), then
/// answers with one `Cache-Control` header per `cc` and one `Clear-Site-Data` per `csd`.
async fn act(Query(params): Query<Vec<(String, String)>>, session: Option<Session>) -> Response {
    let op = params
        .iter()
        .find(|(k, _)| k == "op")
        .map_or("none", |(_, v)| v.as_str());
    let mut status = StatusCode::OK;
    if let Some(session) = session {
        match op {
            "read" => {
                let _ = session.len();
            }
            "set" => session.insert_value("k", serde_json::json!("v")),
            "flush" => session.flush().await.expect("flush"),
            // Written, then deleted behind the layer's back: the save fails (a 400).
            "delete_midway" => {
                session.insert_value("late", serde_json::json!(1));
                session.delete().await.expect("delete");
            }
            "fail" => {
                let _ = session.len();
                status = StatusCode::INTERNAL_SERVER_ERROR;
            }
            _ => {}
        }
    }
    let mut response = status.into_response();
    for (_, value) in params.iter().filter(|(k, _)| k == "cc") {
        response.headers_mut().append(
            header::CACHE_CONTROL,
            HeaderValue::from_str(value).expect("a Cache-Control value"),
        );
    }
    for (_, value) in params.iter().filter(|(k, _)| k == "csd") {
        response.headers_mut().append(
            "clear-site-data",
            HeaderValue::from_str(value).expect("a Clear-Site-Data value"),
        );
    }
    response
}

/// `/` runs [`act`] taking the session; `/none` runs it without ever extracting it.
fn app<S: SuiteStore>(store: S, config: SessionConfig) -> Router {
    let layer = SessionLayer::new(store)
        .with_config(config)
        .expect("a valid configuration");
    Router::new()
        .route(
            "/",
            routing::get(|q: Query<Vec<(String, String)>>, s: Session| act(q, Some(s))),
        )
        .route(
            "/none",
            routing::get(|q: Query<Vec<(String, String)>>| act(q, None)),
        )
        .layer(layer)
}

fn no_store() -> SessionConfig {
    SessionConfig::default().with_cache_control_no_store(true)
}

/// A GET of `path` with the handler's `Cache-Control` values and the session cookie.
async fn get(base: &str, path: &str, cc: &[&str], cookie: Option<&str>) -> reqwest::Response {
    let mut query: Vec<(&str, &str)> = Vec::new();
    query.extend(cc.iter().map(|v| ("cc", *v)));
    let mut request = client().get(format!("{base}{path}")).query(&query);
    if let Some(key) = cookie {
        request = request.header(header::COOKIE, format!("sessionid={key}"));
    }
    request
        .send()
        .await
        .expect("the request reaches the server")
}

fn cache_control(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::CACHE_CONTROL)
        .iter()
        .map(|v| v.to_str().expect("ASCII Cache-Control").to_owned())
        .collect()
}

/// A session holding `k = v`; returns its key.
async fn new_session(base: &str) -> String {
    let response = get(base, "/?op=set", &[], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    session_cookie(&response, "sessionid").value
}

async fn no_store_when_the_session_is_read_set_or_deleted<S: SuiteStore>() {
    let base = spawn(app(S::new_store(), no_store())).await;
    let key = new_session(&base).await;

    let read = get(&base, "/?op=read", &[], Some(&key)).await;
    assert!(set_cookies(&read).is_empty());
    assert_eq!(cache_control(&read), ["no-store"]);

    let set = get(&base, "/?op=set", &[], None).await;
    assert!(!session_cookie(&set, "sessionid").is_removal());
    assert_eq!(cache_control(&set), ["no-store"]);

    let flushed = get(&base, "/?op=flush", &[], Some(&key)).await;
    assert!(session_cookie(&flushed, "sessionid").is_removal());
    assert_eq!(cache_control(&flushed), ["no-store"]);

    // save_every_request re-sets the cookie of a session the handler never took.
    let base = spawn(app(
        S::new_store(),
        no_store().with_save_every_request(true),
    ))
    .await;
    let key = new_session(&base).await;
    let resaved = get(&base, "/none", &[], Some(&key)).await;
    assert_eq!(session_cookie(&resaved, "sessionid").value, key);
    assert_eq!(cache_control(&resaved), ["no-store"]);
}

async fn no_store_absent_when_the_session_is_not_used<S: SuiteStore>() {
    let base = spawn(app(S::new_store(), no_store())).await;
    let key = new_session(&base).await;
    for (path, cookie) in [
        ("/none", None),
        ("/none", Some(key.as_str())),
        ("/?op=extract", None),
        ("/?op=extract", Some(key.as_str())),
    ] {
        let response = get(&base, path, &[], cookie).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(cache_control(&response).is_empty(), "{path} {cookie:?}");
        assert!(vary(&response).is_empty(), "{path} {cookie:?}");
        // What the handler set stays as it is.
        let own = get(&base, path, &["public, max-age=60"], cookie).await;
        assert_eq!(cache_control(&own), ["public, max-age=60"], "{path}");
    }
}

async fn no_store_absent_when_the_option_is_off<S: SuiteStore>() {
    let base = spawn(app(S::new_store(), SessionConfig::default())).await;
    let key = new_session(&base).await;
    for (op, cookie) in [("read", Some(&key)), ("set", None), ("flush", Some(&key))] {
        let response = get(
            &base,
            &format!("/?op={op}"),
            &[],
            cookie.map(String::as_str),
        )
        .await;
        assert_eq!(vary(&response), ["Cookie"], "{op}");
        assert!(cache_control(&response).is_empty(), "{op}");
        let own = get(&base, &format!("/?op={op}"), &["max-age=60"], None).await;
        assert_eq!(cache_control(&own), ["max-age=60"], "{op}");
    }
}

fn clear_site_data(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("clear-site-data")
        .iter()
        .map(|v| v.to_str().expect("ASCII Clear-Site-Data").to_owned())
        .collect()
}

/// The logout (the response that deletes the cookie) tells the browser to drop its cached
/// pages, back/forward cache included; no other response does, nor any with the option off.
async fn clear_site_data_on_the_logout_only<S: SuiteStore>() {
    let base = spawn(app(S::new_store(), no_store())).await;
    let key = new_session(&base).await;
    for op in ["read", "set", "extract"] {
        let response = get(&base, &format!("/?op={op}"), &[], Some(&key)).await;
        assert!(clear_site_data(&response).is_empty(), "{op}");
    }
    let flushed = get(&base, "/?op=flush", &[], Some(&key)).await;
    assert!(session_cookie(&flushed, "sessionid").is_removal());
    assert_eq!(clear_site_data(&flushed), ["\"cache\""]);
    // Merged with what the handler sent.
    for (own, expected) in [
        (&["\"cookies\""][..], "\"cookies\", \"cache\""),
        (&["\"cache\""][..], "\"cache\""),
        (&["\"*\""][..], "\"*\""),
        (
            &["\"storage\"", "\"cookies\""][..],
            "\"storage\", \"cookies\", \"cache\"",
        ),
    ] {
        let key = new_session(&base).await;
        let mut query: Vec<(&str, &str)> = vec![("op", "flush")];
        query.extend(own.iter().map(|v| ("csd", *v)));
        let response = client()
            .get(format!("{base}/"))
            .query(&query)
            .header(header::COOKIE, format!("sessionid={key}"))
            .send()
            .await
            .expect("the request reaches the server");
        assert_eq!(clear_site_data(&response), [expected], "{own:?}");
    }

    let base = spawn(app(S::new_store(), SessionConfig::default())).await;
    let key = new_session(&base).await;
    let flushed = get(&base, "/?op=flush", &[], Some(&key)).await;
    assert!(session_cookie(&flushed, "sessionid").is_removal());
    assert!(clear_site_data(&flushed).is_empty(), "Django sends none");
}

async fn no_store_merges_with_every_handler_cache_control<S: SuiteStore>() {
    let base = spawn(app(S::new_store(), no_store())).await;
    // (what the handler sets, one header per entry; what the response carries)
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["no-store"]),
        (&["private"], &["private, no-store"]),
        (&["no-store"], &["no-store"]),
        // Already there, in any case and spacing: untouched.
        (&["NO-STORE ,private"], &["NO-STORE ,private"]),
        (
            &["no-cache, must-revalidate"],
            &["no-cache, must-revalidate, no-store"],
        ),
        // Several headers become one.
        (&["private", "no-cache"], &["private, no-cache, no-store"]),
        (&["no-store", "private"], &["no-store, private"]),
        // What would let a cache store or reuse the page goes.
        (&["public, max-age=3600"], &["no-store"]),
        (&["Public", "S-MaxAge=60, max-age=0"], &["no-store"]),
        (
            &["max-age=60, immutable, stale-while-revalidate=30"],
            &["no-store"],
        ),
        (&["must-understand, no-store"], &["no-store"]),
        (
            &["private, max-age=600, stale-if-error=60"],
            &["private, no-store"],
        ),
        // A quoted list is one directive.
        (
            &[r#"no-cache="Set-Cookie, X-Token", max-age=5"#],
            &[r#"no-cache="Set-Cookie, X-Token", no-store"#],
        ),
        (&[" ,, private ,"], &["private, no-store"]),
    ];
    let key = new_session(&base).await;
    for (handler, expected) in cases {
        for (op, cookie) in [("read", Some(&key)), ("set", None)] {
            let path = format!("/?op={op}");
            let response = get(&base, &path, handler, cookie.map(String::as_str)).await;
            assert_eq!(&cache_control(&response), expected, "{op} with {handler:?}");
        }
    }
    // And on the removal of a flushed session's cookie.
    for (handler, expected) in cases {
        let key = new_session(&base).await;
        let response = get(&base, "/?op=flush", handler, Some(&key)).await;
        assert!(session_cookie(&response, "sessionid").is_removal());
        assert_eq!(
            &cache_control(&response),
            expected,
            "flush with {handler:?}"
        );
    }
}

async fn no_store_on_server_errors_and_failed_saves<S: SuiteStore>() {
    // A 5xx is never saved, but a page that read the session still depends on it: it gets
    // `Vary: Cookie` (as in Django) and so `no-store`.
    let base = spawn(app(S::new_store(), no_store())).await;
    let key = new_session(&base).await;
    let response = get(&base, "/?op=fail", &["public"], Some(&key)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(vary(&response), ["Cookie"]);
    assert_eq!(cache_control(&response), ["no-store"]);

    // A save that fails is answered by `OnError`; that response gets it too.
    let response = get(&base, "/?op=delete_midway", &[], Some(&key)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(cache_control(&response), ["no-store"]);
}

async fn partitioned_cookie_and_its_removal<S: SuiteStore>() {
    let config = SessionConfig::default()
        .with_cookie_secure(true)
        .with_cookie_same_site(Some(SameSite::None))
        .with_cookie_partitioned(true);
    let base = spawn(app(S::new_store(), config)).await;
    let response = get(&base, "/?op=set", &[], None).await;
    let cookie = session_cookie(&response, "sessionid");
    assert_eq!(
        cookie.attr_names(),
        [
            "expires",
            "HttpOnly",
            "Max-Age",
            "Partitioned",
            "Path",
            "SameSite",
            "Secure"
        ],
        "{}",
        cookie.raw
    );
    let flushed = get(&base, "/?op=flush", &[], Some(&cookie.value)).await;
    let removal = session_cookie(&flushed, "sessionid");
    assert!(removal.is_removal(), "{}", removal.raw);
    assert!(
        removal.has("Partitioned") && removal.has("Secure"),
        "{}",
        removal.raw
    );

    // Off (the default): no attribute.
    let base = spawn(app(S::new_store(), SessionConfig::default())).await;
    let response = get(&base, "/?op=set", &[], None).await;
    assert!(!session_cookie(&response, "sessionid").has("Partitioned"));
}

#[test]
fn partitioned_without_secure_fails_at_startup() {
    let layer = SessionLayer::new(sessionbase::MemoryStore::new())
        .with_config(SessionConfig::default().with_cookie_partitioned(true));
    match layer {
        Err(Error::Config(message)) => assert!(message.contains("cookie_secure"), "{message}"),
        Err(other) => panic!("expected Error::Config, got {other:?}"),
        Ok(_) => panic!("a Partitioned cookie without Secure was accepted"),
    }
}

on_both_paths! {
    #[tokio::test(flavor = "multi_thread")]
    async fn no_store_when_the_session_is_read_set_or_deleted;
    #[tokio::test(flavor = "multi_thread")]
    async fn no_store_absent_when_the_session_is_not_used;
    #[tokio::test(flavor = "multi_thread")]
    async fn no_store_absent_when_the_option_is_off;
    #[tokio::test(flavor = "multi_thread")]
    async fn no_store_merges_with_every_handler_cache_control;
    #[tokio::test(flavor = "multi_thread")]
    async fn no_store_on_server_errors_and_failed_saves;
    #[tokio::test(flavor = "multi_thread")]
    async fn partitioned_cookie_and_its_removal;
    #[tokio::test(flavor = "multi_thread")]
    async fn clear_site_data_on_the_logout_only;
}
