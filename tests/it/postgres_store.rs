//! The PostgreSQL store through the public API: the conformance suite (plain JSON and
//! Django's signed format), concurrent migrations, and `expire_date` as a
//! `timestamp with time zone`. What needs the crate's internals (Django's DDL and index
//! names, the shared SQL suite through raw rows) stays in `src/store/sql/postgres/tests.rs`.
//!
//! Needs `DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without it each
//! test says so on stderr and returns (fails with `SESSIONBASE_REQUIRE_ALL_SUITES`).

#![cfg(feature = "postgres")]

use std::sync::Arc;

use serde_json::json;
#[cfg(feature = "conformance")]
use sessionbase::store::Codec;
use sessionbase::store::Record;
#[cfg(feature = "conformance")]
use sessionbase::store::conformance::{Exceptions, run};
use sessionbase::{PostgresStore, SessionStore};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::common::PgTable;

/// A migrated store on `table`.
async fn migrated(table: &PgTable) -> PostgresStore {
    let store = table.connect().await;
    store.migrate().await.expect("migrate");
    store
}

#[cfg(feature = "conformance")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    // Dropped last: the table goes whether the suite passes or panics.
    let Some(table) = PgTable::new("the conformance suite on the PostgreSQL store") else {
        return;
    };
    let store = migrated(&table).await;
    run(store.clone(), Exceptions::none()).await;
    store.pool().close().await;
}

/// With the user index in its side table (`with_user_index`), kept by a CTE in the save.
#[cfg(feature = "conformance")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_the_user_index() {
    let Some(table) = PgTable::new("the conformance suite on the PostgreSQL user index") else {
        return;
    };
    let store = table.connect().await.with_user_index().expect("index");
    store.migrate().await.expect("migrate");
    run(store.clone(), Exceptions::none()).await;
    store.pool().close().await;
}

#[cfg(feature = "conformance")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_django_codec() {
    let Some(table) = PgTable::new("the conformance suite on the PostgreSQL store") else {
        return;
    };
    let store = migrated(&table).await;
    let codec = Codec::django("django_tests_secret_key", Vec::<String>::new());
    run(store.clone().with_codec(codec), Exceptions::none()).await;
    store.pool().close().await;
}

/// Service instances starting together all migrate: `CREATE … IF NOT EXISTS` racing on one
/// table never fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_succeed() {
    let Some(table) = PgTable::new("concurrent migrations on PostgreSQL") else {
        return;
    };
    // Not migrated yet: the table does not exist.
    let store = table.connect().await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("a concurrent migrate failed");
    }
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", store.table()))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    store.pool().close().await;
}

/// `expire_date` is a `timestamp with time zone`: any offset is stored as the same instant,
/// to the microsecond, and loads back as it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_date_is_a_timestamptz() {
    let Some(table) = PgTable::new("expire_date on PostgreSQL") else {
        return;
    };
    let store = migrated(&table).await;
    let expire = datetime!(2999-05-06 09:08:09.123456 +02:00);
    let serde_json::Value::Object(data) = json!({"hello": "world", "n": [1, 2]}) else {
        unreachable!("an object")
    };
    let record = Record {
        data: Arc::new(data),
        expiry_date: expire,
    };
    let (key, _) = store.create(&record).await.unwrap();
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
    store.pool().close().await;
}
