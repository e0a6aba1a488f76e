//! Django's `SessionBase` API, row by row, through `sessionbase`'s public API.
//!
//! Each test names the Django behaviour it pins: `SessionBase`'s mapping methods, its flags,
//! the test cookie, the expiry methods and the store operations. Every test is generic over
//! the store and runs on both dispatch paths (`on_both_paths!` at the end): on `MemoryStore`,
//! which the library calls directly, and on `IoStore<MemoryStore>`, whose calls are pending
//! once as a network store's are.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sessionbase::store::Record;
use sessionbase::{Error, Expiry, Session, SessionConfig};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::common::{SuiteStore, on_both_paths};

const COOKIE_AGE: i64 = 1_209_600;

fn cfg() -> SessionConfig {
    SessionConfig::default()
}

fn fresh<S: SuiteStore>(store: &S) -> Session {
    Session::new(store.clone(), cfg())
}

async fn load<S: SuiteStore>(store: &S, key: &str) -> Session {
    Session::load(store.clone(), cfg(), key)
        .await
        .expect("loading from a MemoryStore does not fail")
}

/// A saved session holding `pairs`, and its key.
async fn saved<S: SuiteStore>(store: &S, pairs: &[(&str, Value)]) -> (Session, String) {
    let s = fresh(store);
    for (k, v) in pairs {
        s.insert_value(*k, v.clone());
    }
    s.save().await.unwrap();
    let key = s.session_key().expect("a save assigns a key").to_string();
    (s, key)
}

fn keys_of(s: &Session) -> Vec<String> {
    s.keys()
}

fn is_serde_err(r: &Error, key: &str) -> bool {
    matches!(r, Error::Serde { key: k, .. } if k == key)
}

/// `now` cut to whole microseconds: what Django's `datetime` can hold.
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap()
}

// ----- a new session -----

fn new_session_has_no_key_and_clear_flags<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    assert!(!s.modified());
    assert!(!s.accessed());
    assert_eq!(s.session_key(), None);
    assert!(s.is_empty());
    // Neither reading the key nor asking is_empty counts as an access.
    assert!(!s.accessed());
    assert!(!s.modified());
}

fn session_clones_share_state<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    let t = s.clone();
    t.insert("a", 1).unwrap();
    assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
    assert!(s.modified());
}

// ----- get / get_value -----

fn get_missing_is_none_and_sets_accessed_only<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    assert_eq!(s.get::<String>("cat").unwrap(), None);
    assert!(s.accessed());
    assert!(!s.modified());

    let s = fresh(&S::new_store());
    assert_eq!(s.get_value("cat"), None);
    assert!(s.accessed());
    assert!(!s.modified());
}

async fn get_present_sets_accessed_leaves_modified<S: SuiteStore>() {
    let store = S::new_store();
    let (_, key) = saved(&store, &[("n", json!(7)), ("s", json!("x"))]).await;
    let s = load(&store, &key).await;
    assert!(!s.accessed());
    assert!(!s.modified());
    assert_eq!(s.get::<u32>("n").unwrap(), Some(7));
    assert!(s.accessed());
    assert!(!s.modified());
    assert_eq!(s.get_value("s"), Some(json!("x")));
    assert!(!s.modified());
}

fn typed_get_of_wrong_type_is_serde_error_and_changes_nothing<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("n", "not a number").unwrap();
    s.set_modified(false);
    let err = s.get::<u32>("n").unwrap_err();
    assert!(is_serde_err(&err, "n"), "{err:?}");
    assert!(!s.modified());
    assert_eq!(s.get_value("n"), Some(json!("not a number")));
    assert_eq!(s.len(), 1);
}

// ----- insert / insert_value -----

fn insert_sets_modified_even_with_the_same_value<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("cat", "dog").unwrap();
    assert!(s.modified());
    assert!(s.accessed());
    s.set_modified(false);
    s.insert("cat", "dog").unwrap();
    assert!(s.modified(), "setting an equal value still modifies");
    s.set_modified(false);
    s.insert_value("cat", json!("dog"));
    assert!(s.modified());
    assert_eq!(s.get::<String>("cat").unwrap().as_deref(), Some("dog"));
}

fn insert_keeps_insertion_order_and_reinsert_keeps_position<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("a", 1).unwrap();
    s.insert("b", 2).unwrap();
    s.insert_value("c", json!(3));
    assert_eq!(keys_of(&s), ["a", "b", "c"]);
    // Like a Python dict: overwriting keeps the key where it was.
    s.insert("a", 10).unwrap();
    assert_eq!(keys_of(&s), ["a", "b", "c"]);
    assert_eq!(s.get_value("a"), Some(json!(10)));
    // Deleting and re-adding moves it to the end.
    s.remove("b");
    s.insert("b", 20).unwrap();
    assert_eq!(keys_of(&s), ["a", "c", "b"]);
}

fn insert_of_unserializable_value_fails_and_writes_nothing<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    let bad: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    let err = s.insert("bad", bad).unwrap_err();
    assert!(is_serde_err(&err, "bad"), "{err:?}");
    assert!(!s.modified());
    assert!(!s.contains_key("bad"));
    assert!(s.is_empty());
}

// ----- remove / pop -----

fn remove_present_sets_modified_missing_leaves_it<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("a", 1).unwrap();
    s.set_modified(false);
    assert_eq!(s.remove("a"), Some(json!(1)));
    assert!(s.modified());
    assert!(!s.contains_key("a"));

    let s = fresh(&S::new_store());
    assert_eq!(s.remove("missing"), None);
    assert!(!s.modified());
    assert!(s.accessed());
}

fn pop_present_missing_and_wrong_type<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("cat", "dog").unwrap();
    s.insert("n", "seven").unwrap();
    s.set_modified(false);

    // Missing: None, modified unchanged.
    assert_eq!(s.pop::<String>("missing").unwrap(), None);
    assert!(!s.modified());
    assert!(s.accessed());

    // Wrong type: error, value left in place, modified unchanged.
    let err = s.pop::<u32>("n").unwrap_err();
    assert!(is_serde_err(&err, "n"), "{err:?}");
    assert_eq!(s.get_value("n"), Some(json!("seven")));
    assert!(!s.modified());

    // Present: returned and removed, modified.
    assert_eq!(s.pop::<String>("cat").unwrap().as_deref(), Some("dog"));
    assert!(s.modified());
    assert!(!s.contains_key("cat"));
    assert_eq!(keys_of(&s), ["n"]);
}

// ----- setdefault -----

fn setdefault_present_returns_existing_and_writes_nothing<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("foo", "bar").unwrap();
    s.set_modified(false);
    assert_eq!(s.setdefault("foo", "baz".to_owned()).unwrap(), "bar");
    assert_eq!(s.get_value("foo"), Some(json!("bar")));
    assert!(!s.modified());
    assert!(s.accessed());
}

fn setdefault_missing_writes_and_sets_modified<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    assert_eq!(s.setdefault("foo", "bar".to_owned()).unwrap(), "bar");
    assert_eq!(s.get_value("foo"), Some(json!("bar")));
    assert!(s.modified());
    assert!(s.accessed());
}

// ----- update -----

fn update_merges_in_order_and_sets_modified<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("a", 0).unwrap();
    s.set_modified(false);
    s.update([("b", 2), ("a", 1), ("c", 3)]).unwrap();
    assert!(s.modified());
    assert_eq!(
        s.items(),
        [
            ("a".to_owned(), json!(1)),
            ("b".to_owned(), json!(2)),
            ("c".to_owned(), json!(3)),
        ]
    );
}

fn update_with_empty_iterator_still_sets_modified<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.update(Vec::<(String, i32)>::new()).unwrap();
    assert!(s.modified());
    assert!(s.accessed());
    assert_eq!(s.len(), 0);
}

fn update_is_all_or_nothing_when_a_value_fails_to_serialize<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("keep", 1).unwrap();
    s.set_modified(false);
    // An empty map with non-string keys serializes fine; a non-empty one cannot be JSON.
    let good: HashMap<(u8, u8), u8> = HashMap::new();
    let bad: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    let err = s.update([("good", good), ("bad", bad)]).unwrap_err();
    assert!(is_serde_err(&err, "bad"), "{err:?}");
    assert!(!s.contains_key("good"), "nothing is written");
    assert!(!s.contains_key("bad"));
    assert_eq!(keys_of(&s), ["keep"]);
    assert!(!s.modified());
}

// ----- contains_key, keys, values, items, len -----

async fn views_set_accessed_not_modified_and_keep_order<S: SuiteStore>() {
    let store = S::new_store();
    let (_, key) = saved(
        &store,
        &[("z", json!(1)), ("a", json!([2])), ("m", json!({"k": 3}))],
    )
    .await;

    type View = fn(&Session);
    let views: [(&str, View); 5] = [
        ("contains_key", |s| assert!(s.contains_key("a"))),
        ("keys", |s| assert_eq!(s.keys(), ["z", "a", "m"])),
        ("values", |s| {
            assert_eq!(s.values(), [json!(1), json!([2]), json!({"k": 3})])
        }),
        ("items", |s| {
            assert_eq!(
                s.items(),
                [
                    ("z".to_owned(), json!(1)),
                    ("a".to_owned(), json!([2])),
                    ("m".to_owned(), json!({"k": 3})),
                ]
            )
        }),
        ("len", |s| assert_eq!(s.len(), 3)),
    ];
    for (name, view) in views {
        let s = load(&store, &key).await;
        assert!(!s.accessed(), "{name}");
        view(&s);
        assert!(s.accessed(), "{name} sets accessed");
        assert!(!s.modified(), "{name} leaves modified");
    }
    let s = fresh(&store);
    assert!(!s.contains_key("a"));
    assert!(s.accessed());
}

// ----- clear -----

async fn clear_empties_without_the_store_and_keeps_the_key<S: SuiteStore>() {
    let store = S::new_store();
    let (_, key) = saved(&store, &[("x", json!(1)), ("y", json!(2))]).await;
    let s = load(&store, &key).await;
    assert!(!s.accessed());
    assert!(!s.modified());
    s.clear();
    assert!(s.accessed());
    assert!(s.modified());
    assert_eq!(s.items(), []);
    assert_eq!(s.len(), 0);
    assert_eq!(s.session_key().unwrap().as_str(), key);
    assert!(
        !s.is_empty(),
        "the key remains, so the session is not empty"
    );

    // Saving writes the empty map under the same key.
    s.save().await.unwrap();
    let again = load(&store, &key).await;
    assert_eq!(again.session_key().unwrap().as_str(), key);
    assert_eq!(again.len(), 0);
}

fn clear_on_a_new_session<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert("x", 1).unwrap();
    s.clear();
    assert_eq!(s.len(), 0);
    assert!(s.modified());
    assert!(s.is_empty());
}

// ----- is_empty -----

async fn is_empty_follows_django<S: SuiteStore>() {
    let store = S::new_store();

    let s = fresh(&store);
    assert!(s.is_empty());
    s.get_value("anything");
    assert!(s.is_empty(), "reading a new session leaves it empty");
    s.insert("foo", "bar").unwrap();
    assert!(!s.is_empty());

    // A stored record with a key but no data is not empty.
    let blank = fresh(&store);
    blank.save().await.unwrap();
    let key = blank.session_key().unwrap().to_string();
    let loaded = load(&store, &key).await;
    assert!(!loaded.is_empty());
    assert!(!loaded.accessed(), "is_empty never sets accessed");
    assert_eq!(loaded.len(), 0);
    assert!(!loaded.is_empty(), "still not empty once read");

    // Deleting the last item keeps the key: still not empty (test_empty_session_saved).
    let (s, _) = saved(&store, &[("only", json!(1))]).await;
    s.remove("only");
    assert!(!s.is_empty());
}

// ----- flags -----

async fn flags_and_session_key_reads<S: SuiteStore>() {
    let store = S::new_store();
    let (_, key) = saved(&store, &[("a", json!(1))]).await;
    let s = load(&store, &key).await;
    assert_eq!(s.session_key().unwrap().as_str(), key);
    assert!(!s.is_empty());
    assert!(!s.accessed(), "session_key and is_empty are not accesses");
    assert!(!s.modified());

    s.set_modified(true);
    assert!(s.modified());
    assert!(!s.accessed());
    s.set_modified(false);
    assert!(!s.modified());
}

async fn session_key_is_none_until_saved_then_32_lowercase_alphanumerics<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    assert_eq!(s.session_key(), None);
    s.insert("a", 1).unwrap();
    assert_eq!(s.session_key(), None, "no key before a save");
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    assert_eq!(key.as_str().len(), 32);
    assert!(
        key.as_str()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{key}"
    );
}

// ----- test cookie -----

fn test_cookie_round_trip<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    assert!(!s.test_cookie_worked());
    s.set_test_cookie();
    assert!(s.modified());
    assert_eq!(s.get_value("testcookie"), Some(json!("worked")));
    assert!(s.test_cookie_worked());

    s.set_modified(false);
    s.delete_test_cookie();
    assert!(s.modified());
    assert!(!s.contains_key("testcookie"));
    assert!(!s.test_cookie_worked());
}

fn test_cookie_worked_only_for_the_exact_string<S: SuiteStore>() {
    for other in [
        json!("WORKED"),
        json!("worked "),
        json!(true),
        json!(1),
        json!(["worked"]),
        json!({"testcookie": "worked"}),
        json!(null),
    ] {
        let s = fresh(&S::new_store());
        s.insert_value("testcookie", other.clone());
        assert!(!s.test_cookie_worked(), "{other}");
    }
}

fn delete_test_cookie_when_absent_leaves_modified<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.delete_test_cookie();
    assert!(!s.modified());
}

// ----- set_expiry -----

fn set_expiry_stores_djangos_values<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.set_expiry(Some(Expiry::BrowserClose));
    assert_eq!(s.get_value("_session_expiry"), Some(json!(0)));
    assert!(s.modified());
    assert!(s.accessed());

    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(300))));
    assert_eq!(s.get_value("_session_expiry"), Some(json!(300)));

    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(-10))));
    assert_eq!(s.get_value("_session_expiry"), Some(json!(-10)));
    assert_eq!(s.get_expiry_age(), -10);

    s.set_expiry(Some(Expiry::At(datetime!(2026-11-27 01:55:12.051589 UTC))));
    assert_eq!(
        s.get_value("_session_expiry"),
        Some(json!("2026-11-27T01:55:12.051589+00:00"))
    );

    s.set_expiry(Some(Expiry::At(datetime!(2026-11-27 01:55:12 UTC))));
    assert_eq!(
        s.get_value("_session_expiry"),
        Some(json!("2026-11-27T01:55:12+00:00")),
        "no fraction when the microseconds are zero"
    );

    // Another offset is written in UTC.
    s.set_expiry(Some(Expiry::At(datetime!(2026-11-27 03:55:12.5 +02:00))));
    assert_eq!(
        s.get_value("_session_expiry"),
        Some(json!("2026-11-27T01:55:12.500000+00:00"))
    );
}

fn expiry_after_is_an_absolute_instant_from_now<S: SuiteStore>() {
    let d = Duration::minutes(5);
    let before = OffsetDateTime::now_utc();
    let e = Expiry::after(d);
    let after = OffsetDateTime::now_utc();
    let Expiry::At(t) = e else {
        panic!("Expiry::after gives an At, got {e:?}")
    };
    assert!(
        t >= before + d && t <= after + d,
        "{t} not in [{before}+d, {after}+d]"
    );

    let s = fresh(&S::new_store());
    s.set_expiry(Some(e));
    assert!(s.get_value("_session_expiry").unwrap().is_string());
    assert!(matches!(s.get_expiry(), Some(Expiry::At(_))));
    let age = s.get_expiry_age();
    assert!((299..=300).contains(&age), "{age}");
}

fn set_expiry_none_removes_and_sets_modified_only_if_one_existed<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.set_expiry(None);
    assert!(
        !s.modified(),
        "None without a custom expiry leaves modified"
    );
    assert!(s.accessed(), "but it loads");
    assert!(!s.contains_key("_session_expiry"));

    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(10))));
    s.set_modified(false);
    s.set_expiry(None);
    assert!(s.modified());
    assert!(!s.contains_key("_session_expiry"));
    assert_eq!(s.get_expiry(), None);
    // Django's test_custom_expiry_reset.
    assert_eq!(s.get_expiry_age(), COOKIE_AGE);
}

// ----- get_expiry_age / get_expiry_date -----

fn default_expiry_is_the_cookie_age<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    assert_eq!(s.get_session_cookie_age(), COOKIE_AGE);
    assert_eq!(s.get_expiry_age(), COOKIE_AGE);
    assert!(s.accessed(), "reading the stored expiry loads");
    assert!(!s.modified());

    let before = OffsetDateTime::now_utc();
    let date = s.get_expiry_date();
    let after = OffsetDateTime::now_utc();
    let age = Duration::seconds(COOKIE_AGE);
    assert!(date >= before + age && date <= after + age, "{date}");

    let m = datetime!(2026-01-01 00:00:00 UTC);
    assert_eq!(s.get_expiry_date_with(m, None), m + age);

    // set_expiry(0): still the cookie age (test_default_expiry).
    s.set_expiry(Some(Expiry::BrowserClose));
    assert_eq!(s.get_expiry_age(), COOKIE_AGE);
    assert_eq!(s.get_expiry_date_with(m, s.get_expiry()), m + age);
    assert_eq!(
        s.get_expiry_age_with(m, Some(Expiry::BrowserClose)),
        COOKIE_AGE
    );
}

fn inactivity_expiry_age_is_the_number_regardless_of_modification<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(10))));
    assert_eq!(s.get_expiry_age(), 10);
    let m = datetime!(2020-01-01 00:00:00 UTC);
    assert_eq!(s.get_expiry_age_with(m, s.get_expiry()), 10);
    assert_eq!(
        s.get_expiry_age_with(m - Duration::days(400), s.get_expiry()),
        10
    );
    // test_custom_expiry_seconds: the date moves with the modification time.
    assert_eq!(
        s.get_expiry_date_with(m, s.get_expiry()),
        m + Duration::seconds(10)
    );
    assert_eq!(
        s.get_expiry_date_with(m, Some(Expiry::Inactivity(Duration::seconds(-5)))),
        m - Duration::seconds(5)
    );
    assert_eq!(
        s.get_expiry_age_with(m, Some(Expiry::Inactivity(Duration::seconds(-5)))),
        -5
    );
}

fn absolute_expiry_age_is_floored_toward_minus_infinity<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    let m = datetime!(2026-11-27 12:00:00 UTC);
    let age = |ms: i64| s.get_expiry_age_with(m, Some(Expiry::At(m + Duration::milliseconds(ms))));
    assert_eq!(age(9_500), 9);
    assert_eq!(age(200), 0);
    assert_eq!(age(-500), -1);
    assert_eq!(age(-10_000), -10);
    assert_eq!(age(0), 0);
}

fn explicit_none_expiry_means_the_cookie_age_and_does_not_load<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    let m = datetime!(2026-11-27 12:00:00 UTC);
    assert_eq!(s.get_expiry_age_with(m, None), COOKIE_AGE);
    assert_eq!(
        s.get_expiry_date_with(m, None),
        m + Duration::seconds(COOKIE_AGE)
    );
    assert!(!s.accessed(), "an explicit expiry never loads");

    // Even when the session has a custom expiry stored.
    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(10))));
    assert_eq!(s.get_expiry_age_with(m, None), COOKIE_AGE);
    assert_eq!(
        s.get_expiry_date_with(m, None),
        m + Duration::seconds(COOKIE_AGE)
    );
}

fn absolute_expiry_date_is_returned_exactly<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    let at = datetime!(2030-05-05 05:05:05.000123 UTC);
    let m = datetime!(2026-01-01 00:00:00 UTC);
    assert_eq!(s.get_expiry_date_with(m, Some(Expiry::At(at))), at);
    s.set_expiry(Some(Expiry::At(at)));
    assert_eq!(s.get_expiry_date(), at);
    assert_eq!(s.get_expiry(), Some(Expiry::At(at)));
}

fn microsecond_expiry_dates_round_trip_exactly<S: SuiteStore>() {
    // test_custom_expiry_datetime: exact equality with modification + 10 s.
    for m in [now_micros(), datetime!(2026-11-27 01:55:12.000001 UTC)] {
        let s = fresh(&S::new_store());
        let at = m + Duration::seconds(10);
        s.set_expiry(Some(Expiry::At(at)));
        assert_eq!(s.get_expiry_date(), at);
        assert_eq!(s.get_expiry_date_with(m, s.get_expiry()), at);
        assert_eq!(s.get_expiry_age_with(m, s.get_expiry()), 10);
    }
}

fn sub_microsecond_precision_is_cut_to_djangos<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.set_expiry(Some(Expiry::At(
        datetime!(2026-11-27 01:55:12.000001999 UTC),
    )));
    assert_eq!(
        s.get_expiry_date(),
        datetime!(2026-11-27 01:55:12.000001 UTC)
    );
}

fn expiry_values_written_by_django_are_read_back<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert_value("_session_expiry", json!("2026-11-27T01:55:12+00:00"));
    let at = datetime!(2026-11-27 01:55:12 UTC);
    assert_eq!(s.get_expiry(), Some(Expiry::At(at)));
    assert_eq!(s.get_expiry_date(), at);

    s.insert_value("_session_expiry", json!("2026-11-27T01:55:12.051589+00:00"));
    assert_eq!(
        s.get_expiry(),
        Some(Expiry::At(datetime!(2026-11-27 01:55:12.051589 UTC)))
    );

    s.insert_value("_session_expiry", json!(300));
    assert_eq!(
        s.get_expiry(),
        Some(Expiry::Inactivity(Duration::seconds(300)))
    );
    assert_eq!(s.get_expiry_age(), 300);

    s.insert_value("_session_expiry", json!(0));
    assert_eq!(s.get_expiry(), Some(Expiry::BrowserClose));
    assert!(s.get_expire_at_browser_close());

    s.insert_value("_session_expiry", json!(null));
    assert_eq!(s.get_expiry(), None);
    assert_eq!(s.get_expiry_age(), COOKIE_AGE);
}

fn malformed_expiry_in_memory_counts_as_none<S: SuiteStore>() {
    let s = fresh(&S::new_store());
    s.insert_value("_session_expiry", json!(true));
    assert_eq!(s.get_expiry(), None);
    assert_eq!(s.get_expiry_age(), COOKIE_AGE);
}

// ----- get_expire_at_browser_close -----

fn expire_at_browser_close_matrix<S: SuiteStore>() {
    // Django's table: setting False: 10 → F, 0 → T, None → F; setting True: F, T, T.
    let cases = [
        (
            false,
            Some(Expiry::Inactivity(Duration::seconds(10))),
            false,
        ),
        (false, Some(Expiry::BrowserClose), true),
        (false, None, false),
        (true, Some(Expiry::Inactivity(Duration::seconds(10))), false),
        (true, Some(Expiry::BrowserClose), true),
        (true, None, true),
    ];
    for (setting, expiry, expected) in cases {
        let config = SessionConfig::default().with_expire_at_browser_close(setting);
        let s = Session::new(S::new_store(), config);
        s.set_expiry(expiry);
        assert_eq!(
            s.get_expire_at_browser_close(),
            expected,
            "setting {setting}, expiry {expiry:?}"
        );
        assert!(s.accessed(), "it loads");
    }
    // An absolute date is not browser-close either.
    let s = Session::new(
        S::new_store(),
        SessionConfig::default().with_expire_at_browser_close(true),
    );
    s.set_expiry(Some(Expiry::At(datetime!(2030-01-01 00:00:00 UTC))));
    assert!(!s.get_expire_at_browser_close());
}

fn session_cookie_age_follows_the_config<S: SuiteStore>() {
    let config = SessionConfig::default().with_cookie_age(Duration::days(1));
    let s = Session::new(S::new_store(), config);
    assert_eq!(s.get_session_cookie_age(), 86_400);
    assert_eq!(s.get_expiry_age(), 86_400);
    let m = datetime!(2026-01-01 00:00:00 UTC);
    assert_eq!(s.get_expiry_date_with(m, None), m + Duration::days(1));
    assert_eq!(s.config().cookie_age, Duration::days(1));
}

// ----- store operations -----

async fn save_of_a_new_session_creates_a_key_and_keeps_flags<S: SuiteStore>() {
    let store = S::new_store();
    let s = fresh(&store);
    s.insert("a", "b").unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    assert!(s.modified(), "save does not reset modified");
    assert!(s.accessed(), "save does not reset accessed");
    // test_save_doesnt_clear_data.
    assert_eq!(s.get::<String>("a").unwrap().as_deref(), Some("b"));
    assert!(s.exists(key.as_str()).await.unwrap());

    let again = load(&store, key.as_str()).await;
    assert_eq!(again.session_key(), Some(key.clone()));
    assert_eq!(again.get_value("a"), Some(json!("b")));
    assert!(!again.modified());

    // A second save of the same session updates the record under the same key.
    s.insert("c", 1).unwrap();
    s.save().await.unwrap();
    assert_eq!(s.session_key(), Some(key.clone()));
    let again = load(&store, key.as_str()).await;
    assert_eq!(again.keys(), ["a", "c"]);
    assert_eq!(store.len(), 1);
}

async fn stored_data_keeps_order_and_json_types<S: SuiteStore>() {
    let store = S::new_store();
    let s = fresh(&store);
    s.insert("z", 1u8).unwrap();
    s.insert("b", vec![true, false]).unwrap();
    s.insert("a", Option::<u8>::None).unwrap();
    s.insert("e", "é€😀").unwrap();
    s.insert("f", 1.5).unwrap();
    s.save().await.unwrap();
    let again = load(&store, s.session_key().unwrap().as_str()).await;
    assert_eq!(again.items(), s.items());
    assert_eq!(again.keys(), ["z", "b", "a", "e", "f"]);
    assert_eq!(
        again.get::<Vec<bool>>("b").unwrap(),
        Some(vec![true, false])
    );
    assert_eq!(again.get_value("a"), Some(json!(null)));
}

async fn load_of_unknown_or_malformed_keys_gives_an_empty_keyless_session<S: SuiteStore>() {
    let store = S::new_store();
    let long = "a".repeat(1240);
    for key in [
        "abcdefghijklmnopqrstuvwxyz012345",
        "abcdefghij",
        "../x",
        "short",
        "",
        "ABCDEFGHIJKLMNOP",
        "bad key!",
        long.as_str(),
    ] {
        let s = load(&store, key).await;
        assert_eq!(s.session_key(), None, "{key:?}");
        assert!(s.is_empty(), "{key:?}");
        assert_eq!(s.len(), 0, "{key:?}");
    }
    assert!(store.is_empty(), "loading never creates a record");
}

async fn unknown_key_then_write_and_save_creates_a_new_key<S: SuiteStore>() {
    let store = S::new_store();
    let unknown = "abcdefghijklmnopqrstuvwxyz012345";
    let s = load(&store, unknown).await;
    s.insert("a", 1).unwrap();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    assert_ne!(key.as_str(), unknown, "a client's key is never adopted");
    assert!(!s.exists(unknown).await.unwrap());
    assert_eq!(
        load(&store, key.as_str()).await.get_value("a"),
        Some(json!(1))
    );
}

async fn load_of_expired_keys_gives_an_empty_keyless_session<S: SuiteStore>() {
    let store = S::new_store();
    // test_actual_expiry: an expiry in the past, as a number, a timedelta or a date.
    for expiry in [
        Expiry::Inactivity(Duration::seconds(-10)),
        Expiry::after(Duration::seconds(-10)),
        Expiry::At(OffsetDateTime::now_utc() - Duration::seconds(1)),
    ] {
        let s = fresh(&store);
        s.insert("foo", "bar").unwrap();
        s.set_expiry(Some(expiry));
        s.save().await.unwrap();
        let key = s.session_key().unwrap();
        let again = load(&store, key.as_str()).await;
        assert_eq!(again.session_key(), None, "{expiry:?}");
        assert!(!again.contains_key("foo"), "{expiry:?}");
        assert!(again.is_empty());
    }

    // An existing session saved with a past expiry stops loading too.
    let (s, key) = saved(&store, &[("foo", json!("bar"))]).await;
    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(-10))));
    s.save().await.unwrap();
    let again = load(&store, &key).await;
    assert_eq!(again.session_key(), None);
    assert_eq!(again.len(), 0);
}

async fn create_makes_a_new_key_each_time_and_never_overwrites<S: SuiteStore>() {
    let store = S::new_store();
    let s = fresh(&store);
    s.insert("n", 1).unwrap();
    s.create().await.unwrap();
    assert!(s.modified());
    let k1 = s.session_key().unwrap();

    s.insert("n", 2).unwrap();
    s.create().await.unwrap();
    let k2 = s.session_key().unwrap();
    assert_ne!(k1, k2);

    assert_eq!(
        load(&store, k1.as_str()).await.get_value("n"),
        Some(json!(1))
    );
    assert_eq!(
        load(&store, k2.as_str()).await.get_value("n"),
        Some(json!(2))
    );
    assert_eq!(store.len(), 2);

    // create on a fresh session with nothing in it stores an empty record.
    let blank = fresh(&store);
    blank.create().await.unwrap();
    assert!(blank.modified());
    let k3 = blank.session_key().unwrap();
    assert!(blank.exists(k3.as_str()).await.unwrap());
    assert_eq!(load(&store, k3.as_str()).await.len(), 0);
}

async fn delete_removes_the_record_keeps_the_key_and_blocks_resurrection<S: SuiteStore>() {
    let store = S::new_store();
    let (s, key) = saved(&store, &[("a", json!(1))]).await;
    s.delete().await.unwrap();
    assert_eq!(s.session_key().unwrap().as_str(), key, "the key stays");
    assert!(!s.exists(&key).await.unwrap());
    assert_eq!(s.get_value("a"), Some(json!(1)), "in-memory data stays");

    s.insert("b", 2).unwrap();
    let err = s.save().await.unwrap_err();
    assert!(matches!(err, Error::SessionInterrupted), "{err:?}");
    assert!(!s.exists(&key).await.unwrap(), "not resurrected");
    let again = load(&store, &key).await;
    assert_eq!(again.session_key(), None);
    assert!(again.is_empty());
    assert!(store.is_empty());

    // delete on a keyless session is a no-op.
    fresh(&store).delete().await.unwrap();
}

async fn exists_answers_for_any_key<S: SuiteStore>() {
    let store = S::new_store();
    let (s, key) = saved(&store, &[]).await;
    assert!(s.exists(&key).await.unwrap());
    let other = fresh(&store);
    assert!(other.exists(&key).await.unwrap());
    assert!(
        !other
            .exists("abcdefghijklmnopqrstuvwxyz012345")
            .await
            .unwrap()
    );
    assert!(!other.exists("bad key!").await.unwrap());
    assert!(!other.exists("").await.unwrap());
    assert!(!other.exists("../x").await.unwrap());
    assert!(!other.accessed(), "exists is not a data access");
}

async fn flush_clears_data_drops_key_and_deletes_the_record<S: SuiteStore>() {
    let store = S::new_store();
    let (_, key) = saved(&store, &[("foo", json!("bar"))]).await;
    let s = load(&store, &key).await;
    s.flush().await.unwrap();
    assert_eq!(s.session_key(), None);
    assert_eq!(s.len(), 0);
    assert!(s.modified());
    assert!(s.accessed());
    assert!(s.is_empty());
    assert!(!s.exists(&key).await.unwrap());
    let again = load(&store, &key).await;
    assert_eq!(again.session_key(), None);
    assert!(!again.contains_key("foo"));

    // A save after a flush creates a brand-new session.
    s.insert("x", 1).unwrap();
    s.save().await.unwrap();
    let new_key = s.session_key().unwrap();
    assert_ne!(new_key.as_str(), key);
    assert_eq!(load(&store, new_key.as_str()).await.keys(), ["x"]);
}

async fn flush_on_a_keyless_session_is_fine<S: SuiteStore>() {
    let store = S::new_store();
    let s = fresh(&store);
    s.insert("a", 1).unwrap();
    s.flush().await.unwrap();
    assert_eq!(s.session_key(), None);
    assert_eq!(s.len(), 0);
    assert!(s.modified());
    assert!(s.accessed());
    assert!(s.is_empty());
    assert!(store.is_empty());
}

async fn cycle_key_moves_the_data_to_a_new_key<S: SuiteStore>() {
    let store = S::new_store();
    let (s, old) = saved(&store, &[("a", json!("c")), ("b", json!("d"))]).await;
    let before = s.items();
    s.set_modified(false);
    s.cycle_key().await.unwrap();
    let new = s.session_key().unwrap();
    assert_ne!(new.as_str(), old);
    assert!(s.modified());
    assert_eq!(s.items(), before);
    assert!(!s.exists(&old).await.unwrap());
    assert!(s.exists(new.as_str()).await.unwrap());
    assert_eq!(load(&store, new.as_str()).await.items(), before);
    assert_eq!(load(&store, &old).await.session_key(), None);
    assert_eq!(store.len(), 1);
}

async fn cycle_key_on_a_loaded_but_untouched_session<S: SuiteStore>() {
    // test_cycle_with_no_session_cache.
    let store = S::new_store();
    let (_, old) = saved(&store, &[("a", json!("c"))]).await;
    let s = load(&store, &old).await;
    s.cycle_key().await.unwrap();
    let new = s.session_key().unwrap();
    assert_ne!(new.as_str(), old);
    assert_eq!(s.get_value("a"), Some(json!("c")));
    assert_eq!(
        load(&store, new.as_str()).await.get_value("a"),
        Some(json!("c"))
    );
    assert!(!s.exists(&old).await.unwrap());
}

async fn cycle_key_on_a_fresh_session_just_creates_a_key<S: SuiteStore>() {
    let store = S::new_store();
    let s = fresh(&store);
    s.cycle_key().await.unwrap();
    let key = s.session_key().unwrap();
    assert!(s.modified());
    assert!(s.exists(key.as_str()).await.unwrap());
    assert_eq!(store.len(), 1);
}

async fn custom_expiry_survives_a_save_and_load<S: SuiteStore>() {
    let store = S::new_store();
    let s = fresh(&store);
    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(1800))));
    s.save().await.unwrap();
    let again = load(&store, s.session_key().unwrap().as_str()).await;
    assert_eq!(again.get_expiry_age(), 1800);
    assert_eq!(again.get_value("_session_expiry"), Some(json!(1800)));

    let at = now_micros() + Duration::hours(1);
    let s = fresh(&store);
    s.set_expiry(Some(Expiry::At(at)));
    s.save().await.unwrap();
    let again = load(&store, s.session_key().unwrap().as_str()).await;
    assert_eq!(again.get_expiry_date(), at);
}

// ----- concurrent logout -----

async fn concurrent_logout_is_not_resurrected<S: SuiteStore>() {
    let store = S::new_store();
    let s1 = fresh(&store);
    s1.insert("foo", "bar").unwrap();
    s1.create().await.unwrap();
    let key = s1.session_key().unwrap();

    let s2 = load(&store, key.as_str()).await;
    s2.delete().await.unwrap();

    s1.insert("foo", "baz").unwrap();
    let err = s1.save().await.unwrap_err();
    assert!(matches!(err, Error::SessionInterrupted), "{err:?}");

    let again = load(&store, key.as_str()).await;
    assert_eq!(again.session_key(), None);
    assert_eq!(again.len(), 0);
    assert!(store.is_empty());
}

// ----- compare-and-swap saves -----

async fn two_copies<S: SuiteStore>(
    store: &S,
    pairs: &[(&str, Value)],
) -> (Session, Session, String) {
    let (_, key) = saved(store, pairs).await;
    let s1 = load(store, &key).await;
    let s2 = load(store, &key).await;
    (s1, s2, key)
}

fn as_map(s: &Session) -> Map<String, Value> {
    s.items().into_iter().collect()
}

async fn concurrent_saves_of_different_keys_keep_both<S: SuiteStore>() {
    let store = S::new_store();
    let (s1, s2, key) = two_copies(&store, &[("x", json!(0))]).await;
    s1.insert("a", 1).unwrap();
    s2.insert("b", 2).unwrap();
    s1.save().await.unwrap();
    s2.save().await.unwrap();
    let again = load(&store, &key).await;
    assert_eq!(
        as_map(&again),
        json!({"x": 0, "a": 1, "b": 2}).as_object().unwrap().clone()
    );
    assert_eq!(again.keys(), ["x", "a", "b"]);
    // The second saver's own view has the other's change too.
    assert_eq!(s2.get_value("a"), Some(json!(1)));
}

async fn a_merge_keeps_every_change_of_a_request_that_changed_many_keys<S: SuiteStore>() {
    // More changed keys than the change set keeps inline, and a removal among them: after a
    // lost race each is re-applied, and the other writer's key survives.
    let store = S::new_store();
    let (s1, s2, key) = two_copies(&store, &[("gone", json!(0)), ("kept", json!(1))]).await;
    for i in 0..10 {
        s1.insert(format!("k{i}"), i).unwrap();
    }
    assert_eq!(s1.remove("gone"), Some(json!(0)));
    s2.insert("theirs", "x").unwrap();
    s2.save().await.unwrap();
    s1.save().await.unwrap();
    let again = load(&store, &key).await;
    let mut expected = json!({"kept": 1, "theirs": "x"})
        .as_object()
        .unwrap()
        .clone();
    for i in 0..10 {
        expected.insert(format!("k{i}"), json!(i));
    }
    assert_eq!(as_map(&again), expected);
    assert_eq!(again.get_value("gone"), None);
}

async fn concurrent_remove_and_insert_keep_both_effects<S: SuiteStore>() {
    let store = S::new_store();
    let (s1, s2, key) = two_copies(&store, &[("x", json!(1)), ("keep", json!(2))]).await;
    assert_eq!(s1.remove("x"), Some(json!(1)));
    s2.insert("y", 3).unwrap();
    s1.save().await.unwrap();
    s2.save().await.unwrap();
    let again = load(&store, &key).await;
    assert_eq!(again.keys(), ["keep", "y"]);
    assert_eq!(again.get_value("y"), Some(json!(3)));

    // The other order.
    let (s1, s2, key) = two_copies(&store, &[("x", json!(1)), ("keep", json!(2))]).await;
    assert_eq!(s1.remove("x"), Some(json!(1)));
    s2.insert("y", 3).unwrap();
    s2.save().await.unwrap();
    s1.save().await.unwrap();
    let again = load(&store, &key).await;
    assert!(!again.contains_key("x"));
    assert_eq!(again.get_value("keep"), Some(json!(2)));
    assert_eq!(again.get_value("y"), Some(json!(3)));
    assert_eq!(again.len(), 2);
}

async fn concurrent_clear_replaces_everything_only_when_it_saves_last<S: SuiteStore>() {
    let store = S::new_store();

    // s1 (clear + c) saves first, s2 (d) last: s2's change lands on s1's record.
    let (s1, s2, key) = two_copies(&store, &[("x", json!(1))]).await;
    s1.clear();
    s1.insert("c", 1).unwrap();
    s2.insert("d", 2).unwrap();
    s1.save().await.unwrap();
    s2.save().await.unwrap();
    let again = load(&store, &key).await;
    assert_eq!(again.keys(), ["c", "d"]);

    // s2 saves first, s1 (clear + c) last: the clear wipes s2's change; only c survives.
    let (s1, s2, key) = two_copies(&store, &[("x", json!(1))]).await;
    s1.clear();
    s1.insert("c", 1).unwrap();
    s2.insert("d", 2).unwrap();
    s2.save().await.unwrap();
    s1.save().await.unwrap();
    let again = load(&store, &key).await;
    assert_eq!(again.keys(), ["c"]);
    assert_eq!(again.get_value("c"), Some(json!(1)));
}

async fn concurrent_writes_of_the_same_key_last_writer_wins<S: SuiteStore>() {
    let store = S::new_store();
    let (s1, s2, key) = two_copies(&store, &[("k", json!(0))]).await;
    s1.insert("k", 1).unwrap();
    s2.insert("k", 2).unwrap();
    s1.save().await.unwrap();
    s2.save().await.unwrap();
    assert_eq!(load(&store, &key).await.get_value("k"), Some(json!(2)));

    let (s1, s2, key) = two_copies(&store, &[("k", json!(0))]).await;
    s1.insert("k", 1).unwrap();
    s2.insert("k", 2).unwrap();
    s2.save().await.unwrap();
    s1.save().await.unwrap();
    assert_eq!(load(&store, &key).await.get_value("k"), Some(json!(1)));
}

async fn repeated_saves_of_one_session_after_a_conflict_keep_working<S: SuiteStore>() {
    let store = S::new_store();
    let (s1, s2, key) = two_copies(&store, &[]).await;
    s1.insert("a", 1).unwrap();
    s1.save().await.unwrap();
    s2.insert("b", 2).unwrap();
    s2.save().await.unwrap();
    // s2 now holds the current version: a further save does not undo s1's change.
    s2.insert("c", 3).unwrap();
    s2.save().await.unwrap();
    assert_eq!(load(&store, &key).await.keys(), ["a", "b", "c"]);
}

async fn forced_save_without_changes_does_not_undo_a_concurrent_save<S: SuiteStore>() {
    // SESSION_SAVE_EVERY_REQUEST-style save: modified forced, nothing changed.
    let store = S::new_store();
    let (s1, s2, key) = two_copies(&store, &[("x", json!(1))]).await;
    s1.get_value("x");
    s1.set_modified(true);
    s2.insert("y", 2).unwrap();
    s2.remove("x");
    s2.save().await.unwrap();
    s1.save().await.unwrap();
    assert_eq!(load(&store, &key).await.keys(), ["y"]);
}

async fn save_after_a_concurrent_cycle_key_is_interrupted<S: SuiteStore>() {
    let store = S::new_store();
    let (s1, s2, key) = two_copies(&store, &[("x", json!(1))]).await;
    s2.cycle_key().await.unwrap();
    s1.insert("y", 2).unwrap();
    let err = s1.save().await.unwrap_err();
    assert!(matches!(err, Error::SessionInterrupted), "{err:?}");
    assert_eq!(load(&store, &key).await.session_key(), None);
    let moved = load(&store, s2.session_key().unwrap().as_str()).await;
    assert_eq!(moved.keys(), ["x"]);
}

// ----- malformed stored expiry -----

async fn record_with_malformed_expiry_is_no_session<S: SuiteStore>() {
    let store = S::new_store();
    for bad in [json!(true), json!([1]), json!({"a": 1}), json!("tomorrow")] {
        let mut map = Map::new();
        map.insert("user".into(), json!(42));
        map.insert("_session_expiry".into(), bad.clone());
        let record = Record {
            data: Arc::new(map),
            expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
        };
        let (key, _) = store.create(&record).await.unwrap();
        let s = load(&store, key.as_str()).await;
        assert_eq!(s.session_key(), None, "{bad}");
        assert!(!s.contains_key("user"), "{bad}");
        assert!(s.is_empty(), "{bad}");
    }

    // A well-formed one written the same way loads.
    let mut map = Map::new();
    map.insert("user".into(), json!(42));
    map.insert("_session_expiry".into(), json!(3600));
    let record = Record {
        data: Arc::new(map),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    };
    let (key, _) = store.create(&record).await.unwrap();
    let s = load(&store, key.as_str()).await;
    assert_eq!(s.session_key(), Some(key));
    assert_eq!(s.get_value("user"), Some(json!(42)));
}

// ----- Send / Sync -----

fn session_and_its_futures_are_send<S: SuiteStore>() {
    fn send<T: Send>(_: &T) {}
    fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    send_sync_clone::<Session>();
    send_sync_clone::<S>();

    let s = fresh(&S::new_store());
    send(&s.save());
    send(&s.flush());
    send(&s.cycle_key());
    send(&s.create());
    send(&s.delete());
    send(&s.exists("abcdefghij"));
    send(&Session::load(S::new_store(), cfg(), "abcdefghij"));
}

async fn session_futures_run_on_spawned_tasks<S: SuiteStore>() {
    let store = S::new_store();
    let s = fresh(&store);
    s.insert("a", 1).unwrap();
    let task = {
        let s = s.clone();
        tokio::spawn(async move {
            s.save().await?;
            s.cycle_key().await?;
            let key = s.session_key().unwrap().to_string();
            let exists = s.exists(&key).await?;
            Ok::<_, Error>((key, exists))
        })
    };
    let (key, exists) = task.await.unwrap().unwrap();
    assert!(exists);
    let loaded = tokio::spawn({
        let store = store.clone();
        async move { Session::load(store, cfg(), &key).await }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(loaded.get_value("a"), Some(json!(1)));
}

// ----- extremes and hygiene -----

async fn extreme_inactivity_expiries_do_not_panic<S: SuiteStore>() {
    let store = S::new_store();
    let s = fresh(&store);
    s.insert("a", 1).unwrap();
    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(i64::MAX))));
    assert_eq!(s.get_expiry_age(), i64::MAX);
    let _ = s.get_expiry_date();
    s.save().await.unwrap();
    let key = s.session_key().unwrap();
    let again = load(&store, key.as_str()).await;
    assert_eq!(again.get_value("a"), Some(json!(1)));
    assert_eq!(again.get_expiry_age(), i64::MAX);

    let s = fresh(&store);
    s.insert("a", 1).unwrap();
    s.set_expiry(Some(Expiry::Inactivity(Duration::seconds(i64::MIN))));
    assert_eq!(s.get_expiry_age(), i64::MIN);
    let _ = s.get_expiry_date();
    s.save().await.unwrap();
    let again = load(&store, s.session_key().unwrap().as_str()).await;
    assert_eq!(again.session_key(), None, "already expired");
}

async fn debug_output_never_holds_the_key<S: SuiteStore>() {
    let store = S::new_store();
    let (s, key) = saved(&store, &[("a", json!(1))]).await;
    assert!(!format!("{s:?}").contains(&key));
    assert!(!format!("{:?}", s.session_key().unwrap()).contains(&key));
}

fn nan_and_infinities_are_refused_not_stored_as_null<S: SuiteStore>() {
    let session = Session::new(S::new_store(), SessionConfig::default());
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(session.insert("x", bad), Err(Error::Serde { .. })));
        assert!(matches!(
            session.insert("v", vec![1.0, bad]),
            Err(Error::Serde { .. })
        ));
        assert!(matches!(
            session.update([("a", 1.0), ("b", bad)]),
            Err(Error::Serde { .. })
        ));
        assert!(matches!(
            session.setdefault("s", bad),
            Err(Error::Serde { .. })
        ));
    }
    assert!(!session.modified(), "a refused value changed the session");
    assert!(session.is_empty());
    session.insert("ok", 1.5).unwrap();
    assert_eq!(session.get::<f64>("ok").unwrap(), Some(1.5));
}

async fn sessions_over_max_session_size_are_not_saved<S: SuiteStore>() {
    let store = S::new_store();
    let config = Arc::new(SessionConfig::default().with_max_session_size(Some(100)));
    let session = Session::new(store.clone(), Arc::clone(&config));
    session.insert("small", "x").unwrap();
    session.save().await.unwrap();
    let key = session.session_key().unwrap();

    session.insert("big", "y".repeat(200)).unwrap();
    assert!(matches!(
        session.save().await,
        Err(Error::SessionTooLarge { limit: 100 })
    ));
    let stored = Session::load(store.clone(), Arc::clone(&config), key.as_str())
        .await
        .unwrap();
    assert_eq!(stored.get::<String>("small").unwrap().as_deref(), Some("x"));
    assert_eq!(
        stored.get_value("big"),
        None,
        "an oversized save reached the store"
    );

    // A new session that is too large is never created.
    let fresh = Session::new(store.clone(), config);
    fresh.insert("big", "z".repeat(200)).unwrap();
    assert!(matches!(
        fresh.save().await,
        Err(Error::SessionTooLarge { .. })
    ));
    assert!(fresh.session_key().is_none());
    assert_eq!(
        Error::SessionTooLarge { limit: 1 }.status(),
        http::StatusCode::INTERNAL_SERVER_ERROR
    );
}

// ----- both dispatch paths -----

// Every test above runs twice: `memory::<name>` on `MemoryStore`, `io::<name>` on
// `IoStore<MemoryStore>`.
on_both_paths! {
    #[test]
    fn new_session_has_no_key_and_clear_flags;
    #[test]
    fn session_clones_share_state;
    #[test]
    fn get_missing_is_none_and_sets_accessed_only;
    #[tokio::test]
    async fn get_present_sets_accessed_leaves_modified;
    #[test]
    fn typed_get_of_wrong_type_is_serde_error_and_changes_nothing;
    #[test]
    fn insert_sets_modified_even_with_the_same_value;
    #[test]
    fn insert_keeps_insertion_order_and_reinsert_keeps_position;
    #[test]
    fn insert_of_unserializable_value_fails_and_writes_nothing;
    #[test]
    fn remove_present_sets_modified_missing_leaves_it;
    #[test]
    fn pop_present_missing_and_wrong_type;
    #[test]
    fn setdefault_present_returns_existing_and_writes_nothing;
    #[test]
    fn setdefault_missing_writes_and_sets_modified;
    #[test]
    fn update_merges_in_order_and_sets_modified;
    #[test]
    fn update_with_empty_iterator_still_sets_modified;
    #[test]
    fn update_is_all_or_nothing_when_a_value_fails_to_serialize;
    #[tokio::test]
    async fn views_set_accessed_not_modified_and_keep_order;
    #[tokio::test]
    async fn clear_empties_without_the_store_and_keeps_the_key;
    #[test]
    fn clear_on_a_new_session;
    #[tokio::test]
    async fn is_empty_follows_django;
    #[tokio::test]
    async fn flags_and_session_key_reads;
    #[tokio::test]
    async fn session_key_is_none_until_saved_then_32_lowercase_alphanumerics;
    #[test]
    fn test_cookie_round_trip;
    #[test]
    fn test_cookie_worked_only_for_the_exact_string;
    #[test]
    fn delete_test_cookie_when_absent_leaves_modified;
    #[test]
    fn set_expiry_stores_djangos_values;
    #[test]
    fn expiry_after_is_an_absolute_instant_from_now;
    #[test]
    fn set_expiry_none_removes_and_sets_modified_only_if_one_existed;
    #[test]
    fn default_expiry_is_the_cookie_age;
    #[test]
    fn inactivity_expiry_age_is_the_number_regardless_of_modification;
    #[test]
    fn absolute_expiry_age_is_floored_toward_minus_infinity;
    #[test]
    fn explicit_none_expiry_means_the_cookie_age_and_does_not_load;
    #[test]
    fn absolute_expiry_date_is_returned_exactly;
    #[test]
    fn microsecond_expiry_dates_round_trip_exactly;
    #[test]
    fn sub_microsecond_precision_is_cut_to_djangos;
    #[test]
    fn expiry_values_written_by_django_are_read_back;
    #[test]
    fn malformed_expiry_in_memory_counts_as_none;
    #[test]
    fn expire_at_browser_close_matrix;
    #[test]
    fn session_cookie_age_follows_the_config;
    #[tokio::test]
    async fn save_of_a_new_session_creates_a_key_and_keeps_flags;
    #[tokio::test]
    async fn stored_data_keeps_order_and_json_types;
    #[tokio::test]
    async fn load_of_unknown_or_malformed_keys_gives_an_empty_keyless_session;
    #[tokio::test]
    async fn unknown_key_then_write_and_save_creates_a_new_key;
    #[tokio::test]
    async fn load_of_expired_keys_gives_an_empty_keyless_session;
    #[tokio::test]
    async fn create_makes_a_new_key_each_time_and_never_overwrites;
    #[tokio::test]
    async fn delete_removes_the_record_keeps_the_key_and_blocks_resurrection;
    #[tokio::test]
    async fn exists_answers_for_any_key;
    #[tokio::test]
    async fn flush_clears_data_drops_key_and_deletes_the_record;
    #[tokio::test]
    async fn flush_on_a_keyless_session_is_fine;
    #[tokio::test]
    async fn cycle_key_moves_the_data_to_a_new_key;
    #[tokio::test]
    async fn cycle_key_on_a_loaded_but_untouched_session;
    #[tokio::test]
    async fn cycle_key_on_a_fresh_session_just_creates_a_key;
    #[tokio::test]
    async fn custom_expiry_survives_a_save_and_load;
    #[tokio::test]
    async fn concurrent_logout_is_not_resurrected;
    #[tokio::test]
    async fn concurrent_saves_of_different_keys_keep_both;
    #[tokio::test]
    async fn a_merge_keeps_every_change_of_a_request_that_changed_many_keys;
    #[tokio::test]
    async fn concurrent_remove_and_insert_keep_both_effects;
    #[tokio::test]
    async fn concurrent_clear_replaces_everything_only_when_it_saves_last;
    #[tokio::test]
    async fn concurrent_writes_of_the_same_key_last_writer_wins;
    #[tokio::test]
    async fn repeated_saves_of_one_session_after_a_conflict_keep_working;
    #[tokio::test]
    async fn forced_save_without_changes_does_not_undo_a_concurrent_save;
    #[tokio::test]
    async fn save_after_a_concurrent_cycle_key_is_interrupted;
    #[tokio::test]
    async fn record_with_malformed_expiry_is_no_session;
    #[test]
    fn session_and_its_futures_are_send;
    #[tokio::test]
    async fn session_futures_run_on_spawned_tasks;
    #[tokio::test]
    async fn extreme_inactivity_expiries_do_not_panic;
    #[tokio::test]
    async fn debug_output_never_holds_the_key;
    #[test]
    fn nan_and_infinities_are_refused_not_stored_as_null;
    #[tokio::test]
    async fn sessions_over_max_session_size_are_not_saved;
}
