//! `RedisStore::with_local_cache` on a real server: the conformance suite with the cache on,
//! hits served from memory, changes by another instance or a plain Redis client seen once
//! their invalidation has arrived, stale copies that can never overwrite, the cache cleared
//! and bypassed when its tracking connection is killed under load, the TTL and the capacity.
//!
//! Waits are bounded polls of the store's own state (no timed assertions). Needs `REDIS_URL`;
//! without it each test says so and passes.

#![cfg(feature = "redis")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
#[cfg(feature = "conformance")]
use sessionbase::store::conformance::{Exceptions, run};
use sessionbase::store::{Codec, Record, SaveOutcome, Version};
use sessionbase::{RedisStore, SessionKey, SessionStore};
use time::OffsetDateTime;
use tokio::time::{Instant, sleep};

use crate::common::RedisPrefix;

/// The longest any wait in these tests may take before it counts as a failure.
const BOUND: Duration = Duration::from_secs(10);

/// Waits (bounded) until the cache of `store` serves: its tracking connection is up.
pub async fn serving(store: &RedisStore) {
    let deadline = Instant::now() + BOUND;
    while !store.local_cache_serving() {
        assert!(
            Instant::now() < deadline,
            "the local cache never started serving"
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// A store with a local cache of `capacity` on the fixture's prefix, serving.
async fn cached(redis: &RedisPrefix, capacity: usize) -> RedisStore {
    let store = RedisStore::connect(redis.url())
        .await
        .expect("connect to REDIS_URL")
        .with_prefix(format!("{}:", redis.prefix()))
        .with_local_cache(capacity)
        .expect("a local cache");
    serving(&store).await;
    store
}

async fn raw(redis: &RedisPrefix) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("REDIS_URL parses")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to REDIS_URL")
}

fn live(value: serde_json::Value) -> Record {
    let serde_json::Value::Object(map) = value else {
        panic!("records hold objects")
    };
    Record {
        data: Arc::new(map),
        expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
    }
}

async fn n(store: &RedisStore, key: &SessionKey) -> Option<i64> {
    let loaded = store.load(key).await.expect("load")?;
    Some(loaded.data["n"].as_i64().expect("n is a number"))
}

/// Loads `key` from `store` until it holds `expected` (bounded); how many loads saw
/// something else first (served within the invalidation delay).
async fn until_loads(store: &RedisStore, key: &SessionKey, expected: Option<i64>) -> u64 {
    let deadline = Instant::now() + BOUND;
    let mut before = 0;
    while n(store, key).await != expected {
        assert!(Instant::now() < deadline, "{expected:?} never loaded");
        before += 1;
        tokio::task::yield_now().await;
    }
    before
}

/// Waits until `store` no longer caches `key`, which it held: only an invalidation (or a
/// clear) removes it when nothing else uses the store meanwhile.
async fn evicted(store: &RedisStore, key: &SessionKey) {
    assert!(
        store.local_cache_wait_evicted(key, BOUND).await,
        "the invalidation never arrived"
    );
}

#[cfg(feature = "conformance")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_the_local_cache() {
    let Some(redis) = RedisPrefix::new("the conformance suite with the local cache") else {
        return;
    };
    run(cached(&redis, 1000).await, Exceptions::none()).await;
    let signed = RedisStore::connect(redis.url())
        .await
        .expect("connect")
        .with_prefix(format!("{}:", redis.prefix()))
        .with_codec(Codec::django("redis-test-secret", ["old-secret"]))
        .with_local_cache(1000)
        .expect("a local cache");
    serving(&signed).await;
    run(signed, Exceptions::none()).await;
    let pickled = RedisStore::connect(redis.url())
        .await
        .expect("connect")
        .with_prefix(format!("{}:", redis.prefix()))
        .with_pickle()
        .with_local_cache(1000)
        .expect("a local cache");
    serving(&pickled).await;
    run(pickled, Exceptions::none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_are_served_from_memory_and_saves_stay_cached() {
    let Some(redis) = RedisPrefix::new("the local cache's hits") else {
        return;
    };
    let store = cached(&redis, 100).await;
    let (key, v0) = store.create(&live(json!({"n": 0}))).await.expect("create");
    assert!(store.local_cache_holds(&key), "a create is cached");
    let first = store.load(&key).await.expect("load").expect("loads");
    let second = store.load(&key).await.expect("load").expect("loads");
    // The same allocation twice: both came from memory, not from Redis.
    assert!(Arc::ptr_eq(&first.data, &second.data));
    assert_eq!(first.version, v0);
    let SaveOutcome::Saved { version: v1, .. } = store
        .save(&key, &live(json!({"n": 1})), &v0)
        .await
        .expect("save")
    else {
        panic!("save refused")
    };
    assert!(
        store.local_cache_holds(&key),
        "the value just saved is cached"
    );
    let after = store.load(&key).await.expect("load").expect("loads");
    assert_eq!((after.data["n"].clone(), &after.version), (json!(1), &v1));
    let again = store.load(&key).await.expect("load").expect("loads");
    assert!(Arc::ptr_eq(&after.data, &again.data));
    assert!(store.exists(&key).await.expect("exists"));
    store.delete(&key).await.expect("delete");
    assert!(!store.local_cache_holds(&key), "a delete evicts at once");
    assert_eq!(n(&store, &key).await, None);
    assert!(!store.exists(&key).await.expect("exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_changes_are_seen_once_invalidated() {
    let Some(redis) = RedisPrefix::new("the local cache across instances") else {
        return;
    };
    let a = cached(&redis, 100).await;
    let b = cached(&redis, 100).await;
    let (key, v0) = a.create(&live(json!({"n": 0}))).await.expect("create");
    assert_eq!(n(&b, &key).await, Some(0));
    assert!(b.local_cache_holds(&key));
    assert!(a.local_cache_holds(&key));
    let stale = b.load(&key).await.expect("load").expect("loads").version;

    let SaveOutcome::Saved { version: v1, .. } = a
        .save(&key, &live(json!({"n": 1})), &v0)
        .await
        .expect("save")
    else {
        panic!("save refused")
    };
    // Whether or not B has heard of it yet, its copy cannot overwrite A's record.
    assert_eq!(
        b.save(&key, &live(json!({"n": 99})), &stale)
            .await
            .expect("save"),
        SaveOutcome::Conflict
    );
    evicted(&b, &key).await;
    assert_eq!(n(&b, &key).await, Some(1));
    assert_eq!(n(&a, &key).await, Some(1), "A's own save stays current");

    // B saves: A hears of it.
    assert!(a.local_cache_holds(&key));
    assert!(matches!(
        b.save(&key, &live(json!({"n": 2})), &v1)
            .await
            .expect("save"),
        SaveOutcome::Saved { .. }
    ));
    evicted(&a, &key).await;
    assert_eq!(n(&a, &key).await, Some(2));

    // A deletes (a logout): B hears of it.
    assert_eq!(n(&b, &key).await, Some(2));
    assert!(b.local_cache_holds(&key));
    a.delete(&key).await.expect("delete");
    evicted(&b, &key).await;
    assert_eq!(n(&b, &key).await, None);
}

/// A touch (a rolling session's save) keeps the record cached, and Redis still reports the
/// next change made elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_stays_cached_and_later_changes_elsewhere_are_seen() {
    let Some(redis) = RedisPrefix::new("the local cache and touch") else {
        return;
    };
    let a = cached(&redis, 100).await;
    let b = cached(&redis, 100).await;
    let (key, v0) = a.create(&live(json!({"n": 0}))).await.expect("create");
    let loaded = a.load(&key).await.expect("load").expect("loads");
    assert_eq!(
        a.touch(&key, &live(json!({"n": 0})), &loaded.version)
            .await
            .expect("touch"),
        SaveOutcome::Saved {
            key: key.clone(),
            version: v0.clone()
        }
    );
    assert!(a.local_cache_holds(&key), "a touch keeps the record cached");
    let after = a.load(&key).await.expect("load").expect("loads");
    let again = a.load(&key).await.expect("load").expect("loads");
    assert!(Arc::ptr_eq(&after.data, &again.data), "served from memory");
    assert_eq!((&after.version, after.data["n"].clone()), (&v0, json!(0)));
    assert!(matches!(
        b.save(&key, &live(json!({"n": 5})), &v0)
            .await
            .expect("save"),
        SaveOutcome::Saved { .. }
    ));
    evicted(&a, &key).await;
    assert_eq!(n(&a, &key).await, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_redis_clients_writes_invalidate() {
    let Some(redis) = RedisPrefix::new("the local cache and other Redis clients") else {
        return;
    };
    let store = cached(&redis, 100).await;
    let mut raw = raw(&redis).await;
    let (key, _) = store.create(&live(json!({"n": 0}))).await.expect("create");
    assert_eq!(n(&store, &key).await, Some(0));
    assert!(store.local_cache_holds(&key));
    // As Django's `cache` engine writes: a plain SET of the whole value.
    let _: () = redis::cmd("SET")
        .arg(store.redis_key(&key))
        .arg(r#"{"n":5}"#)
        .arg("EX")
        .arg(60)
        .query_async(&mut raw)
        .await
        .expect("SET");
    evicted(&store, &key).await;
    assert_eq!(n(&store, &key).await, Some(5));
    assert!(store.local_cache_holds(&key));
    let _: i64 = redis::cmd("DEL")
        .arg(store.redis_key(&key))
        .query_async(&mut raw)
        .await
        .expect("DEL");
    evicted(&store, &key).await;
    assert_eq!(n(&store, &key).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_not_served_past_its_ttl() {
    let Some(redis) = RedisPrefix::new("the local cache and TTLs") else {
        return;
    };
    let store = cached(&redis, 100).await;
    let short = Record {
        expiry_date: OffsetDateTime::now_utc() + time::Duration::milliseconds(800),
        ..live(json!({"n": 1}))
    };
    let (key, _) = store.create(&short).await.expect("create");
    assert_eq!(n(&store, &key).await, Some(1));
    sleep(Duration::from_millis(1200)).await;
    assert_eq!(n(&store, &key).await, None, "served past its TTL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capacity_bounds_the_cache_under_churn() {
    let Some(redis) = RedisPrefix::new("the local cache's capacity") else {
        return;
    };
    let capacity = 32;
    let store = cached(&redis, capacity).await;
    let mut keys = Vec::new();
    for i in 0..400 {
        let (key, _) = store.create(&live(json!({"n": i}))).await.expect("create");
        assert_eq!(n(&store, &key).await, Some(i));
        assert!(
            store.local_cache_len() <= capacity,
            "{}",
            store.local_cache_len()
        );
        keys.push(key);
    }
    for (i, key) in (0..).zip(&keys) {
        assert_eq!(
            n(&store, key).await,
            Some(i),
            "evicted sessions load from Redis"
        );
        assert!(store.local_cache_len() <= capacity);
    }
    for key in &keys {
        store.delete(key).await.expect("delete");
    }
    assert_eq!(store.local_cache_len(), 0);
}

/// `CLIENT KILL ID` of the tracking connection, while one task loads in a loop and another
/// instance writes: no load ever goes back to an older value, every write is seen (a cache
/// that kept serving after losing its invalidations would serve the old value for good),
/// and the cache comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_tracking_connection_clears_and_bypasses_the_cache() {
    let Some(redis) = RedisPrefix::new("the local cache's tracking connection") else {
        return;
    };
    let a = cached(&redis, 100).await;
    let b = cached(&redis, 100).await;
    let mut raw = raw(&redis).await;
    let (key, mut version) = a.create(&live(json!({"n": 0}))).await.expect("create");

    let stop = Arc::new(AtomicBool::new(false));
    let loads = Arc::new(AtomicU64::new(0));
    let loader = tokio::spawn({
        let (b, key, stop, loads) = (
            b.clone(),
            key.clone(),
            Arc::clone(&stop),
            Arc::clone(&loads),
        );
        async move {
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                let seen = n(&b, &key).await.expect("the session loads");
                assert!(seen >= last, "went back from {last} to {seen}");
                last = seen;
                loads.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });

    let mut killed = Vec::new();
    for i in 1..=150 {
        if i % 30 == 0 {
            let id = b.local_cache_client_id();
            if let Some(id) = id {
                let _: redis::Value = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query_async(&mut raw)
                    .await
                    .expect("CLIENT KILL");
                killed.push(id);
            }
        }
        let SaveOutcome::Saved { version: next, .. } = a
            .save(&key, &live(json!({"n": i})), &version)
            .await
            .expect("save")
        else {
            panic!("save refused")
        };
        version = next;
        until_loads(&b, &key, Some(i)).await;
    }
    stop.store(true, Ordering::Relaxed);
    loader.await.expect("the loader");
    assert!(loads.load(Ordering::Relaxed) > 0);
    assert!(
        !killed.is_empty(),
        "the tracking connection was never up to be killed"
    );

    // Back: a new tracking connection, serving hits again.
    let deadline = Instant::now() + BOUND;
    loop {
        let id = b.local_cache_client_id();
        if b.local_cache_serving() && id.is_some_and(|id| !killed.contains(&id)) {
            break;
        }
        assert!(Instant::now() < deadline, "the cache never came back");
        sleep(Duration::from_millis(10)).await;
    }
    let first = b.load(&key).await.expect("load").expect("loads");
    let second = b.load(&key).await.expect("load").expect("loads");
    assert!(
        Arc::ptr_eq(&first.data, &second.data),
        "not served from memory again"
    );
    assert_eq!(first.data["n"], json!(150));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_cache_settings_are_configuration_errors() {
    let Some(redis) = RedisPrefix::new("the local cache's settings") else {
        return;
    };
    let store = RedisStore::connect(redis.url()).await.expect("connect");
    let r = store.clone().with_local_cache(0);
    assert!(matches!(r, Err(sessionbase::Error::Config(_))), "{r:?}");
    let manager = redis::aio::ConnectionManager::new(
        redis::Client::open(redis.url()).expect("REDIS_URL parses"),
    )
    .await
    .expect("connect");
    let r = RedisStore::from_manager(manager).with_local_cache(10);
    assert!(matches!(r, Err(sessionbase::Error::Config(_))), "{r:?}");
    // A version from another store matches nothing, cached or not.
    let store = cached(&redis, 10).await;
    let (key, _) = store.create(&live(json!({"n": 0}))).await.expect("create");
    assert_eq!(
        store
            .save(&key, &live(json!({"n": 1})), &Version::from_counter(0))
            .await
            .expect("save"),
        SaveOutcome::Conflict
    );
}
