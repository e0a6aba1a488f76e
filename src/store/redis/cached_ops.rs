//! Where a `RedisStore` with a local cache sends each command, and what it caches: reads
//! from the cache or, with a ticket, from the tracking connection; writes invalidate the
//! key locally before they are sent and after they are answered, and a compare-and-swap
//! that wrote keeps its value cached. Without a cache (or while it is bypassed), everything
//! goes over the store's own connection and nothing is cached.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::RedisStore;
use super::connection::{Connection, is_transient, map_err};
use super::local_cache::{Entry, Ticket};
use crate::store::LoadedRecord;
use crate::{Error, SessionKey};

/// The connection a command goes over.
pub(super) enum Via {
    /// The tracking connection of the local cache.
    Tracking(MultiplexedConnection),
    /// The store's own connection.
    Store(Connection),
}

impl ConnectionLike for Via {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Tracking(c) => c.req_packed_command(cmd),
            Self::Store(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Tracking(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Store(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Tracking(c) => c.get_db(),
            Self::Store(c) => c.get_db(),
        }
    }
}

/// What a write stored, for the cache to keep.
pub(super) struct Written<'a> {
    /// The value now in Redis.
    pub(super) value: &'a [u8],
    /// When the command was sent.
    pub(super) sent: Instant,
    /// The TTL it was written with, in milliseconds (positive).
    pub(super) ttl_ms: i64,
}

/// `sent + ttl_ms`, or `None` when Redis keeps the key forever (a negative TTL).
fn deadline(sent: Instant, ttl_ms: i64) -> Option<Instant> {
    u64::try_from(ttl_ms)
        .ok()
        .and_then(|ms| sent.checked_add(Duration::from_millis(ms)))
}

impl RedisStore {
    /// `load` through the cache: a hit costs no round trip; a miss is `GET` and `PTTL` in one
    /// round trip on the tracking connection, cached if nothing invalidated the key meanwhile.
    pub(super) async fn cached_load(
        &self,
        key: &SessionKey,
    ) -> Result<Option<LoadedRecord>, Error> {
        let Some(tracked) = &self.cache else {
            return self.plain_load(key).await;
        };
        if let Some(hit) = tracked.cache().get(key) {
            return Ok(Some(hit));
        }
        let ticket = tracked.cache().ticket(key);
        let (Some(ticket), Some(mut connection)) = (ticket, tracked.connection(ticket)) else {
            return self.plain_load(key).await;
        };
        let full = self.full_key(key);
        let sent = Instant::now();
        let reply: Result<(Option<Vec<u8>>, i64), _> = redis::pipe()
            .cmd("GET")
            .arg(&full)
            .cmd("PTTL")
            .arg(&full)
            .query_async(&mut connection)
            .await;
        let (stored, pttl) = match reply {
            Ok(reply) => reply,
            // The tracking connection went down under this read: a read can be retried.
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %e, "Redis local cache: read retried on the store's connection");
                return self.plain_load(key).await;
            }
            Err(e) => return Err(map_err(e)),
        };
        let Some(loaded) = stored.and_then(|bytes| self.decode(bytes)) else {
            return Ok(None);
        };
        // -2: the key expired between the two commands.
        if pttl != -2 {
            let entry = Entry {
                data: loaded.data.clone(),
                version: loaded.version.clone(),
                deadline: deadline(sent, pttl),
            };
            tracked.cache().insert(ticket, key, entry);
        }
        Ok(Some(loaded))
    }

    /// Before a write of `key`: drops it from the cache, and picks the connection (the
    /// tracking one, with the ticket its result may be cached with, while the cache serves).
    pub(super) fn begin_write(&self, key: &SessionKey) -> (Option<Ticket>, Via) {
        if let Some(tracked) = &self.cache {
            let ticket = tracked.cache().begin_write(key);
            if let Some(connection) = tracked.connection(ticket) {
                return (ticket, Via::Tracking(connection));
            }
        }
        (None, Via::Store(self.connection.clone()))
    }

    /// After a write of `key` (answered or failed): drops it from the cache again, or caches
    /// what it wrote (`written`, when the write stored a live value) if its ticket still
    /// matches. Decoding the value written (rather than keeping the record given) makes the
    /// cached copy exactly what a load from Redis would return.
    pub(super) fn end_write(
        &self,
        key: &SessionKey,
        ticket: Option<Ticket>,
        written: Option<Written<'_>>,
    ) {
        let Some(tracked) = &self.cache else {
            return;
        };
        let entry = match (ticket, written) {
            (Some(_), Some(w)) => self.decode(w.value.to_vec()).map(|loaded| Entry {
                data: loaded.data,
                version: loaded.version,
                deadline: deadline(w.sent, w.ttl_ms),
            }),
            _ => None,
        };
        tracked.cache().end_write(ticket, key, entry);
    }
}
