//! Every session of a user, over real HTTP on two app instances sharing one store: a user
//! logs in on two "devices" (one on each instance), lists the sessions, logs out the other
//! device from one instance, and the other instance sees that device logged out at once;
//! revoking by handle works across instances and never reaches another user's session; no
//! listing shows a session key.
//!
//! Runs on Redis (with and without local caches, and on the memory store as a baseline) and
//! on PostgreSQL. Needs `REDIS_URL` / `DATABASE_URL`; without them those tests say so and
//! pass (fail with `SESSIONBASE_REQUIRE_ALL_SUITES`).

#![cfg(feature = "axum")]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use sessionbase::store::SessionHandle;
use sessionbase::{Error, Session, SessionLayer, SessionStore};

use crate::common::{client, spawn};

type Params = Query<HashMap<String, String>>;

/// `/login?user=..&device=..`, `/whoami`, `/sessions` (one line per session:
/// `<handle> <current|other> <device>`), `/logout-others` (how many), `/revoke?handle=..`
/// (whether one was).
fn app<S: SessionStore>(store: S) -> Router {
    async fn login(session: Session, Query(q): Params) -> Result<&'static str, Error> {
        session.cycle_key().await?;
        session.insert("_auth_user_id", &q["user"])?;
        session.insert("device", &q["device"])?;
        Ok("ok")
    }
    async fn whoami(session: Session) -> Result<String, Error> {
        Ok(session
            .get::<String>("_auth_user_id")?
            .unwrap_or_else(|| "anonymous".into()))
    }
    async fn sessions(session: Session) -> Result<String, Error> {
        let mut lines: Vec<String> = session
            .user_sessions()
            .await?
            .into_iter()
            .map(|s| {
                let current = if s.is_current { "current" } else { "other" };
                let device = s.data.get("device").and_then(|d| d.as_str()).unwrap_or("");
                format!("{} {current} {device}", s.handle)
            })
            .collect();
        lines.sort();
        Ok(lines.join("\n"))
    }
    async fn logout_others(session: Session) -> Result<String, Error> {
        Ok(session.revoke_other_sessions().await?.to_string())
    }
    async fn revoke(session: Session, Query(q): Params) -> Result<String, Error> {
        let Ok(handle) = q["handle"].parse::<SessionHandle>() else {
            return Ok("bad handle".into());
        };
        Ok(session.revoke_user_session(&handle).await?.to_string())
    }
    Router::new()
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .route("/sessions", get(sessions))
        .route("/logout-others", get(logout_others))
        .route("/revoke", get(revoke))
        .layer(SessionLayer::new(store))
}

/// A browser that carries its `sessionid` cookie by hand.
struct Device {
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Device {
    fn new() -> Self {
        Self {
            client: client(),
            cookie: None,
        }
    }

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
                self.cookie = match value.trim_matches('"') {
                    "" => None,
                    value => Some(value.to_owned()),
                };
            }
        }
        response.text().await.expect("body")
    }

    fn key(&self) -> String {
        self.cookie.clone().expect("logged in")
    }
}

/// Waits, with local caches, until instance `b` has dropped its copy of the session `key`
/// (the other instance's delete has been pushed to it); nothing to wait for otherwise.
type Settle = Box<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

fn no_settle() -> Settle {
    Box::new(|_| Box::pin(async {}))
}

/// The scenario on instances `a` and `b` of one store.
async fn scenario(a: &str, b: &str, settle_on_b: Settle) {
    let user = format!("u{}", &crate::common::random()[..12]);
    let other_user = format!("o{}", &crate::common::random()[..12]);
    let (mut laptop, mut phone, mut stranger) = (Device::new(), Device::new(), Device::new());
    assert_eq!(
        laptop
            .get(&format!("{a}/login?user={user}&device=laptop"))
            .await,
        "ok"
    );
    assert_eq!(
        phone
            .get(&format!("{b}/login?user={user}&device=phone"))
            .await,
        "ok"
    );
    assert_eq!(
        stranger
            .get(&format!("{a}/login?user={other_user}&device=stranger"))
            .await,
        "ok"
    );
    assert_eq!(phone.get(&format!("{b}/whoami")).await, user);

    // Listed from either instance: both devices, the asking one current, no key shown.
    for base in [a, b] {
        let listing = laptop.get(&format!("{base}/sessions")).await;
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 2, "{listing}");
        assert!(
            lines.iter().any(|l| l.ends_with(" current laptop")),
            "{listing}"
        );
        assert!(
            lines.iter().any(|l| l.ends_with(" other phone")),
            "{listing}"
        );
        for key in [laptop.key(), phone.key(), stranger.key()] {
            assert!(!listing.contains(&key), "a listing shows a session key");
        }
    }

    // Log out other devices on A: the phone is logged out on B at once.
    let phone_key = phone.key();
    assert_eq!(laptop.get(&format!("{a}/logout-others")).await, "1");
    settle_on_b(phone_key).await;
    assert_eq!(phone.get(&format!("{b}/whoami")).await, "anonymous");
    assert_eq!(laptop.get(&format!("{b}/whoami")).await, user);
    assert_eq!(stranger.get(&format!("{b}/whoami")).await, other_user);
    let listing = laptop.get(&format!("{b}/sessions")).await;
    assert!(
        listing.ends_with(" current laptop") && listing.lines().count() == 1,
        "{listing}"
    );

    // The phone logs in again on B; the laptop revokes it by handle through B, after
    // listing through A. Another user's handle revokes nothing.
    assert_eq!(
        phone
            .get(&format!("{b}/login?user={user}&device=phone"))
            .await,
        "ok"
    );
    let listing = laptop.get(&format!("{a}/sessions")).await;
    let phone_handle = listing
        .lines()
        .find(|l| l.ends_with(" other phone"))
        .and_then(|l| l.split(' ').next())
        .expect("the phone is listed")
        .to_owned();
    let stranger_handle = stranger.get(&format!("{a}/sessions")).await;
    let stranger_handle = stranger_handle.split(' ').next().expect("a handle");
    assert_eq!(
        laptop
            .get(&format!("{b}/revoke?handle={stranger_handle}"))
            .await,
        "false"
    );
    assert_eq!(stranger.get(&format!("{a}/whoami")).await, other_user);
    let phone_key = phone.key();
    assert_eq!(
        laptop
            .get(&format!("{b}/revoke?handle={phone_handle}"))
            .await,
        "true"
    );
    settle_on_b(phone_key).await;
    assert_eq!(phone.get(&format!("{b}/whoami")).await, "anonymous");
    assert_eq!(phone.get(&format!("{a}/whoami")).await, "anonymous");
    assert_eq!(laptop.get(&format!("{a}/whoami")).await, user);
}

#[cfg(feature = "memory")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_memory_store() {
    let store = sessionbase::MemoryStore::new();
    let (a, b) = (spawn(app(store.clone())).await, spawn(app(store)).await);
    scenario(&a, &b, no_settle()).await;
}

#[cfg(feature = "redis")]
mod redis {
    use std::sync::Arc;
    use std::time::Duration;

    use sessionbase::{RedisStore, SessionKey};

    use super::*;
    use crate::common::RedisPrefix;

    async fn store(redis: &RedisPrefix, cached: bool) -> RedisStore {
        let store = RedisStore::connect(redis.url())
            .await
            .expect("connect to REDIS_URL")
            .with_prefix(format!("{}:", redis.prefix()));
        if !cached {
            return store;
        }
        let store = store.with_local_cache(1000).expect("a local cache");
        crate::redis_local_cache::serving(&store).await;
        store
    }

    async fn two_instances(cached: bool) {
        let Some(redis) = RedisPrefix::new("every session of a user on two Redis instances") else {
            return;
        };
        let (store_a, store_b) = (store(&redis, cached).await, store(&redis, cached).await);
        let (a, b) = (spawn(app(store_a)).await, spawn(app(store_b.clone())).await);
        let store_b = Arc::new(store_b);
        let settle: Settle = Box::new(move |key| {
            let store_b = Arc::clone(&store_b);
            Box::pin(async move {
                let key = SessionKey::parse(&key).expect("a session key");
                assert!(
                    store_b
                        .local_cache_wait_evicted(&key, Duration::from_secs(10))
                        .await,
                    "instance B never heard of the revocation"
                );
            })
        });
        scenario(&a, &b, settle).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_on_one_redis() {
        two_instances(false).await;
    }

    /// With local caches, B drops its copy of a revoked session once Redis pushes the
    /// delete (the documented invalidation delay), and never serves it after that.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_on_one_redis_with_local_caches() {
        two_instances(true).await;
    }
}

#[cfg(feature = "postgres")]
async fn on_postgres(indexed: bool) {
    let Some(table) = crate::common::PgTable::new("every session of a user on two instances")
    else {
        return;
    };
    let (mut store_a, mut store_b) = (table.connect().await, table.connect().await);
    if indexed {
        store_a = store_a.with_user_index().expect("index");
        store_b = store_b.with_user_index().expect("index");
    }
    store_a.migrate().await.expect("migrate");
    let (a, b) = (
        spawn(app(store_a.clone())).await,
        spawn(app(store_b.clone())).await,
    );
    scenario(&a, &b, no_settle()).await;
    store_a.pool().close().await;
    store_b.pool().close().await;
}

/// Listing by a scan of the table (the default, what a table shared with Django needs).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_table() {
    on_postgres(false).await;
}

/// Listing through the user index's side table, kept in the save's own statement.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_table_with_the_user_index() {
    on_postgres(true).await;
}
