//! Django-compatible signing: `django.core.signing`'s `TimestampSigner`, `dumps` and `loads`.
//!
//! A signed value is `PAYLOAD:TIMESTAMP:SIGNATURE`: the payload is the compact, ASCII-escaped
//! JSON in URL-safe base64 without padding (zlib-compressed and prefixed with `.` when that is
//! shorter), the timestamp is base62 Unix seconds, and the signature is HMAC-SHA256 keyed on
//! `SHA256(salt + "signer" + secret)`. Values signed here load in Django and the other way
//! round; fallback secrets (Django's `SECRET_KEY_FALLBACKS`) verify but never sign, and
//! signatures are compared in constant time.
//!
//! ```
//! use sessionbase::signing::Signer;
//! use serde_json::json;
//!
//! let signer = Signer::new("django_tests_secret_key", "django.contrib.sessions.backends.signed_cookies");
//! let data = json!({"hello": "world"});
//! let data = data.as_object().unwrap();
//! let signed = signer.dumps_at(data, 1_700_000_000, true).unwrap();
//! assert_eq!(signed, "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc");
//! assert_eq!(signer.loads_at(&signed, None, 1_700_000_000).unwrap(), *data);
//! ```

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

mod base62;
mod json;
mod payload;
mod signer;
#[cfg(test)]
mod tests;

pub use base62::{base62_decode, base62_encode};
pub use json::to_django_json;
#[cfg(feature = "cookie")]
pub(crate) use payload::decode_payload_preserving;
pub use payload::{decode_payload, encode_payload};
pub use signer::{Signer, salted_hmac_sha256};

/// The salt of Django's `signed_cookies` session backend.
pub const COOKIE_SALT: &str = "django.contrib.sessions.backends.signed_cookies";
/// The salt of Django's `SessionBase.encode` (db, cached_db and file backends).
pub const SESSION_STORE_SALT: &str = "django.contrib.sessions.SessionStore";
/// The most a compressed payload may inflate to: far above any session, far below a zip bomb.
pub const MAX_DECOMPRESSED_LEN: u64 = 8 * 1024 * 1024;

/// URL-safe base64 without padding, accepting padded input too (as Python pads before
/// decoding).
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The signature's base64: exactly what signing writes, no padding accepted.
const B64_SIGNATURE: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Why a signed value did not load.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningError {
    /// No separator, or a signature that matches no key: tampered, truncated, or signed
    /// with another secret or salt. Django's `BadSignature`.
    #[error("signature does not match")]
    BadSignature,
    /// A valid signature older than the maximum age. Django's `SignatureExpired`.
    #[error("signature expired {age} s ago, older than the maximum age of {max_age} s")]
    Expired {
        /// Seconds since signing.
        age: i64,
        /// The maximum age allowed.
        max_age: i64,
    },
    /// A valid signature over a payload that is not base64, zlib and a JSON object.
    #[error("signed payload is malformed: {0}")]
    Malformed(String),
}
