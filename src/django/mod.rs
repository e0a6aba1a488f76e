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

use crate::store::Codec;

mod auth;
mod cache;
mod layer;
mod settings;
#[cfg(test)]
mod tests;

pub use auth::{SessionUser, session_auth_hash};
pub use cache::{CacheBackend, DjangoCache};
pub use settings::SessionEngine;

/// `django.contrib.auth`'s session key for the user's primary key (a string).
pub const SESSION_KEY: &str = "_auth_user_id";
/// `django.contrib.auth`'s session key for the dotted path of the authentication backend.
pub const BACKEND_SESSION_KEY: &str = "_auth_user_backend";
/// `django.contrib.auth`'s session key for the session auth hash.
pub const HASH_SESSION_KEY: &str = "_auth_user_hash";
/// Django's default authentication backend.
pub const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

/// Django's settings, named and defaulted as in settings.py, from which the matching store and
/// [`SessionConfig`] are built.
///
/// [`SessionConfig`]: crate::SessionConfig
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

    /// Django's `SessionBase.encode`/`decode` with these secrets: what the db, cached_db and
    /// file engines store.
    pub fn codec(&self) -> Codec {
        Codec::django(&self.secret_key, &self.secret_key_fallbacks)
    }
}
