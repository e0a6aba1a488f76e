//! Rolling sessions over real HTTP: with `save_every_request`, a request that changes nothing
//! moves only the stored expiry (`SessionStore::touch`), and its response is the one a full
//! save sends (Django's `SessionMiddleware` saves the whole record there).
//!
//! Generic over the store and run on both dispatch paths (`on_both_paths!` at the end).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Map, json};
use sessionbase::expiry::CREATED_KEY;
use sessionbase::store::{Record, SessionStore};
use sessionbase::{Error, Expiry, Session, SessionConfig, SessionKey, SessionLayer};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::common::{
    CountSnapshot, CountingStore, SetCookie, SuiteStore, client, on_both_paths, session_cookie,
    set_cookies, spawn, vary,
};

type Params = Query<HashMap<String, String>>;

/// Two points a test holds the `/held` handler at: after it read the session, and until the
/// test lets it answer.
#[derive(Default)]
struct Gate {
    read: Notify,
    release: Notify,
}

async fn read(session: Session, Query(q): Params) -> Result<String, Error> {
    let value: Option<i64> = session.get(q.get("k").map_or("a", String::as_str))?;
    Ok(json!(value).to_string())
}

async fn set(session: Session, Query(q): Params) -> Result<&'static str, Error> {
    let value: i64 = q.get("v").and_then(|v| v.parse().ok()).unwrap_or(1);
    session.insert(q.get("k").map_or("a", String::as_str), value)?;
    Ok("set")
}

/// `set_expiry(Inactivity(seconds))`, or browser close for 0.
async fn expire_in(session: Session, Query(q): Params) -> &'static str {
    let seconds: i64 = q.get("s").and_then(|v| v.parse().ok()).unwrap_or(0);
    session.set_expiry(Some(match seconds {
        0 => Expiry::BrowserClose,
        s => Expiry::Inactivity(Duration::seconds(s)),
    }));
    "set"
}

async fn flush(session: Session) -> Result<&'static str, Error> {
    session.flush().await?;
    Ok("flushed")
}

/// Reads the session, then waits for the test before answering without a change.
async fn held(State(gate): State<Arc<Gate>>, session: Session) -> Result<String, Error> {
    let value: Option<i64> = session.get("a")?;
    gate.read.notify_one();
    gate.release.notified().await;
    Ok(json!(value).to_string())
}

/// A rolling server (`save_every_request` on top of `config`) on `store`.
async fn serve<S: SessionStore>(store: S, config: SessionConfig, gate: Arc<Gate>) -> String {
    let layer = SessionLayer::new(store)
        .with_config(config.with_save_every_request(true))
        .expect("valid config");
    let app = Router::new()
        .route("/read", get(read))
        .route("/set", get(set))
        .route("/expire_in", get(expire_in))
        .route("/flush", get(flush))
        .route("/held", get(held))
        .with_state(gate)
        .layer(layer);
    spawn(app).await
}

async fn get_with(base: &str, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{base}{path}"));
    if let Some(key) = key {
        request = request.header("cookie", format!("sessionid={key}"));
    }
    request.send().await.expect("request reaches the server")
}

async fn new_session(base: &str) -> String {
    let response = get_with(base, "/set?k=a&v=1", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    session_cookie(&response, "sessionid").value
}

/// When the stored record of `key` expires.
async fn stored_expiry<S: SessionStore>(store: &S, key: &str) -> OffsetDateTime {
    let key = store.parse_key(key).expect("a well-formed key");
    let record = store.load(&key).await.expect("load").expect("stored");
    record
        .expiry_date
        .expect("the memory store reports expiry dates")
}

/// The cookie as it would be with `expires` left out: `expires` is the request's clock
/// reading plus `Max-Age`, so two responses a second apart differ there alone.
fn without_expires(cookie: &SetCookie) -> SetCookie {
    let mut cookie = cookie.clone();
    cookie.raw.clear();
    for (name, value) in &mut cookie.attrs {
        if name == "expires" {
            *value = None;
        }
    }
    cookie
}

/// `expires` is `Max-Age` seconds after `sent` (within clock granularity).
fn assert_expires_after(cookie: &SetCookie, sent: OffsetDateTime) {
    let max_age = cookie.max_age().expect("Max-Age");
    let expires = cookie.expires().expect("expires");
    let off = expires - (sent + Duration::seconds(max_age));
    assert!(off.abs() <= Duration::seconds(2), "{}", cookie.raw);
}

async fn an_unchanged_session_is_touched_and_gets_a_saves_cookie<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default(), Arc::default()).await;
    let key = new_session(&base).await;

    // What a full save sends: a request that changed the session.
    let saved = get_with(&base, "/set?k=a&v=1", Some(&key)).await;
    let saved_cookie = session_cookie(&saved, "sessionid");
    let before = stored_expiry(store.inner(), &key).await;

    for path in ["/read", "/read?k=b"] {
        let counts = store.snapshot();
        let sent = OffsetDateTime::now_utc();
        let touched = get_with(&base, path, Some(&key)).await;
        assert_eq!(touched.status(), StatusCode::OK);
        let cookie = session_cookie(&touched, "sessionid");
        assert_eq!(without_expires(&cookie), without_expires(&saved_cookie));
        assert_expires_after(&cookie, sent);
        assert_eq!(vary(&touched), vary(&saved), "{path}");
        assert_eq!(set_cookies(&touched).len(), 1);
        let after = store.snapshot();
        assert_eq!(
            after,
            CountSnapshot {
                load: counts.load + 1,
                touch: counts.touch + 1,
                ..counts
            },
            "{path}: one load and one touch, no save"
        );
    }
    let after = stored_expiry(store.inner(), &key).await;
    assert!(
        after > before,
        "the stored expiry did not move: {before} → {after}"
    );
    let response = get_with(&base, "/read", Some(&key)).await;
    assert_eq!(
        response.text().await.expect("body"),
        "1",
        "the data was lost"
    );
}

async fn a_custom_expiry_rolls_as_a_save_would<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let base = serve(store.clone(), SessionConfig::default(), Arc::default()).await;

    let key = new_session(&base).await;
    get_with(&base, "/expire_in?s=600", Some(&key)).await;
    let touches = store.snapshot().touch;
    let sent = OffsetDateTime::now_utc();
    let response = get_with(&base, "/read", Some(&key)).await;
    let cookie = session_cookie(&response, "sessionid");
    assert_eq!(cookie.max_age(), Some(600), "{}", cookie.raw);
    assert_eq!(store.snapshot().touch, touches + 1);
    let expiry = stored_expiry(store.inner(), &key).await;
    let off = expiry - (sent + Duration::seconds(600));
    assert!(off.abs() <= Duration::seconds(2), "stored expiry {expiry}");

    // Browser close: the cookie has neither Max-Age nor expires, as after a save.
    get_with(&base, "/expire_in?s=0", Some(&key)).await;
    let response = get_with(&base, "/read", Some(&key)).await;
    let cookie = session_cookie(&response, "sessionid");
    assert!(
        !cookie.has("Max-Age") && !cookie.has("expires"),
        "{}",
        cookie.raw
    );
    assert_eq!(store.snapshot().touch, touches + 2);
}

async fn absolute_max_age_caps_a_touched_expiry<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let config = SessionConfig::default().with_absolute_max_age(Some(Duration::hours(1)));
    let base = serve(store.clone(), config, Arc::default()).await;

    let key = new_session(&base).await;
    let response = get_with(&base, "/read", Some(&key)).await;
    let cookie = session_cookie(&response, "sessionid");
    let max_age = cookie.max_age().expect("Max-Age");
    assert!((3590..=3600).contains(&max_age), "{}", cookie.raw);
    assert_eq!(store.snapshot().touch, 1);
    let expiry = stored_expiry(store.inner(), &key).await;
    assert!(
        expiry <= OffsetDateTime::now_utc() + Duration::hours(1),
        "the touched expiry {expiry} outlives absolute_max_age"
    );

    // A record from before the option has no creation time: the save stamps one, so it is
    // a save, not a touch.
    let record = Record {
        data: Arc::new(Map::from_iter([("a".to_owned(), json!(5))])),
        expiry_date: OffsetDateTime::now_utc() + Duration::weeks(1),
    };
    let (old, _) = store.inner().create(&record).await.expect("create");
    let counts = store.snapshot();
    let response = get_with(&base, "/read", Some(old.as_str())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let after = store.snapshot();
    assert_eq!((after.save, after.touch), (counts.save + 1, counts.touch));
    let stamped = store.inner().load(&old).await.expect("load").expect("kept");
    assert!(stamped.data.contains_key(CREATED_KEY), "not stamped");
}

async fn a_logout_during_a_rolling_request_is_never_undone<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let gate = Arc::new(Gate::default());
    let base = serve(store.clone(), SessionConfig::default(), Arc::clone(&gate)).await;
    let key = new_session(&base).await;

    let rolling = tokio::spawn({
        let (base, key) = (base.clone(), key.clone());
        async move { get_with(&base, "/held", Some(&key)).await }
    });
    gate.read.notified().await;
    let logout = get_with(&base, "/flush", Some(&key)).await;
    assert!(session_cookie(&logout, "sessionid").is_removal());
    gate.release.notify_one();
    let rolling = rolling.await.expect("the rolling request");

    // As a save that finds the record gone: Django's SessionInterrupted, a 400, no cookie.
    assert_eq!(rolling.status(), StatusCode::BAD_REQUEST);
    assert!(
        set_cookies(&rolling).is_empty(),
        "{:?}",
        set_cookies(&rolling)
    );
    assert_eq!(store.snapshot().touch, 1);
    let parsed = SessionKey::parse(&key).expect("key");
    assert!(store.inner().load(&parsed).await.expect("load").is_none());
    assert!(store.inner().is_empty(), "the session came back");
}

async fn a_write_during_a_rolling_request_is_kept<S: SuiteStore>() {
    let store = CountingStore::new(S::new_store());
    let gate = Arc::new(Gate::default());
    let base = serve(store.clone(), SessionConfig::default(), Arc::clone(&gate)).await;
    let key = new_session(&base).await;

    let rolling = tokio::spawn({
        let (base, key) = (base.clone(), key.clone());
        async move { get_with(&base, "/held", Some(&key)).await }
    });
    gate.read.notified().await;
    get_with(&base, "/set?k=b&v=2", Some(&key)).await;
    let saves = store.snapshot().save;
    gate.release.notify_one();
    let rolling = rolling.await.expect("the rolling request");

    // The touch finds the record changed and saves as after any lost race.
    assert_eq!(rolling.status(), StatusCode::OK);
    assert_eq!(session_cookie(&rolling, "sessionid").value, key);
    let counts = store.snapshot();
    assert_eq!(counts.touch, 1);
    assert!(counts.save > saves, "{counts:?}");
    let response = get_with(&base, "/read?k=b", Some(&key)).await;
    assert_eq!(
        response.text().await.expect("body"),
        "2",
        "the write was lost"
    );
}

on_both_paths! {
    #[tokio::test(flavor = "multi_thread")]
    async fn an_unchanged_session_is_touched_and_gets_a_saves_cookie;
    #[tokio::test(flavor = "multi_thread")]
    async fn a_custom_expiry_rolls_as_a_save_would;
    #[tokio::test(flavor = "multi_thread")]
    async fn absolute_max_age_caps_a_touched_expiry;
    #[tokio::test(flavor = "multi_thread")]
    async fn a_logout_during_a_rolling_request_is_never_undone;
    #[tokio::test(flavor = "multi_thread")]
    async fn a_write_during_a_rolling_request_is_kept;
}
