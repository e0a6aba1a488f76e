//! Many instances under load (issue #13, part 4): two instances of one app over loopback
//! HTTP on one store (PostgreSQL; Redis; the Redis Cluster of `REDIS_CLUSTER_URLS`),
//! many connections on many sessions, logins, updates and logouts mixed. Checked: no 5xx,
//! no crossed session (a response always names the session's own user), no lost update of
//! disjoint keys (two connections share each session, each counting in its own key, one on
//! each instance), and a logout on one instance is seen by the other at once. Printed:
//! requests/s, p50/p99, errors by kind and the process's resident memory over the run.
//!
//! Bounded by `SESSIONBASE_LOAD_SECS` (default 5), `SESSIONBASE_LOAD_CONNECTIONS` (default
//! 64, even) and `SESSIONBASE_LOAD_SESSIONS` (default 640); the published run is
//! `SESSIONBASE_LOAD_SECS=60 SESSIONBASE_LOAD_CONNECTIONS=1000 SESSIONBASE_LOAD_SESSIONS=10000
//! cargo test --release --all-features --test it load:: -- --nocapture --test-threads 1`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;
use sessionbase::{Session, SessionConfig, SessionLayer, SessionStore};

use crate::common::spawn;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    u: String,
    #[serde(default)]
    k: String,
}

/// Logs `u` in on a fresh key, as Django's `login()` does.
async fn login(session: Session, Query(p): Query<Params>) -> Result<String, sessionbase::Error> {
    session.cycle_key().await?;
    session.insert("user", &p.u)?;
    Ok(p.u)
}

/// `<user>:<n>`: the session's user and the new value of its counter `k`.
async fn bump(session: Session, Query(p): Query<Params>) -> Result<String, sessionbase::Error> {
    let user: Option<String> = session.get("user")?;
    let n = session.get::<u64>(&p.k)?.unwrap_or(0) + 1;
    session.insert(p.k, n)?;
    Ok(format!("{}:{n}", user.unwrap_or_default()))
}

async fn who(session: Session) -> Result<String, sessionbase::Error> {
    Ok(session.get::<String>("user")?.unwrap_or_else(|| "-".into()))
}

async fn logout(session: Session) -> Result<&'static str, sessionbase::Error> {
    session.flush().await?;
    Ok("bye")
}

fn app<S: SessionStore>(store: S) -> Router {
    let config = SessionConfig::default().with_store_timeout(Some(Duration::from_secs(5)));
    Router::new()
        .route("/login", get(login))
        .route("/bump", get(bump))
        .route("/who", get(who))
        .route("/logout", get(logout))
        .layer(
            SessionLayer::new(store)
                .with_config(config)
                .expect("a valid configuration"),
        )
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Latencies in fixed memory (so that the run's memory shows the servers', not a growing
/// log of the test's own): 32 buckets per power of two of microseconds, ≤ 3% apart.
struct Latencies([u64; Latencies::BUCKETS]);

impl Default for Latencies {
    fn default() -> Self {
        Self([0; Self::BUCKETS])
    }
}

impl Latencies {
    const SUB: u32 = 32;
    const BUCKETS: usize = 40 * Self::SUB as usize;

    fn bucket(latency: Duration) -> usize {
        let us = latency.as_micros().clamp(1, u128::from(u64::MAX)) as u64;
        let power = 63 - us.leading_zeros();
        let below = if power >= 5 {
            (us >> (power - 5)) & u64::from(Self::SUB - 1)
        } else {
            (us << (5 - power)) & u64::from(Self::SUB - 1)
        };
        ((power * Self::SUB) as usize + below as usize).min(Self::BUCKETS - 1)
    }

    /// The lower bound of bucket `i`.
    fn floor(i: usize) -> Duration {
        let (power, below) = (i as u32 / Self::SUB, i as u64 % u64::from(Self::SUB));
        let us = ((u64::from(Self::SUB) + below) << power) >> 5;
        Duration::from_micros(us)
    }

    fn push(&mut self, latency: Duration) {
        self.0[Self::bucket(latency)] += 1;
    }

    fn extend(&mut self, other: &Latencies) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    fn len(&self) -> u64 {
        self.0.iter().sum()
    }

    fn at(&self, q: f64) -> Duration {
        let rank = (self.len() as f64 * q) as u64;
        let mut seen = 0;
        for (i, n) in self.0.iter().enumerate() {
            seen += n;
            if seen > rank {
                return Self::floor(i);
            }
        }
        Duration::ZERO
    }
}

/// What every connection saw.
#[derive(Default)]
struct Tally {
    latencies: Box<Latencies>,
    errors: HashMap<String, usize>,
    crossed: usize,
    lost: usize,
    stale_logouts: usize,
}

impl Tally {
    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(&other.latencies);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.crossed += other.crossed;
        self.lost += other.lost;
        self.stale_logouts += other.stale_logouts;
    }
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    /// The status, the body and the session cookie the response set, if any.
    async fn get(
        &self,
        url: &str,
        cookie: Option<&str>,
        tally: &mut Tally,
    ) -> Option<(u16, String, Option<String>)> {
        let mut request = self.http.get(url);
        if let Some(key) = cookie {
            request = request.header(reqwest::header::COOKIE, format!("sessionid={key}"));
        }
        let sent = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                tally.error(format!("transport: {error}"));
                return None;
            }
        };
        let status = response.status().as_u16();
        let set = response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .and_then(|p| p.strip_prefix("sessionid="))
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        tally.latencies.push(sent.elapsed());
        if status != 200 {
            tally.error(format!("HTTP {status}"));
        }
        Some((status, body, set))
    }
}

/// Runs the load on `instances` (two base URLs) and asserts what the module docs say.
async fn under_load(label: &str, instances: [String; 2]) {
    let secs = knob("SESSIONBASE_LOAD_SECS", 5) as u64;
    let connections = knob("SESSIONBASE_LOAD_CONNECTIONS", 64).max(2) & !1;
    let sessions = knob("SESSIONBASE_LOAD_SESSIONS", 640).max(connections / 2);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let client = Arc::new(Client { http });
    let instances = Arc::new(instances);

    // Every session logged in once, as user `u<j>`, alternately on either instance.
    let mut tally = Tally::default();
    let mut cookies = Vec::with_capacity(sessions);
    let mut logins = tokio::task::JoinSet::new();
    for chunk in (0..sessions)
        .collect::<Vec<_>>()
        .chunks(sessions.div_ceil(connections))
    {
        let (client, instances, chunk) = (client.clone(), instances.clone(), chunk.to_vec());
        logins.spawn(async move {
            let mut tally = Tally::default();
            let mut made = Vec::new();
            for j in chunk {
                let url = format!("{}/login?u=u{j}", instances[j % 2]);
                let cookie = client.get(&url, None, &mut tally).await.and_then(|r| r.2);
                made.push((j, cookie.expect("login sets a cookie")));
            }
            (made, tally)
        });
    }
    while let Some(joined) = logins.join_next().await {
        let (made, t) = joined.expect("login task");
        cookies.extend(made);
        tally.merge(t);
    }
    cookies.sort();
    let cookies: Arc<Vec<String>> = Arc::new(cookies.into_iter().map(|(_, c)| c).collect());

    let stop = Arc::new(AtomicBool::new(false));
    let memory = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut samples = vec![resident_kib()];
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                samples.push(resident_kib());
            }
            samples
        }
    });
    let began = Instant::now();
    let deadline = began + Duration::from_secs(secs);
    let half = connections / 2;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (client, instances, cookies) = (client.clone(), instances.clone(), cookies.clone());
        tasks.spawn(async move {
            // Connection `c` and `c + half` share the sessions `j ≡ c (mod half)`, each
            // counting in its own key, on different instances.
            let base = &instances[c % 2];
            let mine: Vec<usize> = (c % half..cookies.len()).step_by(half).collect();
            let mut counts = vec![0u64; mine.len()];
            let mut tally = Tally::default();
            let mut round = 0usize;
            while Instant::now() < deadline {
                let slot = round % mine.len();
                let j = mine[slot];
                round += 1;
                let url = format!("{base}/bump?k=c{c}");
                if let Some((200, body, _)) = client.get(&url, Some(&cookies[j]), &mut tally).await
                {
                    counts[slot] += 1;
                    match body.split_once(':') {
                        Some((user, n)) if user == format!("u{j}") => {
                            if n.parse::<u64>().ok() != Some(counts[slot]) {
                                tally.lost += 1;
                                counts[slot] = n.parse().unwrap_or(counts[slot]);
                            }
                        }
                        _ => tally.crossed += 1,
                    }
                }
                if round.is_multiple_of(16) {
                    // A throwaway login, logged out on this instance and looked at on the
                    // other at once with the old cookie.
                    let other = &instances[(c + 1) % 2];
                    let url = format!("{base}/login?u=tmp{c}");
                    if let Some((200, _, Some(key))) = client.get(&url, None, &mut tally).await {
                        let out = format!("{base}/logout");
                        client.get(&out, Some(&key), &mut tally).await;
                        let look = format!("{other}/who");
                        if let Some((200, body, _)) =
                            client.get(&look, Some(&key), &mut tally).await
                            && body != "-"
                        {
                            tally.stale_logouts += 1;
                        }
                    }
                }
            }
            (c, mine, counts, tally)
        });
    }
    let mut finals = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (c, mine, counts, t) = joined.expect("connection task");
        tally.merge(t);
        finals.push((c, mine, counts));
    }
    let elapsed = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let samples = memory.await.expect("memory sampler");

    // Every counter as its connection left it, read back through the other instance.
    let mut check = Tally::default();
    for (c, mine, counts) in &finals {
        for (slot, j) in mine.iter().enumerate().filter(|(i, _)| i % 8 == 0) {
            let url = format!("{}/bump?k=c{c}", instances[(c + 1) % 2]);
            if let Some((200, body, _)) = client.get(&url, Some(&cookies[*j]), &mut check).await {
                let expected = format!("u{j}:{}", counts[slot] + 1);
                if body != expected {
                    check.lost += 1;
                }
            }
        }
    }

    let latencies = &tally.latencies;
    let at = |q: f64| latencies.at(q);
    // Resident memory a third, two thirds and all the way into the run (sampled every 0.5 s).
    let third = |k: usize| {
        samples
            .get((samples.len() * k / 3).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let (first, middle, last) = (third(1), third(2), third(3));
    eprintln!(
        "load [{label}]: {connections} connections, {sessions} sessions, {:.1} s: {} requests, \
         {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms; errors {:?}; crossed {}, lost {} (+{} at \
         the check), stale logouts {}; resident memory at ⅓, ⅔ and the end {} → {} → {} KiB",
        elapsed.as_secs_f64(),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        tally.errors,
        tally.crossed,
        tally.lost,
        check.lost,
        tally.stale_logouts,
        first,
        middle,
        last,
    );
    assert!(
        tally.errors.is_empty(),
        "errors under load: {:?}",
        tally.errors
    );
    assert!(
        check.errors.is_empty(),
        "errors at the check: {:?}",
        check.errors
    );
    assert_eq!(tally.crossed, 0, "a response named another session's user");
    assert_eq!(
        tally.lost + check.lost,
        0,
        "an increment of a disjoint key was lost"
    );
    assert_eq!(
        tally.stale_logouts, 0,
        "a logout was not seen by the other instance"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres() {
    let Some(table) = crate::common::PgTable::new("load on two instances, PostgreSQL") else {
        return;
    };
    let (a, b) = (table.connect().await, table.connect().await);
    a.migrate().await.expect("migrate");
    under_load("PostgreSQL", [spawn(app(a)).await, spawn(app(b)).await]).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_redis() {
    let Some(redis) = crate::common::RedisPrefix::new("load on two instances, Redis") else {
        return;
    };
    let connect = || async {
        sessionbase::RedisStore::connect(redis.url())
            .await
            .expect("connect to REDIS_URL")
            .with_prefix(format!("{}:", redis.prefix()))
    };
    let (a, b) = (connect().await, connect().await);
    under_load("Redis", [spawn(app(a)).await, spawn(app(b)).await]).await;
}

/// On the cluster of `REDIS_CLUSTER_URLS` (`.ci/run` starts one; locally
/// `scripts/redis-cluster.sh start`): two instances, each with its own cluster connection.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_redis_cluster() {
    let urls = match std::env::var("REDIS_CLUSTER_URLS") {
        Ok(urls) if !urls.trim().is_empty() => urls,
        _ => {
            crate::common::skip(
                "load on two instances, Redis Cluster",
                "REDIS_CLUSTER_URLS not set",
            );
            return;
        }
    };
    let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
    let prefix = format!("sessionbase-test-{}:", crate::common::random());
    let connect = || async {
        sessionbase::RedisStore::cluster(&urls)
            .await
            .expect("connect to the cluster")
            .with_prefix(prefix.clone())
    };
    let (a, b) = (connect().await, connect().await);
    let outcome = tokio::spawn(async move {
        under_load("Redis Cluster", [spawn(app(a)).await, spawn(app(b)).await]).await;
    })
    .await;
    crate::common::clean_up_and_resume(&urls, &prefix, outcome).await;
}

#[test]
fn latency_buckets_are_within_three_percent() {
    let mut l = Latencies::default();
    for us in 1..=10_000u64 {
        l.push(Duration::from_micros(us));
    }
    assert_eq!(l.len(), 10_000);
    for (q, exact) in [(0.5, 5_000.0), (0.99, 9_900.0)] {
        let got = l.at(q).as_micros() as f64;
        assert!((got - exact).abs() / exact < 0.03, "q {q}: {got} µs");
    }
    assert_eq!(
        Latencies::floor(Latencies::bucket(Duration::from_micros(3))).as_micros(),
        3
    );
}
