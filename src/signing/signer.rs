//! `Signer`: Django's `TimestampSigner`, and `salted_hmac`.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::base62::{base62_decode, base62_encode};
use super::payload::{
    decode_payload, decode_payload_preserving, encode_json_payload, encode_payload,
};
use super::{B64, B64_SIGNATURE, SigningError};
use crate::store::preserved::Preserved;

type HmacSha256 = Hmac<Sha256>;

/// Django's `TimestampSigner` for one salt, with a current secret and fallbacks.
///
/// Only HMAC keys derived from the secrets are kept, never the secrets themselves.
#[derive(Clone)]
pub struct Signer {
    /// Derived keys: the first signs, all verify.
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("fallbacks", &(self.keys.len() - 1))
            .finish_non_exhaustive()
    }
}

fn derive_key(salt: &str, secret: &[u8]) -> [u8; 32] {
    // Django's TimestampSigner uses salted_hmac with key_salt = salt + "signer".
    salted_key(&[salt.as_bytes(), b"signer"], secret)
}

/// Django's `salted_hmac` key: `SHA256(key_salt + secret)`.
fn salted_key(key_salt: &[&[u8]], secret: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in key_salt {
        hasher.update(part);
    }
    hasher.update(secret);
    hasher.finalize().into()
}

/// Django's `salted_hmac(key_salt, value, secret, algorithm="sha256")`: HMAC-SHA256 of
/// `value` keyed on `SHA256(key_salt + secret)`.
///
/// ```
/// use sessionbase::signing::salted_hmac_sha256;
///
/// let mac = salted_hmac_sha256("some.salt", b"value", b"secret");
/// assert_eq!(mac.len(), 32);
/// ```
pub fn salted_hmac_sha256(key_salt: &str, value: &[u8], secret: &[u8]) -> [u8; 32] {
    let key = salted_key(&[key_salt.as_bytes()], secret);
    Signer::mac(&key, value).finalize().into_bytes().into()
}

impl Signer {
    /// A signer for `salt` that signs with `secret` (Django's `SECRET_KEY`).
    pub fn new(secret: impl AsRef<[u8]>, salt: &str) -> Self {
        Self::with_fallbacks(secret, std::iter::empty::<&[u8]>(), salt)
    }

    /// A signer that signs with `secret` and also accepts values signed with any of
    /// `fallbacks` (Django's `SECRET_KEY_FALLBACKS`).
    pub fn with_fallbacks<I>(secret: impl AsRef<[u8]>, fallbacks: I, salt: &str) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut keys = vec![derive_key(salt, secret.as_ref())];
        keys.extend(fallbacks.into_iter().map(|s| derive_key(salt, s.as_ref())));
        Self { keys }
    }

    fn mac(key: &[u8; 32], value: &[u8]) -> HmacSha256 {
        // HMAC zero-pads keys shorter than its block, so this is the 32-byte key, infallibly.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(key);
        let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
        mac.update(value);
        mac
    }

    /// The base64 signature of `value` with the current secret.
    fn signature(&self, value: &str) -> String {
        B64.encode(
            Self::mac(&self.keys[0], value.as_bytes())
                .finalize()
                .into_bytes(),
        )
    }

    /// `value:timestamp:signature` (Django's `TimestampSigner.sign` at time `now`).
    pub fn sign_at(&self, value: &str, now: i64) -> String {
        let mut out = String::with_capacity(value.len() + 52);
        out.push_str(value);
        out.push(':');
        out.push_str(&base62_encode(now));
        let signature = self.signature(&out);
        out.push(':');
        out.push_str(&signature);
        out
    }

    /// Checks the signature of `value:timestamp:signature` against every key in constant
    /// time, then the age against `max_age` (strictly greater fails, as in Django). Returns
    /// the value and its timestamp.
    pub fn unsign_at<'a>(
        &self,
        signed: &'a str,
        max_age: Option<i64>,
        now: i64,
    ) -> Result<(&'a str, i64), SigningError> {
        let (value, signature) = signed.rsplit_once(':').ok_or(SigningError::BadSignature)?;
        // Strictly unpadded, as Django compares the signature text: `sig=` is not `sig`.
        let tag = B64_SIGNATURE
            .decode(signature)
            .map_err(|_| SigningError::BadSignature)?;
        // Every key is tried, so timing does not tell which one matched.
        let matched = self.keys.iter().fold(false, |ok, key| {
            Self::mac(key, value.as_bytes()).verify_slice(&tag).is_ok() | ok
        });
        if !matched {
            return Err(SigningError::BadSignature);
        }
        let (payload, timestamp) = value.rsplit_once(':').ok_or(SigningError::BadSignature)?;
        let timestamp = base62_decode(timestamp)
            .ok_or_else(|| SigningError::Malformed("bad timestamp".into()))?;
        if let Some(max_age) = max_age {
            let age = now.saturating_sub(timestamp);
            if age > max_age {
                return Err(SigningError::Expired { age, max_age });
            }
        }
        Ok((payload, timestamp))
    }

    /// Django's `signing.dumps(data, salt, compress)` at time `now`.
    pub fn dumps_at(
        &self,
        data: &Map<String, Value>,
        now: i64,
        compress: bool,
    ) -> Result<String, SigningError> {
        Ok(self.sign_at(&encode_payload(data, compress)?, now))
    }

    /// Django's `signing.dumps` now.
    pub fn dumps(&self, data: &Map<String, Value>, compress: bool) -> Result<String, SigningError> {
        self.dumps_at(data, unix_now(), compress)
    }

    /// `signing.dumps` now, of a dict already written as Django's JSON.
    pub(crate) fn dumps_json(&self, json: &str, compress: bool) -> Result<String, SigningError> {
        self.dumps_json_at(json, unix_now(), compress)
    }

    /// `signing.dumps` at `now`, of a dict already written as Django's JSON.
    pub(crate) fn dumps_json_at(
        &self,
        json: &str,
        now: i64,
        compress: bool,
    ) -> Result<String, SigningError> {
        Ok(self.sign_at(&encode_json_payload(json, compress)?, now))
    }

    /// `signing.loads` now, keeping what JSON cannot hold exactly (see
    /// `store::preserved`).
    pub(crate) fn loads_preserving(
        &self,
        signed: &str,
        max_age: Option<i64>,
    ) -> Result<(Map<String, Value>, Preserved), SigningError> {
        let (payload, _) = self.unsign_at(signed, max_age, unix_now())?;
        decode_payload_preserving(payload)
    }

    /// Django's `signing.loads(value, salt, max_age)` at time `now`; anything but a JSON
    /// object is `Malformed`.
    pub fn loads_at(
        &self,
        signed: &str,
        max_age: Option<i64>,
        now: i64,
    ) -> Result<Map<String, Value>, SigningError> {
        let (payload, _) = self.unsign_at(signed, max_age, now)?;
        decode_payload(payload)
    }

    /// Django's `signing.loads` now.
    pub fn loads(
        &self,
        signed: &str,
        max_age: Option<i64>,
    ) -> Result<Map<String, Value>, SigningError> {
        self.loads_at(signed, max_age, unix_now())
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
