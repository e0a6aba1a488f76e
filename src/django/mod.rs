//! Sharing sessions with a Django app: Django's settings as a Django project states them,
//! and what `django.contrib.auth` keeps in the session.
//!
//! Point both apps at the same database (or cookie secret, or directory) and secret, and a
//! user logged in through Django is logged in on the axum side too, and the other way round.
//!
//! ```
//! use sessionbase::django::DjangoConfig;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let django = DjangoConfig::new("the SECRET_KEY of settings.py")
//!     .with_session_engine("django.contrib.sessions.backends.signed_cookies")
//!     .with_secret_key_fallbacks(["the previous SECRET_KEY"]);
//! let layer = django.layer().await?;
//! # Ok::<(), sessionbase::Error>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use subtle::ConstantTimeEq;
use time::Duration;

use crate::store::Codec;
use crate::{Error, SameSite, Session, SessionConfig, SessionLayer};

mod auth;
mod cache;

pub use auth::{SessionUser, session_auth_hash};
pub use cache::{CacheBackend, DjangoCache};

/// `django.contrib.auth`'s session key for the user's primary key (a string).
pub const SESSION_KEY: &str = "_auth_user_id";
/// `django.contrib.auth`'s session key for the dotted path of the authentication backend.
pub const BACKEND_SESSION_KEY: &str = "_auth_user_backend";
/// `django.contrib.auth`'s session key for the session auth hash.
pub const HASH_SESSION_KEY: &str = "_auth_user_hash";
/// Django's default authentication backend.
pub const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

/// Django's `SESSION_ENGINE` values that sessionbase can share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEngine {
    /// `django.contrib.sessions.backends.db`: the `django_session` table.
    Db,
    /// `django.contrib.sessions.backends.cached_db`: the table, with Django's cache
    /// (`SESSION_CACHE_ALIAS`) in front of it. The Rust side reads and writes the table (the
    /// source of truth, whose stored text its compare-and-swap saves check) and deletes
    /// Django's cache entry after every write, so that Django's next read refills it from the
    /// table. See [`CachedDbStore`](crate::store::CachedDbStore) for why it deletes rather
    /// than rewrites the entry.
    CachedDb,
    /// `django.contrib.sessions.backends.cache`: the cache alone (Redis), in Django's
    /// format (a pickled dict under `<KEY_PREFIX>:<VERSION>:django.contrib.sessions.cache<key>`).
    Cache,
    /// `django.contrib.sessions.backends.signed_cookies`.
    SignedCookies,
    /// `django.contrib.sessions.backends.file`.
    File,
}

impl SessionEngine {
    /// Parses `SESSION_ENGINE` as written in settings.py (the full dotted path or its last
    /// part).
    pub fn parse(engine: &str) -> Result<Self, Error> {
        let short = engine
            .strip_prefix("django.contrib.sessions.backends.")
            .unwrap_or(engine);
        match short {
            "db" => Ok(Self::Db),
            "cached_db" => Ok(Self::CachedDb),
            "cache" => Ok(Self::Cache),
            "signed_cookies" => Ok(Self::SignedCookies),
            "file" => Ok(Self::File),
            _ => Err(Error::Config(format!(
                "SESSION_ENGINE {engine:?} is not one sessionbase shares \
                 (db, cached_db, cache, signed_cookies, file)"
            ))),
        }
    }

    /// The prefix Django's engine puts before the session key in the cache
    /// (`cache_key_prefix`), for the engines that use a cache.
    pub fn cache_key_prefix(self) -> Option<&'static str> {
        match self {
            Self::CachedDb => Some("django.contrib.sessions.cached_db"),
            Self::Cache => Some("django.contrib.sessions.cache"),
            _ => None,
        }
    }
}

/// Django's settings, named and defaulted as in settings.py, from which the matching store and
/// [`SessionConfig`] are built.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DjangoConfig {
    /// `SECRET_KEY`.
    pub secret_key: String,
    /// `SECRET_KEY_FALLBACKS`: old keys still accepted, never used to sign.
    pub secret_key_fallbacks: Vec<String>,
    /// `SESSION_ENGINE` (default `django.contrib.sessions.backends.db`).
    pub session_engine: String,
    /// `SESSION_COOKIE_NAME` (default `sessionid`).
    pub session_cookie_name: String,
    /// `SESSION_COOKIE_AGE` in seconds (default 1209600).
    pub session_cookie_age: i64,
    /// `SESSION_COOKIE_DOMAIN` (default `None`).
    pub session_cookie_domain: Option<String>,
    /// `SESSION_COOKIE_PATH` (default `/`).
    pub session_cookie_path: String,
    /// `SESSION_COOKIE_SECURE` (default `false`).
    pub session_cookie_secure: bool,
    /// `SESSION_COOKIE_HTTPONLY` (default `true`).
    pub session_cookie_httponly: bool,
    /// `SESSION_COOKIE_SAMESITE`: `"Lax"` (default), `"Strict"`, `"None"`, or `None`.
    pub session_cookie_samesite: Option<String>,
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE` (default `false`).
    pub session_expire_at_browser_close: bool,
    /// `SESSION_SAVE_EVERY_REQUEST` (default `false`).
    pub session_save_every_request: bool,
    /// `SESSION_FILE_PATH` (default: the system temporary directory, as in Django).
    pub session_file_path: Option<PathBuf>,
    /// The database of `DATABASES["default"]` for the db engines, as a URL:
    /// `sqlite:///path/to/db.sqlite3`, `postgres://user@host:5432/name` or
    /// `mysql://user@host:3306/name` (MySQL or MariaDB).
    pub database_url: Option<String>,
    /// The session table (default `django_session`).
    pub db_table: String,
    /// `CACHES`, by alias (default: Django's, a `LocMemCache` under `default`).
    pub caches: BTreeMap<String, DjangoCache>,
    /// `SESSION_CACHE_ALIAS` (default `default`): the cache of the `cached_db` and `cache`
    /// engines.
    pub session_cache_alias: String,
}

impl DjangoConfig {
    /// Django's defaults with `SECRET_KEY` set.
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            secret_key_fallbacks: Vec::new(),
            session_engine: "django.contrib.sessions.backends.db".into(),
            session_cookie_name: "sessionid".into(),
            session_cookie_age: 1_209_600,
            session_cookie_domain: None,
            session_cookie_path: "/".into(),
            session_cookie_secure: false,
            session_cookie_httponly: true,
            session_cookie_samesite: Some("Lax".into()),
            session_expire_at_browser_close: false,
            session_save_every_request: false,
            session_file_path: None,
            database_url: None,
            db_table: "django_session".into(),
            caches: BTreeMap::from([("default".to_owned(), DjangoCache::locmem())]),
            session_cache_alias: "default".into(),
        }
    }

    /// Sets `CACHES[alias]`.
    pub fn with_cache(mut self, alias: impl Into<String>, cache: DjangoCache) -> Self {
        self.caches.insert(alias.into(), cache);
        self
    }

    /// Sets `SESSION_CACHE_ALIAS`.
    pub fn with_session_cache_alias(mut self, alias: impl Into<String>) -> Self {
        self.session_cache_alias = alias.into();
        self
    }

    /// The cache of the session engine (`CACHES[SESSION_CACHE_ALIAS]`) and its backend,
    /// when Rust can share it.
    pub fn session_cache(&self) -> Result<(&DjangoCache, CacheBackend), Error> {
        let alias = &self.session_cache_alias;
        let cache = self.caches.get(alias).ok_or_else(|| {
            Error::Config(format!(
                "SESSION_CACHE_ALIAS is {alias:?} but CACHES has no such alias"
            ))
        })?;
        let backend = cache.backend().map_err(|e| match e {
            Error::Config(why) => Error::Config(format!("CACHES[{alias:?}]: {why}")),
            other => other,
        })?;
        Ok((cache, backend))
    }

    /// Sets `SECRET_KEY_FALLBACKS`.
    pub fn with_secret_key_fallbacks<I, S>(mut self, fallbacks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.secret_key_fallbacks = fallbacks.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `SESSION_ENGINE`.
    pub fn with_session_engine(mut self, engine: impl Into<String>) -> Self {
        self.session_engine = engine.into();
        self
    }

    /// Sets the database URL for the db engines.
    pub fn with_database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Sets `SESSION_FILE_PATH`.
    pub fn with_session_file_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.session_file_path = Some(path.into());
        self
    }

    /// Sets `SESSION_COOKIE_NAME`.
    pub fn with_session_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.session_cookie_name = name.into();
        self
    }

    /// Sets `SESSION_COOKIE_AGE` in seconds.
    pub fn with_session_cookie_age(mut self, seconds: i64) -> Self {
        self.session_cookie_age = seconds;
        self
    }

    /// Sets `SESSION_SAVE_EVERY_REQUEST`.
    pub fn with_session_save_every_request(mut self, yes: bool) -> Self {
        self.session_save_every_request = yes;
        self
    }

    /// Sets `SESSION_EXPIRE_AT_BROWSER_CLOSE`.
    pub fn with_session_expire_at_browser_close(mut self, yes: bool) -> Self {
        self.session_expire_at_browser_close = yes;
        self
    }

    /// The engine, parsed.
    pub fn engine(&self) -> Result<SessionEngine, Error> {
        SessionEngine::parse(&self.session_engine)
    }

    /// The [`SessionConfig`] these settings describe, validated.
    pub fn session_config(&self) -> Result<SessionConfig, Error> {
        let same_site = match self.session_cookie_samesite.as_deref() {
            None | Some("") => None,
            Some(v) if v.eq_ignore_ascii_case("lax") => Some(SameSite::Lax),
            Some(v) if v.eq_ignore_ascii_case("strict") => Some(SameSite::Strict),
            Some(v) if v.eq_ignore_ascii_case("none") => Some(SameSite::None),
            Some(v) => {
                // Django's set_cookie raises ValueError for these.
                return Err(Error::Config(format!(
                    "SESSION_COOKIE_SAMESITE {v:?} must be 'Lax', 'Strict', 'None' or None"
                )));
            }
        };
        let config = SessionConfig::default()
            .with_cookie_name(&self.session_cookie_name)
            .with_cookie_age(Duration::seconds(self.session_cookie_age))
            .with_cookie_domain(self.session_cookie_domain.clone())
            .with_cookie_path(&self.session_cookie_path)
            .with_cookie_secure(self.session_cookie_secure)
            .with_cookie_http_only(self.session_cookie_httponly)
            .with_cookie_same_site(same_site)
            .with_expire_at_browser_close(self.session_expire_at_browser_close)
            .with_save_every_request(self.session_save_every_request);
        config.validate()?;
        Ok(config)
    }

    /// Django's `SessionBase.encode`/`decode` with these secrets: what the db, cached_db and
    /// file engines store.
    pub fn codec(&self) -> Codec {
        Codec::django(&self.secret_key, &self.secret_key_fallbacks)
    }

    /// The session layer for these settings: the engine's store, configured to read and write
    /// exactly what Django does, and the matching [`SessionConfig`]. The db engines create
    /// the session table if it is missing (Django's migration does the same).
    ///
    /// Settings that cannot be shared fail here, with the reason: among them a `cached_db`
    /// or `cache` engine on a cache other processes cannot reach (Django's default
    /// `LocMemCache`, `FileBasedCache`, memcached), which would silently diverge.
    pub async fn layer(&self) -> Result<SessionLayer, Error> {
        if self.secret_key.is_empty() {
            return Err(Error::Config("SECRET_KEY must not be empty".into()));
        }
        let config = self.session_config()?;
        let engine = self.engine()?;
        let layer = match engine {
            SessionEngine::Db => self.database_layer(None).await?,
            SessionEngine::CachedDb => match self.session_cache()? {
                (_, CacheBackend::Dummy) => self.database_layer(None).await?,
                (cache, _) => self.database_layer(Some(cache)).await?,
            },
            SessionEngine::Cache => self.cache_layer().await?,
            SessionEngine::SignedCookies => self.cookie_layer()?,
            SessionEngine::File => self.file_layer()?,
        };
        layer.with_config(config)
    }

    /// Django's session cache as a [`RedisStore`](crate::RedisStore) in Django's format:
    /// keys `make_key(<engine prefix> + session_key)`, pickled values.
    #[cfg(feature = "redis")]
    async fn redis_cache(
        &self,
        cache: &DjangoCache,
        engine: SessionEngine,
    ) -> Result<crate::RedisStore, Error> {
        let url = cache.primary().unwrap_or_default();
        let prefix = cache.make_key(engine.cache_key_prefix().unwrap_or_default());
        Ok(crate::RedisStore::connect(url)
            .await?
            .with_prefix(prefix)
            .with_pickle())
    }

    async fn cache_layer(&self) -> Result<SessionLayer, Error> {
        let (cache, backend) = self.session_cache()?;
        if !backend.is_redis() {
            return Err(Error::Config(
                "the cache engine on DummyCache keeps no session at all (Django loses every \
                 one); configure a Redis cache for SESSION_CACHE_ALIAS"
                    .into(),
            ));
        }
        #[cfg(feature = "redis")]
        {
            Ok(SessionLayer::new(
                self.redis_cache(cache, SessionEngine::Cache).await?,
            ))
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = cache;
            Err(Error::Config(
                "the cache engine on Redis needs the `redis` feature".into(),
            ))
        }
    }

    #[cfg(feature = "cookie")]
    fn cookie_layer(&self) -> Result<SessionLayer, Error> {
        let store = crate::CookieStore::new(&self.secret_key)
            .with_fallbacks(&self.secret_key_fallbacks)
            .with_cookie_age(Duration::seconds(self.session_cookie_age))
            .with_cookie_name(&self.session_cookie_name);
        Ok(SessionLayer::new(store))
    }

    #[cfg(not(feature = "cookie"))]
    fn cookie_layer(&self) -> Result<SessionLayer, Error> {
        Err(Error::Config(
            "the signed_cookies engine needs the `cookie` feature".into(),
        ))
    }

    #[cfg(feature = "file")]
    fn file_layer(&self) -> Result<SessionLayer, Error> {
        let dir = self
            .session_file_path
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let store = crate::FileStore::new(dir)?
            .with_prefix(&self.session_cookie_name)
            .with_codec(self.codec())
            .with_cookie_age(Duration::seconds(self.session_cookie_age));
        Ok(SessionLayer::new(store))
    }

    #[cfg(not(feature = "file"))]
    fn file_layer(&self) -> Result<SessionLayer, Error> {
        Err(Error::Config(
            "the file engine needs the `file` feature".into(),
        ))
    }

    /// The db engines' layer; with `cache`, Django's `cached_db` entries in it are deleted
    /// after every write.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
        allow(unused_variables)
    )]
    async fn database_layer(&self, cache: Option<&DjangoCache>) -> Result<SessionLayer, Error> {
        let url = self.database_url.as_deref().ok_or_else(|| {
            Error::Config(
                "the db and cached_db engines need a database URL (DATABASES['default'])".into(),
            )
        })?;
        if url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            {
                let store = crate::SqliteStore::connect(url)
                    .await?
                    .with_table(&self.db_table)?
                    .with_codec(self.codec());
                store.migrate().await?;
                return self.with_cache_invalidation(store, cache).await;
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            #[cfg(feature = "postgres")]
            {
                let store = crate::PostgresStore::connect(url)
                    .await?
                    .with_table(&self.db_table)?
                    .with_codec(self.codec());
                store.migrate().await?;
                return self.with_cache_invalidation(store, cache).await;
            }
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            #[cfg(feature = "mysql")]
            {
                let store = crate::MySqlStore::connect(url)
                    .await?
                    .with_table(&self.db_table)?
                    .with_codec(self.codec());
                store.migrate().await?;
                return self.with_cache_invalidation(store, cache).await;
            }
        }
        Err(Error::Config(
            "the database URL must be sqlite: (feature `sqlite`), postgres: (feature `postgres`) \
             or mysql: (feature `mysql`)"
                .into(),
        ))
    }

    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    async fn with_cache_invalidation<S>(
        &self,
        store: S,
        cache: Option<&DjangoCache>,
    ) -> Result<SessionLayer, Error>
    where
        S: crate::SessionStore,
    {
        let Some(cache) = cache else {
            return Ok(SessionLayer::new(store));
        };
        #[cfg(feature = "redis")]
        {
            let django_cache = self.redis_cache(cache, SessionEngine::CachedDb).await?;
            Ok(SessionLayer::new(crate::store::CachedDbStore::new(
                store,
                django_cache,
            )))
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = cache;
            Err(Error::Config(
                "cached_db on a Redis cache needs the `redis` feature".into(),
            ))
        }
    }

    /// Django's `AbstractBaseUser.get_session_auth_hash()` for a user whose `password`
    /// column holds `password_hash`, with the current `SECRET_KEY`.
    pub fn session_auth_hash(&self, password_hash: &str) -> String {
        session_auth_hash(&self.secret_key, password_hash)
    }

    /// Django's `get_user(request)` check of the session auth hash: whether the session
    /// belongs to the user whose password hash is `password_hash`.
    ///
    /// A hash made with a fallback secret is accepted and, as Django does, the session moves
    /// to a fresh key and gets the hash of the current secret. A mismatch (the password
    /// changed, or the session was tampered with) flushes the session, as Django does, and
    /// answers `false`.
    pub async fn verify_session(
        &self,
        session: &Session,
        password_hash: &str,
    ) -> Result<bool, Error> {
        let stored: String = session.get(HASH_SESSION_KEY)?.unwrap_or_default();
        let matches = |secret: &str| {
            bool::from(
                session_auth_hash(secret, password_hash)
                    .as_bytes()
                    .ct_eq(stored.as_bytes()),
            )
        };
        if matches(&self.secret_key) {
            return Ok(true);
        }
        if self.secret_key_fallbacks.iter().any(|s| matches(s)) {
            session.cycle_key().await?;
            session.insert(HASH_SESSION_KEY, self.session_auth_hash(password_hash))?;
            return Ok(true);
        }
        session.flush().await?;
        Ok(false)
    }

    /// Django's `django.contrib.auth.login(request, user, backend)`: logs the user in so that
    /// Django sees `request.user` as them. The session key is cycled (against fixation), or
    /// the session flushed when it belonged to another user.
    pub async fn login(
        &self,
        session: &Session,
        user_id: &str,
        backend: &str,
        password_hash: &str,
    ) -> Result<(), Error> {
        let hash = self.session_auth_hash(password_hash);
        match SessionUser::from_session(session)? {
            Some(current) => {
                let same_hash = bool::from(current.hash.as_bytes().ct_eq(hash.as_bytes()));
                if current.user_id != user_id || !same_hash {
                    session.flush().await?;
                }
            }
            None => session.cycle_key().await?,
        }
        session.insert(SESSION_KEY, user_id)?;
        session.insert(BACKEND_SESSION_KEY, backend)?;
        session.insert(HASH_SESSION_KEY, hash)?;
        Ok(())
    }

    /// Django's `django.contrib.auth.logout(request)`: flushes the session.
    pub async fn logout(&self, session: &Session) -> Result<(), Error> {
        session.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_and_samesite_parse_as_django_states_them() {
        assert_eq!(
            SessionEngine::parse("django.contrib.sessions.backends.db").unwrap(),
            SessionEngine::Db
        );
        assert_eq!(
            SessionEngine::parse("signed_cookies").unwrap(),
            SessionEngine::SignedCookies
        );
        assert_eq!(
            SessionEngine::parse("django.contrib.sessions.backends.cache").unwrap(),
            SessionEngine::Cache
        );
        assert!(SessionEngine::parse("django.contrib.sessions.backends.cache_db").is_err());
        let mut config = DjangoConfig::new("s");
        config.session_cookie_samesite = Some("strict".into());
        assert_eq!(
            config.session_config().unwrap().cookie_same_site,
            Some(SameSite::Strict)
        );
        config.session_cookie_samesite = Some("sometimes".into());
        assert!(config.session_config().is_err());
    }

    async fn layer_error(config: DjangoConfig) -> String {
        match config.layer().await {
            Ok(_) => panic!("the layer was built"),
            Err(Error::Config(message)) => message,
            Err(other) => panic!("not a configuration error: {other}"),
        }
    }

    /// Every cache configuration a Rust process cannot share fails at startup, saying why.
    #[tokio::test]
    async fn unshareable_caches_fail_at_startup() {
        let cached_db = || {
            DjangoConfig::new("s")
                .with_session_engine("django.contrib.sessions.backends.cached_db")
                .with_database_url("sqlite::memory:")
        };
        // Django's default CACHES: a LocMemCache.
        let message = layer_error(cached_db()).await;
        assert!(
            message.contains("LocMemCache") && message.contains("RedisCache"),
            "{message}"
        );
        for backend in [
            "django.core.cache.backends.filebased.FileBasedCache",
            "django.core.cache.backends.memcached.PyMemcacheCache",
            "django.core.cache.backends.db.DatabaseCache",
        ] {
            let config =
                cached_db().with_cache("default", DjangoCache::new(backend).with_location("x"));
            let message = layer_error(config).await;
            assert!(message.contains(backend), "{message}");
        }
        let message = layer_error(cached_db().with_session_cache_alias("sessions")).await;
        assert!(message.contains("no such alias"), "{message}");
        let compressed = DjangoCache::new("django_redis.cache.RedisCache")
            .with_location("redis://127.0.0.1:6379/0")
            .with_option("COMPRESSOR", "django_redis.compressors.zlib.ZlibCompressor");
        let message = layer_error(cached_db().with_cache("default", compressed)).await;
        assert!(message.contains("COMPRESSOR"), "{message}");
        // The cache engine keeps nothing on DummyCache.
        let dummy = DjangoConfig::new("s")
            .with_session_engine("cache")
            .with_cache("default", DjangoCache::new(cache::DUMMY_CACHE));
        let message = layer_error(dummy).await;
        assert!(message.contains("DummyCache"), "{message}");
        // cached_db on DummyCache is the db engine: fine.
        let layer = cached_db()
            .with_cache("default", DjangoCache::new(cache::DUMMY_CACHE))
            .layer()
            .await;
        assert!(layer.is_ok(), "{:?}", layer.err());
    }
}
