//! Faults in the store, for real: a private Redis or PostgreSQL server that the test starts,
//! kills (or pauses) in the middle of a load of mixed requests, and starts again, with the
//! same app serving throughout.
//!
//! What each test checks (the STORE-ERROR outcome and R7 of the security requirements):
//! - while the store is down, every request that takes the session answers 503 (or 500),
//!   without `Set-Cookie`, and the cause is logged at ERROR;
//! - requests whose handler never takes the session keep answering 200, cookie or not;
//! - no request hangs (each one has a liveness guard), no task panics, every virtual user
//!   finishes;
//! - `store_timeout` turns a hung store (a paused Redis) into a 503 within about the timeout;
//! - once the server is back, requests succeed again without rebuilding the app, and every
//!   session a virtual user reads holds exactly what it wrote (a lost or crossed session is
//!   caught).
//!
//! The shared servers of the other suites (127.0.0.1:6379 and :5432) are never touched: each
//! test runs its own `redis-server` child, or its own PostgreSQL cluster (`initdb` into a
//! temporary directory, as the `postgres` user when running as root), on a free port.
//! Without `redis-server` or the PostgreSQL server tools a test says so on stderr and passes,
//! unless `SESSIONBASE_REQUIRE_ALL_SUITES` is set (as in CI), where it fails.
//!
//! The tests share their process with the other suites: the log checks select the lines of
//! this module's apps (each runs its requests in a span naming its test), and the panic hook
//! counts only panics on the threads of this module's runtimes (named [`WORKER`]).

#![cfg(all(feature = "axum", any(feature = "redis", feature = "postgres")))]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sessionbase::{Error, Session, SessionConfig, SessionLayer, SessionStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::common::{
    SetCookie, client, free_port, is_generated_key, note, set_cookies, skip, spawn,
};

/// The `store_timeout` of every app here.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// Liveness guard: a request with no answer after this long counts as stuck.
const GUARD: Duration = Duration::from_secs(5);
/// How long the load runs before the fault, during it, and after the recovery.
const BEFORE: Duration = Duration::from_millis(1000);
const OUTAGE: Duration = Duration::from_millis(2500);
const AFTER: Duration = Duration::from_millis(1000);
/// The longest the app may take to serve again once the server is back.
const RECOVERY: Duration = Duration::from_secs(10);
/// Virtual users in the background load.
const USERS: usize = 8;

// ----- phases of a test -----

/// The server is up.
const UP: u32 = 0;
/// The fault is being applied (`pg_ctl stop` takes a while): nothing is certain.
const BREAKING: u32 = 1;
/// The server is down (killed, stopped or paused), from the moment that is certain until
/// the test starts bringing it back.
const DOWN: u32 = 2;
/// The server is being started or resumed: it may answer before the test knows.
const RESTORING: u32 = 3;
/// The server is back (accepting connections again).
const BACK: u32 = 4;

// ----- runtimes, logs and panics -----

/// The name of the threads of this module's runtimes: the panic hook counts panics on these
/// only, not on the runtimes of the other suites of the binary.
const WORKER: &str = "faults-worker";

/// Runs a test on a multi-thread runtime of its own with two workers, as
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` would, its threads named
/// [`WORKER`].
fn run(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(WORKER)
        .enable_all()
        .build()
        .expect("build a runtime")
        .block_on(test);
}

/// Everything logged at WARN and above in the process (this module's apps and any other
/// thread without a subscriber of its own).
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// Panics on the threads of this module's runtimes (the servers and the load), which would
/// otherwise only abort a connection.
static WORKER_PANICS: AtomicUsize = AtomicUsize::new(0);

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the logs and counts worker panics, once per process.
fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(|| LogWriter)
            .try_init();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(WORKER) {
                WORKER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// The captured log lines of the app of test `test` (its requests run in a span that names
/// it).
fn logs_of(test: &str) -> Vec<String> {
    let tag = format!("test={test}}}");
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(PoisonError::into_inner))
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_owned)
        .collect()
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

/// Never takes the session.
async fn health() -> &'static str {
    "ok"
}

/// A new session: `uid` and `n = 0`.
async fn new_session(session: Session, Query(p): Query<NewParams>) -> String {
    session.insert_value("uid", json!(p.uid));
    session.insert_value("n", json!(0));
    items(&session)
}

async fn read(session: Session) -> String {
    items(&session)
}

/// `n += 1`.
async fn write(session: Session) -> String {
    let n = session.get_value("n").and_then(|n| n.as_i64()).unwrap_or(0);
    session.insert_value("n", json!(n + 1));
    items(&session)
}

/// Reads the session, or says which error the extractor gave (`x-store-error`).
async fn why(session: Result<Session, Error>) -> Response {
    match session {
        Ok(session) => items(&session).into_response(),
        Err(error) => {
            let kind = match &error {
                Error::StoreTimeout(_) => "timeout",
                Error::StoreUnavailable(_) => "unavailable",
                Error::Store(_) => "store",
                _ => "other",
            };
            (error.status(), [("x-store-error", kind)]).into_response()
        }
    }
}

/// The app under test, with `store_timeout` = [`STORE_TIMEOUT`]. Every request runs in an
/// ERROR-level span `fault{test=<test>}`, so its log lines can be told apart.
fn app<S: SessionStore>(store: S, test: &'static str) -> Router {
    let config = SessionConfig::default().with_store_timeout(Some(STORE_TIMEOUT));
    let layer = SessionLayer::new(store)
        .with_config(config)
        .expect("valid config");
    Router::new()
        .route("/health", get(health))
        .route("/peek", get(health))
        .route("/new", get(new_session))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/why", get(why))
        .layer(layer)
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                next.run(request)
                    .instrument(tracing::error_span!("fault", test = %test))
            },
        ))
}

// ----- one request -----

/// A response, read whole.
struct Answer {
    status: u16,
    cookies: Vec<SetCookie>,
    kind: Option<String>,
    body: String,
    took: Duration,
}

/// GET `base + path` with the session cookie when given; `Err` for a transport error, or
/// `Ok(None)` when no answer came within [`GUARD`].
async fn send(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: Option<&str>,
) -> Result<Option<Answer>, reqwest::Error> {
    let mut request = client.get(format!("{base}{path}"));
    if let Some(key) = cookie {
        request = request.header(reqwest::header::COOKIE, format!("sessionid={key}"));
    }
    let start = Instant::now();
    let answer = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let cookies = set_cookies(&response);
        let kind = response
            .headers()
            .get("x-store-error")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await?;
        Ok(Answer {
            status,
            cookies,
            kind,
            body,
            took: start.elapsed(),
        })
    };
    match tokio::time::timeout(GUARD, answer).await {
        Ok(answer) => answer.map(Some),
        Err(_) => Ok(None),
    }
}

/// A request of the test itself, which must be answered.
async fn probe(base: &str, path: &str, cookie: Option<&str>) -> Answer {
    send(&client(), base, path, cookie)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: transport error {e}"))
        .unwrap_or_else(|| panic!("GET {path}: no answer within {GUARD:?}"))
}

/// The session cookie a response set (not a removal).
fn new_key(answer: &Answer) -> Option<String> {
    answer
        .cookies
        .iter()
        .find(|c| c.name == "sessionid" && !c.is_removal())
        .map(|c| c.value.clone())
}

/// Creates a session holding `uid` through the app; returns its key.
async fn witness(base: &str, uid: &str) -> String {
    let answer = probe(base, &format!("/new?uid={uid}"), None).await;
    assert_eq!(
        answer.status, 200,
        "creating witness {uid}: {}",
        answer.body
    );
    let key = new_key(&answer).expect("the witness's cookie");
    assert!(is_generated_key(&key), "{key}");
    key
}

// ----- the background load -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// No cookie, no session.
    Health,
    /// The user's cookie, to a route that never takes the session.
    Peek,
    /// No cookie: a new session with a unique `uid`.
    New,
    /// Reads the session: must be exactly the user's.
    Read,
    /// Increments `n`.
    Write,
}

impl Op {
    fn takes_session(self) -> bool {
        matches!(self, Self::New | Self::Read | Self::Write)
    }
}

#[derive(Debug)]
enum Outcome {
    /// 200 with the expected answer.
    Ok,
    /// 200 with the wrong answer (a lost or crossed session, or a missing cookie).
    Wrong(String),
    /// 503 or 500; whether it carried `Set-Cookie`.
    StoreError(u16, bool),
    /// Any other status.
    Status(u16),
    Transport(String),
    /// No answer within [`GUARD`].
    Stuck,
}

struct Sample {
    op: Op,
    phase_sent: u32,
    phase_done: u32,
    sent: Instant,
    took: Duration,
    outcome: Outcome,
}

/// What a virtual user's session must hold.
struct Model {
    key: String,
    uid: String,
    n: i64,
}

/// A few virtual users, each with its own session, sending mixed requests until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU32>,
    samples: Arc<Mutex<Vec<Sample>>>,
    keys: Arc<Mutex<HashSet<String>>>,
    users: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, users: usize) -> Self {
        let load = Self {
            stop: Arc::default(),
            phase: Arc::new(AtomicU32::new(UP)),
            samples: Arc::default(),
            keys: Arc::default(),
            users: Vec::new(),
        };
        let users = (0..users)
            .map(|id| {
                let user = User {
                    id,
                    base: base.to_owned(),
                    client: client(),
                    stop: Arc::clone(&load.stop),
                    phase: Arc::clone(&load.phase),
                    samples: Arc::clone(&load.samples),
                    keys: Arc::clone(&load.keys),
                };
                tokio::spawn(user.run())
            })
            .collect();
        Self { users, ..load }
    }

    fn set_phase(&self, phase: u32) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Stops the users; every one must finish (none is stuck).
    async fn finish(self) -> (Vec<Sample>, HashSet<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for (id, user) in self.users.into_iter().enumerate() {
            match tokio::time::timeout(GUARD * 2, user).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("virtual user {id} failed: {e}"),
                Err(_) => panic!("virtual user {id} is stuck"),
            }
        }
        let samples = std::mem::take(&mut *self.samples.lock().expect("samples"));
        let keys = std::mem::take(&mut *self.keys.lock().expect("keys"));
        (samples, keys)
    }
}

struct User {
    id: usize,
    base: String,
    client: reqwest::Client,
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU32>,
    samples: Arc<Mutex<Vec<Sample>>>,
    keys: Arc<Mutex<HashSet<String>>>,
}

impl User {
    async fn run(self) {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (self.id as u64 + 1).wrapping_mul(0xbf58_476d);
        let mut model: Option<Model> = None;
        // The last key this user held, still sent to the route without the session.
        let mut last_key: Option<String> = None;
        let mut model_phase = UP;
        let mut seq = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            let phase_sent = self.phase.load(Ordering::SeqCst);
            if phase_sent != model_phase {
                // Across a fault nothing is known of the stored session: start afresh.
                model = None;
                model_phase = phase_sent;
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let op = match (&model, rng % 10) {
                (_, 0) => Op::Health,
                (_, 1) => Op::Peek,
                (None, _) => Op::New,
                (Some(_), 2..=5) => Op::Read,
                (Some(_), _) => Op::Write,
            };
            seq += 1;
            let uid = format!("vu{}-{seq}", self.id);
            let (path, cookie) = match op {
                Op::Health => ("/health".to_owned(), None),
                Op::Peek => ("/peek".to_owned(), last_key.as_deref()),
                Op::New => (format!("/new?uid={uid}"), None),
                Op::Read => ("/read".to_owned(), model.as_ref().map(|m| m.key.as_str())),
                Op::Write => ("/write".to_owned(), model.as_ref().map(|m| m.key.as_str())),
            };
            let sent = Instant::now();
            let result = send(&self.client, &self.base, &path, cookie).await;
            let took = sent.elapsed();
            let phase_done = self.phase.load(Ordering::SeqCst);
            let stable = phase_sent == phase_done;
            let outcome = match result {
                Err(e) => Outcome::Transport(e.to_string()),
                Ok(None) => Outcome::Stuck,
                Ok(Some(answer)) => match answer.status {
                    200 => {
                        if let Some(key) = new_key(&answer) {
                            self.keys.lock().expect("keys").insert(key);
                        }
                        self.judge(op, &uid, &mut model, &answer, stable)
                    }
                    500 | 503 => {
                        model = None;
                        Outcome::StoreError(answer.status, !answer.cookies.is_empty())
                    }
                    other => Outcome::Status(other),
                },
            };
            if let Some(m) = &model {
                last_key = Some(m.key.clone());
            }
            self.samples.lock().expect("samples").push(Sample {
                op,
                phase_sent,
                phase_done,
                sent,
                took,
                outcome,
            });
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }

    /// Checks a 200 against the model and moves the model on. Across a phase change the
    /// stored session may be gone, so only "never someone else's session" is checked.
    fn judge(
        &self,
        op: Op,
        uid: &str,
        model: &mut Option<Model>,
        answer: &Answer,
        stable: bool,
    ) -> Outcome {
        let body: Value = match serde_json::from_str(&answer.body) {
            Ok(body) => body,
            Err(_) if !op.takes_session() && answer.body == "ok" => {
                return if answer.cookies.is_empty() {
                    Outcome::Ok
                } else {
                    Outcome::Wrong(format!(
                        "{op:?} never takes the session but set {:?}",
                        answer.cookies
                    ))
                };
            }
            Err(_) => return Outcome::Wrong(format!("{op:?}: unexpected body {:?}", answer.body)),
        };
        let mine = format!("vu{}-", self.id);
        if let Some(owner) = body.get("uid").and_then(Value::as_str)
            && !owner.starts_with(&mine)
        {
            return Outcome::Wrong(format!("{op:?}: crossed session, got {owner}'s"));
        }
        match op {
            Op::Health | Op::Peek => unreachable!("answered ok above"),
            Op::New => {
                if body != json!({"uid": uid, "n": 0}) {
                    return Outcome::Wrong(format!("New: body {body}"));
                }
                let Some(key) = new_key(answer) else {
                    return Outcome::Wrong("New: no session cookie".into());
                };
                *model = Some(Model {
                    key,
                    uid: uid.to_owned(),
                    n: 0,
                });
                Outcome::Ok
            }
            Op::Read | Op::Write => {
                let Some(m) = model.as_mut() else {
                    unreachable!("Read and Write need a session")
                };
                if !stable {
                    *model = None;
                    return Outcome::Ok;
                }
                let n = if op == Op::Write { m.n + 1 } else { m.n };
                if body != json!({"uid": m.uid, "n": n}) {
                    return Outcome::Wrong(format!(
                        "{op:?}: expected uid {} n {n}, got {body}",
                        m.uid
                    ));
                }
                if op == Op::Write && new_key(answer).as_deref() != Some(m.key.as_str()) {
                    return Outcome::Wrong(format!("Write: cookie {:?}", answer.cookies));
                }
                m.n = n;
                Outcome::Ok
            }
        }
    }
}

/// Checks the samples of a whole test; returns a one-line summary.
fn evaluate(test: &str, samples: &[Sample], recovered_at: Instant) -> String {
    let mut problems = Vec::new();
    let mut counts = BTreeMap::<&str, usize>::new();
    let mut down_took = Vec::new();
    let mut down_statuses = BTreeMap::<u16, usize>::new();
    let mut untouched_max = Duration::ZERO;
    for s in samples {
        let what = format!("{:?} sent in phase {}", s.op, s.phase_sent);
        match &s.outcome {
            Outcome::Ok | Outcome::StoreError(..) => {}
            Outcome::Wrong(why) => problems.push(format!("{what}: {why}")),
            Outcome::Status(code) => problems.push(format!("{what}: status {code}")),
            Outcome::Transport(e) => problems.push(format!("{what}: transport error {e}")),
            Outcome::Stuck => problems.push(format!("{what}: no answer within {GUARD:?}")),
        }
        if let Outcome::StoreError(code, set_cookie) = s.outcome {
            if !s.op.takes_session() {
                problems.push(format!("{what}: {code}, but it never takes the session"));
            }
            if set_cookie {
                problems.push(format!("{what}: {code} with Set-Cookie"));
            }
        }
        let ok = matches!(s.outcome, Outcome::Ok);
        if s.phase_sent != s.phase_done {
            *counts.entry("transition").or_default() += 1;
            continue;
        }
        match s.phase_sent {
            UP if !ok => problems.push(format!("{what}: {:?} before the fault", s.outcome)),
            UP => *counts.entry("up ok").or_default() += 1,
            DOWN if s.op.takes_session() => match s.outcome {
                Outcome::StoreError(code, _) => {
                    down_took.push(s.took);
                    *down_statuses.entry(code).or_default() += 1;
                }
                Outcome::Ok => problems.push(format!("{what}: succeeded with the store down")),
                _ => {}
            },
            DOWN if ok => {
                *counts.entry("down untouched ok").or_default() += 1;
                untouched_max = untouched_max.max(s.took);
            }
            BACK if s.sent >= recovered_at && !ok => {
                problems.push(format!("{what}: {:?} after the recovery", s.outcome));
            }
            BACK if s.sent >= recovered_at => *counts.entry("after ok").or_default() += 1,
            _ => {}
        }
    }
    if !problems.is_empty() {
        let shown = problems.len().min(25);
        panic!(
            "{test}: {} problem(s) in {} requests, first {shown}:\n{}",
            problems.len(),
            samples.len(),
            problems[..shown].join("\n")
        );
    }
    // (Routes without the session during the outage: `assert_untouched` probes them too.)
    for what in ["up ok", "after ok"] {
        assert!(
            counts.contains_key(what),
            "{test}: no `{what}` request in the load: {counts:?}"
        );
    }
    assert!(
        !down_took.is_empty(),
        "{test}: no request took the session while the store was down"
    );
    down_took.sort();
    format!(
        "{} requests; {counts:?}; with the store down: statuses {down_statuses:?}, \
         answered in median {:?} / max {:?}; routes without the session answered in at most \
         {untouched_max:?}",
        samples.len(),
        down_took[down_took.len() / 2],
        down_took[down_took.len() - 1],
    )
}

/// Routes that never take the session answer 200 at once, with the session cookie or
/// without, whatever the store is doing.
async fn assert_untouched(test: &str, base: &str, cookie: Option<&str>) {
    for (path, cookie) in [("/peek", cookie), ("/health", None)] {
        let answer = probe(base, path, cookie).await;
        assert_eq!(answer.status, 200, "{test}: {path} never takes the session");
        assert_eq!(answer.body, "ok", "{test}: {path}");
        assert!(
            answer.cookies.is_empty(),
            "{test}: {path}: {:?}",
            answer.cookies
        );
    }
}

/// Polls the app until a new session can be written and read back; returns when.
async fn wait_recovered(test: &str, base: &str) -> Instant {
    let deadline = Instant::now() + RECOVERY;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let uid = format!("probe-{attempt}");
        let created = probe(base, &format!("/new?uid={uid}"), None).await;
        if created.status == 200 {
            let key = new_key(&created).expect("a new session's cookie");
            let read = probe(base, "/read", Some(&key)).await;
            if read.status == 200 {
                assert_eq!(
                    serde_json::from_str::<Value>(&read.body).expect("JSON"),
                    json!({"uid": uid, "n": 0}),
                    "{test}: the first session after the recovery"
                );
                return Instant::now();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{test}: the app did not recover within {RECOVERY:?} of the server's return \
             (last status {})",
            created.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The checks common to every test once the load is over: the cause was logged at ERROR,
/// no raw key reached the logs, no worker panicked.
fn check_logs_and_panics(test: &str, keys: &HashSet<String>) {
    let lines = logs_of(test);
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.contains("ERROR")
                && (l.contains("loading the session failed")
                    || l.contains("saving the session failed"))
                // The cause: the backend's error, or the timeout itself.
                && (l.contains("cause=Some(") || l.contains("did not answer within"))
        })
        .collect();
    assert!(
        !errors.is_empty(),
        "{test}: no ERROR line with the cause of the store failure; its lines: {lines:#?}"
    );
    for line in &lines {
        for key in keys {
            assert!(
                !line.contains(key.as_str()),
                "{test}: a raw key is logged: {line}"
            );
        }
    }
    assert_eq!(
        WORKER_PANICS.load(Ordering::SeqCst),
        0,
        "a task of a server or of the load panicked (see the output above)"
    );
}

// ----- helpers for servers -----

/// A fresh directory under `parent`.
fn scratch_dir(parent: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = parent.join(format!(
        "sbfault-{what}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn summary(test: &str, line: &str) {
    note(&format!("{test}: {line}"));
}

// ----- Redis -----

#[cfg(feature = "redis")]
mod redis_faults {
    use super::*;
    use sessionbase::RedisStore;

    /// A private `redis-server` child on a free port, without persistence. Killed (and its
    /// directory removed) on drop.
    struct RedisServer {
        port: u16,
        dir: PathBuf,
        child: Option<Child>,
    }

    impl RedisServer {
        /// `None` when `redis-server` is not on `PATH`.
        async fn start() -> Option<Self> {
            which("redis-server")?;
            let mut last = None;
            // A port found free may be taken before the server binds it: try a few.
            for _ in 0..3 {
                let mut server = Self {
                    port: free_port(),
                    dir: scratch_dir(&std::env::temp_dir(), "redis"),
                    child: None,
                };
                match server.spawn().await {
                    Ok(()) => return Some(server),
                    Err(e) => last = Some(e),
                }
            }
            panic!("could not start redis-server: {last:?}");
        }

        /// Starts the server (again) on its port and waits until it answers PING.
        async fn spawn(&mut self) -> std::io::Result<()> {
            let port = self.port.to_string();
            let dir = self.dir.to_string_lossy().into_owned();
            let child = Command::new("redis-server")
                .args(["--port", &port, "--bind", "127.0.0.1", "--dir", &dir])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--logfile", ""])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                    self.child = None;
                    return Err(std::io::Error::other(format!(
                        "redis-server exited: {status}"
                    )));
                }
                if ping(self.port).await {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(std::io::Error::other("redis-server never answered PING"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }

        fn pid(&self) -> u32 {
            self.child.as_ref().expect("redis-server running").id()
        }

        /// SIGKILL, and waits until the process is gone.
        fn kill(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        fn signal(&self, signal: &str) {
            let status = Command::new("kill")
                .args([signal, &self.pid().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill {signal} failed: {status}");
        }

        /// SIGSTOP, and waits until the process is stopped.
        async fn pause(&self) {
            self.signal("-STOP");
            let stat = format!("/proc/{}/stat", self.pid());
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let state = std::fs::read_to_string(&stat).unwrap_or_default();
                let state = state.rsplit_once(')').map(|(_, rest)| rest.trim_start());
                if state.is_some_and(|s| s.starts_with('T')) {
                    return;
                }
                assert!(Instant::now() < deadline, "redis-server never stopped");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }

        fn resume(&self) {
            self.signal("-CONT");
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            self.kill();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Whether a Redis on `port` answers PING within half a second.
    async fn ping(port: u16) -> bool {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            stream.write_all(b"PING\r\n").await?;
            let mut buf = [0u8; 16];
            let n = stream.read(&mut buf).await?;
            Ok::<_, std::io::Error>(buf[..n].starts_with(b"+PONG"))
        };
        matches!(
            tokio::time::timeout(Duration::from_millis(500), attempt).await,
            Ok(Ok(true))
        )
    }

    /// Redis killed (SIGKILL) in the middle of a load, then started again on the same port.
    #[test]
    fn redis_killed_mid_load_then_restarted() {
        run(async {
            const TEST: &str = "redis_kill";
            init();
            let Some(mut redis) = RedisServer::start().await else {
                return skip(TEST, "redis-server is not on PATH");
            };
            let started = Instant::now();
            let store = RedisStore::connect(&redis.url())
                .await
                .expect("connect to the private Redis");
            let base = spawn(app(store, TEST)).await;
            let witness_key = witness(&base, "witness").await;

            let load = Load::start(&base, USERS);
            tokio::time::sleep(BEFORE).await;

            load.set_phase(BREAKING);
            redis.kill();
            load.set_phase(DOWN);
            let down_at = Instant::now();
            tokio::time::sleep(OUTAGE / 2).await;
            let during = probe(&base, "/why", Some(&witness_key)).await;
            assert_eq!(
                during.status, 503,
                "{TEST}: the witness's session with Redis down"
            );
            assert_eq!(during.kind.as_deref(), Some("unavailable"), "{TEST}");
            assert!(during.cookies.is_empty(), "{TEST}: {:?}", during.cookies);
            assert_untouched(TEST, &base, Some(&witness_key)).await;
            tokio::time::sleep(OUTAGE / 2).await;

            load.set_phase(RESTORING);
            redis.spawn().await.expect("restart redis-server");
            load.set_phase(BACK);
            let back_at = Instant::now();
            let recovered_at = wait_recovered(TEST, &base).await;
            tokio::time::sleep(AFTER).await;
            let (samples, keys) = load.finish().await;

            // Redis ran without persistence: the record died with it, so the old cookie is no
            // session (Django deletes the cookie), never an error.
            let after = probe(&base, "/read", Some(&witness_key)).await;
            assert_eq!(after.status, 200, "{TEST}: the witness after the restart");
            assert_eq!(after.body, "{}", "{TEST}");
            assert!(
                after.cookies.iter().any(SetCookie::is_removal),
                "{TEST}: {:?}",
                after.cookies
            );

            let line = evaluate(TEST, &samples, recovered_at);
            check_logs_and_panics(TEST, &keys);
            summary(
                TEST,
                &format!(
                    "{line}; witness during the outage {:?}; recovered {:?} after the restart \
                 ({:?} down); whole test {:?}",
                    during.took,
                    recovered_at - back_at,
                    back_at - down_at,
                    started.elapsed()
                ),
            );
        });
    }

    /// Redis paused (SIGSTOP): connections stay open and nothing answers, so only timeouts
    /// end the requests. With the store's own response timeout removed, `store_timeout`
    /// alone turns the hang into a 503 within about the timeout. Then SIGCONT.
    #[test]
    fn redis_paused_mid_load_times_out_then_resumes() {
        run(async {
            const TEST: &str = "redis_pause";
            const BARE: &str = "redis_pause_bare";
            init();
            let Some(redis) = RedisServer::start().await else {
                return skip(TEST, "redis-server is not on PATH");
            };
            let started = Instant::now();
            // The app as users build it: RedisStore::connect (its own 1 s response timeout).
            let store = RedisStore::connect(&redis.url())
                .await
                .expect("connect to the private Redis")
                .with_prefix("pause:");
            let base = spawn(app(store, TEST)).await;
            // A store with no timeout of its own: only store_timeout can end a hung call.
            let client = redis::Client::open(redis.url()).expect("Redis URL");
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(None)
                .set_connection_timeout(None);
            let manager = redis::aio::ConnectionManager::new_with_config(client, config)
                .await
                .expect("connect to the private Redis");
            let bare_base = spawn(app(
                RedisStore::from_manager(manager).with_prefix("bare:"),
                BARE,
            ))
            .await;
            let witness_key = witness(&base, "witness").await;
            let bare_witness = witness(&bare_base, "bare-witness").await;
            let written = probe(&base, "/write", Some(&witness_key)).await;
            assert_eq!(written.status, 200, "{TEST}: {}", written.body);

            let load = Load::start(&base, USERS);
            tokio::time::sleep(BEFORE).await;

            load.set_phase(BREAKING);
            redis.pause().await;
            load.set_phase(DOWN);
            let down_at = Instant::now();
            tokio::time::sleep(OUTAGE / 4).await;
            let mut bare_took = Vec::new();
            for _ in 0..3 {
                let hung = probe(&bare_base, "/why", Some(&bare_witness)).await;
                assert_eq!(hung.status, 503, "{BARE}: a paused Redis");
                assert_eq!(
                    hung.kind.as_deref(),
                    Some("timeout"),
                    "{BARE}: only store_timeout can end the call"
                );
                assert!(hung.cookies.is_empty(), "{BARE}: {:?}", hung.cookies);
                // About the timeout: not before it, and not much after (the guard is far above).
                assert!(
                    hung.took >= STORE_TIMEOUT && hung.took < STORE_TIMEOUT * 3,
                    "{BARE}: answered after {:?} with store_timeout {STORE_TIMEOUT:?}",
                    hung.took
                );
                bare_took.push(hung.took);
                // A request without the session does not wait for the store.
                assert_untouched(BARE, &bare_base, Some(&bare_witness)).await;
            }
            let during = probe(&base, "/why", Some(&witness_key)).await;
            assert_eq!(
                during.status, 503,
                "{TEST}: the witness's session, Redis paused"
            );
            assert!(
                during.took < STORE_TIMEOUT * 3,
                "{TEST}: answered after {:?}",
                during.took
            );
            let elapsed = down_at.elapsed();
            if elapsed < OUTAGE {
                tokio::time::sleep(OUTAGE - elapsed).await;
            }

            load.set_phase(RESTORING);
            redis.resume();
            load.set_phase(BACK);
            let back_at = Instant::now();
            let recovered_at = wait_recovered(TEST, &base).await;
            let bare_recovered_at = wait_recovered(BARE, &bare_base).await;
            tokio::time::sleep(AFTER).await;
            let (samples, keys) = load.finish().await;

            // Nothing was lost: the witnesses hold what they held before the pause.
            let after = probe(&base, "/read", Some(&witness_key)).await;
            assert_eq!(after.status, 200, "{TEST}");
            assert_eq!(
                serde_json::from_str::<Value>(&after.body).expect("JSON"),
                json!({"uid": "witness", "n": 1}),
                "{TEST}: the witness after the pause"
            );
            let after = probe(&bare_base, "/read", Some(&bare_witness)).await;
            assert_eq!(after.status, 200, "{BARE}");
            assert_eq!(
                serde_json::from_str::<Value>(&after.body).expect("JSON"),
                json!({"uid": "bare-witness", "n": 0}),
                "{BARE}: the witness after the pause"
            );

            let line = evaluate(TEST, &samples, recovered_at);
            check_logs_and_panics(TEST, &keys);
            check_logs_and_panics(BARE, &HashSet::new());
            summary(
                TEST,
                &format!(
                    "{line}; without a client timeout, store_timeout answered in {bare_took:?}; \
                 recovered {:?} (bare {:?}) after SIGCONT; whole test {:?}",
                    recovered_at - back_at,
                    bare_recovered_at - back_at,
                    started.elapsed()
                ),
            );
        });
    }
}

// ----- PostgreSQL -----

#[cfg(feature = "postgres")]
mod postgres_faults {
    use super::*;
    use sessionbase::PostgresStore;

    /// A private PostgreSQL cluster: `initdb` into a scratch directory (trust auth, no
    /// fsync), started with `pg_ctl` on a free port on 127.0.0.1 (socket in the directory).
    /// As root, the tools run as the `postgres` user. Stopped and removed on drop.
    struct PgCluster {
        bin: PathBuf,
        dir: PathBuf,
        port: u16,
        as_postgres: bool,
    }

    /// Where `initdb` and `pg_ctl` are: Debian keeps them under
    /// `/usr/lib/postgresql/<version>/bin` (the newest wins), elsewhere on `PATH`.
    fn pg_bin() -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
                    .then_some((version, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Some(bin);
        }
        let initdb = which("initdb")?;
        let bin = initdb.parent()?.to_path_buf();
        bin.join("pg_ctl").is_file().then_some(bin)
    }

    fn is_root() -> bool {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }

    impl PgCluster {
        /// `Err` with the reason when the tools are missing or the cluster cannot be made.
        fn create() -> Result<Self, String> {
            let bin = pg_bin().ok_or("the PostgreSQL server tools (initdb, pg_ctl) are missing")?;
            let as_postgres = is_root();
            if as_postgres {
                let known = Command::new("id")
                    .args(["-u", "postgres"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !known || which("runuser").is_none() {
                    return Err("running as root without a `postgres` user or runuser".into());
                }
            }
            // As root, somewhere the postgres user can reach.
            let parent = if as_postgres {
                PathBuf::from("/tmp")
            } else {
                std::env::temp_dir()
            };
            let cluster = Self {
                bin,
                dir: scratch_dir(&parent, "pg"),
                port: free_port(),
                as_postgres,
            };
            if as_postgres {
                let status = Command::new("chown")
                    .arg("postgres")
                    .arg(&cluster.dir)
                    .status()
                    .map_err(|e| format!("chown: {e}"))?;
                if !status.success() {
                    return Err(format!("chown postgres {:?}: {status}", cluster.dir));
                }
            }
            let data = cluster.data();
            cluster.run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            )?;
            Ok(cluster)
        }

        fn data(&self) -> String {
            self.dir.join("data").to_string_lossy().into_owned()
        }

        /// Runs a PostgreSQL tool (as `postgres` when root); `Err` with its output on failure.
        fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
            let path = self.bin.join(tool);
            let mut command = if self.as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&path);
                c
            } else {
                Command::new(&path)
            };
            let output = command
                .args(args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("{tool}: {e}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{tool} {args:?}: {}\n{}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ))
            }
        }

        /// Starts the server and waits until it accepts connections.
        fn start(&self) -> Result<(), String> {
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c shared_buffers=16MB -c max_connections=40",
                self.port,
                self.dir.display()
            );
            let log = self.dir.join("log").to_string_lossy().into_owned();
            let data = self.data();
            self.run(
                "pg_ctl",
                &[
                    "-D", &data, "-l", &log, "-w", "-t", "30", "-o", &options, "start",
                ],
            )
        }

        /// Stops the server with `mode` (`fast`, `immediate`) and waits until it is gone.
        fn stop(&self, mode: &str) -> Result<(), String> {
            let data = self.data();
            self.run(
                "pg_ctl",
                &["-D", &data, "-w", "-t", "30", "-m", mode, "stop"],
            )
        }

        fn url(&self) -> String {
            format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
        }
    }

    impl Drop for PgCluster {
        fn drop(&mut self) {
            let _ = self.stop("immediate");
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// PostgreSQL stopped (`pg_ctl stop -m immediate`: every backend dies at once) in the
    /// middle of a load, then started again on the same port; the pool recovers by itself.
    #[test]
    fn postgres_stopped_mid_load_then_restarted() {
        run(async {
            const TEST: &str = "pg_stop";
            init();
            let started = Instant::now();
            let cluster = match tokio::task::spawn_blocking(PgCluster::create)
                .await
                .expect("create the cluster")
            {
                Ok(cluster) => cluster,
                Err(why) if why.contains("missing") || why.contains("without") => {
                    return skip(TEST, &why);
                }
                Err(why) => panic!("{TEST}: cannot create a private cluster: {why}"),
            };
            let cluster = Arc::new(cluster);
            let c = Arc::clone(&cluster);
            tokio::task::spawn_blocking(move || c.start())
                .await
                .expect("pg_ctl start")
                .unwrap_or_else(|e| panic!("{TEST}: {e}"));
            let ready = started.elapsed();

            let store = PostgresStore::connect(&cluster.url())
                .await
                .expect("connect to the private cluster");
            store.migrate().await.expect("migrate");
            let base = spawn(app(store, TEST)).await;
            let witness_key = witness(&base, "witness").await;
            let written = probe(&base, "/write", Some(&witness_key)).await;
            assert_eq!(written.status, 200, "{TEST}: {}", written.body);

            let load = Load::start(&base, USERS);
            tokio::time::sleep(BEFORE).await;

            load.set_phase(BREAKING);
            let c = Arc::clone(&cluster);
            tokio::task::spawn_blocking(move || c.stop("immediate"))
                .await
                .expect("pg_ctl stop")
                .unwrap_or_else(|e| panic!("{TEST}: {e}"));
            load.set_phase(DOWN);
            let down_at = Instant::now();
            tokio::time::sleep(OUTAGE / 2).await;
            let during = probe(&base, "/why", Some(&witness_key)).await;
            assert_eq!(
                during.status, 503,
                "{TEST}: the witness's session, PostgreSQL down"
            );
            assert!(during.cookies.is_empty(), "{TEST}: {:?}", during.cookies);
            assert_untouched(TEST, &base, Some(&witness_key)).await;
            tokio::time::sleep(OUTAGE / 2).await;

            load.set_phase(RESTORING);
            let c = Arc::clone(&cluster);
            tokio::task::spawn_blocking(move || c.start())
                .await
                .expect("pg_ctl start")
                .unwrap_or_else(|e| panic!("{TEST}: restart: {e}"));
            load.set_phase(BACK);
            let back_at = Instant::now();
            let recovered_at = wait_recovered(TEST, &base).await;
            tokio::time::sleep(AFTER).await;
            let (samples, keys) = load.finish().await;

            // PostgreSQL keeps its data across the restart: the witness is intact.
            let after = probe(&base, "/read", Some(&witness_key)).await;
            assert_eq!(after.status, 200, "{TEST}");
            assert_eq!(
                serde_json::from_str::<Value>(&after.body).expect("JSON"),
                json!({"uid": "witness", "n": 1}),
                "{TEST}: the witness after the restart"
            );

            let line = evaluate(TEST, &samples, recovered_at);
            check_logs_and_panics(TEST, &keys);
            summary(
                TEST,
                &format!(
                    "{line}; witness during the outage {:?} ({:?}); cluster ready in {ready:?}; \
                 recovered {:?} after the restart ({:?} down); whole test {:?}",
                    during.took,
                    during.kind,
                    recovered_at - back_at,
                    back_at - down_at,
                    started.elapsed()
                ),
            );
        });
    }
}
