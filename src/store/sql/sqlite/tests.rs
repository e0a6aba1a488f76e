use std::sync::Arc;

use super::super::django_index_name;
use super::super::tests::{RawTable, django_codec};
use super::*;
use crate::SessionKey;
use crate::store::conformance::{Exceptions, run};
use crate::store::{Record, SaveOutcome, SessionStore};
use serde_json::{Value, json};
use time::Duration;
use time::macros::datetime;

async fn memory_store() -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// A database file in the temp directory, removed on drop.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        let name = format!(
            "sessionbase-test-{}.sqlite3",
            SessionKey::generate().unwrap()
        );
        Self(std::env::temp_dir().join(name))
    }
    fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
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

async fn insert_raw(store: &SqliteStore, key: &str, data: &str, expire_date: &str) {
    sqlx::query(&format!(
        "INSERT INTO \"{}\" VALUES ($1, $2, $3)",
        store.table()
    ))
    .bind(key)
    .bind(data)
    .bind(expire_date)
    .execute(store.pool())
    .await
    .unwrap();
}

async fn raw_row(store: &SqliteStore, key: &SessionKey) -> Option<(String, String)> {
    sqlx::query_as(&format!(
        "SELECT session_data, expire_date FROM \"{}\" WHERE session_key = $1",
        store.table()
    ))
    .bind(key.as_str())
    .fetch_optional(store.pool())
    .await
    .unwrap()
}

async fn count(store: &SqliteStore) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", store.table()))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    run(memory_store().await, Exceptions::none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory_with_django_codec() {
    run(
        memory_store().await.with_codec(django_codec()),
        Exceptions::none(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory_with_the_user_index() {
    let store = memory_store().await.with_user_index().unwrap();
    store.migrate().await.unwrap();
    run(store, Exceptions::none()).await;
}

/// The index is what lists: a row written behind the store (as Django writes) is listed by
/// the scan but not through the index, and `clear_expired` drops the index rows of deleted
/// sessions.
#[tokio::test]
async fn the_user_index_lists_and_clear_expired_prunes_it() {
    use crate::store::UserSessions;
    let scanning = memory_store().await;
    let indexed = scanning.clone().with_user_index().unwrap();
    indexed.migrate().await.unwrap();
    let user = json!({"_auth_user_id": "5"});
    let (key, _) = indexed
        .create(&record(
            user.clone(),
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
        .await
        .unwrap();
    let (other, _) = scanning
        .create(&record(
            user,
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
        .await
        .unwrap();
    assert_eq!(scanning.user_sessions("5").await.unwrap().len(), 2);
    assert_eq!(indexed.user_sessions("5").await.unwrap().len(), 1);
    let index_rows = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM django_session_user")
            .fetch_one(indexed.pool())
            .await
            .unwrap();
        n
    };
    assert_eq!(index_rows().await, 1);
    indexed.delete(&key).await.unwrap();
    assert!(indexed.user_sessions("5").await.unwrap().is_empty());
    assert_eq!(
        index_rows().await,
        1,
        "the orphan row is left to clear_expired"
    );
    indexed.clear_expired().await.unwrap();
    assert_eq!(
        index_rows().await,
        0,
        "clear_expired kept an orphan index row"
    );
    assert!(scanning.load(&other).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_file() {
    let db = TempDb::new();
    let store = SqliteStore::connect(&db.url()).await.unwrap();
    store.migrate().await.unwrap();
    run(store.clone(), Exceptions::none()).await;
    // Another pool on the same file sees the same sessions.
    let (key, _) = store
        .create(&record(
            json!({"a": 1}),
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
        .await
        .unwrap();
    let other = SqliteStore::connect(&db.url()).await.unwrap();
    assert!(other.load(&key).await.unwrap().is_some());
    store.pool().close().await;
    other.pool().close().await;
}

#[tokio::test]
async fn each_in_memory_database_is_separate() {
    let a = memory_store().await;
    let b = memory_store().await;
    let (key, _) = a
        .create(&record(
            json!({"a": 1}),
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
        .await
        .unwrap();
    assert!(a.load(&key).await.unwrap().is_some());
    assert!(b.load(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn schema_is_djangos() {
    let store = memory_store().await;
    // Migrating twice is harmless.
    store.migrate().await.unwrap();
    let schema: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'django_session' ORDER BY type DESC, name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    // SQLite keeps the CREATE text without IF NOT EXISTS: this is Django's sqlmigrate
    // output verbatim.
    assert_eq!(
        schema,
        vec![
            (
                "table".into(),
                "django_session".into(),
                Some(
                    "CREATE TABLE \"django_session\" (\"session_key\" varchar(40) NOT NULL PRIMARY KEY, \
                     \"session_data\" text NOT NULL, \"expire_date\" datetime NOT NULL)"
                        .into()
                )
            ),
            (
                "index".into(),
                "django_session_expire_date_a5c62663".into(),
                Some(
                    "CREATE INDEX \"django_session_expire_date_a5c62663\" ON \"django_session\" (\"expire_date\")"
                        .into()
                )
            ),
            // The primary key's implicit index.
            (
                "index".into(),
                "sqlite_autoindex_django_session_1".into(),
                None
            ),
        ]
    );
}

#[tokio::test]
async fn migrate_on_a_table_django_created_changes_nothing() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    for statement in [
        "CREATE TABLE \"django_session\" (\"session_key\" varchar(40) NOT NULL PRIMARY KEY, \
         \"session_data\" text NOT NULL, \"expire_date\" datetime NOT NULL)",
        "CREATE INDEX \"django_session_expire_date_a5c62663\" ON \"django_session\" (\"expire_date\")",
    ] {
        sqlx::query(statement).execute(store.pool()).await.unwrap();
    }
    store.migrate().await.unwrap();
    let objects: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(objects, 3, "table, Django's index, primary key index");
}

#[tokio::test]
async fn custom_table_names_follow_djangos_index_naming() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .unwrap()
        .with_table("my_sessions")
        .unwrap();
    store.migrate().await.unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'my_sessions' \
         AND sql IS NOT NULL",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        indexes,
        vec![django_index_name(
            SqliteDialect::MAX_NAME_LENGTH,
            "my_sessions",
            "expire_date",
            ""
        )]
    );
    run(store, Exceptions::none()).await;
}

#[tokio::test]
async fn expire_date_is_written_in_djangos_format() {
    let store = memory_store().await;
    let cases = [
        (
            datetime!(2999-05-06 07:08:09.123456789 UTC),
            "2999-05-06 07:08:09.123456",
        ),
        (datetime!(2999-05-06 07:08:09 UTC), "2999-05-06 07:08:09"),
        (
            datetime!(2999-05-06 09:08:09.5 +02:00),
            "2999-05-06 07:08:09.500000",
        ),
    ];
    for (expiry, expected) in cases {
        let (key, version) = store
            .create(&record(json!({"a": 1}), expiry))
            .await
            .unwrap();
        assert_eq!(raw_row(&store, &key).await.unwrap().1, expected);
        // Loads read it back, to the microsecond.
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            loaded.expiry_date,
            Some(
                expiry
                    .replace_nanosecond(expiry.microsecond() * 1000)
                    .unwrap()
            )
        );
        // Saves write it the same way.
        let saved = store
            .save(&key, &record(json!({"a": 2}), expiry), &version)
            .await
            .unwrap();
        assert!(matches!(saved, SaveOutcome::Saved { .. }), "{saved:?}");
        assert_eq!(raw_row(&store, &key).await.unwrap().1, expected);
    }
    let typeof_: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT typeof(expire_date) FROM django_session")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(typeof_, vec!["text".to_owned()]);
}

#[tokio::test]
async fn errors_map_to_store_errors() {
    // A missing table is a store error: the shared suite (`sql_suite`).
    let key = SessionKey::generate().unwrap();
    // A file that cannot be opened is unavailable (503).
    let missing = std::env::temp_dir()
        .join("sessionbase-no-such-dir")
        .join("x.sqlite3");
    let result = SqliteStore::connect(&format!("sqlite://{}", missing.display())).await;
    assert!(
        matches!(result, Err(Error::StoreUnavailable(_))),
        "{result:?}"
    );
    // A malformed URL is a configuration error.
    let result = SqliteStore::connect("sqlite::memory:?mode=bogus").await;
    assert!(matches!(result, Err(Error::Config(_))), "{result:?}");
    // A closed pool is unavailable.
    let store = memory_store().await;
    store.pool().close().await;
    assert!(matches!(
        store.load(&key).await,
        Err(Error::StoreUnavailable(_))
    ));
}

#[test]
fn in_memory_urls_are_recognised() {
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://?mode=memory",
        "sqlite://sessions?cache=shared&mode=memory",
    ] {
        assert_eq!(kind(url), Kind::SharedMemory, "{url}");
    }
    assert_eq!(kind("sqlite::memory:?cache=private"), Kind::PrivateMemory);
    for url in [
        "sqlite://sessions.db?mode=rwc",
        "sqlite:sessions.db",
        "sqlite://memory",
    ] {
        assert_eq!(kind(url), Kind::File, "{url}");
    }
}

#[tokio::test]
async fn in_memory_databases_outlive_idle_connections() {
    // Every connection of the pool sees the one database, and it survives them idling.
    let store = memory_store().await;
    let expiry = OffsetDateTime::now_utc() + Duration::hours(1);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(store.pool().acquire().await.unwrap());
    }
    let (key, _) = store
        .create(&record(json!({"a": 1}), expiry))
        .await
        .unwrap();
    for connection in &mut held {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM django_session")
            .fetch_one(&mut **connection)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    drop(held);
    assert!(store.pool().size() >= 1);
    assert!(store.load(&key).await.unwrap().is_some());

    // A private cache is one connection, kept open.
    let private = SqliteStore::connect("sqlite::memory:?cache=private")
        .await
        .unwrap();
    private.migrate().await.unwrap();
    let (key, _) = private
        .create(&record(json!({"a": 1}), expiry))
        .await
        .unwrap();
    assert_eq!(private.pool().size(), 1);
    assert!(private.load(&key).await.unwrap().is_some());
}

#[test]
fn debug_shows_no_secret() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt
        .block_on(SqliteStore::connect("sqlite::memory:"))
        .unwrap()
        .with_codec(django_codec());
    let debug = format!("{store:?}");
    assert!(debug.contains("django_session"), "{debug}");
    assert!(!debug.contains("django_tests_secret_key"), "{debug}");
}

#[test]
fn sqlite_datetimes_are_pythons_str() {
    use time::macros::datetime;

    assert_eq!(
        sqlite_datetime(datetime!(2099-05-06 07:08:09.123456 UTC)),
        "2099-05-06 07:08:09.123456"
    );
    assert_eq!(
        sqlite_datetime(datetime!(2099-05-06 07:08:09.000001 UTC)),
        "2099-05-06 07:08:09.000001"
    );
    assert_eq!(
        sqlite_datetime(datetime!(2099-05-06 07:08:09 UTC)),
        "2099-05-06 07:08:09"
    );
    assert_eq!(
        sqlite_datetime(datetime!(2099-05-06 09:08:09.5 +02:00)),
        "2099-05-06 07:08:09.500000"
    );
    assert_eq!(
        sqlite_datetime(datetime!(0999-01-02 03:04:05.123456789 UTC)),
        "0999-01-02 03:04:05.123456"
    );
    assert_eq!(
        sqlite_datetime(datetime!(-0001-01-01 00:00 UTC)),
        "0001-01-01 00:00:00"
    );
    // And back.
    for dt in [
        datetime!(2099-05-06 07:08:09.123456 UTC),
        datetime!(2099-05-06 07:08:09 UTC),
        datetime!(2099-05-06 07:08:09.5 UTC),
    ] {
        assert_eq!(parse_sqlite_datetime(&sqlite_datetime(dt)), Some(dt));
    }
    assert_eq!(
        parse_sqlite_datetime("2099-05-06 07:08:09.5"),
        Some(datetime!(2099-05-06 07:08:09.5 UTC))
    );
    assert_eq!(parse_sqlite_datetime("2099-05-06T07:08:09Z"), None);
    assert_eq!(parse_sqlite_datetime("garbage"), None);
    // Text order is time order, with and without a fraction.
    let a = sqlite_datetime(datetime!(2026-01-01 00:00:00 UTC));
    let b = sqlite_datetime(datetime!(2026-01-01 00:00:00.5 UTC));
    let c = sqlite_datetime(datetime!(2026-01-01 00:00:01 UTC));
    assert!(a < b && b < c);
}

#[test]
fn availability_codes() {
    assert!(is_unavailable_code(Some("5")));
    assert!(is_unavailable_code(Some("517")));
    assert!(is_unavailable_code(Some("262")));
    assert!(!is_unavailable_code(Some("1555")));
    assert!(!is_unavailable_code(Some("13")));
    assert!(!is_unavailable_code(None));
}

impl RawTable for SqliteStore {
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
        insert_raw(self, key, data, &sqlite_datetime(expire)).await;
    }
    async fn raw_data(&self, key: &SessionKey) -> Option<String> {
        raw_row(self, key).await.map(|(data, _)| data)
    }
    async fn count(&self) -> i64 {
        count(self).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_suite() {
    super::super::tests::run(memory_store().await).await;
}

#[tokio::test]
async fn the_user_index_is_refused_under_a_configuration_shared_with_django() {
    let scanning = memory_store().await;
    let indexed = scanning.clone().with_user_index().unwrap();
    let django = crate::SessionConfig::default().with_shared_with_django(true);
    let Err(Error::Config(message)) = indexed.check_config(&django) else {
        panic!("a user index under Django's settings must be refused");
    };
    assert!(message.contains("with_user_index"), "{message}");
    assert!(scanning.check_config(&django).is_ok());
    assert!(
        indexed
            .check_config(&crate::SessionConfig::default())
            .is_ok()
    );
}
