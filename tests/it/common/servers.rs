//! The shared servers of the store suites, found through three variables: PostgreSQL
//! (`DATABASE_URL`), MySQL or MariaDB (`MYSQL_URL`) and Redis (`REDIS_URL`).
//!
//! Each fixture gives a test resources of its own on the server, so that tests run in
//! parallel and leave the server as they found it: a table ([`PgTable`],
//! `django_session_t<random>`), a database ([`PgDatabase`], [`MySqlDatabase`],
//! `sessionbase_test_<random>`) or a Redis key prefix ([`RedisPrefix`],
//! `sessionbase-test-<random>`), removed when the fixture drops, whether the test passed or
//! panicked. Without the variable a fixture is `None`, after a `skipping … not set` line on
//! stderr; with `SESSIONBASE_REQUIRE_ALL_SUITES` set (as `.ci/run` does) it fails the test
//! instead.

use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

use super::random;

// ----- skipping -----

/// Writes a line straight to stderr: libtest captures `eprintln!` of passing tests.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// [`note`], once per distinct line in the process.
pub fn note_once(line: &str) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(PoisonError::into_inner);
    if !said.iter().any(|l| l == line) {
        said.push(line.to_owned());
        note(line);
    }
}

/// Whether every suite must run: `SESSIONBASE_REQUIRE_ALL_SUITES` is set.
pub fn all_suites_required() -> bool {
    std::env::var_os("SESSIONBASE_REQUIRE_ALL_SUITES").is_some()
}

/// Says on stderr (once) that `what` is skipped because `why`, or fails when every suite
/// must run.
#[track_caller]
pub fn skip(what: &str, why: &str) {
    if all_suites_required() {
        panic!("{what}: {why}, and SESSIONBASE_REQUIRE_ALL_SUITES is set");
    }
    note_once(&format!("skipping {what}: {why}"));
}

// ----- the servers -----

/// One of the shared servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Postgres,
    MySql,
    Redis,
}

impl Server {
    /// The variable that holds the server's URL.
    pub fn var(self) -> &'static str {
        match self {
            Self::Postgres => "DATABASE_URL",
            Self::MySql => "MYSQL_URL",
            Self::Redis => "REDIS_URL",
        }
    }

    /// The server's URL, or `None` after [`skip`]ping `what` when the variable is unset or
    /// empty.
    #[track_caller]
    pub fn url(self, what: &str) -> Option<String> {
        match std::env::var(self.var()) {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                skip(what, &format!("{} not set", self.var()));
                None
            }
        }
    }
}

/// Runs `cleanup` to completion on a thread and runtime of its own, for `Drop`
/// implementations: a drop may run inside a test's runtime (where it cannot block on a
/// future) or while a panic unwinds. Says on stderr what failed; never panics.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn clean_up<F, E>(what: &str, cleanup: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(cleanup()).map_err(|e| e.to_string())
    })
    .join();
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => note(&format!("could not drop {what}: {e}")),
        Err(_) => note(&format!("could not drop {what}: panicked")),
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(query) => format!("{host}/{name}?{query}"),
        None => format!("{host}/{name}"),
    }
}

// ----- PostgreSQL -----

/// A table of the test's own (`django_session_t<random>`) on the PostgreSQL server of
/// `DATABASE_URL`, dropped on drop. It does not exist until a store migrates it.
#[cfg(feature = "postgres")]
pub struct PgTable {
    url: String,
    name: String,
}

#[cfg(feature = "postgres")]
impl PgTable {
    /// A fresh table name, or `None` without `DATABASE_URL` (`what` is skipped).
    #[track_caller]
    pub fn new(what: &str) -> Option<Self> {
        let url = Server::Postgres.url(what)?;
        Some(Self {
            url,
            name: format!("django_session_t{}", &random()[..16]),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `DATABASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A `PostgresStore` on the table with a pool of its own, opened as
    /// `PostgresStore::connect` opens it (not migrated).
    pub async fn connect(&self) -> sessionbase::PostgresStore {
        sessionbase::PostgresStore::connect(&self.url)
            .await
            .expect("connect to DATABASE_URL")
            .with_table(&self.name)
            .expect("table name")
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgTable {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        clean_up(&format!("test table {}", self.name), move || async move {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            // A connection of the test left in a transaction must not hang the drop.
            sqlx::query("SET lock_timeout = '10s'")
                .execute(&mut conn)
                .await?;
            sqlx::query(&format!("DROP TABLE IF EXISTS \"{name}\""))
                .execute(&mut conn)
                .await?;
            // The user index's side table, when the test made one.
            sqlx::query(&format!("DROP TABLE IF EXISTS \"{name}_user\""))
                .execute(&mut conn)
                .await?;
            conn.close().await
        });
    }
}

/// A database of the test's own (`sessionbase_test_<random>`) on the PostgreSQL server of
/// `DATABASE_URL` (whose role may create databases), dropped on drop.
#[cfg(feature = "postgres")]
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// `DATABASE_URL` naming this database.
    pub url: String,
}

#[cfg(feature = "postgres")]
impl PgDatabase {
    /// Creates the database, or is `None` without `DATABASE_URL` (`what` is skipped).
    pub async fn create(what: &str) -> Option<Self> {
        use sqlx::Connection as _;
        let admin_url = Server::Postgres.url(what)?;
        let name = format!("sessionbase_test_{}", &random()[..16]);
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to DATABASE_URL: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        Some(Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        clean_up(
            &format!("test database {}", self.name),
            move || async move {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                // DROP DATABASE fails while anything is connected to it.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&name)
                .execute(&mut conn)
                .await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            },
        );
    }
}

// ----- MySQL and MariaDB -----

/// A database of the test's own (`sessionbase_test_<random>`, utf8mb4 as Django advises) on
/// the MySQL or MariaDB server of `MYSQL_URL` (whose user may create databases), dropped on
/// drop.
#[cfg(feature = "mysql")]
pub struct MySqlDatabase {
    admin_url: String,
    name: String,
    /// `MYSQL_URL` naming this database.
    pub url: String,
}

#[cfg(feature = "mysql")]
impl MySqlDatabase {
    /// Creates the database, or is `None` without `MYSQL_URL` (`what` is skipped).
    pub async fn create(what: &str) -> Option<Self> {
        use sqlx::Connection as _;
        let admin_url = Server::MySql.url(what)?;
        let name = format!("sessionbase_test_{}", &random()[..16]);
        let mut conn = sqlx::MySqlConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to MYSQL_URL: {e}"));
        sqlx::query(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        Some(Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

#[cfg(feature = "mysql")]
impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        clean_up(
            &format!("test database {}", self.name),
            move || async move {
                use sqlx::Connection as _;
                let mut conn = sqlx::MySqlConnection::connect(&admin_url).await?;
                // DROP DATABASE waits for the metadata locks of open connections to it.
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM information_schema.processlist \
                 WHERE db = ? AND id <> CONNECTION_ID()",
                )
                .bind(&name)
                .fetch_all(&mut conn)
                .await?;
                for id in ids {
                    let _ = sqlx::query(&format!("KILL {id}")).execute(&mut conn).await;
                }
                sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            },
        );
    }
}

// ----- Redis -----

/// A key prefix of the test's own (`sessionbase-test-<random>`) on the Redis server of
/// `REDIS_URL`: every key that starts with it is deleted when this guard drops. Give it to
/// a `RedisStore` as `format!("{}:", prefix.prefix())`, or to Django as a cache
/// `KEY_PREFIX`.
pub struct RedisPrefix {
    url: String,
    prefix: String,
}

impl RedisPrefix {
    /// A fresh prefix, or `None` without `REDIS_URL` (`what` is skipped).
    #[track_caller]
    pub fn new(what: &str) -> Option<Self> {
        let url = Server::Redis.url(what)?;
        Some(Self {
            url,
            prefix: format!("sessionbase-test-{}", &random()[..16]),
        })
    }

    /// `REDIS_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The `KEYS` pattern that matches exactly the keys starting with the prefix (glob
    /// characters in it are escaped).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 1);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }
}

/// Direct looks at Redis, for tests that check the keys, bytes and TTLs.
#[cfg(feature = "redis")]
impl RedisPrefix {
    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("REDIS_URL parses")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to REDIS_URL")
    }

    /// The keys that start with the prefix, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(self.pattern())
            .query_async(&mut self.connection().await)
            .await
            .expect("KEYS");
        keys.sort();
        keys
    }

    /// `GET key`: the raw bytes stored under a full Redis key.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.connection().await)
            .await
            .expect("GET")
    }

    /// `TTL key`: seconds left, -1 without an expiry, -2 when there is no such key.
    pub async fn ttl(&self, key: &str) -> i64 {
        redis::cmd("TTL")
            .arg(key)
            .query_async(&mut self.connection().await)
            .await
            .expect("TTL")
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisPrefix {
    fn drop(&mut self) {
        // Synchronous on purpose: drop may run inside the test's runtime, or in a panic.
        let deleted = (|| -> redis::RedisResult<()> {
            let mut conn = redis::Client::open(self.url.as_str())?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(self.pattern()).query(&mut conn)?;
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut conn)?;
            }
            Ok(())
        })();
        if let Err(e) = deleted {
            note(&format!(
                "could not delete the Redis keys {}*: {e}",
                self.prefix
            ));
        }
    }
}
