//! What one request costs besides time (issue #5, benchmark 3, and the allocation counts):
//!
//! - **store calls** per request and scenario, through a counting wrapper around the store
//!   (sessionbase and tower-sessions, both in memory);
//! - **heap allocations** per request and scenario, with a counting global allocator, for
//!   the bare router, sessionbase and tower-sessions;
//! - **network round trips** per request to Redis and PostgreSQL, through a counting proxy
//!   between the store and the server (the commands or protocol messages are named too),
//!   for sessionbase's `RedisStore` and `PostgresStore` (also in issue #12's scenario f: c
//!   with `save_every_request`) and, when `TS_REDIS_SERVER` names
//!   the binary of `benches/ts_redis_server`, for tower-sessions' Redis store;
//! - **instructions** per request (callgrind, when `valgrind` is installed and
//!   `SESSIONBASE_BENCH_CALLGRIND` is not `0`): exact and repeatable, unlike time.
//!
//! `cargo bench --all-features --bench calls` writes `target/bench-results/calls.json` (or
//! `calls.json` in `SESSIONBASE_BENCH_RESULTS`); `SESSIONBASE_BENCH_CALLS=postgres` (a list
//! of its keys, comma-separated) runs those sections alone, and the file holds only them.
//! Redis and PostgreSQL are found through `REDIS_URL` and `DATABASE_URL` (defaults
//! `redis://127.0.0.1:6379/` and `postgres://postgres@127.0.0.1:5432/test`); a server that
//! does not answer is skipped and said so.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use sessionbase::SessionKey;
use sessionbase::store::{LoadedRecord, Record, SaveOutcome, SessionStore, Version};
use tower::ServiceExt;

use common::{App, Contender, Scenario};

/// Counts every allocation (and reallocation) and the bytes asked for.
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        ALLOCATED.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        ALLOCATED.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        ALLOCATED.fetch_add(new_size as u64, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocation_snapshot() -> (u64, u64) {
    (ALLOCATIONS.load(Relaxed), ALLOCATED.load(Relaxed))
}

/// Store calls, by method.
#[derive(Debug, Default)]
struct Calls {
    load: AtomicU64,
    create: AtomicU64,
    save: AtomicU64,
    touch: AtomicU64,
    delete: AtomicU64,
    exists: AtomicU64,
}

impl Calls {
    /// Calls per request since the last take, by method (methods never called are left out).
    fn take_per(&self, requests: u64) -> Value {
        let mut out = serde_json::Map::new();
        for (name, counter) in [
            ("load", &self.load),
            ("create", &self.create),
            ("save", &self.save),
            ("touch", &self.touch),
            ("delete", &self.delete),
            ("exists", &self.exists),
        ] {
            let n = counter.swap(0, Relaxed);
            if n > 0 {
                out.insert(name.into(), json!(n as f64 / requests as f64));
            }
        }
        Value::Object(out)
    }

    fn reset(&self) {
        self.take_per(1);
    }
}

/// A sessionbase store that counts the calls it forwards.
#[derive(Clone)]
struct Counting<S> {
    inner: S,
    calls: Arc<Calls>,
}

impl<S: SessionStore> SessionStore for Counting<S> {
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        self.inner.parse_key(cookie_value)
    }
    // Counting does not wait: the store keeps the inner one's dispatch.
    fn is_immediate(&self) -> bool {
        self.inner.is_immediate()
    }
    fn configured(&self, config: &sessionbase::SessionConfig) -> Option<Self> {
        Some(Self {
            inner: self.inner.configured(config)?,
            calls: Arc::clone(&self.calls),
        })
    }
    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, sessionbase::Error> {
        self.calls.load.fetch_add(1, Relaxed);
        self.inner.load(key).await
    }
    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), sessionbase::Error> {
        self.calls.create.fetch_add(1, Relaxed);
        self.inner.create(record).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, sessionbase::Error> {
        self.calls.save.fetch_add(1, Relaxed);
        self.inner.save(key, record, expected).await
    }
    async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, sessionbase::Error> {
        self.calls.touch.fetch_add(1, Relaxed);
        self.inner.touch(key, record, expected).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<(), sessionbase::Error> {
        self.calls.delete.fetch_add(1, Relaxed);
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &SessionKey) -> Result<bool, sessionbase::Error> {
        self.calls.exists.fetch_add(1, Relaxed);
        self.inner.exists(key).await
    }
    async fn clear_expired(&self) -> Result<(), sessionbase::Error> {
        self.inner.clear_expired().await
    }
}

/// The same wrapper for tower-sessions' store trait.
#[derive(Clone, Debug)]
struct TsCounting {
    inner: tower_sessions::MemoryStore,
    calls: Arc<Calls>,
}

#[async_trait::async_trait]
impl tower_sessions::SessionStore for TsCounting {
    async fn create(
        &self,
        record: &mut tower_sessions::session::Record,
    ) -> tower_sessions::session_store::Result<()> {
        self.calls.create.fetch_add(1, Relaxed);
        self.inner.create(record).await
    }
    async fn save(
        &self,
        record: &tower_sessions::session::Record,
    ) -> tower_sessions::session_store::Result<()> {
        self.calls.save.fetch_add(1, Relaxed);
        self.inner.save(record).await
    }
    async fn load(
        &self,
        id: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<Option<tower_sessions::session::Record>> {
        self.calls.load.fetch_add(1, Relaxed);
        self.inner.load(id).await
    }
    async fn delete(
        &self,
        id: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<()> {
        self.calls.delete.fetch_add(1, Relaxed);
        self.inner.delete(id).await
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn drive(app: &impl App, requests: Vec<Request<Body>>) {
    for request in requests {
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert!(response.status().is_success(), "{}", response.status());
    }
}

fn requests(scenario: Scenario, cookie: &str, n: usize) -> Vec<Request<Body>> {
    (0..n).map(|_| scenario.request(cookie)).collect()
}

/// Allocations and bytes per request of `scenario` through `app`.
fn count_allocations(
    runtime: &tokio::runtime::Runtime,
    contender: Contender,
    scenario: Scenario,
    app: &impl App,
) -> Value {
    const N: usize = 2000;
    let cookie = runtime.block_on(common::cookie_for(contender, app));
    runtime.block_on(common::check(contender, scenario, app, &cookie));
    runtime.block_on(drive(app, requests(scenario, &cookie, 200)));
    let batch = requests(scenario, &cookie, N);
    let (a0, b0) = allocation_snapshot();
    runtime.block_on(drive(app, batch));
    let (a1, b1) = allocation_snapshot();
    json!({
        "allocations": (a1 - a0) as f64 / N as f64,
        "bytes": (b1 - b0) as f64 / N as f64,
    })
}

fn allocations() -> Value {
    let runtime = current_thread();
    let mut out = serde_json::Map::new();
    for contender in Contender::ALL {
        let mut per = serde_json::Map::new();
        for scenario in Scenario::ALL {
            let app = contender.router();
            let counted = count_allocations(&runtime, contender, scenario, &app);
            per.insert(scenario.id().into(), counted);
        }
        out.insert(contender.name().into(), Value::Object(per));
    }
    struct Around<'a>(
        &'a tokio::runtime::Runtime,
        &'a mut serde_json::Map<String, Value>,
    );
    impl common::AroundVisitor for Around<'_> {
        fn visit<S: App>(&mut self, contender: Contender, name: &'static str, app: S) {
            let mut per = serde_json::Map::new();
            for scenario in Scenario::ALL {
                // One store for the five scenarios (the routers above get one each); no
                // scenario depends on what an earlier one stored.
                let app = app.clone();
                per.insert(
                    scenario.id().into(),
                    count_allocations(self.0, contender, scenario, &app),
                );
            }
            self.1.insert(name.into(), Value::Object(per));
        }
    }
    common::visit_around(&mut Around(&runtime, &mut out));
    Value::Object(out)
}

fn store_calls() -> Value {
    const N: u64 = 100;
    let runtime = current_thread();
    let mut out = serde_json::Map::new();
    for contender in [Contender::Sessionbase, Contender::TowerSessions] {
        let calls = Arc::new(Calls::default());
        let app = match contender {
            Contender::Sessionbase => common::sessionbase_router(Counting {
                inner: sessionbase::MemoryStore::new(),
                calls: Arc::clone(&calls),
            }),
            _ => common::tower_sessions_router(TsCounting {
                inner: tower_sessions::MemoryStore::default(),
                calls: Arc::clone(&calls),
            }),
        };
        let mut per = serde_json::Map::new();
        for scenario in Scenario::ALL {
            let cookie = runtime.block_on(common::new_session(&app));
            calls.reset();
            runtime.block_on(drive(&app, requests(scenario, &cookie, N as usize)));
            per.insert(scenario.id().into(), calls.take_per(N));
        }
        out.insert(contender.name().into(), Value::Object(per));
    }
    Value::Object(out)
}

/// Per request of each scenario: store calls, messages the client sent and round trips.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn count_through_proxy<S: SessionStore + Clone>(
    store: S,
    stats: &common::proxy::Stats,
) -> Value {
    const N: u64 = 20;
    let calls = Arc::new(Calls::default());
    let counting = Counting {
        inner: store,
        calls: Arc::clone(&calls),
    };
    let mut out = serde_json::Map::new();
    // f (issue #12) on its own layer: `save_every_request`.
    for scenario in Scenario::ALL.into_iter().chain([Scenario::F]) {
        let app = common::sessionbase_router_for(counting.clone(), scenario);
        let cookie = common::new_session(&app).await;
        common::check(Contender::Sessionbase, scenario, &app, &cookie).await;
        drive(&app, requests(scenario, &cookie, 3)).await;
        stats.take();
        calls.reset();
        drive(&app, requests(scenario, &cookie, N as usize)).await;
        out.insert(
            scenario.id().into(),
            per_request(stats.take(), calls.take_per(N), N),
        );
    }
    Value::Object(out)
}

#[cfg(any(feature = "redis", feature = "postgres"))]
fn per_request(counts: common::proxy::Counts, calls: Value, n: u64) -> Value {
    let messages: serde_json::Map<String, Value> = counts
        .messages
        .into_iter()
        .map(|(k, v)| (k, json!(v as f64 / n as f64)))
        .collect();
    json!({
        "store_calls": calls,
        "messages": messages,
        "round_trips": counts.round_trips as f64 / n as f64,
    })
}

#[cfg(any(feature = "redis", feature = "postgres"))]
fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[cfg(feature = "redis")]
fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

#[cfg(feature = "redis")]
fn redis() -> Value {
    use common::proxy::{self, Protocol, Stats};
    let url = redis_url();
    let prefix = format!("sessionbase-bench-{}:", std::process::id());
    let runtime = multi_thread();
    let result = runtime.block_on(async {
        let (upstream, rewrite) = proxy::split_url(&url);
        let stats = Stats::default();
        let addr = proxy::start(upstream, Protocol::Redis, stats.clone()).await;
        let store = sessionbase::RedisStore::connect(&rewrite(addr))
            .await
            .map_err(|e| e.to_string())?
            .with_prefix(prefix.clone());
        let out = count_through_proxy(store, &stats).await;
        Ok::<_, String>(out)
    });
    runtime.block_on(redis_delete_matching(&url, &format!("{prefix}*")));
    result.unwrap_or_else(|e| json!({ "skipped": format!("Redis at {url}: {e}") }))
}

#[cfg(feature = "redis")]
async fn redis_delete_matching(url: &str, pattern: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    redis_delete(&mut conn, keys).await;
}

#[cfg(feature = "redis")]
async fn redis_delete(conn: &mut redis::aio::MultiplexedConnection, keys: Vec<String>) {
    for chunk in keys.chunks(500) {
        let _: Result<i64, _> = redis::cmd("DEL").arg(chunk).query_async(conn).await;
    }
}

#[cfg(not(feature = "redis"))]
fn redis() -> Value {
    json!({ "skipped": "built without the redis feature" })
}

#[cfg(feature = "postgres")]
fn postgres() -> Value {
    use common::proxy::{self, Protocol, Stats};
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let table = format!("sessionbase_bench_{}", std::process::id());
    let runtime = multi_thread();
    let result = runtime.block_on(async {
        let (upstream, rewrite) = proxy::split_url(&url);
        let stats = Stats::default();
        let addr = proxy::start(upstream, Protocol::Postgres, stats.clone()).await;
        let store = sessionbase::PostgresStore::connect(&rewrite(addr))
            .await
            .map_err(|e| e.to_string())?
            .with_table(&table)
            .map_err(|e| e.to_string())?;
        store.migrate().await.map_err(|e| e.to_string())?;
        let out = count_through_proxy(store.clone(), &stats).await;
        let _ = sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
            .execute(store.pool())
            .await;
        Ok::<_, String>(out)
    });
    result.unwrap_or_else(|e| json!({ "skipped": format!("PostgreSQL at {url}: {e}") }))
}

#[cfg(not(feature = "postgres"))]
fn postgres() -> Value {
    json!({ "skipped": "built without the postgres feature" })
}

/// tower-sessions 0.14 with its Redis store, in its own process (`TS_REDIS_SERVER`), over
/// HTTP through the counting proxy.
#[cfg(feature = "redis")]
fn tower_sessions_redis() -> Value {
    use common::proxy::{self, Protocol, Stats};
    use std::io::BufRead;
    const N: u64 = 20;
    let Some(binary) = std::env::var_os("TS_REDIS_SERVER") else {
        return json!({ "skipped": "TS_REDIS_SERVER not set (benches/report.sh sets it)" });
    };
    let url = redis_url();
    let runtime = multi_thread();
    let cookies_file = common::results_dir().join("ts-redis-calls.cookies");
    let (out, created) = runtime.block_on(async {
        let (upstream, rewrite) = proxy::split_url(&url);
        let stats = Stats::default();
        let addr = proxy::start(upstream, Protocol::Redis, stats.clone()).await;
        let mut child = std::process::Command::new(&binary)
            .arg(&cookies_file)
            .arg("1")
            .env("REDIS_URL", rewrite(addr))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the tower-sessions Redis server");
        let stdout = child.stdout.take().expect("stdout");
        let port: u16 = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .expect("read");
            line.trim()
                .strip_prefix("listening ")
                .expect("listening PORT")
                .parse()
                .expect("port")
        })
        .await
        .expect("join");
        let server: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let cookie = std::fs::read_to_string(&cookies_file).expect("cookies");
        let cookie = cookie.lines().next().expect("a cookie").to_owned();
        let mut created = vec![cookie.clone()];
        let mut out = serde_json::Map::new();
        for scenario in Scenario::ALL {
            let send = |scenario: Scenario| {
                let cookie = scenario.sends_cookie().then_some(cookie.as_str());
                common::http_get(server, scenario.path(), cookie)
            };
            for _ in 0..3 {
                let (status, set) = send(scenario).await;
                assert_eq!(status, 200);
                created.extend(set);
            }
            stats.take();
            for _ in 0..N {
                let (status, set) = send(scenario).await;
                assert_eq!(status, 200);
                created.extend(set);
            }
            let counts = stats.take();
            out.insert(
                scenario.id().into(),
                per_request(counts, json!("not counted"), N),
            );
        }
        let _ = child.kill();
        let _ = child.wait();
        (Value::Object(out), created)
    });
    // tower-sessions keys are the bare session ids.
    runtime.block_on(async {
        if let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(mut conn) = client.get_multiplexed_async_connection().await
        {
            let ids = created
                .iter()
                .filter_map(|c| c.split_once('=').map(|(_, v)| v.to_owned()))
                .collect();
            redis_delete(&mut conn, ids).await;
        }
    });
    out
}

#[cfg(not(feature = "redis"))]
fn tower_sessions_redis() -> Value {
    json!({ "skipped": "built without the redis feature" })
}

/// The loop callgrind measures (`--toggle-collect`), out of line so that its name exists.
#[inline(never)]
fn callgrind_measured_requests(
    runtime: &tokio::runtime::Runtime,
    app: &impl App,
    batch: Vec<Request<Body>>,
) {
    runtime.block_on(drive(app, batch));
}

/// `calls callgrind CONTENDER SCENARIO N`: run under valgrind by [`callgrind`].
fn callgrind_child(contender: &str, scenario: &str, n: usize) {
    let scenario = Scenario::from_id(scenario).expect("scenario");
    if let Some(c) = Contender::from_name(contender) {
        return callgrind_run(c, scenario, n, &c.router());
    }
    struct Around<'a>(&'a str, Scenario, usize);
    impl common::AroundVisitor for Around<'_> {
        fn visit<S: App>(&mut self, contender: Contender, name: &'static str, app: S) {
            if name == self.0 {
                callgrind_run(contender, self.1, self.2, &app);
            }
        }
    }
    common::visit_around(&mut Around(contender, scenario, n));
}

fn callgrind_run(contender: Contender, scenario: Scenario, n: usize, app: &impl App) {
    let runtime = current_thread();
    let cookie = runtime.block_on(common::cookie_for(contender, app));
    runtime.block_on(drive(app, requests(scenario, &cookie, 300)));
    let batch = requests(scenario, &cookie, n);
    callgrind_measured_requests(&runtime, app, batch);
}

fn callgrind() -> Value {
    const N: usize = 2000;
    if std::env::var("SESSIONBASE_BENCH_CALLGRIND").as_deref() == Ok("0") {
        return json!({ "skipped": "SESSIONBASE_BENCH_CALLGRIND=0" });
    }
    let has_valgrind = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_valgrind {
        return json!({ "skipped": "valgrind not installed" });
    }
    let exe = std::env::current_exe().expect("own path");
    let dir = common::results_dir().join("callgrind");
    std::fs::create_dir_all(&dir).expect("callgrind directory");
    let mut out = serde_json::Map::new();
    let names = Contender::ALL
        .iter()
        .map(|c| c.name())
        .chain(common::AROUND);
    for name in names {
        let mut per = serde_json::Map::new();
        for scenario in Scenario::ALL {
            let file = dir.join(format!("{name}.{}.out", scenario.id()));
            let status = std::process::Command::new("valgrind")
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", file.display()))
                .arg("--toggle-collect=*callgrind_measured_requests*")
                .arg(&exe)
                .args(["callgrind", name, scenario.id(), &N.to_string()])
                .stderr(std::process::Stdio::null())
                .status()
                .expect("run valgrind");
            assert!(status.success(), "callgrind run failed");
            let text = std::fs::read_to_string(&file).expect("callgrind output");
            let total: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix("totals: ").or(l.strip_prefix("summary: ")))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .expect("callgrind totals");
            per.insert(scenario.id().into(), json!(total as f64 / N as f64));
        }
        out.insert(name.into(), Value::Object(per));
    }
    Value::Object(out)
}

/// Whether the section `name` runs: `SESSIONBASE_BENCH_CALLS` lists the ones to run, by their
/// key in `calls.json` and separated by commas (`postgres,redis`, say); unset, all run.
fn selected(name: &str) -> bool {
    std::env::var("SESSIONBASE_BENCH_CALLS")
        .map_or(true, |list| list.split(',').any(|s| s.trim() == name))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("callgrind") {
        let n = args[4].parse().expect("N");
        return callgrind_child(&args[2], &args[3], n);
    }
    if common::invoked_as_test() {
        return;
    }
    type Section = (&'static str, &'static str, fn() -> Value);
    let sections: [Section; 6] = [
        ("store_calls", "store calls", store_calls),
        ("allocations", "allocations", allocations),
        ("redis", "Redis round trips", redis),
        (
            "tower_sessions_redis",
            "tower-sessions Redis round trips",
            tower_sessions_redis,
        ),
        ("postgres", "PostgreSQL round trips", postgres),
        ("callgrind", "callgrind", callgrind),
    ];
    let mut out = serde_json::Map::new();
    for (name, label, section) in sections {
        if selected(name) {
            eprintln!("{label}…");
            out.insert(name.into(), section());
        }
    }
    let path = common::results_dir().join("calls.json");
    let text = serde_json::to_string_pretty(&Value::Object(out)).expect("json");
    std::fs::write(&path, &text).expect("write calls.json");
    println!("{text}");
}
