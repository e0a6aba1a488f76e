//! Two independent servers, each with its own `RedisStore` connection and the same prefix,
//! share their sessions: what one instance writes, deletes or re-keys, the other sees; with
//! local caches too, once the other instance's invalidation has arrived (and a logout on one
//! followed by a read on the other, a thousand times, never reads the logged-out session).
//!
//! Needs `REDIS_URL` (for example `redis://127.0.0.1:6379/`); without it the test says so
//! and passes (fails with `SESSIONBASE_REQUIRE_ALL_SUITES`).

#![cfg(all(feature = "redis", feature = "axum"))]

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;
use sessionbase::{RedisStore, Session, SessionKey, SessionLayer};

use crate::common::{RedisPrefix, client, spawn};

const COOKIE: &str = "sessionid";

#[derive(Deserialize)]
struct Set {
    name: String,
    value: i64,
}

async fn get_value(session: Session) -> Result<String, sessionbase::Error> {
    Ok(match session.get::<i64>("n")? {
        Some(n) => n.to_string(),
        None => "none".to_owned(),
    })
}

async fn set_value(
    session: Session,
    Query(set): Query<Set>,
) -> Result<&'static str, sessionbase::Error> {
    session.insert(set.name, set.value)?;
    Ok("ok")
}

async fn cycle(session: Session) -> Result<&'static str, sessionbase::Error> {
    session.cycle_key().await?;
    Ok("cycled")
}

async fn flush(session: Session) -> Result<&'static str, sessionbase::Error> {
    session.flush().await?;
    Ok("flushed")
}

/// A store of its own on `url`, with a local cache when `cached`.
async fn store(url: &str, prefix: &str, cached: bool) -> RedisStore {
    let store = RedisStore::connect(url)
        .await
        .expect("connect to REDIS_URL")
        .with_prefix(prefix);
    if !cached {
        return store;
    }
    let store = store.with_local_cache(1000).expect("a local cache");
    crate::redis_local_cache::serving(&store).await;
    store
}

/// Waits until `store` (another instance than the one that wrote) no longer caches the
/// session `cookie`: the write's invalidation has arrived, or it never held it.
async fn settle(store: &RedisStore, cookie: &str) {
    let key = SessionKey::parse(cookie).expect("a session key");
    assert!(
        store
            .local_cache_wait_evicted(&key, Duration::from_secs(10))
            .await,
        "the invalidation never arrived"
    );
}

/// One instance of the app on `store`, on its own loopback port.
async fn instance(store: RedisStore) -> String {
    let app = Router::new()
        .route("/get", get(get_value))
        .route("/set", get(set_value))
        .route("/cycle", get(cycle))
        .route("/flush", get(flush))
        .layer(SessionLayer::new(store));
    spawn(app).await
}

/// What a response did to the session cookie.
#[derive(Debug, PartialEq)]
enum CookieChange {
    None,
    Set(String),
    Deleted,
}

struct Response {
    status: u16,
    body: String,
    cookie: CookieChange,
}

/// GET `url`, sending `cookie` as the session cookie when given.
async fn request(client: &reqwest::Client, url: &str, cookie: Option<&str>) -> Response {
    let mut builder = client.get(url);
    if let Some(value) = cookie {
        builder = builder.header(reqwest::header::COOKIE, format!("{COOKIE}={value}"));
    }
    let response = builder.send().await.expect("request");
    let status = response.status().as_u16();
    let mut cookie = CookieChange::None;
    for header in response.headers().get_all(reqwest::header::SET_COOKIE) {
        let header = header.to_str().expect("ASCII Set-Cookie");
        let first = header.split(';').next().unwrap_or_default();
        let Some((name, value)) = first.split_once('=') else {
            panic!("malformed Set-Cookie {header:?}");
        };
        if name.trim() != COOKIE {
            continue;
        }
        assert_eq!(cookie, CookieChange::None, "two session cookies set");
        let value = value.trim();
        cookie = if value.is_empty() || value == "\"\"" {
            CookieChange::Deleted
        } else {
            CookieChange::Set(value.to_owned())
        };
    }
    let body = response.text().await.expect("body");
    Response {
        status,
        body,
        cookie,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_through_redis() {
    // Dropped last: the keys go whether the scenario passes or panics.
    let Some(redis) = RedisPrefix::new("two instances sharing sessions through Redis") else {
        return;
    };
    let prefix = format!("{}:", redis.prefix());
    tokio::time::timeout(
        Duration::from_secs(60),
        scenario(redis.url(), &prefix, false),
    )
    .await
    .expect("the scenario hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_through_redis_with_local_caches() {
    let Some(redis) = RedisPrefix::new("two instances with local caches") else {
        return;
    };
    let prefix = format!("{}:", redis.prefix());
    tokio::time::timeout(
        Duration::from_secs(60),
        scenario(redis.url(), &prefix, true),
    )
    .await
    .expect("the scenario hung");
}

async fn scenario(url: &str, prefix: &str, cached: bool) {
    let (store_a, store_b) = (
        store(url, prefix, cached).await,
        store(url, prefix, cached).await,
    );
    let a = instance(store_a.clone()).await;
    let b = instance(store_b.clone()).await;
    let client = client();

    // Created through A.
    let r = request(&client, &format!("{a}/set?name=n&value=1"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let CookieChange::Set(first) = r.cookie else {
        panic!("A did not set a session cookie: {:?}", r.cookie)
    };

    // Read and modified through B.
    let r = request(&client, &format!("{b}/get"), Some(&first)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "1"),
        "B does not see A's session"
    );
    let r = request(&client, &format!("{b}/set?name=n&value=2"), Some(&first)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.cookie == CookieChange::None || r.cookie == CookieChange::Set(first.clone()),
        "a save on B changed the key: {:?}",
        r.cookie
    );
    settle(&store_a, &first).await;
    let r = request(&client, &format!("{a}/get"), Some(&first)).await;
    assert_eq!(r.body, "2", "A does not see B's change");

    // Re-keyed through A: the old key is dead on B, the new one carries the data.
    let r = request(&client, &format!("{a}/cycle"), Some(&first)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let CookieChange::Set(second) = r.cookie else {
        panic!("cycle_key did not set a new cookie: {:?}", r.cookie)
    };
    assert_ne!(second, first, "cycle_key kept the key");
    settle(&store_b, &first).await;
    let r = request(&client, &format!("{b}/get"), Some(&first)).await;
    assert_eq!(
        r.body, "none",
        "the old key still loads on B after cycle_key on A"
    );
    let r = request(&client, &format!("{b}/get"), Some(&second)).await;
    assert_eq!(r.body, "2", "the new key does not load on B");

    // Flushed through B: A sees no session.
    let r = request(&client, &format!("{b}/flush"), Some(&second)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.cookie,
        CookieChange::Deleted,
        "flush did not delete the cookie"
    );
    settle(&store_a, &second).await;
    let r = request(&client, &format!("{a}/get"), Some(&second)).await;
    assert_eq!(r.body, "none", "A still sees the session B flushed");
    assert_eq!(r.cookie, CookieChange::Deleted, "A keeps the dead cookie");
}

/// Logged in on A, read on B (B caches it), logged out on A, read on B once B has heard of
/// the logout: a thousand times, and not once does B still find the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_instance_is_never_read_on_the_other_after_its_invalidation() {
    let Some(redis) = RedisPrefix::new("logout across instances with local caches") else {
        return;
    };
    let prefix = format!("{}:", redis.prefix());
    tokio::time::timeout(Duration::from_secs(240), async {
        let store_a = store(redis.url(), &prefix, true).await;
        let store_b = store(redis.url(), &prefix, true).await;
        let a = instance(store_a).await;
        let b = instance(store_b.clone()).await;
        let client = client();
        let mut stale = 0;
        for i in 0..1000 {
            let r = request(&client, &format!("{a}/set?name=n&value={i}"), None).await;
            let CookieChange::Set(cookie) = r.cookie else {
                panic!("no session cookie: {:?}", r.cookie)
            };
            let r = request(&client, &format!("{b}/get"), Some(&cookie)).await;
            assert_eq!(r.body, i.to_string(), "B does not see the login");
            let key = SessionKey::parse(&cookie).expect("a session key");
            assert!(
                store_b.local_cache_holds(&key),
                "B did not cache the session"
            );
            let r = request(&client, &format!("{a}/flush"), Some(&cookie)).await;
            assert_eq!(r.cookie, CookieChange::Deleted, "{}", r.body);
            settle(&store_b, &cookie).await;
            let r = request(&client, &format!("{b}/get"), Some(&cookie)).await;
            if r.body != "none" {
                stale += 1;
            }
        }
        assert_eq!(stale, 0, "stale reads after the logout's invalidation");
    })
    .await
    .expect("the logouts hung");
}
