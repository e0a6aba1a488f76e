//! `RedisStore`: one Redis key per session, with a TTL; single node or Redis Cluster.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::Cmd;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use super::{Codec, PrivateId, RecordKeys};
use crate::{Error, SessionKey};
use connection::{
    CLUSTER_OVERALL_TIMEOUT, CLUSTER_RETRY_WAIT_MS, CONNECTION_TIMEOUT, Connection,
    RECONNECT_MAX_DELAY, RECONNECT_RETRIES, RESPONSE_TIMEOUT, map_connect_err, map_err,
};
use format::Format;
use replica_ack::ReplicaAck;
use tracking::Tracked;

mod cached_ops;
mod connection;
mod format;
mod local_cache;
mod replica_ack;
mod scripts;
mod store;
#[cfg(test)]
mod tests;
mod tracking;
mod user_index;

/// The key prefix when none is set.
const DEFAULT_PREFIX: &str = "sessionbase:";

/// Sessions in Redis: one key per session (the prefix, `sessionbase:` by default, followed
/// by the session key) holding the encoded session data, with a TTL that ends with the
/// session, so that Redis itself forgets expired sessions.
///
/// Every operation is one round trip: `load` is a `GET`, `create` a `SET … NX PX` (a new
/// session never overwrites an existing one; on a collision another key is drawn), `save` a
/// Lua script (`EVALSHA`) that compares the stored value with the one loaded and only then
/// writes (`SET … XX PX`), `touch` another script that compares the same way and then only
/// moves the TTL (`PEXPIRE`), `delete` a `DEL` and `exists` an `EXISTS`. The stored value is
/// also the record's version, so two requests racing on one session never lose each
/// other's changes. Values are written by a [`Codec`]: plain JSON by default, Django's
/// signed format with [`with_codec`](Self::with_codec)`(`[`Codec::django`]`(...))`.
///
/// Keys are validated before they reach Redis: only what
/// [`parse_key`] accepts (8 to 40 characters of `[a-z0-9]`) is ever
/// appended to the prefix, so a cookie cannot smuggle glob patterns, spaces or line breaks
/// into a key.
///
/// The connection reconnects by itself: while Redis is unreachable, calls fail with
/// [`Error::StoreUnavailable`] (the layer answers 503) within about a second, and work again
/// once Redis is back, without restarting the application. Other Redis errors are
/// [`Error::Store`] (500).
///
/// Cloning is cheap and shares the connection. `Debug` shows neither the URL nor the
/// password.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use sessionbase::{RedisStore, Session, SessionLayer};
///
/// async fn index(session: Session) -> Result<String, sessionbase::Error> {
///     let visits: u64 = session.get("visits")?.unwrap_or(0);
///     session.insert("visits", visits + 1)?;
///     Ok(format!("{visits} earlier visits"))
/// }
///
/// # async fn run() -> Result<(), sessionbase::Error> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/")
///     .await?
///     .with_prefix("myapp:session:");
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::new(store));
/// # Ok(())
/// # }
/// ```
///
/// # Redis Cluster
///
/// Connect with [`RedisStore::cluster`], giving one or more nodes of the cluster (the
/// others are discovered):
///
/// ```no_run
/// # async fn run() -> Result<(), sessionbase::Error> {
/// use sessionbase::RedisStore;
///
/// let store = RedisStore::cluster([
///     "redis://10.0.0.1:6379/",
///     "redis://10.0.0.2:6379/",
///     "redis://10.0.0.3:6379/",
/// ])
/// .await?;
/// # Ok(())
/// # }
/// ```
///
/// Every session is exactly one key, and every command the store sends (the compare-and-swap
/// script included) touches that one key only, so no command ever spans two hash slots
/// (`CROSSSLOT` cannot happen) and sessions spread over the whole cluster. For that reason,
/// do not put a hash tag (`{...}`) in the prefix: it would pin every session to one slot.
/// MOVED and ASK redirections, and failovers, are handled by the cluster client: while a
/// primary fails over, the requests on its slots fail with [`Error::StoreUnavailable`] (or
/// time out), the others go on, and the store follows the promoted replica by itself. Run
/// the cluster with `cluster-require-full-coverage no`, or every shard stops serving while
/// one is down. Replication is asynchronous: see
/// [`with_replica_ack`](Self::with_replica_ack) for writes that survive a failover.
///
/// # Expiry
///
/// Redis removes expired keys itself, so [`clear_expired`]
/// does nothing and there is no need for [`spawn_clear_expired`](super::spawn_clear_expired)
/// with this store. A record whose expiry date has already passed is never written: `create`
/// returns a fresh key without storing anything, and `save` deletes the key. `load` does not
/// report the expiry date (that would take a second command), so a
/// [`CachedStore`](super::CachedStore) in front of this store keeps its copies for its
/// refill TTL.
///
/// # Every session of a user
///
/// The store keeps an index per user, `<prefix>user:<user id>`, a hash of the record keys of
/// the user's sessions written in the same script as each save (on a cluster just before
/// it), so [`user_records`](super::SessionStore::user_records) reads the user's sessions
/// only. A session with no user id costs nothing more; one with a user costs an `HSET` and
/// a `PTTL` inside the save's script (on a cluster, one more round trip). Sessions Django
/// writes do not update it: see [`with_user_scan`](Self::with_user_scan).
///
/// `RedisStore` is also a [`CacheStore`], so it can be the cache of a
/// [`CachedStore`](super::CachedStore) in front of a database store (Django's `cached_db`).
///
/// # Local cache
///
/// [`with_local_cache`](Self::with_local_cache) keeps the sessions this instance has seen in
/// memory, kept coherent by Redis (client-side caching): a load of a cached session costs no
/// round trip, and an update one (the compare-and-swap).
///
/// [`parse_key`]: super::SessionStore::parse_key
/// [`clear_expired`]: super::SessionStore::clear_expired
/// [`CacheStore`]: super::CacheStore
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    format: Arc<Format>,
    /// The client the connection was opened with (by [`RedisStore::connect`]), for the local
    /// cache's tracking connection.
    client: Option<redis::Client>,
    cache: Option<Arc<Tracked>>,
    replica_ack: Option<ReplicaAck>,
    record_keys: RecordKeys,
    /// The data key of a session's user id (`user_index.rs`).
    user_id_key: Arc<str>,
    /// Whether listing a user's sessions scans every key (Django writes here too).
    user_scan: bool,
    /// Whether listing is refused: a cluster shared with Django, whose sessions no index
    /// holds and no `SCAN` reaches.
    listing_refused: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the connection itself: its configuration holds the password.
        let mode = match self.connection {
            Connection::Single(_) => "single node",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("mode", &mode)
            .field("prefix", &self.prefix)
            .field(
                "format",
                &match &*self.format {
                    Format::Text(codec) if codec.is_signed() => "signed",
                    Format::Text(_) => "plain",
                    Format::Pickle => "pickle",
                },
            )
            .field(
                "local_cache",
                &self.cache.as_ref().map(|t| t.cache().capacity()),
            )
            .field("replica_ack", &self.replica_ack)
            .finish()
    }
}

impl RedisStore {
    /// Connects to a single Redis server, for example `redis://127.0.0.1:6379/`,
    /// `redis://:password@host:6379/2` or `redis+unix:///run/redis.sock`.
    ///
    /// The connection is opened now, so a wrong URL or a Redis that is down is reported at
    /// startup: [`Error::Config`] for a URL that cannot work, [`Error::StoreUnavailable`] when
    /// Redis cannot be reached, [`Error::Store`] otherwise (a wrong password, say). Each
    /// connection attempt times out after a second, and each command after a second. To
    /// choose other timeouts, or to start without Redis, build a
    /// [`ConnectionManager`] yourself (`ConnectionManager::new_lazy_with_config` connects on
    /// first use) and use [`from_manager`](Self::from_manager).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(map_connect_err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let manager = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(map_connect_err)?;
        let mut store = Self::from_manager(manager);
        store.client = Some(client);
        Ok(store)
    }

    /// Connects to a Redis Cluster through one or more of its nodes (the rest are
    /// discovered), for example `["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"]`. All
    /// URLs must carry the same credentials. See [Redis Cluster](#redis-cluster).
    ///
    /// Errors as [`connect`](Self::connect); a list with no URL is an [`Error::Config`].
    /// For other settings (TLS, replicas, timeouts), build the connection with
    /// [`ClusterClient::builder`] and use [`from_cluster`](Self::from_cluster).
    pub async fn cluster(urls: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Self, Error> {
        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        if urls.is_empty() {
            return Err(Error::Config(
                "RedisStore::cluster needs the URL of at least one node".into(),
            ));
        }
        let client = ClusterClient::builder(urls)
            .connection_timeout(CONNECTION_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .overall_response_timeout(Some(CLUSTER_OVERALL_TIMEOUT))
            .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
            .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1)
            .build()
            .map_err(map_connect_err)?;
        let connection = client
            .get_async_connection()
            .await
            .map_err(map_connect_err)?;
        Ok(Self::from_cluster(connection))
    }

    /// A store on a connection manager you built (with your own timeouts and retries, or
    /// lazily connecting). The default prefix and plain JSON.
    pub fn from_manager(manager: ConnectionManager) -> Self {
        Self::with_connection(Connection::Single(manager))
    }

    /// A store on a Redis Cluster connection you built from a [`ClusterClient`].
    pub fn from_cluster(connection: ClusterConnection) -> Self {
        Self::with_connection(Connection::Cluster(connection))
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            format: Arc::new(Format::Text(Codec::plain())),
            replica_ack: None,
            client: None,
            cache: None,
            record_keys: RecordKeys::default(),
            user_id_key: crate::store::DEFAULT_USER_ID_KEY.into(),
            user_scan: false,
            listing_refused: false,
        }
    }

    /// Keeps up to `capacity` sessions in this instance's memory, kept coherent by Redis's
    /// client-side caching (Redis 7 or later, single node only).
    ///
    /// A load of a session in the cache answers from memory, without a round trip; an update
    /// of it costs one round trip, the compare-and-swap, which still compares with what Redis
    /// holds, so a stale copy can never overwrite a newer record (it conflicts, and the
    /// session reloads). After a save, create or load the cache holds the record; a delete
    /// (logout, `flush`, `cycle_key`) drops it at once. The least recently used sessions are
    /// evicted beyond `capacity`, and a record is never served past its TTL in Redis.
    ///
    /// Turn it on when requests of one session mostly land on the same instance (sticky
    /// sessions, or one instance), so that most loads are hits. What it costs:
    ///
    /// - **Staleness: the invalidation delay.** A change, delete or logout made elsewhere (by
    ///   another instance, or by Django through its `cache` engine, or any Redis client) is
    ///   pushed to this instance by Redis; until the push arrives (about as long after the
    ///   write as the writer waits for its answer: `benches/invalidation.rs` measures it),
    ///   loads here still return the old copy. Once it has arrived, the old copy is never
    ///   served again. A save based on an old copy conflicts instead of overwriting.
    /// - **A second connection** to Redis, opened in the background, with
    ///   `CLIENT TRACKING ON NOLOOP`: Redis remembers which sessions it read and pushes it
    ///   the name of each one that anyone else changes (one small message per change of a
    ///   session this instance holds). The store's own commands use it while it is up. It is
    ///   called `sessionbase-local-cache` in `CLIENT LIST`.
    /// - **Memory**: up to `capacity` decoded sessions here, and in Redis an entry of its
    ///   tracking table per key an instance has read, a cookie that names no session
    ///   included (bounded by Redis's `tracking-table-max-keys`; past it, Redis invalidates
    ///   keys to make room).
    /// - **A miss** costs `GET` and `PTTL` (one round trip), a create or a save one script
    ///   run (which reads the key back so that Redis keeps tracking it).
    ///
    /// Until that connection is up, and whenever it drops or stops answering its heartbeat
    /// (every 100 ms; lost after a second without an answer), the cache is cleared and
    /// bypassed: every call goes to Redis as without a cache, until the connection is back.
    ///
    /// Call it last, after [`with_prefix`](Self::with_prefix) and the format: those replace
    /// the cache with an empty one. A store that is cloned shares its cache. The tracking
    /// connection is kept by a task on the Tokio runtime this is called on, and closed when
    /// the last clone of the store is dropped.
    ///
    /// Errors ([`Error::Config`]): `capacity` 0; a store on a Redis Cluster (not supported);
    /// a store from [`from_manager`](Self::from_manager) (open it with
    /// [`connect`](Self::connect)); no Tokio runtime.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), sessionbase::Error> {
    /// use sessionbase::RedisStore;
    ///
    /// let store = RedisStore::connect("redis://127.0.0.1:6379/")
    ///     .await?
    ///     .with_prefix("myapp:session:")
    ///     .with_local_cache(10_000)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_local_cache(mut self, capacity: usize) -> Result<Self, Error> {
        if capacity == 0 {
            return Err(Error::Config(
                "RedisStore::with_local_cache needs a capacity of at least 1".into(),
            ));
        }
        if matches!(self.connection, Connection::Cluster(_)) {
            return Err(Error::Config(
                "RedisStore::with_local_cache does not support Redis Cluster".into(),
            ));
        }
        let Some(client) = &self.client else {
            return Err(Error::Config(
                "RedisStore::with_local_cache needs a store opened with RedisStore::connect".into(),
            ));
        };
        self.cache = Some(Arc::new(Tracked::start(client, &self.prefix, capacity)?));
        Ok(self)
    }

    /// After the prefix or the format changed: an empty cache for them, if there is one.
    fn renew_cache(&mut self) {
        if let Some(tracked) = &self.cache {
            self.cache = Some(Arc::new(tracked.restart(&self.prefix)));
        }
    }

    /// Puts `prefix` in front of every session key (default `sessionbase:`), so that several
    /// applications can share a Redis database. Instances of one application must use the
    /// same prefix to see each other's sessions.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self.renew_cache();
        self
    }

    /// How session data is written (default [`Codec::plain`]); [`Codec::django`] signs it
    /// as Django does, so that records tampered with in Redis, or written by an application
    /// with another secret, load as no session.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.format = Arc::new(Format::Text(codec));
        self.renew_cache();
        self
    }

    /// Writes and reads values as Django's Redis cache backends do (Django's `RedisCache`,
    /// django-redis with its default serializer): the session dict pickled, so that a Django
    /// app on the `cache` session engine shares the sessions. With the prefix
    /// `"<KEY_PREFIX>:<VERSION>:django.contrib.sessions.cache"`, the keys are Django's.
    /// [`DjangoConfig`](crate::django::DjangoConfig) sets both.
    ///
    /// Only data is read: a pickle that would need a class or a callable (a `datetime`, a
    /// model instance), or that holds bytes or a set, loads as no session (logged), and
    /// nothing in it is ever executed. Tuples read as lists.
    pub fn with_pickle(mut self) -> Self {
        self.format = Arc::new(Format::Pickle);
        self.renew_cache();
        self
    }

    /// Keys records by the private ids of `id` instead of the session keys (see
    /// [`PrivateId`]): `KEYS`/`SCAN` of the database, or a copy of it, names no usable
    /// cookie. As a [`CacheStore`] too (`put`, `expire_at`): give a [`CachedStore`] or
    /// [`CachedDbStore`] the same id on both of its stores. Django cannot share such keys.
    ///
    /// [`CacheStore`]: super::CacheStore
    /// [`CachedStore`]: super::CachedStore
    /// [`CachedDbStore`]: super::CachedDbStore
    pub fn with_private_id(mut self, id: PrivateId) -> Self {
        self.record_keys = RecordKeys::private(id);
        self.renew_cache();
        self
    }

    /// Reads a session's user id under `key` instead of `_auth_user_id`, for its index and
    /// [`user_records`](super::SessionStore::user_records).
    pub fn with_user_id_key(mut self, key: impl Into<String>) -> Self {
        self.user_id_key = key.into().into();
        self
    }

    /// Lists a user's sessions by a `SCAN` of every session key under the prefix, each read
    /// and decoded, instead of from the index: for a Redis that Django's `cache` session
    /// engine writes to as well, since Django does not update the index.
    /// [`DjangoConfig`](crate::django::DjangoConfig) turns it on. A listing then costs a read
    /// of every session, and saves no longer write the index (nothing reads it).
    ///
    /// Errors ([`Error::Config`]): a store on a Redis Cluster, whose keys one `SCAN` does not
    /// reach.
    pub fn with_user_scan(mut self) -> Result<Self, Error> {
        if matches!(self.connection, Connection::Cluster(_)) {
            return Err(Error::Config(
                "RedisStore::with_user_scan does not support Redis Cluster".into(),
            ));
        }
        self.user_scan = true;
        Ok(self)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key that holds the session `key` (`prefix` and its record key).
    pub fn redis_key(&self, key: &SessionKey) -> String {
        self.full_key(&self.record_keys.of(key))
    }

    /// The Redis key of the record key `key`.
    pub(super) fn full_key(&self, key: &SessionKey) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.as_str().len());
        full.push_str(&self.prefix);
        full.push_str(key.as_str());
        full
    }

    /// Whether the local cache holds `key` (tests and benchmarks).
    #[doc(hidden)]
    pub fn local_cache_holds(&self, key: &SessionKey) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|t| t.cache().holds(self.record_keys.of(key).as_str()))
    }

    /// How many sessions the local cache holds (tests and benchmarks).
    #[doc(hidden)]
    pub fn local_cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, |t| t.cache().len())
    }

    /// Whether the local cache serves hits now (tests and benchmarks).
    #[doc(hidden)]
    pub fn local_cache_serving(&self) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|t| t.cache().is_fresh(std::time::Instant::now()))
    }

    /// The tracking connection's `CLIENT ID` while it is open (tests kill it).
    #[doc(hidden)]
    pub fn local_cache_client_id(&self) -> Option<i64> {
        self.cache.as_ref().and_then(|t| t.client_id())
    }

    /// Waits until the local cache does not hold `key`, at most `within`; whether it does not
    /// (tests and the invalidation benchmark).
    #[doc(hidden)]
    pub async fn local_cache_wait_evicted(&self, key: &SessionKey, within: Duration) -> bool {
        match &self.cache {
            Some(t) => {
                t.wait_evicted(self.record_keys.of(key).as_str(), within)
                    .await
            }
            None => true,
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let mut connection = self.connection.clone();
        cmd.query_async(&mut connection).await.map_err(map_err)
    }
}
