//! A session's state, and Django's lazy load on first use.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, MutexGuard};

use serde_json::{Map, Value};

use super::Shared;
use super::changes::Changes;
use super::expiry::{is_acceptable, stored_expiry};
use crate::events::SessionEventKind;
use crate::store::{Data, LoadedRecord, Version};
use crate::{DictKey, Expiry, SessionKey};

/// An empty map, shared per thread: no allocation, and no reference count that every core
/// writes to (as one shared for the process would be).
pub(super) fn empty() -> Data {
    thread_local! {
        static EMPTY: Data = Arc::new(Map::new());
    }
    EMPTY.with(Arc::clone)
}

#[derive(Default)]
pub(super) struct State {
    pub(super) key: Option<SessionKey>,
    /// Django's `_session_cache`: `None` until the first dictionary operation.
    pub(super) loaded: Option<Data>,
    /// What the store returned for `key` before the first dictionary operation, so that the
    /// data can be read synchronously while Django's lazy-load flags stay exact.
    /// `None` inside means the store had no such record.
    pub(super) fetched: Option<Option<LoadedRecord>>,
    /// The version of the stored record `loaded` came from.
    pub(super) version: Version,
    pub(super) changes: Changes,
    pub(super) accessed: bool,
    pub(super) modified: bool,
    /// This session's place in its key's chain of saves (a store behind I/O), from the read
    /// of its record on.
    pub(super) link: Option<super::chain::LinkHandle>,
}

impl State {
    pub(super) fn new(key: Option<SessionKey>) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// `is_empty()` in Django's sense: no key, and nothing loaded or an empty dict.
    pub(super) fn is_empty(&self) -> bool {
        self.key.is_none() && self.loaded.as_ref().is_none_or(|d| d.is_empty())
    }

    /// The key whose record must be read before the first dictionary operation, if any.
    pub(super) fn pending_fetch(&self) -> Option<SessionKey> {
        match &self.key {
            Some(key) if self.loaded.is_none() && self.fetched.is_none() => Some(key.clone()),
            _ => None,
        }
    }
}

/// The state under its lock, with what a first load needs.
pub(super) struct Locked<'a> {
    pub(super) state: MutexGuard<'a, State>,
    pub(super) shared: &'a Shared,
}

impl Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Locked<'_> {
    /// Django's `_get_session`: marks the session accessed and loads its data on first use.
    pub(super) fn data(&mut self) -> &mut Data {
        self.accessed = true;
        let data = match self.loaded.take() {
            Some(data) => data,
            None => self.first_load(),
        };
        self.loaded.insert(data)
    }

    /// Loads what the store returned (Django's `load()`), without marking it accessed.
    pub(super) fn load_fetched(&mut self) {
        if self.loaded.is_none() {
            let data = self.first_load();
            self.loaded = Some(data);
        }
    }

    fn first_load(&mut self) -> Data {
        if self.state.key.is_none() {
            return empty();
        }
        let fetched = match self.state.fetched.take() {
            Some(fetched) => fetched,
            None => self.load_now(),
        };
        match fetched {
            Some(record) => {
                self.version = record.version;
                record.data
            }
            None => {
                // Unknown or expired: Django's load() drops the key, so a save creates a new
                // one and the client's key is never adopted.
                let key = self.key.take();
                let kind = SessionEventKind::ExpiredOnLoad;
                crate::events::emit_for(&self.shared.config, kind, key.as_ref());
                empty()
            }
        }
    }

    /// The record of a session used before it was read: a store that answers at once is
    /// read right here, under the lock (stores never take a session's lock, so the order
    /// cannot deadlock).
    fn load_now(&self) -> Option<LoadedRecord> {
        let key = self.state.key.as_ref()?;
        match self.shared.store.load_now(key) {
            Some(Ok(record)) => record.filter(|r| is_acceptable(&self.shared.config, &r.data)),
            Some(Err(error)) => {
                tracing::error!(%error, "loading the session failed; treating it as empty");
                None
            }
            // A store behind I/O is read before a handler sees the session (the extractor,
            // `Session::from_extensions`); failing closed keeps a key whose record was never
            // read from being adopted.
            None => {
                tracing::error!(
                    "session used before its record was read (take it with the extractor or \
                     Session::from_extensions); treating it as empty"
                );
                None
            }
        }
    }

    pub(super) fn data_mut(&mut self) -> &mut Map<String, Value> {
        Arc::make_mut(self.data())
    }

    /// Takes the key borrowed: replacing a value needs no new `String`.
    pub(super) fn set<K: DictKey>(&mut self, key: K, value: Value) {
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

    pub(super) fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.data().contains_key(key) {
            return None;
        }
        self.changes.touch(key);
        self.modified = true;
        self.data_mut().shift_remove(key)
    }

    pub(super) fn clear(&mut self) {
        self.accessed = true;
        self.modified = true;
        self.fetched = None;
        self.loaded = Some(empty());
        self.changes.clear_all();
    }

    pub(super) fn stored_expiry(&mut self) -> Option<Expiry> {
        stored_expiry(self.data())
    }
}
