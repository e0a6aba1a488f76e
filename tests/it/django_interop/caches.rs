//! Django's cache-backed engines on a real Redis, with Django's own cache backends:
//! `cached_db` and `cache`, each on Django's `RedisCache` and on django-redis.
//!
//! Both sides share one cookie jar. What each test pins: values both ways; a write on either
//! side survives the other side's next save (Django's cache never writes a stale copy back
//! over a Rust write); logout on either side ends the session on both at once; `cycle_key`
//! on either side; expiry; and what is in Redis (Django's key, pickled value, TTL).

use serde_json::{Value, json};

use super::harness::{self, Browser, Django, Settings, TempDir, python, rust_server};
use super::{assert_items, assorted, obj, secrets};
use crate::common::RedisPrefix;

const BACKENDS: [&str; 2] = ["redis", "django_redis"];

/// What Django has for `key`, read around `request.session` (its table row and its cache
/// entry), from the Django process.
async fn stored(django: &Django, key: &str) -> Value {
    // A browser of its own: the probe must not touch the jar under test.
    Browser::new()
        .get(&django.base, "/stored", &[("key", key)])
        .await
        .body
}

struct Sides {
    _tmp: TempDir,
    _redis: RedisPrefix,
    django: Django,
    rust: String,
}

/// A Django process and a Rust server on `engine`, sharing a fresh SQLite file and a Redis
/// cache under a key prefix of the test's own (`KEY_PREFIX`, removed afterwards), on cache
/// `VERSION` 3 so that the version is part of every key.
async fn sides(engine: &'static str, backend: &'static str) -> Option<Sides> {
    let python = python()?;
    let redis = harness::redis_prefix()?;
    let tmp = TempDir::new(engine);
    let s = Settings::new(&secrets().0, engine, &tmp.sqlite_url()).with_cache(
        backend,
        redis.url(),
        redis.prefix(),
        3,
    );
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    Some(Sides {
        _tmp: tmp,
        _redis: redis,
        django,
        rust,
    })
}

// ----- cached_db -----

async fn cached_db_scenario(backend: &'static str) {
    // Bound whole: the temporary directory and the Redis prefix live as long as the test.
    let Some(sides) = sides("cached_db", backend).await else {
        return;
    };
    let (django, rust) = (&sides.django, &sides.rust);
    let b = Browser::new();

    // Django writes: its cache holds the session.
    let mut expected = assorted();
    b.get(&django.base, "/set_many", &[("data", &obj(&expected))])
        .await;
    let key = b.key();
    assert_eq!(stored(django, &key).await["cache_present"], json!(true));
    let all = b.get(rust, "/all", &[]).await;
    assert_items(&all["items"], &expected);

    // Rust writes: the row changes and Django's cache entry is gone, so Django reads the row.
    b.get(rust, "/set", &[("key", "i"), ("value", "43")]).await;
    expected.insert("i".into(), json!(43));
    let after = stored(django, &key).await;
    assert_eq!(after["row_present"], json!(true));
    assert_eq!(after["cache_present"], json!(false), "{after}");
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], &expected);
    // Django's read refilled its cache from the row.
    assert_eq!(stored(django, &key).await["cache_present"], json!(true));

    // A write on each side survives the other side's next save.
    b.get(rust, "/set", &[("key", "from_rust"), ("value", "1")])
        .await;
    b.get(
        &django.base,
        "/set",
        &[("key", "from_django"), ("value", "2")],
    )
    .await;
    b.get(rust, "/set", &[("key", "from_rust_again"), ("value", "3")])
        .await;
    b.get(
        &django.base,
        "/set",
        &[("key", "from_django_again"), ("value", "4")],
    )
    .await;
    for base in [rust, &django.base] {
        let all = b.get(base, "/all", &[]).await;
        for (k, v) in [
            ("from_rust", 1),
            ("from_django", 2),
            ("from_rust_again", 3),
            ("from_django_again", 4),
        ] {
            assert_eq!(all["items"][k], json!(v), "{k} on {base}: {}", all.body);
        }
    }

    // cycle_key on Rust: the values move to the new key, the old key is gone on Django.
    let old = b.key();
    let cycled = b.get(rust, "/cycle", &[]).await;
    let new = b.key();
    assert_ne!(old, new, "{:?}", cycled.body);
    let got = b.get(&django.base, "/get", &[("key", "from_rust")]).await;
    assert_eq!(got["value"], json!(1));
    let gone = stored(django, &old).await;
    assert_eq!(
        (gone["row_present"].clone(), gone["cache_present"].clone()),
        (json!(false), json!(false)),
        "{gone}"
    );
    // cycle_key on Django: Rust follows, the old key is gone for Rust too.
    b.get(&django.base, "/cycle", &[]).await;
    let newer = b.key();
    assert_ne!(new, newer);
    let got = b.get(rust, "/get", &[("key", "from_django")]).await;
    assert_eq!(got["value"], json!(2));
    b.set_cookie(Some(&new));
    let got = b.get(rust, "/get", &[("key", "from_django")]).await;
    assert_eq!(
        got["present"],
        json!(false),
        "the pre-cycle key still loads on Rust"
    );
    b.set_cookie(Some(&newer));

    // Expiry set on either side is the other's.
    b.get(rust, "/set_expiry", &[("seconds", "600")]).await;
    let all = b.get(&django.base, "/all", &[]).await;
    let age = all["expiry_age"].as_i64().unwrap();
    assert!((590..=600).contains(&age), "Django's expiry age {age}");
    b.get(&django.base, "/set_expiry", &[("seconds", "900")])
        .await;
    let all = b.get(rust, "/all", &[]).await;
    let age = all["expiry_age"].as_i64().unwrap();
    assert!((890..=900).contains(&age), "Rust's expiry age {age}");
    let ttl = stored(django, &newer).await["cache_ttl"].as_i64().unwrap();
    assert!(
        (1..=900).contains(&ttl),
        "Django cached for the session's age, not {ttl} s"
    );

    // Logout on Rust ends the session on Django at once, though Django had it cached.
    b.get(&django.base, "/all", &[]).await;
    assert_eq!(stored(django, &newer).await["cache_present"], json!(true));
    b.get(rust, "/flush", &[]).await;
    b.set_cookie(Some(&newer));
    let got = b.get(&django.base, "/get", &[("key", "from_rust")]).await;
    assert_eq!(
        got["present"],
        json!(false),
        "Django still serves a session Rust logged out"
    );
    let gone = stored(django, &newer).await;
    assert_eq!(gone["cache_present"], json!(false), "{gone}");

    // Logout on Django ends it on Rust.
    b.set_cookie(None);
    b.get(rust, "/set", &[("key", "n"), ("value", "1")]).await;
    let key = b.key();
    b.get(&django.base, "/get", &[("key", "n")]).await;
    b.get(&django.base, "/flush", &[]).await;
    b.set_cookie(Some(&key));
    let got = b.get(rust, "/get", &[("key", "n")]).await;
    assert_eq!(
        got["present"],
        json!(false),
        "Rust still serves a session Django logged out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_on_djangos_redis_cache() {
    cached_db_scenario(BACKENDS[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_on_django_redis() {
    cached_db_scenario(BACKENDS[1]).await;
}

/// Login on either side, with Django's `request.user` as the judge, on `cached_db`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_login_on_rust_is_djangos_user() {
    let Some(sides) = sides("cached_db", "redis").await else {
        return;
    };
    let (django, rust) = (&sides.django, &sides.rust);
    let b = Browser::new();
    let user = b
        .get(
            &django.base,
            "/make_user",
            &[("username", "carol"), ("password", "pw")],
        )
        .await;
    let (id, hash) = (
        user["user_id"].as_str().unwrap().to_owned(),
        user["password_hash"].as_str().unwrap().to_owned(),
    );
    // Django has an anonymous session cached; Rust logs the user in.
    b.get(&django.base, "/set", &[("key", "cart"), ("value", "3")])
        .await;
    b.get(
        rust,
        "/login",
        &[("user_id", &id), ("password_hash", &hash)],
    )
    .await;
    let me = b.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["username"], json!("carol"), "{:?}", me.body);
    // Logout on Django: Rust sees nobody.
    let key = b.key();
    b.get(&django.base, "/logout", &[]).await;
    b.set_cookie(Some(&key));
    let me = b.get(rust, "/whoami", &[("password_hash", &hash)]).await;
    assert_eq!(me["authenticated"], json!(false), "{:?}", me.body);
}

// ----- cache -----

async fn cache_scenario(backend: &'static str) {
    let Some(sides) = sides("cache", backend).await else {
        return;
    };
    let (django, rust) = (&sides.django, &sides.rust);
    let b = Browser::new();

    let mut expected = assorted();
    b.get(&django.base, "/set_many", &[("data", &obj(&expected))])
        .await;
    let key = b.key();
    let all = b.get(rust, "/all", &[]).await;
    assert_items(&all["items"], &expected);
    b.get(rust, "/set", &[("key", "i"), ("value", "43")]).await;
    expected.insert("i".into(), json!(43));
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], &expected);
    let entry = stored(django, &key).await;
    assert_eq!(entry["cache_present"], json!(true), "{entry}");
    let ttl = entry["cache_ttl"].as_i64().unwrap();
    assert!(
        (1_209_500..=1_209_600).contains(&ttl),
        "TTL {ttl}: the session's expiry age"
    );

    // A session Rust creates is Django's, in Django's format.
    b.set_cookie(None);
    b.get(
        rust,
        "/set",
        &[("key", "r"), ("value", r#"{"nested": [1, 2.5, "x"]}"#)],
    )
    .await;
    let rust_key = b.key();
    let got = b.get(&django.base, "/get", &[("key", "r")]).await;
    assert_eq!(got["value"], json!({"nested": [1, 2.5, "x"]}));
    b.get(&django.base, "/set", &[("key", "d"), ("value", "2")])
        .await;
    b.get(rust, "/set", &[("key", "r2"), ("value", "3")]).await;
    let all = b.get(&django.base, "/all", &[]).await;
    assert_eq!(
        (
            all["items"]["r"].clone(),
            all["items"]["d"].clone(),
            all["items"]["r2"].clone()
        ),
        (json!({"nested": [1, 2.5, "x"]}), json!(2), json!(3)),
        "{:?}",
        all.body
    );

    // Expiry from Rust is the entry's TTL.
    b.get(rust, "/set_expiry", &[("seconds", "300")]).await;
    let ttl = stored(django, &rust_key).await["cache_ttl"]
        .as_i64()
        .unwrap();
    assert!(
        (290..=300).contains(&ttl),
        "TTL {ttl} after set_expiry(300) on Rust"
    );
    let all = b.get(&django.base, "/all", &[]).await;
    let age = all["expiry_age"].as_i64().unwrap();
    assert!((290..=300).contains(&age), "Django's expiry age {age}");

    // cycle_key on both sides.
    b.get(rust, "/cycle", &[]).await;
    let cycled = b.key();
    assert_ne!(cycled, rust_key);
    assert_eq!(
        stored(django, &rust_key).await["cache_present"],
        json!(false)
    );
    let got = b.get(&django.base, "/get", &[("key", "d")]).await;
    assert_eq!(got["value"], json!(2));
    b.get(&django.base, "/cycle", &[]).await;
    let again = b.key();
    let got = b.get(rust, "/get", &[("key", "r2")]).await;
    assert_eq!(got["value"], json!(3));

    // Logout on Rust ends it on Django, and the other way round.
    b.get(rust, "/flush", &[]).await;
    b.set_cookie(Some(&again));
    let got = b.get(&django.base, "/get", &[("key", "d")]).await;
    assert_eq!(got["present"], json!(false));
    b.set_cookie(Some(&key));
    b.get(&django.base, "/flush", &[]).await;
    b.set_cookie(Some(&key));
    let got = b.get(rust, "/get", &[("key", "i")]).await;
    assert_eq!(got["present"], json!(false));
    // A Rust save of a session Django deleted does not bring it back.
    assert_eq!(stored(django, &key).await["cache_present"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_engine_on_djangos_redis_cache() {
    cache_scenario(BACKENDS[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_engine_on_django_redis() {
    cache_scenario(BACKENDS[1]).await;
}

/// `SESSION_CACHE_ALIAS` names the cache; Django's `default` stays a `LocMemCache`, which
/// the Rust side must not mind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cache_alias_is_what_counts() {
    let Some(python) = python() else { return };
    let Some(redis) = harness::redis_prefix() else {
        return;
    };
    let tmp = TempDir::new("alias");
    let s = Settings::new(&secrets().0, "cache", &tmp.sqlite_url())
        .with_cache("redis", redis.url(), redis.prefix(), 1)
        .with_session_cache_alias("sessions");
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let b = Browser::new();
    b.get(&rust, "/set", &[("key", "a"), ("value", "1")]).await;
    let got = b.get(&django.base, "/get", &[("key", "a")]).await;
    assert_eq!(got["value"], json!(1));
}

/// `SECRET_KEY` rotation on `cached_db`: both sides move to a new key with the old one in
/// `SECRET_KEY_FALLBACKS`. Django keeps answering from its (unsigned) cache entry; a Rust
/// write re-signs the row with the new key and deletes the entry, and Django then reads the
/// re-signed row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_secret_key_rotation() {
    let Some(python) = python() else { return };
    let Some(redis) = harness::redis_prefix() else {
        return;
    };
    let tmp = TempDir::new("cached-db-rotation");
    let (k1, k2) = secrets();
    let old = Settings::new(&k1, "cached_db", &tmp.sqlite_url()).with_cache(
        "django_redis",
        redis.url(),
        redis.prefix(),
        1,
    );
    let b = Browser::new();
    let key = {
        let django = Django::start(&python, &old, tmp.path()).await;
        let rust = rust_server(&old).await;
        b.get(
            &django.base,
            "/set",
            &[("key", "d"), ("value", r#""django-k1""#)],
        )
        .await;
        b.get(&rust, "/set", &[("key", "r"), ("value", r#""rust-k1""#)])
            .await;
        // Django reads it back, so its cache holds it when the secrets change.
        b.get(&django.base, "/get", &[("key", "r")]).await;
        b.key()
    };

    let new = old.clone().with_secret(&k2, &[&k1]);
    let django = Django::serve(&python, &new, tmp.path()).await;
    let rust = rust_server(&new).await;
    let all = b.get(&rust, "/all", &[]).await;
    assert_eq!(
        (all["items"]["d"].clone(), all["items"]["r"].clone()),
        (json!("django-k1"), json!("rust-k1")),
        "the row signed with the old key reads through the fallback: {:?}",
        all.body
    );
    b.get(&rust, "/set", &[("key", "r2"), ("value", r#""rust-k2""#)])
        .await;
    assert_eq!(b.key(), key);
    let entry = stored(&django, &key).await;
    assert_eq!(entry["cache_present"], json!(false), "{entry}");
    let all = b.get(&django.base, "/all", &[]).await;
    assert_eq!(all["items"]["r2"], json!("rust-k2"), "{:?}", all.body);
    // Without the fallback, the row Rust re-signed still loads: it is signed with k2.
    let only_k2 = old.clone().with_secret(&k2, &[]);
    let rust_only_k2 = rust_server(&only_k2).await;
    let got = b.get(&rust_only_k2, "/get", &[("key", "r2")]).await;
    assert_eq!(got["value"], json!("rust-k2"));
}
