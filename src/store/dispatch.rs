//! How a session calls its store: chosen once, when the store is handed over.
//!
//! A store that answers at once ([`SessionStore::is_immediate`]: memory, signed cookie) is
//! called inline: its future is polled once, in place, with no allocation and no timer. Any
//! other store is called through a boxed future bounded by `store_timeout`. `Session` and the
//! middleware see one [`Store`] with one set of methods and never ask which kind it is, except
//! where a whole session operation can itself run inline (the middleware's save). Both
//! ways meet in [`Store`]'s methods, which is where calls are measured for the `metrics`
//! feature (`instruments.rs`).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::{LoadedRecord, Record, RecordKey, SaveOutcome, SessionStore, UserRecord, Version};
use crate::instruments::{self, Op, Timer};
use crate::{Error, SessionConfig, SessionKey};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long a store call may take (`store_timeout`); `None` for no limit.
pub(crate) type Limit = Option<std::time::Duration>;

/// A session's store, with the way to call it fixed at construction.
#[derive(Clone)]
pub(crate) struct Store {
    store: Arc<dyn DynStore>,
    immediate: bool,
}

impl Store {
    pub(crate) fn new<S: SessionStore>(store: S) -> Self {
        Self {
            immediate: store.is_immediate(),
            store: Arc::new(store),
        }
    }

    /// This store as the sessions of `config` use it ([`SessionStore::configured`]).
    pub(crate) fn configured(&self, config: &SessionConfig) -> Self {
        match self.store.configured(config) {
            Some(store) => Self {
                store,
                immediate: self.immediate,
            },
            None => self.clone(),
        }
    }

    /// The store's [`SessionStore::check_config`].
    pub(crate) fn check_config(&self, config: &SessionConfig) -> Result<(), Error> {
        self.store.check_config(config)
    }

    /// The store's [`SessionStore::identity`].
    pub(crate) fn identity(&self) -> Option<usize> {
        self.store.identity()
    }

    /// Whether every call completes when first polled.
    pub(crate) fn is_immediate(&self) -> bool {
        self.immediate
    }

    pub(crate) fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        self.store.parse_key(cookie_value)
    }

    /// [`SessionStore::load`] now, for an immediate store; `None` for any other.
    pub(crate) fn load_now(&self, key: &SessionKey) -> Option<Result<Option<LoadedRecord>, Error>> {
        self.immediate
            .then(|| Timer::start().finish(Op::Load, self.store.load_now(key)))
    }

    // Every call below is timed and its errors counted (`instruments.rs`, the `metrics`
    // feature), here, where both ways of calling the store meet.

    pub(crate) async fn load(
        &self,
        key: &SessionKey,
        limit: Limit,
    ) -> Result<Option<LoadedRecord>, Error> {
        if let Some(loaded) = self.load_now(key) {
            return loaded;
        }
        let timer = Timer::start();
        timer.finish(Op::Load, self.store.load(key, limit).await)
    }

    pub(crate) async fn create(
        &self,
        record: &Record,
        limit: Limit,
    ) -> Result<(SessionKey, Version), Error> {
        let timer = Timer::start();
        let created = if self.immediate {
            self.store.create_now(record)
        } else {
            self.store.create(record, limit).await
        };
        if created.is_ok() {
            instruments::session_size(record);
        }
        timer.finish(Op::Create, created)
    }

    pub(crate) async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
        limit: Limit,
    ) -> Result<SaveOutcome, Error> {
        let timer = Timer::start();
        let saved = if self.immediate {
            self.store.save_now(key, record, expected)
        } else {
            self.store.save(key, record, expected, limit).await
        };
        match &saved {
            Ok(SaveOutcome::Saved { .. }) => instruments::session_size(record),
            Ok(SaveOutcome::Conflict) => instruments::save_conflict(),
            _ => {}
        }
        timer.finish(Op::Save, saved)
    }

    pub(crate) async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
        limit: Limit,
    ) -> Result<SaveOutcome, Error> {
        let timer = Timer::start();
        let touched = if self.immediate {
            self.store.touch_now(key, record, expected)
        } else {
            self.store.touch(key, record, expected, limit).await
        };
        if let Ok(SaveOutcome::Conflict) = &touched {
            instruments::save_conflict();
        }
        timer.finish(Op::Touch, touched)
    }

    pub(crate) async fn delete(&self, key: &SessionKey, limit: Limit) -> Result<(), Error> {
        let timer = Timer::start();
        let deleted = if self.immediate {
            self.store.delete_now(key)
        } else {
            self.store.delete(key, limit).await
        };
        timer.finish(Op::Delete, deleted)
    }

    pub(crate) async fn exists(&self, key: &SessionKey, limit: Limit) -> Result<bool, Error> {
        let timer = Timer::start();
        let exists = if self.immediate {
            self.store.exists_now(key)
        } else {
            self.store.exists(key, limit).await
        };
        timer.finish(Op::Exists, exists)
    }

    pub(crate) fn record_key(&self, key: &SessionKey) -> RecordKey {
        self.store.record_key(key)
    }

    pub(crate) fn user_id_key(&self) -> &str {
        self.store.user_id_key()
    }

    /// Always boxed and bounded: a scan may take a while even on an immediate store.
    pub(crate) async fn user_records(
        &self,
        user_id: &str,
        limit: Limit,
    ) -> Result<Vec<UserRecord>, Error> {
        self.store.user_records(user_id, limit).await
    }

    pub(crate) async fn delete_record(
        &self,
        record_key: &RecordKey,
        limit: Limit,
    ) -> Result<(), Error> {
        self.store.delete_record(record_key, limit).await
    }
}

/// Runs `call` to completion now, if it completes without waiting: `None` when it had to
/// wait, and the call is then dropped. Only for calls that write nothing before their first
/// wait.
pub(crate) fn run_now<T>(call: impl Future<Output = T>) -> Option<T> {
    let call = pin!(call);
    match call.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// A call of a store that declared itself immediate.
fn immediate<T>(call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    run_now(call).unwrap_or_else(|| {
        tracing::error!("a store that declared itself immediate returned a pending future");
        Err(Error::store(
            "a store whose is_immediate() is true returned a pending future",
        ))
    })
}

/// Runs a store call, failing with [`Error::StoreTimeout`] when it outlasts `limit`. Boxed
/// together with the call, so the caller's future holds only a pointer.
async fn timed<T>(limit: Limit, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match limit {
        None => call.await,
        Some(limit) => tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(Error::StoreTimeout(limit))),
    }
}

/// `SessionStore` made object-safe, so that `Session` and the layer are not generic over the
/// store: boxed calls bounded by the `store_timeout` they are given, and inline ones for
/// immediate stores.
trait DynStore: Send + Sync + 'static {
    fn configured(&self, config: &SessionConfig) -> Option<Arc<dyn DynStore>>;
    fn check_config(&self, config: &SessionConfig) -> Result<(), Error>;
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey>;
    fn identity(&self) -> Option<usize>;
    fn load<'a>(
        &'a self,
        key: &'a SessionKey,
        limit: Limit,
    ) -> BoxFuture<'a, Result<Option<LoadedRecord>, Error>>;
    fn create<'a>(
        &'a self,
        record: &'a Record,
        limit: Limit,
    ) -> BoxFuture<'a, Result<(SessionKey, Version), Error>>;
    fn save<'a>(
        &'a self,
        key: &'a SessionKey,
        record: &'a Record,
        expected: &'a Version,
        limit: Limit,
    ) -> BoxFuture<'a, Result<SaveOutcome, Error>>;
    fn touch<'a>(
        &'a self,
        key: &'a SessionKey,
        record: &'a Record,
        expected: &'a Version,
        limit: Limit,
    ) -> BoxFuture<'a, Result<SaveOutcome, Error>>;
    fn delete<'a>(&'a self, key: &'a SessionKey, limit: Limit) -> BoxFuture<'a, Result<(), Error>>;
    fn exists<'a>(
        &'a self,
        key: &'a SessionKey,
        limit: Limit,
    ) -> BoxFuture<'a, Result<bool, Error>>;
    fn load_now(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error>;
    fn create_now(&self, record: &Record) -> Result<(SessionKey, Version), Error>;
    fn save_now(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error>;
    fn touch_now(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error>;
    fn delete_now(&self, key: &SessionKey) -> Result<(), Error>;
    fn exists_now(&self, key: &SessionKey) -> Result<bool, Error>;
    fn record_key(&self, key: &SessionKey) -> RecordKey;
    fn user_id_key(&self) -> &str;
    fn user_records<'a>(
        &'a self,
        user_id: &'a str,
        limit: Limit,
    ) -> BoxFuture<'a, Result<Vec<UserRecord>, Error>>;
    fn delete_record<'a>(
        &'a self,
        record_key: &'a RecordKey,
        limit: Limit,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

impl<S: SessionStore> DynStore for S {
    fn configured(&self, config: &SessionConfig) -> Option<Arc<dyn DynStore>> {
        let store = SessionStore::configured(self, config)?;
        Some(Arc::new(store))
    }
    fn check_config(&self, config: &SessionConfig) -> Result<(), Error> {
        SessionStore::check_config(self, config)
    }
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        SessionStore::parse_key(self, cookie_value)
    }
    fn identity(&self) -> Option<usize> {
        SessionStore::identity(self)
    }
    fn load<'a>(
        &'a self,
        key: &'a SessionKey,
        limit: Limit,
    ) -> BoxFuture<'a, Result<Option<LoadedRecord>, Error>> {
        Box::pin(timed(limit, SessionStore::load(self, key)))
    }
    fn create<'a>(
        &'a self,
        record: &'a Record,
        limit: Limit,
    ) -> BoxFuture<'a, Result<(SessionKey, Version), Error>> {
        Box::pin(timed(limit, SessionStore::create(self, record)))
    }
    fn save<'a>(
        &'a self,
        key: &'a SessionKey,
        record: &'a Record,
        expected: &'a Version,
        limit: Limit,
    ) -> BoxFuture<'a, Result<SaveOutcome, Error>> {
        Box::pin(timed(
            limit,
            SessionStore::save(self, key, record, expected),
        ))
    }
    fn touch<'a>(
        &'a self,
        key: &'a SessionKey,
        record: &'a Record,
        expected: &'a Version,
        limit: Limit,
    ) -> BoxFuture<'a, Result<SaveOutcome, Error>> {
        Box::pin(timed(
            limit,
            SessionStore::touch(self, key, record, expected),
        ))
    }
    fn delete<'a>(&'a self, key: &'a SessionKey, limit: Limit) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(timed(limit, SessionStore::delete(self, key)))
    }
    fn exists<'a>(
        &'a self,
        key: &'a SessionKey,
        limit: Limit,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(timed(limit, SessionStore::exists(self, key)))
    }
    fn load_now(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        immediate(SessionStore::load(self, key))
    }
    fn create_now(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        immediate(SessionStore::create(self, record))
    }
    fn save_now(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        immediate(SessionStore::save(self, key, record, expected))
    }
    fn touch_now(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        immediate(SessionStore::touch(self, key, record, expected))
    }
    fn delete_now(&self, key: &SessionKey) -> Result<(), Error> {
        immediate(SessionStore::delete(self, key))
    }
    fn exists_now(&self, key: &SessionKey) -> Result<bool, Error> {
        immediate(SessionStore::exists(self, key))
    }
    fn record_key(&self, key: &SessionKey) -> RecordKey {
        SessionStore::record_key(self, key)
    }
    fn user_id_key(&self) -> &str {
        SessionStore::user_id_key(self)
    }
    fn user_records<'a>(
        &'a self,
        user_id: &'a str,
        limit: Limit,
    ) -> BoxFuture<'a, Result<Vec<UserRecord>, Error>> {
        Box::pin(timed(limit, SessionStore::user_records(self, user_id)))
    }
    fn delete_record<'a>(
        &'a self,
        record_key: &'a RecordKey,
        limit: Limit,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(timed(limit, SessionStore::delete_record(self, record_key)))
    }
}
