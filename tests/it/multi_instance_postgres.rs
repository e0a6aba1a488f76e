//! Two instances of a service, each with its own `PostgresStore` pool over one table, share
//! sessions: what one writes the other reads, and `cycle_key` and `flush` on one invalidate
//! the old key on the other.
//!
//! Needs `DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without it, the
//! test says so on stderr and returns (fails with `SESSIONBASE_REQUIRE_ALL_SUITES`).

#![cfg(all(feature = "postgres", feature = "axum"))]

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use sessionbase::{Error, PostgresStore, Session, SessionLayer, SessionStore};

use crate::common::{PgTable, client, spawn};

type Params = Query<HashMap<String, String>>;

/// `/set?k=..&v=..` stores a string, `/get?k=..` reads it (empty when absent), `/cycle` and
/// `/flush` do what they say, `/key` shows the session key (empty when none).
fn app(store: PostgresStore) -> Router {
    async fn set(session: Session, Query(q): Params) -> Result<&'static str, Error> {
        session.insert(q["k"].clone(), q["v"].clone())?;
        Ok("ok")
    }
    async fn read(session: Session, Query(q): Params) -> Result<String, Error> {
        Ok(session.get::<String>(&q["k"])?.unwrap_or_default())
    }
    async fn cycle(session: Session) -> Result<&'static str, Error> {
        session.cycle_key().await?;
        Ok("ok")
    }
    async fn flush(session: Session) -> Result<&'static str, Error> {
        session.flush().await?;
        Ok("ok")
    }
    Router::new()
        .route("/set", get(set))
        .route("/get", get(read))
        .route("/cycle", get(cycle))
        .route("/flush", get(flush))
        .layer(SessionLayer::new(store))
}

/// A tiny browser: carries the `sessionid` cookie by hand (reqwest has no cookie jar here).
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: client(),
            cookie: None,
        }
    }

    /// GETs `url` and returns the body, applying any `Set-Cookie: sessionid=...`.
    async fn get(&mut self, url: &str) -> String {
        let mut request = self.client.get(url);
        if let Some(value) = &self.cookie {
            request = request.header("cookie", format!("sessionid={value}"));
        }
        let response = request.send().await.expect("request");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        for header in response.headers().get_all("set-cookie") {
            let header = header.to_str().expect("ASCII Set-Cookie");
            let first = header.split(';').next().unwrap_or_default();
            if let Some(value) = first.trim().strip_prefix("sessionid=") {
                // A deletion cookie has an empty value (Django writes `""`).
                self.cookie = match value.trim_matches('"') {
                    "" => None,
                    value => Some(value.to_owned()),
                };
            }
        }
        response.text().await.expect("body")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_through_postgres() {
    // Dropped last: the table goes whether the scenario passes or panics.
    let Some(table) = PgTable::new("two instances sharing sessions through PostgreSQL") else {
        return;
    };
    let (store_a, store_b) = (table.connect().await, table.connect().await);
    // Both instances migrate at start-up, at the same time.
    let (a, b) = tokio::join!(store_a.migrate(), store_b.migrate());
    a.expect("migrate A");
    b.expect("migrate B");

    scenario(store_a.clone(), store_b.clone()).await;

    store_a.pool().close().await;
    store_b.pool().close().await;
}

async fn scenario(store_a: PostgresStore, store_b: PostgresStore) {
    let a = spawn(app(store_a.clone())).await;
    let b = spawn(app(store_b.clone())).await;
    let mut browser = Browser::new();

    // Created through A.
    assert_eq!(browser.get(&format!("{a}/set?k=color&v=red")).await, "ok");
    let first = browser.cookie.clone().expect("A set a session cookie");

    // Read and modified through B.
    assert_eq!(browser.get(&format!("{b}/get?k=color")).await, "red");
    assert_eq!(browser.get(&format!("{b}/set?k=size&v=L")).await, "ok");
    assert_eq!(browser.cookie.as_deref(), Some(first.as_str()));
    assert_eq!(browser.get(&format!("{a}/get?k=size")).await, "L");
    assert_eq!(browser.get(&format!("{a}/get?k=color")).await, "red");

    // cycle_key through A: the data moves to a new key, the old key is dead on B.
    assert_eq!(browser.get(&format!("{a}/cycle")).await, "ok");
    let second = browser.cookie.clone().expect("cycled cookie");
    assert_ne!(second, first, "cycle_key kept the key");
    let old_key = store_b.parse_key(&first).expect("a well-formed key");
    assert!(
        store_b.load(&old_key).await.expect("load").is_none(),
        "the old key still loads on B"
    );
    let mut stale = Browser::new();
    stale.cookie = Some(first.clone());
    assert_eq!(stale.get(&format!("{b}/get?k=color")).await, "");
    assert_eq!(browser.get(&format!("{b}/get?k=color")).await, "red");
    assert_eq!(browser.get(&format!("{b}/get?k=size")).await, "L");

    // flush through B: A sees no session.
    assert_eq!(browser.get(&format!("{b}/flush")).await, "ok");
    assert_eq!(browser.cookie, None, "flush did not delete the cookie");
    let second_key = store_a.parse_key(&second).expect("a well-formed key");
    assert!(
        !store_a.exists(&second_key).await.expect("exists"),
        "the flushed record is still in the table"
    );
    let mut after_flush = Browser::new();
    after_flush.cookie = Some(second);
    assert_eq!(after_flush.get(&format!("{a}/get?k=color")).await, "");
    assert_eq!(
        after_flush.cookie, None,
        "A kept the flushed session's cookie"
    );

    // Concurrent writes of different keys through both instances all survive.
    let mut browser = Browser::new();
    browser.get(&format!("{a}/set?k=base&v=1")).await;
    let cookie = browser.cookie.clone().expect("cookie");
    let writes: Vec<_> = (0..10)
        .map(|i| {
            let base = if i % 2 == 0 { a.clone() } else { b.clone() };
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let mut writer = Browser::new();
                writer.cookie = Some(cookie);
                writer.get(&format!("{base}/set?k=k{i}&v={i}")).await;
            })
        })
        .collect();
    for write in writes {
        write.await.expect("write task");
    }
    for i in 0..10 {
        let base = if i % 2 == 0 { &b } else { &a };
        assert_eq!(
            browser.get(&format!("{base}/get?k=k{i}")).await,
            i.to_string(),
            "k{i} was lost"
        );
    }
}
