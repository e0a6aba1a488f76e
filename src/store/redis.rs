//! `RedisStore`: one Redis key per session, with a TTL; single node or Redis Cluster.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, RedisError, RedisFuture, Script, ServerErrorKind, Value};
use time::OffsetDateTime;

use super::preserved::Preserved;
use super::{CacheStore, Codec, LoadedRecord, Record, SaveOutcome, SessionStore, Version, pickle};
use crate::{Error, SessionKey};

/// The key prefix when none is set.
const DEFAULT_PREFIX: &str = "sessionbase:";
/// How long one attempt to open a connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// How long Redis may take to answer one command.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a Redis Cluster request may take, redirections and retries included.
const CLUSTER_OVERALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times the connection manager retries a failed reconnection before reporting the
/// failure (every later command starts a new reconnection): few, so that a request against a
/// Redis that is down fails within about a second instead of waiting out a long backoff.
const RECONNECT_RETRIES: usize = 2;
/// The longest pause between two reconnection attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// How many fresh keys `create` draws before giving up. With 165-bit keys a single
/// collision is already unheard of; the bound only guarantees that `create` ends.
const MAX_CREATE_ATTEMPTS: usize = 8;
/// The largest TTL written, in milliseconds (about 3000 years): Redis refuses expiry times
/// that overflow when added to its clock.
const MAX_TTL_MS: i64 = 100_000_000_000_000;

/// Compare-and-swap in one round trip. `KEYS[1]` the session's key, `ARGV[1]` the value the
/// caller loaded (its version), `ARGV[2]` the new value, `ARGV[3]` the TTL in milliseconds.
/// Returns 1 when written (deleted when the TTL is not positive: the record expired), 0 when
/// the stored value is another one (conflict), -1 when there is no record (gone).
const SAVE_LUA: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl, 'XX')
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
elseif current then
  return 0
else
  return -1
end
";

/// `EVALSHA`, falling back to loading the script when the server does not know it yet.
static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE_LUA));

/// Sessions in Redis: one key per session (the prefix, `sessionbase:` by default, followed
/// by the session key) holding the encoded session data, with a TTL that ends with the
/// session, so that Redis itself forgets expired sessions.
///
/// Every operation is one round trip: `load` is a `GET`, `create` a `SET … NX PX` (a new
/// session never overwrites an existing one; on a collision another key is drawn), `save` a
/// Lua script (`EVALSHA`) that compares the stored value with the one loaded and only then
/// writes (`SET … XX PX`), `delete` a `DEL` and `exists` an `EXISTS`. The stored value is
/// also the record's version, so two requests racing on one session never lose each
/// other's changes. Values are written by a [`Codec`]: plain JSON by default, Django's
/// signed format with [`with_codec`](Self::with_codec)`(`[`Codec::django`]`(...))`.
///
/// Keys are validated before they reach Redis: only what
/// [`parse_key`](SessionStore::parse_key) accepts (8 to 40 characters of `[a-z0-9]`) is ever
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
/// MOVED and ASK redirections, and failovers, are handled by the cluster client.
///
/// # Expiry
///
/// Redis removes expired keys itself, so [`clear_expired`](SessionStore::clear_expired)
/// does nothing and there is no need for [`spawn_clear_expired`](super::spawn_clear_expired)
/// with this store. A record whose expiry date has already passed is never written: `create`
/// returns a fresh key without storing anything, and `save` deletes the key. `load` does not
/// report the expiry date (that would take a second command), so a
/// [`CachedStore`](super::CachedStore) in front of this store keeps its copies for its
/// refill TTL.
///
/// `RedisStore` is also a [`CacheStore`], so it can be the cache of a
/// [`CachedStore`](super::CachedStore) in front of a database store (Django's `cached_db`).
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: Arc<str>,
    format: Arc<Format>,
}

/// How values are written.
enum Format {
    /// Text from a [`Codec`].
    Text(Codec),
    /// Django's Redis cache backends' format: the session dict pickled.
    Pickle,
}

impl Format {
    fn encode(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
        preserved: &Preserved,
    ) -> Result<Vec<u8>, Error> {
        match self {
            Self::Text(codec) => Ok(codec.encode_preserving(data, preserved)?.into_bytes()),
            Self::Pickle => Ok(pickle::dumps(&preserved.to_python(data))),
        }
    }

    /// The data in `bytes`, or `None` (logged) when it does not decode.
    fn decode(
        &self,
        bytes: &[u8],
    ) -> Option<(serde_json::Map<String, serde_json::Value>, Preserved)> {
        match self {
            Self::Text(codec) => {
                let Ok(text) = std::str::from_utf8(bytes) else {
                    tracing::warn!(target: "sessionbase::security", "Session data corrupted: not UTF-8");
                    return None;
                };
                codec.decode_preserving(text)
            }
            Self::Pickle => match pickle::loads_dict(bytes) {
                Ok(items) => Some(Preserved::split(items)),
                Err(error) => {
                    tracing::warn!(target: "sessionbase::security", %error, "Session data corrupted");
                    None
                }
            },
        }
    }
}

/// The two kinds of connection, both cheap to clone and both reconnecting by themselves.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
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
            .finish()
    }
}

/// Maps a Redis error: unreachable, timed out, dropped or a cluster that cannot serve the
/// key right now is [`Error::StoreUnavailable`]; anything else is [`Error::Store`].
fn map_err(e: RedisError) -> Error {
    let transient = e.is_io_error()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::BusyLoading
                        | ServerErrorKind::ReadOnly
                )
        );
    if transient {
        Error::unavailable(e)
    } else {
        Error::store(e)
    }
}

/// Maps an error while connecting: a URL or option that cannot work is a configuration
/// error, the rest as [`map_err`]. Redis's messages never repeat the URL or the password.
fn map_connect_err(e: RedisError) -> Error {
    if e.kind() == ErrorKind::InvalidClientConfig {
        Error::Config(format!("invalid Redis connection settings: {e}"))
    } else {
        map_err(e)
    }
}

/// Milliseconds from now until `expiry_date`, capped; zero or less when it has passed.
fn ttl_ms(expiry_date: OffsetDateTime) -> i64 {
    let ms = (expiry_date - OffsetDateTime::now_utc()).whole_milliseconds();
    i64::try_from(ms).unwrap_or(i64::MAX).min(MAX_TTL_MS)
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
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(map_connect_err)?;
        Ok(Self::from_manager(manager))
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
        }
    }

    /// Puts `prefix` in front of every session key (default `sessionbase:`), so that several
    /// applications can share a Redis database. Instances of one application must use the
    /// same prefix to see each other's sessions.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// How session data is written (default [`Codec::plain`]); [`Codec::django`] signs it
    /// as Django does, so that records tampered with in Redis, or written by an application
    /// with another secret, load as no session.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.format = Arc::new(Format::Text(codec));
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
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key that holds the session `key`.
    pub fn redis_key(&self, key: &SessionKey) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.as_str().len());
        full.push_str(&self.prefix);
        full.push_str(key.as_str());
        full
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let mut connection = self.connection.clone();
        cmd.query_async(&mut connection).await.map_err(map_err)
    }
}

impl SessionStore for RedisStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let stored: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.redis_key(key)))
            .await?;
        let Some(bytes) = stored else {
            return Ok(None);
        };
        let Some((data, preserved)) = self.format.decode(&bytes) else {
            return Ok(None);
        };
        Ok(Some(LoadedRecord {
            data: Arc::new(data),
            version: Version::from_bytes(bytes).with_preserved(preserved),
            expiry_date: None,
        }))
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        let value = self.format.encode(&record.data, &Preserved::default())?;
        let ttl = ttl_ms(record.expiry_date);
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let key = SessionKey::generate()?;
            if ttl <= 0 {
                // Already expired: a record that would never load is not written.
                return Ok((key, Version::from_bytes(value)));
            }
            let reply: Value = self
                .query(
                    redis::cmd("SET")
                        .arg(self.redis_key(&key))
                        .arg(&value)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl),
                )
                .await?;
            match reply {
                // The key is taken: draw another.
                Value::Nil => continue,
                Value::Okay => return Ok((key, Version::from_bytes(value))),
                Value::SimpleString(s) if s == "OK" => {
                    return Ok((key, Version::from_bytes(value)));
                }
                other => {
                    return Err(Error::store(format!(
                        "unexpected reply to SET NX: {other:?}"
                    )));
                }
            }
        }
        Err(Error::store(format!(
            "{MAX_CREATE_ATTEMPTS} freshly generated session keys were all taken"
        )))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let value = self.format.encode(&record.data, expected.preserved())?;
        let ttl = ttl_ms(record.expiry_date).max(0);
        let preserved = expected.preserved().clone();
        // A version that is not stored bytes (from another store) matches nothing: a stored
        // value is never empty.
        let expected = expected.as_bytes().unwrap_or_default();
        let mut connection = self.connection.clone();
        let answer: i64 = SAVE_SCRIPT
            .key(self.redis_key(key))
            .arg(expected)
            .arg(&value)
            .arg(ttl)
            .invoke_async(&mut connection)
            .await
            .map_err(map_err)?;
        Ok(match answer {
            1 => SaveOutcome::Saved {
                key: key.clone(),
                version: Version::from_bytes(value).with_preserved(preserved),
            },
            0 => SaveOutcome::Conflict,
            -1 => SaveOutcome::Gone,
            other => {
                return Err(Error::store(format!(
                    "unexpected reply from the save script: {other}"
                )));
            }
        })
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        let _: i64 = self
            .query(redis::cmd("DEL").arg(self.redis_key(key)))
            .await?;
        Ok(())
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.query(redis::cmd("EXISTS").arg(self.redis_key(key)))
            .await
    }

    /// Does nothing: every key carries a TTL, and Redis removes expired keys itself.
    async fn clear_expired(&self) -> Result<(), Error> {
        Ok(())
    }
}

impl CacheStore for RedisStore {
    /// `SET key value PX ttl`, replacing whatever is there; a record already expired is
    /// deleted instead.
    async fn put(&self, key: &SessionKey, record: &Record) -> Result<(), Error> {
        let ttl = ttl_ms(record.expiry_date);
        if ttl <= 0 {
            return self.delete(key).await;
        }
        let value = self.format.encode(&record.data, &Preserved::default())?;
        let _: Value = self
            .query(
                redis::cmd("SET")
                    .arg(self.redis_key(key))
                    .arg(value)
                    .arg("PX")
                    .arg(ttl),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;
    use tokio::time::{Instant, sleep, timeout};

    use super::*;
    use crate::store::conformance::{self, Exceptions};

    /// How long any single store call may take in these tests before it counts as a hang.
    const NO_HANG: Duration = Duration::from_secs(10);

    fn redis_url() -> Option<String> {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                // Straight to stderr: libtest would capture eprintln! and hide the notice.
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    b"skipping Redis tests: REDIS_URL not set\n",
                );
                None
            }
        }
    }

    fn unique_prefix() -> String {
        format!("sessionbase-test-{}:", SessionKey::generate().expect("rng"))
    }

    fn record(value: serde_json::Value, ttl: time::Duration) -> Record {
        let serde_json::Value::Object(map) = value else {
            panic!("records hold objects")
        };
        Record {
            data: Arc::new(map),
            expiry_date: OffsetDateTime::now_utc() + ttl,
        }
    }

    fn live(value: serde_json::Value) -> Record {
        record(value, time::Duration::hours(1))
    }

    /// A connection for the test itself, to look at and tamper with what the store wrote.
    async fn raw_connection(url: &str) -> ConnectionManager {
        let client = redis::Client::open(url).expect("REDIS_URL parses");
        ConnectionManager::new(client)
            .await
            .expect("connect to REDIS_URL")
    }

    /// Deletes every key under `prefix` (the prefixes are random `[a-z0-9-:]`, so they are
    /// not glob patterns).
    async fn cleanup(raw: &mut ConnectionManager, prefix: &str) {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(raw)
            .await
            .expect("KEYS");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(raw)
                .await
                .expect("DEL");
        }
    }

    /// Runs `test`, then deletes the keys under `prefix` on `url`, whether the test passed
    /// or not.
    async fn cleaning_up(url: &str, prefix: &str, test: impl Future<Output = ()> + Send + 'static) {
        let outcome = tokio::spawn(test).await;
        cleanup(&mut raw_connection(url).await, prefix).await;
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("test task failed: {e}"),
            }
        }
    }

    /// Runs `test` with a store on `REDIS_URL` under a fresh prefix and a raw connection,
    /// then deletes the prefix's keys, whether the test passed or not.
    async fn with_redis<F, Fut>(test: F)
    where
        F: FnOnce(RedisStore, ConnectionManager) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(url) = redis_url() else { return };
        let prefix = unique_prefix();
        let store = RedisStore::connect(&url)
            .await
            .expect("connect to REDIS_URL")
            .with_prefix(prefix.clone());
        let raw = raw_connection(&url).await;
        cleaning_up(&url, &prefix, test(store, raw)).await;
    }

    /// A store on a server that is not there, connecting lazily: nothing is sent until a
    /// command runs.
    fn unreachable_store(url: &str) -> RedisStore {
        let client = redis::Client::open(url).expect("URL parses");
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1);
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).expect("lazy manager");
        RedisStore::from_manager(manager)
    }

    fn is_unavailable<T: fmt::Debug>(result: &Result<T, Error>) -> bool {
        matches!(result, Err(Error::StoreUnavailable(_)))
    }

    // ----- the shared suite -----

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_plain_json() {
        with_redis(|store, _| async move {
            conformance::run(store, Exceptions::none()).await;
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_django_codec() {
        with_redis(|store, _| async move {
            let store = store.with_codec(Codec::django("redis-test-secret", ["old-secret"]));
            conformance::run(store, Exceptions::none()).await;
        })
        .await;
    }

    #[tokio::test]
    async fn conformance_pickle() {
        with_redis(|store, _| async move {
            conformance::run(store.with_pickle(), Exceptions::none()).await;
        })
        .await;
    }

    /// Django's Redis cache format: the value is the dict pickled (protocol 5), and a pickle
    /// that needs a class (a `datetime`, from Django's `cache` engine) is no session.
    #[tokio::test]
    async fn pickled_values_are_djangos_and_classes_are_refused() {
        with_redis(|store, mut raw| async move {
            let store = store.with_pickle();
            let (key, _) = store.create(&live(serde_json::json!({"a": 1}))).await.unwrap();
            let stored: Vec<u8> = redis::cmd("GET")
                .arg(store.redis_key(&key))
                .query_async(&mut raw)
                .await
                .unwrap();
            // pickle.dumps({"a": 1}, 5) as Python writes it, without the frame and memo
            // (which Python's reader does not need): `pickle.loads` of it is {'a': 1}.
            assert_eq!(stored, b"\x80\x05}\x8c\x01aK\x01s.");
            // pickle.dumps({"when": datetime.datetime(2026, 1, 1)}, 5)
            let datetime = b"\x80\x05\x954\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04when\x94\x8c\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xea\x01\x01\x00\x00\x00\x00\x00\x00\x94\x85\x94R\x94s.";
            let _: () = redis::cmd("SET")
                .arg(store.redis_key(&key))
                .arg(&datetime[..])
                .query_async(&mut raw)
                .await
                .unwrap();
            assert!(store.load(&key).await.unwrap().is_none());
        })
        .await;
    }

    #[cfg(feature = "memory")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_as_cache_and_behind_a_cache() {
        use crate::store::{CachedStore, MemoryStore};
        with_redis(|store, _| async move {
            conformance::run(
                CachedStore::new(store.clone(), MemoryStore::new()),
                Exceptions::none(),
            )
            .await;
            conformance::run(
                CachedStore::new(MemoryStore::new(), store),
                Exceptions::none(),
            )
            .await;
        })
        .await;
    }

    // ----- what lands in Redis -----

    async fn pttl(raw: &mut ConnectionManager, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query_async(raw)
            .await
            .expect("PTTL")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_ttl_is_the_records_expiry() {
        with_redis(|store, mut raw| async move {
            let tolerance = 5_000;
            let (key, v0) = store
                .create(&record(json!({"a": 1}), time::Duration::minutes(30)))
                .await
                .expect("create");
            let full = store.redis_key(&key);
            assert_eq!(full, format!("{}{}", store.prefix(), key.as_str()));
            let ms = pttl(&mut raw, &full).await;
            assert!(
                (30 * 60_000 - tolerance..=30 * 60_000).contains(&ms),
                "PTTL {ms} after create"
            );
            let stored: String = redis::cmd("GET")
                .arg(&full)
                .query_async(&mut raw)
                .await
                .expect("GET");
            assert_eq!(stored, r#"{"a":1}"#, "plain codec: compact JSON");
            assert_eq!(
                v0.as_bytes(),
                Some(stored.as_bytes()),
                "version = stored bytes"
            );

            let outcome = store
                .save(
                    &key,
                    &record(json!({"a": 2}), time::Duration::minutes(10)),
                    &v0,
                )
                .await
                .expect("save");
            assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
            let ms = pttl(&mut raw, &full).await;
            assert!(
                (10 * 60_000 - tolerance..=10 * 60_000).contains(&ms),
                "PTTL {ms} after save"
            );

            // As a cache, `put` sets the TTL too.
            store
                .put(&key, &record(json!({"a": 3}), time::Duration::minutes(5)))
                .await
                .expect("put");
            let ms = pttl(&mut raw, &full).await;
            assert!(
                (5 * 60_000 - tolerance..=5 * 60_000).contains(&ms),
                "PTTL {ms} after put"
            );
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_records_are_not_kept() {
        with_redis(|store, mut raw| async move {
            let (key, version) = store
                .create(&record(json!({"x": 1}), time::Duration::seconds(-5)))
                .await
                .expect("create");
            let exists: bool = redis::cmd("EXISTS")
                .arg(store.redis_key(&key))
                .query_async(&mut raw)
                .await
                .expect("EXISTS");
            assert!(!exists, "a record created expired was written");
            assert!(store.load(&key).await.expect("load").is_none());
            assert_eq!(
                store
                    .save(&key, &live(json!({"x": 2})), &version)
                    .await
                    .expect("save"),
                SaveOutcome::Gone,
                "a record created expired was resurrected by a save"
            );

            let (key, version) = store.create(&live(json!({"x": 1}))).await.expect("create");
            let outcome = store
                .save(
                    &key,
                    &record(json!({"x": 2}), time::Duration::seconds(-5)),
                    &version,
                )
                .await
                .expect("save");
            assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
            assert!(
                !store.exists(&key).await.expect("exists"),
                "saved expired: gone"
            );
        })
        .await;
    }

    // ----- keys -----

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_keys_never_reach_redis() {
        let store = unreachable_store("redis://127.0.0.1:1/").with_prefix("p:");
        for hostile in [
            "*",
            "abc*defgh",
            "abcdefgh\r\nFLUSHALL",
            "abcdefgh\nDEL x",
            "a b c d e f g h",
            "abcdefg?",
            "[abcdefgh]",
            "ABCDEFGHIJ",
            "abcdefg",
            "abcdefghij/../../x",
            "abcdefgh\0",
            "",
            &"a".repeat(41),
        ] {
            assert!(
                store.parse_key(hostile).is_none(),
                "{hostile:?} was accepted"
            );
        }
        let key = store
            .parse_key("abcdefgh12345678")
            .expect("a well-formed key");
        assert_eq!(store.redis_key(&key), "p:abcdefgh12345678");
        let generated = SessionKey::generate().expect("rng");
        assert_eq!(store.parse_key(generated.as_str()), Some(generated));
    }

    // ----- corrupt records, conflicts and deleted records -----

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_values_load_as_nothing() {
        with_redis(|store, mut raw| async move {
            let signed = store
                .clone()
                .with_codec(Codec::django("redis-test-secret", Vec::<String>::new()));
            let corrupt: [&[u8]; 6] = [
                b"not json",
                b"[1, 2, 3]",
                b"{\"truncated\": ",
                b"\xff\xfe\x00garbage",
                b"",
                b"\"a string\"",
            ];
            for value in corrupt {
                let key = SessionKey::generate().expect("rng");
                let _: () = redis::cmd("SET")
                    .arg(store.redis_key(&key))
                    .arg(value)
                    .arg("EX")
                    .arg(60)
                    .query_async(&mut raw)
                    .await
                    .expect("SET");
                assert!(
                    store.load(&key).await.expect("load").is_none(),
                    "{value:?} loaded"
                );
                assert!(
                    signed.load(&key).await.expect("load").is_none(),
                    "{value:?} loaded signed"
                );
            }
            // Plain JSON in a store that expects signed data: tampered or foreign.
            let (key, _) = store
                .create(&live(json!({"admin": true})))
                .await
                .expect("create");
            assert!(store.load(&key).await.expect("load").is_some());
            assert!(
                signed.load(&key).await.expect("load").is_none(),
                "unsigned data loaded in a signed store"
            );
            // Signed with another secret.
            let other = store
                .clone()
                .with_codec(Codec::django("another-secret", Vec::<String>::new()));
            let (key, _) = other
                .create(&live(json!({"admin": true})))
                .await
                .expect("create");
            assert!(signed.load(&key).await.expect("load").is_none());
            assert!(other.load(&key).await.expect("load").is_some());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_save_after_a_delete_is_gone() {
        with_redis(|store, _| async move {
            let (key, version) = store.create(&live(json!({"n": 1}))).await.expect("create");
            let loaded = store.load(&key).await.expect("load").expect("loads");
            assert_eq!(loaded.version, version);
            store.delete(&key).await.expect("delete");
            store.delete(&key).await.expect("deleting twice is fine");
            assert_eq!(
                store
                    .save(&key, &live(json!({"n": 2})), &loaded.version)
                    .await
                    .expect("save"),
                SaveOutcome::Gone
            );
            assert!(
                store.load(&key).await.expect("load").is_none(),
                "resurrected"
            );
            assert!(!store.exists(&key).await.expect("exists"));
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_version_conflicts() {
        with_redis(|store, _| async move {
            let (key, v0) = store.create(&live(json!({"n": 0}))).await.expect("create");
            let SaveOutcome::Saved { version: v1, .. } = store
                .save(&key, &live(json!({"n": 1})), &v0)
                .await
                .expect("save")
            else {
                panic!("the first save was refused")
            };
            assert_ne!(v0, v1);
            for stale in [
                v0,
                Version::unversioned(),
                Version::from_counter(0),
                Version::from_bytes(Vec::new()),
            ] {
                assert_eq!(
                    store
                        .save(&key, &live(json!({"n": 99})), &stale)
                        .await
                        .expect("save"),
                    SaveOutcome::Conflict,
                    "{stale:?}"
                );
            }
            let loaded = store.load(&key).await.expect("load").expect("loads");
            assert_eq!(loaded.data["n"], json!(1), "a conflicting save wrote");
            assert_eq!(loaded.version, v1);
        })
        .await;
    }

    // ----- Redis down -----

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_is_not_there_is_unavailable() {
        let connected = timeout(NO_HANG, RedisStore::connect("redis://127.0.0.1:1/"))
            .await
            .expect("connect hung");
        assert!(is_unavailable(&connected), "{connected:?}");

        let store = unreachable_store("redis://127.0.0.1:1/");
        let key = SessionKey::generate().expect("rng");
        let r = timeout(NO_HANG, store.load(&key)).await.expect("load hung");
        assert!(is_unavailable(&r), "{r:?}");
        let r = timeout(NO_HANG, store.create(&live(json!({}))))
            .await
            .expect("create hung");
        assert!(is_unavailable(&r), "{r:?}");
        let r = timeout(
            NO_HANG,
            store.save(&key, &live(json!({})), &Version::from_bytes(*b"{}")),
        )
        .await
        .expect("save hung");
        assert!(is_unavailable(&r), "{r:?}");
        let r = timeout(NO_HANG, store.delete(&key))
            .await
            .expect("delete hung");
        assert!(is_unavailable(&r), "{r:?}");
        let r = timeout(NO_HANG, store.exists(&key))
            .await
            .expect("exists hung");
        assert!(is_unavailable(&r), "{r:?}");
        assert!(
            store.clear_expired().await.is_ok(),
            "clear_expired does nothing"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passwords_stay_out_of_debug_and_errors() {
        let url = "redis://user:hunter2-secret@127.0.0.1:1/";
        let error = timeout(NO_HANG, RedisStore::connect(url))
            .await
            .expect("connect hung")
            .expect_err("nothing listens on port 1");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
        let store = unreachable_store(url).with_codec(Codec::django("s3cr3t-key", ["old-k3y"]));
        let debug = format!("{store:?}");
        for secret in ["hunter2", "s3cr3t", "old-k3y", "user"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("sessionbase:"), "{debug}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unusable_settings_are_configuration_errors() {
        for url in [
            "http://127.0.0.1:6379/",
            "redis://",
            "not a url",
            "redis://h/db",
        ] {
            let r = timeout(NO_HANG, RedisStore::connect(url))
                .await
                .expect("connect hung");
            assert!(matches!(r, Err(Error::Config(_))), "{url}: {r:?}");
        }
        let r = RedisStore::cluster(Vec::<String>::new()).await;
        assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
        let r = timeout(NO_HANG, RedisStore::cluster(["http://127.0.0.1:7000/"]))
            .await
            .expect("cluster hung");
        assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
    }

    // ----- round trips and recovery, through a proxy that sees every command -----

    /// A TCP proxy in front of Redis that records every command it forwards, and can
    /// play dead (drop every connection and refuse new ones) to simulate an outage.
    struct Proxy {
        /// `REDIS_URL` with the proxy's address instead of Redis's.
        url: String,
        commands: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
        up: Arc<AtomicBool>,
        kill: watch::Sender<u64>,
    }

    impl Proxy {
        /// `None` when `REDIS_URL` is not a plain `redis://host:port` URL.
        async fn start(redis_url: &str) -> Option<Self> {
            let rest = redis_url.strip_prefix("redis://")?;
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let (userinfo, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (format!("{u}@"), h),
                None => (String::new(), authority),
            };
            let upstream = if hostport.contains(':') {
                hostport.to_owned()
            } else {
                format!("{hostport}:6379")
            };
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let commands = Arc::new(Mutex::new(Vec::new()));
            let up = Arc::new(AtomicBool::new(true));
            let (kill, _) = watch::channel(0u64);
            let proxy = Self {
                url: format!("redis://{userinfo}{addr}/{path}"),
                commands: Arc::clone(&commands),
                up: Arc::clone(&up),
                kill: kill.clone(),
            };
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let (upstream, commands, kill) =
                        (upstream.clone(), Arc::clone(&commands), kill.subscribe());
                    tokio::spawn(pipe(client, upstream, commands, kill));
                }
            });
            Some(proxy)
        }

        /// The command names (and arguments, lossily as text) forwarded since the last call.
        fn take(&self) -> Vec<Vec<String>> {
            std::mem::take(&mut *self.commands.lock().expect("lock"))
                .into_iter()
                .map(|args| {
                    args.iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect()
                })
                .collect()
        }

        fn set_up(&self, up: bool) {
            self.up.store(up, Ordering::SeqCst);
            if !up {
                self.kill.send_modify(|generation| *generation += 1);
            }
        }
    }

    async fn pipe(
        client: TcpStream,
        upstream: String,
        commands: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
        mut kill: watch::Receiver<u64>,
    ) {
        let Ok(server) = TcpStream::connect(&upstream).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let requests = async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut pending = Vec::new();
            loop {
                let n = client_read.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                pending.extend_from_slice(&buf[..n]);
                while let Some((args, used)) = parse_command(&pending) {
                    commands.lock().expect("lock").push(args);
                    pending.drain(..used);
                }
                server_write.write_all(&buf[..n]).await?;
            }
        };
        let replies = tokio::io::copy(&mut server_read, &mut client_write);
        tokio::select! {
            _ = requests => {}
            _ = replies => {}
            _ = kill.changed() => {}
        }
    }

    /// One RESP request (`*N\r\n` then N bulk strings) from the front of `buf`, and how many
    /// bytes it took; `None` until it is complete.
    fn parse_command(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
        fn line(buf: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
            if *buf.get(at)? != marker {
                panic!("unexpected RESP request byte {:?}", buf[at] as char);
            }
            let end = at + buf[at..].windows(2).position(|w| w == b"\r\n")?;
            let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
            Some((n, end + 2))
        }
        let (count, mut at) = line(buf, 0, b'*')?;
        let mut args = Vec::with_capacity(count);
        for _ in 0..count {
            let (len, start) = line(buf, at, b'$')?;
            if buf.len() < start + len + 2 {
                return None;
            }
            args.push(buf[start..start + len].to_vec());
            at = start + len + 2;
        }
        Some((args, at))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_operation_is_one_command() {
        let Some(url) = redis_url() else { return };
        let Some(proxy) = Proxy::start(&url).await else {
            // Straight to stderr: libtest would capture eprintln! and hide the notice.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipping the round-trip test: REDIS_URL is not redis://host:port\n",
            );
            return;
        };
        let prefix = unique_prefix();
        let store = RedisStore::connect(&proxy.url)
            .await
            .expect("connect through the proxy")
            .with_prefix(prefix.clone());
        let body = async move {
            proxy.take(); // the connection's handshake

            let (key, v0) = store.create(&live(json!({"n": 0}))).await.expect("create");
            let full = store.redis_key(&key);
            let sent = proxy.take();
            assert_eq!(sent.len(), 1, "create: {sent:?}");
            let set = &sent[0];
            assert_eq!(set[0].to_uppercase(), "SET", "{set:?}");
            assert_eq!(set[1], full);
            assert_eq!(set[2], r#"{"n":0}"#);
            assert_eq!(
                set[3].to_uppercase(),
                "NX",
                "create must never overwrite: {set:?}"
            );
            assert_eq!(set[4].to_uppercase(), "PX", "{set:?}");
            let ttl: i64 = set[5].parse().expect("a TTL in ms");
            assert!((3_590_000..=3_600_000).contains(&ttl), "{ttl}");

            let loaded = store.load(&key).await.expect("load").expect("loads");
            assert_eq!(proxy.take(), vec![vec!["GET".to_owned(), full.clone()]]);

            // The first save may have to load the script; after that, one EVALSHA.
            let SaveOutcome::Saved { version: v1, .. } = store
                .save(&key, &live(json!({"n": 1})), &loaded.version)
                .await
                .expect("save")
            else {
                panic!("save refused")
            };
            proxy.take();
            let outcome = store
                .save(&key, &live(json!({"n": 2})), &v1)
                .await
                .expect("save");
            assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
            let sent = proxy.take();
            assert_eq!(sent.len(), 1, "save: {sent:?}");
            assert_eq!(sent[0][0].to_uppercase(), "EVALSHA", "{sent:?}");
            assert_eq!(sent[0][2], "1", "the script touches one key");
            assert_eq!(sent[0][3], full);

            assert_eq!(
                store
                    .save(&key, &live(json!({"n": 3})), &v0)
                    .await
                    .expect("save"),
                SaveOutcome::Conflict
            );
            assert_eq!(proxy.take().len(), 1, "a conflict is one command too");

            assert!(store.exists(&key).await.expect("exists"));
            assert_eq!(proxy.take(), vec![vec!["EXISTS".to_owned(), full.clone()]]);
            store.delete(&key).await.expect("delete");
            assert_eq!(proxy.take(), vec![vec!["DEL".to_owned(), full.clone()]]);
            store.clear_expired().await.expect("clear_expired");
            assert!(proxy.take().is_empty(), "clear_expired sends nothing");

            // An unknown key costs one GET; a malformed cookie costs nothing (it never
            // becomes a key).
            assert!(store.parse_key("abc*defgh").is_none());
            let unknown = SessionKey::generate().expect("rng");
            assert!(store.load(&unknown).await.expect("load").is_none());
            assert_eq!(proxy.take().len(), 1);
        };
        cleaning_up(&url, &prefix, body).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_store_recovers_when_redis_comes_back() {
        let Some(url) = redis_url() else { return };
        let Some(proxy) = Proxy::start(&url).await else {
            // Straight to stderr: libtest would capture eprintln! and hide the notice.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipping the recovery test: REDIS_URL is not redis://host:port\n",
            );
            return;
        };
        let prefix = unique_prefix();
        let store = RedisStore::connect(&proxy.url)
            .await
            .expect("connect through the proxy")
            .with_prefix(prefix.clone());
        cleaning_up(&url, &prefix, outage(proxy, store)).await;
    }

    async fn outage(proxy: Proxy, store: RedisStore) {
        let (key, _) = store.create(&live(json!({"n": 1}))).await.expect("create");

        proxy.set_up(false);
        sleep(Duration::from_millis(100)).await;
        for _ in 0..3 {
            let r = timeout(NO_HANG, store.load(&key)).await.expect("load hung");
            assert!(is_unavailable(&r), "{r:?}");
            let r = timeout(NO_HANG, store.create(&live(json!({}))))
                .await
                .expect("create hung");
            assert!(is_unavailable(&r), "{r:?}");
        }

        proxy.set_up(true);
        let deadline = Instant::now() + NO_HANG;
        loop {
            match timeout(NO_HANG, store.load(&key)).await.expect("load hung") {
                Ok(Some(loaded)) => {
                    assert_eq!(loaded.data["n"], json!(1));
                    break;
                }
                other => {
                    assert!(Instant::now() < deadline, "never recovered: {other:?}");
                    sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    // ----- Redis Cluster -----

    /// Runs the suite against a cluster when `REDIS_CLUSTER_URLS` (comma-separated node
    /// URLs) is set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_on_a_cluster() {
        let urls = match std::env::var("REDIS_CLUSTER_URLS") {
            Ok(urls) if !urls.trim().is_empty() => urls,
            _ => {
                // Straight to stderr: libtest would capture eprintln! and hide the notice.
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    b"skipping Redis Cluster tests: REDIS_CLUSTER_URLS not set\n",
                );
                return;
            }
        };
        let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
        let prefix = unique_prefix();
        let store = RedisStore::cluster(&urls)
            .await
            .expect("connect to the cluster")
            .with_prefix(prefix.clone());
        assert!(format!("{store:?}").contains("cluster"));
        let outcome = tokio::spawn(cluster_checks(store)).await;
        // KEYS goes to every primary; DEL one key at a time, each to its own slot.
        let mut raw = ClusterClient::new(urls)
            .expect("cluster URLs")
            .get_async_connection()
            .await
            .expect("connect to the cluster");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut raw)
            .await
            .expect("KEYS");
        for key in keys {
            let _: i64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut raw)
                .await
                .expect("DEL");
        }
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("test task failed: {e}"),
            }
        }
    }

    async fn cluster_checks(store: RedisStore) {
        conformance::run(store.clone(), Exceptions::none()).await;
        // Every session is one key, so keys spread over the nodes without CROSSSLOT errors.
        let mut keys = Vec::new();
        for i in 0..20 {
            let (key, _) = store
                .create(&live(json!({ "i": i })))
                .await
                .expect("create");
            keys.push(key);
        }
        for (i, key) in keys.iter().enumerate() {
            let loaded = store.load(key).await.expect("load").expect("loads");
            assert_eq!(loaded.data["i"], json!(i));
            store.delete(key).await.expect("delete");
        }
    }
}
