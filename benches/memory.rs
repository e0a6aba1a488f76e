//! Memory (issue #5, benchmark 4):
//!
//! 1. `MemoryStore` holding 1,000,000 small sessions (`{"user_id": n}`): heap bytes per
//!    session (a tracking global allocator: bytes asked for, live) split into the session's
//!    data (its `serde_json` map, measured alone first) and the store's overhead beyond it,
//!    and resident memory per session. tower-sessions' `MemoryStore` is measured the same way
//!    for comparison.
//! 2. Churn: sessions created at a steady rate with a 2-second expiry for a minute
//!    (`SESSIONBASE_BENCH_CHURN_SECS`); live heap and resident memory sampled every second
//!    must stay flat once the live set is reached. tower-sessions' store, which never drops
//!    expired records by itself, runs the same churn for a shorter time for comparison.
//!
//! `cargo bench --bench memory` writes `target/bench-results/memory.json`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sessionbase::MemoryStore;
use sessionbase::store::{Record, SessionStore};
use time::OffsetDateTime;

/// Tracks the bytes currently allocated.
struct Tracking;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

fn live() -> i64 {
    LIVE.load(Relaxed)
}

/// Resident set size, bytes.
fn rss() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn small_map(n: u64) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("user_id".into(), json!(n));
    map
}

fn sessionbase_million(runtime: &tokio::runtime::Runtime, n: usize) -> Value {
    let expiry = OffsetDateTime::now_utc() + time::Duration::weeks(2);
    let (live0, rss0) = (live(), rss());
    let records: Vec<Record> = (0..n as u64)
        .map(|i| Record {
            data: Arc::new(small_map(i)),
            expiry_date: expiry,
        })
        .collect();
    let vec_bytes = (records.capacity() * size_of::<Record>()) as i64;
    let data_bytes = (live() - live0 - vec_bytes) as f64 / n as f64;
    let json_bytes = serde_json::to_string(&*records[n / 2].data)
        .expect("json")
        .len();
    let store = MemoryStore::new();
    let started = Instant::now();
    runtime.block_on(async {
        for record in &records {
            store.create(record).await.expect("create");
        }
    });
    let elapsed = started.elapsed();
    drop(records);
    assert_eq!(store.len(), n);
    let total = (live() - live0) as f64 / n as f64;
    let resident = (rss() - rss0) as f64 / n as f64;
    drop(store);
    json!({
        "sessions": n,
        "json_bytes": json_bytes,
        "data_heap_bytes": data_bytes,
        "heap_bytes_per_session": total,
        "overhead_beyond_data": total - data_bytes,
        "rss_bytes_per_session": resident,
        "create_ns": elapsed.as_nanos() as f64 / n as f64,
    })
}

fn tower_sessions_million(runtime: &tokio::runtime::Runtime, n: usize) -> Value {
    use tower_sessions::SessionStore as _;
    use tower_sessions::session::{Id, Record as TsRecord};
    let expiry = OffsetDateTime::now_utc() + time::Duration::weeks(2);
    let (live0, rss0) = (live(), rss());
    let mut records: Vec<TsRecord> = (0..n as u64)
        .map(|i| TsRecord {
            id: Id::default(),
            data: HashMap::from([("user_id".to_owned(), json!(i))]),
            expiry_date: expiry,
        })
        .collect();
    let vec_bytes = (records.capacity() * size_of::<TsRecord>()) as i64;
    let data_bytes = (live() - live0 - vec_bytes) as f64 / n as f64;
    let store = tower_sessions::MemoryStore::default();
    runtime.block_on(async {
        for record in &mut records {
            store.create(record).await.expect("create");
        }
    });
    drop(records);
    let total = (live() - live0) as f64 / n as f64;
    let resident = (rss() - rss0) as f64 / n as f64;
    drop(store);
    json!({
        "sessions": n,
        "data_heap_bytes": data_bytes,
        "heap_bytes_per_session": total,
        "overhead_beyond_data": total - data_bytes,
        "rss_bytes_per_session": resident,
    })
}

/// Creates `rate` sessions a second, each expiring `ttl` later, for `secs` seconds through
/// `create`; samples every second.
fn churn(
    runtime: &tokio::runtime::Runtime,
    secs: u64,
    rate: u64,
    ttl: Duration,
    mut create: impl AsyncFnMut(OffsetDateTime),
    len: impl Fn() -> usize,
) -> Value {
    const TICKS_PER_SEC: u64 = 100;
    let per_tick = rate / TICKS_PER_SEC;
    let ttl = time::Duration::try_from(ttl).expect("ttl");
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut created = 0u64;
    runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / TICKS_PER_SEC));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut next_sample = 1;
        while start.elapsed() < Duration::from_secs(secs) {
            tick.tick().await;
            let expiry = OffsetDateTime::now_utc() + ttl;
            for _ in 0..per_tick {
                create(expiry).await;
            }
            created += per_tick;
            let t = start.elapsed().as_secs_f64();
            if t >= next_sample as f64 {
                next_sample += 1;
                samples.push(json!({
                    "t": t, "live_bytes": live(), "rss_bytes": rss(), "records": len(),
                    "created": created,
                }));
            }
        }
    });
    // Flat: the peak of the second half of the steady window against the peak of its first
    // half. The store reclaims expired records in periodic sweeps, so single samples swing
    // between about one and two live sets with the phase of the sampling; peaks do not.
    let settle = (ttl.as_seconds_f64() * 5.0).max(5.0).min(secs as f64 / 2.0);
    let steady: Vec<&Value> = samples
        .iter()
        .filter(|s| s["t"].as_f64().unwrap_or(0.0) >= settle)
        .collect();
    let growth = |key: &str| -> Value {
        if steady.len() < 4 {
            return Value::Null;
        }
        let (first, second) = steady.split_at(steady.len() / 2);
        let peak = |half: &[&Value]| {
            half.iter()
                .filter_map(|s| s[key].as_f64())
                .fold(0.0, f64::max)
        };
        let (a, b) = (peak(first), peak(second));
        json!((b - a) / a)
    };
    let max_of = |key: &str| {
        steady
            .iter()
            .filter_map(|s| s[key].as_f64())
            .fold(0.0, f64::max)
    };
    json!({
        "seconds": secs,
        "rate_per_sec": rate,
        "achieved_rate": created as f64 / start.elapsed().as_secs_f64(),
        "ttl_secs": ttl.as_seconds_f64(),
        "settled_after_secs": settle,
        "live_growth": growth("live_bytes"),
        "rss_growth": growth("rss_bytes"),
        "max_live_bytes": max_of("live_bytes"),
        "max_rss_bytes": max_of("rss_bytes"),
        "samples": samples,
    })
}

fn main() {
    if common::invoked_as_test() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n: usize = env_or("SESSIONBASE_BENCH_SESSIONS", 1_000_000);
    let churn_secs: u64 = env_or("SESSIONBASE_BENCH_CHURN_SECS", 60);
    let ts_churn_secs: u64 = env_or("SESSIONBASE_BENCH_TS_CHURN_SECS", 10);
    let rate: u64 = env_or("SESSIONBASE_BENCH_CHURN_RATE", 100_000);
    let ttl = Duration::from_secs(2);
    let mut out = serde_json::Map::new();

    eprintln!("sessionbase MemoryStore, {n} sessions…");
    out.insert("sessionbase".into(), sessionbase_million(&runtime, n));
    eprintln!("tower-sessions MemoryStore, {n} sessions…");
    out.insert("tower_sessions".into(), tower_sessions_million(&runtime, n));

    eprintln!("sessionbase churn, {churn_secs} s at {rate}/s…");
    let store = MemoryStore::new();
    let mut i = 0u64;
    let result = churn(
        &runtime,
        churn_secs,
        rate,
        ttl,
        async |expiry| {
            i += 1;
            let record = Record {
                data: Arc::new(small_map(i)),
                expiry_date: expiry,
            };
            store.create(&record).await.expect("create");
        },
        || store.len(),
    );
    out.insert("sessionbase_churn".into(), result);
    drop(store);

    if ts_churn_secs > 0 {
        use tower_sessions::SessionStore as _;
        use tower_sessions::session::{Id, Record as TsRecord};
        eprintln!("tower-sessions churn, {ts_churn_secs} s at {rate}/s…");
        let store = tower_sessions::MemoryStore::default();
        let mut i = 0u64;
        let created = std::cell::Cell::new(0usize);
        let result = churn(
            &runtime,
            ts_churn_secs,
            rate,
            ttl,
            async |expiry| {
                i += 1;
                let mut record = TsRecord {
                    id: Id::default(),
                    data: HashMap::from([("user_id".to_owned(), json!(i))]),
                    expiry_date: expiry,
                };
                store.create(&mut record).await.expect("create");
                created.set(created.get() + 1);
            },
            || created.get(),
        );
        out.insert("tower_sessions_churn".into(), result);
    }

    let text = serde_json::to_string_pretty(&Value::Object(out)).expect("json");
    let path = common::results_dir().join("memory.json");
    std::fs::write(&path, &text).expect("write memory.json");
    eprintln!("wrote {}", path.display());
}
