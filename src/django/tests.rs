use super::*;
use crate::{Error, SameSite};

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
