//! `SessionLayer` over real HTTP: an axum server on a loopback port, driven by reqwest.
//!
//! Each test pins a row of Django's `SessionMiddleware` contract or a promise of the crate
//! (CAS saves, zero store calls when no handler takes the session, errors as statuses).
//!
//! The tests that need a working store are generic over it and run on both dispatch paths
//! (`on_both_paths!` at the end): on `MemoryStore`, which the library calls directly, and on
//! `IoStore<MemoryStore>`, whose calls are pending once as a network store's are. Those
//! about one store (failing, hanging, the memory store's in-place save) or none run once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sessionbase::{
    Error, Expiry, MemoryStore, SameSite, Session, SessionConfig, SessionKey, SessionLayer,
};
use time::{Duration, OffsetDateTime};

use crate::common::{
    self, CountSnapshot, CountingStore, FailingStore, Failure, SetCookie, SuiteStore, client,
    is_generated_key, on_both_paths, session_cookie, set_cookies, spawn, vary,
};

const COOKIE_AGE: i64 = 1_209_600;

type Params = Query<HashMap<String, String>>;

// ----- handlers -----

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> &'a str {
    q.get(name).map(String::as_str).unwrap_or_default()
}

/// `v` as JSON when it parses as JSON, else as a string.
fn json_param(q: &HashMap<String, String>, name: &str) -> Value {
    let raw = param(q, name);
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// Never extracts the session.
async fn untouched() -> &'static str {
    "ok"
}

/// Never extracts the session; sets `Vary: Accept-Encoding` itself.
async fn untouched_vary() -> impl IntoResponse {
    ([(header::VARY, "Accept-Encoding")], "ok")
}

/// Extracts the session and does nothing with it.
async fn extract_only(_session: Session) -> &'static str {
    "ok"
}

/// Reads the whole session: the items as a JSON object.
async fn items(session: Session) -> String {
    let map: serde_json::Map<String, Value> = session.items().into_iter().collect();
    Value::Object(map).to_string()
}

/// Reads one value (`?k=`): its JSON, or `null`.
async fn get_value(session: Session, Query(q): Params) -> String {
    session
        .get_value(param(&q, "k"))
        .unwrap_or(Value::Null)
        .to_string()
}

/// `?k=&v=`: inserts.
async fn set_value(session: Session, Query(q): Params) -> &'static str {
    session.insert_value(param(&q, "k"), json_param(&q, "v"));
    "ok"
}

/// `?k=`: adds one to the counter under `k` (read, modify, write).
async fn increment(session: Session, Query(q): Params) -> String {
    let k = param(&q, "k");
    let n = session.get::<u64>(k).expect("a counter").unwrap_or(0) + 1;
    session.insert(k, n).expect("insert");
    n.to_string()
}

/// `?k=&v=&code=`: inserts, then answers `code`.
async fn set_with_status(session: Session, Query(q): Params) -> StatusCode {
    session.insert_value(param(&q, "k"), json_param(&q, "v"));
    StatusCode::from_u16(param(&q, "code").parse().expect("code")).expect("status")
}

/// Reads the session, with a `Vary` value of the handler's own (`?vary=`).
async fn read_with_vary(session: Session, Query(q): Params) -> Response {
    let n = session.len();
    let mut response = n.to_string().into_response();
    response.headers_mut().insert(
        header::VARY,
        HeaderValue::from_str(param(&q, "vary")).expect("vary value"),
    );
    response
}

/// Inserts, with `Vary: Accept-Encoding` of the handler's own.
async fn set_with_vary(session: Session) -> impl IntoResponse {
    session.insert_value("k", json!("v"));
    ([(header::VARY, "Accept-Encoding")], "ok")
}

async fn flush(session: Session) -> Result<&'static str, Error> {
    session.flush().await?;
    Ok("flushed")
}

async fn clear(session: Session) -> &'static str {
    session.clear();
    "cleared"
}

/// Cycles the key; answers the new key.
async fn cycle(session: Session) -> Result<String, Error> {
    session.cycle_key().await?;
    Ok(session
        .session_key()
        .map(|k| k.to_string())
        .unwrap_or_default())
}

/// `?kind=browser|inactivity|none&secs=N`: sets the expiry and a value.
async fn expiry(session: Session, Query(q): Params) -> &'static str {
    let expiry = match param(&q, "kind") {
        "browser" => Some(Expiry::BrowserClose),
        "inactivity" => Some(Expiry::Inactivity(Duration::seconds(
            param(&q, "secs").parse().expect("secs"),
        ))),
        _ => None,
    };
    session.set_expiry(expiry);
    session.insert_value("with_expiry", json!(true));
    "ok"
}

async fn test_cookie_set(session: Session) -> &'static str {
    session.set_test_cookie();
    "set"
}

/// Answers whether the test cookie worked, then deletes it.
async fn test_cookie_check(session: Session) -> String {
    let worked = session.test_cookie_worked();
    if worked {
        session.delete_test_cookie();
    }
    worked.to_string()
}

/// Inserts and saves by itself; answers the key.
async fn save_itself(session: Session) -> Result<String, Error> {
    session.insert_value("saved_by", json!("handler"));
    session.save().await?;
    Ok(session
        .session_key()
        .map(|k| k.to_string())
        .unwrap_or_default())
}

/// Inserts, then deletes the record behind the session's back (a concurrent logout).
async fn delete_midway(session: Session) -> Result<&'static str, Error> {
    session.insert_value("late", json!("write"));
    session.delete().await?;
    Ok("deleted")
}

/// Every route above, without a layer.
fn routes() -> Router {
    Router::new()
        .route("/untouched", get(untouched))
        .route("/untouched_vary", get(untouched_vary))
        .route("/extract", get(extract_only))
        .route("/items", get(items))
        .route("/get", get(get_value))
        .route("/set", get(set_value))
        .route("/incr", get(increment))
        .route("/set_status", get(set_with_status))
        .route("/read_vary", get(read_with_vary))
        .route("/set_vary", get(set_with_vary))
        .route("/flush", get(flush))
        .route("/clear", get(clear))
        .route("/cycle", get(cycle))
        .route("/expiry", get(expiry))
        .route("/test_cookie/set", get(test_cookie_set))
        .route("/test_cookie/check", get(test_cookie_check))
        .route("/save_itself", get(save_itself))
        .route("/delete_midway", get(delete_midway))
}

// ----- test plumbing -----

/// A server with every route behind `SessionLayer::new(store).with_config(config)`.
async fn serve<S: sessionbase::SessionStore>(store: S, config: SessionConfig) -> String {
    let layer = SessionLayer::new(store)
        .with_config(config)
        .expect("valid config");
    spawn(routes().layer(layer)).await
}

/// A GET of `base + path`, with `sessionid=<cookie>` when given.
async fn get_with(base: &str, path: &str, cookie: Option<&str>) -> reqwest::Response {
    get_named(base, path, "sessionid", cookie).await
}

async fn get_named(
    base: &str,
    path: &str,
    cookie_name: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = client().get(format!("{base}{path}"));
    if let Some(value) = cookie {
        request = request.header(header::COOKIE, format!("{cookie_name}={value}"));
    }
    request.send().await.expect("request reaches the server")
}

async fn body(response: reqwest::Response) -> String {
    response.text().await.expect("response body")
}

async fn json_body(response: reqwest::Response) -> Value {
    let text = body(response).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// Creates a session holding `k = v` over HTTP and returns its key (the cookie value).
async fn new_session(base: &str, k: &str, v: &str) -> String {
    let response = get_with(base, &format!("/set?k={k}&v={v}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response, "sessionid");
    assert!(is_generated_key(&cookie.value), "{cookie:?}");
    cookie.value
}

/// The response's `Date` header, or now.
fn response_date(response: &reqwest::Response) -> OffsetDateTime {
    response
        .headers()
        .get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(common::parse_http_date)
        .unwrap_or_else(OffsetDateTime::now_utc)
}

/// `expires` is `Max-Age` seconds after the response's `Date` (±2 s of clock granularity).
fn assert_expires_matches_max_age(cookie: &SetCookie, response: &reqwest::Response) {
    let max_age = cookie.max_age().expect("Max-Age");
    let expires = cookie.expires().expect("expires");
    let expected = response_date(response) + Duration::seconds(max_age);
    let off = (expires - expected).abs();
    assert!(
        off <= Duration::seconds(2),
        "expires {expires} is not Date + Max-Age ({expected}): {}",
        cookie.raw
    );
}

fn assert_no_set_cookie(response: &reqwest::Response) {
    assert!(
        set_cookies(response).is_empty(),
        "unexpected Set-Cookie: {:?}",
        set_cookies(response)
    );
}

fn assert_vary_cookie_only(response: &reqwest::Response) {
    assert_eq!(vary(response), ["Cookie"], "Vary of {}", response.url());
}

fn assert_no_vary(response: &reqwest::Response) {
    assert!(
        vary(response).is_empty(),
        "unexpected Vary: {:?}",
        vary(response)
    );
}

/// Asserts a Django deletion cookie for the default configuration. `HttpOnly` may appear:
/// the crate keeps it on removals when configured (Django's `delete_cookie` leaves it out).
fn assert_default_removal(cookie: &SetCookie) {
    assert_eq!(cookie.name, "sessionid");
    assert!(cookie.is_removal(), "not a deletion cookie: {}", cookie.raw);
    let names: Vec<&str> = cookie
        .attr_names()
        .into_iter()
        .filter(|n| !n.eq_ignore_ascii_case("HttpOnly"))
        .collect();
    assert_eq!(
        names,
        ["expires", "Max-Age", "Path", "SameSite"],
        "{}",
        cookie.raw
    );
    assert_eq!(cookie.attr_value("Path"), "/");
    assert_eq!(cookie.attr_value("SameSite"), "Lax");
    assert!(!cookie.has("Secure"), "{}", cookie.raw);
    assert!(
        cookie
            .raw
            .starts_with("sessionid=; expires=Thu, 01 Jan 1970 00:00:00 GMT; "),
        "{}",
        cookie.raw
    );
}

async fn load<S: SuiteStore>(store: &S, key: &str) -> Session {
    Session::load(store.clone(), SessionConfig::default(), key)
        .await
        .expect("MemoryStore loads never fail")
}

/// Whether the store holds a live record under `key`.
async fn stored<S: SuiteStore>(store: &S, key: &str) -> bool {
    let session = Session::new(store.clone(), SessionConfig::default());
    session.exists(key).await.expect("exists")
}

// ----- 1. the cookie of a new session -----

async fn new_session_sets_djangos_default_cookie<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;

    let response = get_with(&base, "/set?k=a&v=1", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(&response).len(), 1);
    let cookie = session_cookie(&response, "sessionid");
    assert!(is_generated_key(&cookie.value), "{}", cookie.raw);
    assert_eq!(
        cookie.attr_names(),
        ["expires", "HttpOnly", "Max-Age", "Path", "SameSite"],
        "Django's attribute order: {}",
        cookie.raw
    );
    let expires = cookie.attr_value("expires").to_owned();
    assert_eq!(
        cookie.raw,
        format!(
            "sessionid={}; expires={expires}; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax",
            cookie.value
        )
    );
    assert_eq!(cookie.max_age(), Some(COOKIE_AGE));
    assert_expires_matches_max_age(&cookie, &response);
    assert_vary_cookie_only(&response);

    // The cookie names a live record holding the value.
    let session = load(&store, &cookie.value).await;
    assert_eq!(session.get_value("a"), Some(json!(1)));
}

async fn configured_cookie_attributes_all_appear<S: SuiteStore>() {
    let config = SessionConfig::default()
        .with_cookie_name("sid")
        .with_cookie_domain(Some(".example.local".into()))
        .with_cookie_path("/app/")
        .with_cookie_secure(true)
        .with_cookie_same_site(Some(SameSite::Strict))
        .with_cookie_http_only(false)
        .with_cookie_age(Duration::hours(1));
    let base = serve(S::new_store(), config).await;

    let response = get_named(&base, "/set?k=a&v=1", "sid", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response, "sid");
    assert!(is_generated_key(&cookie.value), "{}", cookie.raw);
    assert_eq!(
        cookie.attr_names(),
        ["Domain", "expires", "Max-Age", "Path", "SameSite", "Secure"],
        "{}",
        cookie.raw
    );
    assert!(!cookie.has("HttpOnly"), "{}", cookie.raw);
    assert_eq!(cookie.attr_value("Domain"), ".example.local");
    assert_eq!(cookie.attr_value("Path"), "/app/");
    assert_eq!(cookie.attr_value("SameSite"), "Strict");
    assert_eq!(cookie.attr("Secure"), Some(None));
    assert_eq!(cookie.max_age(), Some(3600));
    assert_expires_matches_max_age(&cookie, &response);

    // The configured name is the one read back.
    let response = get_named(&base, "/get?k=a", "sid", Some(&cookie.value)).await;
    assert_eq!(json_body(response).await, json!(1));
    // A cookie under the default name is not the session cookie here.
    let response = get_named(&base, "/get?k=a", "sessionid", Some(&cookie.value)).await;
    assert_eq!(json_body(response).await, Value::Null);
}

async fn samesite_none_and_no_samesite<S: SuiteStore>() {
    let none = SessionConfig::default()
        .with_cookie_same_site(Some(SameSite::None))
        .with_cookie_secure(true);
    let base = serve(S::new_store(), none).await;
    let cookie = session_cookie(&get_with(&base, "/set?k=a&v=1", None).await, "sessionid");
    assert_eq!(cookie.attr_value("SameSite"), "None");
    assert!(cookie.has("Secure"), "{}", cookie.raw);

    let absent = SessionConfig::default().with_cookie_same_site(None);
    let base = serve(S::new_store(), absent).await;
    let cookie = session_cookie(&get_with(&base, "/set?k=a&v=1", None).await, "sessionid");
    assert!(!cookie.has("SameSite"), "{}", cookie.raw);
    assert_eq!(
        cookie.attr_names(),
        ["expires", "HttpOnly", "Max-Age", "Path"]
    );

    // SameSite=None without Secure would be dropped by browsers: refused at startup.
    let broken = SessionConfig::default().with_cookie_same_site(Some(SameSite::None));
    assert!(matches!(
        SessionLayer::new(S::new_store()).with_config(broken),
        Err(Error::Config(_))
    ));
}

// ----- 2. expiry in the cookie -----

async fn browser_close_setting_gives_no_max_age_and_no_expires<S: SuiteStore>() {
    let store = S::new_store();
    let config = SessionConfig::default().with_expire_at_browser_close(true);
    let base = serve(store.clone(), config).await;

    let response = get_with(&base, "/set?k=a&v=1", None).await;
    let cookie = session_cookie(&response, "sessionid");
    assert_eq!(
        cookie.raw,
        format!("sessionid={}; HttpOnly; Path=/; SameSite=Lax", cookie.value)
    );
    assert!(!cookie.has("Max-Age") && !cookie.has("expires"));
    // The record still lives server-side, for the cookie age.
    let response = get_with(&base, "/get?k=a", Some(&cookie.value)).await;
    assert_eq!(json_body(response).await, json!(1));

    // A session's own non-zero expiry beats the setting (Django's matrix: 10 → False).
    let response = get_with(&base, "/expiry?kind=inactivity&secs=300", None).await;
    let cookie = session_cookie(&response, "sessionid");
    assert_eq!(cookie.max_age(), Some(300), "{}", cookie.raw);
}

async fn set_expiry_controls_max_age<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;

    // set_expiry(0): a browser-length cookie.
    let response = get_with(&base, "/expiry?kind=browser", None).await;
    let cookie = session_cookie(&response, "sessionid");
    assert!(
        !cookie.has("Max-Age") && !cookie.has("expires"),
        "{}",
        cookie.raw
    );
    assert_eq!(
        cookie.raw,
        format!("sessionid={}; HttpOnly; Path=/; SameSite=Lax", cookie.value)
    );
    assert_eq!(
        load(&store, &cookie.value).await.get_value("with_expiry"),
        Some(json!(true))
    );

    // set_expiry(300).
    let response = get_with(&base, "/expiry?kind=inactivity&secs=300", None).await;
    let cookie = session_cookie(&response, "sessionid");
    assert_eq!(cookie.max_age(), Some(300), "{}", cookie.raw);
    assert_expires_matches_max_age(&cookie, &response);
    assert_eq!(
        cookie.attr_names(),
        ["expires", "HttpOnly", "Max-Age", "Path", "SameSite"]
    );

    // set_expiry(-10): Django sends Max-Age=-10 and an expires in the past.
    let response = get_with(&base, "/expiry?kind=inactivity&secs=-10", None).await;
    let cookie = session_cookie(&response, "sessionid");
    assert_eq!(cookie.max_age(), Some(-10), "{}", cookie.raw);
    assert!(cookie.raw.contains("; Max-Age=-10; "), "{}", cookie.raw);
    assert_expires_matches_max_age(&cookie, &response);
    assert!(cookie.expires().unwrap() < response_date(&response));
    // And the record is already expired.
    assert!(load(&store, &cookie.value).await.session_key().is_none());
}

// ----- 3. Vary -----

async fn vary_cookie_when_only_read<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let key = new_session(&base, "a", "1").await;

    // Reading without a cookie.
    let response = get_with(&base, "/items", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_no_set_cookie(&response);
    assert_vary_cookie_only(&response);
    assert_eq!(json_body(response).await, json!({}));

    // Reading with a valid cookie.
    let response = get_with(&base, "/items", Some(&key)).await;
    assert_no_set_cookie(&response);
    assert_vary_cookie_only(&response);
    assert_eq!(json_body(response).await, json!({"a": 1}));
}

async fn no_vary_and_no_cookie_when_session_never_extracted<S: SuiteStore>() {
    let base = serve(S::new_store(), SessionConfig::default()).await;
    let key = new_session(&base, "a", "1").await;
    for cookie in [None, Some(key.as_str())] {
        let response = get_with(&base, "/untouched", cookie).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_no_set_cookie(&response);
        assert_no_vary(&response);
        assert_eq!(body(response).await, "ok");
    }
    // The handler's own Vary is left alone.
    let response = get_with(&base, "/untouched_vary", Some(&key)).await;
    assert_eq!(vary(&response), ["Accept-Encoding"]);
    assert_no_set_cookie(&response);
}

async fn vary_is_merged_with_the_handlers_and_never_duplicated<S: SuiteStore>() {
    let base = serve(S::new_store(), SessionConfig::default()).await;
    let key = new_session(&base, "a", "1").await;

    let response = get_with(&base, "/read_vary?vary=Accept-Encoding", Some(&key)).await;
    assert_eq!(vary(&response), ["Accept-Encoding, Cookie"]);
    assert_no_set_cookie(&response);

    // Already there (any case): not added again.
    for existing in [
        "Cookie",
        "cookie",
        "Accept-Encoding, Cookie",
        "accept-encoding, cookie",
    ] {
        let response = get_with(
            &base,
            &format!("/read_vary?vary={}", existing.replace(' ', "%20")),
            Some(&key),
        )
        .await;
        assert_eq!(vary(&response), [existing], "existing Vary {existing:?}");
    }

    // `*` stays `*`.
    let response = get_with(&base, "/read_vary?vary=*", Some(&key)).await;
    assert_eq!(vary(&response), ["*"]);

    // Merged on the save path too.
    let response = get_with(&base, "/set_vary", None).await;
    assert_eq!(vary(&response), ["Accept-Encoding, Cookie"]);
    let cookie = session_cookie(&response, "sessionid");
    assert!(is_generated_key(&cookie.value));
}

// ----- 4. an emptied session deletes its cookie -----

async fn flush_deletes_the_cookie_and_the_record<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let key = new_session(&base, "user", "42").await;
    assert!(stored(&store, &key).await);

    let response = get_with(&base, "/flush", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response, "sessionid");
    assert_default_removal(&cookie);
    assert_vary_cookie_only(&response);

    // The old key no longer loads, on the server or over HTTP.
    assert!(!stored(&store, &key).await);
    assert!(load(&store, &key).await.is_empty());
    let response = get_with(&base, "/items", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Django: unknown key + a read → the key is dropped → deletion cookie again.
    assert_default_removal(&session_cookie(&response, "sessionid"));
    assert_eq!(json_body(response).await, json!({}));
    assert!(store.is_empty(), "nothing was recreated");
}

async fn flush_without_a_cookie_sets_nothing<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let response = get_with(&base, "/flush", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_no_set_cookie(&response);
    assert_vary_cookie_only(&response);
    assert!(store.is_empty());
}

async fn clear_with_a_malformed_cookie_deletes_it<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let response = get_with(&base, "/clear", Some("abc")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_default_removal(&session_cookie(&response, "sessionid"));
    assert_vary_cookie_only(&response);
    assert!(store.is_empty());
}

/// Django's `SessionBase.clear()` keeps the key, so the session is not empty; it is saved
/// with no data and its cookie re-sent (test `test_empty_session_saved`), not deleted.
async fn clear_with_a_valid_cookie_saves_an_empty_session_under_the_same_key<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let key = new_session(&base, "a", "1").await;

    let response = get_with(&base, "/clear", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response, "sessionid");
    assert_eq!(cookie.value, key, "{}", cookie.raw);
    assert_eq!(cookie.max_age(), Some(COOKIE_AGE));
    assert_vary_cookie_only(&response);

    assert!(stored(&store, &key).await);
    let response = get_with(&base, "/items", Some(&key)).await;
    assert_no_set_cookie(&response);
    assert_eq!(json_body(response).await, json!({}));
}

// ----- 5. no save on 5xx -----

async fn server_errors_never_save_a_new_session<S: SuiteStore>() {
    for code in [500u16, 502, 503] {
        let store = CountingStore::new(S::new_store());
        let base = serve(store.clone(), SessionConfig::default()).await;
        let response = get_with(&base, &format!("/set_status?code={code}&k=a&v=1"), None).await;
        assert_eq!(response.status().as_u16(), code);
        assert_no_set_cookie(&response);
        // The session was used: Vary still applies.
        assert_vary_cookie_only(&response);
        let counts = store.snapshot();
        assert_eq!(counts.create, 0, "{code}: {counts:?}");
        assert_eq!(counts.total(), 0, "{code}: {counts:?}");
        assert!(store.inner().is_empty(), "{code}: a record was stored");
    }
}

async fn server_errors_never_save_an_existing_session<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default()).await;
    let key = new_session(&base, "a", "\"before\"").await;
    for code in [500u16, 502, 503] {
        let before = store.snapshot();
        let response = get_with(
            &base,
            &format!("/set_status?code={code}&k=a&v=after{code}"),
            Some(&key),
        )
        .await;
        assert_eq!(response.status().as_u16(), code);
        assert_no_set_cookie(&response);
        assert_vary_cookie_only(&response);
        assert_eq!(store.snapshot().save, before.save, "{code}: saved");

        let response = get_with(&base, "/get?k=a", Some(&key)).await;
        assert_eq!(json_body(response).await, json!("before"), "{code}");
    }
}

async fn a_404_still_saves<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default()).await;
    let response = get_with(&base, "/set_status?code=404&k=a&v=1", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let cookie = session_cookie(&response, "sessionid");
    assert!(is_generated_key(&cookie.value));
    assert_vary_cookie_only(&response);
    assert_eq!(store.snapshot().create, 1);

    let response = get_with(&base, "/get?k=a", Some(&cookie.value)).await;
    assert_eq!(json_body(response).await, json!(1));

    // And on an existing session.
    let response = get_with(&base, "/set_status?code=404&k=a&v=2", Some(&cookie.value)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(session_cookie(&response, "sessionid").value, cookie.value);
    let response = get_with(&base, "/get?k=a", Some(&cookie.value)).await;
    assert_eq!(json_body(response).await, json!(2));
}

// ----- 6. save_every_request -----

async fn save_every_request_resaves_an_untouched_session<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let config = SessionConfig::default().with_save_every_request(true);
    let base = serve(store.clone(), config).await;
    let key = new_session(&base, "a", "1").await;

    for path in ["/untouched", "/extract"] {
        let before = store.snapshot();
        let response = get_with(&base, path, Some(&key)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let cookie = session_cookie(&response, "sessionid");
        assert_eq!(cookie.value, key, "{path}: same key re-sent");
        assert_eq!(cookie.max_age(), Some(COOKIE_AGE), "{path}");
        assert_expires_matches_max_age(&cookie, &response);
        assert_vary_cookie_only(&response);
        // Nothing changed: the record's expiry moves, the record is not rewritten.
        let after = store.snapshot();
        assert_eq!(after.touch, before.touch + 1, "{path}: {after:?}");
        assert_eq!(after.save, before.save, "{path}: {after:?}");
        assert_eq!(after.create, before.create, "{path}: {after:?}");
    }
    // The data survived the re-saves.
    let response = get_with(&base, "/get?k=a", Some(&key)).await;
    assert_eq!(json_body(response).await, json!(1));
}

async fn save_every_request_without_a_cookie_does_nothing<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let config = SessionConfig::default().with_save_every_request(true);
    let base = serve(store.clone(), config).await;
    for path in ["/untouched", "/extract"] {
        let response = get_with(&base, path, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_no_set_cookie(&response);
        assert_no_vary(&response);
    }
    assert_eq!(store.snapshot(), CountSnapshot::default());
}

async fn save_every_request_with_an_unknown_key_creates_a_new_one<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let config = SessionConfig::default().with_save_every_request(true);
    let base = serve(store.clone(), config).await;
    for path in ["/untouched", "/extract"] {
        let response = get_with(&base, path, Some("abcdefghij")).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}: not a 400");
        let cookie = session_cookie(&response, "sessionid");
        assert_ne!(
            cookie.value, "abcdefghij",
            "{path}: the client's key adopted"
        );
        assert!(is_generated_key(&cookie.value), "{path}: {}", cookie.raw);
        assert_eq!(cookie.max_age(), Some(COOKIE_AGE));
        assert_vary_cookie_only(&response);
        assert!(stored(store.inner(), &cookie.value).await, "{path}");
    }
    assert!(!stored(store.inner(), "abcdefghij").await);
}

// ----- 7. the test cookie -----

async fn test_cookie_round_trip<S: SuiteStore>() {
    let base = serve(S::new_store(), SessionConfig::default()).await;

    let response = get_with(&base, "/test_cookie/set", None).await;
    let key = session_cookie(&response, "sessionid").value;

    // Without the cookie back: it did not work.
    let response = get_with(&base, "/test_cookie/check", None).await;
    assert_eq!(body(response).await, "false");

    // With it: it worked, and the check deletes it.
    let response = get_with(&base, "/test_cookie/check", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // delete_test_cookie modifies the session: saved, same key re-sent.
    assert_eq!(session_cookie(&response, "sessionid").value, key);
    assert_eq!(body(response).await, "true");

    let response = get_with(&base, "/test_cookie/check", Some(&key)).await;
    assert_no_set_cookie(&response);
    assert_eq!(body(response).await, "false", "the test cookie was deleted");
}

// ----- 8. cycle_key -----

async fn cycle_key_moves_the_data_to_a_new_key<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let old = new_session(&base, "user", "\"alice\"").await;

    let response = get_with(&base, "/cycle", Some(&old)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response, "sessionid");
    assert_vary_cookie_only(&response);
    let new = cookie.value.clone();
    assert_ne!(new, old);
    assert!(is_generated_key(&new));
    assert_eq!(
        body(response).await,
        new,
        "the handler saw the key the cookie sends"
    );

    let response = get_with(&base, "/get?k=user", Some(&new)).await;
    assert_eq!(json_body(response).await, json!("alice"));

    let response = get_with(&base, "/get?k=user", Some(&old)).await;
    assert_eq!(json_body(response).await, Value::Null);
    assert!(!stored(&store, &old).await);
    assert_eq!(store.len(), 1, "only the new record is left");
}

// ----- 9. forged, expired and malformed keys -----

/// Writes through `cookie`; asserts a fresh key, never the client's.
async fn assert_write_gets_fresh_key<S: SuiteStore>(base: &str, store: &S, cookie: &str) {
    let response = get_with(base, "/set?k=a&v=1", Some(cookie)).await;
    assert_eq!(response.status(), StatusCode::OK, "cookie {cookie:?}");
    let set = session_cookie(&response, "sessionid");
    assert_ne!(set.value, cookie, "fixation: the client's key was adopted");
    assert!(is_generated_key(&set.value), "{}", set.raw);
    assert_vary_cookie_only(&response);
    assert!(stored(store, &set.value).await);
    let response = get_with(base, "/items", Some(&set.value)).await;
    assert_eq!(json_body(response).await, json!({"a": 1}));
}

async fn forged_key_gets_a_fresh_key<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let forged = SessionKey::generate().unwrap().to_string();
    assert_write_gets_fresh_key(&base, &store, &forged).await;
    assert!(!stored(&store, &forged).await);
    assert_eq!(store.len(), 1);
}

async fn expired_key_gets_a_fresh_key<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;

    // Already expired: a negative inactivity.
    let stale = Session::new(store.clone(), SessionConfig::default());
    stale.insert_value("old", json!(true));
    stale.set_expiry(Some(Expiry::Inactivity(Duration::seconds(-10))));
    stale.save().await.unwrap();
    let stale = stale.session_key().unwrap().to_string();
    let response = get_with(&base, "/items", Some(&stale)).await;
    // Read with an expired key: the key is dropped, the session is empty → deletion cookie.
    assert_default_removal(&session_cookie(&response, "sessionid"));
    assert_eq!(json_body(response).await, json!({}));
    assert_write_gets_fresh_key(&base, &store, &stale).await;

    // Expired by waiting: a one-second inactivity, saved over HTTP.
    let response = get_with(&base, "/expiry?kind=inactivity&secs=1", None).await;
    let key = session_cookie(&response, "sessionid").value;
    let response = get_with(&base, "/get?k=with_expiry", Some(&key)).await;
    assert_eq!(json_body(response).await, json!(true), "live before expiry");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let response = get_with(&base, "/get?k=with_expiry", Some(&key)).await;
    assert_eq!(json_body(response).await, Value::Null, "expired");
    assert_write_gets_fresh_key(&base, &store, &key).await;
}

async fn too_short_key_gets_a_fresh_key<S: SuiteStore>() {
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    assert_write_gets_fresh_key(&base, &store, "abc").await;
    for malformed in ["ABCDEFGHIJ", "abc.defghij", &"a".repeat(41)] {
        assert_write_gets_fresh_key(&base, &store, malformed).await;
    }
}

async fn djangos_table_for_malformed_and_unknown_cookies<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default()).await;

    // `abc` (too short, so no key) + a handler that never touches the session: the
    // session is empty and a cookie was sent → deletion cookie + Vary.
    for path in ["/untouched", "/extract"] {
        let response = get_with(&base, path, Some("abc")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_default_removal(&session_cookie(&response, "sessionid"));
        assert_vary_cookie_only(&response);
    }

    // `abcdefghij` (well-formed, unknown) + never extracted, or extracted and unused:
    // the key is set and not loaded → not empty → nothing at all.
    for path in ["/untouched", "/extract"] {
        let response = get_with(&base, path, Some("abcdefghij")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_no_set_cookie(&response);
        assert_no_vary(&response);
    }

    // `abcdefghij` + a read: the load drops the key → empty → deletion cookie + Vary.
    let response = get_with(&base, "/items", Some("abcdefghij")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_default_removal(&session_cookie(&response, "sessionid"));
    assert_vary_cookie_only(&response);
    assert_eq!(json_body(response).await, json!({}));

    assert_eq!(store.snapshot().save, 0);
    assert_eq!(store.snapshot().create, 0);
    assert!(store.inner().is_empty());
}

// ----- 10. a session deleted during the request -----

async fn session_deleted_midway_is_a_400_and_not_resurrected<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default()).await;
    let key = new_session(&base, "a", "1").await;
    let creates = store.snapshot().create;

    let response = get_with(&base, "/delete_midway", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_no_set_cookie(&response);

    assert!(!stored(store.inner(), &key).await, "resurrected");
    assert!(store.inner().is_empty());
    assert_eq!(
        store.snapshot().create,
        creates,
        "recreated under a new key"
    );
    let session = load(store.inner(), &key).await;
    assert!(session.session_key().is_none());
    assert_eq!(session.get_value("late"), None);
}

/// A server on `store` whose `/set` stores `a = 1` and whose `/interleaved` handler writes
/// `written = "handler"`, then lets `other` act on a second `Session` of the same record, as
/// a concurrent request would, before the layer saves the handler's session. Returns the
/// server's base URL and the key of a session created through `/set`.
async fn interleaved<S, F, Fut>(store: &S, other: F) -> (String, String)
where
    S: SuiteStore,
    F: Fn(Session) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send,
{
    let other_store = store.clone();
    let app = Router::new()
        .route(
            "/set",
            get(|session: Session| async move {
                session.insert_value("a", json!(1));
                "ok"
            }),
        )
        .route(
            "/interleaved",
            get(move |session: Session| {
                let (store, other) = (other_store.clone(), other.clone());
                async move {
                    session.insert_value("written", json!("handler"));
                    let key = session.session_key().expect("keyed session").to_string();
                    other(Session::load(store, SessionConfig::default(), &key).await?).await?;
                    Ok::<_, Error>("ok")
                }
            }),
        )
        .layer(SessionLayer::new(store.clone()));
    let base = spawn(app).await;
    let key = new_session(&base, "a", "1").await;
    (base, key)
}

async fn concurrent_logout_through_another_session_is_a_400<S: SuiteStore>() {
    let store = S::new_store();
    // The handler writes, then a "concurrent request" logs the user out.
    let (base, key) =
        interleaved(&store, |other: Session| async move { other.flush().await }).await;

    let response = get_with(&base, "/interleaved", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_no_set_cookie(&response);
    assert!(!stored(&store, &key).await, "resurrected");
    assert!(store.is_empty(), "recreated under another key");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_save_that_loses_a_race_on_the_memory_store_merges_and_sets_the_cookie() {
    // The memory store saves without boxing a future; when that first attempt loses the
    // compare-and-swap, the layer must fall back to the full save, which reloads and merges.
    let store = MemoryStore::new();
    // Another request saves the same session first.
    let (base, key) = interleaved(&store, |other: Session| async move {
        other.insert_value("theirs", json!("racer"));
        other.save().await
    })
    .await;

    let response = get_with(&base, "/interleaved", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(session_cookie(&response, "sessionid").value, key);
    let session = load(&store, &key).await;
    assert_eq!(session.get_value("a"), Some(json!(1)));
    assert_eq!(session.get_value("written"), Some(json!("handler")));
    assert_eq!(session.get_value("theirs"), Some(json!("racer")));
}

// ----- 11. store calls -----

async fn handlers_that_never_extract_cost_no_store_call<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default()).await;
    let key = new_session(&base, "n", "0").await;
    let counts = store.counts();
    counts.reset();

    for cookie in [None, Some(key.as_str()), Some("abc"), Some("abcdefghij")] {
        let response = get_with(&base, "/untouched", cookie).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            store.snapshot(),
            CountSnapshot::default(),
            "cookie {cookie:?}"
        );
    }
}

async fn store_calls_are_minimal<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default()).await;

    // A new session with one insert: one create, no load.
    let key = new_session(&base, "n", "0").await;
    assert_eq!(
        store.snapshot(),
        CountSnapshot {
            create: 1,
            ..CountSnapshot::default()
        }
    );

    // Read-only with a valid cookie: exactly one load.
    store.counts().reset();
    let response = get_with(&base, "/get?k=n", Some(&key)).await;
    assert_eq!(json_body(response).await, json!(0));
    assert_eq!(
        store.snapshot(),
        CountSnapshot {
            load: 1,
            ..CountSnapshot::default()
        }
    );

    // Read-only without a cookie: nothing to load.
    store.counts().reset();
    let response = get_with(&base, "/items", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(store.snapshot(), CountSnapshot::default());

    // An increment: one load and one save.
    store.counts().reset();
    let response = get_with(&base, "/set?k=n&v=1", Some(&key)).await;
    assert_eq!(session_cookie(&response, "sessionid").value, key);
    assert_eq!(
        store.snapshot(),
        CountSnapshot {
            load: 1,
            save: 1,
            ..CountSnapshot::default()
        }
    );

    // Extracted but unused, with a valid cookie: the extractor's one load.
    store.counts().reset();
    let response = get_with(&base, "/extract", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        store.snapshot(),
        CountSnapshot {
            load: 1,
            ..CountSnapshot::default()
        }
    );
}

// ----- 12. concurrency -----

/// A single-page app firing parallel requests with one cookie: 16 connections, each
/// incrementing its own counter in the same session 25 times. Every increment is kept (the
/// saves of one process chain on each other; a lost race reloads at once).
async fn sixteen_connections_incrementing_one_session_keep_every_increment<S: SuiteStore>() {
    const CONNECTIONS: usize = 16;
    const ROUNDS: u64 = 25;
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let key = new_session(&base, "init", "0").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let (client, base, key) = (client(), base.clone(), key.clone());
        tasks.spawn(async move {
            for round in 1..=ROUNDS {
                let response = client
                    .get(format!("{base}/incr?k=c{i}"))
                    .header(header::COOKIE, format!("sessionid={key}"))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), StatusCode::OK, "c{i} round {round}");
                let seen: u64 = response.text().await.expect("body").parse().expect("n");
                // Its own counter, written only by this connection: never lost in between.
                assert_eq!(seen, round, "c{i} lost an increment");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("connection");
    }
    let items = json_body(get_with(&base, "/items", Some(&key)).await).await;
    for i in 0..CONNECTIONS {
        assert_eq!(items.get(format!("c{i}")), Some(&json!(ROUNDS)), "c{i}");
    }
    assert_eq!(items.get("init"), Some(&json!(0)));
}

async fn concurrent_writers_of_different_keys_all_keep_their_write<S: SuiteStore>() {
    // 200 concurrent requests on one session, each setting its own key.
    const WRITERS: usize = 200;
    let store = S::new_store();
    let base = serve(store.clone(), SessionConfig::default()).await;
    let key = new_session(&base, "init", "0").await;

    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        tasks.spawn(async move {
            let response = client
                .get(format!("{base}/set?k=k{i}&v={i}"))
                .header(header::COOKIE, format!("sessionid={key}"))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let cookie = set_cookies(&response)
                .into_iter()
                .find(|c| c.name == "sessionid");
            (i, status, cookie)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, status, cookie) = joined.expect("task");
        if status != StatusCode::OK {
            failures.push((i, status));
            continue;
        }
        let cookie = cookie.unwrap_or_else(|| panic!("request {i}: no Set-Cookie"));
        assert_eq!(cookie.value, key, "request {i} moved the session");
    }
    assert!(failures.is_empty(), "failed requests: {failures:?}");

    let response = get_with(&base, "/items", Some(&key)).await;
    let items = json_body(response).await;
    let object = items.as_object().expect("object");
    for i in 0..WRITERS {
        assert_eq!(object.get(&format!("k{i}")), Some(&json!(i)), "k{i} lost");
    }
    assert_eq!(object.get("init"), Some(&json!(0)), "init lost");
    assert_eq!(object.len(), WRITERS + 1);

    let session = load(&store, &key).await;
    assert_eq!(session.len(), WRITERS + 1);
}

async fn concurrent_writers_of_the_same_key_last_one_wins<S: SuiteStore>() {
    let base = serve(S::new_store(), SessionConfig::default()).await;
    let key = new_session(&base, "other", "1").await;
    let client = client();
    for round in 0..10 {
        let (a, b) = (format!("\"a{round}\""), format!("\"b{round}\""));
        let send = |v: String| {
            client
                .get(format!("{base}/set?k=same&v={v}"))
                .header(header::COOKIE, format!("sessionid={key}"))
                .send()
        };
        let (ra, rb) = tokio::join!(send(a), send(b));
        let (ra, rb) = (ra.expect("request a"), rb.expect("request b"));
        assert_eq!(ra.status(), StatusCode::OK, "round {round}");
        assert_eq!(rb.status(), StatusCode::OK, "round {round}");
        assert_eq!(session_cookie(&ra, "sessionid").value, key);
        assert_eq!(session_cookie(&rb, "sessionid").value, key);

        let response = get_with(&base, "/items", Some(&key)).await;
        let items = json_body(response).await;
        let same = &items["same"];
        assert!(
            *same == json!(format!("a{round}")) || *same == json!(format!("b{round}")),
            "round {round}: {same}"
        );
        assert_eq!(
            items["other"],
            json!(1),
            "round {round}: untouched key lost"
        );
    }
}

// ----- 13. a handler that saves by itself -----

async fn handler_save_still_sets_the_cookie<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default()).await;
    let response = get_with(&base, "/save_itself", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response, "sessionid");
    assert!(is_generated_key(&cookie.value));
    assert_eq!(cookie.max_age(), Some(COOKIE_AGE));
    assert_vary_cookie_only(&response);
    assert_eq!(body(response).await, cookie.value);
    assert_eq!(store.snapshot().create, 1, "one record, not two");
    assert_eq!(store.inner().len(), 1);

    let response = get_with(&base, "/get?k=saved_by", Some(&cookie.value)).await;
    assert_eq!(json_body(response).await, json!("handler"));
}

// ----- 14. the extractor without a layer -----

#[tokio::test(flavor = "multi_thread")]
async fn extractor_without_a_layer_is_a_500() {
    let app =
        Router::new().route("/extract", get(extract_only)).route(
            "/optional",
            get(|session: Option<Session>| async move {
                if session.is_some() { "some" } else { "none" }
            }),
        );
    let base = spawn(app).await;
    let response = get_with(&base, "/extract", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_no_set_cookie(&response);
    // The cause is logged, not sent.
    assert!(!body(response).await.contains("SessionLayer"));

    let response = get_with(&base, "/extract", Some("abcdefghij")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    // Option<Session>: no layer is None, not an error.
    let response = get_with(&base, "/optional", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "none");
}

// ----- 15. a failing store -----

async fn failing_store_answers(failure: Failure, expected: StatusCode) {
    let store = FailingStore::new(failure);
    let base = serve(store.clone(), SessionConfig::default()).await;
    let valid = SessionKey::generate().unwrap().to_string();

    // The extractor's load fails.
    let response = get_with(&base, "/items", Some(&valid)).await;
    assert_eq!(response.status(), expected, "{failure:?}: load");
    assert_no_set_cookie(&response);
    let text = body(response).await;
    assert!(!text.contains("backend is down"), "cause leaked: {text:?}");

    // The layer's create fails.
    let response = get_with(&base, "/set?k=a&v=1", None).await;
    assert_eq!(response.status(), expected, "{failure:?}: create");
    assert_no_set_cookie(&response);

    // A handler's own cycle_key (a create) fails.
    let response = get_with(&base, "/cycle", None).await;
    assert_eq!(response.status(), expected, "{failure:?}: cycle_key");

    // Handlers that never extract are unaffected, cookie or not.
    let calls = store.calls();
    for cookie in [None, Some(valid.as_str()), Some("abc")] {
        let response = get_with(&base, "/untouched", cookie).await;
        assert_eq!(response.status(), StatusCode::OK, "{failure:?}: {cookie:?}");
        assert_eq!(body(response).await, "ok");
    }
    assert_eq!(store.calls(), calls, "untouched handlers reached the store");

    // The server is still up.
    let response = get_with(&base, "/untouched", None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn unavailable_store_is_a_503() {
    failing_store_answers(Failure::Unavailable, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_store_is_a_500() {
    failing_store_answers(Failure::Other, StatusCode::INTERNAL_SERVER_ERROR).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn save_every_request_with_a_failing_store_fails_the_request() {
    let store = FailingStore::new(Failure::Unavailable);
    let config = SessionConfig::default().with_save_every_request(true);
    let base = serve(store, config).await;
    let valid = SessionKey::generate().unwrap().to_string();
    // The layer has to load the untouched session to re-save it, and cannot.
    let response = get_with(&base, "/untouched", Some(&valid)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_no_set_cookie(&response);
}

async fn on_error_hook_shapes_failed_saves<S: SuiteStore>() {
    let on_error = |e: &Error| -> Response<axum::body::Body> {
        let mut response = (
            StatusCode::IM_A_TEAPOT,
            format!("custom {}", e.status().as_u16()),
        )
            .into_response();
        response
            .headers_mut()
            .insert("x-session-error", HeaderValue::from_static("1"));
        response
    };

    // A failed create.
    let layer = SessionLayer::new(FailingStore::new(Failure::Unavailable)).on_error(on_error);
    let base = spawn(routes().layer(layer)).await;
    let response = get_with(&base, "/set?k=a&v=1", None).await;
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(
        response.headers().get("x-session-error"),
        Some(&HeaderValue::from_static("1"))
    );
    assert_no_set_cookie(&response);
    assert_eq!(body(response).await, "custom 503");
    // Requests that need no save are untouched by the hook.
    let response = get_with(&base, "/untouched", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "ok");

    // A session deleted midway (SessionInterrupted).
    let store = S::new_store();
    let layer = SessionLayer::new(store.clone())
        .with_config(SessionConfig::default())
        .unwrap()
        .on_error(on_error);
    let base = spawn(routes().layer(layer)).await;
    let key = new_session(&base, "a", "1").await;
    let response = get_with(&base, "/delete_midway", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_no_set_cookie(&response);
    assert_eq!(body(response).await, "custom 400");
    assert!(!stored(&store, &key).await);
}

// ----- the Cookie header -----

async fn session_cookie_is_found_among_others<S: SuiteStore>() {
    let base = serve(S::new_store(), SessionConfig::default()).await;
    let key = new_session(&base, "a", "1").await;
    let read = |headers: Vec<String>| {
        let mut request = client().get(format!("{base}/get?k=a"));
        for h in headers {
            request = request.header(header::COOKIE, h);
        }
        async move {
            let response = request.send().await.expect("request");
            assert_no_set_cookie(&response);
            json_body(response).await
        }
    };
    // Among other cookies, with odd spacing, quoted.
    assert_eq!(
        read(vec![format!("csrftoken=x; sessionid={key}; theme=dark")]).await,
        json!(1)
    );
    assert_eq!(
        read(vec![format!("a=1;sessionid = {key} ;b=2")]).await,
        json!(1)
    );
    assert_eq!(read(vec![format!("sessionid=\"{key}\"")]).await, json!(1));
    // Split over several Cookie header lines.
    assert_eq!(
        read(vec!["csrftoken=x".into(), format!("sessionid={key}")]).await,
        json!(1)
    );
    // Cookies whose names merely contain the session cookie's name do not count.
    assert_eq!(
        read(vec![format!("xsessionid={key}; sessionidx={key}")]).await,
        Value::Null
    );
    // Two well-formed values: the last one wins, as with Python's cookie parser.
    assert_eq!(
        read(vec![format!("sessionid=abcdefghij; sessionid={key}")]).await,
        json!(1)
    );
}

// ----- many clients -----

async fn every_client_gets_its_own_session<S: SuiteStore>() {
    // Twenty clients without cookies: each gets its own key and sees only its own data.
    let store = Arc::new(S::new_store());
    let base = serve(Arc::clone(&store), SessionConfig::default()).await;
    let mut keys = HashSet::new();
    for i in 0..20 {
        let key = new_session(&base, "i", &i.to_string()).await;
        assert!(keys.insert(key.clone()), "key reused");
        let response = get_with(&base, "/get?k=i", Some(&key)).await;
        assert_eq!(json_body(response).await, json!(i));
    }
    assert_eq!(store.len(), 20);
}

/// A store that never answers: a blackholed connection.
#[derive(Clone)]
struct HangingStore;

impl sessionbase::SessionStore for HangingStore {
    async fn load(
        &self,
        _: &SessionKey,
    ) -> Result<Option<sessionbase::store::LoadedRecord>, Error> {
        std::future::pending().await
    }
    async fn create(
        &self,
        _: &sessionbase::store::Record,
    ) -> Result<(SessionKey, sessionbase::store::Version), Error> {
        std::future::pending().await
    }
    async fn save(
        &self,
        _: &SessionKey,
        _: &sessionbase::store::Record,
        _: &sessionbase::store::Version,
    ) -> Result<sessionbase::store::SaveOutcome, Error> {
        std::future::pending().await
    }
    async fn delete(&self, _: &SessionKey) -> Result<(), Error> {
        std::future::pending().await
    }
    async fn exists(&self, _: &SessionKey) -> Result<bool, Error> {
        std::future::pending().await
    }
    async fn clear_expired(&self) -> Result<(), Error> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_store_is_a_503_within_the_store_timeout() {
    let config =
        SessionConfig::default().with_store_timeout(Some(std::time::Duration::from_millis(200)));
    let base = serve(HangingStore, config).await;
    let valid = SessionKey::generate().unwrap().to_string();
    // A liveness guard, not a speed assertion: without the timeout these would never return.
    let guard = std::time::Duration::from_secs(10);
    let read = tokio::time::timeout(guard, get_with(&base, "/items", Some(&valid)))
        .await
        .expect("a hung load must end with the store timeout");
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_no_set_cookie(&read);
    let write = tokio::time::timeout(guard, get_with(&base, "/set?k=a&v=1", None))
        .await
        .expect("a hung create must end with the store timeout");
    assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_no_set_cookie(&write);
    // Handlers that do not take the session never wait on the store.
    let untouched = get_with(&base, "/untouched", Some(&valid)).await;
    assert_eq!(untouched.status(), StatusCode::OK);
}

// ----- both dispatch paths -----

// The tests above that are generic over the store run twice: `memory::<name>` on
// `MemoryStore`, `io::<name>` on `IoStore<MemoryStore>`. Those counting store calls wrap
// either in a `CountingStore`.
on_both_paths! {
    #[tokio::test(flavor = "multi_thread")]
    async fn new_session_sets_djangos_default_cookie;
    #[tokio::test(flavor = "multi_thread")]
    async fn configured_cookie_attributes_all_appear;
    #[tokio::test(flavor = "multi_thread")]
    async fn samesite_none_and_no_samesite;
    #[tokio::test(flavor = "multi_thread")]
    async fn browser_close_setting_gives_no_max_age_and_no_expires;
    #[tokio::test(flavor = "multi_thread")]
    async fn set_expiry_controls_max_age;
    #[tokio::test(flavor = "multi_thread")]
    async fn vary_cookie_when_only_read;
    #[tokio::test(flavor = "multi_thread")]
    async fn no_vary_and_no_cookie_when_session_never_extracted;
    #[tokio::test(flavor = "multi_thread")]
    async fn vary_is_merged_with_the_handlers_and_never_duplicated;
    #[tokio::test(flavor = "multi_thread")]
    async fn flush_deletes_the_cookie_and_the_record;
    #[tokio::test(flavor = "multi_thread")]
    async fn flush_without_a_cookie_sets_nothing;
    #[tokio::test(flavor = "multi_thread")]
    async fn clear_with_a_malformed_cookie_deletes_it;
    #[tokio::test(flavor = "multi_thread")]
    async fn clear_with_a_valid_cookie_saves_an_empty_session_under_the_same_key;
    #[tokio::test(flavor = "multi_thread")]
    async fn server_errors_never_save_a_new_session;
    #[tokio::test(flavor = "multi_thread")]
    async fn server_errors_never_save_an_existing_session;
    #[tokio::test(flavor = "multi_thread")]
    async fn a_404_still_saves;
    #[tokio::test(flavor = "multi_thread")]
    async fn save_every_request_resaves_an_untouched_session;
    #[tokio::test(flavor = "multi_thread")]
    async fn save_every_request_without_a_cookie_does_nothing;
    #[tokio::test(flavor = "multi_thread")]
    async fn save_every_request_with_an_unknown_key_creates_a_new_one;
    #[tokio::test(flavor = "multi_thread")]
    async fn test_cookie_round_trip;
    #[tokio::test(flavor = "multi_thread")]
    async fn cycle_key_moves_the_data_to_a_new_key;
    #[tokio::test(flavor = "multi_thread")]
    async fn forged_key_gets_a_fresh_key;
    #[tokio::test(flavor = "multi_thread")]
    async fn expired_key_gets_a_fresh_key;
    #[tokio::test(flavor = "multi_thread")]
    async fn too_short_key_gets_a_fresh_key;
    #[tokio::test(flavor = "multi_thread")]
    async fn djangos_table_for_malformed_and_unknown_cookies;
    #[tokio::test(flavor = "multi_thread")]
    async fn session_deleted_midway_is_a_400_and_not_resurrected;
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_logout_through_another_session_is_a_400;
    #[tokio::test(flavor = "multi_thread")]
    async fn handlers_that_never_extract_cost_no_store_call;
    #[tokio::test(flavor = "multi_thread")]
    async fn store_calls_are_minimal;
    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_writers_of_different_keys_all_keep_their_write;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sixteen_connections_incrementing_one_session_keep_every_increment;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_of_the_same_key_last_one_wins;
    #[tokio::test(flavor = "multi_thread")]
    async fn handler_save_still_sets_the_cookie;
    #[tokio::test(flavor = "multi_thread")]
    async fn on_error_hook_shapes_failed_saves;
    #[tokio::test(flavor = "multi_thread")]
    async fn session_cookie_is_found_among_others;
    #[tokio::test(flavor = "multi_thread")]
    async fn every_client_gets_its_own_session;
}
