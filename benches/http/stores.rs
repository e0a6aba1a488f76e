//! The production-store groups of the HTTP benchmark (issue #12): on Redis and on
//! PostgreSQL, scenarios c, d and f, sessionbase's store against tower-sessions 0.14 with its
//! Redis store (`benches/ts_redis_server`, `TS_REDIS_SERVER`) or its sqlx PostgreSQL store
//! (`benches/ts_pg_server`, `TS_PG_SERVER`) on the same server, interleaved like the memory
//! groups. Then a short run of every contender that talks to the store, with the store behind
//! the counting proxy (`common/proxy.rs`): round trips and commands (or protocol messages)
//! per request, sequential requests, per scenario.

// Without the store features only the "skipped" stubs are used.
#![cfg_attr(
    not(all(feature = "redis", feature = "postgres")),
    allow(dead_code, unused_imports, unused_variables)
)]

use std::ffi::OsString;
use std::path::Path;

use axum::Router;
use serde_json::{Value, json};

use super::{Load, SESSIONS, ServeCmd, Server, check, compare, pinned, start};
use crate::common::{self, Scenario};

/// **The "sessionbase Redis + local cache" contender** (issue #12): `None` would leave it out.
#[cfg(feature = "redis")]
const LOCAL_CACHE: Option<fn(sessionbase::RedisStore) -> sessionbase::RedisStore> = Some(|store| {
    store
        .with_local_cache(LOCAL_CACHE_CAPACITY)
        .expect("a local cache on a single-node RedisStore")
});
/// Room for every session a server creates, so that the cache holds all of them.
#[cfg(feature = "redis")]
const LOCAL_CACHE_CAPACITY: usize = 10 * SESSIONS;

/// The environment variable that selects scenario f's configuration in every server.
const SAVE_EVERY_REQUEST: &str = "BENCH_SAVE_EVERY_REQUEST";

fn save_flag(scenario: Scenario) -> &'static str {
    if scenario.saves_every_request() {
        "1"
    } else {
        "0"
    }
}

#[cfg(feature = "redis")]
fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

#[cfg(feature = "postgres")]
fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The router of a store contender of this binary's `serve` mode (`STORE_NAME` is the
/// Redis key prefix or the PostgreSQL table), or `None` for the others.
pub(super) async fn router(
    contender: &str,
    store_name: Option<&str>,
    scenario: Scenario,
) -> Option<Router> {
    match contender {
        #[cfg(feature = "redis")]
        "sessionbase-redis" | "sessionbase-redis-cache" => {
            let mut store = sessionbase::RedisStore::connect(&redis_url())
                .await
                .expect("connect to Redis")
                .with_prefix(store_name.expect("a Redis key prefix"));
            if contender == "sessionbase-redis-cache" {
                store = LOCAL_CACHE.expect("LOCAL_CACHE enabled")(store);
            }
            Some(common::sessionbase_router_for(store, scenario))
        }
        #[cfg(feature = "postgres")]
        "sessionbase-pg" => {
            let store = sessionbase::PostgresStore::connect(&database_url())
                .await
                .expect("connect to PostgreSQL")
                .with_table(store_name.expect("a table"))
                .expect("a valid table name");
            store.migrate().await.expect("create the table");
            Some(common::sessionbase_router_for(store, scenario))
        }
        _ => None,
    }
}

/// Starts a contender for a scenario, with its store at a URL and this many sessions.
type Launch<'a> = Box<dyn Fn(Scenario, &str, usize) -> Server + 'a>;

struct Entry<'a> {
    name: &'static str,
    /// Whether it talks to the store (bare and the memory store do not).
    store: bool,
    launch: Launch<'a>,
}

/// A contender served by this binary; its store's URL goes in `url_var`.
fn own<'a>(
    serve_cmd: ServeCmd<'a>,
    name: &'static str,
    url_var: &'static str,
    store_name: Option<&'a str>,
) -> Entry<'a> {
    Entry {
        name,
        store: store_name.is_some(),
        launch: Box::new(move |scenario, url, sessions| {
            let extra: Vec<&str> = store_name.into_iter().collect();
            let (mut cmd, cookies) = serve_cmd(name, &extra);
            cmd.env(url_var, url)
                .env("BENCH_SESSIONS", sessions.to_string())
                .env(SAVE_EVERY_REQUEST, save_flag(scenario));
            start(name, cmd, cookies)
        }),
    }
}

/// A tower-sessions server of its own cargo project (`benches/ts_*_server`).
fn tower_sessions<'a>(
    binary: OsString,
    name: &'static str,
    url_var: &'static str,
    env: Vec<(&'static str, String)>,
    pin: bool,
) -> Entry<'a> {
    let cookies = common::results_dir().join(format!("http-{name}.cookies"));
    Entry {
        name,
        store: true,
        launch: Box::new(move |scenario, url, sessions| {
            let mut cmd = pinned("0", Path::new(&binary), pin);
            cmd.arg(&cookies)
                .arg(sessions.to_string())
                .env(url_var, url)
                .env(SAVE_EVERY_REQUEST, save_flag(scenario))
                .envs(env.iter().cloned());
            start(name, cmd, cookies.clone())
        }),
    }
}

/// The session ids of a tower-sessions server's cookies (its Redis keys).
fn cookie_ids(server: &Server) -> Vec<String> {
    std::fs::read_to_string(&server.cookies)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.to_owned()))
        .collect()
}

/// Scenarios c, d and f against `entries`, fresh servers per scenario; then the proxied
/// run. `ts_ids` collects tower-sessions' session ids, for the cleanup.
fn section(
    label: &str,
    load: &Load,
    rounds: usize,
    runtime: &tokio::runtime::Runtime,
    entries: &[Entry<'_>],
    (url, protocol): (&str, common::proxy::Protocol),
    ts_ids: &mut Vec<String>,
) -> Value {
    let mut out = serde_json::Map::new();
    for scenario in Scenario::STORES {
        let servers: Vec<Server> = entries
            .iter()
            .map(|e| (e.launch)(scenario, url, SESSIONS))
            .collect();
        for server in &servers {
            check(runtime, server, scenario);
        }
        eprintln!(
            "{label}, scenario {} ({})",
            scenario.id(),
            scenario.describe()
        );
        let refs: Vec<&Server> = servers.iter().collect();
        out.insert(scenario.id().into(), compare(load, rounds, &refs, scenario));
        for server in servers.iter().filter(|s| s.name.starts_with("tower-")) {
            ts_ids.extend(cookie_ids(server));
        }
    }
    eprintln!("{label}, round trips per request (through the counting proxy)");
    out.insert(
        "round_trips".into(),
        round_trips(entries, url, protocol, ts_ids),
    );
    Value::Object(out)
}

/// Per contender and scenario: round trips to the store and what the client sent, per
/// request, over `N` sequential requests on one session after ten of warm-up.
fn round_trips(
    entries: &[Entry<'_>],
    url: &str,
    protocol: common::proxy::Protocol,
    ts_ids: &mut Vec<String>,
) -> Value {
    use common::proxy::{self, Stats};
    const N: u64 = 20;
    // The proxy runs on a worker thread while this one sends the requests.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (upstream, rewrite) = proxy::split_url(url);
    let stats = Stats::default();
    let proxied = rewrite(runtime.block_on(proxy::start(upstream, protocol, stats.clone())));
    let mut out = serde_json::Map::new();
    for entry in entries.iter().filter(|e| e.store) {
        let mut per = serde_json::Map::new();
        for scenario in Scenario::STORES {
            let server = (entry.launch)(scenario, &proxied, 2);
            let cookies = std::fs::read_to_string(&server.cookies).expect("cookies");
            let cookie = cookies.lines().next().expect("a cookie");
            let send = || {
                let (status, _) =
                    runtime.block_on(common::http_get(server.addr, scenario.path(), Some(cookie)));
                assert_eq!(status, 200, "{} in scenario {}", entry.name, scenario.id());
            };
            // Enough warm-up for sqlx's pool to reach the connections sequential requests
            // need (its ping on return keeps one busy after each query).
            (0..10).for_each(|_| send());
            stats.take();
            (0..N).for_each(|_| send());
            let counts = stats.take();
            let messages: serde_json::Map<String, Value> = counts
                .messages
                .into_iter()
                .map(|(k, v)| (k, json!(v as f64 / N as f64)))
                .collect();
            per.insert(
                scenario.id().into(),
                json!({
                    "round_trips": counts.round_trips as f64 / N as f64,
                    "messages": messages,
                }),
            );
            if entry.name.starts_with("tower-") {
                ts_ids.extend(cookie_ids(&server));
            }
        }
        out.insert(entry.name.into(), Value::Object(per));
    }
    Value::Object(out)
}

fn reachable(url: &str) -> bool {
    let (addr, _) = common::proxy::split_url(url);
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_ok()
}

/// Redis: bare, sessionbase's memory store (the local cache's reference), `RedisStore`
/// (and with its local cache, when [`LOCAL_CACHE`] is set) and tower-sessions' Redis store.
#[cfg(feature = "redis")]
pub(super) fn redis(
    load: &Load,
    rounds: usize,
    runtime: &tokio::runtime::Runtime,
    serve_cmd: ServeCmd<'_>,
) -> Value {
    let url = redis_url();
    if !reachable(&url) {
        return json!({ "skipped": format!("Redis not reachable at {url}") });
    }
    let Some(ts_binary) = std::env::var_os("TS_REDIS_SERVER") else {
        return json!({ "skipped": "TS_REDIS_SERVER not set (benches/report.sh builds and sets it)" });
    };
    let prefix = format!("sessionbase-bench-http-{}:", std::process::id());
    let mut entries = vec![
        own(serve_cmd, "bare", "REDIS_URL", None),
        own(serve_cmd, "sessionbase", "REDIS_URL", None),
        own(serve_cmd, "sessionbase-redis", "REDIS_URL", Some(&prefix)),
    ];
    if LOCAL_CACHE.is_some() {
        entries.push(own(
            serve_cmd,
            "sessionbase-redis-cache",
            "REDIS_URL",
            Some(&prefix),
        ));
    }
    entries.push(tower_sessions(
        ts_binary,
        "tower-sessions-redis",
        "REDIS_URL",
        Vec::new(),
        load.pin,
    ));
    let mut ids = Vec::new();
    let protocol = common::proxy::Protocol::Redis;
    let out = section(
        "Redis",
        load,
        rounds,
        runtime,
        &entries,
        (&url, protocol),
        &mut ids,
    );
    runtime.block_on(redis_cleanup(&url, &prefix, ids));
    out
}

/// Deletes sessionbase's keys (under `prefix`) and tower-sessions' (`keys`, bare ids).
#[cfg(feature = "redis")]
async fn redis_cleanup(url: &str, prefix: &str, mut keys: Vec<String>) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let prefixed: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    keys.extend(prefixed);
    keys.sort_unstable();
    keys.dedup();
    for chunk in keys.chunks(500) {
        let _: Result<i64, _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
    }
}

#[cfg(not(feature = "redis"))]
pub(super) fn redis(_: &Load, _: usize, _: &tokio::runtime::Runtime, _: ServeCmd<'_>) -> Value {
    json!({ "skipped": "built without the redis feature" })
}

/// PostgreSQL: `PostgresStore` against tower-sessions' sqlx store, each in a table of its
/// own (sessionbase's `sessionbase_bench_http_PID`, tower-sessions' `session` in the schema
/// `ts_bench_http_PID`, created by its `migrate()`), both dropped at the end.
#[cfg(feature = "postgres")]
pub(super) fn postgres(
    load: &Load,
    rounds: usize,
    runtime: &tokio::runtime::Runtime,
    serve_cmd: ServeCmd<'_>,
) -> Value {
    let url = database_url();
    if !reachable(&url) {
        return json!({ "skipped": format!("PostgreSQL not reachable at {url}") });
    }
    let Some(ts_binary) = std::env::var_os("TS_PG_SERVER") else {
        return json!({ "skipped": "TS_PG_SERVER not set (benches/report.sh builds and sets it)" });
    };
    let table = format!("sessionbase_bench_http_{}", std::process::id());
    let schema = format!("ts_bench_http_{}", std::process::id());
    let entries = [
        own(serve_cmd, "sessionbase-pg", "DATABASE_URL", Some(&table)),
        tower_sessions(
            ts_binary,
            "tower-sessions-pg",
            "DATABASE_URL",
            vec![("TS_PG_SCHEMA", schema.clone())],
            load.pin,
        ),
    ];
    let protocol = common::proxy::Protocol::Postgres;
    // Dropped even when a run fails, so that no table outlives the benchmark.
    let _drop = PgCleanup {
        runtime,
        url: &url,
        table: &table,
        schema: &schema,
    };
    section(
        "PostgreSQL",
        load,
        rounds,
        runtime,
        &entries,
        (&url, protocol),
        &mut Vec::new(),
    )
}

#[cfg(feature = "postgres")]
struct PgCleanup<'a> {
    runtime: &'a tokio::runtime::Runtime,
    url: &'a str,
    table: &'a str,
    schema: &'a str,
}

#[cfg(feature = "postgres")]
impl Drop for PgCleanup<'_> {
    fn drop(&mut self) {
        self.runtime.block_on(async {
            let Ok(pool) = sqlx::PgPool::connect(self.url).await else {
                return;
            };
            for sql in [
                format!("DROP TABLE IF EXISTS \"{}\"", self.table),
                format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema),
            ] {
                let _ = sqlx::query(&sql).execute(&pool).await;
            }
            pool.close().await;
        });
    }
}

#[cfg(not(feature = "postgres"))]
pub(super) fn postgres(_: &Load, _: usize, _: &tokio::runtime::Runtime, _: ServeCmd<'_>) -> Value {
    json!({ "skipped": "built without the postgres feature" })
}
