//! The `SessionStore` and `Debug` implementations, and `with_private_id`, of the public SQL stores, all forwarding
//! to their `SqlCore`.

/// Implements `SessionStore` and `Debug` for a public SQL store, a newtype around
/// `SqlCore` in a field `core`.
macro_rules! sql_store {
    ($store:ident) => {
        impl ::std::fmt::Debug for $store {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.core.debug(stringify!($store), f)
            }
        }

        impl $store {
            /// Keys rows by the private ids of `id` instead of the session keys (see
            /// [`PrivateId`](crate::store::PrivateId)): a dump of the `session_key` column
            /// names no usable cookie. Django cannot share such a table.
            pub fn with_private_id(self, id: $crate::store::PrivateId) -> Self {
                Self {
                    core: self
                        .core
                        .with_record_keys($crate::store::RecordKeys::private(id)),
                }
            }

            /// Keeps a user index in a side table, `<table>_user`, so that
            /// [`user_records`](crate::SessionStore::user_records) reads the user's rows only
            /// instead of scanning the table; [`migrate`](Self::migrate) creates it. Only for a
            /// table Django does not write to: Django's writes never update the index. The
            /// cost: saves of logged-in sessions also insert the index row, in the same
            /// statement on PostgreSQL, in one more statement on SQLite and MySQL. See
            /// [`user_index`](crate::store::user_index).
            ///
            /// Errors ([`Error::Config`](crate::Error::Config)): a table name too long for
            /// `<table>_user`.
            pub fn with_user_index(self) -> Result<Self, $crate::Error> {
                Ok(Self {
                    core: self.core.with_user_index()?,
                })
            }

            /// Reads a session's user id under `key` instead of `_auth_user_id`
            /// ([`user_records`](crate::SessionStore::user_records)).
            pub fn with_user_id_key(self, key: impl Into<String>) -> Self {
                Self {
                    core: self.core.with_user_id_key(key),
                }
            }
        }

        impl $crate::store::SessionStore for $store {
            /// Clones share the connections and the table.
            fn identity(&self) -> Option<usize> {
                Some(self.core.identity())
            }

            fn check_config(&self, config: &$crate::SessionConfig) -> Result<(), $crate::Error> {
                self.core
                    .record_keys()
                    .check_config(stringify!($store), config)?;
                self.core.check_user_index(stringify!($store), config)
            }

            async fn load(
                &self,
                key: &$crate::SessionKey,
            ) -> Result<Option<$crate::store::LoadedRecord>, $crate::Error> {
                self.core.load(key).await
            }

            async fn create(
                &self,
                record: &$crate::store::Record,
            ) -> Result<($crate::SessionKey, $crate::store::Version), $crate::Error> {
                self.core.create(record).await
            }

            async fn save(
                &self,
                key: &$crate::SessionKey,
                record: &$crate::store::Record,
                expected: &$crate::store::Version,
            ) -> Result<$crate::store::SaveOutcome, $crate::Error> {
                self.core.save(key, record, expected).await
            }

            async fn touch(
                &self,
                key: &$crate::SessionKey,
                record: &$crate::store::Record,
                expected: &$crate::store::Version,
            ) -> Result<$crate::store::SaveOutcome, $crate::Error> {
                self.core.touch(key, record, expected).await
            }

            async fn delete(&self, key: &$crate::SessionKey) -> Result<(), $crate::Error> {
                self.core.delete(key).await
            }

            /// Whether a live record exists: unlike Django's `exists`, an expired row that
            /// `clear_expired` has not removed yet does not count.
            async fn exists(&self, key: &$crate::SessionKey) -> Result<bool, $crate::Error> {
                self.core.exists(key).await
            }

            /// Deletes the rows with `expire_date < now`, as Django's `clearsessions` does.
            async fn clear_expired(&self) -> Result<(), $crate::Error> {
                self.core.clear_expired().await
            }

            fn user_id_key(&self) -> &str {
                self.core.user_id_key()
            }

            fn record_key(&self, key: &$crate::SessionKey) -> $crate::store::RecordKey {
                self.core.record_keys().record_key(key)
            }

            /// Deletes by the row's key itself (a private id cannot be turned back into a
            /// session key).
            async fn delete_record(
                &self,
                record_key: &$crate::store::RecordKey,
            ) -> Result<(), $crate::Error> {
                match record_key.stored() {
                    Some(stored) => self.core.delete_stored(&stored).await,
                    None => Ok(()),
                }
            }

            /// A scan of the live rows (see `user_scan.rs`): every session, Django's too.
            async fn user_records(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::store::UserRecord>, $crate::Error> {
                self.core.user_records(user_id).await
            }
        }
    };
}
pub(crate) use sql_store;
