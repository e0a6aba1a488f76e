//! What `django.contrib.auth` keeps in a session, its session auth hash, and logging in and
//! out.

use subtle::ConstantTimeEq;

use crate::signing::salted_hmac_sha256;
use crate::{Error, Session};

use super::{BACKEND_SESSION_KEY, DjangoConfig, HASH_SESSION_KEY, SESSION_KEY};

const AUTH_HASH_SALT: &str = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";

/// `AbstractBaseUser.get_session_auth_hash()`: the hex HMAC-SHA256 of the user's password
/// hash, keyed on `secret_key` with Django's salt.
///
/// ```
/// use sessionbase::django::session_auth_hash;
///
/// // Checked against Django 5.2.
/// assert_eq!(
///     session_auth_hash("django_tests_secret_key", "pbkdf2_sha256$1000000$abc$def="),
///     "331410e1a78cac4eb0874af13c81ccadcc0f6c8b14ddda9ad48981f469a06e5a"
/// );
/// ```
pub fn session_auth_hash(secret_key: &str, password_hash: &str) -> String {
    let mac = salted_hmac_sha256(
        AUTH_HASH_SALT,
        password_hash.as_bytes(),
        secret_key.as_bytes(),
    );
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `django.contrib.auth` keeps in a logged-in session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUser {
    /// `_auth_user_id`: the user's primary key, as a string.
    pub user_id: String,
    /// `_auth_user_backend`: the backend that authenticated them.
    pub backend: String,
    /// `_auth_user_hash`: the session auth hash.
    pub hash: String,
}

impl SessionUser {
    /// The logged-in user of `session`, if any (not yet checked against the password hash:
    /// see [`DjangoConfig::verify_session`](super::DjangoConfig::verify_session)).
    pub fn from_session(session: &Session) -> Result<Option<Self>, Error> {
        let Some(user_id) = session.get::<String>(SESSION_KEY)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            user_id,
            backend: session.get(BACKEND_SESSION_KEY)?.unwrap_or_default(),
            hash: session.get(HASH_SESSION_KEY)?.unwrap_or_default(),
        }))
    }
}

impl DjangoConfig {
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
    fn auth_hash_matches_django() {
        assert_eq!(
            session_auth_hash("old-secret", "pbkdf2_sha256$1000000$abc$def="),
            "0e78ec4945d0a0a51c518349956270746be2b77dcd94cb47ef7576a471a20022"
        );
    }
}
