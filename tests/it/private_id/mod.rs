//! Sessions unusable from a stolen dump (`with_private_id`): on every server-side store, over
//! real HTTP and against the real servers, each key found in a raw dump of the store (Redis
//! `KEYS`, `SELECT session_key`, the directory listing) sent back as the session cookie
//! authenticates nobody and starts a new session, while the real cookie keeps working. The
//! same check without a private id shows the dump method is right: there the dumped key is a
//! working cookie. A lookup still costs one round trip (counted by the benchmarks' proxy),
//! the conformance suite passes with private ids on, and a configuration shared with Django
//! is refused at startup.
//!
//! Server-backed tests need `DATABASE_URL`, `MYSQL_URL` or `REDIS_URL`; without one they say
//! so on stderr and return (fail with `SESSIONBASE_REQUIRE_ALL_SUITES`).

use axum::Router;
use axum::routing::get;
use sessionbase::store::PrivateId;
use sessionbase::{Error, Session, SessionLayer, SessionStore};

use crate::common::{client, session_cookie, spawn};

/// The secret of every store here (a real one is random and kept out of the store).
fn private_id() -> PrivateId {
    PrivateId::new("the private_id secret of these tests, 32+ bytes").expect("long secret")
}

async fn login(session: Session) -> Result<&'static str, Error> {
    session.insert("user", "alice")?;
    Ok("logged in")
}

/// Who the session belongs to and how many visits it counted, this one included.
async fn visit(session: Session) -> Result<String, Error> {
    let user: Option<String> = session.get("user")?;
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(format!(
        "{}:{visits}",
        user.as_deref().unwrap_or("anonymous")
    ))
}

/// Reads only: one store call (the load), no write.
async fn whoami(session: Session) -> Result<String, Error> {
    let user: Option<String> = session.get("user")?;
    Ok(user.unwrap_or_else(|| "anonymous".into()))
}

fn app<S: SessionStore>(store: S) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/visit", get(visit))
        .route("/whoami", get(whoami))
        .layer(SessionLayer::new(store))
}

async fn get_with(base: &str, path: &str, cookie: &str) -> reqwest::Response {
    client()
        .get(format!("{base}{path}"))
        .header("cookie", format!("sessionid={cookie}"))
        .send()
        .await
        .expect("request")
}

/// Logs in over HTTP, dumps the store's keys with `dump`, and sends each as the cookie.
/// With `private`, no dumped key is the cookie and none authenticates (each starts a fresh
/// session of its own); without, the dumped key is the cookie and authenticates.
async fn dump_used_as_cookies<S: SessionStore>(
    store: S,
    dump: impl AsyncFn() -> Vec<String>,
    private: bool,
) {
    let base = spawn(app(store)).await;
    let response = client()
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login");
    let cookie = session_cookie(&response, "sessionid").value;
    let body = get_with(&base, "/visit", &cookie).await.text().await;
    assert_eq!(body.expect("body"), "alice:1");

    let dumped = dump().await;
    assert_eq!(dumped.len(), 1, "one session, one record: {dumped:?}");
    if !private {
        assert_eq!(
            dumped,
            std::slice::from_ref(&cookie),
            "without a private id the key is the cookie"
        );
        let body = get_with(&base, "/whoami", &dumped[0]).await.text().await;
        assert_eq!(
            body.expect("body"),
            "alice",
            "the control: a dumped key authenticates"
        );
        return;
    }
    for stolen in &dumped {
        assert_ne!(*stolen, cookie, "the dump holds the cookie itself");
        let response = get_with(&base, "/visit", stolen).await;
        let fresh = session_cookie(&response, "sessionid").value;
        assert_eq!(response.text().await.expect("body"), "anonymous:1");
        assert!(
            fresh != *stolen && fresh != cookie,
            "a new session, not the dumped one"
        );
    }
    // The real cookie still works, and the attempts changed nothing in its session.
    let body = get_with(&base, "/visit", &cookie).await.text().await;
    assert_eq!(body.expect("body"), "alice:2");
}

#[cfg(feature = "memory")]
#[tokio::test]
async fn a_layer_shared_with_django_refuses_a_private_id_store() {
    use sessionbase::MemoryStore;
    use sessionbase::django::DjangoConfig;
    use sessionbase::store::CachedStore;

    let django = DjangoConfig::new("django secret")
        .session_config()
        .expect("config");
    let refused = SessionLayer::new(MemoryStore::new().with_private_id(private_id()))
        .with_config(django.clone());
    let Err(Error::Config(message)) = refused else {
        panic!("a private-id store under a Django configuration must be refused");
    };
    assert!(message.contains("Django"), "{message}");
    // Inside a cached store too, on either side.
    let cached = CachedStore::new(
        MemoryStore::new(),
        MemoryStore::new().with_private_id(private_id()),
    );
    let refused = SessionLayer::new(cached).with_config(django.clone());
    assert!(matches!(refused, Err(Error::Config(_))));
    // Without a private id, or without Django, the layer starts.
    assert!(
        SessionLayer::new(MemoryStore::new())
            .with_config(django)
            .is_ok()
    );
    let own = sessionbase::SessionConfig::default();
    let private = SessionLayer::new(MemoryStore::new().with_private_id(private_id()));
    assert!(private.with_config(own.clone()).is_ok());

    // A cache and a store that key records differently: revoking would leave the cached copy.
    let other = PrivateId::new("another private-id secret, 32 bytes or more").expect("secret");
    for (cache, persistent) in [
        (
            MemoryStore::new().with_private_id(private_id()),
            MemoryStore::new(),
        ),
        (
            MemoryStore::new(),
            MemoryStore::new().with_private_id(private_id()),
        ),
        (
            MemoryStore::new().with_private_id(private_id()),
            MemoryStore::new().with_private_id(other.clone()),
        ),
    ] {
        let cached = SessionLayer::new(CachedStore::new(cache.clone(), persistent.clone()))
            .with_config(own.clone());
        let Err(Error::Config(message)) = cached else {
            panic!("a CachedStore whose halves key records differently must be refused");
        };
        assert!(message.contains("key records differently"), "{message}");
        let cached_db = sessionbase::store::CachedDbStore::new(persistent, cache);
        assert!(matches!(
            SessionLayer::new(cached_db).with_config(own.clone()),
            Err(Error::Config(_))
        ));
    }
    let alike = CachedStore::new(
        MemoryStore::new().with_private_id(private_id()),
        MemoryStore::new().with_private_id(private_id()),
    );
    assert!(SessionLayer::new(alike).with_config(own).is_ok());
}

#[cfg(all(feature = "conformance", feature = "memory"))]
#[tokio::test]
async fn conformance_on_memory_and_behind_caches() {
    use sessionbase::MemoryStore;
    use sessionbase::store::CachedStore;
    use sessionbase::store::conformance::{Exceptions, run};

    run(
        MemoryStore::new().with_private_id(private_id()),
        Exceptions::none(),
    )
    .await;
    let cached = CachedStore::new(
        MemoryStore::new().with_private_id(private_id()),
        MemoryStore::new().with_private_id(private_id()),
    );
    run(cached, Exceptions::none()).await;
    let cached_db = sessionbase::store::CachedDbStore::new(
        MemoryStore::new().with_private_id(private_id()),
        MemoryStore::new().with_private_id(private_id()),
    );
    run(cached_db, Exceptions::none()).await;
}

#[cfg(feature = "file")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_names_do_not_authenticate() {
    use sessionbase::FileStore;

    for private in [true, false] {
        let dir = std::env::temp_dir().join(format!("sessionbase-pid-{}", crate::common::random()));
        std::fs::create_dir(&dir).expect("temp dir");
        let mut store = FileStore::new(&dir).expect("store");
        if private {
            store = store.with_private_id(private_id());
        }
        let listing = async || {
            let names = std::fs::read_dir(&dir).expect("read_dir");
            names
                .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
                .filter_map(|name| name.strip_prefix("sessionid").map(str::to_owned))
                .collect()
        };
        dump_used_as_cookies(store, listing, private).await;
        #[cfg(feature = "conformance")]
        if private {
            use sessionbase::store::conformance::{Exceptions, run};
            let store = FileStore::new(&dir)
                .expect("store")
                .with_private_id(private_id());
            run(store, Exceptions::none()).await;
        }
        std::fs::remove_dir_all(&dir).expect("remove temp dir");
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_key_column_does_not_authenticate() {
    use sessionbase::SqliteStore;

    for private in [true, false] {
        let mut store = SqliteStore::connect("sqlite::memory:")
            .await
            .expect("sqlite");
        store.migrate().await.expect("migrate");
        if private {
            store = store.with_private_id(private_id());
        }
        let pool = store.pool().clone();
        let select = async || {
            sqlx::query_scalar("SELECT session_key FROM django_session")
                .fetch_all(&pool)
                .await
                .expect("SELECT")
        };
        dump_used_as_cookies(store.clone(), select, private).await;
        #[cfg(feature = "conformance")]
        if private {
            use sessionbase::store::conformance::{Exceptions, run};
            run(store, Exceptions::none()).await;
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::common::PgTable;
    use crate::common::proxy::{self, Protocol, Stats};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn key_column_does_not_authenticate() {
        for private in [true, false] {
            let Some(table) = PgTable::new("private ids on PostgreSQL") else {
                return;
            };
            let mut store = table.connect().await;
            store.migrate().await.expect("migrate");
            if private {
                store = store.with_private_id(private_id());
            }
            let pool = store.pool().clone();
            let sql = format!("SELECT session_key FROM \"{}\"", table.name());
            let select = async || {
                sqlx::query_scalar(&sql)
                    .fetch_all(&pool)
                    .await
                    .expect("SELECT")
            };
            dump_used_as_cookies(store.clone(), select, private).await;
            #[cfg(feature = "conformance")]
            if private {
                use sessionbase::store::conformance::{Exceptions, run};
                run(store, Exceptions::none()).await;
            }
        }
    }

    /// A request that only reads costs one round trip to PostgreSQL, private id or not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_is_one_round_trip() {
        let Some(table) = PgTable::new("private-id round trips on PostgreSQL") else {
            return;
        };
        let (upstream, through) = proxy::split_url(table.url());
        let stats = Stats::default();
        let addr = proxy::start(upstream, Protocol::Postgres, stats.clone()).await;
        let store = sessionbase::PostgresStore::connect(&through(addr))
            .await
            .expect("connect through the proxy")
            .with_table(table.name())
            .expect("table")
            .with_private_id(private_id());
        store.migrate().await.expect("migrate");
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
        // The load statement prepared once, then counted.
        get_with(&base, "/whoami", &cookie).await;
        stats.take();
        for _ in 0..5 {
            let body = get_with(&base, "/whoami", &cookie).await.text().await;
            assert_eq!(body.expect("body"), "alice");
        }
        let counts = stats.take();
        assert_eq!(counts.round_trips, 5, "{counts:?}");
        assert_eq!(counts.messages.get("Execute"), Some(&5), "{counts:?}");
    }
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_key_column_does_not_authenticate() {
    use crate::common::MySqlDatabase;
    use sessionbase::MySqlStore;

    for private in [true, false] {
        let Some(db) = MySqlDatabase::create("private ids on MySQL").await else {
            return;
        };
        let mut store = MySqlStore::connect(&db.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        if private {
            store = store.with_private_id(private_id());
        }
        let pool = store.pool().clone();
        let select = async || {
            sqlx::query_scalar("SELECT session_key FROM django_session")
                .fetch_all(&pool)
                .await
                .expect("SELECT")
        };
        dump_used_as_cookies(store.clone(), select, private).await;
        #[cfg(feature = "conformance")]
        if private {
            use sessionbase::store::conformance::{Exceptions, run};
            run(store, Exceptions::none()).await;
        }
        drop(pool);
    }
}

#[cfg(feature = "redis")]
mod redis_store;
