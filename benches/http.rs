//! Over loopback HTTP (issue #5, benchmark 2): a real server per contender and `wrk` as the
//! load generator, for scenarios a, c, d and e on in-memory stores, and c and d on Redis
//! (sessionbase's `RedisStore` against tower-sessions 0.14 with tower-sessions-redis-store
//! 0.16, built from `benches/ts_redis_server` and named by `TS_REDIS_SERVER`).
//!
//! Each server is this binary in `serve` mode (or the tower-sessions Redis binary), a
//! one-worker Tokio runtime pinned to CPU 0; `wrk` (one thread) is pinned to CPU 1. Every
//! server of a scenario starts first and runs a warm-up; then the contenders take turns, one
//! `wrk` run each, for several rounds (A B C, C B A, A B C …) so that drift of the machine
//! falls on all of them alike. Requests of b, c and d rotate over 1,000 sessions created
//! beforehand through the server's own router, so that concurrent requests never share one.
//!
//! `cargo bench --all-features --bench http` writes `target/bench-results/http.json`.
//! Knobs: `SESSIONBASE_BENCH_HTTP_SECS` (per run, default 2), `SESSIONBASE_BENCH_HTTP_ROUNDS`
//! (default 4), `SESSIONBASE_BENCH_HTTP_CONNECTIONS` (default 32).

mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use axum::Router;
use serde_json::{Value, json};

use common::{Contender, Scenario};

const SESSIONS: usize = 1000;

/// Builds the command that starts a server of this binary (`serve NAME COOKIES EXTRA…`),
/// and the path of the cookies file it writes.
type ServeCmd<'a> = &'a dyn Fn(&str, &[&str]) -> (Command, PathBuf);

const WRK_SCRIPT: &str = r#"
local path = os.getenv("WRK_COOKIES")
if path and path ~= "" then
  local cookies = {}
  for line in io.lines(path) do
    if #line > 0 then cookies[#cookies + 1] = line end
  end
  local prepared = {}
  local i = 0
  init = function(args)
    for k, c in ipairs(cookies) do
      prepared[k] = wrk.format("GET", nil, { ["Cookie"] = c })
    end
  end
  request = function()
    i = i % #prepared + 1
    return prepared[i]
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"status_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"#;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(feature = "redis")]
fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// `http serve CONTENDER COOKIES_FILE [REDIS_PREFIX]`: the server side.
fn serve(contender: &str, cookies_file: &Path, prefix: Option<&str>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        #[cfg(not(feature = "redis"))]
        let _ = prefix;
        let (app, kind): (Router, Contender) = match contender {
            #[cfg(feature = "redis")]
            "sessionbase-redis" => {
                let store = sessionbase::RedisStore::connect(&redis_url())
                    .await
                    .expect("connect to Redis")
                    .with_prefix(prefix.expect("a Redis key prefix"));
                (common::sessionbase_router(store), Contender::Sessionbase)
            }
            name => {
                let c = Contender::from_name(name).expect("contender");
                (c.router(), c)
            }
        };
        let mut cookies = String::new();
        for _ in 0..SESSIONS {
            cookies.push_str(&common::cookie_for(kind, &app).await);
            cookies.push('\n');
        }
        std::fs::write(cookies_file, cookies).expect("write cookies");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("listening {}", listener.local_addr().expect("addr").port());
        axum::serve(listener, app).await.expect("serve");
    });
}

/// A server process of the benchmark, killed when dropped.
struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    cookies: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pinned(cpu: &str, program: &Path, pin: bool) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start(name: &'static str, mut command: Command, cookies: PathBuf) -> Server {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the {name} server: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the port");
    let port: u16 = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{name} server said {line:?}"))
        .parse()
        .expect("port");
    Server {
        name,
        child,
        addr: ([127, 0, 0, 1], port).into(),
        cookies,
    }
}

/// Checks one request of `scenario` against `server`: 200, and Set-Cookie exactly when a
/// session layer writes.
fn check(runtime: &tokio::runtime::Runtime, server: &Server, scenario: Scenario) {
    let cookie = std::fs::read_to_string(&server.cookies).expect("cookies");
    let cookie = cookie.lines().next().expect("a cookie");
    let (status, set_cookie) = runtime.block_on(common::http_get(
        server.addr,
        scenario.path(),
        scenario.sends_cookie().then_some(cookie),
    ));
    assert_eq!(status, 200, "{} in scenario {}", server.name, scenario.id());
    let writes = server.name != "bare" && matches!(scenario, Scenario::D | Scenario::E);
    assert_eq!(
        set_cookie.is_some(),
        writes,
        "Set-Cookie of {} in scenario {}",
        server.name,
        scenario.id()
    );
}

struct Load {
    script: PathBuf,
    secs: u64,
    connections: u32,
    pin: bool,
}

impl Load {
    fn run(&self, server: &Server, scenario: Scenario, secs: u64) -> Value {
        let mut command = pinned("1", Path::new("wrk"), self.pin);
        command
            .args(["-t1", &format!("-c{}", self.connections)])
            .arg(format!("-d{secs}s"))
            .args(["--timeout", "5s", "-s"])
            .arg(&self.script)
            .arg(format!("http://{}{}", server.addr, scenario.path()));
        if scenario.sends_cookie() {
            command.env("WRK_COOKIES", &server.cookies);
        } else {
            command.env_remove("WRK_COOKIES");
        }
        let output = command.output().expect("run wrk");
        assert!(output.status.success(), "wrk failed: {output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no result from wrk: {stdout}"));
        let r: Value = serde_json::from_str(line).expect("wrk result");
        let requests = r["requests"].as_f64().unwrap_or(0.0);
        let duration = r["duration_us"].as_f64().unwrap_or(1.0) / 1e6;
        let failed = r["errors"].as_u64().unwrap_or(0) + r["status_errors"].as_u64().unwrap_or(0);
        assert!(
            failed == 0,
            "{} in scenario {}: {failed} failed requests",
            server.name,
            scenario.id()
        );
        json!({
            "rps": requests / duration,
            "p50_us": r["p50_us"],
            "p99_us": r["p99_us"],
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `scenario` against `servers`, interleaved; the medians and every sample.
fn compare(load: &Load, rounds: usize, servers: &[&Server], scenario: Scenario) -> Value {
    for server in servers {
        load.run(server, scenario, 1);
    }
    let mut samples: Vec<Vec<Value>> = vec![Vec::new(); servers.len()];
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..servers.len()).collect()
        } else {
            (0..servers.len()).rev().collect()
        };
        for i in order {
            samples[i].push(load.run(servers[i], scenario, load.secs));
        }
    }
    let mut out = serde_json::Map::new();
    for (server, runs) in servers.iter().zip(samples) {
        let pick = |k: &str| median(runs.iter().filter_map(|r| r[k].as_f64()).collect());
        out.insert(
            server.name.into(),
            json!({ "rps": pick("rps"), "p99_us": pick("p99_us"), "p50_us": pick("p50_us"), "runs": runs }),
        );
        eprintln!(
            "  {:<22} {:>10.0} req/s  p99 {:>6.0} µs",
            server.name,
            pick("rps"),
            pick("p99_us")
        );
    }
    Value::Object(out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return serve(
            &args[2],
            Path::new(&args[3]),
            args.get(4).map(String::as_str),
        );
    }
    if common::invoked_as_test() {
        return;
    }
    let dir = common::results_dir();
    let result_path = dir.join("http.json");
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed (apt-get install wrk): skipping the HTTP benchmark");
        let skipped = json!({ "skipped": "wrk not installed" });
        std::fs::write(&result_path, skipped.to_string()).expect("write");
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = cpus >= 2
        && Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    let script = dir.join("wrk.lua");
    std::fs::write(&script, WRK_SCRIPT).expect("write the wrk script");
    let load = Load {
        script,
        secs: env_or("SESSIONBASE_BENCH_HTTP_SECS", 2),
        connections: env_or("SESSIONBASE_BENCH_HTTP_CONNECTIONS", 32),
        pin,
    };
    let rounds: usize = env_or("SESSIONBASE_BENCH_HTTP_ROUNDS", 4);
    let exe = std::env::current_exe().expect("own path");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let serve_cmd = |name: &str, extra: &[&str]| {
        let cookies = dir.join(format!("http-{name}.cookies"));
        let mut c = pinned("0", &exe, pin);
        c.arg("serve").arg(name).arg(&cookies).args(extra);
        (c, cookies)
    };

    let mut out = serde_json::Map::new();
    out.insert(
        "setup".into(),
        json!({
            "seconds_per_run": load.secs, "rounds": rounds, "connections": load.connections,
            "pinned": pin, "sessions": SESSIONS,
        }),
    );
    {
        // The first seconds of load on a fresh machine run slow: warm it up once.
        let (cmd, cookies) = serve_cmd("bare", &[]);
        let server = start("bare", cmd, cookies);
        load.run(&server, Scenario::A, 3);
    }
    let mut memory = serde_json::Map::new();
    for scenario in [Scenario::A, Scenario::C, Scenario::D, Scenario::E] {
        // Fresh servers per scenario, so that sessions created by e never weigh on others.
        let servers: Vec<Server> = Contender::ISSUE
            .iter()
            .map(|c| {
                let (cmd, cookies) = serve_cmd(c.name(), &[]);
                start(c.name(), cmd, cookies)
            })
            .collect();
        for server in &servers {
            check(&runtime, server, scenario);
        }
        eprintln!("scenario {} ({})", scenario.id(), scenario.describe());
        let refs: Vec<&Server> = servers.iter().collect();
        memory.insert(
            scenario.id().into(),
            compare(&load, rounds, &refs, scenario),
        );
    }
    out.insert("memory".into(), Value::Object(memory));
    out.insert("redis".into(), redis(&load, rounds, &runtime, &serve_cmd));
    let text = serde_json::to_string_pretty(&Value::Object(out)).expect("json");
    std::fs::write(&result_path, text).expect("write http.json");
    eprintln!("wrote {}", result_path.display());
}

#[cfg(feature = "redis")]
fn redis(
    load: &Load,
    rounds: usize,
    runtime: &tokio::runtime::Runtime,
    serve_cmd: ServeCmd<'_>,
) -> Value {
    let url = redis_url();
    let (upstream, _) = common::proxy::split_url(&url);
    if std::net::TcpStream::connect_timeout(&upstream, std::time::Duration::from_secs(1)).is_err() {
        return json!({ "skipped": format!("Redis not reachable at {url}") });
    }
    let Some(ts_binary) = std::env::var_os("TS_REDIS_SERVER") else {
        return json!({ "skipped": "TS_REDIS_SERVER not set (benches/report.sh builds and sets it)" });
    };
    let prefix = format!("sessionbase-bench-http-{}:", std::process::id());
    let dir = common::results_dir();
    let mut out = serde_json::Map::new();
    let ts_cookies = dir.join("http-tower-sessions-redis.cookies");
    for scenario in [Scenario::C, Scenario::D] {
        let (bare_cmd, bare_cookies) = serve_cmd("bare", &[]);
        let (sb_cmd, sb_cookies) = serve_cmd("sessionbase-redis", &[&prefix]);
        let mut ts_cmd = pinned("0", Path::new(&ts_binary), load.pin);
        ts_cmd
            .arg(&ts_cookies)
            .arg(SESSIONS.to_string())
            .env("REDIS_URL", &url);
        let servers = [
            start("bare", bare_cmd, bare_cookies),
            start("sessionbase-redis", sb_cmd, sb_cookies),
            start("tower-sessions-redis", ts_cmd, ts_cookies.clone()),
        ];
        for server in &servers {
            check(runtime, server, scenario);
        }
        eprintln!(
            "Redis, scenario {} ({})",
            scenario.id(),
            scenario.describe()
        );
        let refs: Vec<&Server> = servers.iter().collect();
        out.insert(scenario.id().into(), compare(load, rounds, &refs, scenario));
        drop(servers);
        // tower-sessions keys are the bare session ids; sessionbase's carry the prefix.
        let ids: Vec<String> = std::fs::read_to_string(&ts_cookies)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(_, v)| v.to_owned()))
            .collect();
        runtime.block_on(cleanup(&url, &prefix, ids));
    }
    Value::Object(out)
}

#[cfg(feature = "redis")]
async fn cleanup(url: &str, prefix: &str, mut keys: Vec<String>) {
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
    for chunk in keys.chunks(500) {
        let _: Result<i64, _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
    }
}

#[cfg(not(feature = "redis"))]
fn redis(_: &Load, _: usize, _: &tokio::runtime::Runtime, _: ServeCmd<'_>) -> Value {
    json!({ "skipped": "built without the redis feature" })
}
