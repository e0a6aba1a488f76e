//! `Session`: Django's `SessionBase` API.
//!
//! Dictionary operations are synchronous and never wait on the store; operations that talk to
//! the store are `async`. Flags move exactly as in Django: see the table in the crate docs.
//!
//! - `state.rs`: the session's state and Django's lazy first load; `changes.rs`: which keys
//!   this request changed, so that a save that lost a race re-applies them;
//! - `dict.rs`: the dictionary operations; `expiry.rs`: `set_expiry` and the age and date
//!   arithmetic over the stored expiry;
//! - `save.rs`: the store operations (`save`, `create`, `delete`, `flush`, `cycle_key`, …);
//!   `touch.rs`: the middleware's save of a session nothing changed (the expiry alone);
//! - `size.rs`: `max_session_size`; `extract.rs`: taking the request's session (the axum
//!   extractor and [`Session::from_extensions`]).
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
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::Store;
use crate::{Error, SessionConfig, SessionKey, SessionStore};
use state::{Locked, State};

mod chain;
mod changes;
mod dict;
mod expiry;
mod extract;
mod group;
mod recycle;
mod save;
mod size;
mod state;
mod touch;
mod user_sessions;

pub(crate) use expiry::created_at;

/// One request's session: Django's `request.session`.
///
/// A cheap-to-clone handle: clones share the same state. Handlers take it as an axum
/// extractor (`session: Session`); any Tower service finds it in the request's extensions
/// ([`Session::from_extensions`]); outside a request, build one with [`Session::new`] or
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
    shared: Arc<Shared>,
    state: Mutex<State>,
}

/// Where sessions live and how they behave: shared by every session of a layer (or of one
/// [`Session::new`]) behind one reference count.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) config: Arc<SessionConfig>,
    /// This process's saves in progress, per key, for a store behind I/O.
    chains: Arc<chain::SaveChains>,
}

impl Shared {
    /// `store` as the sessions of `config` use it (see [`SessionStore::configured`]).
    pub(crate) fn new(store: Store, config: Arc<SessionConfig>) -> Self {
        Self {
            chains: chain::SaveChains::of(store.identity(), &config),
            store: store.configured(&config),
            config,
        }
    }
}

/// The flags Django's middleware reads after the view: `accessed`, `modified`, `is_empty()`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flags {
    pub(crate) accessed: bool,
    pub(crate) modified: bool,
    pub(crate) empty: bool,
}

impl Session {
    /// An empty session with no key, on `store`: Django's `SessionStore()`.
    pub fn new<S: SessionStore>(store: S, config: impl Into<Arc<SessionConfig>>) -> Self {
        let shared = Shared::new(Store::new(store), config.into());
        Self::with_parts(Arc::new(shared), None)
    }

    /// The session stored under `key`: Django's `SessionStore(key)` followed by a load.
    /// An unknown, expired or malformed key gives an empty session with no key.
    pub async fn load<S: SessionStore>(
        store: S,
        config: impl Into<Arc<SessionConfig>>,
        key: &str,
    ) -> Result<Self, Error> {
        let shared = Arc::new(Shared::new(Store::new(store), config.into()));
        let key = shared.store.parse_key(key);
        let session = Self::with_parts(shared, key);
        session.fetch().await?;
        session.state().load_fetched();
        Ok(session)
    }

    /// A session of `shared` whose cookie named `key`; nothing is read from the store yet.
    pub(crate) fn with_parts(shared: Arc<Shared>, key: Option<SessionKey>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                state: Mutex::new(State::new(key)),
            }),
        }
    }

    fn state(&self) -> Locked<'_> {
        Locked {
            // A panic elsewhere while holding the lock leaves plain data behind; keep serving it.
            state: self
                .inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            shared: &self.inner.shared,
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The configuration this session follows.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.shared.config
    }

    /// `accessed`, `modified` and `is_empty()` in one look.
    pub(crate) fn flags(&self) -> Flags {
        let state = self.state();
        Flags {
            accessed: state.accessed,
            modified: state.modified,
            empty: state.is_empty(),
        }
    }

    /// Whether the session's store answers every call at once.
    pub(crate) fn store_is_immediate(&self) -> bool {
        self.shared().store.is_immediate()
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
