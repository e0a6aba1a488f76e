//! Over loopback HTTP (issue #5, benchmark 2): a real server per contender and `wrk` as the
//! load generator, for scenarios a, c, d and e on in-memory stores, and c, d and f on Redis
//! and PostgreSQL (`http/stores.rs`: sessionbase's stores against tower-sessions 0.14 with
//! its Redis and sqlx stores, built from `benches/ts_redis_server` and `benches/ts_pg_server`
//! and named by `TS_REDIS_SERVER` and `TS_PG_SERVER`).
//!
//! Each server is this binary in `serve` mode (or a tower-sessions binary), a
//! one-worker Tokio runtime pinned to CPU 0; `wrk` (one thread) is pinned to CPU 1. Every
//! server of a scenario starts first and runs a warm-up; then the contenders take turns, one
//! `wrk` run each, for several rounds (A B C, C B A, A B C …) so that drift of the machine
//! falls on all of them alike. Requests of b, c, d and f rotate over 1,000 sessions created
//! beforehand through the server's own router, so that concurrent requests never share one.
//! Besides requests/s and wrk's latencies, each run records the server process's CPU time
//! (utime + stime from `/proc/PID/stat`) per request.
//!
//! `cargo bench --all-features --bench http` writes `target/bench-results/http.json`.
//! Knobs: `SESSIONBASE_BENCH_HTTP_SECS` (per run, default 2), `SESSIONBASE_BENCH_HTTP_ROUNDS`
//! (default 4), `SESSIONBASE_BENCH_HTTP_CONNECTIONS` (default 32).

mod common;
#[path = "http/stores.rs"]
mod stores;

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

/// `http serve CONTENDER COOKIES_FILE [STORE_NAME]`: the server side. STORE_NAME is the
/// Redis key prefix or the PostgreSQL table of a store contender; `BENCH_SESSIONS` sessions
/// (default 1,000) are created; `BENCH_SAVE_EVERY_REQUEST=1` configures scenario f.
fn serve(contender: &str, cookies_file: &Path, store_name: Option<&str>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sessions: usize = env_or("BENCH_SESSIONS", SESSIONS);
    let scenario = if std::env::var("BENCH_SAVE_EVERY_REQUEST").as_deref() == Ok("1") {
        Scenario::F
    } else {
        Scenario::C
    };
    runtime.block_on(async move {
        let (app, kind): (Router, Contender) =
            match stores::router(contender, store_name, scenario).await {
                Some(app) => (app, Contender::Sessionbase),
                None if contender == "sessionbase" => (
                    common::sessionbase_router_for(sessionbase::MemoryStore::new(), scenario),
                    Contender::Sessionbase,
                ),
                None => {
                    let c = Contender::from_name(contender).expect("contender");
                    (c.router(), c)
                }
            };
        let mut cookies = String::new();
        for _ in 0..sessions {
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
    let writes = server.name != "bare" && scenario.writes();
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
    /// Clock ticks per second of `/proc/PID/stat`'s times.
    clock_ticks: f64,
}

/// utime + stime of process `pid`, in clock ticks (every thread's, children excluded).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
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
        let cpu_before = cpu_ticks(server.child.id());
        let output = command.output().expect("run wrk");
        let cpu_after = cpu_ticks(server.child.id());
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
        let cpu_us = match (cpu_before, cpu_after) {
            (Some(a), Some(b)) if requests > 0.0 => {
                json!((b - a) as f64 / self.clock_ticks * 1e6 / requests)
            }
            _ => Value::Null,
        };
        json!({
            "rps": requests / duration,
            "p50_us": r["p50_us"],
            "p99_us": r["p99_us"],
            "cpu_us": cpu_us,
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
        let cpu = pick("cpu_us");
        out.insert(
            server.name.into(),
            json!({
                "rps": pick("rps"), "p99_us": pick("p99_us"), "p50_us": pick("p50_us"),
                "cpu_us": if cpu.is_finite() { json!(cpu) } else { Value::Null },
                "runs": runs,
            }),
        );
        eprintln!(
            "  {:<24} {:>10.0} req/s  p99 {:>6.0} µs  CPU {:>5.1} µs/req",
            server.name,
            pick("rps"),
            pick("p99_us"),
            cpu
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
        clock_ticks: clock_ticks(),
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
    out.insert(
        "redis".into(),
        stores::redis(&load, rounds, &runtime, &serve_cmd),
    );
    out.insert(
        "postgres".into(),
        stores::postgres(&load, rounds, &runtime, &serve_cmd),
    );
    let text = serde_json::to_string_pretty(&Value::Object(out)).expect("json");
    std::fs::write(&result_path, text).expect("write http.json");
    eprintln!("wrote {}", result_path.display());
}

/// `getconf CLK_TCK` (the unit of `/proc/PID/stat`'s times), 100 when it does not answer.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
