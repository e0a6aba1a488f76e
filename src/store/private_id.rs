//! `PrivateId`: records keyed by a keyed digest of the session key (see [`PrivateId`]),
//! and `RecordKeys`, the one place every store turns a session key into its storage key.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{Error, SessionKey};

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted, in bytes: 256 bits.
const MIN_SECRET_LEN: usize = 32;
/// What the record-key MAC key is derived for, so that the same secret used elsewhere (a
/// `SECRET_KEY`, a cookie secret) gives unrelated digests.
const CONTEXT: &[u8] = b"sessionbase.store.private_id.v1";
/// Bytes of the digest kept: 160 bits, 40 hex digits.
const DIGEST_BYTES: usize = 20;

/// The secret under which a store keys its records by a keyed digest of the session key,
/// so that a copy of the store (a database dump, a Redis `KEYS *`, a directory listing) holds no usable cookie.
///
/// This is Rack's `private_id` (CVE-2019-16782). The cookie still carries the session key;
/// the store keeps the record under `HMAC-SHA256(derived key, session key)`, truncated to
/// 160 bits and written as 40 lowercase hex digits: it fits Django's `varchar(40)` column
/// and every store's key rules (`[a-z0-9]`, 8 to 40 characters), so nothing else changes.
/// The digest cannot be inverted without the secret, and a digest presented as a cookie is
/// digested again and names no record. A lookup still costs one store call: the digest is
/// computed in memory.
///
/// Each store turns a session key into its storage key in one place, for every operation
/// (load, create, save, touch, delete, exists; Redis keys and scripts, file names, SQL
/// parameters). `create` still returns the session key, for the cookie. Every server-side
/// store takes one with `with_private_id`: [`MemoryStore`](crate::MemoryStore),
/// `FileStore`, `SqliteStore`, `PostgresStore`, `MySqlStore` and `RedisStore` (on a cluster
/// and with a local cache too); give a `CachedStore` or `CachedDbStore` the same one on
/// each of its two stores.
///
/// # Rotating the secret
///
/// There are no fallback secrets: a lookup under each of them would cost a store call each.
/// Changing the secret (or turning the option on or off) makes every existing record
/// unreachable, which logs every user out, as replacing the store would; the records left
/// behind expire and are removed by `clear_expired` or the store's own TTL.
///
/// # Not with Django
///
/// Django looks rows up by the plain key, so a store with a private id cannot share
/// sessions with a Django app: under a configuration marked
/// [`shared_with_django`](crate::SessionConfig::shared_with_django) (what
/// [`DjangoConfig::session_config`](crate::django::DjangoConfig::session_config) returns),
/// [`SessionLayer::with_config`](crate::SessionLayer::with_config) refuses such a store with
/// an [`Error::Config`] (`Session::new` and `Session::load`, which cannot fail, do not check).
///
/// ```
/// use sessionbase::SessionKey;
/// use sessionbase::store::PrivateId;
///
/// let id = PrivateId::new("a secret of at least thirty-two bytes!!")?;
/// let key = SessionKey::parse("abcdefghijklmnopqrstuvwxyz012345").unwrap();
/// let record = id.record_key(&key);
/// assert_eq!(record.as_str().len(), 40);
/// assert_ne!(record, key);
/// // Short secrets are refused.
/// assert!(PrivateId::new("short").is_err());
/// # Ok::<(), sessionbase::Error>(())
/// ```
///
/// Cheap to clone. `Debug` never prints the secret.
#[derive(Clone)]
pub struct PrivateId {
    /// HMAC-SHA256 keyed with the derived key, ready to be cloned per digest.
    mac: Arc<HmacSha256>,
}

impl fmt::Debug for PrivateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateId").finish_non_exhaustive()
    }
}

impl PrivateId {
    /// Private ids under `secret`: at least 32 bytes, random, kept out of the store and the
    /// same on every instance. A shorter one is an [`Error::Config`].
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, Error> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::Config(format!(
                "the private_id secret must be at least {MIN_SECRET_LEN} bytes (got {})",
                secret.len()
            )));
        }
        let derived = keyed(secret)?.chain_update(CONTEXT).finalize().into_bytes();
        Ok(Self {
            mac: Arc::new(keyed(&derived)?),
        })
    }

    /// The key the record of the session `key` is stored under: 40 lowercase hex digits.
    pub fn record_key(&self, key: &SessionKey) -> SessionKey {
        let digest = (*self.mac)
            .clone()
            .chain_update(key.as_str().as_bytes())
            .finalize()
            .into_bytes();
        let mut hex = String::with_capacity(2 * DIGEST_BYTES);
        for byte in &digest[..DIGEST_BYTES] {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        SessionKey::from_validated(hex)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn keyed(key: &[u8]) -> Result<HmacSha256, Error> {
    <HmacSha256 as KeyInit>::new_from_slice(key)
        .map_err(|e| Error::Config(format!("private_id key: {e}")))
}

/// How a store names its records: by the session key itself (the default), or by its
/// private id. The one place every store turns a session key into its storage key.
#[derive(Clone, Debug, Default)]
pub(crate) struct RecordKeys(Option<PrivateId>);

// Unused only in builds without a server-side store.
#[cfg_attr(
    not(any(
        feature = "memory",
        feature = "file",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "redis"
    )),
    allow(dead_code)
)]
impl RecordKeys {
    /// Records keyed by the private ids of `id`.
    pub(crate) fn private(id: PrivateId) -> Self {
        Self(Some(id))
    }

    /// The key the record of the session `key` is stored under.
    pub(crate) fn of<'a>(&self, key: &'a SessionKey) -> Cow<'a, SessionKey> {
        match &self.0 {
            None => Cow::Borrowed(key),
            Some(id) => Cow::Owned(id.record_key(key)),
        }
    }

    /// Whether records are keyed by private ids.
    /// `key`'s record key as the user index names it (`SessionStore::record_key`).
    pub(crate) fn record_key(&self, key: &SessionKey) -> crate::store::RecordKey {
        crate::store::RecordKey::new(self.of(key).as_str())
    }

    pub(crate) fn is_private(&self) -> bool {
        self.0.is_some()
    }

    /// Refuses a configuration shared with Django, which looks records up by the plain key.
    pub(crate) fn check_config(
        &self,
        store: &str,
        config: &crate::SessionConfig,
    ) -> Result<(), Error> {
        if self.is_private() && config.shared_with_django {
            return Err(Error::Config(format!(
                "{store} keys its records by private id (with_private_id), but this \
                 configuration shares sessions with Django, which looks records up by the \
                 plain session key: Django would find none of them"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SessionKey {
        SessionKey::parse(s).unwrap()
    }

    #[test]
    fn record_keys_are_stable_distinct_and_well_formed() {
        let a = PrivateId::new([7u8; 32]).unwrap();
        let b = PrivateId::new([8u8; 32]).unwrap();
        let k = key("abcdefghijklmnopqrstuvwxyz012345");
        let r = a.record_key(&k);
        assert_eq!(r, a.record_key(&k));
        assert_ne!(r, b.record_key(&k));
        assert_ne!(r, a.record_key(&key("abcdefghijklmnopqrstuvwxyz012346")));
        assert!(SessionKey::parse(r.as_str()).is_some());
        assert_eq!(r.as_str().len(), 40);
        assert!(
            r.as_str()
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn plain_record_keys_are_the_session_key() {
        let k = key("abcdefghijklmnopqrstuvwxyz012345");
        assert_eq!(*RecordKeys::default().of(&k), k);
        let private = RecordKeys::private(PrivateId::new([1u8; 40]).unwrap());
        assert_ne!(*private.of(&k), k);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(PrivateId::new([0u8; 31]), Err(Error::Config(_))));
    }

    #[test]
    fn debug_hides_the_secret() {
        let id = PrivateId::new("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t").unwrap();
        assert!(!format!("{id:?}").contains("s3cr3t"));
    }
}
