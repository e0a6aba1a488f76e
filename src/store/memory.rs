//! `MemoryStore`: sessions in this process's memory.

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use time::OffsetDateTime;

use super::user_index::belongs_to;
use super::{
    CacheStore, Data, LoadedRecord, PrivateId, Record, RecordKey, RecordKeys, SaveOutcome,
    SessionStore, UserRecord, Version,
};
use crate::{Error, SessionKey};

/// Power of two, so that a shard is picked with a mask; enough that two cores rarely meet.
const SHARDS: usize = 32;
/// A shard sweeps its expired records after this many writes at least (and at least as many
/// writes as it holds records, so sweeping costs O(1) amortised per write).
const MIN_WRITES_PER_SWEEP: usize = 64;

/// Sessions kept in memory: the embedded default store, for development, tests and
/// single-process apps. Everything is lost when the process ends.
///
/// Records are spread over independently locked shards, so concurrent requests rarely wait
/// on each other. Expired records never load, and each shard reclaims them by itself as it
/// is written to, so memory stays bounded under churn without anyone calling
/// [`clear_expired`](SessionStore::clear_expired). Cloning shares the same sessions.
///
/// ```
/// use axum::{Router, routing::get};
/// use sessionbase::{MemoryStore, Session, SessionLayer};
///
/// async fn index(session: Session) -> Result<String, sessionbase::Error> {
///     let visits: u64 = session.get("visits")?.unwrap_or(0);
///     session.insert("visits", visits + 1)?;
///     Ok(format!("{visits} earlier visits"))
/// }
///
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::new(MemoryStore::new()));
/// ```
///
/// A user's sessions ([`user_records`](SessionStore::user_records)) are found by a scan of
/// the shards, one read lock at a time: no index to keep, so saving costs nothing more, and
/// a scan of a hundred thousand sessions takes milliseconds.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    record_keys: RecordKeys,
    user_id_key: Arc<str>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            record_keys: RecordKeys::default(),
            user_id_key: super::DEFAULT_USER_ID_KEY.into(),
        }
    }
}

struct Inner {
    shards: Box<[RwLock<Shard>]>,
    /// One hash per key picks the shard and the slot in it, and is kept with the record so
    /// that growing a shard never hashes again. foldhash, not SipHash: hashing is most of
    /// what a lookup costs, and flooding does not apply, as every key stored was drawn from
    /// the OS CSPRNG (by `create`, or by Django for a record a cache copies) and a key an
    /// attacker sends is only looked up.
    hasher: RandomState,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::default(),
        }
    }
}

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    writes_since_sweep: usize,
    /// Records left by the last sweep: the next one comes after as many writes, so the shard
    /// holds at most about twice its live records and sweeping costs O(1) per write.
    len_after_sweep: usize,
}

struct Entry {
    hash: u64,
    key: SessionKey,
    data: Data,
    expiry_date: OffsetDateTime,
    version: u64,
}

impl Entry {
    fn is_live(&self, now: Now) -> bool {
        self.expiry_date.unix_timestamp_nanos() > now.0
    }
}

impl Shard {
    fn get(&self, hash: u64, key: &SessionKey) -> Option<&Entry> {
        self.table.find(hash, |e| e.key == *key)
    }

    fn get_mut(&mut self, hash: u64, key: &SessionKey) -> Option<&mut Entry> {
        self.table.find_mut(hash, |e| e.key == *key)
    }

    /// The slot of `key`, found with one probe.
    fn slot(&mut self, hash: u64, key: &SessionKey) -> Slot<'_> {
        self.table.entry(hash, |e| e.key == *key, |e| e.hash)
    }

    fn remove(&mut self, hash: u64, key: &SessionKey) {
        if let Ok(found) = self.table.find_entry(hash, |e| e.key == *key) {
            found.remove();
        }
    }

    /// Counts a write and, every so often, drops expired records and returns spare capacity.
    fn after_write(&mut self, now: Now) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= self.len_after_sweep.max(MIN_WRITES_PER_SWEEP) {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: Now) {
        self.writes_since_sweep = 0;
        self.table.retain(|e| e.is_live(now));
        self.len_after_sweep = self.table.len();
        if self.table.capacity() > 2 * self.table.len() + MIN_WRITES_PER_SWEEP {
            self.table.shrink_to_fit(|e| e.hash);
        }
    }
}

type Slot<'a> = hashbrown::hash_table::Entry<'a, Entry>;

/// Puts `entry` in `slot` and returns the record it replaced, for the caller to drop once the
/// shard's lock is released.
fn fill(slot: Slot<'_>, entry: Entry) -> Option<Entry> {
    match slot {
        Slot::Occupied(mut found) => Some(std::mem::replace(found.get_mut(), entry)),
        Slot::Vacant(vacant) => {
            vacant.insert(entry);
            None
        }
    }
}

/// The current time as Unix nanoseconds: what liveness compares against, read without
/// `OffsetDateTime::now_utc`'s calendar conversion (a lookup pays one clock reading).
#[derive(Clone, Copy)]
struct Now(i128);

impl From<OffsetDateTime> for Now {
    fn from(t: OffsetDateTime) -> Self {
        Self(t.unix_timestamp_nanos())
    }
}

impl Now {
    fn read() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Self(since_epoch)
    }
}

fn poisoned() -> Error {
    Error::store("memory store lock poisoned by a panicking thread")
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys records by the private ids of `id` instead of the session keys (see
    /// [`PrivateId`]): what the store holds names no usable cookie. Call it before the store
    /// holds sessions; clones made after share it.
    pub fn with_private_id(mut self, id: PrivateId) -> Self {
        self.record_keys = RecordKeys::private(id);
        self
    }

    /// Reads a session's user id under `key` instead of `_auth_user_id`
    /// ([`user_records`](SessionStore::user_records)).
    pub fn with_user_id_key(mut self, key: impl Into<String>) -> Self {
        self.user_id_key = key.into().into();
        self
    }

    /// Removes the record stored under `stored` (already a record key).
    fn remove_stored(&self, stored: &SessionKey) -> Result<(), Error> {
        let hash = self.hash(stored);
        self.write(hash)?.remove(hash, stored);
        Ok(())
    }

    /// How many records the store holds, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.read().map(|s| s.table.len()).unwrap_or(0))
            .sum()
    }

    /// Whether the store holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn hash(&self, key: &SessionKey) -> u64 {
        self.inner.hasher.hash_one(key.as_str())
    }

    fn shard_of(&self, hash: u64) -> &RwLock<Shard> {
        // The table uses the low bits and the top seven; the shard takes bits in between.
        &self.inner.shards[(hash >> 32) as usize & (SHARDS - 1)]
    }

    fn read(&self, hash: u64) -> Result<RwLockReadGuard<'_, Shard>, Error> {
        self.shard_of(hash).read().map_err(|_| poisoned())
    }

    fn write(&self, hash: u64) -> Result<RwLockWriteGuard<'_, Shard>, Error> {
        self.shard_of(hash).write().map_err(|_| poisoned())
    }
}

impl CacheStore for MemoryStore {
    async fn put(&self, key: &SessionKey, record: &Record) -> Result<(), Error> {
        let now = Now::read();
        let key = &*self.record_keys.of(key);
        let hash = self.hash(key);
        let mut shard = self.write(hash)?;
        let slot = shard.slot(hash, key);
        let version = match &slot {
            Slot::Occupied(found) => found.get().version + 1,
            Slot::Vacant(_) => 0,
        };
        let entry = Entry {
            hash,
            key: key.clone(),
            data: Arc::clone(&record.data),
            expiry_date: record.expiry_date,
            version,
        };
        let replaced = fill(slot, entry);
        shard.after_write(now);
        drop(shard);
        drop(replaced);
        Ok(())
    }

    /// In place, whatever version the entry has; a missing entry stays missing.
    async fn expire_at(&self, key: &SessionKey, expiry_date: OffsetDateTime) -> Result<(), Error> {
        let key = &*self.record_keys.of(key);
        let hash = self.hash(key);
        if let Some(entry) = self.write(hash)?.get_mut(hash, key) {
            entry.expiry_date = expiry_date;
        }
        Ok(())
    }
}

/// The operations, synchronous and given the time.
impl MemoryStore {
    fn load_at(&self, key: &SessionKey, now: Now) -> Result<Option<LoadedRecord>, Error> {
        let key = &*self.record_keys.of(key);
        let hash = self.hash(key);
        let shard = self.read(hash)?;
        Ok(shard
            .get(hash, key)
            .filter(|e| e.is_live(now))
            .map(|e| LoadedRecord {
                data: Arc::clone(&e.data),
                version: Version::from_counter(e.version),
                expiry_date: Some(e.expiry_date),
            }))
    }

    fn create_at(&self, record: &Record, now: Now) -> Result<(SessionKey, Version), Error> {
        loop {
            let key = SessionKey::generate()?;
            let stored = self.record_keys.of(&key).into_owned();
            let hash = self.hash(&stored);
            let mut shard = self.write(hash)?;
            let slot = shard.slot(hash, &stored);
            // An expired record is no session any more; only a live one is never overwritten.
            if let Slot::Occupied(found) = &slot
                && found.get().is_live(now)
            {
                continue;
            }
            let entry = Entry {
                hash,
                key: stored,
                data: Arc::clone(&record.data),
                expiry_date: record.expiry_date,
                version: 0,
            };
            let replaced = fill(slot, entry);
            shard.after_write(now);
            drop(shard);
            drop(replaced);
            return Ok((key, Version::from_counter(0)));
        }
    }

    fn save_at(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
        now: Now,
    ) -> Result<SaveOutcome, Error> {
        self.swap_at(key, record, expected, now, true)
    }

    /// The expiry alone, in place: the data and the version stay.
    fn touch_at(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
        now: Now,
    ) -> Result<SaveOutcome, Error> {
        self.swap_at(key, record, expected, now, false)
    }

    /// The compare-and-swap of `save` (`with_data`: the data, a new version) and of `touch`
    /// (the expiry alone, the version kept).
    fn swap_at(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
        now: Now,
        with_data: bool,
    ) -> Result<SaveOutcome, Error> {
        let stored = self.record_keys.of(key);
        let hash = self.hash(&stored);
        let mut shard = self.write(hash)?;
        let Some(entry) = shard.get_mut(hash, &stored).filter(|e| e.is_live(now)) else {
            return Ok(SaveOutcome::Gone);
        };
        if expected.as_counter() != Some(entry.version) {
            return Ok(SaveOutcome::Conflict);
        }
        entry.expiry_date = record.expiry_date;
        if !with_data {
            return Ok(SaveOutcome::Saved {
                key: key.clone(),
                version: expected.clone(),
            });
        }
        // The replaced version is freed after the lock is released, not while holding it.
        let replaced = std::mem::replace(&mut entry.data, Arc::clone(&record.data));
        entry.version += 1;
        let version = Version::from_counter(entry.version);
        shard.after_write(now);
        drop(shard);
        drop(replaced);
        Ok(SaveOutcome::Saved {
            key: key.clone(),
            version,
        })
    }
}

impl SessionStore for MemoryStore {
    /// Every call is a lookup under a shard's lock: the session runs them inline.
    fn is_immediate(&self) -> bool {
        true
    }

    fn check_config(&self, config: &crate::SessionConfig) -> Result<(), Error> {
        self.record_keys.check_config("MemoryStore", config)
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.load_at(key, Now::read())
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        self.create_at(record, Now::read())
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        self.save_at(key, record, expected, Now::read())
    }

    async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        self.touch_at(key, record, expected, Now::read())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.remove_stored(&self.record_keys.of(key))
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let now = Now::read();
        let key = &*self.record_keys.of(key);
        let hash = self.hash(key);
        Ok(self
            .read(hash)?
            .get(hash, key)
            .is_some_and(|e| e.is_live(now)))
    }

    async fn clear_expired(&self) -> Result<(), Error> {
        let now = Now::read();
        for shard in self.inner.shards.iter() {
            shard.write().map_err(|_| poisoned())?.sweep(now);
        }
        Ok(())
    }

    fn user_id_key(&self) -> &str {
        &self.user_id_key
    }

    fn record_key(&self, key: &SessionKey) -> RecordKey {
        self.record_keys.record_key(key)
    }

    /// Deletes by the stored key itself (a private id cannot be turned back into a key).
    async fn delete_record(&self, record_key: &RecordKey) -> Result<(), Error> {
        match record_key.stored() {
            Some(stored) => self.remove_stored(&stored),
            None => Ok(()),
        }
    }

    /// A scan of every shard under its read lock (see the type's docs).
    async fn user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        let now = Now::read();
        let mut found = Vec::new();
        for shard in self.inner.shards.iter() {
            let shard = shard.read().map_err(|_| poisoned())?;
            let live = shard.table.iter().filter(|e| e.is_live(now));
            found.extend(
                live.filter(|e| belongs_to(&e.data, &self.user_id_key, user_id))
                    .map(|e| UserRecord {
                        record_key: RecordKey::new(e.key.as_str()),
                        data: Arc::clone(&e.data),
                        expiry_date: Some(e.expiry_date),
                        last_saved: None,
                    }),
            );
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};
    use time::Duration;

    fn record(value: i64, ttl: Duration) -> Record {
        let mut map = Map::new();
        map.insert("v".into(), json!(value));
        Record {
            data: Arc::new(map),
            expiry_date: OffsetDateTime::now_utc() + ttl,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        crate::store::conformance::run(
            MemoryStore::new(),
            crate::store::conformance::Exceptions::none(),
        )
        .await;
    }

    #[tokio::test]
    async fn create_load_save_delete() {
        let store = MemoryStore::new();
        let (key, v0) = store.create(&record(1, Duration::hours(1))).await.unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.data["v"], json!(1));
        assert_eq!(loaded.version, v0);
        assert!(store.exists(&key).await.unwrap());

        let saved = store
            .save(&key, &record(2, Duration::hours(1)), &v0)
            .await
            .unwrap();
        let SaveOutcome::Saved {
            key: k2,
            version: v1,
        } = saved
        else {
            panic!("{saved:?}")
        };
        assert_eq!(k2, key);
        assert_ne!(v1, v0);
        // The stale version loses.
        assert_eq!(
            store
                .save(&key, &record(3, Duration::hours(1)), &v0)
                .await
                .unwrap(),
            SaveOutcome::Conflict
        );
        assert_eq!(store.load(&key).await.unwrap().unwrap().data["v"], json!(2));

        store.delete(&key).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
        assert!(!store.exists(&key).await.unwrap());
        assert_eq!(
            store
                .save(&key, &record(4, Duration::hours(1)), &v1)
                .await
                .unwrap(),
            SaveOutcome::Gone
        );
        assert!(
            store.load(&key).await.unwrap().is_none(),
            "a deleted record is not resurrected"
        );
    }

    #[tokio::test]
    async fn expired_records_never_load_and_clear_expired_removes_them() {
        let store = MemoryStore::new();
        let (live, _) = store.create(&record(1, Duration::hours(1))).await.unwrap();
        let (dead, v) = store
            .create(&record(1, Duration::seconds(-1)))
            .await
            .unwrap();
        assert!(store.load(&dead).await.unwrap().is_none());
        assert!(!store.exists(&dead).await.unwrap());
        assert_eq!(
            store
                .save(&dead, &record(2, Duration::hours(1)), &v)
                .await
                .unwrap(),
            SaveOutcome::Gone
        );
        assert_eq!(store.len(), 2);
        store.clear_expired().await.unwrap();
        assert_eq!(store.len(), 1);
        assert!(store.load(&live).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn steady_churn_stays_bounded_while_live_records_remain() {
        let store = MemoryStore::new();
        // 1,000 live sessions that stay, then 100,000 created already expired: the store must
        // reclaim the expired ones by itself although every shard always holds live records.
        for _ in 0..1_000 {
            store.create(&record(1, Duration::hours(1))).await.unwrap();
        }
        for _ in 0..100_000 {
            store
                .create(&record(1, Duration::seconds(-1)))
                .await
                .unwrap();
        }
        let len = store.len();
        assert!(len >= 1_000, "live records were dropped: {len}");
        // Each shard holds at most about twice its live records plus one sweep budget.
        assert!(
            len <= 2 * 1_000 + SHARDS * MIN_WRITES_PER_SWEEP,
            "{len} records kept"
        );
    }

    #[tokio::test]
    async fn churn_reclaims_expired_records_without_clear_expired() {
        let store = MemoryStore::new();
        for _ in 0..50_000 {
            store
                .create(&record(1, Duration::seconds(-1)))
                .await
                .unwrap();
        }
        // Each shard holds at most about MIN_WRITES_PER_SWEEP unswept records.
        assert!(
            store.len() <= SHARDS * MIN_WRITES_PER_SWEEP,
            "{} records left",
            store.len()
        );
    }
}
