//! Many requests on one session at once, on every server-side store: 16 connections, each
//! incrementing its own counter in the same session, spread over two instances of the app
//! (each with its own store connection and its own chain of saves). Every increment is kept:
//! the saves of one instance chain on each other, and a race lost to the other instance is
//! reloaded and re-applied. Bounded in requests and time; stops by itself.

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value};
use sessionbase::{Session, SessionLayer, SessionStore};

use crate::common::{client, spawn};

const CONNECTIONS: usize = 16;
const ROUNDS: u64 = 20;

#[derive(Deserialize)]
struct Counter {
    k: String,
}

async fn increment(
    session: Session,
    Query(q): Query<Counter>,
) -> Result<String, sessionbase::Error> {
    let n = session.get::<u64>(&q.k)?.unwrap_or(0) + 1;
    session.insert(q.k, n)?;
    Ok(n.to_string())
}

async fn items(session: Session) -> String {
    let items: Map<String, Value> = session.items().into_iter().collect();
    Value::Object(items).to_string()
}

async fn start(session: Session) -> Result<&'static str, sessionbase::Error> {
    session.insert("init", 0)?;
    Ok("ok")
}

async fn instance<S: SessionStore>(store: S) -> String {
    let app = Router::new()
        .route("/start", get(start))
        .route("/incr", get(increment))
        .route("/items", get(items))
        .layer(SessionLayer::new(store));
    spawn(app).await
}

fn cookie_of(response: &reqwest::Response) -> String {
    let header = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .expect("ASCII");
    let first = header.split(';').next().expect("name=value");
    first
        .strip_prefix("sessionid=")
        .expect("sessionid")
        .to_owned()
}

/// The scenario over `instances` (base URLs); connection `i` talks to instance `i % n`.
async fn every_increment_is_kept(instances: Vec<String>) {
    every_increment_is_kept_checked_on(&instances, &instances).await;
}

/// The scenario over `instances`, the counters read back at the end through `checkers`.
async fn every_increment_is_kept_checked_on(instances: &[String], checkers: &[String]) {
    let client = client();
    let response = client
        .get(format!("{}/start", instances[0]))
        .send()
        .await
        .expect("start");
    let key = cookie_of(&response);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let base = instances[i % instances.len()].clone();
        let (client, key) = (client.clone(), key.clone());
        tasks.spawn(async move {
            for round in 1..=ROUNDS {
                let response = client
                    .get(format!("{base}/incr?k=c{i}"))
                    .header(reqwest::header::COOKIE, format!("sessionid={key}"))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), 200, "c{i}, round {round}");
                let seen: u64 = response.text().await.expect("body").parse().expect("n");
                assert_eq!(seen, round, "c{i} lost an increment");
            }
        });
    }
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            joined.expect("connection");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the connections hung");
    for base in checkers {
        let items: Map<String, Value> = client
            .get(format!("{base}/items"))
            .header(reqwest::header::COOKIE, format!("sessionid={key}"))
            .send()
            .await
            .expect("items")
            .text()
            .await
            .map(|body| serde_json::from_str(&body).expect("JSON"))
            .expect("body");
        for i in 0..CONNECTIONS {
            assert_eq!(
                items.get(&format!("c{i}")),
                Some(&Value::from(ROUNDS)),
                "c{i} at {base}"
            );
        }
        assert_eq!(items.get("init"), Some(&Value::from(0)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_two_layers_on_one_store() {
    let store = sessionbase::MemoryStore::new();
    every_increment_is_kept(vec![instance(store.clone()).await, instance(store).await]).await;
}

#[cfg(feature = "file")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_two_instances_on_one_directory() {
    let dir = std::env::temp_dir().join(format!(
        "sessionbase-contention-{}",
        crate::common::random()
    ));
    std::fs::create_dir_all(&dir).expect("a directory");
    let a = sessionbase::FileStore::new(&dir).expect("file store");
    let b = sessionbase::FileStore::new(&dir).expect("file store");
    every_increment_is_kept(vec![instance(a).await, instance(b).await]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_instances() {
    let Some(redis) = crate::common::RedisPrefix::new("16 connections on one session, Redis")
    else {
        return;
    };
    let prefix = format!("{}:", redis.prefix());
    let connect = || async {
        sessionbase::RedisStore::connect(redis.url())
            .await
            .expect("connect to REDIS_URL")
            .with_prefix(prefix.clone())
    };
    every_increment_is_kept(vec![
        instance(connect().await).await,
        instance(connect().await).await,
    ])
    .await;
}

/// Both instances with a local cache: each serves its own copy until the other's
/// invalidation arrives, and a save based on a stale copy conflicts, reloads and re-applies.
/// Read back through a third instance without a cache (a cached one may not have heard of
/// the last save yet).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_instances_with_local_caches() {
    let Some(redis) =
        crate::common::RedisPrefix::new("16 connections on one session, Redis with local caches")
    else {
        return;
    };
    let prefix = format!("{}:", redis.prefix());
    let connect = || async {
        sessionbase::RedisStore::connect(redis.url())
            .await
            .expect("connect to REDIS_URL")
            .with_prefix(prefix.clone())
    };
    let (a, b) = (
        connect()
            .await
            .with_local_cache(100)
            .expect("a local cache"),
        connect()
            .await
            .with_local_cache(100)
            .expect("a local cache"),
    );
    crate::redis_local_cache::serving(&a).await;
    crate::redis_local_cache::serving(&b).await;
    let checker = instance(connect().await).await;
    every_increment_is_kept_checked_on(&[instance(a).await, instance(b).await], &[checker]).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_instances() {
    let Some(table) = crate::common::PgTable::new("16 connections on one session, PostgreSQL")
    else {
        return;
    };
    let (a, b) = (table.connect().await, table.connect().await);
    a.migrate().await.expect("migrate");
    every_increment_is_kept(vec![instance(a).await, instance(b).await]).await;
}

/// On one instance behind I/O the saves chain: not one of them loses a race, so the store
/// sees exactly one save per increment and one load per request, never a retry's reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_behind_io_never_retries() {
    let store =
        crate::common::CountingStore::new(crate::common::IoStore(sessionbase::MemoryStore::new()));
    every_increment_is_kept(vec![instance(store.clone()).await]).await;
    let calls = store.snapshot();
    let increments = CONNECTIONS * ROUNDS as usize;
    assert_eq!(calls.create, 1);
    assert_eq!(calls.save, increments, "{calls:?}");
    // Every increment and the final read load once; a lost race would load again.
    assert_eq!(calls.load, increments + 1, "{calls:?}");
}
