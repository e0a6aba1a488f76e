//! `EncryptedCookieStore`: the whole session in a cookie the client can neither read nor
//! forge (AES-256-GCM).

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use super::seal::{fits_in_a_cookie, session_expiry};
use super::{DEFAULT_COOKIE_AGE, DEFAULT_COOKIE_NAME, DEFAULT_FUTURE_LEEWAY};
use crate::middleware::set_cookie::MAX_COOKIE_SIZE;
use crate::store::{LoadedRecord, Record, SaveOutcome, SessionStore, Version};
use crate::{Error, SessionConfig, SessionKey};
use cipher::{CookieCipher, MIN_VALUE_LEN};

mod cipher;
#[cfg(test)]
mod tests;

/// Sessions kept whole in an encrypted cookie: nothing is stored on the server, and the
/// client sees only ciphertext. Feature `cookie-encrypted`.
///
/// Each save encrypts the session's compact JSON, with the time it was sealed, under
/// AES-256-GCM (RustCrypto's `aes-gcm`) with a fresh random 96-bit nonce from the operating
/// system's CSPRNG. The key is derived from the secret with HKDF-SHA256 and a context string
/// of this store's own, so the same secret used elsewhere (a signing key) gives an unrelated
/// key. The cookie name is authenticated as associated data: a value taken from another
/// cookie (another app's session cookie under the same secret) does not open here. The value
/// is URL-safe base64 of nonce, ciphertext and tag.
///
/// On load, a value that does not authenticate under the current secret or any fallback
/// ([`with_fallbacks`](Self::with_fallbacks): decrypt with any, encrypt with the first, as
/// the signed store's `SECRET_KEY_FALLBACKS`) is no session, logged without the value; so
/// is one sealed longer ago than the cookie age (`SessionConfig::cookie_age`, which the
/// layer hands to the store), sealed further ahead than the clock-skew leeway, or past its
/// custom expiry (`set_expiry`), exactly as [`CookieStore`](crate::CookieStore) checks its
/// signing time.
///
/// # Security: what this store does and does not do
///
/// - **Confidential and authentic**: the client cannot read or change its session. The
///   data is not compressed before it is encrypted, so its length does not vary with how
///   well attacker-chosen values compress against secret ones (CRIME/BREACH).
/// - **Old cookies can still be replayed** within the cookie age, as with any client-side
///   store: there is no server state, so `flush`, `cycle_key` and logging out stop sending a
///   cookie but cannot revoke a copy. Keep the cookie age short when replay matters.
/// - **Length is visible**: the cookie's size tells roughly how much the session holds.
/// - The cookie must fit in [`MAX_COOKIE_SIZE`](Self::MAX_COOKIE_SIZE) bytes (name, `=`
///   and value): a larger session is an [`Error::CookieTooLarge`] from the save.
/// - **Not with Django**: Django cannot read these cookies, so a configuration
///   [`shared_with_django`](SessionConfig::shared_with_django) (as
///   [`DjangoConfig::session_config`](crate::django::DjangoConfig::session_config) returns
///   it) makes [`SessionLayer::with_config`](crate::SessionLayer::with_config) fail with
///   [`Error::Config`].
///
/// `delete` and `clear_expired` do nothing and `exists` is always `false`; saves never
/// conflict. Cloning is cheap and shares the keys. `Debug` never prints a secret or a key.
///
/// ```
/// use axum::{Router, routing::get};
/// use sessionbase::{EncryptedCookieStore, Session, SessionConfig, SessionLayer};
///
/// async fn index(session: Session) -> Result<String, sessionbase::Error> {
///     let visits: u64 = session.get("visits")?.unwrap_or(0);
///     session.insert("visits", visits + 1)?;
///     Ok(format!("{visits} earlier visits"))
/// }
///
/// # fn main() -> Result<(), sessionbase::Error> {
/// // Secrets of at least 32 bytes: random, and the same on every instance.
/// let store = EncryptedCookieStore::new("a long random secret, 32 bytes or more")?
///     .with_fallbacks(["the secret used before the rotation, also 32+ bytes"])?;
/// let config = SessionConfig::default().with_cookie_age(time::Duration::hours(8));
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::new(store).with_config(config)?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EncryptedCookieStore {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    /// The first encrypts; all decrypt.
    ciphers: Vec<CookieCipher>,
    cookie_age: Duration,
    cookie_name: String,
    future_leeway: Duration,
}

impl fmt::Debug for EncryptedCookieStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedCookieStore")
            .field("fallbacks", &(self.inner.ciphers.len() - 1))
            .field("cookie_age", &self.inner.cookie_age)
            .field("cookie_name", &self.inner.cookie_name)
            .finish_non_exhaustive()
    }
}

impl EncryptedCookieStore {
    /// The most bytes browsers keep for a cookie's name, `=` and value together: 4096.
    pub const MAX_COOKIE_SIZE: usize = MAX_COOKIE_SIZE;

    /// A store that encrypts with a key derived from `secret`, with Django's defaults for
    /// the cookie (an age of two weeks, the name `sessionid`; a layer sets its own). The
    /// secret must be at least 32 bytes, or this is an [`Error::Config`]. Only the derived
    /// key is kept.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                ciphers: vec![CookieCipher::new(secret.as_ref())?],
                cookie_age: DEFAULT_COOKIE_AGE,
                cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
                future_leeway: DEFAULT_FUTURE_LEEWAY,
            }),
        })
    }

    /// Also opens cookies encrypted under any of `secrets` (each at least 32 bytes),
    /// replacing fallbacks given before. They never encrypt: a session loaded with a
    /// fallback is encrypted under the current secret when it is next saved. Drop a
    /// fallback once the cookie age has passed since the rotation.
    pub fn with_fallbacks<I>(mut self, secrets: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let fallbacks = secrets
            .into_iter()
            .map(|s| CookieCipher::new(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let inner = Arc::make_mut(&mut self.inner);
        inner.ciphers.truncate(1);
        inner.ciphers.extend(fallbacks);
        Ok(self)
    }

    /// Takes the cookie age and name from `config`, as [`CookieStore`] does; a layer or
    /// [`Session::new`](crate::Session::new) does this with its own configuration.
    ///
    /// [`CookieStore`]: crate::CookieStore
    pub fn with_session_config(mut self, config: &SessionConfig) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.cookie_age = config.cookie_age;
        inner.cookie_name.clone_from(&config.cookie_name);
        self
    }

    /// How far in the future a cookie's sealing time may be (five minutes by default).
    pub fn with_future_leeway(mut self, leeway: Duration) -> Self {
        Arc::make_mut(&mut self.inner).future_leeway = leeway;
        self
    }

    /// The cookie age.
    pub fn cookie_age(&self) -> Duration {
        self.inner.cookie_age
    }

    /// The cookie name, authenticated with every value and counted by the size limit.
    pub fn cookie_name(&self) -> &str {
        &self.inner.cookie_name
    }

    /// The data in `value` as of `now` and when it stops loading, or why it is no session.
    fn open(
        &self,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<(Map<String, Value>, OffsetDateTime), &'static str> {
        let inner = &self.inner;
        let (sealed_at, json) = cipher::open(&inner.ciphers, &inner.cookie_name, value)?;
        let data: Map<String, Value> =
            serde_json::from_slice(&json).map_err(|_| "malformed payload")?;
        let expiry = session_expiry(&data, sealed_at, now, inner.cookie_age, inner.future_leeway)?;
        Ok((data, expiry))
    }

    /// The cookie value for `data` sealed at `now`, or [`Error::CookieTooLarge`].
    fn seal(&self, data: &Map<String, Value>, now: i64) -> Result<SessionKey, Error> {
        let inner = &self.inner;
        let json = serde_json::to_vec(data).map_err(Error::store)?;
        let current = inner
            .ciphers
            .first()
            .ok_or_else(|| Error::Config("EncryptedCookieStore without a key".into()))?;
        let value = current.seal(&inner.cookie_name, now, &json)?;
        fits_in_a_cookie(&inner.cookie_name, &value, data)?;
        Ok(SessionKey::from_validated(value))
    }
}

impl SessionStore for EncryptedCookieStore {
    /// Encrypting and decrypting is computation only: the session runs calls inline.
    fn is_immediate(&self) -> bool {
        true
    }

    /// The cookie age and name come from the layer's configuration.
    fn configured(&self, config: &SessionConfig) -> Option<Self> {
        let inner = &self.inner;
        let same = inner.cookie_age == config.cookie_age && inner.cookie_name == config.cookie_name;
        (!same).then(|| self.clone().with_session_config(config))
    }

    /// Django cannot read these cookies.
    fn check_config(&self, config: &SessionConfig) -> Result<(), Error> {
        if config.shared_with_django {
            return Err(Error::Config(
                "EncryptedCookieStore cannot share sessions with Django: Django cannot decrypt \
                 its cookies (use CookieStore, Django's signed_cookies, to share them)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// URL-safe base64 of at most 4096 bytes and at least the shortest authentic value;
    /// `load` authenticates it.
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        let shaped = (MIN_VALUE_LEN..=MAX_COOKIE_SIZE).contains(&cookie_value.len())
            && cookie_value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        shaped.then(|| SessionKey::from_validated(cookie_value))
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        match self.open(key.as_str(), OffsetDateTime::now_utc()) {
            Ok((data, expiry_date)) => Ok(Some(LoadedRecord {
                data: Arc::new(data),
                version: Version::unversioned(),
                expiry_date: Some(expiry_date),
            })),
            Err(reason) => {
                tracing::warn!(
                    reason,
                    "encrypted session cookie rejected; treating it as no session"
                );
                Ok(None)
            }
        }
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        let key = self.seal(&record.data, OffsetDateTime::now_utc().unix_timestamp())?;
        Ok((key, Version::unversioned()))
    }

    /// Encrypts the data anew: the returned key is the new cookie value. Never `Conflict`
    /// or `Gone`: there is nothing on the server to compare with.
    async fn save(
        &self,
        _key: &SessionKey,
        record: &Record,
        _expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let key = self.seal(&record.data, OffsetDateTime::now_utc().unix_timestamp())?;
        Ok(SaveOutcome::Saved {
            key,
            version: Version::unversioned(),
        })
    }

    /// Nothing to delete: the cookie is the session.
    async fn delete(&self, _key: &SessionKey) -> Result<(), Error> {
        Ok(())
    }

    /// Always `false`: nothing is stored on the server.
    async fn exists(&self, _key: &SessionKey) -> Result<bool, Error> {
        Ok(false)
    }

    /// Nothing to clear: expired cookies fail to load.
    async fn clear_expired(&self) -> Result<(), Error> {
        Ok(())
    }
}
