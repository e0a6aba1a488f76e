//! Django interoperability: a real Django project (`tests/django_project`, Django 5.2 LTS or
//! 6.x: whichever the venv of `SESSIONBASE_DJANGO_PYTHON` has; `.ci/run` runs both) and a Rust
//! axum service built from [`DjangoConfig`] with the same settings read and write the very
//! same sessions, driven by one HTTP client with one cookie jar.
//!
//! Each test starts its own Django process (`manage.py migrate`, then `runserver
//! --noreload` on a free port; killed on drop) and its own Rust server, on resources of its
//! own (a temporary directory with the SQLite file and the session files; a PostgreSQL or
//! MariaDB database created for the test and dropped after, or a Redis key prefix: the
//! fixtures of `common::servers`).
//!
//! Needs the venv python: `SESSIONBASE_DJANGO_PYTHON`, or what
//! `tests/django_project/setup.sh` prints. Without it the tests say so on stderr and pass,
//! except in CI (`CI` set), where they fail. The PostgreSQL scenario needs `DATABASE_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`, a role allowed to create databases);
//! without it that scenario is skipped with a message. The MySQL/MariaDB scenario needs
//! `MYSQL_URL` (e.g. `mysql://root@127.0.0.1:3306/test`, a user allowed to create
//! databases), and is skipped with a message without it. The `cached_db` and `cache` engines
//! run on the Redis of `REDIS_URL` through Django's own cache backends (`caches.rs`);
//! without it those are skipped with a message. With `SESSIONBASE_REQUIRE_ALL_SUITES` set, a
//! scenario skipped for want of a server fails instead. Rolling sessions
//! (`SESSION_SAVE_EVERY_REQUEST`) on `cached_db` and `file` are in `rolling.rs`.
//!
//! Run this module alone with `cargo test --all-features --test it django_interop::`.

#![cfg(all(
    feature = "django",
    feature = "axum",
    feature = "sqlite",
    feature = "file",
    feature = "cookie"
))]

mod caches;
mod harness;
mod rolling;
mod user_sessions;
mod values;

use std::fs::File;
use std::path::Path;
use std::time::{Duration as StdDuration, Instant, SystemTime};

use serde_json::{Map, Value, json};
use sessionbase::django::{DjangoConfig, MODEL_BACKEND, session_auth_hash};
use sessionbase::{Expiry, FileStore, SessionStore, SqliteStore};
use time::{Duration, OffsetDateTime};

use crate::common::{self, random};
use harness::{Browser, Db, Django, Settings, TempDir, python, rust_server};

// ----- values -----

/// Every JSON shape a session holds: strings with escapes and non-ASCII (non-BMP too, which
/// Django's ASCII JSON writes as surrogate pairs), integers beyond 2^53, floats Python and
/// Rust print differently (`1e-07` / `1e-7`), nested objects and lists, a non-ASCII key.
fn assorted() -> Map<String, Value> {
    let value = json!({
        "s": "hello",
        "empty": "",
        "escapes": "quote \" backslash \\ newline \n tab \t control \u{1} </script> &amp;",
        "i": 42,
        "neg": -7,
        "zero": 0,
        "beyond_f64": 9_007_199_254_740_993_u64,
        "i64_min": i64::MIN,
        "f": 3.25,
        "tenth": 0.1,
        "tiny": 1e-7,
        "huge": 1e100,
        "neg_f": -0.5,
        "one_f": 1.0,
        "t": true,
        "fa": false,
        "nothing": null,
        "list": [1, "two", 3.5, [4, [5]], {"six": 6}],
        "empty_list": [],
        "empty_obj": {},
        "nested": {"a": {"b": {"c": [1, 2, {"d": "deep"}]}}, "k": null},
        "unicode": "héllo wörld € 中文 Ελληνικά",
        "non_bmp": "😀 𝄞 🦀",
        "ключ ✓": "a non-ASCII key",
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// A string that compresses well: a session holding it is stored `.`-prefixed (zlib).
fn big() -> String {
    "lorem ipsum dolor sit amet, ünïcödé 😀 ".repeat(200)
}

fn obj(map: &Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

/// `actual` (a JSON object) holds exactly `expected`, in the same (insertion) order.
#[track_caller]
fn assert_items(actual: &Value, expected: &Map<String, Value>) {
    let actual = actual
        .as_object()
        .unwrap_or_else(|| panic!("items is not an object: {actual}"));
    let actual_keys: Vec<&String> = actual.keys().collect();
    let expected_keys: Vec<&String> = expected.keys().collect();
    assert_eq!(actual_keys, expected_keys, "keys or their order differ");
    for (key, value) in expected {
        assert_eq!(&actual[key], value, "value of {key:?}");
    }
}

fn iso(t: OffsetDateTime) -> String {
    match Expiry::At(t).to_value() {
        Value::String(s) => s,
        other => panic!("Expiry::At as {other}"),
    }
}

fn parse_iso(value: &Value) -> OffsetDateTime {
    match Expiry::from_value(value) {
        Ok(Some(Expiry::At(t))) => t,
        other => panic!("{value} is not an ISO date-time: {other:?}"),
    }
}

fn secrets() -> (String, String) {
    (
        format!("k1-{}-{}", random(), random()),
        format!("k2-{}-{}", random(), random()),
    )
}

/// The key a response set, even when the cookie is already expired (`Max-Age` ≤ 0), which
/// the jar drops.
#[track_caller]
fn set_key(reply: &harness::Reply) -> String {
    let cookie = reply.cookie.as_ref().expect("a Set-Cookie for the session");
    assert!(
        !cookie.value.is_empty() && cookie.value != "\"\"",
        "{cookie:?}"
    );
    cookie.value.clone()
}

/// Sets the file's modification time `ago` in the past.
fn age_file(path: &Path, ago: StdDuration) {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now() - ago))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

// ----- 1. signed_cookies -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_cookies_values_both_ways_and_key_rotation() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("signed");
    let (k1, k2) = secrets();
    let s1 = Settings::new(&k1, "signed_cookies", &tmp.sqlite_url());
    let django = Django::start(&python, &s1, tmp.path()).await;
    let rust = rust_server(&s1).await;
    let b = Browser::new();

    // Django writes every shape, and a value large enough to be compressed.
    let mut expected = assorted();
    expected.insert("big".into(), big().into());
    b.get(&django.base, "/set_many", &[("data", &obj(&expected))])
        .await;
    let django_cookie = b.key();
    assert!(
        django_cookie.starts_with('.'),
        "Django compresses a large session: {django_cookie}"
    );
    // Rust reads them all, exactly and in order.
    let all = b.get(&rust, "/all", &[]).await;
    assert_items(&all["items"], &expected);

    // Rust modifies; Django reads the result.
    b.get(&rust, "/set", &[("key", "i"), ("value", "43")]).await;
    b.get(
        &rust,
        "/set",
        &[
            ("key", "from_rust"),
            ("value", r#"{"crab":"🦀","n":[1.5,-2]}"#),
        ],
    )
    .await;
    expected.insert("i".into(), json!(43));
    expected.insert("from_rust".into(), json!({"crab": "🦀", "n": [1.5, -2]}));
    let rust_cookie = b.key();
    assert_ne!(rust_cookie, django_cookie);
    assert!(
        rust_cookie.starts_with('.'),
        "Rust compresses a large session too: {rust_cookie}"
    );
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], &expected);

    // And back: Django changes it again, Rust follows.
    let popped = b.get(&django.base, "/pop", &[("key", "neg")]).await;
    assert_eq!(popped["value"], json!(-7));
    b.get(
        &django.base,
        "/set",
        &[("key", "s"), ("value", r#""bye 👋""#)],
    )
    .await;
    expected.shift_remove("neg");
    expected.insert("s".into(), json!("bye 👋"));
    let all = b.get(&rust, "/all", &[]).await;
    assert_items(&all["items"], &expected);

    // Sessions Rust creates load in Django: compressed or not (a tiny one is not worth it).
    b.set_cookie(None);
    let fresh = assorted();
    b.get(&rust, "/set_many", &[("data", &obj(&fresh))]).await;
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], &fresh);
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "k"), ("value", r#""v""#)])
        .await;
    assert!(!b.key().starts_with('.'), "{}", b.key());
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], json!({"k": "v"}).as_object().unwrap());

    // Logged in by Django, seen by Rust (and checked against the password hash).
    b.set_cookie(None);
    let login = b
        .get(
            &django.base,
            "/login",
            &[("username", "sig_alice"), ("password", "pw-alice")],
        )
        .await;
    let user = b
        .get(
            &django.base,
            "/user_password_hash",
            &[("username", "sig_alice")],
        )
        .await;
    let hash = user["password_hash"].as_str().unwrap().to_owned();
    let me = b.get(&rust, "/whoami", &[("password_hash", &hash)]).await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    assert_eq!(me["user_id"], login["user_id"]);
    assert_eq!(me["hash"], user["session_auth_hash"]);
    // Logged in by Rust, seen by Django.
    let bob = b
        .get(
            &django.base,
            "/make_user",
            &[("username", "sig_bob"), ("password", "pw-bob")],
        )
        .await;
    b.set_cookie(None);
    b.get(
        &rust,
        "/login",
        &[
            ("user_id", bob["user_id"].as_str().unwrap()),
            ("password_hash", bob["password_hash"].as_str().unwrap()),
        ],
    )
    .await;
    let me = b.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    assert_eq!(me["username"], json!("sig_bob"));

    // ----- key rotation -----
    // With K1: one cookie from each side.
    b.set_cookie(None);
    b.get(
        &django.base,
        "/set",
        &[("key", "rot"), ("value", r#""django-k1""#)],
    )
    .await;
    let django_k1 = b.key();
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "rot"), ("value", r#""rust-k1""#)])
        .await;
    let rust_k1 = b.key();
    drop(django);

    // SECRET_KEY = K2, SECRET_KEY_FALLBACKS = [K1] on both sides; plus a Rust server that
    // knows only K2, to tell which key signed a cookie.
    let s2 = s1.clone().with_secret(&k2, &[&k1]);
    let only_k2 = s1.clone().with_secret(&k2, &[]);
    let django = Django::serve(&python, &s2, tmp.path()).await;
    let rust = rust_server(&s2).await;
    let rust_only_k2 = rust_server(&only_k2).await;

    for old in [&django_k1, &rust_k1] {
        b.set_cookie(Some(old));
        let got = b.get(&rust_only_k2, "/get", &[("key", "rot")]).await;
        assert_eq!(
            got["present"],
            json!(false),
            "K2 alone must refuse a K1 cookie"
        );
    }

    // Rust (with the fallback) reads Django's K1 cookie; what it writes is signed with K2.
    b.set_cookie(Some(&django_k1));
    let got = b.get(&rust, "/get", &[("key", "rot")]).await;
    assert_eq!(got["value"], json!("django-k1"));
    b.get(&rust, "/set", &[("key", "rot2"), ("value", r#""rust-k2""#)])
        .await;
    let rust_k2 = b.key();
    assert_ne!(rust_k2, django_k1);
    let all = b.get(&rust_only_k2, "/all", &[]).await;
    assert_items(
        &all["items"],
        json!({"rot": "django-k1", "rot2": "rust-k2"})
            .as_object()
            .unwrap(),
    );

    // Django (with the fallback) reads Rust's K1 cookie; what it writes, Rust with K2
    // alone reads.
    b.set_cookie(Some(&rust_k1));
    let got = b.get(&django.base, "/get", &[("key", "rot")]).await;
    assert_eq!(got["value"], json!("rust-k1"));
    b.get(
        &django.base,
        "/set",
        &[("key", "rot2"), ("value", r#""django-k2""#)],
    )
    .await;
    let all = b.get(&rust_only_k2, "/all", &[]).await;
    assert_items(
        &all["items"],
        json!({"rot": "rust-k1", "rot2": "django-k2"})
            .as_object()
            .unwrap(),
    );
    drop(django);

    // Django with K2 alone reads the cookie Rust re-signed, and refuses the K1 ones.
    let django = Django::serve(&python, &only_k2, tmp.path()).await;
    b.set_cookie(Some(&rust_k2));
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(
        &all["items"],
        json!({"rot": "django-k1", "rot2": "rust-k2"})
            .as_object()
            .unwrap(),
    );
    for old in [&django_k1, &rust_k1] {
        b.set_cookie(Some(old));
        let got = b.get(&django.base, "/get", &[("key", "rot")]).await;
        assert_eq!(
            got["present"],
            json!(false),
            "Django with K2 alone took a K1 cookie"
        );
    }
}

// ----- 2. db engine (SQLite, PostgreSQL, MySQL/MariaDB) -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_engine_on_sqlite() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("db-sqlite");
    db_engine_scenario(&python, tmp.path(), &tmp.sqlite_url()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_engine_on_postgres() {
    let Some(python) = python() else { return };
    let Some(database) =
        crate::common::PgDatabase::create("Django interop PostgreSQL scenarios").await
    else {
        return;
    };
    let tmp = TempDir::new("db-postgres");
    db_engine_scenario(&python, tmp.path(), &database.url).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_engine_on_mysql() {
    let Some(python) = python() else { return };
    let Some(database) =
        crate::common::MySqlDatabase::create("Django interop MySQL scenarios").await
    else {
        return;
    };
    let tmp = TempDir::new("db-mysql");
    db_engine_scenario(&python, tmp.path(), &database.url).await;
}

/// Values both ways, flush, cycle_key, expiry and key rotation on one shared database.
async fn db_engine_scenario(python: &Path, logs: &Path, url: &str) {
    let (k1, k2) = secrets();
    let s1 = Settings::new(&k1, "db", url);
    let django = Django::start(python, &s1, logs).await;
    let rust = rust_server(&s1).await;
    let db = Db::connect(url).await;
    let b = Browser::new();

    // --- values, both ways ---
    let mut expected = assorted();
    b.get(&django.base, "/set_many", &[("data", &obj(&expected))])
        .await;
    let key = b.key();
    assert!(common::is_generated_key(&key), "{key}");
    assert!(db.row(&key).await.is_some(), "Django wrote no row");
    let all = b.get(&rust, "/all", &[]).await;
    assert_eq!(all["session_key"], json!(key));
    assert_items(&all["items"], &expected);

    b.get(&rust, "/set", &[("key", "i"), ("value", "43")]).await;
    b.get(
        &rust,
        "/set",
        &[("key", "from_rust"), ("value", r#"["🦀", 1e-7]"#)],
    )
    .await;
    expected.insert("i".into(), json!(43));
    expected.insert("from_rust".into(), json!(["🦀", 1e-7]));
    assert_eq!(b.key(), key, "a save keeps the key");
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], &expected);

    b.set_cookie(None);
    let small = assorted();
    b.get(&rust, "/set_many", &[("data", &obj(&small))]).await;
    let rust_key = b.key();
    assert!(common::is_generated_key(&rust_key), "{rust_key}");
    let all = b.get(&django.base, "/all", &[]).await;
    assert_eq!(all["session_key"], json!(rust_key));
    assert_items(&all["items"], &small);

    // --- flush on one side logs the user out on the other ---
    b.set_cookie(None);
    let login = b
        .get(
            &django.base,
            "/login",
            &[("username", "alice"), ("password", "pw-alice")],
        )
        .await;
    let alice = b
        .get(
            &django.base,
            "/user_password_hash",
            &[("username", "alice")],
        )
        .await;
    let alice_hash = alice["password_hash"].as_str().unwrap().to_owned();
    let logged_in = b.key();
    let me = b
        .get(&rust, "/whoami", &[("password_hash", &alice_hash)])
        .await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    assert_eq!(me["user_id"], login["user_id"]);
    b.get(&rust, "/flush", &[]).await;
    assert_eq!(b.cookie(), None, "flush deletes the cookie");
    assert!(db.row(&logged_in).await.is_none(), "flush deletes the row");
    b.set_cookie(Some(&logged_in));
    let me = b.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["authenticated"], json!(false), "{me:?}");

    b.set_cookie(None);
    b.get(
        &rust,
        "/login",
        &[
            ("user_id", login["user_id"].as_str().unwrap()),
            ("password_hash", &alice_hash),
        ],
    )
    .await;
    let logged_in = b.key();
    let me = b.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["username"], json!("alice"), "{me:?}");
    b.get(&django.base, "/logout", &[]).await;
    assert_eq!(b.cookie(), None);
    assert!(db.row(&logged_in).await.is_none(), "logout deletes the row");
    b.set_cookie(Some(&logged_in));
    let me = b
        .get(&rust, "/whoami", &[("password_hash", &alice_hash)])
        .await;
    assert_eq!(me["authenticated"], json!(false), "{me:?}");

    // --- cycle_key on one side is followed by the other ---
    b.set_cookie(None);
    b.get(
        &django.base,
        "/set",
        &[("key", "c"), ("value", r#""cycled""#)],
    )
    .await;
    let before = b.key();
    let cycled = b.get(&django.base, "/cycle", &[]).await;
    let after = b.key();
    assert_ne!(after, before);
    assert_eq!(cycled["old_session_key"], json!(before));
    assert!(db.row(&before).await.is_none(), "the old row is deleted");
    let got = b.get(&rust, "/get", &[("key", "c")]).await;
    assert_eq!(got["value"], json!("cycled"));
    b.set_cookie(Some(&before));
    let got = b.get(&rust, "/get", &[("key", "c")]).await;
    assert_eq!(got["present"], json!(false), "the old key must not load");

    b.set_cookie(Some(&after));
    b.get(&rust, "/cycle", &[]).await;
    let again = b.key();
    assert_ne!(again, after);
    assert!(db.row(&after).await.is_none(), "the old row is deleted");
    let got = b.get(&django.base, "/get", &[("key", "c")]).await;
    assert_eq!(got["value"], json!("cycled"));
    b.set_cookie(Some(&after));
    let got = b.get(&django.base, "/get", &[("key", "c")]).await;
    assert_eq!(got["present"], json!(false), "the old key must not load");

    // --- expired sessions are refused by both ---
    b.set_cookie(None);
    b.get(&django.base, "/set", &[("key", "e"), ("value", "1")])
        .await;
    let past = OffsetDateTime::now_utc() - Duration::minutes(1);
    let reply = b
        .get(&django.base, "/set_expiry", &[("iso", &iso(past))])
        .await;
    let django_expired = set_key(&reply);
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "e"), ("value", "1")]).await;
    let reply = b.get(&rust, "/set_expiry", &[("seconds", "-10")]).await;
    let rust_expired = set_key(&reply);
    for expired in [&django_expired, &rust_expired] {
        assert!(db.row(expired).await.is_some(), "expired, not deleted");
        for server in [&django.base, &rust] {
            b.set_cookie(Some(expired));
            let got = b.get(server, "/get", &[("key", "e")]).await;
            assert_eq!(
                got["present"],
                json!(false),
                "{server} loaded an expired session"
            );
        }
    }
    // A live custom expiry reads the same on the other side.
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "e"), ("value", "1")]).await;
    b.get(&rust, "/set_expiry", &[("seconds", "3600")]).await;
    let all = b.get(&django.base, "/all", &[]).await;
    assert_eq!(all["items"]["_session_expiry"], json!(3600));
    assert_eq!(all["expiry_age"], json!(3600));

    // --- key rotation ---
    // With K1: alice logged in by Django, and a session written by Rust.
    b.set_cookie(None);
    b.get(
        &django.base,
        "/login",
        &[("username", "alice"), ("password", "pw-alice")],
    )
    .await;
    let django_k1 = b.key();
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "rot"), ("value", r#""rust-k1""#)])
        .await;
    let rust_k1 = b.key();
    drop(django);

    let s2 = s1.clone().with_secret(&k2, &[&k1]);
    let django = Django::serve(python, &s2, logs).await;
    let rust = rust_server(&s2).await;
    let codec_k1 = DjangoConfig::new(&k1).codec();
    let codec_k2 = DjangoConfig::new(&k2).codec();
    let row = db.row(&django_k1).await.expect("Django's K1 row");
    assert!(codec_k1.decode(&row.data).is_some() && codec_k2.decode(&row.data).is_none());

    // Rust reads Django's K1 session, and the K1 session auth hash passes as a fallback:
    // the session moves to a fresh key with the K2 hash, as Django's get_user does.
    b.set_cookie(Some(&django_k1));
    let me = b
        .get(&rust, "/whoami", &[("password_hash", &alice_hash)])
        .await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    let moved = b.key();
    assert_ne!(moved, django_k1, "a fallback hash cycles the key");
    assert!(db.row(&django_k1).await.is_none());
    let alice = b
        .get(
            &django.base,
            "/user_password_hash",
            &[("username", "alice")],
        )
        .await;
    assert_eq!(
        alice["session_auth_hash"],
        json!(session_auth_hash(&k2, &alice_hash))
    );
    let all = b.get(&rust, "/all", &[]).await;
    assert_eq!(all["items"]["_auth_user_hash"], alice["session_auth_hash"]);
    let row = db.row(&moved).await.expect("the moved row");
    assert!(
        codec_k2.decode(&row.data).is_some(),
        "Rust re-signs with the new SECRET_KEY"
    );
    let me = b.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["username"], json!("alice"), "{me:?}");

    // Django reads Rust's K1 session and re-signs it with K2 when it writes.
    b.set_cookie(Some(&rust_k1));
    let got = b.get(&django.base, "/get", &[("key", "rot")]).await;
    assert_eq!(got["value"], json!("rust-k1"));
    let row = db.row(&rust_k1).await.expect("Rust's K1 row");
    assert!(codec_k1.decode(&row.data).is_some() && codec_k2.decode(&row.data).is_none());
    b.get(
        &django.base,
        "/set",
        &[("key", "rot2"), ("value", r#""django-k2""#)],
    )
    .await;
    let row = db.row(&rust_k1).await.expect("Rust's row, re-signed");
    assert!(codec_k2.decode(&row.data).is_some());
    let all = b.get(&rust, "/all", &[]).await;
    assert_items(
        &all["items"],
        json!({"rot": "rust-k1", "rot2": "django-k2"})
            .as_object()
            .unwrap(),
    );
    drop(django);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_values_both_ways() {
    let Some(python) = python() else { return };
    let Some(redis) = harness::redis_prefix() else {
        return;
    };
    let tmp = TempDir::new("cached-db");
    let s = Settings::new(&secrets().0, "cached_db", &tmp.sqlite_url()).with_cache(
        "redis",
        redis.url(),
        redis.prefix(),
        1,
    );
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let b = Browser::new();

    let mut expected = assorted();
    b.get(&django.base, "/set_many", &[("data", &obj(&expected))])
        .await;
    let all = b.get(&rust, "/all", &[]).await;
    assert_items(&all["items"], &expected);
    b.get(&rust, "/set", &[("key", "i"), ("value", "43")]).await;
    expected.insert("i".into(), json!(43));
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], &expected);

    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "r"), ("value", r#""rust""#)])
        .await;
    let rust_key = b.key();
    let got = b.get(&django.base, "/get", &[("key", "r")]).await;
    assert_eq!(got["value"], json!("rust"));
    // Rust's flush reaches Django (its table and its own cache).
    b.get(&rust, "/flush", &[]).await;
    b.set_cookie(Some(&rust_key));
    let got = b.get(&django.base, "/get", &[("key", "r")]).await;
    assert_eq!(got["present"], json!(false));
}

/// Django's logout (flush) and its writes must reach the Rust side with `cached_db` too, as
/// they reach every Django process of a deployment, which share one cache (here Redis,
/// through django-redis): whatever the Rust side reads must not outlive a change Django made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_db_django_logout_and_writes_reach_rust() {
    let Some(python) = python() else { return };
    let Some(redis) = harness::redis_prefix() else {
        return;
    };
    let tmp = TempDir::new("cached-db-stale");
    let s = Settings::new(&secrets().0, "cached_db", &tmp.sqlite_url()).with_cache(
        "django_redis",
        redis.url(),
        redis.prefix(),
        1,
    );
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let b = Browser::new();

    b.get(
        &django.base,
        "/login",
        &[("username", "alice"), ("password", "pw-alice")],
    )
    .await;
    b.get(&django.base, "/set", &[("key", "n"), ("value", "1")])
        .await;
    let alice = b
        .get(
            &django.base,
            "/user_password_hash",
            &[("username", "alice")],
        )
        .await;
    let hash = alice["password_hash"].as_str().unwrap().to_owned();
    let key = b.key();
    // Rust reads the session (and may cache it).
    let me = b.get(&rust, "/whoami", &[("password_hash", &hash)]).await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    let got = b.get(&rust, "/get", &[("key", "n")]).await;
    assert_eq!(got["value"], json!(1));

    // Django logs her out: the Rust side must not keep her logged in.
    b.get(&django.base, "/logout", &[]).await;
    b.set_cookie(Some(&key));
    let me = b.get(&rust, "/whoami", &[("password_hash", &hash)]).await;
    assert_eq!(
        me["authenticated"],
        json!(false),
        "Rust still serves a session Django logged out: {me:?}"
    );

    // Django changes a session Rust has read: Rust must read the change.
    b.set_cookie(None);
    b.get(&django.base, "/set", &[("key", "n"), ("value", "1")])
        .await;
    let got = b.get(&rust, "/get", &[("key", "n")]).await;
    assert_eq!(got["value"], json!(1));
    b.get(&django.base, "/set", &[("key", "n"), ("value", "2")])
        .await;
    let got = b.get(&rust, "/get", &[("key", "n")]).await;
    assert_eq!(
        got["value"],
        json!(2),
        "Rust serves a stale copy of a session Django changed"
    );
}

// ----- 3. file engine -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_engine_values_both_ways_and_flush() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("file");
    let dir = tmp.path().join("sessions");
    std::fs::create_dir_all(&dir).unwrap();
    let s = Settings::new(&secrets().0, "file", &tmp.sqlite_url()).with_file_path(&dir);
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let b = Browser::new();
    let content = |key: &str| std::fs::read_to_string(dir.join(format!("sessionid{key}")));

    // Django writes, Rust reads; Rust modifies, Django reads.
    let mut expected = assorted();
    expected.insert("big".into(), big().into());
    b.get(&django.base, "/set_many", &[("data", &obj(&expected))])
        .await;
    let django_key = b.key();
    assert_eq!(harness::session_files(&dir), vec![django_key.clone()]);
    assert!(content(&django_key).unwrap().starts_with('.'), "compressed");
    let all = b.get(&rust, "/all", &[]).await;
    assert_items(&all["items"], &expected);
    b.get(&rust, "/set", &[("key", "i"), ("value", "43")]).await;
    expected.insert("i".into(), json!(43));
    assert_eq!(b.key(), django_key);
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], &expected);

    // Rust writes, Django reads; Django modifies, Rust reads.
    b.set_cookie(None);
    let mut small = json!({"s": "hello", "n": [1, 2.5]})
        .as_object()
        .unwrap()
        .clone();
    b.get(&rust, "/set_many", &[("data", &obj(&small))]).await;
    let rust_key = b.key();
    let mut files = vec![django_key.clone(), rust_key.clone()];
    files.sort();
    assert_eq!(harness::session_files(&dir), files);
    assert!(!content(&rust_key).unwrap().starts_with('.'));
    let all = b.get(&django.base, "/all", &[]).await;
    assert_items(&all["items"], &small);
    b.get(
        &django.base,
        "/set",
        &[("key", "big"), ("value", &json!(big()).to_string())],
    )
    .await;
    small.insert("big".into(), big().into());
    assert!(content(&rust_key).unwrap().starts_with('.'));
    let all = b.get(&rust, "/all", &[]).await;
    assert_items(&all["items"], &small);

    // cycle_key on either side moves the file; the other follows.
    b.get(&django.base, "/cycle", &[]).await;
    let cycled = b.key();
    assert_ne!(cycled, rust_key);
    assert!(content(&rust_key).is_err(), "the old file is removed");
    let got = b.get(&rust, "/get", &[("key", "s")]).await;
    assert_eq!(got["value"], json!("hello"));
    b.get(&rust, "/cycle", &[]).await;
    let cycled_again = b.key();
    assert!(content(&cycled).is_err(), "the old file is removed");
    let got = b.get(&django.base, "/get", &[("key", "s")]).await;
    assert_eq!(got["value"], json!("hello"));

    // flush on one side removes the session for the other.
    b.get(&django.base, "/flush", &[]).await;
    assert_eq!(b.cookie(), None);
    assert!(
        content(&cycled_again).is_err(),
        "Django's flush removes the file"
    );
    b.set_cookie(Some(&cycled_again));
    let got = b.get(&rust, "/get", &[("key", "s")]).await;
    assert_eq!(got["present"], json!(false));

    b.set_cookie(Some(&django_key));
    b.get(&rust, "/flush", &[]).await;
    assert_eq!(b.cookie(), None);
    assert!(
        content(&django_key).is_err(),
        "Rust's flush removes the file"
    );
    b.set_cookie(Some(&django_key));
    let got = b.get(&django.base, "/get", &[("key", "s")]).await;
    assert_eq!(got["present"], json!(false));
    assert_eq!(harness::session_files(&dir), Vec::<String>::new());
}

// ----- 4. clearsessions / clear_expired -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearsessions_and_clear_expired_on_sqlite() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("clear-sqlite");
    let url = tmp.sqlite_url();
    let s = Settings::new(&secrets().0, "db", &url);
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let db = Db::connect(&url).await;
    let b = Browser::new();

    // Rust writes an expired and a live session, Django a live one.
    b.get(
        &rust,
        "/set",
        &[("key", "who"), ("value", r#""rust-expired""#)],
    )
    .await;
    let rust_expired = set_key(&b.get(&rust, "/set_expiry", &[("seconds", "-10")]).await);
    b.set_cookie(None);
    b.get(
        &rust,
        "/set",
        &[("key", "who"), ("value", r#""rust-live""#)],
    )
    .await;
    let rust_live = b.key();
    b.set_cookie(None);
    b.get(
        &django.base,
        "/set",
        &[("key", "who"), ("value", r#""django-live""#)],
    )
    .await;
    let django_live = b.key();
    assert_eq!(db.count().await, 3);

    // Django's clearsessions deletes the expired row Rust wrote, and only it.
    harness::manage(&python, &s, &["clearsessions"]).await;
    assert_eq!(db.count().await, 2);
    assert!(db.row(&rust_expired).await.is_none());
    assert!(db.row(&rust_live).await.is_some());
    assert!(db.row(&django_live).await.is_some());

    // Django writes an expired session; Rust's clear_expired deletes it, and only it.
    b.set_cookie(None);
    b.get(
        &django.base,
        "/set",
        &[("key", "who"), ("value", r#""django-expired""#)],
    )
    .await;
    let past = OffsetDateTime::now_utc() - Duration::seconds(30);
    let django_expired = set_key(
        &b.get(&django.base, "/set_expiry", &[("iso", &iso(past))])
            .await,
    );
    assert_eq!(db.count().await, 3);
    let store = SqliteStore::connect(&url)
        .await
        .expect("open the store")
        .with_codec(s.django_config().codec());
    store.clear_expired().await.expect("clear_expired");
    assert_eq!(db.count().await, 2);
    assert!(db.row(&django_expired).await.is_none());

    // The live ones still load, on both sides.
    for (key, who) in [(&rust_live, "rust-live"), (&django_live, "django-live")] {
        for server in [&django.base, &rust] {
            b.set_cookie(Some(key));
            let got = b.get(server, "/get", &[("key", "who")]).await;
            assert_eq!(got["value"], json!(who), "{server}");
        }
    }
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearsessions_and_clear_expired_on_files() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("clear-file");
    let dir = tmp.path().join("sessions");
    std::fs::create_dir_all(&dir).unwrap();
    let s = Settings::new(&secrets().0, "file", &tmp.sqlite_url()).with_file_path(&dir);
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let b = Browser::new();
    let sorted = |mut keys: Vec<String>| {
        keys.sort();
        keys
    };
    // Older than SESSION_COOKIE_AGE (two weeks).
    let stale = StdDuration::from_secs(15 * 24 * 3600);

    // Rust writes: one with a negative expiry, one expired by age (its mtime), one live.
    b.get(
        &rust,
        "/set",
        &[("key", "who"), ("value", r#""rust-expired""#)],
    )
    .await;
    let rust_expired = set_key(&b.get(&rust, "/set_expiry", &[("seconds", "-10")]).await);
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "who"), ("value", r#""rust-old""#)])
        .await;
    let rust_old = b.key();
    age_file(&dir.join(format!("sessionid{rust_old}")), stale);
    b.set_cookie(None);
    b.get(
        &rust,
        "/set",
        &[("key", "who"), ("value", r#""rust-live""#)],
    )
    .await;
    let rust_live = b.key();
    b.set_cookie(None);
    b.get(
        &django.base,
        "/set",
        &[("key", "who"), ("value", r#""django-live""#)],
    )
    .await;
    let django_live = b.key();
    assert_eq!(
        harness::session_files(&dir),
        sorted(vec![
            rust_expired.clone(),
            rust_old.clone(),
            rust_live.clone(),
            django_live.clone()
        ])
    );

    // Django's clearsessions removes the two expired files Rust wrote.
    harness::manage(&python, &s, &["clearsessions"]).await;
    assert_eq!(
        harness::session_files(&dir),
        sorted(vec![rust_live.clone(), django_live.clone()])
    );

    // Django writes: one with a past date, one expired by age; Rust's clear_expired removes
    // them.
    b.set_cookie(None);
    b.get(
        &django.base,
        "/set",
        &[("key", "who"), ("value", r#""django-expired""#)],
    )
    .await;
    let past = OffsetDateTime::now_utc() - Duration::seconds(30);
    let django_expired = set_key(
        &b.get(&django.base, "/set_expiry", &[("iso", &iso(past))])
            .await,
    );
    b.set_cookie(None);
    b.get(
        &django.base,
        "/set",
        &[("key", "who"), ("value", r#""django-old""#)],
    )
    .await;
    let django_old = b.key();
    age_file(&dir.join(format!("sessionid{django_old}")), stale);
    assert_eq!(harness::session_files(&dir).len(), 4);
    assert!(harness::session_files(&dir).contains(&django_expired));
    let store = FileStore::new(&dir)
        .expect("the directory")
        .with_codec(s.django_config().codec());
    store.clear_expired().await.expect("clear_expired");
    assert_eq!(
        harness::session_files(&dir),
        sorted(vec![rust_live.clone(), django_live.clone()])
    );

    for (key, who) in [(&rust_live, "rust-live"), (&django_live, "django-live")] {
        for server in [&django.base, &rust] {
            b.set_cookie(Some(key));
            let got = b.get(server, "/get", &[("key", "who")]).await;
            assert_eq!(got["value"], json!(who), "{server}");
        }
    }
}

// ----- 5. django.contrib.auth -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_on_either_side_is_seen_by_the_other() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("login");
    let url = tmp.sqlite_url();
    let (secret, _) = secrets();
    let s = Settings::new(&secret, "db", &url);
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let db = Db::connect(&url).await;
    let b = Browser::new();

    // Django logs alice in; Rust resolves her and validates the session auth hash.
    let login = b
        .get(
            &django.base,
            "/login",
            &[("username", "alice"), ("password", "pw-1")],
        )
        .await;
    let alice_id = login["user_id"].as_str().unwrap().to_owned();
    let alice = b
        .get(
            &django.base,
            "/user_password_hash",
            &[("username", "alice")],
        )
        .await;
    let hash1 = alice["password_hash"].as_str().unwrap().to_owned();
    assert_eq!(
        DjangoConfig::new(&secret).session_auth_hash(&hash1),
        alice["session_auth_hash"].as_str().unwrap()
    );
    let key = b.key();
    let me = b.get(&rust, "/whoami", &[("password_hash", &hash1)]).await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    assert_eq!(me["verified"], json!(true));
    assert_eq!(me["user_id"], json!(alice_id));
    assert_eq!(me["backend"], json!(MODEL_BACKEND));
    assert_eq!(me["hash"], alice["session_auth_hash"]);
    assert_eq!(b.key(), key, "a current hash changes nothing");

    // Her password changes in Django: the Rust check fails and flushes the session.
    let changed = b
        .get(
            &django.base,
            "/set_password",
            &[("username", "alice"), ("password", "pw-2")],
        )
        .await;
    let hash2 = changed["password_hash"].as_str().unwrap().to_owned();
    assert_ne!(hash2, hash1);
    let me = b.get(&rust, "/whoami", &[("password_hash", &hash2)]).await;
    assert_eq!(me["authenticated"], json!(false), "{me:?}");
    assert_eq!(me["verified"], json!(false));
    assert_eq!(b.cookie(), None, "the session is flushed");
    assert!(db.row(&key).await.is_none(), "the flushed row is gone");
    b.set_cookie(Some(&key));
    let me = b.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["authenticated"], json!(false));

    // A password change that keeps the session (update_session_auth_hash) keeps it valid
    // for Rust too.
    b.set_cookie(None);
    b.get(
        &django.base,
        "/login",
        &[("username", "alice"), ("password", "pw-2")],
    )
    .await;
    let changed = b
        .get(
            &django.base,
            "/set_password",
            &[
                ("username", "alice"),
                ("password", "pw-3"),
                ("keep_session", "1"),
            ],
        )
        .await;
    let hash3 = changed["password_hash"].as_str().unwrap().to_owned();
    let me = b.get(&rust, "/whoami", &[("password_hash", &hash3)]).await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    let me = b.get(&rust, "/whoami", &[("password_hash", &hash2)]).await;
    assert_eq!(
        me["authenticated"],
        json!(false),
        "the old hash no longer matches"
    );

    // Rust logs bob in (an anonymous session with data: the key cycles, the data stays, as
    // with Django's login); Django sees him.
    let bob = b
        .get(
            &django.base,
            "/make_user",
            &[("username", "bob"), ("password", "pw-bob")],
        )
        .await;
    let bob_id = bob["user_id"].as_str().unwrap().to_owned();
    let bob_hash = bob["password_hash"].as_str().unwrap().to_owned();
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "cart"), ("value", "[3, 5]")])
        .await;
    let anonymous = b.key();
    b.get(
        &rust,
        "/login",
        &[("user_id", &bob_id), ("password_hash", &bob_hash)],
    )
    .await;
    let bobs = b.key();
    assert_ne!(bobs, anonymous, "login cycles the key");
    assert!(db.row(&anonymous).await.is_none());
    let me = b.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["authenticated"], json!(true), "{me:?}");
    assert_eq!(me["user_id"], json!(bob_id));
    assert_eq!(me["username"], json!("bob"));
    let all = b.get(&django.base, "/all", &[]).await;
    assert_eq!(all["items"]["cart"], json!([3, 5]));
    assert_eq!(all["items"]["_auth_user_id"], json!(bob_id));
    assert_eq!(all["items"]["_auth_user_backend"], json!(MODEL_BACKEND));
    assert_eq!(all["items"]["_auth_user_hash"], bob["session_auth_hash"]);

    // Rust logs alice in over bob's session: flushed first, as Django does for another user.
    b.get(
        &rust,
        "/login",
        &[("user_id", &alice_id), ("password_hash", &hash3)],
    )
    .await;
    let me = b.get(&django.base, "/whoami", &[]).await;
    assert_eq!(me["username"], json!("alice"), "{me:?}");
    let got = b.get(&django.base, "/get", &[("key", "cart")]).await;
    assert_eq!(
        got["present"],
        json!(false),
        "another user's login flushes the data"
    );

    // Django logs her out; Rust sees nobody.
    let alices = b.key();
    b.get(&django.base, "/logout", &[]).await;
    b.set_cookie(Some(&alices));
    let me = b.get(&rust, "/whoami", &[("password_hash", &hash3)]).await;
    assert_eq!(me["authenticated"], json!(false), "{me:?}");
    db.close().await;
}

// ----- 6. format details -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_dates_columns_and_compression_match_django() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("format");
    let url = tmp.sqlite_url();
    let s = Settings::new(&secrets().0, "db", &url);
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    let db = Db::connect(&url).await;
    let b = Browser::new();
    let now = OffsetDateTime::now_utc();

    // Absolute expiries, with and without microseconds, set by each side.
    let with_micros = (now + Duration::days(1))
        .replace_microsecond(123_456)
        .unwrap();
    let whole = (now + Duration::days(2)).replace_nanosecond(0).unwrap();
    for t in [with_micros, whole] {
        let text = iso(t);
        // Rust sets it; Django reads the same `_session_expiry` and expiry date.
        b.set_cookie(None);
        b.get(&rust, "/set", &[("key", "k"), ("value", "1")]).await;
        let set = b.get(&rust, "/set_expiry", &[("iso", &text)]).await;
        assert_eq!(set["expiry_date"], json!(text));
        let by_rust = b.key();
        let all = b.get(&django.base, "/all", &[]).await;
        assert_eq!(all["items"]["_session_expiry"], json!(text));
        assert_eq!(all["expiry_date"], json!(text));
        assert_eq!(all["expire_at_browser_close"], json!(false));

        // Django sets it; Rust reads it to the microsecond.
        b.set_cookie(None);
        b.get(&django.base, "/set", &[("key", "k"), ("value", "1")])
            .await;
        let set = b.get(&django.base, "/set_expiry", &[("iso", &text)]).await;
        assert_eq!(set["expiry_date"], json!(text));
        let by_django = b.key();
        let all = b.get(&rust, "/all", &[]).await;
        assert_eq!(all["items"]["_session_expiry"], json!(text));
        assert_eq!(parse_iso(&all["expiry_date"]), t);
        assert_eq!(all["expiry_date"], json!(text));

        // The expire_date column: the same text whoever wrote it.
        let rust_row = db.row(&by_rust).await.expect("Rust's row");
        let django_row = db.row(&by_django).await.expect("Django's row");
        assert_eq!(
            rust_row.expire_date, django_row.expire_date,
            "expire_date as Rust and Django write it"
        );
        let micros = if t.microsecond() == 0 {
            String::new()
        } else {
            format!(".{:06}", t.microsecond())
        };
        assert_eq!(
            django_row.expire_date,
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{micros}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        );
    }

    // The column decides, on both sides, while it lasts and once it has passed.
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "k"), ("value", r#""rust""#)])
        .await;
    b.get(&rust, "/set_expiry", &[("seconds", "4")]).await;
    let by_rust = b.key();
    b.set_cookie(None);
    b.get(
        &django.base,
        "/set",
        &[("key", "k"), ("value", r#""django""#)],
    )
    .await;
    b.get(&django.base, "/set_expiry", &[("seconds", "4")])
        .await;
    let by_django = b.key();
    let written = Instant::now();
    b.set_cookie(Some(&by_rust));
    let got = b.get(&django.base, "/get", &[("key", "k")]).await;
    assert_eq!(got["value"], json!("rust"), "Django loads Rust's live row");
    b.set_cookie(Some(&by_django));
    let got = b.get(&rust, "/get", &[("key", "k")]).await;
    assert_eq!(
        got["value"],
        json!("django"),
        "Rust loads Django's live row"
    );
    tokio::time::sleep(
        (written + StdDuration::from_millis(4_500)).saturating_duration_since(Instant::now()),
    )
    .await;
    b.set_cookie(Some(&by_rust));
    let got = b.get(&django.base, "/get", &[("key", "k")]).await;
    assert_eq!(
        got["present"],
        json!(false),
        "Django refuses Rust's expired row"
    );
    b.set_cookie(Some(&by_django));
    let got = b.get(&rust, "/get", &[("key", "k")]).await;
    assert_eq!(
        got["present"],
        json!(false),
        "Rust refuses Django's expired row"
    );
    assert!(db.row(&by_rust).await.is_some() && db.row(&by_django).await.is_some());

    // Compression: a large value written by either side is stored `.`-prefixed and read
    // back exactly by the other.
    let big = json!(big()).to_string();
    b.set_cookie(None);
    b.get(&rust, "/set", &[("key", "big"), ("value", &big)])
        .await;
    let row = db.row(&b.key()).await.expect("Rust's row");
    assert!(row.data.starts_with('.'), "Rust compresses: {}", row.data);
    let got = b.get(&django.base, "/get", &[("key", "big")]).await;
    assert_eq!(got["value"].to_string(), big);
    b.set_cookie(None);
    b.get(&django.base, "/set", &[("key", "big"), ("value", &big)])
        .await;
    let row = db.row(&b.key()).await.expect("Django's row");
    assert!(row.data.starts_with('.'), "Django compresses: {}", row.data);
    let got = b.get(&rust, "/get", &[("key", "big")]).await;
    assert_eq!(got["value"].to_string(), big);
    // A small session is not compressed by either.
    b.get(&rust, "/set", &[("key", "big"), ("value", "1")])
        .await;
    let row = db.row(&b.key()).await.expect("row");
    assert!(!row.data.starts_with('.'), "{}", row.data);
    db.close().await;
}
