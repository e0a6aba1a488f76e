//! Django's settings read as Django reads them: `SESSION_ENGINE`, the session cookie's
//! settings and `SESSION_CACHE_ALIAS`.

use time::Duration;

use super::{CacheBackend, DjangoCache, DjangoConfig};
use crate::{Error, SameSite, SessionConfig};

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

impl DjangoConfig {
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

    /// The engine, parsed.
    pub fn engine(&self) -> Result<SessionEngine, Error> {
        SessionEngine::parse(&self.session_engine)
    }

    /// The [`SessionConfig`] these settings describe, validated, and marked
    /// [`shared_with_django`](SessionConfig::shared_with_django): a layer with this
    /// configuration refuses a store whose records Django cannot read.
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
            .with_save_every_request(self.session_save_every_request)
            .with_shared_with_django(true);
        config.validate()?;
        Ok(config)
    }
}
