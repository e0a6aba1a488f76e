//! The invalidation delay of `RedisStore::with_local_cache` (issue #12 part 1): two stores
//! with local caches on `REDIS_URL` (two instances, their own connections), A and B. For each
//! sample, A creates a session and B loads it (B caches it); then A saves it (even samples)
//! or deletes it (odd samples: a logout), and the delay runs from just before A sends the
//! write to the moment B's tracking connection has evicted its copy. Reported: p50, p99 and
//! the largest delay, with A's own write round trip beside them for scale. Writes
//! `invalidation.json` into the results directory. Without `REDIS_URL` it says so and
//! writes nothing.
//!
//! `SESSIONBASE_BENCH_INVALIDATIONS` sets the number of samples (default 2000).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sessionbase::store::{Record, SaveOutcome};
use sessionbase::{RedisStore, SessionKey, SessionStore};

/// The longest a single invalidation may take before the run is abandoned.
const BOUND: Duration = Duration::from_secs(5);

fn record(n: usize) -> Record {
    let mut map = serde_json::Map::new();
    map.insert("user_id".into(), n.into());
    Record {
        data: Arc::new(map),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    }
}

async fn cached(url: &str, prefix: &str) -> RedisStore {
    let store = RedisStore::connect(url)
        .await
        .expect("connect to REDIS_URL")
        .with_prefix(prefix)
        .with_local_cache(10_000)
        .expect("a local cache");
    let deadline = Instant::now() + BOUND;
    while !store.local_cache_serving() {
        assert!(
            Instant::now() < deadline,
            "the local cache never started serving"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    // Nearest rank; the samples are never empty here.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn run(url: &str, samples: usize) -> serde_json::Value {
    let prefix = format!(
        "sessionbase-bench-{}:",
        SessionKey::generate().expect("rng")
    );
    let a = cached(url, &prefix).await;
    let b = cached(url, &prefix).await;
    let mut delays = Vec::with_capacity(samples);
    let mut writes = Vec::with_capacity(samples);
    for i in 0..samples {
        let (key, version) = a.create(&record(i)).await.expect("create");
        b.load(&key)
            .await
            .expect("load")
            .expect("B loads A's session");
        assert!(b.local_cache_holds(&key), "B did not cache the session");
        let evicted = async {
            let ok = b.local_cache_wait_evicted(&key, BOUND).await;
            (ok, Instant::now())
        };
        let write = async {
            let sent = Instant::now();
            if i % 2 == 0 {
                let outcome = a.save(&key, &record(i + 1), &version).await.expect("save");
                assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
            } else {
                a.delete(&key).await.expect("delete");
            }
            (sent, Instant::now())
        };
        let ((ok, evicted_at), (sent, answered)) = tokio::join!(evicted, write);
        assert!(ok, "B never heard of A's write");
        delays.push(evicted_at.saturating_duration_since(sent));
        writes.push(answered.saturating_duration_since(sent));
        if i % 2 == 0 {
            a.delete(&key).await.expect("delete");
        }
    }
    delays.sort_unstable();
    writes.sort_unstable();
    let p99 = percentile(&delays, 0.99);
    serde_json::json!({
        "samples": samples,
        "delay_p50_us": micros(percentile(&delays, 0.50)),
        "delay_p99_us": micros(p99),
        "delay_max_us": micros(delays[delays.len() - 1]),
        "write_rtt_p50_us": micros(percentile(&writes, 0.50)),
        "write_rtt_p99_us": micros(percentile(&writes, 0.99)),
        "target_p99_ms": 5,
        "met": p99 <= Duration::from_millis(5),
    })
}

fn main() {
    if common::invoked_as_test() {
        return;
    }
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("invalidation: REDIS_URL not set, nothing measured");
        return;
    };
    let samples: usize = std::env::var("SESSIONBASE_BENCH_INVALIDATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(run(&url, samples.max(1)));
    eprintln!(
        "invalidation delay over {samples} writes: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs (A's write round trip p50 {:.0} µs)",
        result["delay_p50_us"].as_f64().unwrap_or_default(),
        result["delay_p99_us"].as_f64().unwrap_or_default(),
        result["delay_max_us"].as_f64().unwrap_or_default(),
        result["write_rtt_p50_us"].as_f64().unwrap_or_default(),
    );
    let path = common::results_dir().join("invalidation.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result).expect("JSON"))
        .expect("write results");
}
