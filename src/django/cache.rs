//! Django's `CACHES` settings, and which of them a Rust process can share.
//!
//! Django's `cached_db` and `cache` session engines keep sessions in the cache named by
//! `SESSION_CACHE_ALIAS`. Rust can share that cache only when it is a server both processes
//! reach and whose format it knows: Redis, through Django's own `RedisCache` or django-redis
//! with its default pickle serializer and no compressor. Every other backend is refused when
//! the layer is built, with the reason, because sharing it would silently diverge.

use std::collections::BTreeMap;

use crate::Error;

/// Django's `django.core.cache.backends.redis.RedisCache`.
pub(crate) const DJANGO_REDIS_CACHE: &str = "django.core.cache.backends.redis.RedisCache";
/// django-redis's backend.
pub(crate) const DJANGO_REDIS_PACKAGE: &str = "django_redis.cache.RedisCache";
/// Django's `DummyCache`: caches nothing.
pub(crate) const DUMMY_CACHE: &str = "django.core.cache.backends.dummy.DummyCache";
/// Django's default cache backend.
pub(crate) const LOCMEM_CACHE: &str = "django.core.cache.backends.locmem.LocMemCache";
/// Django's default `KEY_FUNCTION`.
const DEFAULT_KEY_FUNC: &str = "django.core.cache.backends.base.default_key_func";

/// One entry of Django's `CACHES` setting, as `settings.py` states it.
///
/// ```
/// use sessionbase::django::{CacheBackend, DjangoCache};
///
/// // CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
/// //                       "LOCATION": "redis://127.0.0.1:6379/0", "KEY_PREFIX": "shop"}}
/// let cache = DjangoCache::new("django.core.cache.backends.redis.RedisCache")
///     .with_location("redis://127.0.0.1:6379/0")
///     .with_key_prefix("shop");
/// assert_eq!(cache.backend().unwrap(), CacheBackend::Redis);
/// assert_eq!(cache.make_key("django.contrib.sessions.cache"), "shop:1:django.contrib.sessions.cache");
///
/// // Django's default cache lives in one process's memory: nothing else can see it.
/// let err = DjangoCache::new("django.core.cache.backends.locmem.LocMemCache").backend();
/// assert!(err.unwrap_err().to_string().contains("LocMemCache"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DjangoCache {
    /// `BACKEND`: the dotted path of the cache class.
    pub backend: String,
    /// `LOCATION`: the servers, in order (a string of several, split on `,` or `;`, as
    /// Django's `RedisCache` does). The first one is the primary, which takes the writes.
    pub location: Vec<String>,
    /// `KEY_PREFIX` (default `""`).
    pub key_prefix: String,
    /// `VERSION` (default `1`).
    pub version: i64,
    /// `KEY_FUNCTION` (default: Django's `default_key_func`). Any other function builds
    /// keys Rust cannot reproduce, and is refused.
    pub key_function: Option<String>,
    /// `OPTIONS`, as strings. Read for django-redis: `SERIALIZER`, `COMPRESSOR` and
    /// `CLIENT_CLASS` must be absent or django-redis's defaults (pickle, identity,
    /// `DefaultClient`); `PICKLE_VERSION` is accepted (any protocol is read; writes use
    /// protocol 5, which every Python that runs Django 5.2 reads). For Django's
    /// `RedisCache`, a `serializer` option is refused; connection options are not read.
    pub options: BTreeMap<String, String>,
}

/// The cache backends sessionbase shares with Django.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheBackend {
    /// `django.core.cache.backends.redis.RedisCache`.
    Redis,
    /// `django_redis.cache.RedisCache` (django-redis), default serializer and compressor.
    DjangoRedis,
    /// `django.core.cache.backends.dummy.DummyCache`: caches nothing, so `cached_db` is the
    /// `db` engine.
    Dummy,
}

impl CacheBackend {
    /// Whether the backend keeps its entries in Redis.
    pub fn is_redis(self) -> bool {
        matches!(self, Self::Redis | Self::DjangoRedis)
    }
}

impl DjangoCache {
    /// A cache with this `BACKEND` and Django's defaults for the rest.
    pub fn new(backend: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            location: Vec::new(),
            key_prefix: String::new(),
            version: 1,
            key_function: None,
            options: BTreeMap::new(),
        }
    }

    /// Django's default `CACHES["default"]`: a `LocMemCache`.
    pub fn locmem() -> Self {
        Self::new(LOCMEM_CACHE)
    }

    /// Sets `LOCATION`; several servers may be given separated by `,` or `;`.
    pub fn with_location(mut self, location: impl AsRef<str>) -> Self {
        self.location = location
            .as_ref()
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        self
    }

    /// Sets `KEY_PREFIX`.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets `VERSION`.
    pub fn with_version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// Sets `KEY_FUNCTION`.
    pub fn with_key_function(mut self, function: impl Into<String>) -> Self {
        self.key_function = Some(function.into());
        self
    }

    /// Sets one entry of `OPTIONS`.
    pub fn with_option(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }

    /// Django's `make_key(key)` with the default key function:
    /// `"<KEY_PREFIX>:<VERSION>:<key>"`.
    pub fn make_key(&self, key: &str) -> String {
        format!("{}:{}:{key}", self.key_prefix, self.version)
    }

    /// The primary server (the first of `LOCATION`), to which Django writes.
    pub fn primary(&self) -> Option<&str> {
        self.location.first().map(String::as_str)
    }

    /// The backend, if Rust can share it; otherwise an [`Error::Config`] that says why and
    /// what to configure instead.
    pub fn backend(&self) -> Result<CacheBackend, Error> {
        let backend = match self.backend.as_str() {
            DJANGO_REDIS_CACHE => CacheBackend::Redis,
            DJANGO_REDIS_PACKAGE => CacheBackend::DjangoRedis,
            DUMMY_CACHE => return Ok(CacheBackend::Dummy),
            other => return Err(unsupported(other)),
        };
        if let Some(function) = self.key_function.as_deref()
            && function != DEFAULT_KEY_FUNC
        {
            return Err(Error::Config(format!(
                "cache KEY_FUNCTION {function:?} builds keys sessionbase cannot reproduce; \
                 only Django's default_key_func (\"<KEY_PREFIX>:<VERSION>:<key>\") is supported"
            )));
        }
        match backend {
            CacheBackend::DjangoRedis => self.check_django_redis_options()?,
            _ => {
                if let Some(serializer) = self.options.get("serializer") {
                    return Err(Error::Config(format!(
                        "RedisCache OPTIONS serializer {serializer:?} is not supported: sessionbase \
                         reads and writes Django's default RedisSerializer (pickle)"
                    )));
                }
            }
        }
        match self.primary() {
            Some(url) if is_redis_url(url) => Ok(backend),
            Some(url) => Err(Error::Config(format!(
                "cache LOCATION {url:?} is not a Redis URL (redis://, rediss:// or unix://)"
            ))),
            None => Err(Error::Config(format!(
                "cache {} has no LOCATION: give the Redis URL Django uses",
                self.backend
            ))),
        }
    }

    fn check_django_redis_options(&self) -> Result<(), Error> {
        const DEFAULTS: [(&str, &str); 3] = [
            (
                "SERIALIZER",
                "django_redis.serializers.pickle.PickleSerializer",
            ),
            (
                "COMPRESSOR",
                "django_redis.compressors.identity.IdentityCompressor",
            ),
            ("CLIENT_CLASS", "django_redis.client.DefaultClient"),
        ];
        for (name, default) in DEFAULTS {
            if let Some(value) = self.options.get(name)
                && value != default
            {
                return Err(Error::Config(format!(
                    "django-redis OPTIONS {name} {value:?} is not supported: sessionbase reads and \
                     writes django-redis's defaults only ({default})"
                )));
            }
        }
        if let Some(version) = self.options.get("PICKLE_VERSION")
            && version.trim().parse::<i32>().is_err()
        {
            return Err(Error::Config(format!(
                "django-redis OPTIONS PICKLE_VERSION {version:?} is not an integer"
            )));
        }
        Ok(())
    }
}

fn is_redis_url(url: &str) -> bool {
    ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

/// Why a cache backend cannot be shared, and what to use instead.
fn unsupported(backend: &str) -> Error {
    let why = match backend.rsplit('.').next().unwrap_or(backend) {
        "LocMemCache" => {
            "lives in each Django process's own memory, which no other process can read or \
             invalidate: a Rust write would not be seen by Django, and Django's next save would \
             overwrite it"
        }
        "FileBasedCache" => {
            "keeps pickled files with Django's own expiry header on one machine's disk; \
             sessionbase does not read or invalidate it"
        }
        "DatabaseCache" => "is not supported by sessionbase",
        "PyMemcacheCache" | "PyLibMCCache" | "MemcachedCache" => {
            "is memcached, which sessionbase does not support yet (no well-kept async Rust \
             memcached client that distributes keys over several servers as pymemcache does)"
        }
        _ => "is not a cache backend sessionbase knows",
    };
    Error::Config(format!(
        "the session cache backend {backend:?} {why}. Share sessions through a Redis cache \
         (django.core.cache.backends.redis.RedisCache, or django_redis.cache.RedisCache with its \
         default serializer), or use SESSION_ENGINE = \"django.contrib.sessions.backends.db\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_splits_as_django_does() {
        let cache = DjangoCache::new(DJANGO_REDIS_CACHE)
            .with_location("redis://a:6379/0, redis://b:6379/0;redis://c:6379/0");
        assert_eq!(cache.location.len(), 3);
        assert_eq!(cache.primary(), Some("redis://a:6379/0"));
        assert_eq!(cache.backend().unwrap(), CacheBackend::Redis);
    }

    #[test]
    fn keys_are_djangos_default_key_func() {
        let cache = DjangoCache::new(DJANGO_REDIS_CACHE).with_version(3);
        assert_eq!(cache.make_key("k"), ":3:k");
    }

    #[test]
    fn unshareable_backends_and_options_are_refused() {
        for backend in [
            LOCMEM_CACHE,
            "django.core.cache.backends.filebased.FileBasedCache",
            "django.core.cache.backends.db.DatabaseCache",
            "django.core.cache.backends.memcached.PyMemcacheCache",
            "myapp.caches.Custom",
        ] {
            let err = DjangoCache::new(backend)
                .with_location("redis://127.0.0.1/")
                .backend()
                .unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{backend}");
            assert!(err.to_string().contains("RedisCache"), "{err}");
        }
        let redis = || DjangoCache::new(DJANGO_REDIS_PACKAGE).with_location("redis://h/1");
        assert_eq!(redis().backend().unwrap(), CacheBackend::DjangoRedis);
        for (name, value) in [
            ("SERIALIZER", "django_redis.serializers.json.JSONSerializer"),
            ("COMPRESSOR", "django_redis.compressors.zlib.ZlibCompressor"),
            ("CLIENT_CLASS", "django_redis.client.ShardClient"),
            ("PICKLE_VERSION", "high"),
        ] {
            assert!(
                redis().with_option(name, value).backend().is_err(),
                "{name}"
            );
        }
        assert!(
            redis()
                .with_option("PICKLE_VERSION", "-1")
                .backend()
                .is_ok()
        );
        assert!(redis().with_key_function("myapp.key").backend().is_err());
        assert!(
            DjangoCache::new(DJANGO_REDIS_CACHE)
                .with_location("memcache://h")
                .backend()
                .is_err()
        );
        assert!(DjangoCache::new(DJANGO_REDIS_CACHE).backend().is_err());
        assert_eq!(
            DjangoCache::new(DUMMY_CACHE).backend().unwrap(),
            CacheBackend::Dummy
        );
    }
}
