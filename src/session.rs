//! `Session`: Django's `SessionBase` API.
//!
//! Dictionary operations are synchronous and never touch the store; operations that talk to
//! the store are `async`. Flags move exactly as in Django: see the table in the crate docs.
//!
//! ```
//! use sessionbase::{Expiry, MemoryStore, Session, SessionConfig};
//! use time::Duration;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let session = Session::new(store.clone(), SessionConfig::default());
//! session.insert("cart", vec![3, 5])?;
//! session.set_expiry(Some(Expiry::Inactivity(Duration::minutes(30))));
//! session.save().await?; // no key yet: creates one
//! let key = session.session_key().expect("saved");
//!
//! let again = Session::load(store, SessionConfig::default(), key.as_ref()).await?;
//! assert_eq!(again.get::<Vec<u32>>("cart")?, Some(vec![3, 5]));
//! assert_eq!(again.get_expiry_age(), 1800);
//! # Ok::<(), sessionbase::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use arrayvec::ArrayVec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::expiry::{self, CREATED_KEY, EXPIRY_KEY, Expiry};
use crate::store::{Data, DynStore, LoadedRecord, Record, SaveOutcome, SessionStore, Version};
use crate::{DictKey, Error, SessionConfig, SessionKey};

/// Django's test-cookie key and value.
const TEST_COOKIE_NAME: &str = "testcookie";
const TEST_COOKIE_VALUE: &str = "worked";

/// How many times a save reloads and re-applies its changes after losing a race.
const MAX_SAVE_ATTEMPTS: u32 = 32;
/// The longest pause between two attempts of a save that keeps losing races.
const MAX_CONFLICT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(512);

/// A random pause before retry `n` (from 1) of a save that lost a race: uniform over a window
/// that doubles from 1 ms up to [`MAX_CONFLICT_BACKOFF`]. Without it, losers retry in
/// lockstep and each round lets exactly one of them through.
fn conflict_backoff(n: u32) -> std::time::Duration {
    use rand::RngExt as _;
    let window = std::time::Duration::from_millis(1)
        .saturating_mul(1 << n.saturating_sub(1).min(9))
        .min(MAX_CONFLICT_BACKOFF);
    window.mul_f64(rand::rng().random::<f64>())
}

/// An empty map, shared per thread: no allocation, and no reference count that every core
/// writes to (as one shared for the process would be).
fn empty() -> Data {
    thread_local! {
        static EMPTY: Data = Arc::new(Map::new());
    }
    EMPTY.with(Arc::clone)
}

/// One request's session: Django's `request.session`.
///
/// A cheap-to-clone handle: clones share the same state. Handlers take it as an axum
/// extractor (`session: Session`); outside a request, build one with [`Session::new`] or
/// [`Session::load`]. The lock inside is never held across an `.await`.
///
/// Values are JSON, as with Django's `JSONSerializer`; [`get`](Self::get) and
/// [`insert`](Self::insert) convert through serde, [`get_value`](Self::get_value) and
/// [`insert_value`](Self::insert_value) take `serde_json::Value` as is. Keys keep their
/// insertion order, as in a Python dict.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<Backend>,
    state: Mutex<State>,
}

/// Where sessions live and how they behave: shared by a layer, its requests and their
/// sessions behind one reference count.
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn DynStore>,
    pub(crate) config: Arc<SessionConfig>,
    pub(crate) cookie: crate::cookie::CookieTemplate,
}

impl Backend {
    pub(crate) fn new(store: Arc<dyn DynStore>, config: Arc<SessionConfig>) -> Self {
        Self {
            cookie: crate::cookie::CookieTemplate::new(&config),
            store,
            config,
        }
    }
}

#[derive(Default)]
struct State {
    key: Option<SessionKey>,
    /// Django's `_session_cache`: `None` until the first dictionary operation.
    loaded: Option<Data>,
    /// What the store returned for `key` before the first dictionary operation, so that the
    /// data can be read synchronously while Django's lazy-load flags stay exact.
    /// `None` inside means the store had no such record.
    fetched: Option<Option<LoadedRecord>>,
    /// The version of the stored record `loaded` came from.
    version: Version,
    changes: Changes,
    accessed: bool,
    modified: bool,
    /// Whether a handler took the session out of the request (the layer reads it).
    extracted: bool,
}

/// The keys this request changed since the last save, so that a save that lost a race can
/// be re-applied on top of the record as it is now.
///
/// Keys are remembered by a 64-bit hash under a per-process random seed: recording one costs
/// no allocation (the first few live inline), and a re-application finds the keys again in
/// the maps it merges.
#[derive(Default)]
struct Changes {
    /// `clear` or `flush` ran: nothing stored before survives.
    cleared: bool,
    touched: ArrayVec<u64, INLINE_CHANGES>,
    /// Beyond the first [`INLINE_CHANGES`] keys.
    more: Vec<u64>,
    /// Bumped by every change, so a save can tell whether changes arrived while it ran.
    generation: u64,
}

/// Changed keys remembered without allocating.
const INLINE_CHANGES: usize = 6;

static KEY_HASHER: LazyLock<foldhash::fast::RandomState> = LazyLock::new(Default::default);

fn key_hash(key: &str) -> u64 {
    KEY_HASHER.hash_one(key)
}

impl Changes {
    fn touch(&mut self, key: &str) {
        let hash = key_hash(key);
        if !self.is_touched(hash)
            && let Err(full) = self.touched.try_push(hash)
        {
            self.more.push(full.element());
        }
        self.generation += 1;
    }

    fn is_touched(&self, hash: u64) -> bool {
        self.touched.contains(&hash) || self.more.contains(&hash)
    }

    fn clear_all(&mut self) {
        self.cleared = true;
        self.touched.clear();
        self.more.clear();
        self.generation += 1;
    }

    /// `base` (the record as stored now) with this request's changes, read from `mine`,
    /// applied on top.
    fn apply(&self, base: &Data, mine: &Map<String, Value>) -> Data {
        if self.cleared {
            // Everything before the clear is gone; what is left is exactly this request's.
            return Arc::new(mine.clone());
        }
        let mut out = Map::clone(base);
        // Removed here: touched keys the base has and this request no longer does.
        out.retain(|key, _| mine.contains_key(key) || !self.is_touched(key_hash(key)));
        for (key, value) in mine {
            if self.is_touched(key_hash(key)) {
                out.insert(key.clone(), value.clone());
            }
        }
        Arc::new(out)
    }
}

impl State {
    /// Django's `_get_session`: marks the session accessed and loads its data on first use.
    fn data(&mut self) -> &mut Data {
        self.accessed = true;
        let data = match self.loaded.take() {
            Some(data) => data,
            None => self.first_load(),
        };
        self.loaded.insert(data)
    }

    fn first_load(&mut self) -> Data {
        if self.key.is_none() {
            return empty();
        }
        match self.fetched.take() {
            Some(Some(record)) => {
                self.version = record.version;
                record.data
            }
            Some(None) => {
                // Unknown or expired: Django's load() drops the key, so a save creates a new
                // one and the client's key is never adopted.
                self.key = None;
                empty()
            }
            None => {
                // Unreachable by construction (every keyed session is fetched before a
                // handler sees it); failing closed keeps a stale key from being adopted.
                tracing::error!("session used before its record was fetched; treating it as empty");
                self.key = None;
                empty()
            }
        }
    }

    fn data_mut(&mut self) -> &mut Map<String, Value> {
        Arc::make_mut(self.data())
    }

    /// Takes the key borrowed: replacing a value needs no new `String`.
    fn set<K: DictKey>(&mut self, key: K, value: Value) {
        self.changes.touch(key.as_ref());
        let data = self.data();
        if data.is_empty() {
            // The first key: a map sized for it (on its own an `IndexMap` reserves room for
            // three entries, about 340 bytes that a one-key session keeps for its lifetime).
            let mut first = Map::with_capacity(1);
            first.insert(key.into_key(), value);
            *data = Arc::new(first);
            self.modified = true;
            return;
        }
        let data = self.data_mut();
        match data.get_mut(key.as_ref()) {
            Some(slot) => *slot = value,
            None => {
                data.insert(key.into_key(), value);
            }
        }
        self.modified = true;
    }

    fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.data().contains_key(key) {
            return None;
        }
        self.changes.touch(key);
        self.modified = true;
        self.data_mut().shift_remove(key)
    }

    fn clear(&mut self) {
        self.accessed = true;
        self.modified = true;
        self.fetched = None;
        self.loaded = Some(empty());
        self.changes.clear_all();
    }

    fn is_empty(&self) -> bool {
        self.key.is_none() && self.loaded.as_ref().is_none_or(|d| d.is_empty())
    }

    fn stored_expiry(&mut self) -> Option<Expiry> {
        stored_expiry(self.data())
    }
}

/// Fails when `data` as compact JSON is longer than `limit` bytes, without building the
/// JSON: a writer counts the bytes and stops at the limit.
fn check_size(data: &Map<String, Value>, limit: usize) -> Result<(), Error> {
    if object_size_bound(data) <= limit {
        // The usual case: a quick upper bound suffices, no serializer runs.
        return Ok(());
    }
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(buf.len())
                .ok_or_else(|| std::io::Error::other("over the limit"))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(limit), data).map_err(|_| {
        tracing::error!(
            limit,
            keys = data.len(),
            "session larger than max_session_size; not saved"
        );
        Error::SessionTooLarge { limit }
    })
}

/// An upper bound of the length of `data` as compact JSON (a string at most 6 bytes per
/// byte, `\u00XX`; a number at most 24 characters).
fn object_size_bound(data: &Map<String, Value>) -> usize {
    // Braces, and a colon and a comma per entry.
    data.iter().fold(2 * data.len() + 2, |n, (k, v)| {
        n.saturating_add(2 + 6 * k.len())
            .saturating_add(value_size_bound(v))
    })
}

fn value_size_bound(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => 2 + 6 * s.len(),
        Value::Array(items) => items.iter().fold(items.len() + 2, |n, v| {
            n.saturating_add(value_size_bound(v))
        }),
        Value::Object(map) => object_size_bound(map),
    }
}

/// The creation time kept in `data` by `absolute_max_age`, if any.
fn created_at(data: &Map<String, Value>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(data.get(CREATED_KEY)?.as_i64()?).ok()
}

/// The custom expiry kept in `data`; a value of the wrong type counts as none.
fn stored_expiry(data: &Map<String, Value>) -> Option<Expiry> {
    let value = data.get(EXPIRY_KEY)?;
    Expiry::from_value(value).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring malformed session expiry");
        None
    })
}

/// `value` as JSON. NaN and infinities are refused: serde_json would store them as `null`.
fn to_value<T: Serialize>(key: &str, value: T) -> Result<Value, Error> {
    let serde_error = |source| Error::Serde {
        key: key.to_owned(),
        source,
    };
    crate::finite::check(&value)
        .map_err(|e| serde_error(<serde_json::Error as serde::ser::Error>::custom(e)))?;
    serde_json::to_value(value).map_err(serde_error)
}

fn from_value<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, Error> {
    T::deserialize(value).map_err(|source| Error::Serde {
        key: key.to_owned(),
        source,
    })
}

impl Session {
    /// An empty session with no key, on `store`: Django's `SessionStore()`.
    pub fn new<S: SessionStore>(store: S, config: impl Into<Arc<SessionConfig>>) -> Self {
        let backend = Backend::new(Arc::new(store), config.into());
        Self::with_parts(Arc::new(backend), None)
    }

    /// The session stored under `key`: Django's `SessionStore(key)` followed by a load.
    /// An unknown, expired or malformed key gives an empty session with no key.
    pub async fn load<S: SessionStore>(
        store: S,
        config: impl Into<Arc<SessionConfig>>,
        key: &str,
    ) -> Result<Self, Error> {
        let store: Arc<dyn DynStore> = Arc::new(store);
        let key = store.parse_key(key);
        let backend = Backend::new(store, config.into());
        let session = Self::with_parts(Arc::new(backend), key);
        session.fetch(false).await?;
        {
            let mut state = session.state();
            let data = state.first_load();
            state.loaded = Some(data);
        }
        Ok(session)
    }

    pub(crate) fn with_parts(backend: Arc<Backend>, key: Option<SessionKey>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                state: Mutex::new(State {
                    key,
                    ..State::default()
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The `Set-Cookie` parts its configuration decides.
    pub(crate) fn cookie_template(&self) -> &crate::cookie::CookieTemplate {
        &self.inner.backend.cookie
    }

    /// The configuration this session follows.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.backend.config
    }

    // ----- dictionary operations (synchronous, never touch the store) -----

    /// `session.get(key)`: the value under `key` converted to `T`, or `None` when absent.
    /// Fails with [`Error::Serde`] when the stored JSON is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut state = self.state();
        state
            .data()
            .get(key)
            .map(|v| from_value(key, v))
            .transpose()
    }

    /// `session.get(key)` as raw JSON.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.state().data().get(key).cloned()
    }

    /// `session[key] = value`. Sets `modified`, even when the value is unchanged. A value
    /// holding NaN or an infinity is refused with [`Error::Serde`] (JSON has no such number;
    /// serde_json would store `null`).
    pub fn insert<T: Serialize>(&self, key: impl DictKey, value: T) -> Result<(), Error> {
        let value = to_value(key.as_ref(), value)?;
        self.state().set(key, value);
        Ok(())
    }

    /// `session[key] = value` with a raw JSON value.
    pub fn insert_value(&self, key: impl DictKey, value: Value) {
        self.state().set(key, value);
    }

    /// `del session[key]` / `session.pop(key, None)`: removes and returns the value. Sets
    /// `modified` only when the key was there.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.state().remove(key)
    }

    /// `session.pop(key, None)` converted to `T`. When the value is not a `T`, fails and
    /// leaves it in place.
    pub fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut state = self.state();
        let Some(value) = state.data().get(key) else {
            return Ok(None);
        };
        let typed = from_value(key, value)?;
        state.remove(key);
        Ok(Some(typed))
    }

    /// `session.setdefault(key, default)`: the existing value (nothing written, `modified`
    /// unchanged), or `default` after storing it.
    pub fn setdefault<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        default: T,
    ) -> Result<T, Error> {
        let mut state = self.state();
        if let Some(existing) = state.data().get(key) {
            return from_value(key, existing);
        }
        let value = to_value(key, &default)?;
        state.set(key, value);
        Ok(default)
    }

    /// `session.update(items)`: inserts every pair. Sets `modified` even when `items` is
    /// empty, as Django does. Nothing is written unless every value serializes.
    pub fn update<I, K, V>(&self, items: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: DictKey,
        V: Serialize,
    {
        let pairs = items
            .into_iter()
            .map(|(k, v)| {
                let k = k.into_key();
                let v = to_value(&k, v)?;
                Ok((k, v))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mut state = self.state();
        state.data();
        state.modified = true;
        for (k, v) in pairs {
            state.set(k, v);
        }
        Ok(())
    }

    /// `key in session`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.state().data().contains_key(key)
    }

    /// `list(session.keys())`, in insertion order.
    pub fn keys(&self) -> Vec<String> {
        self.state().data().keys().cloned().collect()
    }

    /// `list(session.values())`, in insertion order.
    pub fn values(&self) -> Vec<Value> {
        self.state().data().values().cloned().collect()
    }

    /// `list(session.items())`, in insertion order.
    pub fn items(&self) -> Vec<(String, Value)> {
        self.state()
            .data()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `len(session)`.
    pub fn len(&self) -> usize {
        self.state().data().len()
    }

    /// `session.clear()`: empties the data without reading the store; sets `accessed` and
    /// `modified`.
    pub fn clear(&self) {
        self.state().clear();
    }

    /// `session.is_empty()`, in Django's sense: no key, and no data loaded or an empty one.
    /// It never loads and never sets `accessed`, so a session whose cookie named a key is
    /// not empty until a dictionary operation finds that key unknown.
    pub fn is_empty(&self) -> bool {
        self.state().is_empty()
    }

    /// `session.modified`: whether this request changed the session.
    pub fn modified(&self) -> bool {
        self.state().modified
    }

    /// `session.modified = value`. Set it to force a save (with a fresh expiry) at the end of
    /// the request.
    pub fn set_modified(&self, value: bool) {
        self.state().modified = value;
    }

    /// `session.accessed`: whether this request used the session's data.
    pub fn accessed(&self) -> bool {
        self.state().accessed
    }

    /// `session.session_key`: the key the cookie will carry, if any.
    pub fn session_key(&self) -> Option<SessionKey> {
        self.state().key.clone()
    }

    /// `session.set_test_cookie()`: stores `testcookie = "worked"`.
    pub fn set_test_cookie(&self) {
        self.insert_value(TEST_COOKIE_NAME, Value::from(TEST_COOKIE_VALUE));
    }

    /// `session.test_cookie_worked()`: whether the browser sent back the session in which
    /// `set_test_cookie` was called.
    pub fn test_cookie_worked(&self) -> bool {
        self.state()
            .data()
            .get(TEST_COOKIE_NAME)
            .and_then(Value::as_str)
            == Some(TEST_COOKIE_VALUE)
    }

    /// `session.delete_test_cookie()`: removes it (and sets `modified` when it was there;
    /// Django's sync version, where a missing one raises, and unlike its async twin, which
    /// never sets `modified`).
    pub fn delete_test_cookie(&self) {
        self.remove(TEST_COOKIE_NAME);
    }

    // ----- expiry -----

    /// `session.set_expiry(value)`. `Some(expiry)` stores it under `_session_expiry` as
    /// Django does; `None` removes it (setting `modified` only when there was one), going
    /// back to the configured policy.
    pub fn set_expiry(&self, expiry: Option<Expiry>) {
        let mut state = self.state();
        match expiry {
            Some(e) => state.set(EXPIRY_KEY, e.to_value()),
            None => {
                state.remove(EXPIRY_KEY);
            }
        }
    }

    /// The custom expiry stored by [`set_expiry`](Self::set_expiry), if any.
    pub fn get_expiry(&self) -> Option<Expiry> {
        self.state().stored_expiry()
    }

    /// `session.get_expiry_age()`: seconds from now until the session expires.
    ///
    /// With `absolute_max_age` set, never beyond the session's absolute deadline.
    pub fn get_expiry_age(&self) -> i64 {
        let expiry = self.get_expiry();
        self.capped_expiry_age(expiry, self.absolute_deadline(), OffsetDateTime::now_utc())
    }

    /// `get_expiry_age` for a known custom expiry, capped by the absolute deadline.
    fn capped_expiry_age(
        &self,
        expiry: Option<Expiry>,
        deadline: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> i64 {
        let age = self.get_expiry_age_with(now, expiry);
        match deadline {
            Some(deadline) => age.min(expiry::expiry_age(
                now,
                Some(&Expiry::At(deadline)),
                self.inner.backend.config.cookie_age,
            )),
            None => age,
        }
    }

    /// `session.get_expiry_age(modification=…, expiry=…)`. Takes the expiry explicitly (as
    /// Django's `expiry=` argument; `None` means "no custom expiry") and never loads. For the
    /// stored one, pass [`get_expiry`](Self::get_expiry).
    pub fn get_expiry_age_with(&self, modification: OffsetDateTime, expiry: Option<Expiry>) -> i64 {
        expiry::expiry_age(
            modification,
            expiry.as_ref(),
            self.inner.backend.config.cookie_age,
        )
    }

    /// `session.get_expiry_date()`: when the session expires if saved now.
    ///
    /// With `absolute_max_age` set, never beyond the session's absolute deadline.
    pub fn get_expiry_date(&self) -> OffsetDateTime {
        let expiry = self.get_expiry();
        let date = self.get_expiry_date_with(OffsetDateTime::now_utc(), expiry);
        self.absolute_deadline()
            .map_or(date, |deadline| date.min(deadline))
    }

    /// When the session stops being valid however active it stays: its creation time plus
    /// `absolute_max_age`, if that option is set and the session has been saved.
    pub fn absolute_deadline(&self) -> Option<OffsetDateTime> {
        self.inner.backend.config.absolute_max_age?;
        self.absolute_deadline_in(&mut self.state())
    }

    fn absolute_deadline_in(&self, state: &mut State) -> Option<OffsetDateTime> {
        let max_age = self.inner.backend.config.absolute_max_age?;
        let created = created_at(state.data())?;
        Some(created.saturating_add(max_age))
    }

    /// `session.get_expiry_date(modification=…, expiry=…)`; see
    /// [`get_expiry_age_with`](Self::get_expiry_age_with).
    pub fn get_expiry_date_with(
        &self,
        modification: OffsetDateTime,
        expiry: Option<Expiry>,
    ) -> OffsetDateTime {
        expiry::expiry_date(
            modification,
            expiry.as_ref(),
            self.inner.backend.config.cookie_age,
        )
    }

    /// `session.get_expire_at_browser_close()`: whether the cookie lasts only until the
    /// browser closes.
    pub fn get_expire_at_browser_close(&self) -> bool {
        let expiry = self.get_expiry();
        expiry::expire_at_browser_close(
            expiry.as_ref(),
            self.inner.backend.config.expire_at_browser_close,
        )
    }

    /// `session.get_session_cookie_age()`: the configured cookie age, in seconds.
    pub fn get_session_cookie_age(&self) -> i64 {
        self.inner.backend.config.cookie_age.whole_seconds()
    }

    // ----- store operations (async) -----

    /// `session.save()`: writes the session. Without a key, this creates one ([`create`]).
    /// With one, it updates the stored record, and fails with
    /// [`Error::SessionInterrupted`] when that record is gone (deleted or expired) rather than
    /// resurrecting it. When a concurrent request saved in between, the record is reloaded
    /// and this request's own changes are applied on top of it, so neither loses a key the
    /// other did not touch (for the same key, the last writer wins).
    ///
    /// [`create`]: Self::create
    pub async fn save(&self) -> Result<(), Error> {
        let now = OffsetDateTime::now_utc();
        let plan = self.plan_save(&mut self.state(), now);
        self.execute(plan, now).await.map(drop)
    }

    /// What a save will write, taken under the lock the caller holds.
    fn plan_save(&self, state: &mut State, now: OffsetDateTime) -> SavePlan {
        if state.key.is_none() {
            return self.plan_create(state, now);
        }
        self.stamp_creation(state, now);
        let data = Arc::clone(state.data());
        let generation = state.changes.generation;
        match state.key.clone() {
            Some(key) => SavePlan::Update {
                key,
                data,
                version: state.version.clone(),
                generation,
            },
            // Reading the data dropped a key the store did not know: create instead.
            None => SavePlan::Create { data, generation },
        }
    }

    fn plan_create(&self, state: &mut State, now: OffsetDateTime) -> SavePlan {
        state.accessed = true;
        if state.loaded.is_none() {
            // Django's save(must_create=True) saves what is loaded, or nothing.
            state.fetched = None;
            state.loaded = Some(empty());
        }
        self.stamp_creation(state, now);
        SavePlan::Create {
            data: Arc::clone(state.data()),
            generation: state.changes.generation,
        }
    }

    /// Writes what `plan` says and returns the key the cookie carries from now on.
    async fn execute(&self, plan: SavePlan, now: OffsetDateTime) -> Result<SessionKey, Error> {
        let (key, data, version, generation) = match plan {
            SavePlan::Create { data, generation } => {
                let record = self.record(data, now)?;
                let (key, version) = self.store_create(&record, now).await?;
                // Django's create() sets `modified` once the record exists.
                return Ok(self.saved(key, version, generation, None, true));
            }
            SavePlan::Update {
                key,
                data,
                version,
                generation,
            } => (key, data, version, generation),
        };
        let record = self.record(Arc::clone(&data), now)?;
        match self.store_save(&key, &record, &version, now).await? {
            SaveOutcome::Saved { key, version } => {
                Ok(self.saved(key, version, generation, None, false))
            }
            SaveOutcome::Gone => Err(Error::SessionInterrupted),
            // Rare, and kept out of this future so that the common one stays small.
            SaveOutcome::Conflict => Box::pin(self.save_after_conflicts(key, generation)).await,
        }
    }

    /// Records a successful save. `rebased_onto` is the data written when it was this
    /// request's changes re-applied to a newer record; `created` sets `modified`, as Django's
    /// `create()` does.
    fn saved(
        &self,
        key: SessionKey,
        version: Version,
        generation: u64,
        rebased_onto: Option<&Data>,
        created: bool,
    ) -> SessionKey {
        let mut state = self.state();
        state.modified |= created;
        if let Some(written) = rebased_onto {
            let mine = Arc::clone(state.data());
            state.loaded = Some(state.changes.apply(written, &mine));
        }
        state.key = Some(key.clone());
        state.version = version;
        if state.changes.generation == generation {
            state.changes = Changes::default();
        }
        key
    }

    /// After a lost race: reload, re-apply this request's changes and save again, pausing a
    /// little longer each time.
    async fn save_after_conflicts(
        &self,
        key: SessionKey,
        generation: u64,
    ) -> Result<SessionKey, Error> {
        for conflicts in 1..MAX_SAVE_ATTEMPTS {
            tokio::time::sleep(conflict_backoff(conflicts)).await;
            // The same checks as a first load: a record that became unacceptable (too old, a
            // malformed expiry) is gone for this request too.
            let Some(fresh) = self
                .store_load(&key)
                .await?
                .filter(|r| self.is_acceptable(&r.data))
            else {
                return Err(Error::SessionInterrupted);
            };
            let data = {
                let mut state = self.state();
                let mine = Arc::clone(state.data());
                state.changes.apply(&fresh.data, &mine)
            };
            // After a pause: the expiry counts from now.
            let now = OffsetDateTime::now_utc();
            let record = self.record(Arc::clone(&data), now)?;
            match self.store_save(&key, &record, &fresh.version, now).await? {
                SaveOutcome::Saved { key, version } => {
                    return Ok(self.saved(key, version, generation, Some(&data), false));
                }
                SaveOutcome::Gone => return Err(Error::SessionInterrupted),
                SaveOutcome::Conflict => {}
            }
        }
        tracing::warn!(
            attempts = MAX_SAVE_ATTEMPTS,
            "session save kept losing to concurrent saves"
        );
        Err(Error::Conflict(MAX_SAVE_ATTEMPTS))
    }

    /// `session.create()`: stores the session's current data under a fresh key (the store
    /// never overwrites an existing record) and sets `modified`.
    pub async fn create(&self) -> Result<(), Error> {
        let now = OffsetDateTime::now_utc();
        let plan = self.plan_create(&mut self.state(), now);
        self.execute(plan, now).await.map(drop)
    }

    /// `session.delete()`: removes the stored record of the current key (the key itself
    /// stays; a later save then fails with [`Error::SessionInterrupted`]).
    pub async fn delete(&self) -> Result<(), Error> {
        let key = self.state().key.clone();
        match key {
            Some(key) => self.inner.backend.store.delete(&key, self.limit()).await,
            None => Ok(()),
        }
    }

    /// `session.exists(key)`: whether the store holds a record for `key`. A value that is not
    /// a well-formed key for the store is `false` without asking it.
    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        match self.inner.backend.store.parse_key(key) {
            Some(key) => self.inner.backend.store.exists(&key, self.limit()).await,
            None => Ok(false),
        }
    }

    /// `session.flush()`: deletes the stored record, empties the data and drops the key
    /// (logout). The old key is invalid on the server before this returns; if the store
    /// cannot delete it, the session is left as it was and the error returned.
    pub async fn flush(&self) -> Result<(), Error> {
        self.delete().await?;
        let mut state = self.state();
        state.clear();
        state.key = None;
        state.version = Version::default();
        Ok(())
    }

    /// `session.cycle_key()`: moves the data to a fresh key and deletes the old record
    /// (call it on login against session fixation).
    pub async fn cycle_key(&self) -> Result<(), Error> {
        let old = {
            let mut state = self.state();
            state.data();
            state.key.clone()
        };
        self.create().await?;
        if let Some(old) = old {
            self.inner.backend.store.delete(&old, self.limit()).await?;
        }
        Ok(())
    }

    /// Runs `call` (a store operation of this session) to completion now when the store
    /// answers without waiting: the memory store, whose operations never wait except when a
    /// save lost a race and pauses before retrying. `None` when the store is another, or when
    /// `call` had to wait; the call is then dropped, and the caller runs it again properly.
    /// Only for calls that write nothing before their first wait (a lost compare-and-swap
    /// writes nothing).
    pub(crate) fn run_now_if_immediate<T>(&self, call: impl Future<Output = T>) -> Option<T> {
        #[cfg(feature = "memory")]
        if self.memory_store().is_some() {
            let call = std::pin::pin!(call);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            return match call.poll(&mut cx) {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => None,
            };
        }
        drop(call);
        None
    }

    /// The store, when it is the built-in [`MemoryStore`](crate::MemoryStore): it is called
    /// directly (no boxed future) and without a timeout (it never waits on I/O).
    #[cfg(feature = "memory")]
    fn memory_store(&self) -> Option<&crate::MemoryStore> {
        self.inner.backend.store.as_any().downcast_ref()
    }

    async fn store_load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        #[cfg(feature = "memory")]
        if let Some(memory) = self.memory_store() {
            return memory.load_at(key, crate::store::Now::read());
        }
        self.inner.backend.store.load(key, self.limit()).await
    }

    /// `now` is the caller's clock reading: the memory store compares expiries against it.
    async fn store_save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
        now: OffsetDateTime,
    ) -> Result<SaveOutcome, Error> {
        #[cfg(feature = "memory")]
        if let Some(memory) = self.memory_store() {
            return memory.save_at(key, record, expected, now.into());
        }
        let _ = now;
        self.inner
            .backend
            .store
            .save(key, record, expected, self.limit())
            .await
    }

    async fn store_create(
        &self,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<(SessionKey, Version), Error> {
        #[cfg(feature = "memory")]
        if let Some(memory) = self.memory_store() {
            return memory.create_at(record, now.into());
        }
        let _ = now;
        self.inner.backend.store.create(record, self.limit()).await
    }

    /// The `store_timeout` every store call is bounded by.
    fn limit(&self) -> crate::store::Limit {
        self.inner.backend.config.store_timeout
    }

    /// The record a save writes: `data` and its expiry date as of now. Fails with
    /// [`Error::SessionTooLarge`] beyond `max_session_size`.
    fn record(&self, data: Data, now: OffsetDateTime) -> Result<Record, Error> {
        if let Some(limit) = self.inner.backend.config.max_session_size {
            check_size(&data, limit)?;
        }
        let expiry = stored_expiry(&data);
        let mut expiry_date =
            expiry::expiry_date(now, expiry.as_ref(), self.inner.backend.config.cookie_age);
        if let (Some(max_age), Some(created)) = (
            self.inner.backend.config.absolute_max_age,
            created_at(&data),
        ) {
            expiry_date = expiry_date.min(created.saturating_add(max_age));
        }
        Ok(Record { data, expiry_date })
    }

    /// With `absolute_max_age` set, stamps a session that has no creation time yet (a new
    /// one, or one saved before the option was turned on) with the current time.
    fn stamp_creation(&self, state: &mut State, now: OffsetDateTime) {
        if self.inner.backend.config.absolute_max_age.is_some()
            && !state.data().contains_key(CREATED_KEY)
        {
            state.set(CREATED_KEY, Value::from(now.unix_timestamp()));
        }
    }

    // ----- for the layer -----

    /// Reads the record for the key from the store, once, without changing any of Django's
    /// flags. `extract` records that a handler took the session (in the same lock).
    pub(crate) async fn fetch(&self, extract: bool) -> Result<(), Error> {
        let key = {
            let mut state = self.state();
            let pending = match &state.key {
                Some(key) if state.loaded.is_none() && state.fetched.is_none() => Some(key.clone()),
                _ => None,
            };
            let Some(key) = pending else {
                state.extracted |= extract;
                return Ok(());
            };
            #[cfg(feature = "memory")]
            if let Some(memory) = self.memory_store() {
                // It answers at once: read under the same lock (the store never takes a
                // session's lock, so the order cannot deadlock).
                let record = memory
                    .load_at(&key, crate::store::Now::read())?
                    .filter(|r| self.is_acceptable(&r.data));
                state.fetched = Some(record);
                state.extracted |= extract;
                return Ok(());
            }
            key
        };
        let record = self.store_load(&key).await?;
        let record = record.filter(|r| self.is_acceptable(&r.data));
        let mut state = self.state();
        if state.loaded.is_none() && state.fetched.is_none() {
            state.fetched = Some(record);
        }
        state.extracted |= extract;
        Ok(())
    }

    /// Whether a stored record may load: a well-formed `_session_expiry`, and no older than
    /// `absolute_max_age`.
    fn is_acceptable(&self, data: &Map<String, Value>) -> bool {
        if let Some(Err(_)) = data.get(EXPIRY_KEY).map(Expiry::from_value) {
            tracing::warn!(
                "session record has a malformed _session_expiry; treating it as no session"
            );
            return false;
        }
        if let Some(max_age) = self.inner.backend.config.absolute_max_age {
            match data.get(CREATED_KEY).map(|v| {
                v.as_i64()
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            }) {
                Some(None) => {
                    tracing::warn!(
                        "session record has a malformed creation time; treating it as no session"
                    );
                    return false;
                }
                Some(Some(created))
                    if created.saturating_add(max_age) <= OffsetDateTime::now_utc() =>
                {
                    tracing::info!("session outlived absolute_max_age; treating it as no session");
                    return false;
                }
                _ => {}
            }
        }
        true
    }

    /// Django's middleware around its `save()`: the cookie's `Max-Age` (`None` for a
    /// browser-length session, else `get_expiry_age()`, read before the save and loading the
    /// data as Django does), then the save. Returns the key the cookie carries and the age.
    /// `now` is the request's one clock reading.
    pub(crate) async fn save_for_response(
        &self,
        now: OffsetDateTime,
    ) -> Result<(SessionKey, Option<i64>), Error> {
        let (plan, max_age) = {
            let mut state = self.state();
            let expiry = state.stored_expiry();
            let config = &self.inner.backend.config;
            let max_age =
                if expiry::expire_at_browser_close(expiry.as_ref(), config.expire_at_browser_close)
                {
                    None
                } else {
                    let deadline = self.absolute_deadline_in(&mut state);
                    Some(self.capped_expiry_age(expiry, deadline, now))
                };
            (self.plan_save(&mut state, now), max_age)
        };
        let key = self.execute(plan, now).await?;
        Ok((key, max_age))
    }

    /// Django's middleware snapshot, taken before any save: `(extracted, accessed,
    /// modified, empty)`.
    pub(crate) fn response_snapshot(&self) -> Snapshot {
        let state = self.state();
        Snapshot {
            extracted: state.extracted,
            accessed: state.accessed,
            modified: state.modified,
            empty: state.is_empty(),
        }
    }
}

/// A save, decided under the lock and carried out after it.
enum SavePlan {
    /// No key: store the data under a fresh one.
    Create { data: Data, generation: u64 },
    /// Update the record `key` loaded at `version`.
    Update {
        key: SessionKey,
        data: Data,
        version: Version,
        generation: u64,
    },
}

/// The session's flags as the middleware sees them after the handler.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    pub(crate) extracted: bool,
    pub(crate) accessed: bool,
    pub(crate) modified: bool,
    pub(crate) empty: bool,
}

impl Snapshot {
    /// A session no handler took: untouched, and empty exactly when it has no key.
    pub(crate) fn untouched(has_key: bool) -> Self {
        Self {
            extracted: false,
            accessed: false,
            modified: false,
            empty: !has_key,
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Session")
            .field("has_key", &state.key.is_some())
            .field("loaded", &state.loaded.as_ref().map(|d| d.len()))
            .field("accessed", &state.accessed)
            .field("modified", &state.modified)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_bound_is_never_below_the_json_length() {
        let samples = [
            json!({}),
            json!({"a": null, "b": true, "c": false}),
            json!({"n": -9_223_372_036_854_775_808i64, "u": u64::MAX, "f": -1.797_693_134_862_315_7e308}),
            json!({"\u{1}\"\\\n": "\u{0}\u{1f}\"\\\t", "é": "日本"}),
            json!({"list": [1, [2, [3, {}]], "x", null], "o": {"p": {"q": []}}}),
        ];
        for sample in samples {
            let Value::Object(map) = sample else {
                unreachable!()
            };
            let exact = serde_json::to_string(&map).unwrap().len();
            assert!(object_size_bound(&map) >= exact, "{map:?}");
            assert!(check_size(&map, exact).is_ok());
            assert!(check_size(&map, exact - 1).is_err());
        }
    }
}
