//! Two independent servers, each with its own `RedisStore` connection and the same prefix,
//! share their sessions: what one instance writes, deletes or re-keys, the other sees.
//!
//! Needs `REDIS_URL` (for example `redis://127.0.0.1:6379/`); without it the test says so
//! and passes (fails with `SESSIONBASE_REQUIRE_ALL_SUITES`).

#![cfg(all(feature = "redis", feature = "axum"))]

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;
use sessionbase::{RedisStore, Session, SessionLayer};

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

/// One instance of the app: its own Redis connection, on its own loopback port.
async fn instance(url: &str, prefix: &str) -> String {
    let store = RedisStore::connect(url)
        .await
        .expect("connect to REDIS_URL")
        .with_prefix(prefix);
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
    tokio::time::timeout(Duration::from_secs(60), scenario(redis.url(), &prefix))
        .await
        .expect("the scenario hung");
}

async fn scenario(url: &str, prefix: &str) {
    let a = instance(url, prefix).await;
    let b = instance(url, prefix).await;
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
    let r = request(&client, &format!("{a}/get"), Some(&first)).await;
    assert_eq!(r.body, "2", "A does not see B's change");

    // Re-keyed through A: the old key is dead on B, the new one carries the data.
    let r = request(&client, &format!("{a}/cycle"), Some(&first)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let CookieChange::Set(second) = r.cookie else {
        panic!("cycle_key did not set a new cookie: {:?}", r.cookie)
    };
    assert_ne!(second, first, "cycle_key kept the key");
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
    let r = request(&client, &format!("{a}/get"), Some(&second)).await;
    assert_eq!(r.body, "none", "A still sees the session B flushed");
    assert_eq!(r.cookie, CookieChange::Deleted, "A keeps the dead cookie");
}
