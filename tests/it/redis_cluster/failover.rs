//! A primary killed, slots resharded, a node paused, all under load: only the sessions on
//! the node in trouble see 503, for as long as the trouble lasts, and nothing is lost to a
//! redirection.

use std::time::Duration;

use sessionbase::RedisStore;
use tokio::time::{Instant, sleep};

use super::{
    STORE_TIMEOUT, TAIL, Tracked, app, load, owner, read_back, sessions, successes, window,
};
use crate::common::{Cluster, note};

/// The first node: always up in these tests, asked about the topology.
fn first(cluster: &Cluster) -> u16 {
    cluster.ports().next().expect("a node")
}

/// Checks that only sessions whose primary is `victim` saw something other than 200, and
/// that it was 503.
fn only_the_victims_failed(outcomes: &[super::Outcome], sessions: &[Tracked], victim: &str) {
    for outcome in outcomes.iter().filter(|o| o.status != 200) {
        assert_eq!(outcome.status, 503, "{}", outcome.body);
        let session = &sessions[outcome.session];
        assert_eq!(
            session.primary, victim,
            "session on slot {} (not on the disrupted primary) answered {}",
            session.slot, outcome.status
        );
    }
}

/// A primary SIGKILLed mid-load: its replica takes over within the cluster's node timeout,
/// the store follows the new topology without a restart, and the sessions on the other
/// primaries never notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_fails_over_and_only_its_sessions_see_503() {
    let what = "Redis Cluster failover under load";
    let Some(cluster) = Cluster::start(what, Duration::from_secs(1)).await else {
        return;
    };
    let store = RedisStore::cluster(cluster.urls()).await.expect("connect");
    let base = app(store).await;
    let sessions = sessions(&cluster, &base, 48).await;
    // The sessions reach the replicas (asynchronously) long before the kill.
    sleep(Duration::from_millis(500)).await;
    let victim = sessions[0].primary.clone();
    let primaries = cluster.primaries(first(&cluster)).await;
    let killed = primaries.iter().find(|p| p.id == victim).expect("victim");
    let pid = cluster.pid(killed.port).await;

    let start = Instant::now();
    let mut killed_at = Duration::ZERO;
    let outcomes = load(&base, &sessions, 8, "/incr", async {
        sleep(Duration::from_secs(2)).await;
        cluster.signal(pid, "KILL");
        killed_at = start.elapsed();
        cluster.wait_covered(Some(killed)).await;
        note(&format!(
            "cluster failover: primary {} killed at {killed_at:?}, replica promoted (every slot covered) at {:?}",
            killed.port,
            start.elapsed()
        ));
    }, TAIL)
    .await;

    only_the_victims_failed(&outcomes, &sessions, &victim);
    match window(&outcomes) {
        Some((a, b)) => note(&format!(
            "cluster failover: 503 from {a:?} to {b:?} ({:?}), on the killed primary's sessions only; {} of {} requests",
            b - a,
            outcomes.iter().filter(|o| o.status != 200).count(),
            outcomes.len()
        )),
        None => note("cluster failover: no request failed"),
    }
    // The outage as the killed primary's sessions saw it: from the kill to the first
    // success of a request sent after it.
    let recovered = outcomes
        .iter()
        .filter(|o| sessions[o.session].primary == victim && o.status == 200)
        .filter(|o| o.at.saturating_sub(o.latency) > killed_at)
        .map(|o| o.at)
        .min()
        .expect("the killed primary's sessions recovered");
    note(&format!(
        "cluster failover: the killed primary's sessions were served again {:?} after the kill",
        recovered - killed_at
    ));
    // Recovered without a restart: each session's last request of the load succeeded.
    for (i, _) in sessions.iter().enumerate() {
        let last = outcomes.iter().rfind(|o| o.session == i).expect("requests");
        assert_eq!(
            last.status, 200,
            "session {i} had not recovered: {}",
            last.body
        );
    }
    let values = read_back(&base, &sessions).await;
    let counts = successes(&outcomes, sessions.len());
    for (i, session) in sessions.iter().enumerate() {
        if session.primary == victim {
            // Increments acknowledged just before the kill may be lost (asynchronous
            // replication, see tests `acks`); the session itself is not.
            assert!(values[i].is_some(), "session {i} lost in the failover");
        } else {
            assert_eq!(
                values[i],
                Some(counts[i]),
                "session {i} on a healthy primary"
            );
        }
    }
}

/// Slots holding live sessions moved to another primary mid-load (`redis-cli --cluster
/// reshard`): the store follows MOVED and ASK, no request fails, no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_under_load_loses_nothing() {
    let what = "Redis Cluster resharding under load";
    // No node fails here: a long node timeout rules out a failover of a node starved of
    // CPU by a busy machine.
    let Some(cluster) = Cluster::start(what, Duration::from_secs(60)).await else {
        return;
    };
    let store = RedisStore::cluster(cluster.urls()).await.expect("connect");
    let base = app(store).await;
    let sessions = sessions(&cluster, &base, 96).await;
    let primaries = cluster.primaries(first(&cluster)).await;
    let from = owner(&primaries, sessions[0].slot).clone();
    let to = primaries
        .iter()
        .find(|p| p.id != from.id)
        .expect("a second primary")
        .clone();
    // `reshard` moves the source's lowest slots: enough of them to take five sessions.
    let mut slots: Vec<u16> = sessions
        .iter()
        .filter(|s| s.primary == from.id)
        .map(|s| s.slot)
        .collect();
    slots.sort_unstable();
    let lowest = from.slots.iter().map(|r| r.0).min().expect("slots");
    let count = slots[slots.len().min(5) - 1] - lowest + 1;

    let start = Instant::now();
    let outcomes = load(
        &base,
        &sessions,
        8,
        "/incr",
        async {
            sleep(Duration::from_millis(1500)).await;
            let began = start.elapsed();
            cluster.reshard(&from, &to, count).await;
            note(&format!(
                "cluster reshard: {count} slots moved under load from {began:?} to {:?}",
                start.elapsed()
            ));
        },
        TAIL,
    )
    .await;

    let after = cluster.primaries(first(&cluster)).await;
    let moved = sessions
        .iter()
        .filter(|s| s.primary == from.id && owner(&after, s.slot).id == to.id)
        .count();
    assert!(moved >= 1, "no session moved");
    let failed: Vec<_> = outcomes.iter().filter(|o| o.status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the reshard, first: {} {}",
        failed.len(),
        outcomes.len(),
        failed[0].status,
        failed[0].body
    );
    let values = read_back(&base, &sessions).await;
    let counts = successes(&outcomes, sessions.len());
    for i in 0..sessions.len() {
        assert_eq!(values[i], Some(counts[i]), "session {i}");
    }
    note(&format!(
        "cluster reshard: {moved} live sessions moved, {} requests, none failed",
        outcomes.len()
    ));
}

/// A primary paused (SIGSTOP) for three times `store_timeout`, with a node timeout long
/// enough that it is not failed over: its sessions get 503 after `store_timeout`, the
/// others keep working, and everything works again once it resumes (SIGCONT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_answers_503_within_the_store_timeout_and_recovers() {
    let what = "Redis Cluster node paused under load";
    let Some(cluster) = Cluster::start(what, Duration::from_secs(60)).await else {
        return;
    };
    let store = RedisStore::cluster(cluster.urls()).await.expect("connect");
    let base = app(store).await;
    let sessions = sessions(&cluster, &base, 48).await;
    let victim = sessions[0].primary.clone();
    let primaries = cluster.primaries(first(&cluster)).await;
    let port = primaries
        .iter()
        .find(|p| p.id == victim)
        .expect("victim")
        .port;
    let pid = cluster.pid(port).await;

    let outcomes = load(
        &base,
        &sessions,
        8,
        "/incr",
        async {
            sleep(Duration::from_millis(1500)).await;
            cluster.signal(pid, "STOP");
            sleep(STORE_TIMEOUT * 3).await;
            // (The fixture's drop sends SIGCONT too, should this test panic before.)
            cluster.signal(pid, "CONT");
        },
        TAIL,
    )
    .await;

    only_the_victims_failed(&outcomes, &sessions, &victim);
    let failed: Vec<_> = outcomes.iter().filter(|o| o.status != 200).collect();
    assert!(
        !failed.is_empty(),
        "no request failed while the node was paused"
    );
    let slowest = failed.iter().map(|o| o.latency).max().expect("failures");
    note(&format!(
        "cluster pause: {} requests answered 503 (slowest after {slowest:?}, store_timeout {STORE_TIMEOUT:?}), {} in all",
        failed.len(),
        outcomes.len()
    ));
    let values = read_back(&base, &sessions).await;
    let counts = successes(&outcomes, sessions.len());
    for (i, session) in sessions.iter().enumerate() {
        if session.primary == victim {
            // A save that timed out on the client may still have run once the node resumed.
            assert!(
                values[i] >= Some(counts[i]),
                "session {i} on the paused node"
            );
        } else {
            assert_eq!(values[i], Some(counts[i]), "session {i}");
        }
    }
}
