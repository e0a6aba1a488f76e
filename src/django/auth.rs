//! What `django.contrib.auth` keeps in a session, and its session auth hash.

use crate::signing::salted_hmac_sha256;
use crate::{Error, Session};

use super::{BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY};

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
