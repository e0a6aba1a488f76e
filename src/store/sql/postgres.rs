//! `PostgresStore`: Django's `db` backend on PostgreSQL.

use sqlx::postgres::{PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection as _, Postgres};
use time::OffsetDateTime;

use super::macros::sql_store;
use super::store::{Backend, SqlCore, dollar_placeholder};
use super::{django_index_name, map_err};
use crate::Error;
use crate::store::Codec;

/// PostgreSQL as the SQL stores speak it.
pub(crate) enum PgDialect {}

impl Backend for PgDialect {
    type Db = Postgres;
    type DateTime = OffsetDateTime;
    const QUOTE: char = '"';
    const MAX_NAME_LENGTH: usize = 63;
    const DML_IN_CTE: bool = true;

    fn placeholder(n: usize) -> String {
        dollar_placeholder(n)
    }

    fn migrate_statements(table: &str) -> Vec<String> {
        let expire_index = django_index_name(Self::MAX_NAME_LENGTH, table, "expire_date", "");
        // Django's PostgreSQL schema editor adds the `_like` index for varchar primary keys,
        // so that `LIKE 'prefix%'` can use an index whatever the database's collation.
        let like_index = django_index_name(Self::MAX_NAME_LENGTH, table, "session_key", "_like");
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS \"{table}\" (\"session_key\" varchar(40) NOT NULL PRIMARY KEY, \
                 \"session_data\" text NOT NULL, \"expire_date\" timestamp with time zone NOT NULL)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS \"{expire_index}\" ON \"{table}\" (\"expire_date\")"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS \"{like_index}\" ON \"{table}\" (\"session_key\" varchar_pattern_ops)"
            ),
        ]
    }

    fn to_db(datetime: OffsetDateTime) -> OffsetDateTime {
        datetime
    }

    fn from_db(value: OffsetDateTime) -> Option<OffsetDateTime> {
        Some(value)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
        is_unavailable_code(error.code().as_deref())
    }

    fn is_disconnect(error: &dyn sqlx::error::DatabaseError) -> bool {
        is_disconnect_code(error.code().as_deref())
    }
}

/// SQLSTATE class 08 (connection exception) and 57P01-57P03: the server shut down, or an
/// administrator ended the backend (`pg_terminate_backend`), or it is starting up.
fn is_disconnect_code(code: Option<&str>) -> bool {
    code.is_some_and(|code| code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03"))
}

/// SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator
/// intervention (shutdown, statement timeout), 40 transaction rollback (deadlock,
/// serialization failure: worth retrying later).
fn is_unavailable_code(code: Option<&str>) -> bool {
    code.is_some_and(|code| {
        ["08", "40", "53", "57"]
            .iter()
            .any(|class| code.starts_with(class))
    })
}

/// Sessions in PostgreSQL, in Django's `django_session` table: Django's `db` session backend,
/// shared by every instance of a service (and by a Django project) that uses the database.
///
/// The table has Django's schema (`session_key varchar(40)` primary key, `session_data text`,
/// `expire_date timestamp with time zone`), and [`migrate`](Self::migrate) creates it with
/// the DDL of Django's migration, indexes included. `session_data` is [`Codec`]'s encoding:
/// plain JSON by default, or with [`with_codec`](Self::with_codec)`(`[`Codec::django`]`)`
/// exactly Django's `SessionBase.encode`, so that a Django project and Rust services with the
/// same `SECRET_KEY` can share the sessions.
///
/// As in Django: `create` only inserts (a taken key means another key is drawn), `save` only
/// updates (a deleted record is never resurrected), a record loads only while
/// `expire_date > now`, and [`clear_expired`](crate::SessionStore::clear_expired) deletes the
/// rows with `expire_date < now`. Unlike Django, [`exists`](crate::SessionStore::exists) is
/// false for an expired row that has not been cleared yet. Saves are compare-and-swap on the
/// stored `session_data` text, so concurrent requests (on any instance) that change different
/// keys both keep their change. `now` is this process's clock, as in Django. Cloning is cheap
/// and shares the connections.
///
/// Each store call is one round trip: one `Bind`/`Execute`/`Sync` exchange on a statement
/// prepared once per connection (a save that finds no matching row takes a second, to tell
/// a conflict from a deleted session). The store keeps connections of its own, opened with
/// the settings of a sqlx pool ([`new`](Self::new) says which), because sqlx's pool pings
/// each connection given back to it. A connection is not reused after a call cancelled in
/// the middle (by `store_timeout`) or an error that lost it; when the server ends the
/// connections (a restart, `pg_terminate_backend`), the first call to meet a dead one fails
/// with [`Error::StoreUnavailable`] (503) and closes the other idle ones, and the next
/// reconnects.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use sessionbase::store::Codec;
/// use sessionbase::{PostgresStore, Session, SessionLayer};
///
/// async fn index(session: Session) -> Result<String, sessionbase::Error> {
///     let visits: u64 = session.get("visits")?.unwrap_or(0);
///     session.insert("visits", visits + 1)?;
///     Ok(format!("{visits} earlier visits"))
/// }
///
/// # async fn run() -> Result<(), sessionbase::Error> {
/// let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test")
///     .await?
///     // Optional: read and write sessions exactly as a Django project with this secret.
///     .with_codec(Codec::django("django-secret-key", Vec::<String>::new()));
/// store.migrate().await?;
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::new(store));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    core: SqlCore<PgDialect>,
}

sql_store!(PostgresStore);

impl PostgresStore {
    /// A store with `pool`'s settings, using the table `django_session` and plain JSON.
    ///
    /// The store opens connections of its own rather than borrowing `pool`'s, because sqlx's
    /// pool pings each connection given back to it, a second round trip per store call. What
    /// it shares with `pool`: the connect options (read again for each new connection, so
    /// that [`set_connect_options`](sqlx::Pool::set_connect_options) applies), the limits
    /// `max_connections` (the store's own, on top of the application's),
    /// `acquire_timeout` (a call that cannot get a connection within it fails with
    /// [`Error::StoreUnavailable`], 503), `max_lifetime` and `idle_timeout`, and closing:
    /// once `pool` is closed the store's calls fail with [`Error::StoreUnavailable`]. What it
    /// does not: the connections themselves, `min_connections` (the store opens connections
    /// when calls need them), and the `after_connect`, `before_acquire` and `after_release`
    /// hooks. [`pool`](Self::pool) gives `pool` back, for the application's own queries.
    pub fn new(pool: PgPool) -> Self {
        Self {
            core: SqlCore::with_own_connections(pool),
        }
    }

    /// A store on `url` (`postgres://user:password@host:5432/database`), with sqlx's default
    /// limits (10 connections) and a 3 s `acquire_timeout`; it checks that it connects.
    ///
    /// Fails with [`Error::Config`] for a malformed URL and [`Error::StoreUnavailable`]
    /// when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        // Lazy: the store opens its own connections with these settings (see `new`), and
        // this pool only ever connects for the application's queries through `pool()`.
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            // sqlx waits 30 s for a connection by default, retrying a refused one: with the
            // server down every request would hang that long. A few seconds give a prompt 503.
            .acquire_timeout(std::time::Duration::from_secs(3))
            .connect_lazy(url)
            .map_err(map_err::<PgDialect>)?;
        let store = Self::new(pool);
        // The first connection, kept for the first call.
        store.core.lease().await?;
        Ok(store)
    }

    /// Uses the table `table` (in the connection's `search_path`) instead of
    /// `django_session`. The name must match `[A-Za-z_][A-Za-z0-9_]*` and have at most 63
    /// characters, or this fails with [`Error::Config`]: it is the one part of the SQL that is
    /// not a bound parameter. It is quoted, so it is case-sensitive.
    pub fn with_table(self, table: &str) -> Result<Self, Error> {
        Ok(Self {
            core: self.core.with_table(table)?,
        })
    }

    /// Encodes `session_data` with `codec`: [`Codec::django`] to write and read exactly what
    /// Django's `SessionBase.encode` does. The default is [`Codec::plain`] JSON.
    pub fn with_codec(self, codec: Codec) -> Self {
        Self {
            core: self.core.with_codec(codec),
        }
    }

    /// Creates the table and its indexes if they do not exist, with the DDL of Django's
    /// `sessions` migration on PostgreSQL (plus `IF NOT EXISTS`):
    ///
    /// ```sql
    /// CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY,
    ///     "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL);
    /// CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");
    /// CREATE INDEX "django_session_session_key_c0390e0f_like" ON "django_session"
    ///     ("session_key" varchar_pattern_ops);
    /// ```
    ///
    /// Index names follow Django's scheme for other table names too, so on a table Django
    /// created this changes nothing. It runs in one transaction under an advisory lock, so
    /// instances starting together can all call it.
    pub async fn migrate(&self) -> Result<(), Error> {
        let lock = format!("sessionbase migrate {}", self.table());
        let mut lease = self.core.lease().await?;
        lease
            .run::<PgDialect, _, _>(|conn| async move {
                let mut tx = conn.begin().await?;
                // Concurrent `CREATE TABLE IF NOT EXISTS` can fail on PostgreSQL's catalog;
                // the lock (released at commit) serialises migrations of this table.
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(lock)
                    .execute(&mut *tx)
                    .await?;
                for statement in self.core.migrate_statements() {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                tx.commit().await
            })
            .await
            .map_err(map_err::<PgDialect>)
    }

    /// The pool the store was built with (by [`connect`](Self::connect): a lazy one with the
    /// store's settings), for the application's own queries: the store's statements run on
    /// connections of its own (see [`new`](Self::new)).
    pub fn pool(&self) -> &PgPool {
        self.core.pool()
    }

    /// The table the store uses.
    pub fn table(&self) -> &str {
        self.core.table()
    }
}

#[cfg(test)]
mod tests;
