//! Rolling sessions (`SESSION_SAVE_EVERY_REQUEST`) shared with Django: a Rust request that
//! changes nothing moves the expiry Django sees, and nothing else (`SessionStore::touch`).

use std::time::Duration as StdDuration;

use serde_json::json;
use time::Duration;

use super::harness::{self, Browser, Django, Settings, TempDir, python, rust_server};
use super::{age_file, parse_iso, secrets};

/// What Django has for `key` (its row and its cache entry), read with a browser of its own.
async fn stored(django: &Django, key: &str) -> harness::Reply {
    Browser::new()
        .get(&django.base, "/stored", &[("key", key)])
        .await
}

/// `cached_db` on Django's `RedisCache`: the row's `expire_date` moves, and Django's cache
/// entry stays (a save deletes it) with its TTL moved to the session's age, as Django's own
/// save would set it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_rolling_moves_the_row_and_the_cache_ttl() {
    let Some(python) = python() else { return };
    let Some(redis) = harness::redis_prefix() else {
        return;
    };
    let tmp = TempDir::new("rolling-cached-db");
    let s = Settings::new(&secrets().0, "cached_db", &tmp.sqlite_url())
        .with_cache("redis", redis.url(), redis.prefix(), 1)
        .with_save_every_request();
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let b = Browser::new();

    // Django writes: the row and its cache entry, both 600 s ahead.
    b.get(&django.base, "/set", &[("key", "n"), ("value", "1")])
        .await;
    b.get(&django.base, "/set_expiry", &[("seconds", "600")])
        .await;
    let key = b.key();
    let before = stored(&django, &key).await;
    assert_eq!(before["cache_present"], json!(true), "{:?}", before.body);
    let ttl_before = before["cache_ttl"].as_i64().expect("a TTL");

    tokio::time::sleep(StdDuration::from_secs(3)).await;
    let got = b.get(&rust, "/get", &[("key", "n")]).await;
    assert_eq!(got["value"], json!(1));
    let cookie = got
        .cookie
        .as_ref()
        .expect("save_every_request sends the cookie");
    assert_eq!(cookie.value, key);
    assert_eq!(cookie.max_age(), Some(600), "{}", cookie.raw);

    let after = stored(&django, &key).await;
    assert_eq!(
        after["cache_present"],
        json!(true),
        "the Rust request rewrote the session instead of touching it: {:?}",
        after.body
    );
    assert_eq!(
        after["row_json"], before["row_json"],
        "the row's data changed"
    );
    let moved = parse_iso(&after["row_expire_date"]) - parse_iso(&before["row_expire_date"]);
    assert!(
        moved >= Duration::seconds(3),
        "the row's expire_date moved by {moved}"
    );
    // Unmoved, the TTL would be 3 s lower by now.
    let ttl_after = after["cache_ttl"].as_i64().expect("a TTL");
    assert!(
        ttl_after >= ttl_before - 1 && ttl_after <= 600,
        "Django's cache TTL {ttl_before} s → {ttl_after} s"
    );
    // Django answers from its cache, with the data as it was.
    let got = b.get(&django.base, "/get", &[("key", "n")]).await;
    assert_eq!(got["value"], json!(1));
}

/// The file engine: a touched file loads on Django as a rewritten one would, though it was
/// seconds from its expiry before the Rust request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_rolling_renews_the_file_for_django() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("rolling-file");
    let dir = tmp.path().join("sessions");
    std::fs::create_dir_all(&dir).expect("sessions directory");
    let s = Settings::new(&secrets().0, "file", &tmp.sqlite_url())
        .with_file_path(&dir)
        .with_save_every_request();
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let b = Browser::new();

    b.get(&django.base, "/set", &[("key", "n"), ("value", "1")])
        .await;
    let key = b.key();
    let path = dir.join(format!("sessionid{key}"));
    let content = std::fs::read(&path).expect("Django's file");
    // Three seconds left of Django's two weeks (mtime + SESSION_COOKIE_AGE).
    age_file(&path, StdDuration::from_secs(14 * 24 * 3600 - 3));
    let got = b.get(&rust, "/get", &[("key", "n")]).await;
    assert_eq!(got["value"], json!(1));
    assert_eq!(
        std::fs::read(&path).expect("the file"),
        content,
        "a touch rewrote the file"
    );

    // Past the expiry the file had: Django still loads it, under the same key.
    tokio::time::sleep(StdDuration::from_millis(3500)).await;
    let got = b.get(&django.base, "/get", &[("key", "n")]).await;
    assert_eq!(
        got["value"],
        json!(1),
        "Django found the touched file expired"
    );
    assert_eq!(b.key(), key);
}
