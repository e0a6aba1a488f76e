//! The `SessionStore` trait, what it reads and writes, and the stores.
//!
//! A store keeps session records: a key, the session's data (a JSON object) and the instant
//! the record expires. It is Django's `SessionStore` backend seen from below: `load`,
//! `create`, `save`, `delete`, `exists` and `clear_expired`, and `touch`, which moves only the
//! expiry of a record (`save_every_request` on a session that nothing changed).
//!
//! Saves are compare-and-swap. `load` returns the record with a [`Version`]; `save` writes
//! only if the stored record still has that version, and otherwise answers
//! [`SaveOutcome::Conflict`]. The session then reloads, re-applies the keys its request
//! changed and saves again, so two concurrent requests that change different keys both keep
//! their change (Django and its peers lose one).
//!
//! # Writing a store
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//! use sessionbase::{Error, SessionKey};
//! use sessionbase::store::{LoadedRecord, Record, SaveOutcome, SessionStore, Version};
//! use time::OffsetDateTime;
//!
//! /// A toy store: one lock around a map; versions are a counter.
//! #[derive(Clone, Default)]
//! struct ToyStore(Arc<Mutex<HashMap<SessionKey, (Record, u64)>>>);
//!
//! impl ToyStore {
//!     fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<SessionKey, (Record, u64)>>, Error> {
//!         self.0.lock().map_err(|_| Error::store("lock poisoned"))
//!     }
//! }
//!
//! impl SessionStore for ToyStore {
//!     async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
//!         let map = self.map()?;
//!         Ok(map.get(key).filter(|(r, _)| r.expiry_date > OffsetDateTime::now_utc()).map(|(r, v)| {
//!             LoadedRecord { data: r.data.clone(), version: Version::from_counter(*v), expiry_date: Some(r.expiry_date) }
//!         }))
//!     }
//!     async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
//!         let mut map = self.map()?;
//!         loop {
//!             let key = SessionKey::generate()?;
//!             if !map.contains_key(&key) {
//!                 map.insert(key.clone(), (record.clone(), 0));
//!                 return Ok((key, Version::from_counter(0)));
//!             }
//!         }
//!     }
//!     async fn save(&self, key: &SessionKey, record: &Record, expected: &Version) -> Result<SaveOutcome, Error> {
//!         let mut map = self.map()?;
//!         let now = OffsetDateTime::now_utc();
//!         match map.get_mut(key) {
//!             Some((r, v)) if r.expiry_date > now => {
//!                 if Version::from_counter(*v) != *expected {
//!                     return Ok(SaveOutcome::Conflict);
//!                 }
//!                 *r = record.clone();
//!                 *v += 1;
//!                 Ok(SaveOutcome::Saved { key: key.clone(), version: Version::from_counter(*v) })
//!             }
//!             _ => Ok(SaveOutcome::Gone),
//!         }
//!     }
//!     async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
//!         self.map()?.remove(key);
//!         Ok(())
//!     }
//!     async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
//!         Ok(self.map()?.contains_key(key))
//!     }
//!     async fn clear_expired(&self) -> Result<(), Error> {
//!         let now = OffsetDateTime::now_utc();
//!         self.map()?.retain(|_, (r, _)| r.expiry_date >= now);
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use sessionbase::{Session, SessionConfig};
//! let store = ToyStore::default();
//! let session = Session::new(store.clone(), SessionConfig::default());
//! session.insert("answer", 42).unwrap();
//! session.save().await.unwrap();
//! let key = session.session_key().unwrap();
//! let again = Session::load(store, SessionConfig::default(), key.as_ref()).await.unwrap();
//! assert_eq!(again.get::<u32>("answer").unwrap(), Some(42));
//! # });
//! ```

use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::{Error, SessionConfig, SessionKey};
use preserved::Preserved;

mod cached;
mod cached_db;
mod clear_expired;
mod codec;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(feature = "cookie")]
mod cookie;
mod dispatch;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "memory")]
mod memory;
#[doc(hidden)]
pub mod pickle;
pub(crate) mod preserved;
mod private_id;
#[doc(hidden)]
pub mod python;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;
pub mod user_index;
pub use cached::{CacheStore, CachedStore};
pub use cached_db::CachedDbStore;
pub use clear_expired::{ClearExpiredTask, spawn_clear_expired};
pub use codec::Codec;
#[cfg(feature = "cookie")]
pub use cookie::CookieStore;
#[cfg(feature = "cookie-encrypted")]
pub use cookie::EncryptedCookieStore;
pub(crate) use dispatch::{BoxFuture, Store, run_now};
#[cfg(feature = "file")]
pub use file::FileStore;
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
pub use private_id::PrivateId;
#[cfg(any(
    feature = "memory",
    feature = "file",
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "redis"
))]
pub(crate) use private_id::RecordKeys;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
#[cfg(feature = "mysql")]
pub use sql::mysql::MySqlStore;
#[cfg(feature = "postgres")]
pub use sql::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sql::sqlite::SqliteStore;
pub use user_index::{
    DEFAULT_USER_ID_KEY, RecordKey, Revoke, SessionHandle, UserRecord, UserSession, UserSessions,
};

/// A session's data: an insertion-ordered JSON object, shared until someone writes to it.
pub type Data = Arc<Map<String, Value>>;

/// What a store writes: the data and the instant the record stops loading.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The session data, `_session_expiry` included when the session set one.
    pub data: Data,
    /// Django's `get_expiry_date()` at save time: the record must not load at or after it.
    pub expiry_date: OffsetDateTime,
}

/// What `load` returns: the data, the version a later `save` must match, and when the
/// record expires.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedRecord {
    /// The session data.
    pub data: Data,
    /// The record's version at load time.
    pub version: Version,
    /// When the record stops loading, if the store knows (a cache in front of this store
    /// expires its copy then; `None` makes it fall back to a short TTL).
    pub expiry_date: Option<OffsetDateTime>,
}

/// An opaque token that changes whenever a record is saved: a counter, or the stored bytes
/// themselves for stores that have no counter column.
///
/// ```
/// use sessionbase::store::Version;
///
/// assert_eq!(Version::from_counter(3), Version::from_counter(3));
/// assert_ne!(Version::from_counter(3), Version::from_bytes(*b"3"));
/// assert_eq!(Version::from_bytes(b"abc".to_vec()).as_bytes(), Some(&b"abc"[..]));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Version {
    repr: VersionRepr,
    /// What the record held that JSON cannot (set by the store that decoded it), so that a
    /// save of this version writes those values back unchanged. Not part of the identity.
    #[cfg_attr(
        not(any(
            feature = "cookie",
            feature = "file",
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql",
            feature = "redis"
        )),
        allow(dead_code)
    )]
    preserved: Preserved,
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.repr == other.repr
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.repr.hash(state);
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
enum VersionRepr {
    /// For stores that keep nothing to compare (the signed-cookie store).
    #[default]
    Unversioned,
    Counter(u64),
    Bytes(Arc<[u8]>),
}

impl Version {
    fn of(repr: VersionRepr) -> Self {
        Self {
            repr,
            preserved: Preserved::default(),
        }
    }

    /// No version: for stores that cannot compare (every save matches it).
    pub fn unversioned() -> Self {
        Self::of(VersionRepr::Unversioned)
    }

    /// A version counter.
    pub fn from_counter(n: u64) -> Self {
        Self::of(VersionRepr::Counter(n))
    }

    /// The stored bytes (or a digest of them) as the version.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self::of(VersionRepr::Bytes(bytes.into()))
    }

    /// The counter, if this version is one.
    pub fn as_counter(&self) -> Option<u64> {
        match self.repr {
            VersionRepr::Counter(n) => Some(n),
            _ => None,
        }
    }

    /// The bytes, if this version is made of them.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.repr {
            VersionRepr::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

// Preserved values only travel through the stores that decode Django's formats.
#[cfg_attr(
    not(any(
        feature = "cookie",
        feature = "file",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "redis"
    )),
    allow(dead_code)
)]
impl Version {
    /// This version, carrying the values of the decoded record that JSON cannot hold.
    pub(crate) fn with_preserved(mut self, preserved: Preserved) -> Self {
        self.preserved = preserved;
        self
    }

    /// The values of the loaded record that a save must write back as they were.
    pub(crate) fn preserved(&self) -> &Preserved {
        &self.preserved
    }
}

/// The answer to a compare-and-swap [`SessionStore::save`].
#[derive(Clone, Debug, PartialEq)]
pub enum SaveOutcome {
    /// Written. `key` is what the cookie carries from now on (the same key for server-side
    /// stores) and `version` the new version.
    Saved {
        /// The key the session cookie must carry.
        key: SessionKey,
        /// The record's new version.
        version: Version,
    },
    /// The record changed since the version given was loaded; nothing was written.
    Conflict,
    /// There is no such record (deleted or expired); nothing was written. Django's
    /// `UpdateError`: the session must not be resurrected.
    Gone,
}

/// A place sessions live. Implement it to add a store; see the [module docs](self).
///
/// Every method is called only with keys that [`parse_key`](Self::parse_key) accepted.
pub trait SessionStore: Send + Sync + 'static {
    /// Whether a cookie value is a well-formed key for this store. The default accepts
    /// 8 to 40 characters of `[a-z0-9]` (Django's minimum and column width); a value it
    /// rejects never reaches the store and counts as no session.
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        SessionKey::parse(cookie_value)
    }

    /// Whether every call answers at once, without I/O or timers: each future this store
    /// returns is complete the first time it is polled. The session then runs its calls
    /// inline, without boxing them or bounding them by `store_timeout` (they never wait).
    /// The memory and signed-cookie stores are immediate. The default, `false`, is always
    /// correct; a store that says `true` and then returns a pending future fails that call
    /// with a store error.
    fn is_immediate(&self) -> bool {
        false
    }

    /// This store as the sessions of `config` use it, for a store whose behaviour depends on
    /// a session setting: the signed-cookie store checks signing times against `cookie_age`
    /// and the cookie's size against `cookie_name`; the file store expires files by
    /// `cookie_age` and names them after `cookie_name`, as Django's backends read
    /// `SESSION_COOKIE_AGE` and `SESSION_COOKIE_NAME`. [`SessionLayer`](crate::SessionLayer)
    /// (`new`, `with_config`) and [`Session::new`](crate::Session::new) /
    /// [`Session::load`](crate::Session::load) call it with their configuration before any
    /// other call, so the store and the configuration cannot differ. The default, `None`,
    /// keeps the store as it is.
    fn configured(&self, config: &SessionConfig) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = config;
        None
    }

    /// Whether this store can serve the sessions of `config`, checked by
    /// [`SessionLayer::with_config`](crate::SessionLayer::with_config) at startup: a store
    /// that cannot (one whose records Django cannot read, under a configuration
    /// [`shared_with_django`](SessionConfig::shared_with_django)) answers an
    /// [`Error::Config`] saying why. The default accepts every configuration; a store that
    /// wraps others asks each of them.
    fn check_config(&self, config: &SessionConfig) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// An identity this store shares with its clones and with no other store: two handles
    /// with the same identity reach the same records. Sessions made by
    /// [`Session::new`](crate::Session::new) or [`Session::load`](crate::Session::load)
    /// from such handles (with one `Arc<SessionConfig>`) then queue their saves of a key
    /// together and write them in groups, as the sessions of one layer do, instead of
    /// racing each other's compare-and-swap. The default, `None`, is always correct: those
    /// sessions then only ever race.
    fn identity(&self) -> Option<usize> {
        None
    }

    /// The record for `key`, or `None` when it is missing or expired.
    fn load(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<LoadedRecord>, Error>> + Send;

    /// Stores `record` under a fresh key that the store generates, never overwriting an
    /// existing record (on a collision it draws another key). Returns the key the cookie
    /// carries and the new record's version.
    fn create(
        &self,
        record: &Record,
    ) -> impl Future<Output = Result<(SessionKey, Version), Error>> + Send;

    /// Replaces the record for `key` if it exists, has not expired and still has the
    /// version `expected`.
    fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> impl Future<Output = Result<SaveOutcome, Error>> + Send;

    /// Moves the expiry of the record for `key` to `record.expiry_date`, when it exists, has
    /// not expired and still has the version `expected`: what a session that nothing changed
    /// writes under `save_every_request` (Django saves the whole record there).
    ///
    /// `record` is the data loaded at `expected`, with its new expiry date. A store that can
    /// move the expiry alone does so and leaves the stored bytes (and so the version) as they
    /// are: the [`SaveOutcome::Saved`] it returns carries `expected` itself, still valid for a
    /// later `save`. The default is always correct: a compare-and-swap [`save`](Self::save)
    /// of `record` (the signed-cookie store re-signs the cookie that way, as Django does).
    /// [`SaveOutcome::Gone`] when the record is missing or expired (nothing is created);
    /// [`SaveOutcome::Conflict`] when it has another version, and the session then saves as
    /// after any lost race.
    fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> impl Future<Output = Result<SaveOutcome, Error>> + Send {
        self.save(key, record, expected)
    }

    /// Removes the record for `key`; a missing record is not an error.
    fn delete(&self, key: &SessionKey) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether a record exists for `key`.
    fn exists(&self, key: &SessionKey) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Removes every expired record: Django's `clearsessions`.
    fn clear_expired(&self) -> impl Future<Output = Result<(), Error>> + Send;

    /// What this store keys the record of `key` by: the one place that mapping is made, for
    /// [`user_records`](Self::user_records) and [`delete_record`](Self::delete_record). The
    /// default, the session key itself, is what every store in this crate keys by.
    fn record_key(&self, key: &SessionKey) -> RecordKey {
        RecordKey::new(key.as_str())
    }

    /// The data key whose value names a session's user ([`user_index`]), default
    /// [`DEFAULT_USER_ID_KEY`] (`_auth_user_id`, Django's).
    fn user_id_key(&self) -> &str {
        DEFAULT_USER_ID_KEY
    }

    /// Every live record whose data names the user `user_id` under
    /// [`user_id_key`](Self::user_id_key), compared as Django does ([`user_index`]): from an
    /// index where the store keeps one, otherwise by a scan of every live record. A record
    /// listed is live and the user's at the time it was read. The default:
    /// [`Error::Unsupported`].
    fn user_records(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<UserRecord>, Error>> + Send {
        let _ = user_id;
        async { Err(Error::Unsupported("list the sessions of a user")) }
    }

    /// Deletes the record that [`user_records`](Self::user_records) found under
    /// `record_key`, as [`delete`](Self::delete) deletes a session (the caches in front of
    /// it included); a missing record is not an error. The default deletes the session the
    /// record key names, when the store keys records by session key (the default
    /// [`record_key`](Self::record_key)).
    fn delete_record(
        &self,
        record_key: &RecordKey,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let key = self.parse_key(record_key.as_str());
        async move {
            match key {
                Some(key) => self.delete(&key).await,
                None => Err(Error::store("a record key that names no session")),
            }
        }
    }
}

impl<S: SessionStore> SessionStore for Arc<S> {
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        (**self).parse_key(cookie_value)
    }
    fn is_immediate(&self) -> bool {
        (**self).is_immediate()
    }
    fn configured(&self, config: &SessionConfig) -> Option<Self> {
        (**self).configured(config).map(Arc::new)
    }
    fn check_config(&self, config: &SessionConfig) -> Result<(), Error> {
        (**self).check_config(config)
    }
    /// The inner store's identity, or else this `Arc`'s: its clones share the store.
    fn identity(&self) -> Option<usize> {
        (**self)
            .identity()
            .or(Some(Arc::as_ptr(self).cast::<()>() as usize))
    }
    fn load(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<LoadedRecord>, Error>> + Send {
        (**self).load(key)
    }
    fn create(
        &self,
        record: &Record,
    ) -> impl Future<Output = Result<(SessionKey, Version), Error>> + Send {
        (**self).create(record)
    }
    fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> impl Future<Output = Result<SaveOutcome, Error>> + Send {
        (**self).save(key, record, expected)
    }
    fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> impl Future<Output = Result<SaveOutcome, Error>> + Send {
        (**self).touch(key, record, expected)
    }
    fn delete(&self, key: &SessionKey) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).delete(key)
    }
    fn exists(&self, key: &SessionKey) -> impl Future<Output = Result<bool, Error>> + Send {
        (**self).exists(key)
    }
    fn clear_expired(&self) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).clear_expired()
    }
    fn record_key(&self, key: &SessionKey) -> RecordKey {
        (**self).record_key(key)
    }
    fn user_id_key(&self) -> &str {
        (**self).user_id_key()
    }
    fn user_records(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<UserRecord>, Error>> + Send {
        (**self).user_records(user_id)
    }
    fn delete_record(
        &self,
        record_key: &RecordKey,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).delete_record(record_key)
    }
}
