//! Django's session framework for axum and any Tower service.
//!
//! A [`SessionLayer`] reads the session cookie, hands the handler a [`Session`] with every
//! method of Django's `SessionBase`, then saves what changed and sets the cookie with the
//! computed expiry, exactly as Django's `SessionMiddleware` does.
//!
//! ```
//! use axum::{Router, routing::get};
//! use sessionbase::{MemoryStore, Session, SessionLayer};
//!
//! async fn index(session: Session) -> Result<String, sessionbase::Error> {
//!     let visits: u64 = session.get("visits")?.unwrap_or(0);
//!     session.insert("visits", visits + 1)?;
//!     Ok(format!("{visits} earlier visits"))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(index))
//!     .layer(SessionLayer::new(MemoryStore::new()));
//! ```
//!
//! # Django, in Rust
//!
//! | Django | sessionbase |
//! |---|---|
//! | `s[key]`, `s.get(key)` | [`Session::get`], [`Session::get_value`] |
//! | `s[key] = v` | [`Session::insert`], [`Session::insert_value`] |
//! | `del s[key]`, `s.pop(key)` | [`Session::remove`], [`Session::pop`] |
//! | `s.setdefault(key, v)` | [`Session::setdefault`] |
//! | `s.update(d)` | [`Session::update`] |
//! | `key in s` | [`Session::contains_key`] |
//! | `keys()`, `values()`, `items()`, `len()` | [`Session::keys`], [`Session::values`], [`Session::items`], [`Session::len`] |
//! | `clear()`, `is_empty()` | [`Session::clear`], [`Session::is_empty`] |
//! | `modified`, `accessed` | [`Session::modified`], [`Session::set_modified`], [`Session::accessed`] |
//! | `session_key` | [`Session::session_key`] |
//! | `set_test_cookie()` & co. | [`Session::set_test_cookie`], [`Session::test_cookie_worked`], [`Session::delete_test_cookie`] |
//! | `set_expiry(v)` | [`Session::set_expiry`] with an [`Expiry`] |
//! | `get_expiry_age()`, `get_expiry_date()` | [`Session::get_expiry_age`], [`Session::get_expiry_date`], and `_with` for `modification=`/`expiry=` |
//! | `get_expire_at_browser_close()`, `get_session_cookie_age()` | same names |
//! | `flush()`, `cycle_key()` | [`Session::flush`], [`Session::cycle_key`] (async) |
//! | `save()`, `create()`, `delete()`, `exists(key)` | [`Session::save`], [`Session::create`], [`Session::delete`], [`Session::exists`] (async) |
//! | `SessionStore()`, `SessionStore(key)` | [`Session::new`], [`Session::load`] |
//! | `clear_expired()` | [`SessionStore::clear_expired`] |
//!
//! Settings are [`SessionConfig`]'s fields; stores implement [`SessionStore`]. The session
//! lifecycle is announced as audit [`events`] (and counted with the `metrics` feature).

#![cfg_attr(docsrs, feature(doc_cfg))]
// The library only: the benchmarks' and tests' counting allocators need `unsafe`.
#![forbid(unsafe_code)]

mod config;
mod dict_key;
#[cfg(feature = "django")]
pub mod django;
mod error;
pub mod events;
pub mod expiry;
mod finite;
mod instruments;
mod key;
mod middleware;
mod session;
pub mod signing;
pub mod store;

pub use config::{SameSite, SessionConfig};
pub use dict_key::DictKey;
pub use error::{BoxError, Error};
pub use events::{EventHook, SessionEvent, SessionEventKind};
pub use expiry::Expiry;
pub use key::SessionKey;
pub use middleware::{DefaultOnError, OnError, ResponseFuture, SessionLayer, SessionService};
pub use session::Session;
#[cfg(feature = "cookie")]
pub use store::CookieStore;
#[cfg(feature = "cookie-encrypted")]
pub use store::EncryptedCookieStore;
#[cfg(feature = "file")]
pub use store::FileStore;
#[cfg(feature = "memory")]
pub use store::MemoryStore;
#[cfg(feature = "mysql")]
pub use store::MySqlStore;
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "redis")]
pub use store::RedisStore;
pub use store::SessionStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;

/// What `benches/set_cookie.rs` compares with the `cookie`, `httpdate` and `time` crates:
/// not part of the API.
#[doc(hidden)]
pub mod bench_support {
    use http::HeaderValue;
    use time::OffsetDateTime;

    use crate::SessionConfig;
    use crate::middleware::set_cookie::{CookieTemplate, push_http_date, set_cookie};

    /// The session's `Set-Cookie`, rendered as the middleware renders it.
    #[derive(Debug)]
    pub struct SetCookieRenderer(CookieTemplate);

    impl SetCookieRenderer {
        /// The template of `config`, built once.
        pub fn new(config: &SessionConfig) -> Self {
            Self(CookieTemplate::new(config))
        }

        /// `Set-Cookie` for `value` with `max_age` (`None`: browser-length) as of `now`.
        pub fn render(
            &self,
            value: &str,
            max_age: Option<i64>,
            now: OffsetDateTime,
        ) -> Option<HeaderValue> {
            set_cookie(&self.0, value, max_age, now)
        }
    }

    /// `expires`'s date for the Unix time `seconds`, as the middleware writes it.
    pub fn http_date(out: &mut Vec<u8>, seconds: i64) {
        push_http_date(out, seconds);
    }
}

// Compiles the README's examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
