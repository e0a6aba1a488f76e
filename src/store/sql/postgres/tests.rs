//! The PostgreSQL store's tests that need the crate's internals: Django's DDL and index names,
//! the availability codes, and the shared SQL suite through raw rows. The tests through the
//! public API alone are in `tests/it/postgres_store.rs`.

use std::future::Future;
use std::sync::Arc;

use super::super::DEFAULT_TABLE;
use super::super::store::Queries;
use super::super::tests::RawTable;
use super::*;
use crate::SessionKey;
use crate::store::{Record, SessionStore, Version};
use serde_json::{Value, json};
use time::Duration;

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
async fn errors_are_mapped() {
    // A missing table is a store error (500): the shared suite (`sql_suite`).
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
    // Only the codes that say the server dropped the connection drop the idle ones too.
    for lost in ["08006", "08003", "57P01", "57P02", "57P03"] {
        assert!(is_disconnect_code(Some(lost)), "{lost}");
    }
    for kept in [
        Some("57014"),
        Some("40P01"),
        Some("53300"),
        Some("23505"),
        None,
    ] {
        assert!(!is_disconnect_code(kept), "{kept:?}");
    }
}

impl RawTable for PostgresStore {
    fn codec(self, codec: Codec) -> Self {
        self.with_codec(codec)
    }
    fn on_table(self, name: &str) -> Result<Self, Error> {
        self.with_table(name)
    }
    fn table_name(&self) -> &str {
        self.table()
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
    const TEXT_HOLDS_NUL: bool = false;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_suite() {
    with_store(|store| async move { super::super::tests::run(store).await }).await;
}
