//! The keys a request changed since its last save.

use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock};

use arrayvec::ArrayVec;
use serde_json::{Map, Value};

use crate::store::Data;

/// The keys this request changed since the last save, so that a save that lost a race can
/// be re-applied on top of the record as it is now.
///
/// Keys are remembered by a 64-bit hash under a per-process random seed: recording one costs
/// no allocation (the first few live inline), and a re-application finds the keys again in
/// the maps it merges.
#[derive(Clone, Default)]
pub(super) struct Changes {
    /// `clear` or `flush` ran: nothing stored before survives.
    cleared: bool,
    touched: ArrayVec<u64, INLINE_CHANGES>,
    /// Beyond the first [`INLINE_CHANGES`] keys.
    more: Vec<u64>,
    /// Bumped by every change, so a save can tell whether changes arrived while it ran.
    pub(super) generation: u64,
}

/// Changed keys remembered without allocating.
const INLINE_CHANGES: usize = 6;

static KEY_HASHER: LazyLock<foldhash::fast::RandomState> = LazyLock::new(Default::default);

fn key_hash(key: &str) -> u64 {
    KEY_HASHER.hash_one(key)
}

impl Changes {
    pub(super) fn touch(&mut self, key: &str) {
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

    pub(super) fn clear_all(&mut self) {
        self.cleared = true;
        self.touched.clear();
        self.more.clear();
        self.generation += 1;
    }

    /// `base` (the record as stored now) with this request's changes, read from `mine`,
    /// applied on top.
    pub(super) fn apply(&self, base: &Data, mine: &Map<String, Value>) -> Data {
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
