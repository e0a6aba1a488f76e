//! `CookieStore`: the whole session in a signed cookie (Django's `signed_cookies`).

use std::fmt;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::preserved::Preserved;
use super::{LoadedRecord, Record, SaveOutcome, SessionStore, Version};
use crate::middleware::set_cookie::MAX_COOKIE_SIZE;
use crate::signing::{COOKIE_SALT, Signer};
use crate::{Error, SessionConfig, SessionKey};
use seal::is_signed_value;

#[cfg(feature = "cookie-encrypted")]
mod encrypted;
mod seal;
#[cfg(test)]
mod tests;

#[cfg(feature = "cookie-encrypted")]
pub use encrypted::EncryptedCookieStore;

/// How far ahead of this server's clock a signing time may be: five minutes.
const DEFAULT_FUTURE_LEEWAY: Duration = Duration::minutes(5);

/// Django's `SESSION_COOKIE_AGE`: two weeks.
const DEFAULT_COOKIE_AGE: Duration = Duration::seconds(1_209_600);
/// Django's `SESSION_COOKIE_NAME`.
const DEFAULT_COOKIE_NAME: &str = "sessionid";

/// Sessions kept whole in a signed cookie: Django's `signed_cookies` backend. Nothing is
/// stored on the server.
///
/// The session data is serialized as Django does it (compact, ASCII-escaped JSON,
/// zlib-compressed when that is shorter, URL-safe base64) and signed with HMAC-SHA256 and a
/// timestamp under the salt `django.contrib.sessions.backends.signed_cookies`, so a cookie
/// written here loads in a Django app with the same `SECRET_KEY`, and the other way round.
/// The session "key" the cookie carries is that signed value; every save produces a new one.
///
/// On load the signature is checked first, in constant time, against the current secret and
/// every fallback secret ([`with_fallbacks`](Self::with_fallbacks), Django's
/// `SECRET_KEY_FALLBACKS`: old cookies keep loading during a key rotation, and the next save
/// re-signs them with the current secret). Then the timestamp is checked against the cookie
/// age (`SessionConfig::cookie_age`, which the layer hands to the store). Anything that fails (a bad signature,
/// an expired timestamp, a malformed payload) is no session, logged without the cookie value.
///
/// # Security: read this before choosing this store
///
/// - **The data is signed, not encrypted.** Anyone holding the cookie (the user, a proxy
///   that logs headers) can base64-decode it and read every value in the session. Keep
///   secrets out of it.
/// - **Old cookies can be replayed.** There is no server state, so a cookie stays valid until
///   its timestamp is older than the cookie age, even after the session changed: a user can
///   send back an older cookie (say, one from before a purchase was recorded in the session),
///   and a stolen cookie keeps working after the victim logs out. Keep the cookie age short,
///   or keep a per-user marker on the server (a counter or a "logged out at" date checked
///   against a value in the session) when replay matters.
/// - **`flush` and `cycle_key` cannot invalidate old cookies**: they only stop sending them.
///   Logging out removes the cookie from the browser, not from an attacker who copied it.
/// - The cookie must fit in [`MAX_COOKIE_SIZE`](Self::MAX_COOKIE_SIZE) bytes (name, `=`
///   and value): a larger session is an [`Error::CookieTooLarge`] from the save, never a
///   cookie browsers silently drop. The name counted is the layer's `cookie_name`, so the
///   limit is exact. This is the only size check: the other stores' keys are at most 40
///   characters.
///
/// # Expiry, and how it differs from Django
///
/// Django checks only the cookie age on load and ignores a custom expiry (`set_expiry`;
/// Django ticket #19201, a test it marks as an expected failure): the browser's `Max-Age` is
/// the only thing that ends such a session early. This store honours it: when the data holds
/// `_session_expiry`, the session is gone once the expiry date computed from the cookie's
/// signing time (Django's `get_expiry_date(modification=signing time)`) has passed, and a
/// `_session_expiry` of the wrong type is no session. The cookie age still caps every
/// session: a custom expiry can shorten a session, never extend it past the cookie age.
///
/// `delete` and `clear_expired` do nothing and `exists` is always `false`, as in Django.
/// Saves never conflict: there is nothing to compare with.
///
/// Cloning is cheap and shares the configuration. `Debug` never prints a secret.
///
/// ```
/// use axum::{Router, routing::get};
/// use sessionbase::{CookieStore, Session, SessionConfig, SessionLayer};
///
/// async fn index(session: Session) -> Result<String, sessionbase::Error> {
///     let visits: u64 = session.get("visits")?.unwrap_or(0);
///     session.insert("visits", visits + 1)?;
///     Ok(format!("{visits} earlier visits"))
/// }
///
/// # fn main() -> Result<(), sessionbase::Error> {
/// let store = CookieStore::new("a long random secret")
///     .with_fallbacks(["the secret used before the rotation"]);
/// // The store takes the cookie age and name from the layer's configuration.
/// let config = SessionConfig::default().with_cookie_age(time::Duration::hours(8));
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::new(store).with_config(config)?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CookieStore {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    /// Signs with the current secret and verifies with it alone.
    signer: Signer,
    /// Verifies with the fallback secrets; never signs. `None` without fallbacks.
    fallbacks: Option<Signer>,
    /// How many fallback secrets `fallbacks` holds (for `Debug`).
    fallback_count: usize,
    cookie_age: Duration,
    cookie_name: String,
    /// How far in the future a signing time may lie (clock skew between servers).
    future_leeway: Duration,
}

impl fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field("fallbacks", &self.inner.fallback_count)
            .field("cookie_age", &self.inner.cookie_age)
            .field("cookie_name", &self.inner.cookie_name)
            .finish_non_exhaustive()
    }
}

impl CookieStore {
    /// The most bytes browsers keep for a cookie's name, `=` and value together: 4096.
    pub const MAX_COOKIE_SIZE: usize = MAX_COOKIE_SIZE;

    /// A store that signs with `secret` (Django's `SECRET_KEY`), with Django's defaults: a
    /// cookie age of two weeks and the cookie name `sessionid`.
    ///
    /// Use a long random secret, and the same one as the Django app when cookies are shared
    /// with it. Only keys derived from the secret are kept in memory.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        if secret.is_empty() {
            tracing::warn!("CookieStore created with an empty secret: anyone can forge sessions");
        }
        Self {
            inner: Arc::new(Inner {
                signer: Signer::new(secret, COOKIE_SALT),
                fallbacks: None,
                fallback_count: 0,
                cookie_age: DEFAULT_COOKIE_AGE,
                cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
                future_leeway: DEFAULT_FUTURE_LEEWAY,
            }),
        }
    }

    /// Also accepts cookies signed with any of `secrets` (Django's `SECRET_KEY_FALLBACKS`),
    /// replacing fallbacks given before. They verify but never sign: a session loaded with a
    /// fallback is re-signed with the current secret when it is saved.
    pub fn with_fallbacks<I>(mut self, secrets: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut secrets = secrets.into_iter();
        let inner = Arc::make_mut(&mut self.inner);
        let first = secrets.next();
        let (fallbacks, count) = match first {
            Some(first) => {
                let rest: Vec<I::Item> = secrets.collect();
                let count = 1 + rest.len();
                (
                    Some(Signer::with_fallbacks(first, rest, COOKIE_SALT)),
                    count,
                )
            }
            None => (None, 0),
        };
        inner.fallbacks = fallbacks;
        inner.fallback_count = count;
        self
    }

    /// Takes the settings the store depends on from `config`: the cookie age (Django's
    /// `SESSION_COOKIE_AGE`; a cookie signed longer ago never loads) and the cookie name (the
    /// name, `=` and the value must fit in [`MAX_COOKIE_SIZE`](Self::MAX_COOKIE_SIZE)
    /// bytes). A [`SessionLayer`](crate::SessionLayer) or [`Session::new`](crate::Session::new)
    /// does this with its own configuration; call it only to use the store on its own.
    pub fn with_session_config(mut self, config: &SessionConfig) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.cookie_age = config.cookie_age;
        inner.cookie_name.clone_from(&config.cookie_name);
        self
    }

    /// How far in the future a cookie's signing time may be (five minutes by default) before
    /// the cookie is refused and logged: servers' clocks drift apart a little, but a cookie
    /// signed hours ahead was made by a broken clock or with a stolen secret, and would
    /// otherwise outlive the cookie age. Django accepts any future time.
    pub fn with_future_leeway(mut self, leeway: Duration) -> Self {
        Arc::make_mut(&mut self.inner).future_leeway = leeway;
        self
    }

    /// The cookie age.
    pub fn cookie_age(&self) -> Duration {
        self.inner.cookie_age
    }

    /// The cookie name the size limit counts.
    pub fn cookie_name(&self) -> &str {
        &self.inner.cookie_name
    }
}

impl SessionStore for CookieStore {
    /// Signing and checking a cookie is computation only: the session runs calls inline.
    fn is_immediate(&self) -> bool {
        true
    }

    /// The cookie age and name come from the layer's configuration (a copy only when they
    /// differ from the store's).
    fn configured(&self, config: &SessionConfig) -> Option<Self> {
        let inner = &self.inner;
        let same = inner.cookie_age == config.cookie_age && inner.cookie_name == config.cookie_name;
        (!same).then(|| self.clone().with_session_config(config))
    }

    /// Accepts values shaped like a signed value (`[A-Za-z0-9_\-.:]`, two `:` at least, at
    /// most 4096 bytes); the signature is checked by `load`.
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        is_signed_value(cookie_value).then(|| SessionKey::from_validated(cookie_value))
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        match self.open(key.as_str(), OffsetDateTime::now_utc()) {
            Ok((data, preserved, expiry_date)) => Ok(Some(LoadedRecord {
                data: Arc::new(data),
                version: Version::unversioned().with_preserved(preserved),
                expiry_date: Some(expiry_date),
            })),
            Err(reason) => {
                tracing::warn!(reason, "session cookie rejected; treating it as no session");
                Ok(None)
            }
        }
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let key = self.seal(&record.data, &Preserved::default(), now)?;
        Ok((key, Version::unversioned()))
    }

    /// Signs the data anew: the returned key is the new cookie value. There is nothing on
    /// the server to compare with, so this never answers `Conflict` or `Gone`.
    async fn save(
        &self,
        _key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let key = self.seal(&record.data, expected.preserved(), now)?;
        Ok(SaveOutcome::Saved {
            key,
            version: Version::unversioned().with_preserved(expected.preserved().clone()),
        })
    }

    /// Nothing to delete: the cookie is the session.
    async fn delete(&self, _key: &SessionKey) -> Result<(), Error> {
        Ok(())
    }

    /// Always `false`, as in Django: nothing is stored on the server.
    async fn exists(&self, _key: &SessionKey) -> Result<bool, Error> {
        Ok(false)
    }

    /// Nothing to clear: expired cookies fail to load.
    async fn clear_expired(&self) -> Result<(), Error> {
        Ok(())
    }
}
