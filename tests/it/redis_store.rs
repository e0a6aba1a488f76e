//! The Redis store through the public API, on a real server: the conformance suite (plain
//! JSON, Django's signed format, Django's pickled cache format, as a cache and behind one, on
//! a cluster), what lands in Redis (values, TTLs), corrupt, conflicting and deleted records,
//! and, through a proxy that sees every command, one command per operation and recovery
//! after an outage. What needs no server (unreachable servers, bad settings, hostile keys)
//! stays in `src/store/redis/tests/`.
//!
//! Needs `REDIS_URL` (for example `redis://127.0.0.1:6379/`); without it each test says so
//! and passes (fails with `SESSIONBASE_REQUIRE_ALL_SUITES`). The cluster test needs
//! `REDIS_CLUSTER_URLS` (comma-separated node URLs, as `scripts/redis-cluster.sh start`
//! prints them; `.ci/run` starts one), with the same skip-or-fail rule.

#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
#[cfg(feature = "conformance")]
use sessionbase::store::conformance::{Exceptions, run};
use sessionbase::store::{CacheStore, Codec, Record, SaveOutcome, Version};
use sessionbase::{Error, RedisStore, SessionKey, SessionStore};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

#[cfg(feature = "conformance")]
use crate::common::skip;
use crate::common::{RedisPrefix, note};

/// How long any single store call may take in these tests before it counts as a hang.
const NO_HANG: Duration = Duration::from_secs(10);

/// A store on `REDIS_URL` under the fixture's prefix.
async fn store(redis: &RedisPrefix) -> RedisStore {
    store_at(redis.url(), redis).await
}

/// A store on `url` (Redis, or a proxy in front of it) under the fixture's prefix.
async fn store_at(url: &str, redis: &RedisPrefix) -> RedisStore {
    RedisStore::connect(url)
        .await
        .expect("connect to REDIS_URL")
        .with_prefix(format!("{}:", redis.prefix()))
}

/// `SET key value EX 60`, to tamper with what the store wrote.
async fn set(redis: &RedisPrefix, key: &str, value: &[u8]) {
    let mut conn = redis::Client::open(redis.url())
        .expect("REDIS_URL parses")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to REDIS_URL");
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .expect("SET");
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

fn is_unavailable<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::StoreUnavailable(_)))
}

// ----- the conformance suite -----

#[cfg(feature = "conformance")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_plain_json() {
    let Some(redis) = RedisPrefix::new("the conformance suite on the Redis store") else {
        return;
    };
    run(store(&redis).await, Exceptions::none()).await;
}

#[cfg(feature = "conformance")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_django_codec() {
    let Some(redis) = RedisPrefix::new("the conformance suite on the Redis store") else {
        return;
    };
    let store = store(&redis)
        .await
        .with_codec(Codec::django("redis-test-secret", ["old-secret"]));
    run(store, Exceptions::none()).await;
}

#[cfg(feature = "conformance")]
#[tokio::test]
async fn conformance_pickle() {
    let Some(redis) = RedisPrefix::new("the conformance suite on the Redis store") else {
        return;
    };
    run(store(&redis).await.with_pickle(), Exceptions::none()).await;
}

#[cfg(all(feature = "conformance", feature = "memory"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_as_cache_and_behind_a_cache() {
    use sessionbase::MemoryStore;
    use sessionbase::store::CachedStore;

    let Some(redis) = RedisPrefix::new("the conformance suite on the Redis store") else {
        return;
    };
    let store = store(&redis).await;
    run(
        CachedStore::new(store.clone(), MemoryStore::new()),
        Exceptions::none(),
    )
    .await;
    run(
        CachedStore::new(MemoryStore::new(), store),
        Exceptions::none(),
    )
    .await;
}

/// Runs the suite against a cluster when `REDIS_CLUSTER_URLS` (comma-separated node
/// URLs) is set.
#[cfg(feature = "conformance")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_cluster() {
    let urls = match std::env::var("REDIS_CLUSTER_URLS") {
        Ok(urls) if !urls.trim().is_empty() => urls,
        _ => {
            skip(
                "the Redis Cluster conformance tests",
                "REDIS_CLUSTER_URLS not set",
            );
            return;
        }
    };
    let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
    let prefix = format!("sessionbase-test-{}:", SessionKey::generate().expect("rng"));
    let store = RedisStore::cluster(&urls)
        .await
        .expect("connect to the cluster")
        .with_prefix(prefix.clone());
    assert!(format!("{store:?}").contains("cluster"));
    let outcome = tokio::spawn(cluster_checks(store)).await;
    crate::common::clean_up_and_resume(&urls, &prefix, outcome).await;
}

#[cfg(feature = "conformance")]
async fn cluster_checks(store: RedisStore) {
    let cached = store.clone().with_local_cache(10);
    assert!(matches!(cached, Err(Error::Config(_))), "{cached:?}");
    run(store.clone(), Exceptions::none()).await;
    // Records keyed by private ids (`tests/it/private_id/` for the rest).
    let private_id = sessionbase::store::PrivateId::new([7u8; 32]).expect("secret");
    run(
        store.clone().with_private_id(private_id),
        Exceptions::none(),
    )
    .await;
    // Every write followed by WAIT, in one pipeline routed to the key's primary.
    run(
        store
            .clone()
            .with_replica_ack(1, Duration::from_millis(500)),
        Exceptions::none(),
    )
    .await;
    // Every session is one key, so keys spread over the nodes without CROSSSLOT errors.
    let mut keys = Vec::new();
    for i in 0..20 {
        let (key, _) = store
            .create(&live(json!({ "i": i })))
            .await
            .expect("create");
        keys.push(key);
    }
    for (i, key) in keys.iter().enumerate() {
        let loaded = store.load(key).await.expect("load").expect("loads");
        assert_eq!(loaded.data["i"], json!(i));
        store.delete(key).await.expect("delete");
    }
}

// ----- what lands in Redis -----

/// Django's Redis cache format: the value is the dict pickled (protocol 5), and a pickle
/// that needs a class (a `datetime`, from Django's `cache` engine) is no session.
#[tokio::test]
async fn pickled_values_are_djangos_and_classes_are_refused() {
    let Some(redis) = RedisPrefix::new("the Redis store's pickled values") else {
        return;
    };
    let store = store(&redis).await.with_pickle();
    let (key, _) = store.create(&live(json!({"a": 1}))).await.unwrap();
    let stored = redis.get(&store.redis_key(&key)).await.expect("stored");
    // pickle.dumps({"a": 1}, 5) as Python writes it, without the frame and memo
    // (which Python's reader does not need): `pickle.loads` of it is {'a': 1}.
    assert_eq!(stored, b"\x80\x05}\x8c\x01aK\x01s.");
    // pickle.dumps({"when": datetime.datetime(2026, 1, 1)}, 5)
    let datetime = b"\x80\x05\x954\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04when\x94\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xea\x01\x01\x00\x00\x00\x00\x00\x00\x94\x85\x94R\x94s.";
    set(&redis, &store.redis_key(&key), datetime).await;
    assert!(store.load(&key).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_is_the_records_expiry() {
    let Some(redis) = RedisPrefix::new("the Redis store's TTLs") else {
        return;
    };
    let store = store(&redis).await;
    // Seconds: TTL rounds to the nearest one.
    let tolerance = 5;
    let (key, v0) = store
        .create(&record(json!({"a": 1}), time::Duration::minutes(30)))
        .await
        .expect("create");
    let full = store.redis_key(&key);
    assert_eq!(full, format!("{}{}", store.prefix(), key.as_str()));
    let s = redis.ttl(&full).await;
    assert!(
        (30 * 60 - tolerance..=30 * 60).contains(&s),
        "TTL {s} after create"
    );
    let stored = redis.get(&full).await.expect("stored");
    assert_eq!(stored, br#"{"a":1}"#, "plain codec: compact JSON");
    assert_eq!(
        v0.as_bytes(),
        Some(stored.as_slice()),
        "version = stored bytes"
    );

    let outcome = store
        .save(
            &key,
            &record(json!({"a": 2}), time::Duration::minutes(10)),
            &v0,
        )
        .await
        .expect("save");
    assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
    let s = redis.ttl(&full).await;
    assert!(
        (10 * 60 - tolerance..=10 * 60).contains(&s),
        "TTL {s} after save"
    );
    let SaveOutcome::Saved { version: v1, .. } = outcome else {
        unreachable!()
    };

    // A touch moves the TTL alone: the value, and so the version, stay.
    let outcome = store
        .touch(
            &key,
            &record(json!({"a": 2}), time::Duration::minutes(20)),
            &v1,
        )
        .await
        .expect("touch");
    assert_eq!(
        outcome,
        SaveOutcome::Saved {
            key: key.clone(),
            version: v1.clone()
        }
    );
    let s = redis.ttl(&full).await;
    assert!(
        (20 * 60 - tolerance..=20 * 60).contains(&s),
        "TTL {s} after touch"
    );
    assert_eq!(redis.get(&full).await.expect("stored"), br#"{"a":2}"#);

    // As a cache, `put` sets the TTL too.
    store
        .put(&key, &record(json!({"a": 3}), time::Duration::minutes(5)))
        .await
        .expect("put");
    let s = redis.ttl(&full).await;
    assert!(
        (5 * 60 - tolerance..=5 * 60).contains(&s),
        "TTL {s} after put"
    );
    // And `expire_at` moves it, leaving the value; a date already passed deletes the key.
    let value = redis.get(&full).await;
    store
        .expire_at(
            &key,
            OffsetDateTime::now_utc() + time::Duration::minutes(40),
        )
        .await
        .expect("expire_at");
    let s = redis.ttl(&full).await;
    assert!(
        (40 * 60 - tolerance..=40 * 60).contains(&s),
        "TTL {s} after expire_at"
    );
    assert_eq!(redis.get(&full).await, value);
    store
        .expire_at(&key, OffsetDateTime::now_utc() - time::Duration::seconds(1))
        .await
        .expect("expire_at");
    assert!(redis.get(&full).await.is_none(), "expired by expire_at");
    let missing = SessionKey::generate().expect("rng");
    store
        .expire_at(
            &missing,
            OffsetDateTime::now_utc() + time::Duration::minutes(1),
        )
        .await
        .expect("expire_at");
    assert!(
        redis.get(&store.redis_key(&missing)).await.is_none(),
        "created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_are_not_kept() {
    let Some(redis) = RedisPrefix::new("the Redis store's expired records") else {
        return;
    };
    let store = store(&redis).await;
    let (key, version) = store
        .create(&record(json!({"x": 1}), time::Duration::seconds(-5)))
        .await
        .expect("create");
    assert!(
        redis.get(&store.redis_key(&key)).await.is_none(),
        "a record created expired was written"
    );
    assert!(store.load(&key).await.expect("load").is_none());
    assert_eq!(
        store
            .save(&key, &live(json!({"x": 2})), &version)
            .await
            .expect("save"),
        SaveOutcome::Gone,
        "a record created expired was resurrected by a save"
    );

    let (key, version) = store.create(&live(json!({"x": 1}))).await.expect("create");
    let outcome = store
        .save(
            &key,
            &record(json!({"x": 2}), time::Duration::seconds(-5)),
            &version,
        )
        .await
        .expect("save");
    assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
    assert!(
        !store.exists(&key).await.expect("exists"),
        "saved expired: gone"
    );

    // A touch to an expiry already passed deletes the key, as a save does.
    let (key, version) = store.create(&live(json!({"x": 1}))).await.expect("create");
    let outcome = store
        .touch(
            &key,
            &record(json!({"x": 1}), time::Duration::seconds(-5)),
            &version,
        )
        .await
        .expect("touch");
    assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
    assert!(
        redis.get(&store.redis_key(&key)).await.is_none(),
        "touched expired: gone"
    );
}

// ----- corrupt records, conflicts and deleted records -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_values_load_as_nothing() {
    let Some(redis) = RedisPrefix::new("the Redis store's corrupt values") else {
        return;
    };
    let store = store(&redis).await;
    let signed = store
        .clone()
        .with_codec(Codec::django("redis-test-secret", Vec::<String>::new()));
    let corrupt: [&[u8]; 6] = [
        b"not json",
        b"[1, 2, 3]",
        b"{\"truncated\": ",
        b"\xff\xfe\x00garbage",
        b"",
        b"\"a string\"",
    ];
    for value in corrupt {
        let key = SessionKey::generate().expect("rng");
        set(&redis, &store.redis_key(&key), value).await;
        assert!(
            store.load(&key).await.expect("load").is_none(),
            "{value:?} loaded"
        );
        assert!(
            signed.load(&key).await.expect("load").is_none(),
            "{value:?} loaded signed"
        );
    }
    // Plain JSON in a store that expects signed data: tampered or foreign.
    let (key, _) = store
        .create(&live(json!({"admin": true})))
        .await
        .expect("create");
    assert!(store.load(&key).await.expect("load").is_some());
    assert!(
        signed.load(&key).await.expect("load").is_none(),
        "unsigned data loaded in a signed store"
    );
    // Signed with another secret.
    let other = store
        .clone()
        .with_codec(Codec::django("another-secret", Vec::<String>::new()));
    let (key, _) = other
        .create(&live(json!({"admin": true})))
        .await
        .expect("create");
    assert!(signed.load(&key).await.expect("load").is_none());
    assert!(other.load(&key).await.expect("load").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_after_a_delete_is_gone() {
    let Some(redis) = RedisPrefix::new("the Redis store's deleted records") else {
        return;
    };
    let store = store(&redis).await;
    let (key, version) = store.create(&live(json!({"n": 1}))).await.expect("create");
    let loaded = store.load(&key).await.expect("load").expect("loads");
    assert_eq!(loaded.version, version);
    store.delete(&key).await.expect("delete");
    store.delete(&key).await.expect("deleting twice is fine");
    assert_eq!(
        store
            .save(&key, &live(json!({"n": 2})), &loaded.version)
            .await
            .expect("save"),
        SaveOutcome::Gone
    );
    assert!(
        store.load(&key).await.expect("load").is_none(),
        "resurrected"
    );
    assert!(!store.exists(&key).await.expect("exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_conflicts() {
    let Some(redis) = RedisPrefix::new("the Redis store's conflicts") else {
        return;
    };
    let store = store(&redis).await;
    let (key, v0) = store.create(&live(json!({"n": 0}))).await.expect("create");
    let SaveOutcome::Saved { version: v1, .. } = store
        .save(&key, &live(json!({"n": 1})), &v0)
        .await
        .expect("save")
    else {
        panic!("the first save was refused")
    };
    assert_ne!(v0, v1);
    for stale in [
        v0,
        Version::unversioned(),
        Version::from_counter(0),
        Version::from_bytes(Vec::new()),
    ] {
        assert_eq!(
            store
                .save(&key, &live(json!({"n": 99})), &stale)
                .await
                .expect("save"),
            SaveOutcome::Conflict,
            "{stale:?}"
        );
    }
    let loaded = store.load(&key).await.expect("load").expect("loads");
    assert_eq!(loaded.data["n"], json!(1), "a conflicting save wrote");
    assert_eq!(loaded.version, v1);
}

// ----- round trips and recovery, through a proxy that sees every command -----

/// A TCP proxy in front of Redis that records every command it forwards, and can
/// play dead (drop every connection and refuse new ones) to simulate an outage.
struct Proxy {
    /// `REDIS_URL` with the proxy's address instead of Redis's.
    url: String,
    commands: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    up: Arc<AtomicBool>,
    kill: watch::Sender<u64>,
}

impl Proxy {
    /// `None` when `REDIS_URL` is not a plain `redis://host:port` URL.
    async fn start(redis_url: &str) -> Option<Self> {
        let rest = redis_url.strip_prefix("redis://")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let upstream = if hostport.contains(':') {
            hostport.to_owned()
        } else {
            format!("{hostport}:6379")
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let commands = Arc::new(Mutex::new(Vec::new()));
        let up = Arc::new(AtomicBool::new(true));
        let (kill, _) = watch::channel(0u64);
        let proxy = Self {
            url: format!("redis://{userinfo}{addr}/{path}"),
            commands: Arc::clone(&commands),
            up: Arc::clone(&up),
            kill: kill.clone(),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (upstream, commands, kill) =
                    (upstream.clone(), Arc::clone(&commands), kill.subscribe());
                tokio::spawn(pipe(client, upstream, commands, kill));
            }
        });
        Some(proxy)
    }

    /// The command names (and arguments, lossily as text) forwarded since the last call.
    fn take(&self) -> Vec<Vec<String>> {
        std::mem::take(&mut *self.commands.lock().expect("lock"))
            .into_iter()
            .map(|args| {
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.kill.send_modify(|generation| *generation += 1);
        }
    }
}

async fn pipe(
    client: TcpStream,
    upstream: String,
    commands: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
    mut kill: watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut pending = Vec::new();
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some((args, used)) = parse_command(&pending) {
                commands.lock().expect("lock").push(args);
                pending.drain(..used);
            }
            server_write.write_all(&buf[..n]).await?;
        }
    };
    let replies = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        _ = requests => {}
        _ = replies => {}
        _ = kill.changed() => {}
    }
}

/// One RESP request (`*N\r\n` then N bulk strings) from the front of `buf`, and how many
/// bytes it took; `None` until it is complete.
fn parse_command(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    fn line(buf: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
        if *buf.get(at)? != marker {
            panic!("unexpected RESP request byte {:?}", buf[at] as char);
        }
        let end = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
        Some((n, end + 2))
    }
    let (count, mut at) = line(buf, 0, b'*')?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, start) = line(buf, at, b'$')?;
        if buf.len() < start + len + 2 {
            return None;
        }
        args.push(buf[start..start + len].to_vec());
        at = start + len + 2;
    }
    Some((args, at))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_one_command() {
    let Some(redis) = RedisPrefix::new("the Redis store's round trips") else {
        return;
    };
    let Some(proxy) = Proxy::start(redis.url()).await else {
        note("skipping the round-trip test: REDIS_URL is not redis://host:port");
        return;
    };
    let store = store_at(&proxy.url, &redis).await;
    proxy.take(); // the connection's handshake

    let (key, v0) = store.create(&live(json!({"n": 0}))).await.expect("create");
    let full = store.redis_key(&key);
    let sent = proxy.take();
    assert_eq!(sent.len(), 1, "create: {sent:?}");
    let set = &sent[0];
    assert_eq!(set[0].to_uppercase(), "SET", "{set:?}");
    assert_eq!(set[1], full);
    assert_eq!(set[2], r#"{"n":0}"#);
    assert_eq!(
        set[3].to_uppercase(),
        "NX",
        "create must never overwrite: {set:?}"
    );
    assert_eq!(set[4].to_uppercase(), "PX", "{set:?}");
    let ttl: i64 = set[5].parse().expect("a TTL in ms");
    assert!((3_590_000..=3_600_000).contains(&ttl), "{ttl}");

    let loaded = store.load(&key).await.expect("load").expect("loads");
    assert_eq!(proxy.take(), vec![vec!["GET".to_owned(), full.clone()]]);

    // The first save may have to load the script; after that, one EVALSHA.
    let SaveOutcome::Saved { version: v1, .. } = store
        .save(&key, &live(json!({"n": 1})), &loaded.version)
        .await
        .expect("save")
    else {
        panic!("save refused")
    };
    proxy.take();
    let outcome = store
        .save(&key, &live(json!({"n": 2})), &v1)
        .await
        .expect("save");
    assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
    let sent = proxy.take();
    assert_eq!(sent.len(), 1, "save: {sent:?}");
    assert_eq!(sent[0][0].to_uppercase(), "EVALSHA", "{sent:?}");
    assert_eq!(sent[0][2], "1", "the script touches one key");
    assert_eq!(sent[0][3], full);

    assert_eq!(
        store
            .save(&key, &live(json!({"n": 3})), &v0)
            .await
            .expect("save"),
        SaveOutcome::Conflict
    );
    assert_eq!(proxy.take().len(), 1, "a conflict is one command too");

    // A touch is one script call too (after the first, which may load it), and `expire_at`
    // one PEXPIRE.
    let loaded = store.load(&key).await.expect("load").expect("loads");
    store
        .touch(&key, &live(json!({"n": 2})), &loaded.version)
        .await
        .expect("touch");
    proxy.take();
    let outcome = store
        .touch(&key, &live(json!({"n": 2})), &loaded.version)
        .await
        .expect("touch");
    assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
    let sent = proxy.take();
    assert_eq!(sent.len(), 1, "touch: {sent:?}");
    assert_eq!(sent[0][0].to_uppercase(), "EVALSHA", "{sent:?}");
    assert_eq!(sent[0][3], full);
    store
        .expire_at(&key, OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .await
        .expect("expire_at");
    let sent = proxy.take();
    assert_eq!(sent.len(), 1, "expire_at: {sent:?}");
    assert_eq!(sent[0][0].to_uppercase(), "PEXPIRE", "{sent:?}");

    assert!(store.exists(&key).await.expect("exists"));
    assert_eq!(proxy.take(), vec![vec!["EXISTS".to_owned(), full.clone()]]);
    store.delete(&key).await.expect("delete");
    assert_eq!(proxy.take(), vec![vec!["DEL".to_owned(), full.clone()]]);
    store.clear_expired().await.expect("clear_expired");
    assert!(proxy.take().is_empty(), "clear_expired sends nothing");

    // An unknown key costs one GET; a malformed cookie costs nothing (it never
    // becomes a key).
    assert!(store.parse_key("abc*defgh").is_none());
    let unknown = SessionKey::generate().expect("rng");
    assert!(store.load(&unknown).await.expect("load").is_none());
    assert_eq!(proxy.take().len(), 1);
}

/// With a local cache, a load of a session this instance holds sends nothing and an update
/// of it one command (the compare-and-swap), which leaves the new value cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_local_cache_a_read_is_no_command_and_an_update_one() {
    let Some(redis) = RedisPrefix::new("the Redis local cache's round trips") else {
        return;
    };
    let Some(proxy) = Proxy::start(redis.url()).await else {
        note("skipping the round-trip test: REDIS_URL is not redis://host:port");
        return;
    };
    // The tracking connection's heartbeats are not the store's calls.
    let sent = || -> Vec<Vec<String>> {
        proxy
            .take()
            .into_iter()
            .filter(|c| !c[0].eq_ignore_ascii_case("PING"))
            .collect()
    };
    let store = store_at(&proxy.url, &redis)
        .await
        .with_local_cache(100)
        .expect("a local cache");
    crate::redis_local_cache::serving(&store).await;
    let (key, v0) = store.create(&live(json!({"n": 0}))).await.expect("create");
    // The first save may have to load the script.
    let SaveOutcome::Saved { version: v1, .. } = store
        .save(&key, &live(json!({"n": 1})), &v0)
        .await
        .expect("save")
    else {
        panic!("save refused")
    };
    sent();
    for n in 2..5 {
        let loaded = store.load(&key).await.expect("load").expect("loads");
        assert_eq!(loaded.data["n"], json!(n - 1));
        assert!(sent().is_empty(), "a cached load sent commands");
        let outcome = store
            .save(&key, &live(json!({ "n": n })), &loaded.version)
            .await
            .expect("save");
        assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
        let commands = sent();
        assert_eq!(commands.len(), 1, "{commands:?}");
        assert_eq!(commands[0][0].to_uppercase(), "EVALSHA", "{commands:?}");
    }
    assert_ne!(v1, v0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_when_redis_comes_back() {
    let Some(redis) = RedisPrefix::new("the Redis store's recovery") else {
        return;
    };
    let Some(proxy) = Proxy::start(redis.url()).await else {
        note("skipping the recovery test: REDIS_URL is not redis://host:port");
        return;
    };
    let store = store_at(&proxy.url, &redis).await;
    let (key, _) = store.create(&live(json!({"n": 1}))).await.expect("create");

    proxy.set_up(false);
    sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let r = timeout(NO_HANG, store.load(&key)).await.expect("load hung");
        assert!(is_unavailable(&r), "{r:?}");
        let r = timeout(NO_HANG, store.create(&live(json!({}))))
            .await
            .expect("create hung");
        assert!(is_unavailable(&r), "{r:?}");
    }

    proxy.set_up(true);
    let deadline = Instant::now() + NO_HANG;
    loop {
        match timeout(NO_HANG, store.load(&key)).await.expect("load hung") {
            Ok(Some(loaded)) => {
                assert_eq!(loaded.data["n"], json!(1));
                break;
            }
            other => {
                assert!(Instant::now() < deadline, "never recovered: {other:?}");
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
