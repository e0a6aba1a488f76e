//! The generic core of the SQL stores: one implementation of every store operation over any
//! sqlx database, with what differs between databases in a [`Backend`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use time::OffsetDateTime;

use super::pool::{Lease, OwnPool};
use super::{CREATE_ATTEMPTS, DEFAULT_TABLE, map_err, validate_table};

mod user_index;
mod user_scan;

use crate::store::{Codec, LoadedRecord, Record, RecordKeys, SaveOutcome, Version};
use crate::{Error, SessionKey};
use user_index::{IndexQueries, bind_user};

/// What one database does its own way: the SQL it speaks, how `expire_date` is bound and
/// read, Django's DDL and which errors mean "out of reach".
pub(crate) trait Backend: Send + Sync + 'static {
    /// The sqlx driver.
    type Db: Database;
    /// How `expire_date` is bound and read.
    type DateTime: for<'q> Encode<'q, Self::Db>
        + for<'r> Decode<'r, Self::Db>
        + Type<Self::Db>
        + Clone
        + Unpin
        + Send
        + Sync
        + 'static;

    /// The identifier quote (`"` in standard SQL, a backtick for MySQL).
    const QUOTE: char;
    /// Django's `connection.ops.max_name_length()` (or the 200 its schema editor uses when
    /// the backend has none), for index names.
    const MAX_NAME_LENGTH: usize;

    /// The `n`th (from 1) bind parameter.
    fn placeholder(n: usize) -> String;
    /// A condition that `column` holds exactly the text of `parameter` (byte for byte: a
    /// compare-and-swap must not match under a case-insensitive collation).
    fn same_text(column: &str, parameter: &str) -> String {
        format!("{column} = {parameter}")
    }
    /// Django's `sessions` migration for `table` (validated), each statement idempotent.
    fn migrate_statements(table: &str) -> Vec<String>;
    /// `expire_date` as it is bound.
    fn to_db(datetime: OffsetDateTime) -> Self::DateTime;
    /// `expire_date` as it was read; `None` when it cannot be read as an instant.
    fn from_db(value: Self::DateTime) -> Option<OffsetDateTime>;
    /// Rows a statement matched.
    fn rows_affected(result: &<Self::Db as Database>::QueryResult) -> u64;
    /// How an insert that ignores a duplicate row starts and ends (the user index's).
    const INSERT_IGNORE: (&'static str, &'static str) = ("INSERT INTO", " ON CONFLICT DO NOTHING");
    /// Whether a `WITH` may hold an `INSERT` (PostgreSQL): the user index then costs no
    /// statement of its own.
    const DML_IN_CTE: bool = false;
    /// Whether a database error means "out of reach or too busy" rather than a failure of
    /// the statement itself.
    fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool;
    /// Whether a database error means that the server closed the connection (shutting down,
    /// or an administrator ended it): its other connections are likely gone too.
    fn is_disconnect(_error: &dyn sqlx::error::DatabaseError) -> bool {
        false
    }
}

/// The SQL text of every statement a store runs, built once per table.
///
/// Every value is a bind parameter; the table name, validated by [`validate_table`], is the
/// only interpolated part.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) table: String,
    /// key, now → `session_data`, `expire_date`.
    pub(crate) load: String,
    /// key, data, expire date.
    pub(crate) insert: String,
    /// new data, new expire date, key, expected data, now.
    pub(crate) update: String,
    /// new expire date, key, expected data, now.
    pub(crate) touch: String,
    /// key, now → a row when the key has a live record.
    pub(crate) live: String,
    /// key.
    pub(crate) delete: String,
    /// now.
    pub(crate) clear_expired: String,
    /// Django's DDL with `IF NOT EXISTS`, one statement per entry.
    pub(crate) migrate: Vec<String>,
}

impl Queries {
    /// The statements for `table`, which must have passed [`validate_table`].
    pub(crate) fn new<B: Backend>(table: &str) -> Self {
        let quote = |name: &str| format!("{q}{name}{q}", q = B::QUOTE);
        let t = quote(table);
        let (key, data, expire) = (
            quote("session_key"),
            quote("session_data"),
            quote("expire_date"),
        );
        let p = B::placeholder;
        Self {
            table: table.to_owned(),
            load: format!(
                "SELECT {data}, {expire} FROM {t} WHERE {key} = {} AND {expire} > {}",
                p(1),
                p(2)
            ),
            insert: format!(
                "INSERT INTO {t} ({key}, {data}, {expire}) VALUES ({}, {}, {})",
                p(1),
                p(2),
                p(3)
            ),
            update: format!(
                "UPDATE {t} SET {data} = {}, {expire} = {} WHERE {key} = {} AND {} AND {expire} > {}",
                p(1),
                p(2),
                p(3),
                B::same_text(&data, &p(4)),
                p(5)
            ),
            touch: format!(
                "UPDATE {t} SET {expire} = {} WHERE {key} = {} AND {} AND {expire} > {}",
                p(1),
                p(2),
                B::same_text(&data, &p(3)),
                p(4)
            ),
            live: format!(
                "SELECT 1 FROM {t} WHERE {key} = {} AND {expire} > {}",
                p(1),
                p(2)
            ),
            delete: format!("DELETE FROM {t} WHERE {key} = {}", p(1)),
            clear_expired: format!("DELETE FROM {t} WHERE {expire} < {}", p(1)),
            migrate: B::migrate_statements(table),
        }
    }
}

/// `$n`, the placeholder of PostgreSQL (and of SQLite, which sqlx lets use it too).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn dollar_placeholder(n: usize) -> String {
    format!("${n}")
}

/// One SQL store: a pool, the statements for its table and its codec. The public stores wrap
/// it. Cloning is cheap and shares the pool.
pub(crate) struct SqlCore<B: Backend> {
    pool: Pool<B::Db>,
    /// The connections the statements run on, when not the pool's (see `pool.rs`).
    own: Option<OwnPool<B::Db>>,
    shared: Arc<Shared>,
    /// The data key of a session's user id (`user_scan.rs`).
    user_id_key: Arc<str>,
    /// The user index's statements, when it keeps one (`user_index.rs`).
    index: Option<Arc<IndexQueries>>,
    backend: PhantomData<fn() -> B>,
}

struct Shared {
    queries: Queries,
    codec: Codec,
    record_keys: RecordKeys,
}

impl<B: Backend> SqlCore<B> {
    /// Shared by the clones of this store only (a new table setting makes a new `Shared`).
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }
}

impl<B: Backend> Clone for SqlCore<B> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            own: self.own.clone(),
            shared: Arc::clone(&self.shared),
            user_id_key: Arc::clone(&self.user_id_key),
            index: self.index.clone(),
            backend: PhantomData,
        }
    }
}

impl<B: Backend> SqlCore<B> {
    /// A store whose statements run on `pool`'s connections, using the table
    /// `django_session` and plain JSON.
    #[cfg(feature = "sqlite")]
    pub(crate) fn new(pool: Pool<B::Db>) -> Self {
        let queries = Queries::new::<B>(DEFAULT_TABLE);
        Self::with(pool, None, queries, Codec::plain(), RecordKeys::default())
    }

    /// A store whose statements run on connections of its own, opened with `pool`'s
    /// settings and given back without a round trip ([`OwnPool`]).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn with_own_connections(pool: Pool<B::Db>) -> Self {
        let own = Some(OwnPool::new(pool.clone()));
        let queries = Queries::new::<B>(DEFAULT_TABLE);
        Self::with(pool, own, queries, Codec::plain(), RecordKeys::default())
    }

    fn with(
        pool: Pool<B::Db>,
        own: Option<OwnPool<B::Db>>,
        queries: Queries,
        codec: Codec,
        record_keys: RecordKeys,
    ) -> Self {
        Self {
            pool,
            own,
            shared: Arc::new(Shared {
                queries,
                codec,
                record_keys,
            }),
            user_id_key: crate::store::DEFAULT_USER_ID_KEY.into(),
            index: None,
            backend: PhantomData,
        }
    }

    /// The same store on the table `table`, validated.
    pub(crate) fn with_table(self, table: &str) -> Result<Self, Error> {
        validate_table(table)?;
        let codec = self.shared.codec.clone();
        let record_keys = self.shared.record_keys.clone();
        let user_id_key = Arc::clone(&self.user_id_key);
        let indexed = self.index.is_some();
        let queries = Queries::new::<B>(table);
        let store = Self::with(self.pool, self.own, queries, codec, record_keys);
        let store = Self {
            user_id_key,
            ..store
        };
        if indexed {
            store.with_user_index()
        } else {
            Ok(store)
        }
    }

    /// The same store with `codec`.
    pub(crate) fn with_codec(self, codec: Codec) -> Self {
        let queries = Queries::new::<B>(&self.shared.queries.table);
        let record_keys = self.shared.record_keys.clone();
        self.rebuilt(queries, codec, record_keys)
    }

    /// The same store, its rows keyed by `record_keys`.
    pub(crate) fn with_record_keys(self, record_keys: RecordKeys) -> Self {
        let queries = Queries::new::<B>(&self.shared.queries.table);
        let codec = self.shared.codec.clone();
        self.rebuilt(queries, codec, record_keys)
    }

    /// The same store with new shared parts, its user index settings kept.
    fn rebuilt(self, queries: Queries, codec: Codec, record_keys: RecordKeys) -> Self {
        let (user_id_key, index) = (Arc::clone(&self.user_id_key), self.index.clone());
        let store = Self::with(self.pool, self.own, queries, codec, record_keys);
        Self {
            user_id_key,
            index,
            ..store
        }
    }

    /// How rows are keyed (the session key, or its private id).
    pub(crate) fn record_keys(&self) -> &RecordKeys {
        &self.shared.record_keys
    }

    /// A connection for a call's statements: one of the store's own, or the pool's.
    pub(crate) async fn lease(&self) -> Result<Lease<B::Db>, Error> {
        match &self.own {
            Some(own) => own.acquire().await,
            None => self.pool.acquire().await.map(Lease::Pooled),
        }
        .map_err(map_err::<B>)
    }

    pub(crate) fn pool(&self) -> &Pool<B::Db> {
        &self.pool
    }

    pub(crate) fn table(&self) -> &str {
        &self.shared.queries.table
    }

    /// Django's DDL, then the user index's table when the store keeps one.
    pub(crate) fn migrate_statements(&self) -> impl Iterator<Item = &str> {
        let index = self.index.as_ref().map(|i| i.migrate.as_str());
        self.shared
            .queries
            .migrate
            .iter()
            .map(String::as_str)
            .chain(index)
    }

    /// The `Debug` output of the public store `name`: the table and whether it signs, never
    /// the secret.
    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("table", &self.table())
            .field("signed", &self.shared.codec.is_signed())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> SqlCore<B>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String, B::DateTime): FromRow<'r, <B::Db as Database>::Row>,
{
    /// Runs the DDL statements one after another on one connection (each is idempotent).
    #[cfg(any(feature = "sqlite", feature = "mysql"))]
    pub(crate) async fn run_migrate_statements(&self) -> Result<(), Error> {
        let mut lease = self.lease().await?;
        for statement in self.migrate_statements() {
            lease
                .run::<B, _, _>(|conn| sqlx::query(statement).execute(conn))
                .await
                .map_err(map_err::<B>)?;
        }
        Ok(())
    }

    pub(crate) async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let stored = self.shared.record_keys.of(key);
        let mut lease = self.lease().await?;
        let row: Option<(String, B::DateTime)> = lease
            .run::<B, _, _>(|conn| {
                sqlx::query_as(&self.shared.queries.load)
                    .bind(stored.as_str())
                    .bind(B::to_db(OffsetDateTime::now_utc()))
                    .fetch_optional(conn)
            })
            .await
            .map_err(map_err::<B>)?;
        // Back before decoding, for the next call.
        drop(lease);
        // Corrupt data is no session (the codec logs it).
        Ok(row.and_then(|(text, expire_date)| {
            let (data, preserved) = self.shared.codec.decode_preserving(&text)?;
            Some(LoadedRecord {
                data: Arc::new(data),
                version: Version::from_bytes(text.into_bytes()).with_preserved(preserved),
                expiry_date: B::from_db(expire_date),
            })
        }))
    }

    pub(crate) async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        let text = self.shared.codec.encode(&record.data)?;
        let expire_date = B::to_db(record.expiry_date);
        let user = self.indexed_user(&record.data, record.expiry_date)?;
        let (statement, combined) = self.statement(0, &self.shared.queries.insert, user.is_some());
        let mut lease = self.lease().await?;
        for _ in 0..CREATE_ATTEMPTS {
            let key = SessionKey::generate()?;
            let stored = self.shared.record_keys.of(&key);
            self.index_before(&mut lease, &stored, user.as_deref())
                .await?;
            let inserted = lease
                .run::<B, _, _>(|conn| {
                    let query = sqlx::query(statement)
                        .bind(stored.as_str())
                        .bind(text.as_str())
                        .bind(expire_date.clone());
                    bind_user(query, combined, &user).execute(conn)
                })
                .await;
            match inserted {
                Ok(_) => return Ok((key, Version::from_bytes(text.into_bytes()))),
                Err(error) if is_unique_violation(&error) => continue,
                Err(error) => return Err(map_err::<B>(error)),
            }
        }
        Err(Error::store(format!(
            "no unused session key found in {CREATE_ATTEMPTS} attempts"
        )))
    }

    pub(crate) async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let text = self
            .shared
            .codec
            .encode_preserving(&record.data, expected.preserved())?;
        self.swap(key, record, expected, Some(text)).await
    }

    /// `expire_date` alone, compare-and-swap as `save`: `session_data`, and so the version,
    /// stays as it was, and a row deleted or expired is never brought back.
    pub(crate) async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        self.swap(key, record, expected, None).await
    }

    /// The compare-and-swap of `save` (`text`: the new `session_data`) and of `touch`
    /// (`None`: the expiry alone, the version kept).
    async fn swap(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
        text: Option<String>,
    ) -> Result<SaveOutcome, Error> {
        let now = B::to_db(OffsetDateTime::now_utc());
        let stored = self.shared.record_keys.of(key);
        let mut lease = self.lease().await?;
        // A version that is not text this store wrote can match no row.
        if let Some(expected_text) = expected
            .as_bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
        {
            let queries = &self.shared.queries;
            let user = self.indexed_user(&record.data, record.expiry_date)?;
            self.index_before(&mut lease, &stored, user.as_deref())
                .await?;
            let plain = if text.is_some() {
                &queries.update
            } else {
                &queries.touch
            };
            let which = if text.is_some() { 1 } else { 2 };
            let (statement, combined) = self.statement(which, plain, user.is_some());
            let updated = lease
                .run::<B, _, _>(|conn| {
                    let query = match &text {
                        Some(text) => sqlx::query(statement).bind(text.as_str()),
                        None => sqlx::query(statement),
                    };
                    let query = query
                        .bind(B::to_db(record.expiry_date))
                        .bind(stored.as_str())
                        .bind(expected_text)
                        .bind(now.clone());
                    bind_user(query, combined, &user).execute(conn)
                })
                .await
                .map_err(map_err::<B>)?;
            // Rows matched, not rows changed: a save of identical data is a save (MySQL
            // reports matched rows because sqlx connects with CLIENT_FOUND_ROWS).
            if B::rows_affected(&updated) > 0 {
                let version = match text {
                    Some(text) => Version::from_bytes(text.into_bytes())
                        .with_preserved(expected.preserved().clone()),
                    None => expected.clone(),
                };
                return Ok(SaveOutcome::Saved {
                    key: key.clone(),
                    version,
                });
            }
        }
        self.missed(&mut lease, &stored, now).await
    }

    /// Why a compare-and-swap matched no row: another version (`Conflict`) or none (`Gone`).
    /// `stored` is the row's key (already a record key).
    async fn missed(
        &self,
        lease: &mut Lease<B::Db>,
        stored: &SessionKey,
        now: B::DateTime,
    ) -> Result<SaveOutcome, Error> {
        let live = lease
            .run::<B, _, _>(|conn| {
                sqlx::query(&self.shared.queries.live)
                    .bind(stored.as_str())
                    .bind(now)
                    .fetch_optional(conn)
            })
            .await
            .map_err(map_err::<B>)?;
        Ok(if live.is_some() {
            SaveOutcome::Conflict
        } else {
            SaveOutcome::Gone
        })
    }

    pub(crate) async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.delete_stored(&self.shared.record_keys.of(key)).await
    }

    /// Deletes the row keyed `stored` (already a record key).
    pub(crate) async fn delete_stored(&self, stored: &SessionKey) -> Result<(), Error> {
        let mut lease = self.lease().await?;
        lease
            .run::<B, _, _>(|conn| {
                sqlx::query(&self.shared.queries.delete)
                    .bind(stored.as_str())
                    .execute(conn)
            })
            .await
            .map_err(map_err::<B>)?;
        Ok(())
    }

    pub(crate) async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let stored = self.shared.record_keys.of(key);
        let mut lease = self.lease().await?;
        let live = lease
            .run::<B, _, _>(|conn| {
                sqlx::query(&self.shared.queries.live)
                    .bind(stored.as_str())
                    .bind(B::to_db(OffsetDateTime::now_utc()))
                    .fetch_optional(conn)
            })
            .await
            .map_err(map_err::<B>)?;
        Ok(live.is_some())
    }

    /// Deletes the expired rows, then the user index's rows whose session is gone.
    pub(crate) async fn clear_expired(&self) -> Result<(), Error> {
        let mut lease = self.lease().await?;
        lease
            .run::<B, _, _>(|conn| {
                sqlx::query(&self.shared.queries.clear_expired)
                    .bind(B::to_db(OffsetDateTime::now_utc()))
                    .execute(conn)
            })
            .await
            .map_err(map_err::<B>)?;
        drop(lease);
        self.prune_index().await
    }
}

/// Whether an error from an INSERT means the key is taken.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
