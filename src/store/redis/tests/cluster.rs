//! Redis Cluster.

use super::*;

/// Runs the suite against a cluster when `REDIS_CLUSTER_URLS` (comma-separated node
/// URLs) is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_cluster() {
    let urls = match std::env::var("REDIS_CLUSTER_URLS") {
        Ok(urls) if !urls.trim().is_empty() => urls,
        _ => {
            // Straight to stderr: libtest would capture eprintln! and hide the notice.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipping Redis Cluster tests: REDIS_CLUSTER_URLS not set\n",
            );
            return;
        }
    };
    let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
    let prefix = unique_prefix();
    let store = RedisStore::cluster(&urls)
        .await
        .expect("connect to the cluster")
        .with_prefix(prefix.clone());
    assert!(format!("{store:?}").contains("cluster"));
    let outcome = tokio::spawn(cluster_checks(store)).await;
    // KEYS goes to every primary; DEL one key at a time, each to its own slot.
    let mut raw = ClusterClient::new(urls)
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

async fn cluster_checks(store: RedisStore) {
    conformance::run(store.clone(), Exceptions::none()).await;
    // Every session is one key, so keys spread over the nodes without CROSSSLOT errors.
    let mut keys = Vec::new();
    for i in 0..20 {
        let (key, _) = store
            .create(&live(json!({ "i": i })))
            .await
            .expect("create");
        keys.push(key);
    }
    for (i, key) in keys.iter().enumerate() {
        let loaded = store.load(key).await.expect("load").expect("loads");
        assert_eq!(loaded.data["i"], json!(i));
        store.delete(key).await.expect("delete");
    }
}
