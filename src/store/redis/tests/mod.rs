use std::future::Future;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::*;
use crate::store::conformance::{self, Exceptions};
use crate::store::{CacheStore, Record, SaveOutcome, SessionStore, Version};

/// How long any single store call may take in these tests before it counts as a hang.
const NO_HANG: Duration = Duration::from_secs(10);

fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // Straight to stderr: libtest would capture eprintln! and hide the notice.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipping Redis tests: REDIS_URL not set\n",
            );
            None
        }
    }
}

fn unique_prefix() -> String {
    format!("sessionbase-test-{}:", SessionKey::generate().expect("rng"))
}

fn record(value: serde_json::Value, ttl: time::Duration) -> Record {
    let serde_json::Value::Object(map) = value else {
        panic!("records hold objects")
    };
    Record {
        data: Arc::new(map),
        expiry_date: OffsetDateTime::now_utc() + ttl,
    }
}

fn live(value: serde_json::Value) -> Record {
    record(value, time::Duration::hours(1))
}

/// A connection for the test itself, to look at and tamper with what the store wrote.
async fn raw_connection(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url).expect("REDIS_URL parses");
    ConnectionManager::new(client)
        .await
        .expect("connect to REDIS_URL")
}

/// Deletes every key under `prefix` (the prefixes are random `[a-z0-9-:]`, so they are
/// not glob patterns).
async fn cleanup(raw: &mut ConnectionManager, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(raw)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(raw)
            .await
            .expect("DEL");
    }
}

/// Runs `test`, then deletes the keys under `prefix` on `url`, whether the test passed
/// or not.
async fn cleaning_up(url: &str, prefix: &str, test: impl Future<Output = ()> + Send + 'static) {
    let outcome = tokio::spawn(test).await;
    cleanup(&mut raw_connection(url).await, prefix).await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

/// Runs `test` with a store on `REDIS_URL` under a fresh prefix and a raw connection,
/// then deletes the prefix's keys, whether the test passed or not.
async fn with_redis<F, Fut>(test: F)
where
    F: FnOnce(RedisStore, ConnectionManager) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let store = RedisStore::connect(&url)
        .await
        .expect("connect to REDIS_URL")
        .with_prefix(prefix.clone());
    let raw = raw_connection(&url).await;
    cleaning_up(&url, &prefix, test(store, raw)).await;
}

/// A store on a server that is not there, connecting lazily: nothing is sent until a
/// command runs.
fn unreachable_store(url: &str) -> RedisStore {
    let client = redis::Client::open(url).expect("URL parses");
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(1);
    let manager = ConnectionManager::new_lazy_with_config(client, config).expect("lazy manager");
    RedisStore::from_manager(manager)
}

fn is_unavailable<T: fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::StoreUnavailable(_)))
}

// ----- the shared suite -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_plain_json() {
    with_redis(|store, _| async move {
        conformance::run(store, Exceptions::none()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_django_codec() {
    with_redis(|store, _| async move {
        let store = store.with_codec(Codec::django("redis-test-secret", ["old-secret"]));
        conformance::run(store, Exceptions::none()).await;
    })
    .await;
}

#[tokio::test]
async fn conformance_pickle() {
    with_redis(|store, _| async move {
        conformance::run(store.with_pickle(), Exceptions::none()).await;
    })
    .await;
}

/// Django's Redis cache format: the value is the dict pickled (protocol 5), and a pickle
/// that needs a class (a `datetime`, from Django's `cache` engine) is no session.
#[tokio::test]
async fn pickled_values_are_djangos_and_classes_are_refused() {
    with_redis(|store, mut raw| async move {
        let store = store.with_pickle();
        let (key, _) = store.create(&live(serde_json::json!({"a": 1}))).await.unwrap();
        let stored: Vec<u8> = redis::cmd("GET")
            .arg(store.redis_key(&key))
            .query_async(&mut raw)
            .await
            .unwrap();
        // pickle.dumps({"a": 1}, 5) as Python writes it, without the frame and memo
        // (which Python's reader does not need): `pickle.loads` of it is {'a': 1}.
        assert_eq!(stored, b"\x80\x05}\x8c\x01aK\x01s.");
        // pickle.dumps({"when": datetime.datetime(2026, 1, 1)}, 5)
        let datetime = b"\x80\x05\x954\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04when\x94\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xea\x01\x01\x00\x00\x00\x00\x00\x00\x94\x85\x94R\x94s.";
        let _: () = redis::cmd("SET")
            .arg(store.redis_key(&key))
            .arg(&datetime[..])
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
    })
    .await;
}

#[cfg(feature = "memory")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_as_cache_and_behind_a_cache() {
    use crate::store::{CachedStore, MemoryStore};
    with_redis(|store, _| async move {
        conformance::run(
            CachedStore::new(store.clone(), MemoryStore::new()),
            Exceptions::none(),
        )
        .await;
        conformance::run(
            CachedStore::new(MemoryStore::new(), store),
            Exceptions::none(),
        )
        .await;
    })
    .await;
}

mod cluster;
mod outages;
mod stored;
