//! The tower-sessions 0.14 + tower-sessions-redis-store 0.16 contender of `benches/http.rs`.
//!
//! `ts-redis-server COOKIES_FILE SESSIONS` (Redis at `REDIS_URL`): creates SESSIONS
//! sessions through its own router, writes their `Cookie` values to COOKIES_FILE, one a
//! line, then serves the benchmark routes on 127.0.0.1 (an ephemeral port, printed as
//! `listening PORT`) until killed. Same routes and handlers as the contenders in
//! `benches/common/mod.rs`: `/a` never touches the session, `/c` reads `counter`, `/d`
//! increments it, `/e` inserts into a new session; for `benches/contention.rs`, `/incr?k=K`
//! increments the counter `K` and answers its new value, `/total` sums the counters
//! `c0`…`c15`.

use std::hint::black_box;
use std::io::Write;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::get;
use tower::ServiceExt;
use tower_sessions::{Session, SessionManagerLayer};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::clients::Client;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config};

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

fn main() {
    let mut args = std::env::args().skip(1);
    let cookies_file = args
        .next()
        .expect("usage: ts-redis-server COOKIES_FILE SESSIONS");
    let sessions: usize = args.next().map_or(1000, |n| n.parse().expect("SESSIONS"));
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let client = Client::new(Config::from_url(&url).expect("REDIS_URL"), None, None, None);
        client.init().await.expect("connect to Redis");
        let app = Router::new()
            .route("/a", get(untouched))
            .route("/c", get(read))
            .route("/d", get(increment))
            .route("/e", get(insert))
            .route("/incr", get(increment_named))
            .route("/total", get(total))
            .layer(SessionManagerLayer::new(RedisStore::new(client)).with_secure(false));
        let mut out = std::fs::File::create(&cookies_file).expect("cookies file");
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
    });
}
