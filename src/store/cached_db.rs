//! `CachedDbStore`: Django's `cached_db` engine seen from a process that shares it.

use std::sync::Arc;

use super::{
    CacheStore, LoadedRecord, Record, RecordKey, SaveOutcome, SessionStore, UserRecord, Version,
};
use crate::{Error, SessionKey};

/// Django's `cached_db` engine, shared: the table is the source of truth, and Django's cache
/// entry for a session is deleted after every write made here.
///
/// Django's `cached_db` reads its cache first and only falls back to the table on a miss,
/// then refills the cache; its saves write the table, then the cache. A process that writes
/// only the table leaves Django answering from a stale entry, and Django's next save writes
/// that entry back over the table, losing the write. So every `save`, `delete` (and with
/// them `flush` and `cycle_key`) goes to the table first and then deletes the cache entry:
/// Django's next read misses and refills it from the table.
///
/// A [`touch`](SessionStore::touch) (`save_every_request` on a session nothing changed) is
/// the exception: it moves the row's `expire_date` and leaves the row's data as it was, so
/// Django's entry, if there is one, still holds that data; its TTL is moved to the session's
/// expiry age instead, as Django's own save would set it (`PEXPIRE` with a Redis cache, which
/// never creates an entry), and Django keeps answering from its cache.
///
/// Why delete rather than write the new dict into the cache: two instances saving one
/// session one after the other can have their cache writes arrive in the other order, which
/// would leave the older dict in the cache (and Django would write it back over the table);
/// deletes commute, so the entry is never older than the table. A delete also costs no
/// encoding. Reads go to the table, not the cache: a compare-and-swap save must know the
/// stored row it replaces, and Django itself reads the table on every cache miss.
///
/// A cache delete that fails (Redis down) fails the call with the cache's error (a 503 from
/// the layer), after the table was written: the response does not claim a session it could
/// not make coherent, and Django, which cannot reach the cache either, reads the table.
///
/// [`DjangoConfig::layer`](crate::django::DjangoConfig::layer) builds this for `cached_db`
/// on a Redis cache, with a [`RedisStore`](super::RedisStore) in Django's format as the
/// cache.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use sessionbase::{MemoryStore, Session, SessionConfig};
/// use sessionbase::store::CachedDbStore;
///
/// // Any two stores: here memory for both, to show the shape.
/// let store = CachedDbStore::new(MemoryStore::new(), MemoryStore::new());
/// let session = Session::new(store, SessionConfig::default());
/// session.insert("cart", 3)?;
/// session.save().await?;
/// # Ok::<(), sessionbase::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct CachedDbStore<P, C> {
    // Shared, so that a copy configured for a layer needs neither store to be `Clone`.
    table: Arc<P>,
    cache: Arc<C>,
}

impl<P: SessionStore, C: SessionStore> CachedDbStore<P, C> {
    /// The store of Django's table (`table`) and of its cache (`cache`, used only to delete
    /// entries, move their expiry and answer `exists` as Django does).
    pub fn new(table: P, cache: C) -> Self {
        Self {
            table: Arc::new(table),
            cache: Arc::new(cache),
        }
    }

    /// The table's store.
    pub fn table(&self) -> &P {
        &self.table
    }

    /// The cache's store.
    pub fn cache(&self) -> &C {
        &self.cache
    }
}

impl<P: SessionStore, C: CacheStore> SessionStore for CachedDbStore<P, C> {
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        self.table.parse_key(cookie_value)
    }

    /// Clones share both stores.
    fn identity(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.table) as usize)
    }

    /// Both stores must accept it.
    fn check_config(&self, config: &crate::SessionConfig) -> Result<(), Error> {
        self.table.check_config(config)?;
        self.cache.check_config(config)?;
        super::cached::same_record_keys(&self.cache, &self.table, "CachedDbStore")
    }

    /// Both stores as the layer's configuration needs them.
    fn configured(&self, config: &crate::SessionConfig) -> Option<Self> {
        let table = self.table.configured(config);
        let cache = self.cache.configured(config);
        if table.is_none() && cache.is_none() {
            return None;
        }
        Some(Self {
            table: table.unwrap_or_else(|| Arc::clone(&self.table)),
            cache: cache.unwrap_or_else(|| Arc::clone(&self.cache)),
        })
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.table.load(key).await
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        // A fresh random key has no cache entry to invalidate.
        self.table.create(record).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let outcome = self.table.save(key, record, expected).await?;
        if !matches!(outcome, SaveOutcome::Conflict) {
            // Saved: the entry is older than the row. Gone: an entry may still outlive the
            // row (deleted by `clearsessions`), and Django would serve it.
            self.cache.delete(key).await?;
        }
        Ok(outcome)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let outcome = self.table.touch(key, record, expected).await?;
        match &outcome {
            // The row's data is what it was: Django's entry stays right and lives as long.
            SaveOutcome::Saved { version, .. } if version == expected => {
                self.cache.expire_at(key, record.expiry_date).await?;
            }
            // Rewritten (a table store whose touch is a save), or gone: as a save.
            SaveOutcome::Saved { .. } | SaveOutcome::Gone => self.cache.delete(key).await?,
            SaveOutcome::Conflict => {}
        }
        Ok(outcome)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.table.delete(key).await?;
        self.cache.delete(key).await
    }

    /// Django's answer: the cache has an entry or the table a row.
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        Ok(self.cache.exists(key).await? || self.table.exists(key).await?)
    }

    async fn clear_expired(&self) -> Result<(), Error> {
        self.table.clear_expired().await
    }

    fn record_key(&self, key: &SessionKey) -> RecordKey {
        self.table.record_key(key)
    }

    fn user_id_key(&self) -> &str {
        self.table.user_id_key()
    }

    /// The table store's: it holds every session, the cache only copies of some.
    async fn user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        self.table.user_records(user_id).await
    }

    /// From both stores, as [`delete`](SessionStore::delete): the cache under the same
    /// record key, so a revoked session is never served from a stale copy.
    async fn delete_record(&self, record_key: &RecordKey) -> Result<(), Error> {
        self.table.delete_record(record_key).await?;
        self.cache.delete_record(record_key).await
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::MemoryStore;
    use crate::store::CacheStore;
    use crate::store::conformance::{self, Exceptions};

    fn record(value: serde_json::Value) -> Record {
        Record {
            data: Arc::new(value.as_object().cloned().unwrap_or_default()),
            expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn conformance() {
        conformance::run(
            CachedDbStore::new(MemoryStore::new(), MemoryStore::new()),
            Exceptions::none(),
        )
        .await;
    }

    #[tokio::test]
    async fn every_write_deletes_the_cache_entry() {
        let store = CachedDbStore::new(MemoryStore::new(), MemoryStore::new());
        let (key, version) = store.create(&record(json!({"a": 1}))).await.unwrap();
        // What Django's read would have cached.
        store
            .cache()
            .put(&key, &record(json!({"a": 1})))
            .await
            .unwrap();
        assert!(store.cache().load(&key).await.unwrap().is_some());
        let outcome = store
            .save(&key, &record(json!({"a": 2})), &version)
            .await
            .unwrap();
        assert!(matches!(outcome, SaveOutcome::Saved { .. }));
        assert!(store.cache().load(&key).await.unwrap().is_none(), "save");

        store
            .cache()
            .put(&key, &record(json!({"a": 2})))
            .await
            .unwrap();
        // A conflict wrote nothing, so the entry stays.
        let conflict = store
            .save(&key, &record(json!({"a": 3})), &version)
            .await
            .unwrap();
        assert_eq!(conflict, SaveOutcome::Conflict);
        assert!(
            store.cache().load(&key).await.unwrap().is_some(),
            "conflict"
        );

        store.delete(&key).await.unwrap();
        assert!(store.cache().load(&key).await.unwrap().is_none(), "delete");
        assert!(!store.exists(&key).await.unwrap());

        // A row gone while Django's cache still holds it: the entry goes too.
        store
            .cache()
            .put(&key, &record(json!({"a": 2})))
            .await
            .unwrap();
        assert!(
            store.exists(&key).await.unwrap(),
            "Django's exists() sees the cache"
        );
        let gone = store
            .save(&key, &record(json!({"a": 4})), &version)
            .await
            .unwrap();
        assert_eq!(gone, SaveOutcome::Gone);
        assert!(store.cache().load(&key).await.unwrap().is_none(), "gone");
    }

    #[tokio::test]
    async fn a_touch_moves_the_cache_entrys_expiry_and_keeps_it() {
        let store = CachedDbStore::new(MemoryStore::new(), MemoryStore::new());
        let (key, version) = store.create(&record(json!({"a": 1}))).await.unwrap();
        store
            .cache()
            .put(&key, &record(json!({"a": 1})))
            .await
            .unwrap();
        let later = Record {
            expiry_date: OffsetDateTime::now_utc() + Duration::hours(5),
            ..record(json!({"a": 1}))
        };
        let outcome = store.touch(&key, &later, &version).await.unwrap();
        assert_eq!(
            outcome,
            SaveOutcome::Saved {
                key: key.clone(),
                version: version.clone()
            }
        );
        let cached = store.cache().load(&key).await.unwrap().expect("kept");
        assert_eq!(cached.expiry_date, Some(later.expiry_date), "cache entry");
        let row = store.table().load(&key).await.unwrap().unwrap();
        assert_eq!(row.expiry_date, Some(later.expiry_date), "row");

        // The row gone: the entry goes too, as after a save.
        store.table().delete(&key).await.unwrap();
        let gone = store.touch(&key, &later, &version).await.unwrap();
        assert_eq!(gone, SaveOutcome::Gone);
        assert!(store.cache().load(&key).await.unwrap().is_none());
        assert!(
            store.table().load(&key).await.unwrap().is_none(),
            "resurrected"
        );
    }
}
