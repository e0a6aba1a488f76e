//! A user's sessions in a SQL store without the user index (`user_index.rs`): a scan of the live rows of the table, each decoded and
//! kept when its data names the user. Django's rows included, since nothing but the table
//! itself is read; one `SELECT` of the live rows, decoded one by one.
//!
//! The table stays Django's: no column or table is added. The cost is a read of every live
//! row per listing (about what Django's `clearsessions` reads), none on the save path: the
//! default, since the table is often shared with Django.

use std::sync::Arc;

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use time::OffsetDateTime;

use super::{Backend, SqlCore, map_err};
use crate::Error;
use crate::store::user_index::belongs_to;
use crate::store::{RecordKey, UserRecord};

impl<B: Backend> SqlCore<B> {
    /// The same store, reading a session's user id under `key`.
    pub(crate) fn with_user_id_key(mut self, key: impl Into<String>) -> Self {
        self.user_id_key = key.into().into();
        self
    }

    pub(crate) fn user_id_key(&self) -> &str {
        &self.user_id_key
    }

    /// `SELECT key, data, expire_date … WHERE expire_date > now`.
    fn scan_statement(&self) -> String {
        let quote = |name: &str| format!("{q}{name}{q}", q = B::QUOTE);
        format!(
            "SELECT {}, {}, {} FROM {} WHERE {} > {}",
            quote("session_key"),
            quote("session_data"),
            quote("expire_date"),
            quote(&self.shared.queries.table),
            quote("expire_date"),
            B::placeholder(1)
        )
    }
}

impl<B: Backend> SqlCore<B>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> String: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String, String, B::DateTime): FromRow<'r, <B::Db as Database>::Row>,
{
    /// Every live row whose data names the user `user_id`.
    pub(crate) async fn user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        if let Some(index) = &self.index {
            return self.indexed_user_records(index, user_id).await;
        }
        let statement = self.scan_statement();
        let now = B::to_db(OffsetDateTime::now_utc());
        let mut lease = self.lease().await?;
        let rows: Vec<(String, String, B::DateTime)> = lease
            .run::<B, _, _>(|conn| sqlx::query_as(&statement).bind(now).fetch_all(conn))
            .await
            .map_err(map_err::<B>)?;
        drop(lease);
        let mut found = Vec::new();
        for (key, text, expire_date) in rows {
            // Corrupt data is no session (the codec logs it).
            let Some((data, _)) = self.shared.codec.decode_preserving(&text) else {
                continue;
            };
            if belongs_to(&data, &self.user_id_key, user_id) {
                found.push(UserRecord {
                    record_key: RecordKey::new(key),
                    data: Arc::new(data),
                    expiry_date: B::from_db(expire_date),
                    last_saved: None,
                });
            }
        }
        Ok(found)
    }
}
