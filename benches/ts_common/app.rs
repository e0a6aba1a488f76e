//! What the tower-sessions servers of the benchmarks share (`benches/ts_redis_server`,
//! `benches/ts_pg_server`, each its own cargo project that includes this file with
//! `#[path]`): the routes and handlers, the sessions created before the load, and serving.
//!
//! Same routes and handlers as the contenders in `benches/common/mod.rs`: `/a` never touches
//! the session, `/c` reads `counter`, `/d` increments it, `/e` inserts into a new session;
//! for `benches/contention.rs`, `/incr?k=K` increments the counter `K` and answers its new
//! value, `/total` sums the counters `c0`…`c15`.
//!
//! Command line of both servers: `SERVER COOKIES_FILE SESSIONS`. `BENCH_SAVE_EVERY_REQUEST=1`
//! turns on `with_always_save(true)` (scenario f: c with a save on every request).

use std::hint::black_box;
use std::io::Write;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::get;
use tower::ServiceExt;
use tower_sessions::{Session, SessionManagerLayer, SessionStore};

async fn untouched() -> &'static str {
    "ok"
}

async fn read(session: Session) -> &'static str {
    let n: Option<u64> = session.get("counter").await.expect("load");
    black_box(n);
    "ok"
}

async fn increment(session: Session) -> &'static str {
    let n: u64 = session.get("counter").await.expect("load").unwrap_or(0);
    session.insert("counter", n + 1).await.expect("insert");
    "ok"
}

/// The counter named by `?k=`: the only query parameter the contention benchmark sends.
fn counter_name(uri: &axum::http::Uri) -> String {
    uri.query()
        .and_then(|q| q.strip_prefix("k="))
        .unwrap_or("counter")
        .to_owned()
}

async fn increment_named(session: Session, uri: axum::http::Uri) -> String {
    let k = counter_name(&uri);
    let n: u64 = session.get(&k).await.expect("load").unwrap_or(0) + 1;
    session.insert(&k, n).await.expect("insert");
    n.to_string()
}

async fn total(session: Session) -> String {
    let mut total = 0u64;
    for i in 0..16 {
        total += session
            .get::<u64>(&format!("c{i}"))
            .await
            .expect("load")
            .unwrap_or(0);
    }
    total.to_string()
}

async fn insert(session: Session) -> &'static str {
    session.insert("user_id", 42u64).await.expect("insert");
    "ok"
}

/// `COOKIES_FILE` and `SESSIONS` from the command line.
pub fn args(usage: &str) -> (String, usize) {
    let mut args = std::env::args().skip(1);
    let cookies_file = args.next().unwrap_or_else(|| panic!("usage: {usage}"));
    let sessions = args.next().map_or(1000, |n| n.parse().expect("SESSIONS"));
    (cookies_file, sessions)
}

/// The one-worker runtime every server of the benchmark runs on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The benchmark routes behind tower-sessions' layer on `store` (`Secure` off as
/// sessionbase's default; `always_save` from `BENCH_SAVE_EVERY_REQUEST`).
pub fn router<S: SessionStore + Clone>(store: S) -> Router {
    let always_save = std::env::var("BENCH_SAVE_EVERY_REQUEST").as_deref() == Ok("1");
    Router::new()
        .route("/a", get(untouched))
        .route("/c", get(read))
        .route("/d", get(increment))
        .route("/e", get(insert))
        .route("/incr", get(increment_named))
        .route("/total", get(total))
        .layer(
            SessionManagerLayer::new(store)
                .with_secure(false)
                .with_always_save(always_save),
        )
}

/// Creates `sessions` sessions through `app` (a cookie-less `/d`), writes their `Cookie`
/// values to `cookies_file`, one a line, then serves `app` on 127.0.0.1 (an ephemeral
/// port, printed as `listening PORT`) until killed.
pub async fn create_and_serve(app: Router, cookies_file: &str, sessions: usize) {
    let mut out = std::fs::File::create(cookies_file).expect("cookies file");
    for _ in 0..sessions {
        let request = Request::get("/d").body(Body::empty()).expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .expect("a new session sets its cookie")
            .to_str()
            .expect("ASCII");
        let pair = set_cookie.split(';').next().expect("name=value");
        writeln!(out, "{pair}").expect("write cookies");
    }
    drop(out);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("listening {}", listener.local_addr().expect("addr").port());
    axum::serve(listener, app).await.expect("serve");
}
