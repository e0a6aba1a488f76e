//! What the Redis store does without a server: one that is not there, unusable settings,
//! secrets kept out of `Debug` and errors, and keys that never reach Redis. The tests against
//! a real server (`REDIS_URL`, `REDIS_CLUSTER_URLS`) use only the public API and are in
//! `tests/it/redis_store.rs`.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use tokio::time::timeout;

use super::*;
use crate::store::{Record, SessionStore, Version};

mod local_cache;

/// How long any single store call may take in these tests before it counts as a hang.
const NO_HANG: Duration = Duration::from_secs(10);

fn live(value: serde_json::Value) -> Record {
    let serde_json::Value::Object(map) = value else {
        panic!("records hold objects")
    };
    Record {
        data: Arc::new(map),
        expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
    }
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

// ----- no server -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_unavailable() {
    let connected = timeout(NO_HANG, RedisStore::connect("redis://127.0.0.1:1/"))
        .await
        .expect("connect hung");
    assert!(is_unavailable(&connected), "{connected:?}");

    let store = unreachable_store("redis://127.0.0.1:1/");
    let key = SessionKey::generate().expect("rng");
    let r = timeout(NO_HANG, store.load(&key)).await.expect("load hung");
    assert!(is_unavailable(&r), "{r:?}");
    let r = timeout(NO_HANG, store.create(&live(json!({}))))
        .await
        .expect("create hung");
    assert!(is_unavailable(&r), "{r:?}");
    let r = timeout(
        NO_HANG,
        store.save(&key, &live(json!({})), &Version::from_bytes(*b"{}")),
    )
    .await
    .expect("save hung");
    assert!(is_unavailable(&r), "{r:?}");
    let r = timeout(NO_HANG, store.delete(&key))
        .await
        .expect("delete hung");
    assert!(is_unavailable(&r), "{r:?}");
    let r = timeout(NO_HANG, store.exists(&key))
        .await
        .expect("exists hung");
    assert!(is_unavailable(&r), "{r:?}");
    assert!(
        store.clear_expired().await.is_ok(),
        "clear_expired does nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_stay_out_of_debug_and_errors() {
    let url = "redis://user:hunter2-secret@127.0.0.1:1/";
    let error = timeout(NO_HANG, RedisStore::connect(url))
        .await
        .expect("connect hung")
        .expect_err("nothing listens on port 1");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
    let store = unreachable_store(url).with_codec(Codec::django("s3cr3t-key", ["old-k3y"]));
    let debug = format!("{store:?}");
    for secret in ["hunter2", "s3cr3t", "old-k3y", "user"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("sessionbase:"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_settings_are_configuration_errors() {
    for url in [
        "http://127.0.0.1:6379/",
        "redis://",
        "not a url",
        "redis://h/db",
    ] {
        let r = timeout(NO_HANG, RedisStore::connect(url))
            .await
            .expect("connect hung");
        assert!(matches!(r, Err(Error::Config(_))), "{url}: {r:?}");
    }
    let r = RedisStore::cluster(Vec::<String>::new()).await;
    assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
    let r = timeout(NO_HANG, RedisStore::cluster(["http://127.0.0.1:7000/"]))
        .await
        .expect("cluster hung");
    assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
}

// ----- keys -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_never_reach_redis() {
    let store = unreachable_store("redis://127.0.0.1:1/").with_prefix("p:");
    for hostile in [
        "*",
        "abc*defgh",
        "abcdefgh\r\nFLUSHALL",
        "abcdefgh\nDEL x",
        "a b c d e f g h",
        "abcdefg?",
        "[abcdefgh]",
        "ABCDEFGHIJ",
        "abcdefg",
        "abcdefghij/../../x",
        "abcdefgh\0",
        "",
        &"a".repeat(41),
    ] {
        assert!(
            store.parse_key(hostile).is_none(),
            "{hostile:?} was accepted"
        );
    }
    let key = store
        .parse_key("abcdefgh12345678")
        .expect("a well-formed key");
    assert_eq!(store.redis_key(&key), "p:abcdefgh12345678");
    let generated = SessionKey::generate().expect("rng");
    assert_eq!(store.parse_key(generated.as_str()), Some(generated));
}

// ----- the local cache -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_local_cache_settings_are_configuration_errors() {
    let r = unreachable_store("redis://127.0.0.1:1/").with_local_cache(10);
    assert!(matches!(r, Err(Error::Config(_))), "from_manager: {r:?}");
    let mut store = unreachable_store("redis://127.0.0.1:1/");
    store.client = Some(redis::Client::open("redis://127.0.0.1:1/").expect("URL parses"));
    let r = store.clone().with_local_cache(0);
    assert!(matches!(r, Err(Error::Config(_))), "capacity 0: {r:?}");
    let r = std::thread::spawn(move || store.with_local_cache(10))
        .join()
        .expect("thread");
    assert!(matches!(r, Err(Error::Config(_))), "no runtime: {r:?}");
}

/// While the tracking connection cannot be opened, the cache serves nothing and every call
/// goes to Redis (here: unavailable, as without a cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_without_its_tracking_connection_is_bypassed() {
    let mut store = unreachable_store("redis://127.0.0.1:1/");
    store.client = Some(redis::Client::open("redis://127.0.0.1:1/").expect("URL parses"));
    let store = store.with_local_cache(10).expect("a local cache");
    assert!(format!("{store:?}").contains("Some(10)"), "{store:?}");
    let key = SessionKey::generate().expect("rng");
    for _ in 0..3 {
        assert!(!store.local_cache_serving());
        assert_eq!(store.local_cache_client_id(), None);
        let r = timeout(NO_HANG, store.load(&key)).await.expect("load hung");
        assert!(is_unavailable(&r), "{r:?}");
        let r = timeout(NO_HANG, store.create(&live(json!({}))))
            .await
            .expect("create hung");
        assert!(is_unavailable(&r), "{r:?}");
        assert_eq!(store.local_cache_len(), 0);
    }
}

/// A redirection still pending when the cluster client's retries run out (a node that
/// redirects to a primary just killed) is the cluster changing, not a broken store.
#[test]
fn unresolved_redirections_are_unavailable() {
    for kind in [redis::ServerErrorKind::Moved, redis::ServerErrorKind::Ask] {
        let e = redis::RedisError::from((redis::ErrorKind::Server(kind), "3240 127.0.0.1:7110"));
        assert!(matches!(map_err(e), Error::StoreUnavailable(_)), "{kind:?}");
    }
}

/// The option with zero replicas is off; with some, `Debug` says so.
#[tokio::test]
async fn replica_ack_settings() {
    let store = unreachable_store("redis://127.0.0.1:1/");
    let off = store.clone().with_replica_ack(0, Duration::from_millis(5));
    assert!(off.replica_ack.is_none());
    let on = store.clone().with_replica_ack(2, Duration::from_micros(10));
    assert!(format!("{on:?}").contains("replicas: 2"), "{on:?}");
    // Not a clone any more: its sessions never write in groups with the plain handle's.
    assert_ne!(on.identity(), store.identity());
    assert_eq!(on.identity(), on.clone().identity());
    // Without a server, a write with the option fails as one without.
    let created = timeout(NO_HANG, on.create(&live(json!({"a": 1})))).await;
    assert!(is_unavailable(&created.expect("no hang")));
}
