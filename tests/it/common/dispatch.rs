//! The two dispatch paths of the library, for suites that must hold on both.
//!
//! `Session` and the layer call the built-in `MemoryStore` directly: no boxed future, no
//! `store_timeout`, and the layer completes its save in place when the store answers at once.
//! Every other store goes through a boxed future under the timeout, as a network store must.
//! [`IoStore`] puts a `MemoryStore` on that second path, using the public API only: each call
//! is pending once before it reaches the inner store, as a call that waits on a socket is.
//!
//! [`on_both_paths!`](crate::common::on_both_paths) turns generic test functions (`fn
//! name<S: SuiteStore>()`) into two tests each, `memory::name` and `io::name`.

use sessionbase::store::{
    LoadedRecord, Record, RecordKey, SaveOutcome, SessionStore, UserRecord, Version,
};
use sessionbase::{Error, MemoryStore, SessionKey};

/// A store doing "I/O": every call yields to the runtime once (so its future is pending
/// once, as a network store's is), then delegates to the inner store. Clones share the inner
/// store when its clones share their data, as `MemoryStore`'s do.
#[derive(Clone, Debug, Default)]
pub struct IoStore<S>(pub S);

impl<S: SessionStore> SessionStore for IoStore<S> {
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        self.0.parse_key(cookie_value)
    }

    // Not `is_immediate`: the point of the wrapper is the I/O path.
    fn configured(&self, config: &sessionbase::SessionConfig) -> Option<Self> {
        self.0.configured(config).map(IoStore)
    }

    fn check_config(&self, config: &sessionbase::SessionConfig) -> Result<(), Error> {
        self.0.check_config(config)
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        tokio::task::yield_now().await;
        self.0.load(key).await
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        tokio::task::yield_now().await;
        self.0.create(record).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        tokio::task::yield_now().await;
        self.0.save(key, record, expected).await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        tokio::task::yield_now().await;
        self.0.touch(key, record, expected).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        tokio::task::yield_now().await;
        self.0.delete(key).await
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        tokio::task::yield_now().await;
        self.0.exists(key).await
    }

    async fn clear_expired(&self) -> Result<(), Error> {
        tokio::task::yield_now().await;
        self.0.clear_expired().await
    }

    fn record_key(&self, key: &SessionKey) -> RecordKey {
        self.0.record_key(key)
    }

    fn user_id_key(&self) -> &str {
        self.0.user_id_key()
    }

    async fn user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        tokio::task::yield_now().await;
        self.0.user_records(user_id).await
    }

    async fn delete_record(&self, record_key: &RecordKey) -> Result<(), Error> {
        tokio::task::yield_now().await;
        self.0.delete_record(record_key).await
    }
}

/// A store the Session API and HTTP suites run on: `MemoryStore` itself (the direct path) or
/// `IoStore<MemoryStore>` (the path of stores doing I/O). Either way a `MemoryStore` holds
/// the records, so a test can count them.
pub trait SuiteStore: SessionStore + Clone {
    /// A new, empty store.
    fn new_store() -> Self;
    /// How many records the store holds (expired ones included): `MemoryStore::len`.
    fn len(&self) -> usize;
    /// Whether the store holds no record: `MemoryStore::is_empty`.
    fn is_empty(&self) -> bool;
}

impl SuiteStore for MemoryStore {
    fn new_store() -> Self {
        MemoryStore::new()
    }
    fn len(&self) -> usize {
        MemoryStore::len(self)
    }
    fn is_empty(&self) -> bool {
        MemoryStore::is_empty(self)
    }
}

impl SuiteStore for IoStore<MemoryStore> {
    fn new_store() -> Self {
        IoStore(MemoryStore::new())
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Instantiates generic tests of the enclosing module on both dispatch paths: for each
/// entry, a test `memory::name` running `name::<MemoryStore>` and a test `io::name` running
/// `name::<IoStore<MemoryStore>>`. Entries are `#[test] fn name;` for a synchronous
/// `fn name<S: SuiteStore>()`, and `#[tokio::test(...)] async fn name;` (any attribute) for
/// an `async fn name<S: SuiteStore>()`.
macro_rules! on_both_paths {
    (@store $store:ty;) => {};
    (@store $store:ty; #[test] fn $name:ident; $($rest:tt)*) => {
        #[test]
        fn $name() {
            super::$name::<$store>()
        }
        $crate::common::on_both_paths!(@store $store; $($rest)*);
    };
    (@store $store:ty; #[$($attr:tt)*] async fn $name:ident; $($rest:tt)*) => {
        #[$($attr)*]
        async fn $name() {
            super::$name::<$store>().await
        }
        $crate::common::on_both_paths!(@store $store; $($rest)*);
    };
    ($($tests:tt)*) => {
        /// On `MemoryStore`, which the library calls directly.
        mod memory {
            $crate::common::on_both_paths!(@store ::sessionbase::MemoryStore; $($tests)*);
        }
        /// On `IoStore<MemoryStore>`, whose calls are pending once, as a network store's are.
        mod io {
            $crate::common::on_both_paths!(
                @store $crate::common::IoStore<::sessionbase::MemoryStore>; $($tests)*
            );
        }
    };
}
pub(crate) use on_both_paths;

/// The premise of the `io` half of the suites: an `IoStore` call is pending at its first
/// poll, and then answers what the inner store answers.
#[tokio::test]
async fn io_store_calls_are_pending_once_then_delegate() {
    use std::task::{Context, Poll, Waker};
    let store = IoStore(MemoryStore::new());
    let key = SessionKey::generate().expect("rng");
    let mut call = std::pin::pin!(store.exists(&key));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(call.as_mut().poll(&mut cx).is_pending());
    match call.as_mut().poll(&mut cx) {
        Poll::Ready(exists) => assert!(!exists.expect("exists")),
        Poll::Pending => panic!("pending twice"),
    }
}
