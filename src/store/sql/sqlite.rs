//! `SqliteStore`: Django's `db` backend on SQLite.

use std::fmt::Write as _;
use std::str::FromStr;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteQueryResult};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::macros::sql_store;
use super::map_err;
use super::store::{Backend, SqlCore, dollar_placeholder};
use crate::Error;
use crate::store::Codec;

/// SQLite as the SQL stores speak it.
pub(crate) enum SqliteDialect {}

impl Backend for SqliteDialect {
    type Db = Sqlite;
    type DateTime = String;
    const QUOTE: char = '"';
    const MAX_NAME_LENGTH: usize = 200;

    fn placeholder(n: usize) -> String {
        dollar_placeholder(n)
    }

    fn migrate_statements(table: &str) -> Vec<String> {
        let expire_index =
            super::django_index_name(Self::MAX_NAME_LENGTH, table, "expire_date", "");
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS \"{table}\" (\"session_key\" varchar(40) NOT NULL PRIMARY KEY, \
                 \"session_data\" text NOT NULL, \"expire_date\" datetime NOT NULL)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS \"{expire_index}\" ON \"{table}\" (\"expire_date\")"
            ),
        ]
    }

    fn to_db(datetime: OffsetDateTime) -> String {
        sqlite_datetime(datetime)
    }

    fn from_db(value: String) -> Option<OffsetDateTime> {
        parse_sqlite_datetime(&value)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
        is_unavailable_code(error.code().as_deref())
    }
}

/// Extended result codes; the primary code is the low byte. SQLITE_IOERR (10), SQLITE_BUSY
/// (5), SQLITE_LOCKED (6), SQLITE_CANTOPEN (14).
fn is_unavailable_code(code: Option<&str>) -> bool {
    code.and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 14))
}

/// `datetime` as Django's SQLite backend stores it with `USE_TZ = True`: naive UTC, Python's
/// `str(datetime)`, i.e. `YYYY-MM-DD HH:MM:SS` followed by `.ffffff` unless the microseconds
/// are zero. Text comparison orders these correctly (the part up to the seconds has a fixed
/// width, and a value without a fraction sorts before the same second with one).
/// Nanoseconds are truncated to microseconds; instants before year 1 (Python's minimum)
/// become `0001-01-01 00:00:00`.
pub(crate) fn sqlite_datetime(datetime: OffsetDateTime) -> String {
    let utc = datetime
        .checked_to_offset(UtcOffset::UTC)
        .filter(|utc| utc.year() >= 1);
    let Some(utc) = utc else {
        return "0001-01-01 00:00:00".to_owned();
    };
    let mut text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    );
    let micros = utc.microsecond();
    if micros != 0 {
        // Writing to a String cannot fail.
        let _ = write!(text, ".{micros:06}");
    }
    text
}

/// Reads an `expire_date` Django's SQLite backend wrote (`YYYY-MM-DD HH:MM:SS[.ffffff]`,
/// naive UTC); `None` for anything else.
pub(crate) fn parse_sqlite_datetime(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// How sqlx opens `url`, as its own URL parsing decides.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// A file.
    File,
    /// An in-memory database that every connection of a pool shares (sqlx's default for
    /// `sqlite::memory:`, `sqlite://:memory:` and `mode=memory`).
    SharedMemory,
    /// An in-memory database private to one connection (`cache=private`).
    PrivateMemory,
}

fn kind(url: &str) -> Kind {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    let has = |wanted: &str| params.split('&').any(|param| param == wanted);
    if database != ":memory:" && !has("mode=memory") {
        Kind::File
    } else if has("cache=private") {
        Kind::PrivateMemory
    } else {
        Kind::SharedMemory
    }
}

/// Sessions in an SQLite database (a file, or `:memory:`), in Django's `django_session`
/// table: Django's `db` session backend.
///
/// The table has Django's schema (`session_key varchar(40)` primary key, `session_data text`,
/// `expire_date datetime`, indexed), and [`migrate`](Self::migrate) creates it with exactly
/// the DDL of Django's migration. `expire_date` is written as Django's SQLite backend writes
/// it with `USE_TZ = True` (naive UTC text, `YYYY-MM-DD HH:MM:SS[.ffffff]`), and
/// `session_data` is [`Codec`]'s encoding: plain JSON by default, or with
/// [`with_codec`](Self::with_codec)`(`[`Codec::django`]`)` exactly Django's
/// `SessionBase.encode`, so that a Django project and a Rust service with the same
/// `SECRET_KEY` can share one table.
///
/// As in Django: `create` only inserts (a taken key means another key is drawn), `save` only
/// updates (a deleted record is never resurrected), a record loads only while
/// `expire_date > now`, and [`clear_expired`](crate::SessionStore::clear_expired) deletes the
/// rows with `expire_date < now`. Unlike Django, [`exists`](crate::SessionStore::exists) is
/// false for an expired row that has not been cleared yet. Saves are compare-and-swap on the
/// stored `session_data` text, so concurrent requests that change different keys both keep
/// their change. Cloning is cheap and shares the pool.
///
/// ```
/// use axum::{Router, routing::get};
/// use sessionbase::{Session, SessionLayer, SqliteStore};
///
/// async fn index(session: Session) -> Result<String, sessionbase::Error> {
///     let visits: u64 = session.get("visits")?.unwrap_or(0);
///     session.insert("visits", visits + 1)?;
///     Ok(format!("{visits} earlier visits"))
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = SqliteStore::connect("sqlite::memory:").await?;
/// store.migrate().await?;
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::new(store));
/// # Ok::<(), sessionbase::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    core: SqlCore<SqliteDialect>,
}

sql_store!(SqliteStore);

impl SqliteStore {
    /// A store over `pool`, using the table `django_session` and plain JSON.
    ///
    /// Build the pool yourself to choose its size, timeouts or pragmas (WAL, say). For an
    /// in-memory database every connection of the pool must see the same database (a shared
    /// cache, or a single connection) and one of them must stay open, or the sessions go
    /// with it; [`connect`](Self::connect) does this.
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            core: SqlCore::new(pool),
        }
    }

    /// Opens a pool on `url` (`"sqlite::memory:"`, `"sqlite://sessions.db?mode=rwc"`, ...)
    /// with sqlx's defaults. An in-memory database gets a pool of one connection that is
    /// never closed, so that the database lives as long as the store. Each call with
    /// `"sqlite::memory:"` opens a new, empty database.
    ///
    /// Fails with [`Error::Config`] for a malformed URL and [`Error::StoreUnavailable`]
    /// when the database cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let options = SqliteConnectOptions::from_str(url).map_err(map_err::<SqliteDialect>)?;
        // An in-memory database lives while one of its connections is open: none is ever
        // closed. sqlx opens `:memory:` with a shared cache, so that every connection of the
        // pool sees the same database; with a private cache, only one connection can.
        let pool_options = match kind(url) {
            Kind::File => SqlitePoolOptions::new(),
            Kind::SharedMemory => SqlitePoolOptions::new()
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            Kind::PrivateMemory => SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
        };
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(map_err::<SqliteDialect>)?;
        Ok(Self::new(pool))
    }

    /// Uses the table `table` instead of `django_session`. The name must match
    /// `[A-Za-z_][A-Za-z0-9_]*` and have at most 63 characters, or this fails with
    /// [`Error::Config`]: it is the one part of the SQL that is not a bound parameter.
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

    /// Creates the table and its index if they do not exist, with the DDL of Django's
    /// `sessions` migration (plus `IF NOT EXISTS`):
    ///
    /// ```sql
    /// CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY,
    ///     "session_data" text NOT NULL, "expire_date" datetime NOT NULL);
    /// CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");
    /// ```
    ///
    /// Index names follow Django's scheme for other table names too, so on a table Django
    /// created this changes nothing.
    pub async fn migrate(&self) -> Result<(), Error> {
        // Each statement is idempotent, so no transaction is needed (and none can deadlock
        // with another process migrating the same file).
        self.core.run_migrate_statements().await
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &SqlitePool {
        self.core.pool()
    }

    /// The table the store uses.
    pub fn table(&self) -> &str {
        self.core.table()
    }
}

#[cfg(test)]
mod tests;
