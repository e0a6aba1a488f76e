//! The tracking connection of `RedisStore::with_local_cache`: one RESP3 connection with
//! `CLIENT TRACKING ON NOLOOP`, kept open by a background task, that applies Redis's
//! invalidation pushes to the [`LocalCache`] and carries the cached store's commands while
//! it is up.
//!
//! - Redis pushes an invalidation for a key this connection has read, at the first change
//!   of it by anyone, and then stops tracking the key until it is read again. So every value
//!   cached was read on this connection: a load's `GET`, and the `EXISTS` that the save and
//!   create scripts run after their write (`scripts.rs`).
//! - NOLOOP, and the store's own writes sent on this connection: this instance is not told
//!   about its own writes, so the value a compare-and-swap just wrote can stay cached. (Not
//!   the broadcast mode, `BCAST`: Redis 7.0 credits a script's writes to its Lua client
//!   there, so NOLOOP would not hide the save's own write.)
//! - Pushes are applied synchronously by the connection's reader, in the order they arrive,
//!   before any later reply on the connection is handed over. So when a heartbeat `PING`
//!   sent at `t` is answered, every invalidation for a write Redis ran before `t` has been
//!   applied: hits are served only until `t + LEASE` (the lease), so a tracking connection
//!   that lags or dies silently stops the cache within `LEASE`, and one that closes stops it
//!   at once (the reader reports the disconnection).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::connection::{CONNECTION_TIMEOUT, RECONNECT_MAX_DELAY, RESPONSE_TIMEOUT};
use super::local_cache::{LocalCache, Ticket};
use crate::Error;

/// How often the tracking connection is checked.
const HEARTBEAT: Duration = Duration::from_millis(100);
/// How long after a heartbeat was sent hits may be served on the strength of its answer; also
/// how long a heartbeat may take before the connection counts as lost.
const LEASE: Duration = RESPONSE_TIMEOUT;
/// The first pause before reopening a lost tracking connection (doubling up to
/// `RECONNECT_MAX_DELAY`).
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// What the tracking connection is called in `CLIENT LIST`.
const CLIENT_NAME: &str = "sessionbase-local-cache";

/// What the store and the background task share.
struct Shared {
    cache: LocalCache,
    prefix: Arc<str>,
    /// The open tracking connection and the cache generation it belongs to.
    live: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// The tracking connection's `CLIENT ID`, 0 while there is none.
    client_id: AtomicI64,
    /// Woken on every invalidation and clear (for tests and the invalidation benchmark).
    changed: Notify,
}

/// A local cache and the task keeping its tracking connection. Dropping it stops the task
/// and closes the connection.
pub(super) struct Tracked {
    shared: Arc<Shared>,
    client: Client,
    runtime: tokio::runtime::Handle,
    task: AbortHandle,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // The task holds the state only weakly; stopping it closes the connection.
        self.task.abort();
    }
}

impl Tracked {
    /// A cache of `capacity` records for the keys under `prefix`, tracked through `client`
    /// (spoken to in RESP3 whatever its URL says). Needs a Tokio runtime.
    pub(super) fn start(client: &Client, prefix: &str, capacity: usize) -> Result<Self, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config(
                "RedisStore::with_local_cache must be called inside a Tokio runtime".into(),
            )
        })?;
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings))
            .map_err(|e| Error::Config(format!("invalid Redis connection settings: {e}")))?;
        Ok(Self::spawn(client, runtime, prefix, capacity))
    }

    fn spawn(
        client: Client,
        runtime: tokio::runtime::Handle,
        prefix: &str,
        capacity: usize,
    ) -> Self {
        let shared = Arc::new(Shared {
            cache: LocalCache::new(capacity),
            prefix: prefix.into(),
            live: Mutex::new(None),
            client_id: AtomicI64::new(0),
            changed: Notify::new(),
        });
        let task = runtime
            .spawn(supervise(client.clone(), Arc::downgrade(&shared)))
            .abort_handle();
        Self {
            shared,
            client,
            runtime,
            task,
        }
    }

    /// A new, empty cache of the same capacity for the keys under `prefix` (after the store's
    /// prefix or format changed: decoded records are not shared across formats).
    pub(super) fn restart(&self, prefix: &str) -> Self {
        Self::spawn(
            self.client.clone(),
            self.runtime.clone(),
            prefix,
            self.shared.cache.capacity(),
        )
    }

    /// The cache.
    pub(super) fn cache(&self) -> &LocalCache {
        &self.shared.cache
    }

    /// The tracking connection to send a command on under `ticket`, if it is still the one
    /// of the ticket's generation; `None` means bypass (the store's own connection, nothing
    /// inserted).
    pub(super) fn connection(&self, ticket: Option<Ticket>) -> Option<MultiplexedConnection> {
        let ticket = ticket?;
        let live = self
            .shared
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*live {
            Some((generation, connection)) if *generation == ticket.generation() => {
                Some(connection.clone())
            }
            _ => None,
        }
    }

    /// The tracking connection's `CLIENT ID`, while it is open.
    pub(super) fn client_id(&self) -> Option<i64> {
        Some(self.shared.client_id.load(Ordering::Acquire)).filter(|id| *id != 0)
    }

    /// Waits until `key` is not cached, at most `within`; whether it is not.
    pub(super) async fn wait_evicted(&self, key: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so that a change between the two is not missed.
            changed.as_mut().enable();
            if !self.shared.cache.holds(key) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return !self.shared.cache.holds(key);
            }
        }
    }
}

/// Keeps a tracking connection open until the shared state is gone or the task is aborted
/// (the [`Tracked`] was dropped).
async fn supervise(client: Client, shared: Weak<Shared>) {
    let mut retry = FIRST_RETRY;
    loop {
        match run_once(&client, &shared).await {
            None => return,
            Some(Ok(())) => retry = FIRST_RETRY,
            Some(Err(error)) => {
                tracing::warn!(%error, "Redis local cache: tracking connection failed; cache bypassed until it is back");
            }
        }
        let Some(state) = shared.upgrade() else {
            return;
        };
        *state
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        state.client_id.store(0, Ordering::Release);
        state.changed.notify_waiters();
        drop(state);
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RECONNECT_MAX_DELAY);
    }
}

/// Opens a tracking connection and heartbeats it until it is lost: `Some(Ok(()))` after it
/// had been up, `Some(Err(_))` when it could not be opened or was lost with an error, `None`
/// when the store is gone. The cache is cleared (and so bypassed) before returning.
async fn run_once(client: &Client, shared: &Weak<Shared>) -> Option<Result<(), redis::RedisError>> {
    let generation = shared.upgrade()?.cache.start_generation();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_push_sender(push_handler(Weak::clone(shared), generation));
    let opened = async {
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let (id,): (i64,) = redis::pipe()
            .cmd("CLIENT")
            .arg("SETNAME")
            .arg(CLIENT_NAME)
            .ignore()
            .cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("NOLOOP")
            .ignore()
            .cmd("CLIENT")
            .arg("ID")
            .query_async(&mut connection)
            .await?;
        Ok::<_, redis::RedisError>((connection, id))
    };
    let (mut connection, id) = match opened.await {
        Ok(opened) => opened,
        Err(e) => {
            shared.upgrade()?.cache.clear_if(generation);
            return Some(Err(e));
        }
    };
    {
        let shared = shared.upgrade()?;
        *shared
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((generation, connection.clone()));
        shared.client_id.store(id, Ordering::Release);
    }
    tracing::debug!(client_id = id, "Redis local cache: tracking connection up");
    let outcome = loop {
        let sent = Instant::now();
        let pong = tokio::time::timeout(
            LEASE,
            redis::cmd("PING").query_async::<Value>(&mut connection),
        )
        .await;
        let shared = shared.upgrade()?;
        if shared.cache.generation() != generation {
            // The reader reported the connection closed (and cleared the cache).
            break Ok(());
        }
        match pong {
            Ok(Ok(_)) => shared.cache.renew(generation, sent, LEASE),
            Ok(Err(e)) => break Err(e),
            Err(_) => {
                tracing::warn!(
                    "Redis local cache: tracking connection lags; cache bypassed until it is back"
                );
                break Ok(());
            }
        }
        drop(shared);
        tokio::time::sleep(HEARTBEAT).await;
    };
    shared.upgrade()?.cache.clear_if(generation);
    Some(outcome)
}

/// What the connection's reader calls for each push, in arrival order: invalidations evict,
/// a flush (a null list) drops everything, a disconnection clears the cache of `generation`.
fn push_handler(
    shared: Weak<Shared>,
    generation: u64,
) -> impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static {
    move |push: PushInfo| {
        let Some(shared) = shared.upgrade() else {
            return Ok(());
        };
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        let bytes = match key {
                            Value::BulkString(bytes) => bytes.as_slice(),
                            Value::SimpleString(s) => s.as_bytes(),
                            _ => continue,
                        };
                        let session_key = bytes
                            .strip_prefix(shared.prefix.as_bytes())
                            .and_then(|rest| std::str::from_utf8(rest).ok());
                        if let Some(session_key) = session_key {
                            shared.cache.invalidate(session_key);
                        }
                    }
                }
                _ => shared.cache.invalidate_all(),
            },
            PushKind::Disconnection => {
                tracing::warn!(
                    "Redis local cache: tracking connection closed; cache bypassed until it is back"
                );
                shared.cache.clear_if(generation);
            }
            _ => return Ok(()),
        }
        shared.changed.notify_waiters();
        Ok(())
    }
}
