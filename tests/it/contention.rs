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

/// The session `key`'s items, read through the instance at `base`.
async fn items_of(client: &reqwest::Client, base: &str, key: &str) -> Map<String, Value> {
    client
        .get(format!("{base}/items"))
        .header(reqwest::header::COOKIE, format!("sessionid={key}"))
        .send()
        .await
        .expect("items")
        .text()
        .await
        .map(|body| serde_json::from_str(&body).expect("JSON"))
        .expect("body")
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
        let items = items_of(&client, base, &key).await;
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
/// sees one load per request, never a retry's reload, and at most one save per increment
/// (saves that wait for the same write are written together).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_behind_io_never_retries() {
    let store =
        crate::common::CountingStore::new(crate::common::IoStore(sessionbase::MemoryStore::new()));
    every_increment_is_kept(vec![instance(store.clone()).await]).await;
    let calls = store.snapshot();
    let increments = CONNECTIONS * ROUNDS as usize;
    assert_eq!(calls.create, 1);
    assert!(calls.save <= increments, "{calls:?}");
    // Every increment and the final read load once; a lost race would load again.
    assert_eq!(calls.load, increments + 1, "{calls:?}");
}

/// A memory store behind I/O whose saves wait, while held, until released.
#[derive(Clone)]
struct HeldStore {
    inner: sessionbase::MemoryStore,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    loads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    saves: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for HeldStore {
    fn default() -> Self {
        Self {
            inner: sessionbase::MemoryStore::new(),
            gate: std::sync::Arc::new(tokio::sync::Semaphore::new(0)),
            held: std::sync::Arc::default(),
            loads: std::sync::Arc::default(),
            saves: std::sync::Arc::default(),
        }
    }
}

impl SessionStore for HeldStore {
    fn identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.saves) as usize)
    }
    async fn load(
        &self,
        key: &sessionbase::SessionKey,
    ) -> Result<Option<sessionbase::store::LoadedRecord>, sessionbase::Error> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load(key).await
    }
    async fn create(
        &self,
        record: &sessionbase::store::Record,
    ) -> Result<(sessionbase::SessionKey, sessionbase::store::Version), sessionbase::Error> {
        self.inner.create(record).await
    }
    async fn save(
        &self,
        key: &sessionbase::SessionKey,
        record: &sessionbase::store::Record,
        expected: &sessionbase::store::Version,
    ) -> Result<sessionbase::store::SaveOutcome, sessionbase::Error> {
        self.saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.held.load(std::sync::atomic::Ordering::SeqCst) {
            let _permit = self.gate.acquire().await.expect("gate open");
        }
        self.inner.save(key, record, expected).await
    }
    async fn delete(&self, key: &sessionbase::SessionKey) -> Result<(), sessionbase::Error> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &sessionbase::SessionKey) -> Result<bool, sessionbase::Error> {
        self.inner.exists(key).await
    }
    async fn clear_expired(&self) -> Result<(), sessionbase::Error> {
        self.inner.clear_expired().await
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let wait = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Saves that queue behind a write under way are written together, in one store call, and
/// each request keeps its change (group commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_waiting_for_one_write_are_written_together() {
    use std::sync::atomic::Ordering::SeqCst;
    let store = HeldStore::default();
    let base = instance(store.clone()).await;
    let client = client();
    let response = client
        .get(format!("{base}/start"))
        .send()
        .await
        .expect("start");
    let key = cookie_of(&response);
    let incr = |i: usize| {
        let (client, url, key) = (client.clone(), format!("{base}/incr?k=c{i}"), key.clone());
        async move {
            let response = client
                .get(url)
                .header(reqwest::header::COOKIE, format!("sessionid={key}"))
                .send()
                .await
                .expect("request");
            (response.status(), response.text().await.expect("body"))
        }
    };
    store.held.store(true, SeqCst);
    let first = tokio::spawn(incr(0));
    until("the first save", || store.saves.load(SeqCst) == 1).await;
    let rest: Vec<_> = (1..CONNECTIONS).map(|i| tokio::spawn(incr(i))).collect();
    until("every request's load", || {
        store.loads.load(SeqCst) == CONNECTIONS
    })
    .await;
    // Past their loads, the handlers and the saves behind the held one take microseconds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.held.store(false, SeqCst);
    store.gate.add_permits(CONNECTIONS);
    for task in std::iter::once(first).chain(rest) {
        let (status, body) = task.await.expect("request task");
        assert_eq!((status.as_u16(), body.as_str()), (200, "1"));
    }
    assert_eq!(
        store.saves.load(SeqCst),
        2,
        "the held save, then one for the {} that waited",
        CONNECTIONS - 1
    );
    let items = items_of(&client, &base, &key).await;
    for i in 0..CONNECTIONS {
        assert_eq!(items.get(&format!("c{i}")), Some(&Value::from(1)), "c{i}");
    }
}

/// Sessions of `Session::load` on clones of one store, with one configuration, are written
/// in groups too, as a layer's are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_loaded_from_clones_of_one_store_write_together() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::SeqCst;
    let store = HeldStore::default();
    let config = Arc::new(sessionbase::SessionConfig::default());
    let session = Session::new(store.clone(), Arc::clone(&config));
    session.insert("init", 0).expect("insert");
    session.save().await.expect("create");
    let key = session.session_key().expect("key");
    let saves_of_start = store.saves.load(SeqCst);
    let write = |i: usize| {
        let (store, config, key) = (store.clone(), Arc::clone(&config), key.clone());
        tokio::spawn(async move {
            let session = Session::load(store, config, key.as_ref())
                .await
                .expect("load");
            session.insert(format!("c{i}"), i).expect("insert");
            session.save().await.expect("save");
        })
    };
    store.held.store(true, SeqCst);
    let first = write(0);
    until("the first save", || {
        store.saves.load(SeqCst) == saves_of_start + 1
    })
    .await;
    let rest: Vec<_> = (1..CONNECTIONS).map(write).collect();
    until("every session's load", || {
        store.loads.load(SeqCst) == CONNECTIONS
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.held.store(false, SeqCst);
    store.gate.add_permits(CONNECTIONS);
    for task in std::iter::once(first).chain(rest) {
        task.await.expect("save task");
    }
    assert_eq!(store.saves.load(SeqCst), saves_of_start + 2);
    let merged = Session::load(store.clone(), config, key.as_ref())
        .await
        .expect("load");
    for i in 0..CONNECTIONS {
        assert_eq!(merged.get::<usize>(&format!("c{i}")).expect("get"), Some(i));
    }
}

/// A request cancelled while its save leads a group (the client went away) hands the
/// saves waiting behind it to the next of them: every one of those is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_save_hands_the_waiting_ones_on() {
    use std::sync::atomic::Ordering::SeqCst;
    use tower::ServiceExt;
    let store = HeldStore::default();
    let app = Router::new()
        .route("/start", get(start))
        .route("/incr", get(increment))
        .route("/items", get(items))
        .layer(SessionLayer::new(store.clone()));
    let call = |uri: String, cookie: Option<String>| {
        let app = app.clone();
        let mut request = http::Request::builder().uri(uri);
        if let Some(key) = cookie {
            request = request.header(http::header::COOKIE, format!("sessionid={key}"));
        }
        let request = request.body(axum::body::Body::empty()).expect("request");
        async move { app.oneshot(request).await.expect("infallible") }
    };
    let started = call("/start".into(), None).await;
    let key = started.headers()[http::header::SET_COOKIE]
        .to_str()
        .expect("ASCII")
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("sessionid="))
        .expect("a session cookie")
        .to_owned();
    store.held.store(true, SeqCst);
    let leader = tokio::spawn(call("/incr?k=c0".into(), Some(key.clone())));
    until("the leader's save", || store.saves.load(SeqCst) == 1).await;
    let riders: Vec<_> = (1..CONNECTIONS)
        .map(|i| tokio::spawn(call(format!("/incr?k=c{i}"), Some(key.clone()))))
        .collect();
    until("every request's load", || {
        store.loads.load(SeqCst) == CONNECTIONS
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    leader.abort();
    // The first rider leads the others' save, which the store now sees.
    until("the next leader's save", || store.saves.load(SeqCst) == 2).await;
    store.held.store(false, SeqCst);
    store.gate.add_permits(CONNECTIONS);
    for rider in riders {
        assert_eq!(rider.await.expect("rider").status(), 200);
    }
    assert_eq!(store.saves.load(SeqCst), 2);
    let response = call("/items".into(), Some(key)).await;
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let items: Map<String, Value> = serde_json::from_slice(&body).expect("JSON");
    for i in 1..CONNECTIONS {
        assert_eq!(items.get(&format!("c{i}")), Some(&Value::from(1)), "c{i}");
    }
    assert_eq!(
        items.get("c0"),
        None,
        "the cancelled request's save never ran"
    );
}
