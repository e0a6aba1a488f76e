use serde_json::{Map, Value, json};

use super::*;
use crate::expiry::Expiry;
use crate::store::conformance::{self, Exceptions};

const SECRET: &str = "django_tests_secret_key";
const T: i64 = 1_700_000_000;
const HELLO: &str = "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc";
const EMPTY: &str = "e30:1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY";
const THIRTY: &str = ".eJwNy7sNgDAQRMFeHL_Au_7cmVYQgetA9I7TkeYtu1x3RZhGZzAJkoUOChk11NFAEwVKtHDF5xg33PHAEwdOvJ7vBwQtEZE:1r31eq:ktB1bT7J8YBAfxrYUXYy0H6cliM1BhjASNPoFXsL4_o";

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn record(v: Value) -> Record {
    Record {
        data: Arc::new(obj(v)),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap()
}

/// Goes through `parse_key` as the layer does; `None` when it rejects the value.
async fn load_cookie(store: &CookieStore, value: &str) -> Option<Map<String, Value>> {
    let key = store.parse_key(value)?;
    let loaded = store.load(&key).await.unwrap()?;
    assert_eq!(loaded.version, Version::unversioned());
    Some(loaded.data.as_ref().clone())
}

/// Calls `load` directly, even on values `parse_key` would reject.
async fn load_raw(store: &CookieStore, value: &str) -> Option<Map<String, Value>> {
    let key = SessionKey::from_validated(value);
    store
        .load(&key)
        .await
        .unwrap()
        .map(|r| r.data.as_ref().clone())
}

/// About `n` characters that compress poorly: generated keys end to end.
fn noise(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(SessionKey::generate().unwrap().as_str());
    }
    s.truncate(n);
    s
}

#[tokio::test]
async fn cookies_signed_in_the_future_beyond_the_leeway_are_refused() {
    let store = CookieStore::new(SECRET);
    let signer = Signer::new(SECRET, COOKIE_SALT);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let data = serde_json::json!({"user": 1}).as_object().cloned().unwrap();
    let load = |value: String| {
        let store = store.clone();
        async move {
            let key = store.parse_key(&value).unwrap();
            store.load(&key).await.unwrap()
        }
    };
    assert!(
        load(signer.dumps_at(&data, now + 60, true).unwrap())
            .await
            .is_some(),
        "within the leeway"
    );
    assert!(
        load(signer.dumps_at(&data, now + 3_600, true).unwrap())
            .await
            .is_none(),
        "an hour ahead"
    );
    let lenient = store.clone().with_future_leeway(Duration::hours(2));
    let value = signer.dumps_at(&data, now + 3_600, true).unwrap();
    assert!(
        lenient
            .load(&lenient.parse_key(&value).unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    conformance::run(
        CookieStore::new("conformance secret"),
        Exceptions::client_side(
            "the whole session is in the cookie: nothing on the server to delete, replace or compare",
        ),
    )
    .await;
}

#[tokio::test]
async fn django_cookies_load() {
    // A store whose cookie age is long enough for a value signed in 2023.
    let store = CookieStore::new(SECRET).with_session_config(
        &crate::SessionConfig::default().with_cookie_age(Duration::weeks(52 * 100)),
    );
    assert_eq!(
        load_cookie(&store, HELLO).await,
        Some(obj(json!({"hello": "world"})))
    );
    assert_eq!(load_cookie(&store, EMPTY).await, Some(Map::new()));
    assert_eq!(
        load_cookie(&store, THIRTY).await,
        Some(obj(json!({"a": (0..30).collect::<Vec<_>>()})))
    );
    // With the default cookie age, at the signing time and two weeks later (the age is
    // not strictly greater), but not a second after that.
    let store = CookieStore::new(SECRET);
    let (data, _, until) = store.open(HELLO, at(T)).unwrap();
    assert_eq!(
        (data, until),
        (obj(json!({"hello": "world"})), at(T + 1_209_600))
    );
    assert!(store.open(HELLO, at(T + 1_209_600)).is_ok());
    assert!(store.open(HELLO, at(T + 1_209_601)).is_err());
    assert!(load_cookie(&store, HELLO).await.is_none(), "long expired");
}

#[test]
fn signs_exactly_as_django() {
    let store = CookieStore::new(SECRET);
    let key = store
        .seal(&obj(json!({"hello": "world"})), &Preserved::default(), T)
        .unwrap();
    assert_eq!(key.as_str(), HELLO);
    assert_eq!(
        store
            .seal(&Map::new(), &Preserved::default(), T)
            .unwrap()
            .as_str(),
        EMPTY
    );
    // Django's own loads at that time accepts both; compressed bytes may differ from
    // Django's zlib, so check that ours decode with Django's algorithm (the signer).
    let thirty = obj(json!({"a": (0..30).collect::<Vec<_>>()}));
    let ours = store.seal(&thirty, &Preserved::default(), T).unwrap();
    assert!(ours.as_str().starts_with('.'));
    assert_eq!(
        Signer::new(SECRET, COOKIE_SALT).loads_at(ours.as_str(), Some(0), T),
        Ok(thirty)
    );
}

#[tokio::test]
async fn tampered_values_never_load_and_never_panic() {
    let store = CookieStore::new("tamper secret");
    let (key, _) = store
        .create(&record(json!({"user": 1, "admin": false})))
        .await
        .unwrap();
    let good = key.as_str().to_owned();
    assert!(load_cookie(&store, &good).await.is_some());
    let first = good.find(':').unwrap();
    let last = good.rfind(':').unwrap();
    assert!(first < last);

    // One character changed anywhere: payload, timestamp, separators, signature.
    let bytes = good.as_bytes();
    for i in 0..bytes.len() {
        for replacement in [b'A', b'z', b'0', b'_', b'-', b':', b'.'] {
            if bytes[i] == replacement {
                continue;
            }
            let mut forged = bytes.to_vec();
            forged[i] = replacement;
            let forged = String::from_utf8(forged).unwrap();
            assert!(
                load_cookie(&store, &forged).await.is_none(),
                "changing byte {i} to {:?} still loads",
                char::from(replacement)
            );
            assert!(load_raw(&store, &forged).await.is_none());
        }
    }
    // Every truncation, from either end.
    for i in 0..good.len() {
        assert!(load_raw(&store, &good[..i]).await.is_none(), "prefix {i}");
        assert!(
            load_raw(&store, &good[i + 1..]).await.is_none(),
            "suffix {i}"
        );
    }
    // A forged payload with the old signature.
    let forged = format!("eyJ1c2VyIjoxLCJhZG1pbiI6dHJ1ZX0{}", &good[first..]);
    assert!(load_cookie(&store, &forged).await.is_none());
    // Garbage of every kind: parse_key rejects it, and load survives it anyway.
    let junk = "a:b:c".repeat(8 * 1024 / 5 + 1);
    let long = format!("{good}{}", "A".repeat(5000));
    for bad in [
        "",
        ":",
        "::",
        "a:b",
        "e30:1r31eq:",
        "e30::",
        ":1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY",
        junk.as_str(),
        long.as_str(),
        "é30:1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY",
        "e30:1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY😀",
        "e30 :1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY",
        "\u{0}:\u{0}:\u{0}",
        "e30:1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY=",
    ] {
        assert!(load_cookie(&store, bad).await.is_none(), "{bad:.40?}");
        assert!(load_raw(&store, bad).await.is_none(), "{bad:.40?}");
    }
    assert!(store.parse_key(&junk).is_none(), "8 KiB is over the limit");
    assert!(store.parse_key("é30:1r31eq:x").is_none(), "non-ASCII");
}

#[test]
fn parse_key_accepts_only_the_signed_value_grammar() {
    let store = CookieStore::new(SECRET);
    for good in [HELLO, EMPTY, THIRTY, "a:b:c", "-._:-._:-._"] {
        assert_eq!(
            store.parse_key(good).map(|k| k.as_str().to_owned()),
            Some(good.to_owned())
        );
    }
    let max = format!("{}:1:2", "a".repeat(MAX_COOKIE_SIZE - 4));
    assert_eq!(max.len(), MAX_COOKIE_SIZE);
    assert!(store.parse_key(&max).is_some());
    let over = format!("a{max}");
    for bad in [
        "",
        "abcdefghij",
        "abc:def",
        "a b:c:d",
        "a=b:c:d",
        "a+b:c:d",
        "a/b:c:d",
        "\"a:b:c\"",
        "a;b:c:d",
        "a:b:c\n",
        "é:b:c",
        over.as_str(),
    ] {
        assert!(store.parse_key(bad).is_none(), "{bad:.40?}");
    }
}

#[tokio::test]
async fn fallback_secrets_verify_and_saves_re_sign_with_the_current_secret() {
    let old = CookieStore::new("old secret");
    let rotated = CookieStore::new("new secret").with_fallbacks(["older", "old secret"]);
    let only_new = CookieStore::new("new secret");

    let (by_old, _) = old.create(&record(json!({"user": 5}))).await.unwrap();
    assert_eq!(
        load_cookie(&rotated, by_old.as_str()).await,
        Some(obj(json!({"user": 5})))
    );
    assert!(
        load_cookie(&only_new, by_old.as_str()).await.is_none(),
        "the old secret is no longer accepted without fallbacks"
    );
    let key = rotated.parse_key(by_old.as_str()).unwrap();
    let outcome = rotated
        .save(
            &key,
            &record(json!({"user": 5, "seen": true})),
            &Version::unversioned(),
        )
        .await
        .unwrap();
    let SaveOutcome::Saved {
        key: resigned,
        version,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(version, Version::unversioned());
    assert_ne!(resigned, by_old);
    assert_eq!(
        load_cookie(&only_new, resigned.as_str()).await,
        Some(obj(json!({"user": 5, "seen": true}))),
        "the new value is signed with the current secret"
    );
    assert!(
        load_cookie(&old, resigned.as_str()).await.is_none(),
        "fallbacks never sign"
    );

    // A secret that is neither current nor a fallback.
    let stranger = CookieStore::new("new secret").with_fallbacks(["something else"]);
    assert!(load_cookie(&stranger, by_old.as_str()).await.is_none());
    // with_fallbacks replaces; an empty list removes them.
    let cleared = rotated.clone().with_fallbacks(std::iter::empty::<&str>());
    assert!(load_cookie(&cleared, by_old.as_str()).await.is_none());
    assert!(
        load_cookie(&rotated, by_old.as_str()).await.is_some(),
        "clones are independent"
    );
    // A fallback-signed value past the cookie age is still expired.
    let stale = Signer::new("old secret", COOKIE_SALT)
        .dumps_at(&Map::new(), now() - 1_209_601, true)
        .unwrap();
    assert!(load_cookie(&rotated, &stale).await.is_none());
}

#[tokio::test]
async fn cookies_older_than_the_cookie_age_do_not_load() {
    let age = Duration::hours(1);
    let store = CookieStore::new(SECRET)
        .with_session_config(&crate::SessionConfig::default().with_cookie_age(age));
    let signer = Signer::new(SECRET, COOKIE_SALT);
    let data = obj(json!({"x": 1}));
    let old = signer
        .dumps_at(&data, now() - age.whole_seconds() - 1, true)
        .unwrap();
    assert!(load_cookie(&store, &old).await.is_none());
    let recent = signer
        .dumps_at(&data, now() - age.whole_seconds() + 30, true)
        .unwrap();
    assert_eq!(load_cookie(&store, &recent).await, Some(data.clone()));
    // The default age is two weeks.
    let default = CookieStore::new(SECRET);
    assert_eq!(default.cookie_age(), Duration::weeks(2));
    let two_weeks_old = signer.dumps_at(&data, now() - 1_209_601, true).unwrap();
    assert!(load_cookie(&default, &two_weeks_old).await.is_none());
    let week_old = signer.dumps_at(&data, now() - 604_800, true).unwrap();
    assert!(load_cookie(&default, &week_old).await.is_some());
}

#[tokio::test]
async fn custom_expiry_is_honoured_on_load() {
    let store = CookieStore::new(SECRET);
    let signer = Signer::new(SECRET, COOKIE_SALT);
    let sign = |v: Value, t: i64| signer.dumps_at(&obj(v), t, true).unwrap();

    // Django's test_actual_expiry: set_expiry(-10) then reload.
    let (key, _) = store
        .create(&record(json!({"foo": "bar", "_session_expiry": -10})))
        .await
        .unwrap();
    assert!(load_cookie(&store, key.as_str()).await.is_none());

    // Inactivity counts from the signing time.
    let idle = json!({"_session_expiry": 3600});
    assert!(
        load_cookie(&store, &sign(idle.clone(), now() - 3601))
            .await
            .is_none()
    );
    assert!(
        load_cookie(&store, &sign(idle.clone(), now() - 3500))
            .await
            .is_some()
    );
    // An absolute date.
    let past = Expiry::At(OffsetDateTime::now_utc() - Duration::seconds(1)).to_value();
    let future = Expiry::At(OffsetDateTime::now_utc() + Duration::hours(1)).to_value();
    assert!(
        load_cookie(&store, &sign(json!({"_session_expiry": past}), now()))
            .await
            .is_none()
    );
    assert!(
        load_cookie(&store, &sign(json!({"_session_expiry": future}), now()))
            .await
            .is_some()
    );
    // The record reports when it stops loading: the earlier of the two dates.
    let t = now() - 100;
    let (_, _, until) = store.open(&sign(idle.clone(), t), at(now())).unwrap();
    assert_eq!(until, at(t + 3600));
    let (_, _, until) = store
        .open(&sign(json!({"_session_expiry": 0}), t), at(now()))
        .unwrap();
    assert_eq!(until, at(t + 1_209_600));
    let key = store.parse_key(&sign(idle.clone(), t)).unwrap();
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(loaded.expiry_date, Some(at(t + 3600)));
    // Browser close (0) and null: the cookie age alone.
    for v in [json!(0), Value::Null] {
        let fresh = sign(json!({"_session_expiry": v}), now() - 3600);
        assert!(load_cookie(&store, &fresh).await.is_some(), "{v}");
    }
    // A custom expiry never extends a session past the cookie age.
    let long = json!({"_session_expiry": 10 * 1_209_600});
    assert!(
        load_cookie(&store, &sign(long, now() - 1_209_601))
            .await
            .is_none()
    );
    // The wrong type is no session.
    for v in [
        json!(true),
        json!("tomorrow"),
        json!([1]),
        json!({"a": 1}),
        json!(1e300),
    ] {
        let bad = sign(json!({"x": 1, "_session_expiry": v}), now());
        assert!(load_cookie(&store, &bad).await.is_none(), "{v}");
    }
}

#[tokio::test]
async fn oversized_sessions_are_an_error_never_a_dropped_cookie() {
    let store = CookieStore::new(SECRET);
    let huge = record(json!({"blob": noise(5000)}));
    match store.create(&huge).await {
        Err(Error::CookieTooLarge { size, limit }) => {
            assert_eq!(limit, MAX_COOKIE_SIZE);
            assert!(size > MAX_COOKIE_SIZE, "{size}");
        }
        other => panic!("{other:?}"),
    }
    let (key, _) = store.create(&record(json!({"a": 1}))).await.unwrap();
    assert!(matches!(
        store.save(&key, &huge, &Version::unversioned()).await,
        Err(Error::CookieTooLarge { .. })
    ));

    // Grow a session until it no longer fits: the last one that fits is close to the
    // limit and loads.
    let blob = noise(6000);
    let mut largest = None;
    let mut overflowed = false;
    for n in (3000..=6000).step_by(8) {
        match store.create(&record(json!({"blob": &blob[..n]}))).await {
            Ok((key, _)) => largest = Some((n, key)),
            Err(Error::CookieTooLarge { .. }) => {
                overflowed = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(overflowed, "6000 characters of noise fit in a cookie");
    let (n, key) = largest.unwrap();
    let size = "sessionid".len() + 1 + key.as_str().len();
    assert!(
        size <= MAX_COOKIE_SIZE && size > MAX_COOKIE_SIZE - 64,
        "{size}"
    );
    assert_eq!(
        load_cookie(&store, key.as_str()).await.unwrap()["blob"],
        json!(&blob[..n])
    );

    // The limit counts the name: exactly 4096 fits, 4097 does not.
    let data = obj(json!({"blob": &blob[..n]}));
    let len = store
        .seal(&data, &Preserved::default(), T)
        .unwrap()
        .as_str()
        .len();
    let fits = CookieStore::new(SECRET).with_session_config(
        &crate::SessionConfig::default().with_cookie_name("n".repeat(MAX_COOKIE_SIZE - 1 - len)),
    );
    assert!(fits.seal(&data, &Preserved::default(), T).is_ok());
    let name = "n".repeat(MAX_COOKIE_SIZE - len);
    let too_long = CookieStore::new(SECRET)
        .with_session_config(&crate::SessionConfig::default().with_cookie_name(name));
    assert!(matches!(
        too_long.seal(&data, &Preserved::default(), T),
        Err(Error::CookieTooLarge {
            size: 4097,
            limit: 4096
        })
    ));
}

#[tokio::test]
async fn compressible_data_is_compressed() {
    let store = CookieStore::new(SECRET);
    let data = json!({"text": "spam and eggs ".repeat(1000), "n": [1, 2, 3]});
    let (key, _) = store.create(&record(data.clone())).await.unwrap();
    assert!(
        key.as_str().starts_with('.'),
        "compressed values start with '.'"
    );
    assert!(key.as_str().len() < 500, "{}", key.as_str().len());
    assert_eq!(load_cookie(&store, key.as_str()).await, Some(obj(data)));
    // Small data is not.
    let (small, _) = store.create(&record(json!({"a": 1}))).await.unwrap();
    assert!(!small.as_str().starts_with('.'));
}

#[tokio::test]
async fn server_side_operations_are_no_ops() {
    let store = CookieStore::new(SECRET);
    let (key, version) = store.create(&record(json!({"a": 1}))).await.unwrap();
    assert_eq!(version, Version::unversioned());
    assert!(!store.exists(&key).await.unwrap());
    store.delete(&key).await.unwrap();
    store.clear_expired().await.unwrap();
    // The cookie still loads: deleting cannot revoke it (the documented limitation).
    assert!(load_cookie(&store, key.as_str()).await.is_some());
    // A save with any version, even of a "deleted" session, signs the new data.
    let outcome = store
        .save(&key, &record(json!({"a": 2})), &Version::from_counter(9))
        .await
        .unwrap();
    let SaveOutcome::Saved { key, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        load_cookie(&store, key.as_str()).await,
        Some(obj(json!({"a": 2})))
    );
}

#[test]
fn debug_never_prints_secrets_and_clones_share() {
    let store = CookieStore::new("hunter2-current")
        .with_fallbacks(["hunter2-old"])
        .with_session_config(&crate::SessionConfig::default().with_cookie_name("sid"));
    let debug = format!("{store:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("fallbacks: 1"), "{debug}");
    let clone = store.clone();
    assert!(Arc::ptr_eq(&store.inner, &clone.inner));
    assert_eq!(clone.cookie_name(), "sid");
}
