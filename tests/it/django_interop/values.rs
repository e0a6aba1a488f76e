//! Nothing of Django's is ever rewritten: after a Rust save of one key, Django's own view of
//! the session (`repr(list(request.session.items()))`, and for the db engine the JSON text
//! inside `session_data`) is what it was before, plus that key, on every engine. The values
//! are every shape Python's `json` (and pickle) can give a session: integers of any size,
//! NaN and the infinities, floats Python spells its own way, nesting, key order, escapes.

use serde_json::json;

use super::harness::{self, Browser, Django, Settings, TempDir, python, rust_server};
use super::secrets;

/// `(key, Python expression)`: what Django stores with `request.session[key] = eval(expr)`.
const PYTHON_VALUES: &[(&str, &str)] = &[
    ("zebra", "'first key, last in the alphabet'"),
    ("big", "2**70"),
    ("neg_big", "-2**64"),
    ("u64_max", "2**64 - 1"),
    ("below_i64", "-2**63 - 1"),
    ("uuid_int", "0xfd6b5e1c7a2f4c3e8b9d0a1f2e3d4c5b"),
    ("beyond_f64", "10**400"),
    ("nan", "nan"),
    ("inf", "inf"),
    ("ninf", "-inf"),
    ("e16", "1e16"),
    ("e_minus5", "1e-05"),
    ("tenth", "0.1"),
    ("neg_zero", "-0.0"),
    ("max", "1.7976931348623157e+308"),
    ("denormal", "5e-324"),
    ("exact", "123456789012345678"),
    ("list", "[2**80, nan, 1.5, [inf, -2**70], []]"),
    ("dict", "{'z': 2**65, 'a': {'c': -inf, 'b': None}, 'm': {}}"),
    ("unicode", "'é 😀 \\u2028 中文'"),
    ("controls", "'\\x00\\x1f\\x7f \" \\\\ /'"),
    ("ключ", "'a non-ASCII key'"),
    ("flags", "[True, False, None]"),
    ("empty", "''"),
];

/// Django's items as `repr` shows them.
async fn django_repr(b: &Browser, django: &Django) -> String {
    let reply = b.get(&django.base, "/session_repr", &[]).await;
    reply["repr"].as_str().expect("repr").to_owned()
}

/// Stores every value through Django, saves one key from Rust, and checks Django sees its
/// dict unchanged plus that key.
async fn scenario(django: &Django, rust: &str) {
    let b = Browser::new();
    for (key, literal) in PYTHON_VALUES {
        b.get(
            &django.base,
            "/set_py",
            &[("key", key), ("literal", literal)],
        )
        .await;
    }
    let key = b.cookie();
    let before = django_repr(&b, django).await;
    let stored_before = match &key {
        Some(key) => {
            Browser::new()
                .get(&django.base, "/stored", &[("key", key)])
                .await
                .body
        }
        None => json!(null),
    };

    // What the Rust side sees of values JSON cannot hold: the nearest JSON value.
    let big = b.get(rust, "/get", &[("key", "big")]).await;
    assert_eq!(big["value"].as_f64(), Some(1_180_591_620_717_411_303_424.0));
    let nan = b.get(rust, "/get", &[("key", "nan")]).await;
    assert_eq!(
        (nan["present"].clone(), nan["value"].clone()),
        (json!(true), json!(null))
    );
    let exact = b.get(rust, "/get", &[("key", "exact")]).await;
    assert_eq!(exact["value"], json!(123_456_789_012_345_678_u64));

    b.get(rust, "/set", &[("key", "x"), ("value", "1")]).await;
    let after = django_repr(&b, django).await;
    let expected = format!(
        "{}, ('x', 1)]",
        before.strip_suffix(']').expect("a list repr")
    );
    assert_eq!(
        after, expected,
        "Django's dict changed beyond the key Rust wrote"
    );

    // The db engines: the JSON inside session_data is Django's, byte for byte, plus the key.
    if let Some(json_before) = stored_before["row_json"].as_str() {
        let key = b.key();
        let stored_after = Browser::new()
            .get(&django.base, "/stored", &[("key", &key)])
            .await;
        let json_after = stored_after["row_json"].as_str().expect("row_json after");
        let expected = format!(
            "{},\"x\":1}}",
            json_before.strip_suffix('}').expect("an object")
        );
        assert_eq!(json_after, expected);
    }

    // And a value the handler changes is written as the handler holds it.
    b.get(rust, "/set", &[("key", "big"), ("value", "7")]).await;
    let changed = django_repr(&b, django).await;
    assert!(changed.contains("('big', 7)"), "{changed}");
    assert!(
        changed.contains("('neg_big', -18446744073709551616)"),
        "{changed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_save_keeps_every_django_value_on_the_db_engine() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("values-db");
    let s = Settings::new(&secrets().0, "db", &tmp.sqlite_url());
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    scenario(&django, &rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_save_keeps_every_django_value_on_the_file_engine() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("values-file");
    let s = Settings::new(&secrets().0, "file", &tmp.sqlite_url())
        .with_file_path(&tmp.path().join("sessions"));
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    scenario(&django, &rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_save_keeps_every_django_value_in_a_signed_cookie() {
    let Some(python) = python() else { return };
    let tmp = TempDir::new("values-cookie");
    let s = Settings::new(&secrets().0, "signed_cookies", &tmp.sqlite_url());
    let django = Django::start(&python, &s, tmp.path()).await;
    let rust = rust_server(&s).await;
    scenario(&django, &rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_save_keeps_every_django_value_on_redis_engines() {
    let Some(python) = python() else { return };
    for (engine, backend) in [("cache", "redis"), ("cached_db", "django_redis")] {
        let Some(redis) = harness::redis_prefix() else {
            return;
        };
        let tmp = TempDir::new("values-redis");
        let s = Settings::new(&secrets().0, engine, &tmp.sqlite_url()).with_cache(
            backend,
            redis.url(),
            redis.prefix(),
            1,
        );
        let django = Django::start(&python, &s, tmp.path()).await;
        let rust = rust_server(&s).await;
        scenario(&django, &rust).await;
    }
}
