//! The test suite every SQL store runs on top of the conformance suite: what a table Django
//! shares with the store must do, checked through raw rows.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::store::{Codec, Record, SaveOutcome, SessionStore, Version};
use crate::{Error, SessionKey};

/// Django's `SessionBase.encode({"hello": "world"})` with the SessionStore salt,
/// `SECRET_KEY = "django_tests_secret_key"`, at 1700000000.
pub(crate) const DJANGO_HELLO: &str =
    "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:tWy-azdqKYIwu_o6Ht3nBxc5SvPyROA4n-zKWAcm4Cc";

pub(crate) fn django_codec() -> Codec {
    Codec::django("django_tests_secret_key", Vec::<String>::new())
}

/// A migrated SQL store on a table of its own, and raw access to that table.
pub(crate) trait RawTable: SessionStore + Clone {
    /// The same store with `codec`.
    fn codec(self, codec: Codec) -> Self;
    /// The same store (and pool) on table `name`: the store's `with_table`.
    fn on_table(self, name: &str) -> Result<Self, Error>;
    /// The name of the store's table.
    fn table_name(&self) -> &str;
    /// Inserts a row as Django would (`expire` in the backend's representation).
    fn insert_raw(
        &self,
        key: &str,
        data: &str,
        expire: OffsetDateTime,
    ) -> impl Future<Output = ()> + Send;
    /// The stored `session_data` of `key`.
    fn raw_data(&self, key: &SessionKey) -> impl Future<Output = Option<String>> + Send;
    /// The number of rows.
    fn count(&self) -> impl Future<Output = i64> + Send;
    /// Whether a text parameter may hold a NUL character (PostgreSQL's cannot: a statement
    /// binding one fails).
    const TEXT_HOLDS_NUL: bool = true;
}

fn record(value: Value, expiry_date: OffsetDateTime) -> Record {
    let Value::Object(map) = value else {
        panic!("not an object")
    };
    Record {
        data: Arc::new(map),
        expiry_date,
    }
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn in_an_hour() -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::hours(1)
}

/// `t` truncated to the microsecond, as the databases store it.
fn to_the_microsecond(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.microsecond() * 1000).unwrap()
}

/// Runs every check against `store` (plain JSON, empty table).
pub(crate) async fn run<S: RawTable>(store: S) {
    identical_saves_are_saves(&store).await;
    stored_text_is_compared_byte_for_byte(&store).await;
    session_data_is_djangos_encode(&store).await;
    a_row_django_wrote_loads(&store).await;
    expire_date_round_trips_to_the_microsecond(&store).await;
    stale_and_foreign_versions_conflict(&store).await;
    sql_hostile_keys_are_rejected_and_harmless(&store).await;
    corrupt_session_data_is_no_session(&store).await;
    hostile_table_names_are_config_errors(&store);
    a_missing_table_is_a_store_error(&store).await;
    // Last: it counts rows and clears the expired ones.
    expired_rows_never_load_and_clear_expired_deletes_them(&store).await;
}

/// A save that writes exactly what the row holds is a save, not a conflict (MySQL counts
/// changed rows unless the client asks for matched ones; sqlx asks on every connection, so
/// this holds on a pool the user builds, as the MySQL suite's is). A deleted row stays gone.
async fn identical_saves_are_saves<S: RawTable>(store: &S) {
    let expiry = datetime!(2999-01-01 00:00:00.5 UTC);
    let (key, version) = store
        .create(&record(json!({"a": 1}), expiry))
        .await
        .unwrap();
    for _ in 0..3 {
        let outcome = store
            .save(&key, &record(json!({"a": 1}), expiry), &version)
            .await
            .unwrap();
        match outcome {
            SaveOutcome::Saved { version: v, .. } => assert_eq!(v, version),
            other => panic!("an identical save was {other:?}"),
        }
    }
    store.delete(&key).await.unwrap();
    let outcome = store
        .save(&key, &record(json!({"a": 1}), expiry), &version)
        .await
        .unwrap();
    assert_eq!(outcome, SaveOutcome::Gone, "a deleted row was revived");
}

/// The compare-and-swap matches the stored text exactly: a version differing only in case
/// or trailing spaces (equal under a case-insensitive, padding collation) conflicts.
async fn stored_text_is_compared_byte_for_byte<S: RawTable>(store: &S) {
    let (key, version) = store
        .create(&record(json!({"name": "abc"}), in_an_hour()))
        .await
        .unwrap();
    let text = std::str::from_utf8(version.as_bytes().unwrap()).unwrap();
    for other in [
        text.to_uppercase(),
        format!("{text} "),
        text.replace("abc", "ABC"),
    ] {
        let outcome = store
            .save(
                &key,
                &record(json!({"name": "x"}), in_an_hour()),
                &Version::from_bytes(other.into_bytes()),
            )
            .await
            .unwrap();
        assert_eq!(outcome, SaveOutcome::Conflict);
    }
    assert_eq!(store.raw_data(&key).await.unwrap(), text);
    store.delete(&key).await.unwrap();
}

/// `session_data` is Django's `SessionBase.encode` with the Django codec (signed, readable
/// by that secret only), and compact JSON with the plain one.
async fn session_data_is_djangos_encode<S: RawTable>(store: &S) {
    let codec = django_codec();
    let signed = store.clone().codec(codec.clone());
    let other = Codec::django("another secret", Vec::<String>::new());
    for (data, json) in [
        (
            json!({"hello": "world", "n": [1, 2]}),
            r#"{"hello":"world","n":[1,2]}"#,
        ),
        (
            json!({"hello": "world", "n": [1, 2], "ü": "日本"}),
            // Python's `json.dumps` escapes what is not ASCII, as Django's JSONSerializer.
            r#"{"hello":"world","n":[1,2],"\u00fc":"\u65e5\u672c"}"#,
        ),
    ] {
        let (key, _) = signed
            .create(&record(data.clone(), in_an_hour()))
            .await
            .unwrap();
        let text = store.raw_data(&key).await.unwrap();
        assert_eq!(text.split(':').count(), 3, "payload:timestamp:signature");
        assert_eq!(codec.decode(&text), Some(object(data.clone())));
        // A different secret cannot read it.
        assert_eq!(other.decode(&text), None);
        signed.delete(&key).await.unwrap();

        // Plain JSON without a secret.
        let (key, _) = store.create(&record(data, in_an_hour())).await.unwrap();
        assert_eq!(store.raw_data(&key).await.unwrap(), json);
        store.delete(&key).await.unwrap();
    }
}

async fn a_row_django_wrote_loads<S: RawTable>(store: &S) {
    let store = store.clone().codec(django_codec());
    let keys = ["djangowrotethis1", "djangowrotethis2", "djangowrotethis3"];
    let expire = datetime!(2999-01-01 00:00:00.123456 UTC);
    insert_and_check(&store, keys[0], expire).await;
    // Django writes whole seconds without a fraction on SQLite.
    insert_and_check(&store, keys[1], datetime!(2999-01-01 00:00 UTC)).await;
    // And a session of today, to the microsecond.
    insert_and_check(&store, keys[2], to_the_microsecond(in_an_hour())).await;
    // Without the secret (plain JSON), Django's signed data is corrupt: no session.
    let plain = store.codec(Codec::plain());
    for key in keys {
        let key = plain.parse_key(key).unwrap();
        assert!(plain.load(&key).await.unwrap().is_none());
        plain.delete(&key).await.unwrap();
    }
}

async fn insert_and_check<S: RawTable>(store: &S, key: &str, expire: OffsetDateTime) {
    store.insert_raw(key, DJANGO_HELLO, expire).await;
    let key = store.parse_key(key).unwrap();
    let loaded = store.load(&key).await.unwrap().expect("loads");
    assert_eq!(*loaded.data, object(json!({"hello": "world"})));
    assert_eq!(loaded.expiry_date, Some(expire));
    assert!(store.exists(&key).await.unwrap());
}

async fn expire_date_round_trips_to_the_microsecond<S: RawTable>(store: &S) {
    for (expiry, stored) in [
        (
            datetime!(2999-05-06 07:08:09.123456789 UTC),
            datetime!(2999-05-06 07:08:09.123456 UTC),
        ),
        (
            datetime!(2999-05-06 09:08:09.5 +02:00),
            datetime!(2999-05-06 07:08:09.5 UTC),
        ),
        (
            datetime!(2999-05-06 07:08:09 UTC),
            datetime!(2999-05-06 07:08:09 UTC),
        ),
    ] {
        let (key, version) = store
            .create(&record(json!({"a": 1}), expiry))
            .await
            .unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.expiry_date, Some(stored));
        let saved = store
            .save(&key, &record(json!({"a": 2}), expiry), &version)
            .await
            .unwrap();
        assert!(matches!(saved, SaveOutcome::Saved { .. }), "{saved:?}");
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.expiry_date, Some(stored));
        store.delete(&key).await.unwrap();
    }
}

async fn stale_and_foreign_versions_conflict<S: RawTable>(store: &S) {
    let (key, _) = store
        .create(&record(json!({"a": 1}), in_an_hour()))
        .await
        .unwrap();
    for version in [
        Version::unversioned(),
        Version::from_counter(0),
        Version::from_bytes(vec![0xff, 0xfe]),
        Version::from_bytes(b"{\"a\":0}".to_vec()),
    ] {
        let outcome = store
            .save(&key, &record(json!({"a": 2}), in_an_hour()), &version)
            .await
            .unwrap();
        assert_eq!(outcome, SaveOutcome::Conflict);
    }
    store.delete(&key).await.unwrap();
}

async fn sql_hostile_keys_are_rejected_and_harmless<S: RawTable>(store: &S) {
    let (real, _) = store
        .create(&record(json!({"keep": 1}), in_an_hour()))
        .await
        .unwrap();
    let before = store.count().await;
    let t = store.table_name();
    let aimed = [
        format!("'; DROP TABLE {t}; --"),
        format!("\"; DROP TABLE \"{t}\"; --"),
        format!("`; DROP TABLE `{t}`; --"),
    ];
    for value in [
        "'; DROP TABLE django_session; --",
        "\"; DROP TABLE django_session; --",
        "`; DROP TABLE django_session; --",
        "abc' OR '1'='1",
        "abcdefgh' --",
        "x\" OR \"\"=\"",
        "abcdefgh$1",
        "abcdefgh?",
        "abcdefgh\\",
        "abcdefgh\0",
    ]
    .into_iter()
    .chain(aimed.iter().map(String::as_str))
    {
        assert!(store.parse_key(value).is_none(), "{value:?}");
        // Even if one reached the store, it is a bound parameter: nothing happens.
        let key = SessionKey::from_validated(value);
        let empty = record(json!({}), in_an_hour());
        let version = Version::from_bytes(b"x".to_vec());
        if value.contains('\0') && !S::TEXT_HOLDS_NUL {
            // The database refuses the statement: a store error, and still nothing happens.
            for result in [
                store.load(&key).await.map(drop),
                store.exists(&key).await.map(drop),
                store.delete(&key).await,
                store.save(&key, &empty, &version).await.map(drop),
            ] {
                assert!(
                    matches!(result, Err(Error::Store(_))),
                    "{value:?}: {result:?}"
                );
            }
            continue;
        }
        assert!(store.load(&key).await.unwrap().is_none());
        assert!(!store.exists(&key).await.unwrap());
        store.delete(&key).await.unwrap();
        let outcome = store.save(&key, &empty, &version).await.unwrap();
        assert_eq!(outcome, SaveOutcome::Gone);
    }
    assert_eq!(store.count().await, before);
    assert!(store.load(&real).await.unwrap().is_some());
    store.delete(&real).await.unwrap();
}

async fn corrupt_session_data_is_no_session<S: RawTable>(store: &S) {
    let signed = store.clone().codec(django_codec());
    for (i, data) in [
        "not json",
        "{\"a\":",
        "[1,2]",
        "",
        "bad:encoded:value",
        "Zmxhc2tkajphbGtkamY=",
        "b'invalid data':1r31eq:Wu-C_6_Pyb3z0NiQ50o0gsctmss0MFrIyFIN3kTJdTY",
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("corrupt{i:09}");
        store.insert_raw(&key, data, in_an_hour()).await;
        let key = store.parse_key(&key).unwrap();
        assert!(store.load(&key).await.unwrap().is_none(), "{data:?}");
        assert!(signed.load(&key).await.unwrap().is_none(), "{data:?}");
        store.delete(&key).await.unwrap();
    }
}

/// Table names are checked before they reach SQL: anything but `[A-Za-z_][A-Za-z0-9_]*` (no
/// quotes, no schema or database qualifier), at most 63 characters, is a configuration error.
fn hostile_table_names_are_config_errors<S: RawTable>(store: &S) {
    for name in [
        "django_session\"; DROP TABLE django_session; --",
        "django_session`; DROP TABLE django_session; --",
        "x' OR 1=1",
        "",
        "1table",
        "a b",
        "main.django_session",
        "public.django_session",
        "test.django_session",
        &"a".repeat(64),
    ] {
        let result = store.clone().on_table(name);
        assert!(matches!(result, Err(Error::Config(_))), "{name:?}");
    }
}

/// A table that does not exist is a store error (500), not "unavailable".
async fn a_missing_table_is_a_store_error<S: RawTable>(store: &S) {
    let missing = store.clone().on_table("no_such_session_table").unwrap();
    let key = SessionKey::generate().unwrap();
    let result = missing.load(&key).await;
    assert!(matches!(result, Err(Error::Store(_))), "{result:?}");
}

async fn expired_rows_never_load_and_clear_expired_deletes_them<S: RawTable>(store: &S) {
    let store = store.clone().codec(django_codec());
    let before = store.count().await;
    let past = OffsetDateTime::now_utc() - Duration::seconds(1);
    store
        .insert_raw("expiredrow000001", DJANGO_HELLO, past)
        .await;
    store
        .insert_raw(
            "expiredrow000002",
            DJANGO_HELLO,
            datetime!(2000-01-01 00:00 UTC),
        )
        .await;
    store
        .insert_raw("liverow000000001", DJANGO_HELLO, in_an_hour())
        .await;
    for key in ["expiredrow000001", "expiredrow000002"] {
        let key = store.parse_key(key).unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
        assert!(!store.exists(&key).await.unwrap());
        let outcome = store
            .save(
                &key,
                &record(json!({}), in_an_hour()),
                &Version::from_bytes(DJANGO_HELLO.as_bytes().to_vec()),
            )
            .await
            .unwrap();
        assert_eq!(outcome, SaveOutcome::Gone, "an expired row was revived");
    }
    assert_eq!(store.count().await, before + 3);
    store.clear_expired().await.unwrap();
    assert_eq!(store.count().await, before + 1);
    let live = store.parse_key("liverow000000001").unwrap();
    assert!(store.load(&live).await.unwrap().is_some());
    store.delete(&live).await.unwrap();
}
