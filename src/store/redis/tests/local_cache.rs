//! The local cache's bookkeeping without a server: a read racing an invalidation or a local
//! write never inserts a stale copy, clears and flushes refuse reads in flight, the lease, the
//! capacity and the TTL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::local_cache::{Entry, LocalCache};
use crate::SessionKey;
use crate::store::Version;

fn entry(n: i64) -> Entry {
    let mut map = serde_json::Map::new();
    map.insert("n".into(), n.into());
    Entry {
        data: Arc::new(map),
        version: Version::from_bytes(n.to_string().into_bytes()),
        deadline: None,
    }
}

fn serving(capacity: usize) -> LocalCache {
    let cache = LocalCache::new(capacity);
    cache.renew(cache.generation(), Instant::now(), Duration::from_secs(60));
    cache
}

fn n(cache: &LocalCache, key: &SessionKey) -> Option<serde_json::Value> {
    cache.get(key).map(|r| r.data["n"].clone())
}

#[test]
fn a_read_racing_an_invalidation_is_not_inserted() {
    let cache = serving(10);
    let key = SessionKey::generate().expect("rng");
    let ticket = cache.ticket(&key).expect("serving");
    cache.invalidate(key.as_str());
    assert!(!cache.insert(ticket, &key, entry(1)));
    assert!(cache.get(&key).is_none());
    let ticket = cache.ticket(&key).expect("serving");
    assert!(cache.insert(ticket, &key, entry(2)));
    assert_eq!(n(&cache, &key), Some(2.into()));
}

#[test]
fn a_read_racing_a_local_write_never_overwrites_it() {
    let cache = serving(10);
    let key = SessionKey::generate().expect("rng");
    // Read sent before the write: refused whether it lands before or after the write.
    let early = cache.ticket(&key).expect("serving");
    let write = cache.begin_write(&key);
    assert!(!cache.insert(early, &key, entry(0)));
    // Read sent during the write, landing after it: refused.
    let during = cache.ticket(&key).expect("serving");
    cache.end_write(write, &key, Some(entry(1)));
    assert_eq!(n(&cache, &key), Some(1.into()));
    assert!(!cache.insert(during, &key, entry(0)));
    assert_eq!(n(&cache, &key), Some(1.into()));
    // Read sent during the write, landing before it: overwritten by the write.
    let write = cache.begin_write(&key);
    let during = cache.ticket(&key).expect("serving");
    assert!(cache.insert(during, &key, entry(1)));
    cache.end_write(write, &key, Some(entry(2)));
    assert_eq!(n(&cache, &key), Some(2.into()));
    // A write whose key was invalidated meanwhile caches nothing.
    let write = cache.begin_write(&key);
    cache.invalidate(key.as_str());
    cache.end_write(write, &key, Some(entry(3)));
    assert!(cache.get(&key).is_none());
}

#[test]
fn clearing_stops_serving_and_refuses_older_tickets() {
    let cache = serving(10);
    let key = SessionKey::generate().expect("rng");
    let ticket = cache.ticket(&key).expect("serving");
    assert!(cache.insert(ticket, &key, entry(1)));
    let old = cache.generation();
    let ticket = cache.ticket(&key).expect("serving");
    cache.clear();
    assert!(cache.get(&key).is_none());
    assert!(cache.ticket(&key).is_none(), "not serving once cleared");
    assert!(!cache.insert(ticket, &key, entry(2)));
    // A renewal for the old connection does not bring it back.
    cache.renew(old, Instant::now(), Duration::from_secs(60));
    assert!(cache.ticket(&key).is_none());
    cache.renew(cache.generation(), Instant::now(), Duration::from_secs(60));
    assert!(cache.ticket(&key).is_some());
    assert_eq!(cache.len(), 0);
}

#[test]
fn a_flush_drops_everything_and_refuses_reads_in_flight() {
    let cache = serving(10);
    let keys: Vec<_> = (0..5)
        .map(|_| SessionKey::generate().expect("rng"))
        .collect();
    for key in &keys {
        let ticket = cache.ticket(key).expect("serving");
        assert!(cache.insert(ticket, key, entry(1)));
    }
    let in_flight = cache.ticket(&keys[0]).expect("serving");
    cache.invalidate_all();
    assert_eq!(cache.len(), 0);
    assert!(!cache.insert(in_flight, &keys[0], entry(0)));
    // Still serving: the tracking connection is fine.
    let ticket = cache.ticket(&keys[0]).expect("serving");
    assert!(cache.insert(ticket, &keys[0], entry(2)));
}

#[test]
fn a_lapsed_lease_serves_nothing() {
    let cache = LocalCache::new(10);
    let key = SessionKey::generate().expect("rng");
    assert!(cache.ticket(&key).is_none(), "not serving before a renewal");
    cache.renew(cache.generation(), Instant::now(), Duration::ZERO);
    assert!(cache.ticket(&key).is_none());
}

#[test]
fn capacity_is_a_bound_and_expired_entries_do_not_load() {
    for capacity in [1, 7, 16, 100] {
        let cache = serving(capacity);
        for i in 0..capacity * 5 {
            let key = SessionKey::generate().expect("rng");
            let ticket = cache.ticket(&key).expect("serving");
            let i = i64::try_from(i).expect("small");
            assert!(cache.insert(ticket, &key, entry(i)));
            assert!(cache.len() <= capacity, "{} > {capacity}", cache.len());
        }
    }
    let cache = serving(4);
    let key = SessionKey::generate().expect("rng");
    let ticket = cache.ticket(&key).expect("serving");
    let mut expired = entry(1);
    expired.deadline = Some(Instant::now());
    assert!(cache.insert(ticket, &key, expired));
    assert!(cache.get(&key).is_none());
    assert!(!cache.holds(key.as_str()), "dropped when found expired");
}
