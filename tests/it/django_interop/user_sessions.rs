//! Every session of a user, with sessions Django wrote: a real Django process logs a user in
//! on two "devices" (browsers), the Rust service built from `DjangoConfig` on the same
//! settings lists both (by its scan fallback: Django never updates an index) and logs the
//! other device out, and Django then sees that device logged out and the first one still in.
//! On every server-side engine: `db` (SQLite), `file`, and on Redis `cached_db` (the revoked
//! session must not live on in Django's cache) and `cache`.

use serde_json::json;

use super::harness::{self, Browser, Django, Settings, TempDir, python, rust_server};
use super::secrets;

async fn scenario(django: &Django, rust: &str) {
    let (laptop, phone) = (Browser::new(), Browser::new());
    for device in [&laptop, &phone] {
        let login = device
            .get(
                &django.base,
                "/login",
                &[("username", "alice"), ("password", "pw-1")],
            )
            .await;
        assert_eq!(login["ok"], json!(true), "{login:?}");
    }
    let alice = laptop.get(&django.base, "/whoami", &[]).await["user_id"].clone();

    let listed = laptop.get(rust, "/user_sessions", &[]).await;
    let sessions = listed["sessions"].as_array().expect("a list").clone();
    assert_eq!(
        sessions.len(),
        2,
        "both of Django's sessions listed: {listed:?}"
    );
    assert_eq!(
        sessions
            .iter()
            .filter(|s| s["current"] == json!(true))
            .count(),
        1,
        "{listed:?}"
    );
    let shown = listed.body.to_string();
    assert!(!shown.contains(&laptop.key()) && !shown.contains(&phone.key()));

    let revoked = laptop.get(rust, "/revoke_other_sessions", &[]).await;
    assert_eq!(revoked["revoked"], json!(1), "{revoked:?}");
    let me = phone.get(&django.base, "/whoami", &[]).await;
    assert_eq!(
        me["authenticated"],
        json!(false),
        "Django still lets the phone in: {me:?}"
    );
    let me = laptop.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    assert_eq!(me["user_id"], alice);
    let listed = laptop.get(rust, "/user_sessions", &[]).await;
    assert_eq!(
        listed["sessions"].as_array().map(Vec::len),
        Some(1),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_revokes_djangos_sessions_on_the_db_engine() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("user-sessions-db");
    let s = Settings::new(&secrets().0, "db", &tmp.sqlite_url());
    let django = Django::start(&python, &s, tmp.path()).await;
    scenario(&django, &rust_server(&s).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_revokes_djangos_sessions_on_the_file_engine() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("user-sessions-file");
    let dir = tmp.path().join("sessions");
    std::fs::create_dir_all(&dir).expect("sessions directory");
    let s = Settings::new(&secrets().0, "file", &tmp.sqlite_url()).with_file_path(&dir);
    let django = Django::start(&python, &s, tmp.path()).await;
    scenario(&django, &rust_server(&s).await).await;
}

/// `cached_db` and `cache` on Django's `RedisCache`.
async fn on_redis(engine: &'static str) {
    let Some(python) = python() else { return };
    let Some(redis) = harness::redis_prefix() else {
        return;
    };
    let tmp = TempDir::new(engine);
    let s = Settings::new(&secrets().0, engine, &tmp.sqlite_url()).with_cache(
        "redis",
        redis.url(),
        redis.prefix(),
        1,
    );
    let django = Django::start(&python, &s, tmp.path()).await;
    scenario(&django, &rust_server(&s).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_revokes_djangos_sessions_on_the_cached_db_engine() {
    on_redis("cached_db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_revokes_djangos_sessions_on_the_cache_engine() {
    on_redis("cache").await;
}
