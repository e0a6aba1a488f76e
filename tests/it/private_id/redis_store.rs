//! Private ids on Redis: `KEYS` of the prefix used as cookies (with and without the local
//! cache, and as the cache of a `CachedStore` in front of PostgreSQL), and one `GET` per lookup.

use super::*;
use crate::common::RedisPrefix;
use crate::common::proxy::{self, Protocol, Stats};
use sessionbase::RedisStore;

async fn store(redis: &RedisPrefix, local_cache: bool, private: bool) -> RedisStore {
    let mut store = RedisStore::connect(redis.url())
        .await
        .expect("connect to REDIS_URL")
        .with_prefix(format!("{}:", redis.prefix()));
    if private {
        store = store.with_private_id(private_id());
    }
    if local_cache {
        store = store.with_local_cache(100).expect("local cache");
    }
    store
}

/// The session keys in a `KEYS` of the prefix.
async fn keys(redis: &RedisPrefix) -> Vec<String> {
    let prefix = format!("{}:", redis.prefix());
    let keys = redis.keys().await;
    keys.iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_do_not_authenticate() {
    for local_cache in [false, true] {
        for private in [true, false] {
            let Some(redis) = RedisPrefix::new("private ids on Redis") else {
                return;
            };
            let store = store(&redis, local_cache, private).await;
            dump_used_as_cookies(store.clone(), async || keys(&redis).await, private).await;
            #[cfg(feature = "conformance")]
            if private {
                use sessionbase::store::conformance::{Exceptions, run};
                run(store, Exceptions::none()).await;
            }
        }
    }
}

/// `CachedStore` with a Redis cache in front of PostgreSQL, both with the private id:
/// neither the cache's keys nor the table's column authenticate.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_and_table_keys_do_not_authenticate() {
    use crate::common::PgTable;
    use sessionbase::store::CachedStore;

    let Some(redis) = RedisPrefix::new("private ids on Redis in front of PostgreSQL") else {
        return;
    };
    let Some(table) = PgTable::new("private ids on Redis in front of PostgreSQL") else {
        return;
    };
    let pg = table.connect().await.with_private_id(private_id());
    pg.migrate().await.expect("migrate");
    let cache = store(&redis, false, true).await;
    let cached = CachedStore::new(cache, pg.clone());
    let pool = pg.pool().clone();
    let sql = format!("SELECT session_key FROM \"{}\"", table.name());
    let both = async || {
        let mut rows: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&pool)
            .await
            .expect("SELECT");
        let cached = keys(&redis).await;
        assert_eq!(cached, rows, "the cache keys records as the table does");
        rows.truncate(1);
        rows
    };
    dump_used_as_cookies(cached.clone(), both, true).await;
    #[cfg(feature = "conformance")]
    sessionbase::store::conformance::run(
        cached,
        sessionbase::store::conformance::Exceptions::none(),
    )
    .await;
}

/// A request that only reads costs one `GET`, private id or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_is_one_command() {
    let Some(redis) = RedisPrefix::new("private-id commands on Redis") else {
        return;
    };
    let (upstream, through) = proxy::split_url(redis.url());
    let stats = Stats::default();
    let addr = proxy::start(upstream, Protocol::Redis, stats.clone()).await;
    let store = RedisStore::connect(&through(addr))
        .await
        .expect("connect through the proxy")
        .with_prefix(format!("{}:", redis.prefix()))
        .with_private_id(private_id());
    let base = spawn(app(store)).await;
    let cookie = session_cookie(
        &client()
            .get(format!("{base}/login"))
            .send()
            .await
            .expect("login"),
        "sessionid",
    )
    .value;
    stats.take();
    for _ in 0..5 {
        let body = get_with(&base, "/whoami", &cookie).await.text().await;
        assert_eq!(body.expect("body"), "alice");
    }
    let counts = stats.take();
    assert_eq!(counts.round_trips, 5, "{counts:?}");
    assert_eq!(counts.messages.get("GET"), Some(&5), "{counts:?}");
}
