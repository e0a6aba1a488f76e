//! `CachedStore`: a persistent store with a write-through cache in front (Django's
//! `cached_db`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use super::{
    Data, LoadedRecord, Record, RecordKey, SaveOutcome, SessionStore, UserRecord, Version,
};
use crate::{Error, SessionKey};

/// Whether the two stores of a cache in front of a store key records alike (both with the
/// same private id, or neither): otherwise revoking a listed session would delete the
/// persistent record and leave the cached copy serving it.
pub(super) fn same_record_keys(
    cache: &impl SessionStore,
    persistent: &impl SessionStore,
    what: &str,
) -> Result<(), Error> {
    let probe = SessionKey::generate()?;
    if cache.record_key(&probe) == persistent.record_key(&probe) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{what}: its cache and its store key records differently (give both the same \
             with_private_id, or neither): a revoked session would stay in the cache"
        )))
    }
}

/// A store that can also write a record under a key it is given: what a cache must do.
pub trait CacheStore: SessionStore {
    /// Stores `record` under `key`, replacing whatever is there.
    fn put(
        &self,
        key: &SessionKey,
        record: &Record,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Makes the entry under `key`, if there is one, expire at `expiry_date` (at once when
    /// that has passed), leaving its value as it is; never creates an entry. The default
    /// deletes the entry instead, which is always correct for a cache: the next read refills
    /// it. [`MemoryStore`](crate::MemoryStore) moves the expiry in place, and
    /// [`RedisStore`](crate::RedisStore) sends `PEXPIRE`.
    fn expire_at(
        &self,
        key: &SessionKey,
        expiry_date: OffsetDateTime,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = expiry_date;
        self.delete(key)
    }
}

/// Reads the cache first and falls back to the persistent store, refilling the cache; writes
/// go to the persistent store first, then the cache; deletes hit both. Django's `cached_db`,
/// for any two stores: a [`MemoryStore`](crate::MemoryStore) or Redis in front of a database.
///
/// The persistent store decides: its compare-and-swap versions travel with the cached copy,
/// so a save based on a cached read is checked against the persistent record, and the cache
/// is only ever moved from the version a save started from to the one it wrote (anything
/// else is dropped), so saves finishing out of order never leave an older copy behind. A cache that
/// fails is logged and bypassed, as in Django, except when deleting: a session must not
/// survive its logout in a stale cache, so a failed cache delete is an error. A touch that
/// left the persistent record's version as it was moves the cached copy's expiry with it
/// ([`CacheStore::expire_at`]).
///
/// With a [`PrivateId`](super::PrivateId), give the same one to both stores
/// (`with_private_id` on each): the cache's keys are then record keys too, and a copy of
/// either names no usable cookie.
///
/// ```
/// use sessionbase::{MemoryStore, SessionLayer};
/// use sessionbase::store::CachedStore;
///
/// # fn persistent() -> MemoryStore { MemoryStore::new() }
/// // In production the second store would be a database store.
/// let store = CachedStore::new(MemoryStore::new(), persistent());
/// let layer = SessionLayer::new(store);
/// ```
#[derive(Clone)]
pub struct CachedStore<C, P> {
    // Shared, so that a copy configured for a layer needs neither store to be `Clone`.
    cache: Arc<C>,
    persistent: Arc<P>,
    refill_ttl: Duration,
}

impl<C, P> std::fmt::Debug for CachedStore<C, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("refill_ttl", &self.refill_ttl)
            .finish_non_exhaustive()
    }
}

const ENVELOPE_DATA: &str = "d";
const ENVELOPE_VERSION: &str = "v";

impl<C: CacheStore, P: SessionStore> CachedStore<C, P> {
    /// `cache` in front of `persistent`.
    pub fn new(cache: C, persistent: P) -> Self {
        Self {
            cache: Arc::new(cache),
            persistent: Arc::new(persistent),
            refill_ttl: Duration::minutes(5),
        }
    }

    /// How long a record refilled from a persistent store that does not report expiry dates
    /// stays cached (default 5 minutes). Stores in this crate report them, so the cached copy
    /// expires with the record.
    pub fn with_refill_ttl(mut self, ttl: Duration) -> Self {
        self.refill_ttl = ttl;
        self
    }

    /// The cache.
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// The persistent store.
    pub fn persistent(&self) -> &P {
        &self.persistent
    }

    async fn refill(
        &self,
        key: &SessionKey,
        data: &Data,
        version: &Version,
        expiry_date: OffsetDateTime,
    ) {
        if expiry_date <= OffsetDateTime::now_utc() {
            return self.forget(key).await;
        }
        let record = Record {
            data: wrap(data, version),
            expiry_date,
        };
        if let Err(error) = self.cache.put(key, &record).await {
            tracing::error!(%error, "Error saving to cache; dropping the cached copy");
            self.forget(key).await;
        }
    }

    /// After a save from `expected` to `version`: moves the cached copy along only if it is
    /// the one the save started from, with a compare-and-swap on the cache itself; anything
    /// else (a copy another save already moved, or one a reader refilled) is dropped. Saves
    /// that finish out of order therefore never leave an older copy in the cache.
    async fn advance(
        &self,
        key: &SessionKey,
        expected: &Version,
        record: &Record,
        version: &Version,
    ) {
        match self.cache.load(key).await {
            Ok(Some(cached)) => {
                if unwrap(&cached.data).is_some_and(|(_, v)| v == *expected) {
                    let moved = Record {
                        data: wrap(&record.data, version),
                        expiry_date: record.expiry_date,
                    };
                    if let Ok(SaveOutcome::Saved { .. }) =
                        self.cache.save(key, &moved, &cached.version).await
                    {
                        return;
                    }
                }
            }
            // Nothing cached: the next read fills it from the persistent store.
            Ok(None) => return,
            Err(error) => tracing::warn!(%error, "session cache failed; dropping the cached copy"),
        }
        self.forget(key).await;
    }

    /// Drops the cached copy so that the next load reads the persistent store.
    async fn forget(&self, key: &SessionKey) {
        if let Err(error) = self.cache.delete(key).await {
            tracing::error!(%error, "Error deleting from cache");
        }
    }
}

/// The cached form: the data and the persistent store's version.
fn wrap(data: &Data, version: &Version) -> Data {
    let mut envelope = Map::with_capacity(2);
    envelope.insert(ENVELOPE_DATA.into(), Value::Object(Map::clone(data)));
    envelope.insert(ENVELOPE_VERSION.into(), version_to_json(version));
    Arc::new(envelope)
}

fn unwrap(envelope: &Map<String, Value>) -> Option<(Data, Version)> {
    let Value::Object(data) = envelope.get(ENVELOPE_DATA)? else {
        return None;
    };
    let version = version_from_json(envelope.get(ENVELOPE_VERSION)?)?;
    Some((Arc::new(data.clone()), version))
}

fn version_to_json(version: &Version) -> Value {
    if let Some(n) = version.as_counter() {
        serde_json::json!({ "c": n })
    } else if let Some(bytes) = version.as_bytes() {
        serde_json::json!({ "b": STANDARD_NO_PAD.encode(bytes) })
    } else {
        Value::Null
    }
}

fn version_from_json(value: &Value) -> Option<Version> {
    match value {
        Value::Null => Some(Version::unversioned()),
        Value::Object(o) => {
            if let Some(n) = o.get("c") {
                n.as_u64().map(Version::from_counter)
            } else {
                let b64 = o.get("b")?.as_str()?;
                STANDARD_NO_PAD.decode(b64).ok().map(Version::from_bytes)
            }
        }
        _ => None,
    }
}

impl<C: CacheStore, P: SessionStore> SessionStore for CachedStore<C, P> {
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        self.persistent.parse_key(cookie_value)
    }

    /// Clones share both stores.
    fn identity(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.persistent) as usize)
    }

    /// Both stores must accept it.
    fn check_config(&self, config: &crate::SessionConfig) -> Result<(), Error> {
        self.cache.check_config(config)?;
        self.persistent.check_config(config)?;
        same_record_keys(&self.cache, &self.persistent, "CachedStore")
    }

    /// Both stores as the layer's configuration needs them.
    fn configured(&self, config: &crate::SessionConfig) -> Option<Self> {
        let cache = self.cache.configured(config);
        let persistent = self.persistent.configured(config);
        if cache.is_none() && persistent.is_none() {
            return None;
        }
        Some(Self {
            cache: cache.unwrap_or_else(|| Arc::clone(&self.cache)),
            persistent: persistent.unwrap_or_else(|| Arc::clone(&self.persistent)),
            refill_ttl: self.refill_ttl,
        })
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        match self.cache.load(key).await {
            Ok(Some(cached)) => match unwrap(&cached.data) {
                Some((data, version)) => {
                    return Ok(Some(LoadedRecord {
                        data,
                        version,
                        expiry_date: cached.expiry_date,
                    }));
                }
                None => tracing::warn!(
                    "cached session is not in the cached store's format; reading the persistent store"
                ),
            },
            Ok(None) => {}
            // Django counts any cache error as a miss.
            Err(error) => {
                tracing::warn!(%error, "session cache failed; reading the persistent store")
            }
        }
        let Some(record) = self.persistent.load(key).await? else {
            return Ok(None);
        };
        let expiry_date = record
            .expiry_date
            .unwrap_or_else(|| OffsetDateTime::now_utc() + self.refill_ttl);
        self.refill(key, &record.data, &record.version, expiry_date)
            .await;
        // A save may have landed between the read and the refill, and found nothing cached
        // to update: then the copy just written is stale. Read again to rule that out (a miss
        // costs two reads; hits, the common case, none).
        match self.persistent.load(key).await {
            Ok(Some(again)) if again.version == record.version => {}
            _ => self.forget(key).await,
        }
        Ok(Some(record))
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        let (key, version) = self.persistent.create(record).await?;
        self.refill(&key, &record.data, &version, record.expiry_date)
            .await;
        Ok((key, version))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let outcome = self.persistent.save(key, record, expected).await?;
        match &outcome {
            SaveOutcome::Saved { key, version } => {
                self.advance(key, expected, record, version).await;
            }
            // The cached copy is stale or dead: the retry must read the persistent store.
            SaveOutcome::Conflict | SaveOutcome::Gone => self.forget(key).await,
        }
        Ok(outcome)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let outcome = self.persistent.touch(key, record, expected).await?;
        match &outcome {
            // The persistent record kept its bytes, so the cached copy of that version stays
            // right: only its expiry follows.
            SaveOutcome::Saved { key, version } if version == expected => {
                if let Err(error) = self.cache.expire_at(key, record.expiry_date).await {
                    tracing::warn!(%error, "session cache failed; dropping the cached copy");
                    self.forget(key).await;
                }
            }
            // Rewritten (a store whose touch is a save): as after a save.
            SaveOutcome::Saved { key, version } => {
                self.advance(key, expected, record, version).await;
            }
            SaveOutcome::Conflict | SaveOutcome::Gone => self.forget(key).await,
        }
        Ok(outcome)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.persistent.delete(key).await?;
        self.cache.delete(key).await
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        match self.cache.exists(key).await {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "session cache failed; asking the persistent store")
            }
        }
        self.persistent.exists(key).await
    }

    async fn clear_expired(&self) -> Result<(), Error> {
        self.persistent.clear_expired().await?;
        if let Err(error) = self.cache.clear_expired().await {
            tracing::warn!(%error, "clearing expired sessions from the cache failed");
        }
        Ok(())
    }

    fn record_key(&self, key: &SessionKey) -> RecordKey {
        self.persistent.record_key(key)
    }

    fn user_id_key(&self) -> &str {
        self.persistent.user_id_key()
    }

    /// The persistent store's: it holds every session, the cache only copies of some.
    async fn user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        self.persistent.user_records(user_id).await
    }

    /// From both stores, as [`delete`](SessionStore::delete): the cache under the same
    /// record key, so a revoked session is never served from a stale copy.
    async fn delete_record(&self, record_key: &RecordKey) -> Result<(), Error> {
        self.persistent.delete_record(record_key).await?;
        self.cache.delete_record(record_key).await
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::store::conformance::{Exceptions, run};
    use serde_json::json;

    /// The layer's settings reach the store behind the cache: a signed-cookie store there
    /// counts the configured cookie name in its size limit.
    #[cfg(feature = "cookie")]
    #[test]
    fn the_configuration_reaches_both_stores() {
        let store = CachedStore::new(MemoryStore::new(), crate::CookieStore::new("secret"));
        let config = crate::SessionConfig::default()
            .with_cookie_name("sid")
            .with_cookie_age(Duration::hours(1));
        let configured = store
            .configured(&config)
            .expect("the cookie store needs it");
        assert_eq!(configured.persistent().cookie_name(), "sid");
        assert_eq!(configured.persistent().cookie_age(), Duration::hours(1));
        assert!(Arc::ptr_eq(&configured.cache, &store.cache));
        let memory_only = CachedStore::new(MemoryStore::new(), MemoryStore::new());
        assert!(memory_only.configured(&config).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_memory_over_memory() {
        run(
            CachedStore::new(MemoryStore::new(), MemoryStore::new()),
            Exceptions::none(),
        )
        .await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_memory_over_sqlite() {
        let db = crate::store::SqliteStore::connect("sqlite::memory:")
            .await
            .unwrap();
        db.migrate().await.unwrap();
        run(CachedStore::new(MemoryStore::new(), db), Exceptions::none()).await;
    }

    fn record(v: Value) -> Record {
        Record {
            data: Arc::new(v.as_object().cloned().unwrap()),
            expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn reads_hit_the_cache_and_misses_refill_it() {
        let (cache, db) = (MemoryStore::new(), MemoryStore::new());
        let store = CachedStore::new(cache.clone(), db.clone());
        let (key, _) = store.create(&record(json!({"a": 1}))).await.unwrap();
        assert!(
            cache.load(&key).await.unwrap().is_some(),
            "create writes through"
        );

        // The cache answers even when the persistent copy is gone (Django: 0 DB queries).
        let cached = cache.load(&key).await.unwrap().unwrap();
        db.delete(&key).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap().unwrap().data["a"], json!(1));

        // A miss reads the persistent store and refills the cache.
        cache.delete(&key).await.unwrap();
        let (key2, _) = db.create(&record(json!({"b": 2}))).await.unwrap();
        assert!(cache.load(&key2).await.unwrap().is_none());
        assert_eq!(
            store.load(&key2).await.unwrap().unwrap().data["b"],
            json!(2)
        );
        assert!(
            cache.load(&key2).await.unwrap().is_some(),
            "a miss refills the cache"
        );
        drop(cached);
    }

    #[tokio::test]
    async fn a_stale_cached_version_conflicts_then_the_retry_reads_the_database() {
        let (cache, db) = (MemoryStore::new(), MemoryStore::new());
        let store = CachedStore::new(cache.clone(), db.clone());
        let (key, _) = store.create(&record(json!({"n": 0}))).await.unwrap();
        let stale = store.load(&key).await.unwrap().unwrap();
        // Someone saves through the database directly: the cached copy is now stale.
        let fresh = db.load(&key).await.unwrap().unwrap();
        db.save(&key, &record(json!({"n": 1})), &fresh.version)
            .await
            .unwrap();
        assert_eq!(
            store
                .save(&key, &record(json!({"n": 2})), &stale.version)
                .await
                .unwrap(),
            SaveOutcome::Conflict
        );
        let reloaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            reloaded.data["n"],
            json!(1),
            "after a conflict the cache is bypassed"
        );
        assert!(matches!(
            store
                .save(&key, &record(json!({"n": 3})), &reloaded.version)
                .await
                .unwrap(),
            SaveOutcome::Saved { .. }
        ));
    }

    #[tokio::test]
    async fn a_touch_moves_both_expiries_and_a_stale_one_drops_the_copy() {
        let (cache, db) = (MemoryStore::new(), MemoryStore::new());
        let store = CachedStore::new(cache.clone(), db.clone());
        let (key, version) = store.create(&record(json!({"a": 1}))).await.unwrap();
        let later = Record {
            expiry_date: OffsetDateTime::now_utc() + Duration::hours(5),
            ..record(json!({"a": 1}))
        };
        let outcome = store.touch(&key, &later, &version).await.unwrap();
        assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
        let cached = cache.load(&key).await.unwrap().expect("the copy stays");
        assert_eq!(cached.expiry_date, Some(later.expiry_date));
        let stored = db.load(&key).await.unwrap().unwrap();
        assert_eq!(stored.expiry_date, Some(later.expiry_date));
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, version);

        // Someone saves through the database: the touch conflicts and the copy goes.
        db.save(&key, &record(json!({"a": 2})), &stored.version)
            .await
            .unwrap();
        let stale = store.touch(&key, &later, &version).await.unwrap();
        assert_eq!(stale, SaveOutcome::Conflict);
        assert!(cache.load(&key).await.unwrap().is_none());
        assert_eq!(store.load(&key).await.unwrap().unwrap().data["a"], json!(2));
    }

    #[tokio::test]
    async fn deletes_hit_both() {
        let (cache, db) = (MemoryStore::new(), MemoryStore::new());
        let store = CachedStore::new(cache.clone(), db.clone());
        let (key, _) = store.create(&record(json!({"a": 1}))).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(cache.load(&key).await.unwrap().is_none());
        assert!(db.load(&key).await.unwrap().is_none());
        assert!(store.load(&key).await.unwrap().is_none());
    }
}
