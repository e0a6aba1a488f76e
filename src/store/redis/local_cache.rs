//! The bounded map behind `RedisStore::with_local_cache`: decoded records by session key,
//! and the bookkeeping that keeps a reply racing an invalidation from inserting a stale copy.
//!
//! Every insertion is made with a [`Ticket`] taken *before* the command that produced the
//! value was sent. The ticket holds the cache's generation (bumped whenever tracking goes
//! down, which also clears the map) and the invalidation counter of the key's stripe (bumped
//! by every invalidation push and every local write of a key in the stripe). An insertion
//! whose ticket no longer matches is dropped: something happened to that key, or to the
//! tracking connection, while the value was in flight, so it may be stale. Counters are
//! striped (a fixed number per shard) so that memory stays bounded whatever the keys; two
//! keys sharing a stripe only cost an insertion now and then.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hashlink::LruCache;

use crate::SessionKey;
use crate::store::{Data, LoadedRecord, Version};

/// At most this many shards (each one lock); fewer when the capacity is smaller.
const MAX_SHARDS: usize = 16;
/// Invalidation counters per shard.
const STRIPES: usize = 64;

/// A cached record: what `load` returns, and when it stops being valid.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) data: Data,
    pub(super) version: Version,
    /// The record's TTL in Redis, measured from before the command that read or wrote it was
    /// sent (so never later than the real expiry); `None` for a key without TTL.
    pub(super) deadline: Option<Instant>,
}

/// What an insertion must still match: see the module docs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ticket {
    generation: u64,
    counter: u64,
}

impl Ticket {
    /// The generation this ticket was taken in.
    pub(super) fn generation(self) -> u64 {
        self.generation
    }
}

struct Shard {
    entries: LruCache<SessionKey, Entry>,
    counters: [u64; STRIPES],
}

/// Decoded records by session key, at most `capacity` of them (least recently used evicted
/// first), served only while the tracking connection has proved recently that it is
/// delivering invalidations (the lease).
pub(super) struct LocalCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    generation: AtomicU64,
    /// Until when hits may be served, in nanoseconds after `epoch`; 0 while tracking is down.
    fresh_until: AtomicU64,
    epoch: Instant,
    capacity: usize,
}

impl LocalCache {
    /// An empty cache of at most `capacity` (≥ 1) records, not serving until
    /// [`renew`](Self::renew) is called.
    pub(super) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shard_count = capacity.min(MAX_SHARDS);
        // Floor: the shards together never hold more than `capacity`.
        let per_shard = capacity / shard_count;
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    entries: LruCache::new(per_shard),
                    counters: [0; STRIPES],
                })
            })
            .collect();
        Self {
            shards,
            hasher: foldhash::fast::RandomState::default(),
            generation: AtomicU64::new(0),
            fresh_until: AtomicU64::new(0),
            epoch: Instant::now(),
            capacity,
        }
    }

    /// The capacity this cache was made with.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    fn locate(&self, key: &str) -> (MutexGuard<'_, Shard>, usize) {
        let hash = self.hasher.hash_one(key);
        // Both indices are reductions modulo small numbers: the casts cannot lose anything
        // that matters.
        let shard = (hash % self.shards.len() as u64) as usize;
        let stripe = ((hash >> 32) % STRIPES as u64) as usize;
        let guard = self.shards[shard]
            .lock()
            // A panic while holding the lock leaves a consistent map (every operation on it
            // is a single call): keep using it.
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard, stripe)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether hits may be served now.
    pub(super) fn is_fresh(&self, now: Instant) -> bool {
        self.nanos(now) < self.fresh_until.load(Ordering::Acquire)
    }

    /// The cached record for `key`, if the cache is serving and holds a live one.
    pub(super) fn get(&self, key: &SessionKey) -> Option<LoadedRecord> {
        let now = Instant::now();
        if !self.is_fresh(now) {
            return None;
        }
        let (mut shard, _) = self.locate(key.as_str());
        let entry = shard.entries.get(key.as_str())?;
        if entry.deadline.is_some_and(|d| d <= now) {
            shard.entries.remove(key.as_str());
            return None;
        }
        Some(LoadedRecord {
            data: entry.data.clone(),
            version: entry.version.clone(),
            expiry_date: None,
        })
    }

    /// Whether `key` is cached (live or not), without touching its recency.
    pub(super) fn holds(&self, key: &str) -> bool {
        self.locate(key).0.entries.contains_key(key)
    }

    /// How many records are cached.
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }

    /// A ticket for reading `key` now, or `None` while the cache is not serving (the value
    /// read must then not be inserted).
    pub(super) fn ticket(&self, key: &SessionKey) -> Option<Ticket> {
        // The generation first: a clear bumps it before it stops serving, so a ticket that
        // sees serving carries either a generation the clear refuses or the new one, which
        // the next tracking connection's `start_generation` refuses in turn.
        let generation = self.generation.load(Ordering::Acquire);
        if !self.is_fresh(Instant::now()) {
            return None;
        }
        let (shard, stripe) = self.locate(key.as_str());
        Some(Ticket {
            generation,
            counter: shard.counters[stripe],
        })
    }

    /// Inserts `entry` for `key` if nothing invalidated the key (or the cache) since
    /// `ticket` was taken. Returns whether it was inserted.
    pub(super) fn insert(&self, ticket: Ticket, key: &SessionKey, entry: Entry) -> bool {
        let (mut shard, stripe) = self.locate(key.as_str());
        // Read under the shard's lock: `clear` bumps the generation before it takes each
        // shard's lock, so either this sees the new generation or the clear comes after.
        if self.generation.load(Ordering::Acquire) != ticket.generation
            || shard.counters[stripe] != ticket.counter
        {
            return false;
        }
        shard.entries.insert(key.clone(), entry);
        true
    }

    /// Drops `key` and bumps its stripe's counter, so that a value read before now is not
    /// inserted. For invalidation pushes and for each end of a local write.
    pub(super) fn invalidate(&self, key: &str) {
        let (mut shard, stripe) = self.locate(key);
        shard.counters[stripe] = shard.counters[stripe].wrapping_add(1);
        shard.entries.remove(key);
    }

    /// [`invalidate`](Self::invalidate) before a local write, returning the ticket that its
    /// result may be inserted with (`None` while the cache is not serving).
    pub(super) fn begin_write(&self, key: &SessionKey) -> Option<Ticket> {
        self.invalidate(key.as_str());
        self.ticket(key)
    }

    /// After a local write: inserts what it wrote (when given, and when the ticket still
    /// matches), then invalidates the key's stripe either way, so that a read sent before
    /// the write completed cannot insert the value it overwrote.
    pub(super) fn end_write(
        &self,
        ticket: Option<Ticket>,
        key: &SessionKey,
        written: Option<Entry>,
    ) {
        let (mut shard, stripe) = self.locate(key.as_str());
        let matches = ticket.is_some_and(|t| {
            self.generation.load(Ordering::Acquire) == t.generation
                && shard.counters[stripe] == t.counter
        });
        shard.counters[stripe] = shard.counters[stripe].wrapping_add(1);
        match written {
            Some(entry) if matches => {
                shard.entries.insert(key.clone(), entry);
            }
            _ => {
                shard.entries.remove(key.as_str());
            }
        }
    }

    /// Tracking is down: stop serving, refuse every insertion from an older ticket, and drop
    /// everything. The generation is bumped before serving stops, so that a renewal racing
    /// this sees the new generation and withdraws itself.
    pub(super) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.fresh_until.store(0, Ordering::Release);
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entries
                .clear();
        }
    }

    /// A new tracking connection is being opened: [`clear`](Self::clear) (a ticket taken
    /// while the last one was going down may have slipped an insertion in), and the
    /// generation the new connection belongs to.
    pub(super) fn start_generation(&self) -> u64 {
        self.clear();
        self.generation()
    }

    /// Redis flushed the database: drop everything and refuse every insertion in flight,
    /// while the tracking connection stays valid.
    pub(super) fn invalidate_all(&self) {
        for shard in &self.shards {
            let mut shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for counter in &mut shard.counters {
                *counter = counter.wrapping_add(1);
            }
            shard.entries.clear();
        }
    }

    /// The generation now: a tracking connection remembers the one it was opened in, so that
    /// a late report about it cannot affect its successor.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// [`clear`](Self::clear), unless that already happened after `generation`.
    pub(super) fn clear_if(&self, generation: u64) {
        if self.generation() == generation {
            self.clear();
        }
    }

    /// Every invalidation the server pushed before it answered a heartbeat sent at `sent` has
    /// been applied: serve hits until `sent + lease`, if still in `generation`.
    pub(super) fn renew(&self, generation: u64, sent: Instant, lease: Duration) {
        let until = self.nanos(sent + lease);
        self.fresh_until.fetch_max(until, Ordering::AcqRel);
        // A clear that raced this renewal wins.
        if self.generation() != generation {
            self.fresh_until.store(0, Ordering::Release);
        }
    }
}
