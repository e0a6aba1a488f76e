//! The PostgreSQL store's connections, through the public API: one round trip per store call
//! (counted by the benchmarks' proxy between the store and the server, so that a ping when a
//! connection is given back, as sqlx's pool sends, is caught), and recovery once the server
//! has ended every connection of the store.
//!
//! Needs `DATABASE_URL`; without it each test says so on stderr and returns (fails with
//! `SESSIONBASE_REQUIRE_ALL_SUITES`).

#![cfg(feature = "postgres")]

use std::sync::Arc;

use serde_json::json;
use sessionbase::store::{Record, SaveOutcome};
use sessionbase::{Error, PostgresStore, SessionStore};
use sqlx::Connection as _;
use time::OffsetDateTime;

use crate::common::proxy::{self, Protocol, Stats};
use crate::common::{PgDatabase, PgTable};

fn record(n: u64) -> Record {
    let serde_json::Value::Object(data) = json!({ "n": n }) else {
        unreachable!("an object")
    };
    Record {
        data: Arc::new(data),
        expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
    }
}

/// Calls of each kind per batch.
const N: u64 = 5;

/// What the store sent since the last check: `N` exchanges of one Bind/Execute/Close/Sync
/// each on a prepared statement, and nothing else.
fn check(stats: &Stats, what: &str) {
    let counts = stats.take();
    assert_eq!(
        counts.round_trips, N,
        "{what}: round trips for {N} calls, {counts:?}"
    );
    for message in ["Bind", "Execute", "Sync"] {
        assert_eq!(
            counts.messages.get(message),
            Some(&N),
            "{what}: {message} for {N} calls, {counts:?}"
        );
    }
    for absent in ["Parse", "StartupMessage", "Query"] {
        assert!(
            !counts.messages.contains_key(absent),
            "{what}: {absent} sent, {counts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_trip_per_store_call() {
    let Some(table) = PgTable::new("round trips per call on PostgreSQL") else {
        return;
    };
    let (upstream, through) = proxy::split_url(table.url());
    let stats = Stats::default();
    let addr = proxy::start(upstream, Protocol::Postgres, stats.clone()).await;
    let store = PostgresStore::connect(&through(addr))
        .await
        .expect("connect through the proxy")
        .with_table(table.name())
        .expect("table name");
    store.migrate().await.expect("migrate");

    // Every statement once, prepared on the store's one connection (calls one at a time).
    let (key, version) = store.create(&record(0)).await.expect("create");
    store.load(&key).await.expect("load");
    store.save(&key, &record(1), &version).await.expect("save");
    store.exists(&key).await.expect("exists");
    store.delete(&key).await.expect("delete");
    store.clear_expired().await.expect("clear_expired");
    stats.take();

    let mut sessions = Vec::new();
    for n in 0..N {
        sessions.push(store.create(&record(n)).await.expect("create"));
    }
    check(&stats, "create");
    for (key, _) in &sessions {
        assert!(store.load(key).await.expect("load").is_some());
    }
    check(&stats, "load");
    for (n, (key, version)) in (0..).zip(&sessions) {
        let saved = store.save(key, &record(n + 10), version).await;
        assert!(matches!(saved, Ok(SaveOutcome::Saved { .. })), "{saved:?}");
    }
    check(&stats, "save");
    for (key, _) in &sessions {
        assert!(store.exists(key).await.expect("exists"));
    }
    check(&stats, "exists");
    for (key, _) in &sessions {
        store.delete(key).await.expect("delete");
    }
    check(&stats, "delete");
    for _ in 0..N {
        store.clear_expired().await.expect("clear_expired");
    }
    check(&stats, "clear_expired");
}

/// Polls `sql` (a count) on `conn` until it is `want`; fails after about 10 s.
async fn wait_for_count(conn: &mut sqlx::PgConnection, sql: &str, bind: i32, want: i64) {
    for _ in 0..1000 {
        let count: i64 = sqlx::query_scalar(sql)
            .bind(bind)
            .fetch_one(&mut *conn)
            .await
            .expect("poll pg_stat_activity");
        if count == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{sql}: never {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_its_connections_are_killed() {
    // A database of its own: the kill below ends every connection to it but the test's.
    let Some(db) = PgDatabase::create("killed connections on PostgreSQL").await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let (key, _) = store.create(&record(1)).await.expect("create");

    // Three idle connections: three loads at once, held behind a lock until all three wait.
    let mut locker = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let mut watcher = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let locker_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut locker)
        .await
        .expect("pid");
    let mut lock = locker.begin().await.expect("begin");
    sqlx::query("LOCK TABLE django_session IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let loads: Vec<_> = (0..3)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.load(&key).await })
        })
        .collect();
    wait_for_count(
        &mut watcher,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND pid <> $1",
        locker_pid,
        3,
    )
    .await;
    lock.commit().await.expect("commit");
    for load in loads {
        let loaded = load.await.expect("join");
        assert!(matches!(loaded, Ok(Some(_))), "{loaded:?}");
    }

    let others = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                  AND pid <> pg_backend_pid() AND pid <> $1";
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1",
    )
    .bind(locker_pid)
    .fetch_one(&mut watcher)
    .await
    .expect("pg_terminate_backend");
    assert_eq!(killed, 3, "the store's connections");
    // Gone, not just signalled: the store's next call meets dead connections only.
    wait_for_count(&mut watcher, others, locker_pid, 0).await;

    // The next call may fail (a 503, never another error); the one after succeeds, on a new
    // connection: the first failure dropped the other two dead ones.
    let next = store.load(&key).await;
    assert!(
        matches!(next, Ok(Some(_)) | Err(Error::StoreUnavailable(_))),
        "{next:?}"
    );
    let after = store.load(&key).await;
    assert!(matches!(after, Ok(Some(_))), "{after:?}");
    assert!(store.exists(&key).await.expect("exists"));
    wait_for_count(&mut watcher, others, locker_pid, 1).await;

    drop(store);
    let _ = locker.close().await;
    let _ = watcher.close().await;
}

/// A call dropped while its statement runs (as `store_timeout` drops it) leaves nothing
/// behind: the calls after it, on the same store, get their own answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_crosses_no_answers() {
    let Some(table) = PgTable::new("cancelled calls on PostgreSQL") else {
        return;
    };
    let store = table.connect().await;
    store.migrate().await.expect("migrate");
    let (first, _) = store.create(&record(1)).await.expect("create");
    let (second, _) = store.create(&record(2)).await.expect("create");

    let mut locker = sqlx::PgConnection::connect(table.url())
        .await
        .expect("connect");
    let mut watcher = sqlx::PgConnection::connect(table.url())
        .await
        .expect("connect");
    let locker_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut locker)
        .await
        .expect("pid");
    let mut lock = locker.begin().await.expect("begin");
    sqlx::query(&format!(
        "LOCK TABLE \"{}\" IN ACCESS EXCLUSIVE MODE",
        table.name()
    ))
    .execute(&mut *lock)
    .await
    .expect("lock");
    let blocked = {
        let (store, first) = (store.clone(), first.clone());
        tokio::spawn(async move { store.load(&first).await })
    };
    // The load's statement is on the server, waiting for the lock on this test's table.
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
         AND pid <> $1 AND query LIKE '%{}%'",
        table.name()
    );
    wait_for_count(&mut watcher, &waiting, locker_pid, 1).await;
    blocked.abort();
    assert!(blocked.await.is_err_and(|e| e.is_cancelled()));
    lock.commit().await.expect("commit");

    for _ in 0..3 {
        let loaded = store.load(&second).await.expect("load").expect("a session");
        assert_eq!(loaded.data.get("n"), Some(&json!(2)));
        let loaded = store.load(&first).await.expect("load").expect("a session");
        assert_eq!(loaded.data.get("n"), Some(&json!(1)));
    }
    let _ = locker.close().await;
    let _ = watcher.close().await;
}
