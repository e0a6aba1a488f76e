use std::future::Future;
use std::sync::Arc;

use serde_json::{Value, json};
use time::Duration;
use time::macros::datetime;

use super::super::tests::{RawTable, django_codec};
use super::*;
use crate::SessionKey;
use crate::store::conformance::{Exceptions, run};
use crate::store::{Record, SessionStore, Version};

fn mysql_url() -> Option<String> {
    match std::env::var("MYSQL_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // Straight to stderr: libtest would capture eprintln! and hide the notice.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipping MySQL tests: MYSQL_URL is not set\n",
            );
            None
        }
    }
}

async fn pool(url: &str) -> MySqlPool {
    // Small pools: the suites run in parallel against one server.
    MySqlPoolOptions::new()
        .max_connections(5)
        .connect(url)
        .await
        .expect("connect to MYSQL_URL")
}

/// Runs `body` with a migrated store on a table of its own, then drops the table, even
/// when `body` panics. Returns early, with a note on stderr, without `MYSQL_URL`.
async fn with_store<F, Fut>(body: F)
where
    F: FnOnce(MySqlStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = mysql_url() else { return };
    let table = format!(
        "django_session_t{}",
        &SessionKey::generate().unwrap().as_str()[..16]
    );
    let store = MySqlStore::new(pool(&url).await)
        .with_table(&table)
        .unwrap();
    store.migrate().await.unwrap();
    let result = tokio::spawn(body(store.clone())).await;
    sqlx::query(&format!("DROP TABLE IF EXISTS `{table}`"))
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

impl RawTable for MySqlStore {
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
        sqlx::query(&format!("INSERT INTO `{}` VALUES (?, ?, ?)", self.table()))
            .bind(key)
            .bind(data)
            .bind(MySqlDialect::to_db(expire))
            .execute(self.pool())
            .await
            .unwrap();
    }
    async fn raw_data(&self, key: &SessionKey) -> Option<String> {
        sqlx::query_scalar(&format!(
            "SELECT session_data FROM `{}` WHERE session_key = ?",
            self.table()
        ))
        .bind(key.as_str())
        .fetch_optional(self.pool())
        .await
        .unwrap()
    }
    async fn count(&self) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM `{}`", self.table()))
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
}

async fn show_create_table(store: &MySqlStore, table: &str) -> String {
    let (_, ddl): (String, String) = sqlx::query_as(&format!("SHOW CREATE TABLE `{table}`"))
        .fetch_one(store.pool())
        .await
        .unwrap();
    ddl
}

/// What Django's migration runs on MySQL (`sqlmigrate sessions 0001`, Django 5.2 and 6.1),
/// for `table`.
fn djangos_ddl(table: &str) -> [String; 2] {
    let expire = django_index_name(64, table, "expire_date", "");
    [
        format!(
            "CREATE TABLE `{table}` (`session_key` varchar(40) NOT NULL PRIMARY KEY, \
             `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL)"
        ),
        format!("CREATE INDEX `{expire}` ON `{table}` (`expire_date`)"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    with_store(|store| async move { run(store, Exceptions::none()).await }).await;
}

/// With the user index in its side table (`with_user_index`), kept by a statement before
/// each save.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_the_user_index() {
    with_store(|store| async move {
        let store = store.with_user_index().expect("index");
        store.migrate().await.expect("migrate");
        run(store, Exceptions::none()).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_django_codec() {
    with_store(
        |store| async move { run(store.with_codec(django_codec()), Exceptions::none()).await },
    )
    .await;
}

/// On a pool built by hand (`MySqlStore::new`, see `with_store`): identical saves are saves
/// there too, since sqlx sets CLIENT_FOUND_ROWS on every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_suite() {
    with_store(|store| async move { super::super::tests::run(store).await }).await;
}

#[test]
fn default_ddl_is_djangos_table() {
    assert_eq!(
        MySqlDialect::migrate_statements("django_session"),
        vec![
            "CREATE TABLE IF NOT EXISTS `django_session` (`session_key` varchar(40) NOT NULL \
             PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL, \
             INDEX `django_session_expire_date_a5c62663` (`expire_date`))"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_is_djangos() {
    with_store(|store| async move {
        // Migrating again is harmless.
        store.migrate().await.unwrap();
        let t = store.table().to_owned();
        let expire = django_index_name(64, &t, "expire_date", "");
        let ours = show_create_table(&store, &t).await;
        // What real Django 5.2 and 6.1 create on MariaDB 10.11 (`SHOW CREATE TABLE` after
        // `manage.py migrate sessions`), up to the table options, which are the database's.
        let expected = format!(
            "CREATE TABLE `{t}` (\n  `session_key` varchar(40) NOT NULL,\n  \
             `session_data` longtext NOT NULL,\n  `expire_date` datetime(6) NOT NULL,\n  \
             PRIMARY KEY (`session_key`),\n  KEY `{expire}` (`expire_date`)\n) ENGINE=InnoDB"
        );
        assert!(ours.starts_with(&expected), "{ours}");
        // And exactly what Django's own DDL gives in this database, options included.
        let django = format!("{t}_dj");
        for statement in djangos_ddl(&django) {
            sqlx::query(&statement).execute(store.pool()).await.unwrap();
        }
        let theirs = show_create_table(&store, &django).await;
        sqlx::query(&format!("DROP TABLE `{django}`"))
            .execute(store.pool())
            .await
            .unwrap();
        let django_expire = django_index_name(64, &django, "expire_date", "");
        assert_eq!(
            ours,
            theirs
                .replace(&django_expire, &expire)
                .replace(&format!("`{django}`"), &format!("`{t}`"))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_a_table_django_created_changes_nothing() {
    with_store(|store| async move {
        let t = store.table().to_owned();
        sqlx::query(&format!("DROP TABLE `{t}`"))
            .execute(store.pool())
            .await
            .unwrap();
        for statement in djangos_ddl(&t) {
            sqlx::query(&statement).execute(store.pool()).await.unwrap();
        }
        let before = show_create_table(&store, &t).await;
        store.migrate().await.unwrap();
        assert_eq!(show_create_table(&store, &t).await, before);
        let indexes: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT index_name) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(&t)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 2, "primary key, expire_date");
        run(store, Exceptions::none()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_succeed() {
    with_store(|store| async move {
        sqlx::query(&format!("DROP TABLE `{}`", store.table()))
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
        assert_eq!(store.count().await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_date_is_naive_utc_datetime6() {
    // What `session_data` holds (Django's encode, UTF-8 intact): the shared suite.
    with_store(|store| async move {
        let expire = datetime!(2999-05-06 09:08:09.123456789 +02:00);
        let (key, _) = store
            .create(&record(json!({"a": 1}), expire))
            .await
            .unwrap();
        let as_text: String = sqlx::query_scalar(&format!(
            "SELECT CAST(expire_date AS CHAR) FROM `{}` WHERE session_key = ?",
            store.table()
        ))
        .bind(key.as_str())
        .fetch_one(store.pool())
        .await
        .unwrap();
        // Truncated to the microsecond, in UTC, as Django writes it.
        assert_eq!(as_text, "2999-05-06 07:08:09.123456");
        // The session's time zone does not move it.
        sqlx::query("SET time_zone = '+05:00'")
            .execute(store.pool())
            .await
            .unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            loaded.expiry_date,
            Some(datetime!(2999-05-06 07:08:09.123456 UTC))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_mapped() {
    // A missing table is a store error (500): the shared suite (`sql_suite`).
    // A malformed URL is a configuration error.
    let result = MySqlStore::connect("mysql://host:notaport/db").await;
    assert!(matches!(result, Err(Error::Config(_))), "{result:?}");
    // A server that cannot be reached is unavailable (503), within the pool's timeout.
    let pool = MySqlPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(300))
        .connect_lazy("mysql://root@127.0.0.1:1/test")
        .unwrap();
    let down = MySqlStore::new(pool);
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
fn availability_errors() {
    assert!(is_unavailable_error(1213, Some("40001")));
    assert!(is_unavailable_error(1205, Some("HY000")));
    assert!(is_unavailable_error(1040, Some("08004")));
    assert!(is_unavailable_error(1927, Some("70100")));
    assert!(is_unavailable_error(9999, Some("08S01")));
    assert!(!is_unavailable_error(1062, Some("23000")));
    assert!(!is_unavailable_error(1146, Some("42S02")));
    assert!(!is_unavailable_error(1045, Some("28000")));
    assert!(!is_unavailable_error(1064, None));
}

#[test]
fn datetimes_are_utc_microseconds() {
    assert_eq!(
        MySqlDialect::to_db(datetime!(2999-05-06 09:08:09.123456789 +02:00)),
        datetime!(2999-05-06 07:08:09.123456)
    );
    assert_eq!(
        MySqlDialect::from_db(datetime!(2999-05-06 07:08:09.5)),
        Some(datetime!(2999-05-06 07:08:09.5 UTC))
    );
}

#[test]
fn update_compares_bytes() {
    let queries = super::super::store::Queries::new::<MySqlDialect>("django_session");
    assert_eq!(
        queries.update,
        "UPDATE `django_session` SET `session_data` = ?, `expire_date` = ? WHERE \
         `session_key` = ? AND `session_data` = CAST(? AS BINARY) AND `expire_date` > ?"
    );
}
