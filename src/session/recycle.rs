//! Reusing a finished request's session allocation for the next request on the same thread.
//!
//! Every request gets a `Session` in its extensions, and a `Session` is shared (the layer
//! and the handler both hold it), so each is one reference-counted allocation; the
//! extensions' box is a second. Handing finished sessions back to a small per-thread pool
//! keeps an untouched request at one allocation over bare. A pooled session holds no store
//! (it points at an idle placeholder), so a pool never keeps a dropped layer's store alive.

use std::cell::RefCell;
use std::sync::{Arc, PoisonError};

use super::state::State;
use super::{Inner, Session, Shared};
use crate::store::{LoadedRecord, Record, SaveOutcome, SessionStore, Store, Version};
use crate::{Error, SessionConfig, SessionKey};

/// Sessions kept per thread: enough for the requests one worker interleaves.
const POOL_SIZE: usize = 32;

thread_local! {
    static POOL: RefCell<Vec<Arc<Inner>>> = const { RefCell::new(Vec::new()) };
    /// What pooled sessions point at instead of a layer's store.
    static IDLE: Arc<Shared> = Arc::new(Shared::new(
        Store::new(Idle),
        Arc::new(SessionConfig::default()),
    ));
}

/// The store of a pooled session: never called (a session leaves the pool with its layer's
/// store), and failing if it were.
struct Idle;

fn idle() -> Error {
    Error::store("a pooled session was used")
}

impl SessionStore for Idle {
    async fn load(&self, _key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        Err(idle())
    }
    async fn create(&self, _record: &Record) -> Result<(SessionKey, Version), Error> {
        Err(idle())
    }
    async fn save(
        &self,
        _key: &SessionKey,
        _record: &Record,
        _expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        Err(idle())
    }
    async fn delete(&self, _key: &SessionKey) -> Result<(), Error> {
        Err(idle())
    }
    async fn exists(&self, _key: &SessionKey) -> Result<bool, Error> {
        Err(idle())
    }
    async fn clear_expired(&self) -> Result<(), Error> {
        Err(idle())
    }
}

impl Session {
    /// A session of `shared` for a request whose cookie named `key`, reusing a pooled
    /// allocation when this thread has one.
    pub(crate) fn for_request(shared: &Arc<Shared>, key: Option<SessionKey>) -> Self {
        let pooled = POOL.try_with(|pool| pool.borrow_mut().pop());
        if let Ok(Some(mut inner)) = pooled
            && let Some(slot) = Arc::get_mut(&mut inner)
        {
            slot.shared = Arc::clone(shared);
            *slot.state.get_mut().unwrap_or_else(PoisonError::into_inner) = State::new(key);
            return Self { inner };
        }
        Self::with_parts(Arc::clone(shared), key)
    }

    /// Hands the allocation to this thread's pool when no other handle is left (a handler
    /// that kept a clone, in a spawned task say, keeps the session as it is).
    pub(crate) fn recycle(mut self) {
        let Some(inner) = Arc::get_mut(&mut self.inner) else {
            return;
        };
        // The data and the layer's store are let go now, not when the slot is reused.
        *inner
            .state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = State::default();
        // During the thread's teardown there is no pool any more: the session is dropped.
        let Ok(idle) = IDLE.try_with(Arc::clone) else {
            return;
        };
        inner.shared = idle;
        let inner = self.inner;
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_SIZE {
                pool.push(inner);
            }
        });
    }
}
