//! The Redis store on a real Redis Cluster, over real HTTP, while the cluster misbehaves: a
//! primary killed (`failover`), slots resharded and a node paused (`failover`), and saves
//! acknowledged by replicas or not when a primary dies (`acks`).
//!
//! Each test starts a cluster of its own through `scripts/redis-cluster.sh`
//! (`common::Cluster`, stopped on drop), so that killing a node disturbs no other test.
//! Needs `redis-server` and `redis-cli`; without them each test says so and passes (fails
//! with `SESSIONBASE_REQUIRE_ALL_SUITES`). Timings are reported on stderr, never asserted:
//! run with `--nocapture` to see them.

#![cfg(all(feature = "redis", feature = "axum"))]

mod acks;
mod failover;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;
use sessionbase::{RedisStore, Session, SessionConfig, SessionLayer};
use tokio::time::Instant;

use crate::common::{Cluster, Primary, spawn};

const COOKIE: &str = "sessionid";
const PREFIX: &str = "sessionbase-cluster-test:";
/// The layer's `store_timeout`: a request on a node that does not answer ends in a 503
/// after this long.
const STORE_TIMEOUT: Duration = Duration::from_millis(1500);

async fn get_n(session: Session) -> Result<String, sessionbase::Error> {
    Ok(match session.get::<u64>("n")? {
        Some(n) => n.to_string(),
        None => "none".to_owned(),
    })
}

async fn incr(session: Session) -> Result<String, sessionbase::Error> {
    let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
    session.insert("n", n)?;
    Ok(n.to_string())
}

#[derive(Deserialize)]
struct Set {
    n: u64,
}

async fn set_n(session: Session, Query(set): Query<Set>) -> Result<String, sessionbase::Error> {
    session.insert("n", set.n)?;
    Ok(set.n.to_string())
}

/// The app on `store`: `/get`, `/incr` and `/set?n=` on the session's `n`.
async fn app(store: RedisStore) -> String {
    let layer = SessionLayer::new(store.with_prefix(PREFIX))
        .with_config(SessionConfig::default().with_store_timeout(Some(STORE_TIMEOUT)))
        .expect("config");
    let app = Router::new()
        .route("/get", get(get_n))
        .route("/incr", get(incr))
        .route("/set", get(set_n))
        .layer(layer);
    spawn(app).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// GET `path` with the session cookie `key` (when given): the status, the body and the new
/// session cookie if one was set.
async fn request(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut builder = client.get(url);
    if let Some(key) = key {
        builder = builder.header(reqwest::header::COOKIE, format!("{COOKIE}={key}"));
    }
    let response = builder.send().await.expect("request");
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .filter_map(|h| h.split(';').next()?.split_once('='))
        .find(|(name, _)| name.trim() == COOKIE)
        .map(|(_, value)| value.trim().to_owned());
    let body = response.text().await.expect("body");
    (status, body, cookie)
}

/// One session of the load: its key and the primary that held its slot at the start.
struct Tracked {
    key: String,
    slot: u16,
    primary: String,
}

/// Creates `count` sessions through the app (`n = 0`) and notes where each one lives.
async fn sessions(cluster: &Cluster, base: &str, count: usize) -> Vec<Tracked> {
    let client = http();
    let primaries = cluster
        .primaries(cluster.ports().next().expect("a node"))
        .await;
    let mut tracked = Vec::with_capacity(count);
    for _ in 0..count {
        let (status, _, cookie) = request(&client, &format!("{base}/set?n=0"), None).await;
        assert_eq!(status, 200);
        let key = cookie.expect("a new session sets its cookie");
        let slot = cluster.slot(&format!("{PREFIX}{key}")).await;
        let primary = owner(&primaries, slot).id.clone();
        tracked.push(Tracked { key, slot, primary });
    }
    tracked
}

fn owner(primaries: &[Primary], slot: u16) -> &Primary {
    primaries
        .iter()
        .find(|p| p.serves(slot))
        .expect("every slot has a primary")
}

/// One request of the load.
struct Outcome {
    session: usize,
    /// When it was answered, from the start of the load.
    at: Duration,
    latency: Duration,
    status: u16,
    body: String,
}

/// How long the load goes on after the disruption is over, to see the recovery.
const TAIL: Duration = Duration::from_secs(3);

/// `tasks` tasks sending `path` (`{i}` replaced by the request's sequence number in its
/// session) for their share of `sessions`, one request at a time per session, until `tail`
/// after `disrupt` has completed (the requests under way then are answered); every outcome.
async fn load(
    base: &str,
    sessions: &[Tracked],
    tasks: usize,
    path: &'static str,
    disrupt: impl Future<Output = ()>,
    tail: Duration,
) -> Vec<Outcome> {
    let start = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let keys: Arc<Vec<String>> = Arc::new(sessions.iter().map(|s| s.key.clone()).collect());
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (keys, base, done) = (keys.clone(), base.to_owned(), done.clone());
        handles.push(tokio::spawn(async move {
            let client = http();
            let mine: Vec<usize> = (task..keys.len()).step_by(tasks).collect();
            let mut outcomes = Vec::new();
            let mut sequence = 0u64;
            while !done.load(Ordering::Relaxed) {
                sequence += 1;
                for &session in &mine {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let sent = Instant::now();
                    let url = format!("{base}{}", path.replace("{i}", &sequence.to_string()));
                    let (status, body, _) = request(&client, &url, Some(&keys[session])).await;
                    outcomes.push(Outcome {
                        session,
                        at: start.elapsed(),
                        latency: sent.elapsed(),
                        status,
                        body,
                    });
                }
            }
            outcomes
        }));
    }
    disrupt.await;
    tokio::time::sleep(tail).await;
    done.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("load task"));
    }
    all
}

/// The first and last answer with a status other than 200, if any.
fn window(outcomes: &[Outcome]) -> Option<(Duration, Duration)> {
    let failed = outcomes.iter().filter(|o| o.status != 200).map(|o| o.at);
    let first = failed.clone().min()?;
    Some((first, failed.max()?))
}

/// After the disruption: every session answers 200 again, and its `n`.
async fn read_back(base: &str, sessions: &[Tracked]) -> Vec<Option<u64>> {
    let client = http();
    let mut values = Vec::with_capacity(sessions.len());
    for session in sessions {
        let (status, body, _) = request(&client, &format!("{base}/get"), Some(&session.key)).await;
        assert_eq!(
            status, 200,
            "a session still failing after recovery: {body}"
        );
        values.push(body.parse().ok());
    }
    values
}

/// How many requests of each session were answered 200.
fn successes(outcomes: &[Outcome], sessions: usize) -> Vec<u64> {
    let mut counts = vec![0; sessions];
    for outcome in outcomes.iter().filter(|o| o.status == 200) {
        counts[outcome.session] += 1;
    }
    counts
}
