//! The connections of the PostgreSQL and MySQL stores: opened with the settings of an sqlx
//! pool, kept by the store, and given back without a round trip.
//!
//! sqlx 0.8's pool pings every connection given back to it (`Floating::return_to_pool` in
//! sqlx-core 0.8.6's `pool/connection.rs`; no option turns it off, `after_release` only adds
//! a check before it): on PostgreSQL a `Sync` and its `ReadyForQuery` after each statement,
//! which made `benches/calls.rs` count 2 round trips per store call, and 1 with this pool. The
//! ping did two jobs, done here without the network:
//! - a connection whose statement did not end cleanly is not reused: a call cancelled by
//!   `store_timeout` leaves its lease unsettled, and an error that is not the server's
//!   answer to the statement (I/O, protocol) discards the connection ([`Lease::run`]);
//! - a connection the server dropped is found by the next statement on it, which fails
//!   (503) and discards it. An error that says the server went away (a reset connection,
//!   an administrator's shutdown) also drops the idle connections, opened before it and as
//!   dead, so that after a restart one call fails instead of one per idle connection.
//!
//! A semaphore bounds the connections (leased plus connecting) by the sqlx pool's
//! `max_connections`, and idle ones wait in a last-in-first-out list (the warm ones, whose
//! prepared statements are cached, are reused first); `max_lifetime` and `idle_timeout` are
//! checked when a connection is taken, and `idle_timeout` again at the bottom of the list
//! when one comes back (there is no reaper task). deadpool's managed pool could hold the
//! connections too, but with a manager, a flag for its recycle hook and a builder error that
//! cannot happen here; this is the little of a pool the stores need, on tokio's semaphore.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::store::Backend;

/// Connections of the store's own, made and bounded as `origin` would make and bound its
/// own. Cloning is cheap and shares the connections.
pub(crate) struct OwnPool<DB: Database> {
    inner: Arc<Inner<DB>>,
}

impl<DB: Database> Clone for OwnPool<DB> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<DB: Database> {
    /// Whose connect options (read for each new connection, so that
    /// `Pool::set_connect_options` applies), sizes and timeouts these connections follow;
    /// once it is closed, so is this.
    origin: Pool<DB>,
    /// One per connection, leased or being opened.
    permits: Arc<Semaphore>,
    /// Last in, first out.
    idle: Mutex<Vec<Idle<DB>>>,
}

struct Idle<DB: Database> {
    conn: DB::Connection,
    opened: Instant,
    since: Instant,
}

impl<DB: Database> OwnPool<DB> {
    /// Connections with `origin`'s connect options, `max_connections`, `acquire_timeout`,
    /// `max_lifetime` and `idle_timeout`; none of its connections.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn new(origin: Pool<DB>) -> Self {
        let max = origin.options().get_max_connections() as usize;
        Self {
            inner: Arc::new(Inner {
                origin,
                permits: Arc::new(Semaphore::new(max)),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A connection, idle or new, within the origin's `acquire_timeout` (which, as in sqlx,
    /// covers opening one).
    pub(crate) async fn acquire(&self) -> Result<Lease<DB>, sqlx::Error> {
        let timeout = self.inner.origin.options().get_acquire_timeout();
        tokio::time::timeout(timeout, self.lease())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map(Lease::Own)
    }

    async fn lease(&self) -> Result<Own<DB>, sqlx::Error> {
        if self.inner.origin.is_closed() {
            self.inner.drop_idle("the pool is closed");
            return Err(sqlx::Error::PoolClosed);
        }
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let (conn, opened) = match self.inner.take_idle() {
            Some(idle) => (idle.conn, idle.opened),
            None => {
                let options = self.inner.origin.connect_options();
                (
                    DB::Connection::connect_with(&options).await?,
                    Instant::now(),
                )
            }
        };
        Ok(Own {
            conn: Some((conn, opened)),
            settled: true,
            inner: Arc::clone(&self.inner),
            _permit: permit,
        })
    }
}

impl<DB: Database> Inner<DB> {
    /// The most recently used idle connection still within `max_lifetime` and
    /// `idle_timeout`; those beyond are closed (dropped) on the way.
    fn take_idle(&self) -> Option<Idle<DB>> {
        let options = self.origin.options();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(candidate) = idle.pop() {
            if within(options.get_max_lifetime(), candidate.opened)
                && within(options.get_idle_timeout(), candidate.since)
            {
                return Some(candidate);
            }
        }
        None
    }

    /// Puts a connection back on top of the idle list, and closes those at the bottom that
    /// have been idle beyond `idle_timeout` (with no task to reap them, connections a burst
    /// opened go when the calls after it no longer reach them).
    fn give_back(&self, conn: DB::Connection, opened: Instant) {
        let idle_timeout = self.origin.options().get_idle_timeout();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Oldest first: the list is in the order connections came back.
        let stale = idle
            .iter()
            .take_while(|i| !within(idle_timeout, i.since))
            .count();
        idle.drain(..stale);
        idle.push(Idle {
            conn,
            opened,
            since: Instant::now(),
        });
    }

    /// Closes (drops) every idle connection.
    fn drop_idle(&self, why: &'static str) {
        let dropped =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        if !dropped.is_empty() {
            tracing::debug!(count = dropped.len(), why, "closing the idle connections");
        }
    }
}

/// Whether `since` is less than `limit` ago (no limit: always).
fn within(limit: Option<Duration>, since: Instant) -> bool {
    limit.is_none_or(|limit| since.elapsed() < limit)
}

/// A connection leased from an [`OwnPool`]: back to its idle list when dropped settled,
/// closed otherwise.
pub(crate) struct Own<DB: Database> {
    conn: Option<(DB::Connection, Instant)>,
    /// Whether the last statement ended with the connection in step with the server.
    settled: bool,
    inner: Arc<Inner<DB>>,
    /// Released after `drop` has put the connection back, so that a waiter finds it.
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> Drop for Own<DB> {
    fn drop(&mut self) {
        if let Some((conn, opened)) = self.conn.take()
            && self.settled
            && !self.inner.origin.is_closed()
        {
            self.inner.give_back(conn, opened);
        }
    }
}

/// A connection for a store call's statements: one of the store's own, or one of the sqlx
/// pool's (SQLite, whose ping on release does not leave the process).
pub(crate) enum Lease<DB: Database> {
    Own(Own<DB>),
    Pooled(PoolConnection<DB>),
}

/// What an error says about the connection it came from.
#[derive(Debug, PartialEq, Eq)]
enum After {
    /// The server answered the statement with an error: the connection is in step.
    Keep,
    /// Unknown state (a protocol or decoding error): not reused.
    Discard,
    /// The server or the network dropped it: not reused, and neither are the idle ones.
    Lost,
}

fn after<B: Backend>(error: &sqlx::Error) -> After {
    match error {
        sqlx::Error::Database(db) if B::is_disconnect(db.as_ref()) => After::Lost,
        sqlx::Error::Database(_) => After::Keep,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => After::Lost,
        _ => After::Discard,
    }
}

impl<DB: Database> Lease<DB> {
    /// Runs one statement (or one transaction) on the connection. Until it has ended, the
    /// connection counts as out of step: a call cancelled meanwhile (by `store_timeout`, say)
    /// drops the lease with the connection unsettled, and it is closed rather than reused.
    pub(crate) async fn run<'c, B, T, F>(
        &'c mut self,
        statement: impl FnOnce(&'c mut DB::Connection) -> F,
    ) -> Result<T, sqlx::Error>
    where
        B: Backend<Db = DB>,
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let own = match self {
            Self::Pooled(conn) => return statement(conn).await,
            Self::Own(own) => own,
        };
        let Own {
            conn: Some((conn, _)),
            settled,
            inner,
            ..
        } = own
        else {
            // Not reached: only `drop` takes the connection.
            return Err(sqlx::Error::PoolClosed);
        };
        *settled = false;
        let result = statement(conn).await;
        match result.as_ref().map_err(after::<B>) {
            Ok(_) | Err(After::Keep) => *settled = true,
            Err(After::Discard) => {}
            Err(After::Lost) => inner.drop_idle("the server closed a connection"),
        }
        result
    }
}
