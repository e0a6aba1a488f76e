//! The opt-in user index of the SQL stores (`with_user_index`): a side table of the crate's
//! own, `<table>_user (user_id, session_key)`, next to Django's table, which stays as it is.
//!
//! Every create, save and touch of a session whose data names a user adds its row (an
//! insert that ignores a duplicate) before or with the record's own statement, so the index
//! never misses a live session: on PostgreSQL in the same statement (a data-modifying CTE:
//! still one round trip), on SQLite and MySQL as a statement just before it on the same
//! connection (one more round trip on MySQL). An index row may outlive its session (a
//! logout, a user change, a save that found the record gone): listing joins the index with
//! the table and checks each row's data again, and `clear_expired` deletes the rows whose
//! session is gone.
//!
//! Django's own writes never add rows, so a table Django writes to must not use it: without
//! it (the default, and what `DjangoConfig` builds) listing scans the table (`user_scan.rs`).

use std::sync::Arc;

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use time::OffsetDateTime;

use super::{Backend, Lease, SqlCore, map_err};
use crate::store::user_index::{belongs_to, user_id_of};
use crate::store::{Data, RecordKey, UserRecord};
use crate::{Error, SessionKey};

/// Appended to the session table's name for the index's.
const INDEX_SUFFIX: &str = "_user";
/// The longest user id the index holds (its column's width); a longer one fails the save.
const MAX_USER_ID_LEN: usize = 255;

/// The index's statements for one session table.
#[derive(Debug)]
pub(crate) struct IndexQueries {
    /// `CREATE TABLE IF NOT EXISTS`, run by `migrate` after Django's statements.
    pub(crate) migrate: String,
    /// user id, record key: the index row, a duplicate ignored.
    add: String,
    /// The session table's insert, update and touch, each adding the index row in the same
    /// statement (PostgreSQL only), the user id bound last.
    with_add: Option<[String; 3]>,
    /// user id, now → key, data, expiry of the user's live rows.
    list: String,
    /// The index rows whose session row is gone.
    prune: String,
}

impl IndexQueries {
    /// The statements for the session table `table` (validated), with its own statements
    /// `insert`, `update` and `touch` (binding 3, 5 and 4 parameters, the key at 1, 3, 2).
    pub(crate) fn new<B: Backend>(
        table: &str,
        [insert, update, touch]: [&str; 3],
    ) -> Result<Self, Error> {
        let index = format!("{table}{INDEX_SUFFIX}");
        if index.len() > B::MAX_NAME_LENGTH.min(63) {
            return Err(Error::Config(format!(
                "the user index table {index:?} would be too long a name; use a shorter session table name"
            )));
        }
        let q = |name: &str| format!("{c}{name}{c}", c = B::QUOTE);
        let (t, i) = (q(table), q(&index));
        let (user, key, data, expire) = (
            q("user_id"),
            q("session_key"),
            q("session_data"),
            q("expire_date"),
        );
        let p = B::placeholder;
        let add_values = |user_at: usize, key_at: usize| {
            let (insert, ignore) = B::INSERT_IGNORE;
            format!(
                "{insert} {i} ({user}, {key}) VALUES ({}, {}){ignore}",
                p(user_at),
                p(key_at)
            )
        };
        let with_add = B::DML_IN_CTE.then(|| {
            let cte = |user_at, key_at, statement: &str| {
                format!(
                    "WITH {} AS ({}) {statement}",
                    q("indexed"),
                    add_values(user_at, key_at)
                )
            };
            [cte(4, 1, insert), cte(6, 3, update), cte(5, 2, touch)]
        });
        Ok(Self {
            migrate: format!(
                "CREATE TABLE IF NOT EXISTS {i} ({user} varchar({MAX_USER_ID_LEN}) NOT NULL, \
                 {key} varchar(40) NOT NULL, PRIMARY KEY ({user}, {key}))"
            ),
            add: add_values(1, 2),
            with_add,
            list: format!(
                "SELECT {t}.{key}, {t}.{data}, {t}.{expire} FROM {i} JOIN {t} ON {t}.{key} = {i}.{key} \
                 WHERE {i}.{user} = {} AND {t}.{expire} > {}",
                p(1),
                p(2)
            ),
            prune: format!(
                "DELETE FROM {i} WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {t}.{key} = {i}.{key})"
            ),
        })
    }

    /// The session statement (0 insert, 1 update, 2 touch) that also adds the index row,
    /// when the database runs both in one statement.
    pub(crate) fn combined(&self, which: usize) -> Option<&str> {
        self.with_add.as_ref().map(|s| s[which].as_str())
    }
}

impl<B: Backend> SqlCore<B> {
    /// The same store, keeping the user index (see the module docs).
    pub(crate) fn with_user_index(mut self) -> Result<Self, Error> {
        let queries = &self.shared.queries;
        let statements = [
            queries.insert.as_str(),
            queries.update.as_str(),
            queries.touch.as_str(),
        ];
        self.index = Some(Arc::new(IndexQueries::new::<B>(
            &queries.table,
            statements,
        )?));
        Ok(self)
    }

    /// Refuses the user index under a configuration shared with Django, whose writes never
    /// update it: listing would miss Django's sessions (the scan finds them).
    pub(crate) fn check_user_index(
        &self,
        store: &str,
        config: &crate::SessionConfig,
    ) -> Result<(), Error> {
        if self.index.is_some() && config.shared_with_django {
            return Err(Error::Config(format!(
                "{store} keeps a user index (with_user_index), but this configuration shares \
                 sessions with Django, whose writes never update it: a user's sessions would be \
                 listed without Django's; leave the index off (the scan finds them)"
            )));
        }
        Ok(())
    }

    /// The statement to run: `plain`, or its variant that adds the user's index row too,
    /// and whether it is that variant (which binds the user id last).
    pub(super) fn statement<'a>(
        &'a self,
        which: usize,
        plain: &'a str,
        indexed: bool,
    ) -> (&'a str, bool) {
        match self.index.as_ref().and_then(|index| index.combined(which)) {
            Some(combined) if indexed => (combined, true),
            _ => (plain, false),
        }
    }

    /// The user id a write of `data` must index, when the store keeps an index.
    pub(crate) fn indexed_user(
        &self,
        data: &Data,
        expiry_date: OffsetDateTime,
    ) -> Result<Option<String>, Error> {
        if self.index.is_none() || expiry_date <= OffsetDateTime::now_utc() {
            return Ok(None);
        }
        let Some(user) = user_id_of(data, &self.user_id_key).map(|u| u.to_text()) else {
            return Ok(None);
        };
        if user.len() > MAX_USER_ID_LEN {
            return Err(Error::store(format!(
                "a user id of {} bytes does not fit the user index ({MAX_USER_ID_LEN})",
                user.len()
            )));
        }
        Ok(Some(user))
    }
}

impl<B: Backend> SqlCore<B>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Type<B::Db>,
{
    /// Adds the index row of `key` for `user` on `lease` as a statement of its own, unless
    /// the record's statement adds it (`combined`).
    pub(crate) async fn index_before(
        &self,
        lease: &mut Lease<B::Db>,
        key: &SessionKey,
        user: Option<&str>,
    ) -> Result<(), Error> {
        let (Some(index), Some(user)) = (&self.index, user) else {
            return Ok(());
        };
        if index.with_add.is_some() {
            return Ok(());
        }
        let record_key = key.as_str();
        lease
            .run::<B, _, _>(|conn| {
                sqlx::query(&index.add)
                    .bind(user)
                    .bind(record_key)
                    .execute(conn)
            })
            .await
            .map_err(map_err::<B>)?;
        Ok(())
    }

    /// Deletes the index rows whose session is gone (from `clear_expired`).
    pub(crate) async fn prune_index(&self) -> Result<(), Error> {
        let Some(index) = &self.index else {
            return Ok(());
        };
        let mut lease = self.lease().await?;
        lease
            .run::<B, _, _>(|conn| sqlx::query(&index.prune).execute(conn))
            .await
            .map_err(map_err::<B>)?;
        Ok(())
    }
}

impl<B: Backend> SqlCore<B>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> String: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String, String, B::DateTime): FromRow<'r, <B::Db as Database>::Row>,
{
    /// The user's live rows through the index, each checked against the user again.
    pub(crate) async fn indexed_user_records(
        &self,
        index: &IndexQueries,
        user_id: &str,
    ) -> Result<Vec<UserRecord>, Error> {
        let now = B::to_db(OffsetDateTime::now_utc());
        let mut lease = self.lease().await?;
        let rows: Vec<(String, String, B::DateTime)> = lease
            .run::<B, _, _>(|conn| {
                sqlx::query_as(&index.list)
                    .bind(user_id.to_owned())
                    .bind(now)
                    .fetch_all(conn)
            })
            .await
            .map_err(map_err::<B>)?;
        drop(lease);
        Ok(rows
            .into_iter()
            .filter_map(|(key, text, expire_date)| {
                let (data, _) = self.shared.codec.decode_preserving(&text)?;
                belongs_to(&data, &self.user_id_key, user_id).then(|| UserRecord {
                    record_key: RecordKey::new(key),
                    data: Arc::new(data),
                    expiry_date: B::from_db(expire_date),
                    last_saved: None,
                })
            })
            .collect())
    }
}

/// `query` with the user id bound last, for the variant of a statement that adds the index
/// row (`combined`).
pub(super) fn bind_user<'q, DB: Database>(
    query: sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>,
    combined: bool,
    user: &'q Option<String>,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    &'q str: Encode<'q, DB> + Type<DB>,
{
    match user {
        Some(user) if combined => query.bind(user.as_str()),
        _ => query,
    }
}
