//! A Redis Cluster of the test's own (three primaries, three replicas), started through
//! `scripts/redis-cluster.sh` on a base port in 7110..7199 that no other test of the process
//! uses, and stopped (every node, by PID, the directory removed) when the fixture drops,
//! whether the test passed or panicked. For tests that kill, pause or reshard nodes without
//! disturbing the others.
//!
//! Needs `redis-server` and `redis-cli` on the `PATH`; without them the fixture is `None`
//! after a `skipping …` line, or fails the test under `SESSIONBASE_REQUIRE_ALL_SUITES`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::{note, skip};

/// The first base port; each cluster takes ten (six nodes, their buses at +10000).
const FIRST_BASE: u16 = 7110;
const LAST_BASE: u16 = 7190;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/redis-cluster.sh")
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A primary as `CLUSTER NODES` shows it.
#[derive(Clone, Debug)]
pub struct Primary {
    pub id: String,
    pub port: u16,
    pub slots: Vec<(u16, u16)>,
}

impl Primary {
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
    }
}

/// The running cluster.
pub struct Cluster {
    base: u16,
    urls: Vec<String>,
}

impl Cluster {
    /// Starts a cluster whose nodes count a primary silent for `node_timeout` as failed
    /// (and fail it over), or is `None` without `redis-server`/`redis-cli` (`what` skipped).
    pub async fn start(what: &str, node_timeout: Duration) -> Option<Self> {
        if !installed("redis-server") || !installed("redis-cli") {
            skip(what, "redis-server or redis-cli not installed");
            return None;
        }
        static NEXT: AtomicU16 = AtomicU16::new(FIRST_BASE);
        loop {
            let base = NEXT.fetch_add(10, Ordering::Relaxed);
            assert!(
                base <= LAST_BASE,
                "no free base port left for a Redis Cluster"
            );
            let output = tokio::process::Command::new(script())
                .arg("start")
                .arg(base.to_string())
                .env(
                    "REDIS_CLUSTER_NODE_TIMEOUT",
                    node_timeout.as_millis().to_string(),
                )
                .output()
                .await
                .expect("run scripts/redis-cluster.sh");
            match output.status.code() {
                Some(0) => {}
                // A port is taken (another process's cluster): the next base.
                Some(3) => continue,
                _ => panic!(
                    "scripts/redis-cluster.sh start {base} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ),
            }
            let urls = String::from_utf8_lossy(&output.stdout)
                .trim()
                .split(',')
                .map(str::to_owned)
                .collect();
            return Some(Self { base, urls });
        }
    }

    /// The URLs of the six nodes.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    pub fn ports(&self) -> impl Iterator<Item = u16> + use<> {
        self.base..self.base + 6
    }

    /// A connection to the node on `port` alone.
    pub async fn node(&self, port: u16) -> MultiplexedConnection {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .expect("node URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a cluster node")
    }

    /// `CLUSTER KEYSLOT key`.
    pub async fn slot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut self.node(self.base).await)
            .await
            .expect("CLUSTER KEYSLOT")
    }

    /// The primaries serving slots that the node on `port` knows of and does not consider
    /// failed (just after `start`, a node may still see a replica-to-be as a primary without
    /// slots).
    pub async fn primaries(&self, port: u16) -> Vec<Primary> {
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut self.node(port).await)
            .await
            .expect("CLUSTER NODES");
        nodes
            .lines()
            .filter_map(parse_primary)
            .filter(|p| !p.slots.is_empty())
            .collect()
    }

    /// The port of a replica of the primary `id`, as the node on `port` sees it.
    pub async fn replica_of(&self, port: u16, id: &str) -> u16 {
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut self.node(port).await)
            .await
            .expect("CLUSTER NODES");
        nodes
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[2].contains("slave") && f[3] == id)
            .and_then(|f| f[1].split('@').next()?.rsplit(':').next()?.parse().ok())
            .expect("a replica of the primary")
    }

    /// `CLIENT KILL TYPE replica` on the node on `port`: it drops its replication links
    /// (a replica that is running reconnects at once).
    pub async fn drop_replica_links(&self, port: u16) {
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("replica")
            .query_async(&mut self.node(port).await)
            .await
            .expect("CLIENT KILL TYPE replica");
    }

    /// The PID of the node on `port` (`INFO server`).
    pub async fn pid(&self, port: u16) -> u32 {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.node(port).await)
            .await
            .expect("INFO server");
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse().ok())
            .expect("process_id in INFO server")
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`) to the node process `pid`.
    pub fn signal(&self, pid: u32, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Starts the node on `port` again after it was killed; it rejoins the cluster.
    pub async fn restart(&self, port: u16) {
        let status = tokio::process::Command::new(script())
            .arg("start-node")
            .arg(port.to_string())
            .arg(self.base.to_string())
            .status()
            .await
            .expect("run scripts/redis-cluster.sh");
        assert!(status.success(), "restarting node {port} failed");
    }

    /// Waits (up to a minute) until every node but `failed` (a primary killed, when given)
    /// sees a primary other than `failed` for each of the 16384 slots.
    pub async fn wait_covered(&self, failed: Option<&Primary>) {
        for _ in 0..600 {
            let mut all = true;
            for port in self.ports().filter(|&p| Some(p) != failed.map(|f| f.port)) {
                let primaries = match redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async::<String>(&mut self.node(port).await)
                    .await
                {
                    Ok(nodes) => nodes.lines().filter_map(parse_primary).collect(),
                    Err(_) => Vec::new(),
                };
                let covered: u32 = primaries
                    .iter()
                    .filter(|p| Some(&p.id) != failed.map(|f| &f.id))
                    .flat_map(|p| &p.slots)
                    .map(|&(a, b)| u32::from(b - a) + 1)
                    .sum();
                all &= covered == 16384;
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cluster did not cover every slot again within a minute");
    }

    /// `redis-cli --cluster reshard`: moves `count` slots from one primary to another.
    pub async fn reshard(&self, from: &Primary, to: &Primary, count: u16) {
        let output = tokio::process::Command::new("redis-cli")
            .args(["--cluster", "reshard", &format!("127.0.0.1:{}", from.port)])
            .args(["--cluster-from", &from.id, "--cluster-to", &to.id])
            .args(["--cluster-slots", &count.to_string(), "--cluster-yes"])
            .output()
            .await
            .expect("run redis-cli --cluster reshard");
        assert!(
            output.status.success(),
            "reshard failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A `CLUSTER NODES` line of a primary not marked failed: `id addr@bus flags master ping
/// pong epoch link slot...`; a slot is `n` or `a-b` (`[…]` entries are migrations).
fn parse_primary(line: &str) -> Option<Primary> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let flags = fields.get(2)?;
    if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
        return None;
    }
    let port = fields[1]
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let slots = fields
        .iter()
        .skip(8)
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => s.parse().ok().map(|n| (n, n)),
        })
        .collect();
    Some(Primary {
        id: fields[0].to_owned(),
        port,
        slots,
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Synchronous: drop may run inside the test's runtime, or in a panic.
        let stopped = Command::new(script())
            .arg("stop")
            .arg(self.base.to_string())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            note(&format!(
                "could not stop the Redis Cluster on {}..",
                self.base
            ));
        }
    }
}

/// Deletes every key under `prefix` from the cluster of `urls` (what a test on a shared
/// cluster wrote), then re-raises the test's panic, if `outcome` is one.
pub async fn clean_up_and_resume(
    urls: &[impl AsRef<str>],
    prefix: &str,
    outcome: Result<(), tokio::task::JoinError>,
) {
    let urls: Vec<&str> = urls.iter().map(AsRef::as_ref).collect();
    // KEYS goes to every primary; DEL one key at a time, each to its own slot.
    let mut raw = redis::cluster::ClusterClient::new(urls)
        .expect("cluster URLs")
        .get_async_connection()
        .await
        .expect("connect to the cluster");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut raw)
        .await
        .expect("KEYS");
    for key in keys {
        let _: i64 = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut raw)
            .await
            .expect("DEL");
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}
