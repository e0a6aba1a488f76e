//! Saves of one session within this process, queued and chained.
//!
//! Without this, concurrent requests on one session (a single-page app firing parallel
//! requests with one cookie) all load the same version, and every save after the first loses
//! its compare-and-swap and must reload: on a store behind I/O each loser pays round trips
//! and the losers collide again. Chained, the saves of a key wait for each other here, and
//! each applies its own changes on top of what the previous one wrote, with that write's
//! version: only a save from another process can still make a compare-and-swap fail. The
//! store's compare-and-swap stays the guarantee; this only keeps this process's saves from
//! racing each other.
//!
//! A session joins its key's link when it reads its record, and holds it until it is
//! dropped, so the last write stays known as long as a request that loaded an older version
//! may still save. Stores that answer at once are not chained: their saves take microseconds
//! and a lost race is retried at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::MutexGuard;

use crate::SessionKey;
use crate::store::{Data, Version};

/// What the last save of a key in this process wrote.
pub(super) struct Written {
    pub(super) version: Version,
    pub(super) data: Data,
}

type Link = Arc<tokio::sync::Mutex<Option<Written>>>;

/// The keys in use by this process's requests, each with the last write of it.
#[derive(Default)]
pub(crate) struct SaveChains {
    links: Mutex<HashMap<SessionKey, Link>>,
}

/// A session's place in its key's chain, held from its read to its end.
pub(super) struct LinkHandle {
    chains: Arc<SaveChains>,
    key: SessionKey,
    link: Link,
}

/// The right to save a key now, and the last write before this one.
pub(super) struct ChainGuard<'a> {
    last: MutexGuard<'a, Option<Written>>,
}

impl SaveChains {
    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Link>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the chain of `key`.
    pub(super) fn join(self: &Arc<Self>, key: &SessionKey) -> LinkHandle {
        let link = Arc::clone(self.links().entry(key.clone()).or_default());
        LinkHandle {
            chains: Arc::clone(self),
            key: key.clone(),
            link,
        }
    }
}

impl LinkHandle {
    /// Whether this is the chain of `key`.
    pub(super) fn is_for(&self, key: &SessionKey) -> bool {
        self.key == *key
    }

    /// Waits for the saves of the key already under way in this process.
    pub(super) async fn acquire(&self) -> ChainGuard<'_> {
        ChainGuard {
            last: self.link.lock().await,
        }
    }
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        let mut links = self.chains.links();
        // Held by the map and this handle alone: no request of this process uses the key
        // any more, so the entry goes.
        if links
            .get(&self.key)
            .is_some_and(|link| Arc::strong_count(link) == 2)
        {
            links.remove(&self.key);
        }
    }
}

impl ChainGuard<'_> {
    /// What the previous save of this key wrote, if one did.
    pub(super) fn last(&self) -> Option<&Written> {
        self.last.as_ref()
    }

    /// Records this save's write for the next one.
    pub(super) fn wrote(&mut self, written: Written) {
        *self.last = Some(written);
    }

    /// The key is gone from the store, or a write's outcome is unknown: the next save must
    /// not build on it.
    pub(super) fn forget(&mut self) {
        *self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_save_sees_the_previous_write_and_the_map_empties() {
        let chains = Arc::new(SaveChains::default());
        let key = SessionKey::generate().unwrap();
        let (a, b) = (chains.join(&key), chains.join(&key));
        let mut first = a.acquire().await;
        assert!(first.last().is_none());
        {
            let waiting = b.acquire();
            let mut waiting = std::pin::pin!(waiting);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
            first.wrote(Written {
                version: Version::from_counter(7),
                data: Arc::default(),
            });
            drop(first);
            let second = match waiting.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(guard) => guard,
                std::task::Poll::Pending => panic!("still waiting"),
            };
            assert_eq!(
                second.last().map(|w| w.version.clone()),
                Some(Version::from_counter(7))
            );
            drop(second);
        }
        // The write stays known while a session of the key is in use.
        drop(a);
        assert_eq!(chains.links().len(), 1);
        drop(b);
        assert!(chains.links().is_empty());
    }
}
