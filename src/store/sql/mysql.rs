//! `MySqlStore`: Django's `db` backend on MySQL and MariaDB.

use sqlx::MySql;
use sqlx::mysql::{MySqlDatabaseError, MySqlPool, MySqlPoolOptions, MySqlQueryResult};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::macros::sql_store;
use super::store::{Backend, SqlCore};
use super::{django_index_name, map_err};
use crate::Error;
use crate::store::Codec;

/// MySQL and MariaDB as the SQL stores speak them.
pub(crate) enum MySqlDialect {}

impl Backend for MySqlDialect {
    type Db = MySql;
    /// `datetime(6)` holds naive UTC, as Django writes it with `USE_TZ = True`.
    type DateTime = PrimitiveDateTime;
    const QUOTE: char = '`';
    const MAX_NAME_LENGTH: usize = 64;
    const INSERT_IGNORE: (&'static str, &'static str) = ("INSERT IGNORE INTO", "");

    fn placeholder(_: usize) -> String {
        "?".to_owned()
    }

    /// Byte for byte: the column's collation (Django's default, `utf8mb4_general_ci`, say)
    /// may ignore case and trailing spaces, which would let a stale version match.
    fn same_text(column: &str, parameter: &str) -> String {
        format!("{column} = CAST({parameter} AS BINARY)")
    }

    /// Django's DDL, with its index declared in the `CREATE TABLE` (MySQL has no
    /// `CREATE INDEX IF NOT EXISTS`): one idempotent statement, and the same table.
    fn migrate_statements(table: &str) -> Vec<String> {
        let expire_index = django_index_name(Self::MAX_NAME_LENGTH, table, "expire_date", "");
        vec![format!(
            "CREATE TABLE IF NOT EXISTS `{table}` (`session_key` varchar(40) NOT NULL PRIMARY KEY, \
             `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL, \
             INDEX `{expire_index}` (`expire_date`))"
        )]
    }

    fn to_db(datetime: OffsetDateTime) -> PrimitiveDateTime {
        // Microseconds: `datetime(6)` keeps no more (the server rounds, so truncate here as
        // Python's datetime does).
        let utc = datetime
            .checked_to_offset(UtcOffset::UTC)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let utc = utc
            .replace_nanosecond(utc.microsecond() * 1000)
            .unwrap_or(utc);
        PrimitiveDateTime::new(utc.date(), utc.time())
    }

    fn from_db(value: PrimitiveDateTime) -> Option<OffsetDateTime> {
        Some(value.assume_utc())
    }

    /// Rows matched (sqlx connects with `CLIENT_FOUND_ROWS`), not rows changed: an `UPDATE`
    /// that writes what the row holds counts.
    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
        error
            .try_downcast_ref::<MySqlDatabaseError>()
            .is_some_and(|error| is_unavailable_error(error.number(), error.code()))
    }

    fn is_disconnect(error: &dyn sqlx::error::DatabaseError) -> bool {
        error
            .try_downcast_ref::<MySqlDatabaseError>()
            .is_some_and(|error| is_disconnect_error(error.number(), error.code()))
    }
}

/// The server shutting down (1053), the connection killed (1927, MariaDB) or closed for
/// inactivity (4031), or SQLSTATE class 08.
fn is_disconnect_error(number: u16, sqlstate: Option<&str>) -> bool {
    matches!(number, 1053 | 1927 | 4031) || sqlstate.is_some_and(|state| state.starts_with("08"))
}

/// Server errors that mean "out of reach or too busy": SQLSTATE class 08 (connection) and 40
/// (rollback), too many connections (1040, 1203), shutdown (1053), lock wait timeout
/// (1205), deadlock (1213), interrupted or killed (1317, 1927), statement timeouts (1969
/// MariaDB, 3024 MySQL) and an idle connection the server closed (4031).
fn is_unavailable_error(number: u16, sqlstate: Option<&str>) -> bool {
    matches!(
        number,
        1040 | 1053 | 1203 | 1205 | 1213 | 1317 | 1927 | 1969 | 3024 | 4031
    ) || sqlstate.is_some_and(|state| state.starts_with("08") || state.starts_with("40"))
}

/// Sessions in MySQL or MariaDB, in Django's `django_session` table: Django's `db` session
/// backend on its MySQL engine, shared by every instance of a service (and by a Django
/// project) that uses the database.
///
/// The table has Django's schema on MySQL (`session_key varchar(40)` primary key,
/// `session_data longtext`, `expire_date datetime(6)`, indexed), and
/// [`migrate`](Self::migrate) creates it as Django's migration does. `expire_date` holds naive
/// UTC to the microsecond, as Django writes it with `USE_TZ = True`; `session_data` is
/// [`Codec`]'s encoding: plain JSON by default, or with
/// [`with_codec`](Self::with_codec)`(`[`Codec::django`]`)` exactly Django's
/// `SessionBase.encode`, so that a Django project and Rust services with the same
/// `SECRET_KEY` can share the sessions. Use a `utf8mb4` database (Django's advice), or
/// sessions with characters beyond the database's charset fail to save.
///
/// As in Django: `create` only inserts (a taken key means another key is drawn), `save` only
/// updates (a deleted record is never resurrected), a record loads only while
/// `expire_date > now`, and [`clear_expired`](crate::SessionStore::clear_expired) deletes the
/// rows with `expire_date < now`. Unlike Django, [`exists`](crate::SessionStore::exists) is
/// false for an expired row that has not been cleared yet. Saves are compare-and-swap on the
/// stored `session_data`, compared byte for byte whatever the column's collation, so
/// concurrent requests (on any instance) that change different keys both keep their change.
/// `now` is this process's clock, as in Django. Cloning is cheap and shares the
/// connections, which are the store's own, as [`PostgresStore`](crate::PostgresStore)'s are.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use sessionbase::store::Codec;
/// use sessionbase::{MySqlStore, Session, SessionLayer};
///
/// async fn index(session: Session) -> Result<String, sessionbase::Error> {
///     let visits: u64 = session.get("visits")?.unwrap_or(0);
///     session.insert("visits", visits + 1)?;
///     Ok(format!("{visits} earlier visits"))
/// }
///
/// # async fn run() -> Result<(), sessionbase::Error> {
/// let store = MySqlStore::connect("mysql://root@127.0.0.1:3306/test")
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
pub struct MySqlStore {
    core: SqlCore<MySqlDialect>,
}

sql_store!(MySqlStore);

impl MySqlStore {
    /// A store with `pool`'s settings, using the table `django_session` and plain JSON.
    ///
    /// As [`PostgresStore::new`](crate::PostgresStore::new) does, the store opens connections
    /// of its own (sqlx's pool would send a `COM_PING` after each call) with `pool`'s connect
    /// options, `max_connections`, `acquire_timeout` (a call that cannot get a connection
    /// within it fails with [`Error::StoreUnavailable`], 503), `max_lifetime` and
    /// `idle_timeout`, and fails once `pool` is closed; it does not share `pool`'s
    /// connections, `min_connections` or hooks. sqlx's connections report rows matched by an
    /// `UPDATE` (`CLIENT_FOUND_ROWS`), which compare-and-swap saves rely on.
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            core: SqlCore::with_own_connections(pool),
        }
    }

    /// A store on `url` (`mysql://user:password@host:3306/database`, or `mariadb://`) that
    /// checks that it connects. Like [`PostgresStore::connect`](crate::PostgresStore), it
    /// has sqlx's default limits (10 connections) and waits 3 seconds at most for a
    /// connection.
    ///
    /// Fails with [`Error::Config`] for a malformed URL and [`Error::StoreUnavailable`]
    /// when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        // Lazy: only the application's queries through `pool()` use its connections.
        let pool = MySqlPoolOptions::new()
            .test_before_acquire(false)
            .acquire_timeout(std::time::Duration::from_secs(3))
            .connect_lazy(url)
            .map_err(map_err::<MySqlDialect>)?;
        let store = Self::new(pool);
        // The first connection, kept for the first call.
        store.core.lease().await?;
        Ok(store)
    }

    /// Uses the table `table` (in the connection's database) instead of `django_session`.
    /// The name must match `[A-Za-z_][A-Za-z0-9_]*` and have at most 63 characters, or this
    /// fails with [`Error::Config`]: it is the one part of the SQL that is not a bound
    /// parameter.
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

    /// Creates the table and its index if they do not exist: the table of Django's
    /// `sessions` migration on MySQL, in one `CREATE TABLE IF NOT EXISTS`:
    ///
    /// ```sql
    /// CREATE TABLE `django_session` (`session_key` varchar(40) NOT NULL PRIMARY KEY,
    ///     `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL);
    /// CREATE INDEX `django_session_expire_date_a5c62663` ON `django_session` (`expire_date`);
    /// ```
    ///
    /// The index is named as Django names it for any table name, so on a table Django
    /// created this changes nothing; the table gets the database's default charset, as with
    /// Django. One statement, so instances starting together can all call it.
    pub async fn migrate(&self) -> Result<(), Error> {
        self.core.run_migrate_statements().await
    }

    /// The pool the store was built with (by [`connect`](Self::connect): a lazy one with the
    /// store's settings), for the application's own queries: the store's statements run on
    /// connections of its own (see [`new`](Self::new)).
    pub fn pool(&self) -> &MySqlPool {
        self.core.pool()
    }

    /// The table the store uses.
    pub fn table(&self) -> &str {
        self.core.table()
    }
}

#[cfg(test)]
mod tests;
