//! The store each `SESSION_ENGINE` needs, built from the database URL, the cache or the
//! directory, and the layer around it.

use super::{CacheBackend, DjangoCache, DjangoConfig, SessionEngine};
use crate::{Error, SessionLayer};

impl DjangoConfig {
    /// The session layer for these settings: the engine's store, configured to read and write
    /// exactly what Django does, and the matching [`SessionConfig`]. The db engines create
    /// the session table if it is missing (Django's migration does the same).
    ///
    /// Settings that cannot be shared fail here, with the reason: among them a `cached_db`
    /// or `cache` engine on a cache other processes cannot reach (Django's default
    /// `LocMemCache`, `FileBasedCache`, memcached), which would silently diverge.
    ///
    /// [`SessionConfig`]: crate::SessionConfig
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
    /// keys `make_key(<engine prefix> + session_key)`, pickled values. A user's sessions are
    /// listed by a scan, since Django's writes never update the store's user index.
    #[cfg(feature = "redis")]
    async fn redis_cache(
        &self,
        cache: &DjangoCache,
        engine: SessionEngine,
    ) -> Result<crate::RedisStore, Error> {
        let url = cache.primary().unwrap_or_default();
        let prefix = cache.make_key(engine.cache_key_prefix().unwrap_or_default());
        crate::RedisStore::connect(url)
            .await?
            .with_prefix(prefix)
            .with_pickle()
            .with_user_scan()
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
        let store =
            crate::CookieStore::new(&self.secret_key).with_fallbacks(&self.secret_key_fallbacks);
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
        // The prefix (SESSION_COOKIE_NAME) and the cookie age come from the layer's
        // configuration, as for every store.
        let store = crate::FileStore::new(dir)?.with_codec(self.codec());
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
}
