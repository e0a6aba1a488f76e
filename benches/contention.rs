//! Many requests on one session at once (issue #12, part 0): 16 connections over loopback
//! HTTP, each incrementing its own counter in the same session, as a single-page app firing
//! parallel requests with one cookie does. Reported per store: requests/s, p50 and p99, and
//! how many increments the session kept; then 200 concurrent writers on one session through
//! the `Session` API, timed. Each server-side store also runs the first scenario on two
//! instances of the app (each with its own store connection), connections alternating. sessionbase on memory, file, Redis (`REDIS_URL`) and PostgreSQL
//! (`DATABASE_URL`); tower-sessions 0.15 on its memory store as the peer (its Redis and
//! PostgreSQL stores need their own cargo projects, see issue #12 part 4). Writes
//! `contention.md` into the results directory, which `benches/report.rs` includes.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;
use sessionbase::{Session, SessionConfig, SessionLayer, SessionStore};

const CONNECTIONS: usize = 16;
const REQUESTS_PER_CONNECTION: u64 = 300;
const WRITERS: usize = 200;

#[derive(Deserialize)]
struct Counter {
    k: String,
}

async fn sb_increment(session: Session, Query(q): Query<Counter>) -> String {
    let n = session.get::<u64>(&q.k).ok().flatten().unwrap_or(0) + 1;
    let _ = session.insert(q.k, n);
    n.to_string()
}

async fn sb_total(session: Session) -> String {
    let total: u64 = session.values().iter().filter_map(|v| v.as_u64()).sum();
    total.to_string()
}

async fn sb_start(session: Session) -> &'static str {
    let _ = session.insert("init", 0);
    "ok"
}

fn sessionbase_app<S: SessionStore>(store: S) -> Router {
    Router::new()
        .route("/start", get(sb_start))
        .route("/incr", get(sb_increment))
        .route("/total", get(sb_total))
        .layer(SessionLayer::new(store))
}

mod ts {
    use super::Counter;
    use axum::extract::Query;
    use tower_sessions::Session;

    pub(super) async fn increment(session: Session, Query(q): Query<Counter>) -> String {
        let n = session.get::<u64>(&q.k).await.ok().flatten().unwrap_or(0) + 1;
        let _ = session.insert(&q.k, n).await;
        n.to_string()
    }

    pub(super) async fn total(session: Session) -> String {
        let mut total = 0;
        for i in 0..super::CONNECTIONS {
            total += session
                .get::<u64>(&format!("c{i}"))
                .await
                .ok()
                .flatten()
                .unwrap_or(0);
        }
        total.to_string()
    }

    pub(super) async fn start(session: Session) -> &'static str {
        let _ = session.insert("init", 0).await;
        "ok"
    }
}

fn tower_sessions_app() -> Router {
    Router::new()
        .route("/start", get(ts::start))
        .route("/incr", get(ts::increment))
        .route("/total", get(ts::total))
        .layer(
            tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                .with_secure(false),
        )
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

struct Outcome {
    contender: String,
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
    kept: u64,
}

async fn run(contender: &str, app: Router) -> Outcome {
    run_instances(contender, vec![app]).await
}

/// The scenario on several instances of the app (each its own layer, with its own store
/// connection and queue of saves): connection `i` talks to instance `i % n`.
async fn run_instances(contender: &str, apps: Vec<Router>) -> Outcome {
    let mut bases = Vec::new();
    for app in apps {
        bases.push(serve(app).await);
    }
    let base = bases[0].clone();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let start = client
        .get(format!("{base}/start"))
        .send()
        .await
        .expect("start");
    let cookie = start
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|p| p.starts_with("id=") || p.starts_with("sessionid="))
        })
        .expect("a session cookie")
        .to_owned();
    run_at(contender, &bases, &cookie).await
}

/// tower-sessions 0.14 with its Redis store, from `benches/ts_redis_server` (named by
/// `TS_REDIS_SERVER`, as `benches/report.sh` builds it): its own process, one worker.
async fn tower_sessions_redis() -> Option<Outcome> {
    let binary = std::env::var_os("TS_REDIS_SERVER")?;
    let cookies = std::env::temp_dir().join(format!("sb-contention-ts-{}", std::process::id()));
    let mut child = tokio::process::Command::new(binary)
        .arg(&cookies)
        .arg("1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let port = loop {
        let line = lines.next_line().await.ok()??;
        if let Some(port) = line.strip_prefix("listening ") {
            break port.trim().to_owned();
        }
    };
    let cookie = std::fs::read_to_string(&cookies)
        .ok()?
        .lines()
        .next()?
        .to_owned();
    let outcome = run_at(
        "tower-sessions, Redis (its own process, 1 worker)",
        &[format!("http://127.0.0.1:{port}")],
        &cookie,
    )
    .await;
    let _ = child.kill().await;
    let _ = std::fs::remove_file(&cookies);
    Some(outcome)
}

async fn run_at(contender: &str, bases: &[String], cookie: &str) -> Outcome {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let (base, cookie) = (bases[0].clone(), cookie.to_owned());
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        // A client each: 16 connections.
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let (base, cookie) = (bases[i % bases.len()].clone(), cookie.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(REQUESTS_PER_CONNECTION as usize);
            let mut errors = 0;
            for _ in 0..REQUESTS_PER_CONNECTION {
                let sent = Instant::now();
                let ok = match client
                    .get(format!("{base}/incr?k=c{i}"))
                    .header(reqwest::header::COOKIE, &cookie)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.text().await.is_ok(),
                    Err(_) => false,
                };
                errors += usize::from(!ok);
                latencies.push(sent.elapsed());
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (l, e) = joined.expect("connection");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = began.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let kept = client
        .get(format!("{base}/total"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("total")
        .text()
        .await
        .expect("body")
        .parse()
        .unwrap_or(0);
    Outcome {
        contender: contender.to_owned(),
        requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        errors,
        kept,
    }
}

/// 200 concurrent writers, each setting its own key in one session through the API.
async fn writers<S: SessionStore + Clone>(store: S) -> Duration {
    let config = Arc::new(SessionConfig::default());
    let first = Session::new(store.clone(), Arc::clone(&config));
    first.insert("init", 0).expect("insert");
    first.save().await.expect("save");
    let key = first.session_key().expect("a key");
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let (store, config, key) = (store.clone(), Arc::clone(&config), key.clone());
        tasks.spawn(async move {
            let session = Session::load(store, config, key.as_str())
                .await
                .expect("load");
            session.insert(format!("w{i}"), i).expect("insert");
            session.save().await.expect("save");
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("writer");
    }
    let elapsed = began.elapsed();
    let check = Session::load(store, config, key.as_str())
        .await
        .expect("load");
    assert_eq!(check.len(), WRITERS + 1, "a writer's key was lost");
    elapsed
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("sessionbase-bench-contention-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let file = sessionbase::FileStore::new(&dir).expect("file store");
        let redis = match std::env::var("REDIS_URL") {
            Ok(url) => sessionbase::RedisStore::connect(&url)
                .await
                .ok()
                .map(|s| s.with_prefix(format!("sb-bench-contention-{}:", std::process::id()))),
            Err(_) => None,
        };
        let postgres = match std::env::var("DATABASE_URL") {
            Ok(url) => match sessionbase::PostgresStore::connect(&url).await {
                Ok(store) => {
                    let table = format!("sb_bench_contention_{}", std::process::id());
                    match store.with_table(&table) {
                        Ok(store) => store.migrate().await.ok().map(|_| (store, table)),
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            },
            Err(_) => None,
        };

        let mut outcomes = Vec::new();
        outcomes.push(run("sessionbase, memory", sessionbase_app(sessionbase::MemoryStore::new())).await);
        outcomes.push(run("tower-sessions, memory", tower_sessions_app()).await);
        outcomes.push(run("sessionbase, file", sessionbase_app(file.clone())).await);
        if let Ok(other) = sessionbase::FileStore::new(&dir) {
            let apps = vec![sessionbase_app(file.clone()), sessionbase_app(other)];
            outcomes.push(run_instances("sessionbase, file, two instances", apps).await);
        }
        if let Some(redis) = &redis {
            outcomes.push(run("sessionbase, Redis", sessionbase_app(redis.clone())).await);
            outcomes.extend(tower_sessions_redis().await);
            if let Ok(url) = std::env::var("REDIS_URL") {
                // A second instance: its own connection (a store of its own, not a clone).
                if let Ok(other) = sessionbase::RedisStore::connect(&url).await {
                    let other = other.with_prefix(redis.prefix().to_owned());
                    let apps = vec![sessionbase_app(redis.clone()), sessionbase_app(other)];
                    outcomes.push(run_instances("sessionbase, Redis, two instances", apps).await);
                }
            }
        }
        if let Some((pg, table)) = &postgres {
            outcomes.push(run("sessionbase, PostgreSQL", sessionbase_app(pg.clone())).await);
            if let Ok(url) = std::env::var("DATABASE_URL")
                && let Ok(other) = sessionbase::PostgresStore::connect(&url).await
                && let Ok(other) = other.with_table(table)
            {
                let apps = vec![sessionbase_app(pg.clone()), sessionbase_app(other)];
                outcomes.push(run_instances("sessionbase, PostgreSQL, two instances", apps).await);
            }
        }

        let mut writer_rows = vec![
            ("memory", writers(sessionbase::MemoryStore::new()).await),
            ("file", writers(file).await),
        ];
        if let Some(redis) = redis {
            writer_rows.push(("Redis", writers(redis).await));
        }
        if let Some((pg, _)) = &postgres {
            writer_rows.push(("PostgreSQL", writers(pg.clone()).await));
        }

        let total = CONNECTIONS as u64 * REQUESTS_PER_CONNECTION;
        let mut md = String::new();
        md.push_str(&format!(
            "`cargo bench --all-features --bench contention`: {CONNECTIONS} connections over loopback HTTP (one client each), each incrementing its own counter in one shared session {REQUESTS_PER_CONNECTION} times ({total} increments); server and client in one 2-worker Tokio runtime. *Kept* is the sum of the counters read back at the end.\n\n\
             | contender | requests/s | p50 | p99 | errors | increments kept |\n|---|---|---|---|---|---|\n"
        ));
        for o in &outcomes {
            md.push_str(&format!(
                "| {} | {:.0} | {} | {} | {} | {} of {total} |\n",
                o.contender, o.requests_per_second, ms(o.p50), ms(o.p99), o.errors, o.kept
            ));
        }
        md.push_str(&format!(
            "\n{WRITERS} concurrent writers on one session through the `Session` API (each loads, sets its own key, saves; every key checked at the end):\n\n| store | time |\n|---|---|\n"
        ));
        for (store, elapsed) in &writer_rows {
            md.push_str(&format!("| {store} | {} |\n", ms(*elapsed)));
        }
        if let Some((pg, table)) = postgres {
            let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                .execute(pg.pool())
                .await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        print!("{md}");
        std::fs::write(common::results_dir().join("contention.md"), md).expect("write results");
    });
}
