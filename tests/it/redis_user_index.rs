//! The Redis store's user index, looked at in Redis: a save of a logged-in session writes
//! the user's hash (with a TTL at least the session's), an anonymous one writes nothing,
//! listing drops the fields of deleted sessions, and a session written behind the store's
//! back (as Django writes) is listed only by the scan of `with_user_scan`.
//!
//! Needs `REDIS_URL`; without it the tests say so and pass.

#![cfg(feature = "redis")]

use std::sync::Arc;

use serde_json::{Map, json};
use sessionbase::store::{Record, UserSessions};
use sessionbase::{RedisStore, SessionStore};
use time::{Duration, OffsetDateTime};

use crate::common::RedisPrefix;

fn record(value: serde_json::Value, ttl: Duration) -> Record {
    let serde_json::Value::Object(data) = value else {
        unreachable!()
    };
    Record {
        data: Arc::new(data),
        expiry_date: OffsetDateTime::now_utc() + ttl,
    }
}

async fn store(redis: &RedisPrefix) -> RedisStore {
    RedisStore::connect(redis.url())
        .await
        .expect("connect to REDIS_URL")
        .with_prefix(format!("{}:", redis.prefix()))
}

#[tokio::test]
async fn saves_keep_the_index_and_listing_prunes_it() {
    let Some(redis) = RedisPrefix::new("the Redis user index") else {
        return;
    };
    let store = store(&redis).await;
    let index = format!("{}:user:7", redis.prefix());

    store
        .create(&record(json!({"cart": [1]}), Duration::hours(1)))
        .await
        .expect("create");
    assert_eq!(
        redis.keys().await.len(),
        1,
        "an anonymous session wrote an index"
    );

    let (short, _) = store
        .create(&record(json!({"_auth_user_id": "7"}), Duration::hours(1)))
        .await
        .expect("create");
    let (long, _) = store
        .create(&record(json!({"_auth_user_id": "7"}), Duration::hours(5)))
        .await
        .expect("create");
    assert!(redis.keys().await.contains(&index), "no index for user 7");
    let ttl = redis.ttl(&index).await;
    assert!(
        ttl > 4 * 3600,
        "the index dies before its longest session: {ttl}s"
    );
    assert_eq!(store.user_sessions("7").await.expect("list").len(), 2);
    let listed = store.user_sessions("7").await.expect("list");
    assert!(listed.iter().all(|s| s.last_saved.is_some()), "{listed:?}");

    // Deleted behind the index's back (a logout): listing drops the field.
    store.delete(&short).await.expect("delete");
    assert_eq!(store.user_sessions("7").await.expect("list").len(), 1);
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&index)
        .query_async(&mut connection(&redis).await)
        .await
        .expect("HKEYS");
    assert_eq!(fields, [long.as_str().to_owned()], "the stale field stayed");
}

#[tokio::test]
async fn sessions_written_behind_the_store_are_found_by_the_scan_only() {
    let Some(redis) = RedisPrefix::new("the Redis user scan") else {
        return;
    };
    let key = "abcdefgh12345678abcdefgh12345678";
    let mut data = Map::new();
    data.insert("_auth_user_id".into(), json!("9"));
    let _: () = redis::cmd("SET")
        .arg(format!("{}:{key}", redis.prefix()))
        .arg(serde_json::to_string(&data).expect("JSON"))
        .arg("EX")
        .arg(600)
        .query_async(&mut connection(&redis).await)
        .await
        .expect("SET");

    let indexed = store(&redis).await;
    assert!(indexed.user_sessions("9").await.expect("list").is_empty());
    let scanning = store(&redis).await.with_user_scan().expect("single node");
    let listed = scanning.user_sessions("9").await.expect("list");
    assert_eq!(listed.len(), 1, "the scan missed a session");
    let revoked = scanning
        .revoke_user_sessions("9", sessionbase::store::Revoke::All)
        .await
        .expect("revoke");
    assert_eq!(revoked, 1);
    assert!(
        redis.keys().await.is_empty(),
        "the revoked session is still in Redis"
    );
    let key = indexed.parse_key(key).expect("a key");
    assert!(indexed.load(&key).await.expect("load").is_none());
}

/// A store under a configuration shared with Django scans without being told to: Django's
/// writes never update the index, and a session of the user from the request's side finds
/// the one Django wrote.
#[cfg(feature = "django")]
#[tokio::test]
async fn a_store_shared_with_django_lists_by_scan_by_itself() {
    let Some(redis) = RedisPrefix::new("the Redis user scan under Django's settings") else {
        return;
    };
    let written = "abcdefgh12345678abcdefgh87654321";
    let mut data = Map::new();
    data.insert("_auth_user_id".into(), json!("11"));
    let _: () = redis::cmd("SET")
        .arg(format!("{}:{written}", redis.prefix()))
        .arg(serde_json::to_string(&data).expect("JSON"))
        .arg("EX")
        .arg(600)
        .query_async(&mut connection(&redis).await)
        .await
        .expect("SET");
    let django = sessionbase::django::DjangoConfig::new("django secret")
        .session_config()
        .expect("config");
    let session = sessionbase::Session::new(store(&redis).await, django);
    session.insert("_auth_user_id", "11").expect("insert");
    session.save().await.expect("save");
    let listed = session.user_sessions().await.expect("list");
    assert_eq!(listed.len(), 2, "Django's session was missed: {listed:?}");
    assert_eq!(session.revoke_other_sessions().await.expect("revoke"), 1);
}

async fn connection(redis: &RedisPrefix) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("REDIS_URL parses")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to REDIS_URL")
}
