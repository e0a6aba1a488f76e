//! Soak test (a binary, not a unit test): drives many requests over loopback against an
//! in-process app, MemoryStore or Redis, with a mix of new, read, write, cycle and flush, and
//! checks every answer against what the virtual user's session must hold.
//!
//! ```text
//! cargo run --release --example soak --all-features -- memory
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --release --example soak --all-features -- redis
//!     [--requests 50000] [--concurrency 32] [--warmup 5000] [--max-growth 0.20]
//! ```
//!
//! The same settings can come from `SOAK_STORE`, `SOAK_REQUESTS`, `SOAK_CONCURRENCY`,
//! `SOAK_WARMUP` and `SOAK_MAX_GROWTH`.
//!
//! Each virtual user keeps its own cookie and a model of its session: `new` starts a session
//! holding a unique `uid` and `n = 0`; `read` must see exactly that; `write` increments `n`;
//! `cycle` must change the key and keep the data; `flush` must empty the session and delete
//! the cookie; `stale` sends a key the user cycled or flushed away, which must be no session
//! (R4: the old key is dead on the server). Any other answer, any status but 200, a
//! transport error, a request without an answer in 10 s, or someone else's `uid` (a crossed
//! session) is an error.
//!
//! At the end it prints the error count (must be 0), latency percentiles, the resident memory
//! of the process (server and client: `VmRSS` from `/proc/self/status`) at the start, after
//! the warm-up and at the end (must not grow by more than `--max-growth` after the warm-up),
//! and how many records the store still holds (must be exactly the live sessions: cycle and
//! flush leave nothing behind). It exits non-zero when a check fails.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sessionbase::{MemoryStore, RedisStore, Session, SessionLayer, SessionStore};

/// The cookie the layer uses (Django's default).
const COOKIE: &str = "sessionid";
/// A request with no answer after this long is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many error messages are kept to show.
const SHOWN_ERRORS: usize = 20;

// ----- settings -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Memory,
    Redis,
}

struct Settings {
    store: StoreKind,
    requests: usize,
    concurrency: usize,
    warmup: usize,
    max_growth: f64,
    redis_url: String,
}

fn usage() -> String {
    "usage: soak <memory|redis> [--requests N] [--concurrency N] [--warmup N] \
     [--max-growth FRACTION]  (REDIS_URL for redis; SOAK_* variables work too)"
        .to_owned()
}

fn settings() -> Result<Settings, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut store = env("SOAK_STORE");
    let mut requests = env("SOAK_REQUESTS");
    let mut concurrency = env("SOAK_CONCURRENCY");
    let mut warmup = env("SOAK_WARMUP");
    let mut max_growth = env("SOAK_MAX_GROWTH");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--requests" | "-n" => &mut requests,
            "--concurrency" | "-c" => &mut concurrency,
            "--warmup" => &mut warmup,
            "--max-growth" => &mut max_growth,
            "--help" | "-h" => return Err(usage()),
            other if !other.starts_with('-') => {
                store = Some(other.to_owned());
                continue;
            }
            other => return Err(format!("unknown option {other}\n{}", usage())),
        };
        *slot = Some(args.next().ok_or_else(|| format!("{arg} needs a value"))?);
    }
    let number = |value: Option<String>, default: usize, what: &str| match value {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{what} must be a positive number, not {v:?}")),
    };
    let store = match store.as_deref().unwrap_or("memory") {
        "memory" => StoreKind::Memory,
        "redis" => StoreKind::Redis,
        other => return Err(format!("unknown store {other:?}\n{}", usage())),
    };
    let requests = number(requests, 50_000, "--requests")?;
    let concurrency = number(concurrency, 32, "--concurrency")?;
    let warmup = number(warmup, (requests / 10).max(1), "--warmup")?.min(requests);
    let max_growth = match max_growth {
        None => 0.20,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|g| *g >= 0.0)
            .ok_or_else(|| format!("--max-growth must be a fraction, not {v:?}"))?,
    };
    Ok(Settings {
        store,
        requests,
        concurrency,
        warmup,
        max_growth,
        redis_url: env("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned()),
    })
}

// ----- the app -----

#[derive(Deserialize)]
struct NewParams {
    uid: String,
}

/// The session's items as a JSON object.
fn items(session: &Session) -> String {
    let map: Map<String, Value> = session.items().into_iter().collect();
    Value::Object(map).to_string()
}

/// A new session; the request carries no cookie, so the session must be empty.
async fn new_session(session: Session, Query(p): Query<NewParams>) -> String {
    if !session.is_empty() {
        return format!("not empty: {}", items(&session));
    }
    session.insert_value("uid", json!(p.uid));
    session.insert_value("n", json!(0));
    items(&session)
}

async fn read(session: Session) -> String {
    items(&session)
}

async fn write(session: Session) -> String {
    let n = session.get_value("n").and_then(|n| n.as_i64()).unwrap_or(0);
    session.insert_value("n", json!(n + 1));
    items(&session)
}

async fn cycle(session: Session) -> Result<String, sessionbase::Error> {
    session.cycle_key().await?;
    Ok(items(&session))
}

async fn flush(session: Session) -> Result<String, sessionbase::Error> {
    session.flush().await?;
    Ok(items(&session))
}

fn app<S: SessionStore>(store: S) -> Router {
    Router::new()
        .route("/new", get(new_session))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/cycle", get(cycle))
        .route("/flush", get(flush))
        .layer(SessionLayer::new(store))
}

// ----- the load -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Op {
    New,
    Read,
    Write,
    Cycle,
    Flush,
    Stale,
}

const OPS: [Op; 6] = [
    Op::New,
    Op::Read,
    Op::Write,
    Op::Cycle,
    Op::Flush,
    Op::Stale,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Read => "read",
            Self::Write => "write",
            Self::Cycle => "cycle",
            Self::Flush => "flush",
            Self::Stale => "stale",
        }
    }
}

/// What every virtual user shares: the request tickets, the per-request records
/// (allocated and touched before the start, so that they do not count as growth) and the
/// errors.
struct Shared {
    base: String,
    client: reqwest::Client,
    total: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// Latency of request `i` in microseconds.
    latency_us: Vec<AtomicU32>,
    /// `Op` of request `i`.
    op: Vec<AtomicU8>,
    errors: AtomicUsize,
    messages: Mutex<Vec<String>>,
    /// The run id, so that `uid`s are unique across runs on a shared Redis.
    run: String,
}

impl Shared {
    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::SeqCst);
        let mut messages = self.messages.lock().expect("messages");
        if messages.len() < SHOWN_ERRORS {
            messages.push(message);
        }
    }
}

/// What one answer carried.
struct Answer {
    status: u16,
    /// The `sessionid` Set-Cookie headers: `Some(value)` for a set, `None` for a removal.
    cookies: Vec<Option<String>>,
    body: String,
}

/// One virtual user: its cookie and what its session must hold.
struct User {
    id: usize,
    key: Option<String>,
    uid: String,
    n: i64,
    /// A key this user cycled or flushed away: dead on the server.
    stale: Option<String>,
    seq: u64,
    rng: u64,
}

impl User {
    fn new(id: usize) -> Self {
        Self {
            id,
            key: None,
            uid: String::new(),
            n: 0,
            stale: None,
            seq: 0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next operation: `new` without a session; otherwise read 40 %, write 30 %,
    /// cycle 10 %, flush 10 %, and a stale key 10 % (a read when there is none yet).
    fn pick(&mut self) -> Op {
        if self.key.is_none() {
            return Op::New;
        }
        match self.random() % 100 {
            0..40 => Op::Read,
            40..70 => Op::Write,
            70..80 => Op::Cycle,
            80..90 => Op::Flush,
            _ if self.stale.is_some() => Op::Stale,
            _ => Op::Read,
        }
    }

    fn expected(&self, n: i64) -> Value {
        json!({"uid": self.uid, "n": n})
    }

    /// Sends `op` and checks the answer; `Err` says what was wrong.
    async fn step(&mut self, op: Op, shared: &Shared) -> Result<(), String> {
        let (path, cookie) = match op {
            Op::New => {
                self.seq += 1;
                self.uid = format!("{}-u{}-s{}", shared.run, self.id, self.seq);
                (format!("/new?uid={}", self.uid), None)
            }
            Op::Stale => ("/read".to_owned(), self.stale.clone()),
            Op::Read => ("/read".to_owned(), self.key.clone()),
            Op::Write => ("/write".to_owned(), self.key.clone()),
            Op::Cycle => ("/cycle".to_owned(), self.key.clone()),
            Op::Flush => ("/flush".to_owned(), self.key.clone()),
        };
        let answer = send(shared, &path, cookie.as_deref()).await?;
        if answer.status != 200 {
            return Err(format!("status {}: {:?}", answer.status, answer.body));
        }
        let body: Value = serde_json::from_str(&answer.body)
            .map_err(|_| format!("body is not JSON: {:?}", answer.body))?;
        if let Some(uid) = body.get("uid").and_then(Value::as_str)
            && uid != self.uid
        {
            return Err(format!("CROSSED session: got {uid}, expected {}", self.uid));
        }
        let set = |answer: &Answer| -> Result<Option<Option<String>>, String> {
            match answer.cookies.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(one.clone())),
                many => Err(format!("{} session cookies: {many:?}", many.len())),
            }
        };
        match op {
            Op::New => {
                if body != self.expected(0) {
                    return Err(format!("body {body}, expected {}", self.expected(0)));
                }
                let Some(Some(key)) = set(&answer)? else {
                    return Err(format!("no session cookie: {:?}", answer.cookies));
                };
                self.key = Some(key);
                self.n = 0;
            }
            Op::Read => {
                if body != self.expected(self.n) {
                    return Err(format!("body {body}, expected {}", self.expected(self.n)));
                }
                if let Some(cookie) = set(&answer)? {
                    return Err(format!("a read set the cookie: {cookie:?}"));
                }
            }
            Op::Write => {
                if body != self.expected(self.n + 1) {
                    let expected = self.expected(self.n + 1);
                    return Err(format!("body {body}, expected {expected}"));
                }
                if set(&answer)? != Some(self.key.clone()) {
                    return Err(format!(
                        "cookie {:?}, expected the same key",
                        answer.cookies
                    ));
                }
                self.n += 1;
            }
            Op::Cycle => {
                if body != self.expected(self.n) {
                    return Err(format!("body {body}, expected {}", self.expected(self.n)));
                }
                let Some(Some(key)) = set(&answer)? else {
                    return Err(format!("no new cookie: {:?}", answer.cookies));
                };
                if Some(&key) == self.key.as_ref() {
                    return Err("the key did not change".to_owned());
                }
                self.stale = self.key.replace(key);
            }
            Op::Flush => {
                if body != json!({}) {
                    return Err(format!("body {body} after a flush"));
                }
                if set(&answer)? != Some(None) {
                    return Err(format!("cookie not deleted: {:?}", answer.cookies));
                }
                self.stale = self.key.take();
            }
            Op::Stale => {
                if body != json!({}) {
                    return Err(format!("a dead key still loads: {body}"));
                }
                if set(&answer)? != Some(None) {
                    return Err(format!(
                        "dead key's cookie not deleted: {:?}",
                        answer.cookies
                    ));
                }
            }
        }
        Ok(())
    }

    async fn run(mut self, shared: Arc<Shared>) -> Self {
        loop {
            let ticket = shared.next.fetch_add(1, Ordering::SeqCst);
            if ticket >= shared.total {
                return self;
            }
            let op = self.pick();
            let start = Instant::now();
            let result = self.step(op, &shared).await;
            let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
            shared.latency_us[ticket].store(us, Ordering::Relaxed);
            shared.op[ticket].store(op as u8, Ordering::Relaxed);
            if let Err(message) = result {
                shared.error(format!("user {} {}: {message}", self.id, op.name()));
                // Nothing is known of the session any more: start a new one.
                self.key = None;
                self.stale = None;
            }
            shared.done.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn send(shared: &Shared, path: &str, cookie: Option<&str>) -> Result<Answer, String> {
    let mut request = shared.client.get(format!("{}{path}", shared.base));
    if let Some(key) = cookie {
        request = request.header(reqwest::header::COOKIE, format!("{COOKIE}={key}"));
    }
    let answer = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let cookies = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_session_cookie)
            .collect();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>(Answer {
            status,
            cookies,
            body,
        })
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("transport error: {e}")),
        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
    }
}

/// A `sessionid` Set-Cookie: `Some(Some(value))` for a set, `Some(None)` for a removal
/// (empty value, `Max-Age=0`), `None` for another cookie.
fn parse_session_cookie(header: &str) -> Option<Option<String>> {
    let mut parts = header.split(';').map(str::trim);
    let (name, value) = parts.next()?.split_once('=')?;
    if name != COOKIE {
        return None;
    }
    let removal =
        (value.is_empty() || value == "\"\"") && parts.any(|p| p.eq_ignore_ascii_case("Max-Age=0"));
    Some((!removal).then(|| value.to_owned()))
}

// ----- measurements -----

/// The resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Duration::from_micros(u64::from(sorted[rank.clamp(1, sorted.len()) - 1]))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// How many records the store holds (for Redis, under the run's prefix).
enum Counter {
    Memory(MemoryStore),
    Redis { url: String, prefix: String },
}

impl Counter {
    async fn records(&self) -> Result<usize, String> {
        match self {
            Self::Memory(store) => Ok(store.len()),
            Self::Redis { url, prefix } => {
                let keys = redis_keys(url, prefix).await?;
                Ok(keys.len())
            }
        }
    }

    /// Removes what the run left in Redis.
    async fn clean_up(&self) -> Result<(), String> {
        let Self::Redis { url, prefix } = self else {
            return Ok(());
        };
        let keys = redis_keys(url, prefix).await?;
        if keys.is_empty() {
            return Ok(());
        }
        let mut connection = redis_connection(url).await?;
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<i64>(&mut connection)
            .await
            .map(drop)
            .map_err(|e| format!("DEL: {e}"))
    }
}

async fn redis_connection(url: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    redis::Client::open(url)
        .map_err(|e| format!("REDIS_URL: {e}"))?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("connect to Redis: {e}"))
}

async fn redis_keys(url: &str, prefix: &str) -> Result<Vec<String>, String> {
    let mut connection = redis_connection(url).await?;
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .map_err(|e| format!("SCAN: {e}"))?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

// ----- main -----

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match soak(settings).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("soak: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs the soak; `Ok(false)` when a check failed.
async fn soak(settings: Settings) -> Result<bool, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let run = format!("soak{}x{nanos:x}", std::process::id());
    let (app, counter) = match settings.store {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            (app(store.clone()), Counter::Memory(store))
        }
        StoreKind::Redis => {
            let prefix = format!("sessionbase-{run}:");
            let store = RedisStore::connect(&settings.redis_url)
                .await
                .map_err(|e| format!("connect to Redis (REDIS_URL): {e}"))?
                .with_prefix(prefix.clone());
            let counter = Counter::Redis {
                url: settings.redis_url.clone(),
                prefix,
            };
            (app(store), counter)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind a loopback port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(settings.concurrency)
        .build()
        .map_err(|e| format!("build the HTTP client: {e}"))?;
    let total = settings.requests;
    // Touch every slot now, so that the records do not show up as growth later.
    let latency_us: Vec<AtomicU32> = (0..total).map(|_| AtomicU32::new(u32::MAX)).collect();
    let op: Vec<AtomicU8> = (0..total).map(|_| AtomicU8::new(u8::MAX)).collect();
    let shared = Arc::new(Shared {
        base: format!("http://{addr}"),
        client,
        total,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        latency_us,
        op,
        errors: AtomicUsize::new(0),
        messages: Mutex::new(Vec::new()),
        run,
    });

    println!(
        "soak: {total} requests, {} virtual users, store {:?}, on http://{addr}",
        settings.concurrency, settings.store
    );
    let rss_start = rss_kib();
    let started = Instant::now();

    // RSS after the warm-up and at every tenth of the run.
    let finished = Arc::new(AtomicBool::new(false));
    let monitor = {
        let shared = Arc::clone(&shared);
        let finished = Arc::clone(&finished);
        let warmup = settings.warmup;
        tokio::spawn(async move {
            let mut warm = None;
            let mut profile = Vec::new();
            let mut next_tenth = 1;
            while !finished.load(Ordering::SeqCst) {
                let done = shared.done.load(Ordering::SeqCst);
                if warm.is_none() && done >= warmup {
                    warm = Some(rss_kib());
                }
                while next_tenth <= 10 && done >= total * next_tenth / 10 {
                    profile.push((next_tenth * 10, rss_kib()));
                    next_tenth += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (warm, profile)
        })
    };

    let users: Vec<_> = (0..settings.concurrency)
        .map(|id| tokio::spawn(User::new(id).run(Arc::clone(&shared))))
        .collect();
    let mut live_sessions = 0;
    for user in users {
        let user = user
            .await
            .map_err(|e| format!("a virtual user failed: {e}"))?;
        live_sessions += usize::from(user.key.is_some());
    }
    let elapsed = started.elapsed();
    let rss_end = rss_kib();
    finished.store(true, Ordering::SeqCst);
    let (rss_warm, profile) = monitor.await.map_err(|e| e.to_string())?;
    let rss_warm = rss_warm.unwrap_or(rss_start);

    let records = counter.records().await;
    if let Err(e) = counter.clean_up().await {
        eprintln!("soak: could not remove the run's Redis keys: {e}");
    }
    server.abort();

    // ----- report -----
    let errors = shared.errors.load(Ordering::SeqCst);
    let mut all: Vec<u32> = Vec::with_capacity(total);
    let mut by_op: Vec<Vec<u32>> = vec![Vec::new(); OPS.len()];
    for (latency, op) in shared.latency_us.iter().zip(&shared.op) {
        let latency = latency.load(Ordering::Relaxed);
        let op = usize::from(op.load(Ordering::Relaxed));
        if latency == u32::MAX || op >= OPS.len() {
            continue;
        }
        all.push(latency);
        by_op[op].push(latency);
    }
    all.sort_unstable();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "requests   {} in {:.2} s ({:.0} req/s), {} virtual users, store {:?}",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        settings.concurrency,
        settings.store
    );
    let mut mix = String::new();
    for (op, latencies) in OPS.iter().zip(&mut by_op) {
        latencies.sort_unstable();
        let _ = write!(
            mix,
            "{} {} (p99 {}), ",
            op.name(),
            latencies.len(),
            ms(percentile(latencies, 99.0))
        );
    }
    let _ = writeln!(report, "mix        {}", mix.trim_end_matches(", "));
    let _ = writeln!(report, "errors     {errors}");
    for message in shared.messages.lock().expect("messages").iter() {
        let _ = writeln!(report, "  {message}");
    }
    let _ = writeln!(
        report,
        "latency    p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 90.0)),
        ms(percentile(&all, 99.0)),
        ms(percentile(&all, 99.9)),
        ms(percentile(&all, 100.0)),
    );
    let growth = rss_end as f64 / rss_warm.max(1) as f64 - 1.0;
    let _ = writeln!(
        report,
        "RSS        start {rss_start} KiB, after the warm-up ({} requests) {rss_warm} KiB, \
         end {rss_end} KiB: {:+.1} % since the warm-up (limit {:+.0} %)",
        settings.warmup,
        growth * 100.0,
        settings.max_growth * 100.0
    );
    let profile: Vec<String> = profile
        .iter()
        .map(|(pct, kib)| format!("{pct}%: {kib}"))
        .collect();
    let _ = writeln!(report, "RSS (KiB)  {}", profile.join(", "));
    let records_ok = match &records {
        Ok(n) => {
            let _ = writeln!(
                report,
                "records    {n} left in the store, {live_sessions} live sessions"
            );
            *n == live_sessions
        }
        Err(e) => {
            let _ = writeln!(report, "records    could not count: {e}");
            false
        }
    };
    let mut failed = Vec::new();
    if errors > 0 {
        failed.push(format!("{errors} errors"));
    }
    if all.len() != total {
        failed.push(format!("{} of {total} requests recorded", all.len()));
    }
    if growth > settings.max_growth {
        failed.push(format!(
            "memory grew {:.1} % after the warm-up",
            growth * 100.0
        ));
    }
    if !records_ok {
        failed.push("the store holds records no session owns (or could not be counted)".into());
    }
    if failed.is_empty() {
        let _ = writeln!(report, "result     PASS");
    } else {
        let _ = writeln!(report, "result     FAIL: {}", failed.join("; "));
    }
    print!("{report}");
    Ok(failed.is_empty())
}
