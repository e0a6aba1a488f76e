use std::sync::Arc;

use super::super::DEFAULT_TABLE;
use super::super::store::Queries;
use super::*;
use crate::SessionKey;
use crate::store::conformance::{Exceptions, run};
use crate::store::{Record, SaveOutcome, SessionStore, Version};
use serde_json::{Map, Value, json};
use std::future::Future;
use time::Duration;
use time::macros::datetime;

/// Django's `SessionBase.encode({"hello": "world"})` with the SessionStore salt,
/// `SECRET_KEY = "django_tests_secret_key"`, at 1700000000.
const DJANGO_HELLO: &str =
    "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:tWy-azdqKYIwu_o6Ht3nBxc5SvPyROA4n-zKWAcm4Cc";

fn django_codec() -> Codec {
    Codec::django("django_tests_secret_key", Vec::<String>::new())
}

fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // Straight to stderr: libtest would capture eprintln! and hide the notice.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipping PostgreSQL tests: DATABASE_URL not set\n",
            );
            None
        }
    }
}

async fn pool(url: &str) -> PgPool {
    // Small pools: the suites run in parallel against one server.
    PgPoolOptions::new()
        .max_connections(5)
        .connect(url)
        .await
        .expect("connect to DATABASE_URL")
}

/// Runs `body` with a migrated store on a table of its own, then drops the table, even
/// when `body` panics. Returns early, with a note on stderr, without `DATABASE_URL`.
async fn with_store<F, Fut>(body: F)
where
    F: FnOnce(PostgresStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = database_url() else { return };
    let table = format!(
        "django_session_t{}",
        &SessionKey::generate().unwrap().as_str()[..16]
    );
    let store = PostgresStore::new(pool(&url).await)
        .with_table(&table)
        .unwrap();
    store.migrate().await.unwrap();
    let result = tokio::spawn(body(store.clone())).await;
    sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    if let Err(error) = result {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("test task failed: {error}"),
        }
    }
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

async fn insert_raw(store: &PostgresStore, key: &str, data: &str, expire: OffsetDateTime) {
    sqlx::query(&format!(
        "INSERT INTO \"{}\" VALUES ($1, $2, $3)",
        store.table()
    ))
    .bind(key)
    .bind(data)
    .bind(expire)
    .execute(store.pool())
    .await
    .unwrap();
}

async fn raw_data(store: &PostgresStore, key: &SessionKey) -> Option<String> {
    sqlx::query_scalar(&format!(
        "SELECT session_data FROM \"{}\" WHERE session_key = $1",
        store.table()
    ))
    .bind(key.as_str())
    .fetch_optional(store.pool())
    .await
    .unwrap()
}

async fn count(store: &PostgresStore) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", store.table()))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    with_store(|store| async move { run(store, Exceptions::none()).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_django_codec() {
    with_store(
        |store| async move { run(store.with_codec(django_codec()), Exceptions::none()).await },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_is_djangos() {
    with_store(|store| async move {
        // Migrating again is harmless.
        store.migrate().await.unwrap();
        let t = store.table().to_owned();
        let columns: Vec<(String, String, Option<i32>, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, character_maximum_length::int, \
             is_nullable::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 \
             ORDER BY ordinal_position",
        )
        .bind(&t)
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(
            columns,
            vec![
                (
                    "session_key".into(),
                    "character varying".into(),
                    Some(40),
                    "NO".into()
                ),
                ("session_data".into(), "text".into(), None, "NO".into()),
                (
                    "expire_date".into(),
                    "timestamp with time zone".into(),
                    None,
                    "NO".into()
                ),
            ]
        );
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT indexname::text, indexdef FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = $1 ORDER BY indexname",
        )
        .bind(&t)
        .fetch_all(store.pool())
        .await
        .unwrap();
        let expire = django_index_name(PgDialect::MAX_NAME_LENGTH, &t, "expire_date", "");
        let like = django_index_name(PgDialect::MAX_NAME_LENGTH, &t, "session_key", "_like");
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let mut expected = vec![
            (
                expire.clone(),
                format!("CREATE INDEX {expire} ON {schema}.{t} USING btree (expire_date)"),
            ),
            (
                format!("{t}_pkey"),
                format!("CREATE UNIQUE INDEX {t}_pkey ON {schema}.{t} USING btree (session_key)"),
            ),
            (
                like.clone(),
                format!(
                    "CREATE INDEX {like} ON {schema}.{t} USING btree \
                     (session_key varchar_pattern_ops)"
                ),
            ),
        ];
        expected.sort();
        assert_eq!(indexes, expected);
        let primary_key: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = quote_ident($1)::regclass AND i.indisprimary",
        )
        .bind(&t)
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(primary_key, vec!["session_key".to_owned()]);
    })
    .await;
}

#[test]
fn default_ddl_is_djangos() {
    let queries = Queries::new::<PgDialect>(DEFAULT_TABLE);
    assert_eq!(
        queries.migrate,
        vec![
            "CREATE TABLE IF NOT EXISTS \"django_session\" (\"session_key\" varchar(40) NOT NULL \
             PRIMARY KEY, \"session_data\" text NOT NULL, \"expire_date\" timestamp with time \
             zone NOT NULL)",
            "CREATE INDEX IF NOT EXISTS \"django_session_expire_date_a5c62663\" ON \
             \"django_session\" (\"expire_date\")",
            "CREATE INDEX IF NOT EXISTS \"django_session_session_key_c0390e0f_like\" ON \
             \"django_session\" (\"session_key\" varchar_pattern_ops)",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_a_table_django_created_changes_nothing() {
    with_store(|store| async move {
        let t = store.table().to_owned();
        let expire = django_index_name(PgDialect::MAX_NAME_LENGTH, &t, "expire_date", "");
        let like = django_index_name(PgDialect::MAX_NAME_LENGTH, &t, "session_key", "_like");
        // What Django's migration runs (sqlmigrate sessions 0001), for this table name.
        for statement in [
            format!("DROP TABLE \"{t}\""),
            format!(
                "CREATE TABLE \"{t}\" (\"session_key\" varchar(40) NOT NULL PRIMARY KEY, \
                 \"session_data\" text NOT NULL, \"expire_date\" timestamp with time zone \
                 NOT NULL)"
            ),
            format!("CREATE INDEX \"{expire}\" ON \"{t}\" (\"expire_date\")"),
            format!("CREATE INDEX \"{like}\" ON \"{t}\" (\"session_key\" varchar_pattern_ops)"),
        ] {
            sqlx::query(&statement).execute(store.pool()).await.unwrap();
        }
        store.migrate().await.unwrap();
        let indexes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = $1",
        )
        .bind(&t)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 3, "primary key, expire_date, like");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_succeed() {
    with_store(|store| async move {
        sqlx::query(&format!("DROP TABLE \"{}\"", store.table()))
            .execute(store.pool())
            .await
            .unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.migrate().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().expect("a concurrent migrate failed");
        }
        assert_eq!(count(&store).await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_django_wrote_loads() {
    with_store(|store| async move {
        let store = store.with_codec(django_codec());
        let expire = datetime!(2999-01-01 00:00:00.123456 UTC);
        insert_raw(&store, "djangowrotethis1", DJANGO_HELLO, expire).await;
        let key = store.parse_key("djangowrotethis1").unwrap();
        let loaded = store.load(&key).await.unwrap().expect("loads");
        assert_eq!(*loaded.data, object(json!({"hello": "world"})));
        assert_eq!(loaded.expiry_date, Some(expire));
        assert!(store.exists(&key).await.unwrap());
        // Without the secret, Django's signed data is corrupt: no session.
        let plain = store.with_codec(Codec::plain());
        assert!(plain.load(&key).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_data_is_djangos_encode_and_expire_date_a_timestamptz() {
    with_store(|store| async move {
        let codec = django_codec();
        let store = store.with_codec(codec.clone());
        let data = json!({"hello": "world", "n": [1, 2]});
        // Microsecond precision, any offset: stored as the same instant.
        let expire = datetime!(2999-05-06 09:08:09.123456 +02:00);
        let (key, _) = store.create(&record(data.clone(), expire)).await.unwrap();
        let text = raw_data(&store, &key).await.unwrap();
        assert_eq!(text.split(':').count(), 3, "payload:timestamp:signature");
        assert_eq!(codec.decode(&text), Some(object(data.clone())));
        let (stored, as_utc_text): (OffsetDateTime, String) = sqlx::query_as(&format!(
            "SELECT expire_date, (expire_date AT TIME ZONE 'UTC')::text FROM \"{}\" \
             WHERE session_key = $1",
            store.table()
        ))
        .bind(key.as_str())
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(stored, expire);
        assert_eq!(as_utc_text, "2999-05-06 07:08:09.123456");
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.expiry_date, Some(expire));

        let plain = store.with_codec(Codec::plain());
        let (key, _) = plain.create(&record(data, in_an_hour())).await.unwrap();
        assert_eq!(
            raw_data(&plain, &key).await.unwrap(),
            r#"{"hello":"world","n":[1,2]}"#
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_never_load_and_clear_expired_deletes_them() {
    with_store(|store| async move {
        let store = store.with_codec(django_codec());
        let past = OffsetDateTime::now_utc() - Duration::seconds(1);
        insert_raw(&store, "expiredrow000001", DJANGO_HELLO, past).await;
        insert_raw(
            &store,
            "expiredrow000002",
            DJANGO_HELLO,
            datetime!(2000-01-01 00:00 UTC),
        )
        .await;
        insert_raw(&store, "liverow000000001", DJANGO_HELLO, in_an_hour()).await;
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
        assert_eq!(count(&store).await, 3);
        store.clear_expired().await.unwrap();
        assert_eq!(count(&store).await, 1);
        let live = store.parse_key("liverow000000001").unwrap();
        assert!(store.load(&live).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_session_data_is_no_session() {
    with_store(|store| async move {
        let signed = store.clone().with_codec(django_codec());
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
            insert_raw(&store, &key, data, in_an_hour()).await;
            let key = store.parse_key(&key).unwrap();
            assert!(store.load(&key).await.unwrap().is_none(), "{data:?}");
            assert!(signed.load(&key).await.unwrap().is_none(), "{data:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_hostile_keys_are_rejected_and_harmless() {
    with_store(|store| async move {
        let (real, _) = store
            .create(&record(json!({"keep": 1}), in_an_hour()))
            .await
            .unwrap();
        let t = store.table().to_owned();
        for value in [
            format!("'; DROP TABLE {t}; --"),
            format!("\"; DROP TABLE \"{t}\"; --"),
            "abc' OR '1'='1".to_owned(),
            "abcdefgh' --".to_owned(),
            "x\" OR \"\"=\"".to_owned(),
            "abcdefgh$1".to_owned(),
        ] {
            assert!(store.parse_key(&value).is_none(), "{value:?}");
            // Even if one reached the store, it is a bound parameter: nothing happens.
            let key = SessionKey::from_validated(value.as_str());
            assert!(store.load(&key).await.unwrap().is_none());
            assert!(!store.exists(&key).await.unwrap());
            store.delete(&key).await.unwrap();
            let outcome = store
                .save(
                    &key,
                    &record(json!({}), in_an_hour()),
                    &Version::from_bytes(b"x".to_vec()),
                )
                .await
                .unwrap();
            assert_eq!(outcome, SaveOutcome::Gone);
        }
        assert_eq!(count(&store).await, 1);
        assert!(store.load(&real).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_table_names_are_config_errors() {
    with_store(|store| async move {
        for name in [
            "django_session\"; DROP TABLE django_session; --",
            "x' OR 1=1",
            "",
            "1table",
            "a b",
            "public.django_session",
            &"a".repeat(64),
        ] {
            let result = store.clone().with_table(name);
            assert!(matches!(result, Err(Error::Config(_))), "{name:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_foreign_versions_conflict() {
    with_store(|store| async move {
        let (key, _) = store
            .create(&record(json!({"a": 1}), in_an_hour()))
            .await
            .unwrap();
        for version in [
            Version::unversioned(),
            Version::from_counter(0),
            Version::from_bytes(vec![0xff, 0xfe]),
        ] {
            let outcome = store
                .save(&key, &record(json!({"a": 2}), in_an_hour()), &version)
                .await
                .unwrap();
            assert_eq!(outcome, SaveOutcome::Conflict);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_mapped() {
    with_store(|store| async move {
        // A missing table is a store error (500).
        let missing = store.clone().with_table("no_such_session_table").unwrap();
        let key = SessionKey::generate().unwrap();
        assert!(matches!(missing.load(&key).await, Err(Error::Store(_))));
    })
    .await;
    // A malformed URL is a configuration error.
    let result = PostgresStore::connect("postgres://host:notaport/db").await;
    assert!(matches!(result, Err(Error::Config(_))), "{result:?}");
    // A server that cannot be reached is unavailable (503), within the pool's timeout.
    let pool = PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(300))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .unwrap();
    let down = PostgresStore::new(pool);
    let key = SessionKey::generate().unwrap();
    let result = down.load(&key).await;
    assert!(
        matches!(result, Err(Error::StoreUnavailable(_))),
        "{result:?}"
    );
    let result = down
        .save(
            &key,
            &record(json!({}), in_an_hour()),
            &Version::unversioned(),
        )
        .await;
    assert!(
        matches!(result, Err(Error::StoreUnavailable(_))),
        "{result:?}"
    );
}

#[test]
fn availability_codes() {
    assert!(is_unavailable_code(Some("08006")));
    assert!(is_unavailable_code(Some("57P01")));
    assert!(!is_unavailable_code(Some("23505")));
    assert!(!is_unavailable_code(Some("42P01")));
    assert!(!is_unavailable_code(None));
}

impl super::super::tests::RawTable for PostgresStore {
    fn codec(self, codec: Codec) -> Self {
        self.with_codec(codec)
    }
    async fn insert_raw(&self, key: &str, data: &str, expire: OffsetDateTime) {
        insert_raw(self, key, data, expire).await;
    }
    async fn raw_data(&self, key: &SessionKey) -> Option<String> {
        raw_data(self, key).await
    }
    async fn count(&self) -> i64 {
        count(self).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_suite() {
    with_store(|store| async move { super::super::tests::run(store).await }).await;
}
