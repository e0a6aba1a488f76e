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

use std::io::{self, Read, Write};

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use flate2::Compression;
use flate2::read::ZlibDecoder;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::store::preserved::{Preserved, parse_session_json};
use crate::store::python::python_float_repr;

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

type HmacSha256 = Hmac<Sha256>;

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

/// The base64 payload of `signing.dumps`: compact ASCII JSON, zlib-compressed when that
/// saves more than one byte.
pub fn encode_payload(data: &Map<String, Value>, compress: bool) -> Result<String, SigningError> {
    encode_json_payload(&to_django_json(data), compress)
}

/// [`encode_payload`] of a dict already written as Django's JSON.
pub(crate) fn encode_json_payload(json: &str, compress: bool) -> Result<String, SigningError> {
    if compress && let Some(compressed) = zlib(json.as_bytes())? {
        // Django keeps the compressed form only when it saves more than one byte.
        if compressed.len() < json.len().saturating_sub(1) {
            let mut out = String::with_capacity(compressed.len() * 4 / 3 + 2);
            out.push('.');
            B64.encode_string(&compressed, &mut out);
            return Ok(out);
        }
    }
    Ok(B64.encode(json.as_bytes()))
}

thread_local! {
    /// A zlib compressor per thread: building one allocates about 256 KiB of state, far more
    /// than signing a session costs otherwise.
    static COMPRESSOR: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(Compression::default(), true));
}

/// `zlib.compress(input)` at the default level, or `None` when it would not fit in as many
/// bytes as the input (then it cannot be kept anyway).
fn zlib(input: &[u8]) -> Result<Option<Vec<u8>>, SigningError> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        compressor.reset();
        let mut out = Vec::with_capacity(input.len());
        let status = compressor
            .compress_vec(input, &mut out, flate2::FlushCompress::Finish)
            .map_err(|e| SigningError::Malformed(e.to_string()))?;
        Ok((status == flate2::Status::StreamEnd).then_some(out))
    })
}

/// The inverse of [`encode_payload`]; the result must be a JSON object.
pub fn decode_payload(payload: &str) -> Result<Map<String, Value>, SigningError> {
    decode_payload_preserving(payload).map(|(map, _)| map)
}

/// [`decode_payload`], keeping what JSON cannot hold exactly.
pub(crate) fn decode_payload_preserving(
    payload: &str,
) -> Result<(Map<String, Value>, Preserved), SigningError> {
    let malformed = |e: &dyn std::fmt::Display| SigningError::Malformed(e.to_string());
    let (compressed, b64) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let bytes = B64.decode(b64).map_err(|e| malformed(&e))?;
    let json = if compressed {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        ZlibDecoder::new(bytes.as_slice())
            .take(MAX_DECOMPRESSED_LEN + 1)
            .read_to_end(&mut out)
            .map_err(|e| malformed(&e))?;
        if out.len() as u64 > MAX_DECOMPRESSED_LEN {
            return Err(SigningError::Malformed(
                "payload inflates past the size limit".into(),
            ));
        }
        out
    } else {
        bytes
    };
    parse_session_json(&json).map_err(SigningError::Malformed)
}

/// Python's `json.dumps(data, separators=(",", ":"))`: compact, with every character outside
/// printable ASCII escaped as `\uXXXX` (surrogate pairs above U+FFFF).
pub fn to_django_json(data: &Map<String, Value>) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    // Serializing a Map of Values into a Vec cannot fail.
    if serde::Serialize::serialize(data, &mut ser).is_err() {
        return "{}".to_owned();
    }
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's compact formatter, escaping like Python's `ensure_ascii=True`.
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    // Python's `float.__repr__` (`1e+16`, `1e-05`), not serde_json's spelling (`1e16`,
    // `1e-5`): the same float, written as Django would write it. Non-finite floats never
    // reach here (serde_json holds none).
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut repr = String::new();
        python_float_repr(value, &mut repr);
        writer.write_all(repr.as_bytes())
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Django's `b62_encode`.
pub fn base62_encode(n: i64) -> String {
    if n == 0 {
        return "0".to_owned();
    }
    let mut digits = Vec::with_capacity(12);
    let mut rest = n.unsigned_abs();
    while rest > 0 {
        digits.push(BASE62[(rest % 62) as usize]);
        rest /= 62;
    }
    if n < 0 {
        digits.push(b'-');
    }
    digits.iter().rev().map(|&b| char::from(b)).collect()
}

/// Django's `b62_decode`; `None` for characters outside the alphabet or overflow.
pub fn base62_decode(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = BASE62.iter().position(|&c| c == b)? as i64;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "django_tests_secret_key";
    const T: i64 = 1_700_000_000;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn thirty() -> Map<String, Value> {
        obj(json!({"a": (0..30).collect::<Vec<_>>()}))
    }

    #[test]
    fn base62_matches_django() {
        assert_eq!(base62_encode(T), "1r31eq");
        assert_eq!(base62_encode(0), "0");
        assert_eq!(base62_encode(-61), "-z");
        for n in [0, 1, 61, 62, -1, T, i64::MAX, i64::MIN + 1] {
            assert_eq!(base62_decode(&base62_encode(n)), Some(n));
        }
        assert_eq!(base62_decode(""), None);
        assert_eq!(base62_decode("a+b"), None);
        assert_eq!(base62_decode("zzzzzzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn cookie_salt_vectors() {
        let s = Signer::new(SECRET, COOKIE_SALT);
        assert_eq!(
            s.dumps_at(&obj(json!({"hello": "world"})), T, true)
                .unwrap(),
            "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc"
        );
        assert_eq!(
            s.dumps_at(&Map::new(), T, true).unwrap(),
            "e30:1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY"
        );
        // Django's compressed bytes depend on its zlib; ours must decode them.
        let django = ".eJwNy7sNgDAQRMFeHL_Au_7cmVYQgetA9I7TkeYtu1x3RZhGZzAJkoUOChk11NFAEwVKtHDF5xg33PHAEwdOvJ7vBwQtEZE:1r31eq:ktB1bT7J8YBAfxrYUXYy0H6cliM1BhjASNPoFXsL4_o";
        assert_eq!(s.loads_at(django, None, T).unwrap(), thirty());
        let ours = s.dumps_at(&thirty(), T, true).unwrap();
        assert!(ours.starts_with('.'), "compressed when shorter: {ours}");
        assert_eq!(s.loads_at(&ours, None, T).unwrap(), thirty());
    }

    #[test]
    fn session_store_salt_vectors() {
        let s = Signer::new(SECRET, SESSION_STORE_SALT);
        assert_eq!(
            s.dumps_at(&obj(json!({"hello": "world"})), T, true)
                .unwrap(),
            "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:tWy-azdqKYIwu_o6Ht3nBxc5SvPyROA4n-zKWAcm4Cc"
        );
        let django = ".eJwNy7sNgDAQRMFeHL_Au_7cmVYQgetA9I7TkeYtu1x3RZhGZzAJkoUOChk11NFAEwVKtHDF5xg33PHAEwdOvJ7vBwQtEZE:1r31eq:ykjX_84uu4XkzFYXUAkIc9ST41QvhzvyUwetrOpR-3s";
        assert_eq!(s.loads_at(django, None, T).unwrap(), thirty());
        let mixed = obj(json!({"_session_expiry": 3600, "x": 1, "b": [true, null, 1.5, "s"]}));
        assert_eq!(
            s.dumps_at(&mixed, T, true).unwrap(),
            "eyJfc2Vzc2lvbl9leHBpcnkiOjM2MDAsIngiOjEsImIiOlt0cnVlLG51bGwsMS41LCJzIl19:1r31eq:opcHBwjhRlg3kOBf_3rhK5AEPTHITbaUDrhnXGtDzWI"
        );
        assert_eq!(
            s.dumps_at(&obj(json!({"k": "é€"})), T, true).unwrap(),
            "eyJrIjoiXHUwMGU5XHUyMGFjIn0:1r31eq:0ExxXUKtMkTj_iniYupmOFYRrH8mauPT3u-H92ZseP4"
        );
        // A valid signature over junk is malformed, not a bad signature (Django: silent {}).
        assert!(matches!(
            s.loads_at(
                "b'invalid data':1r31eq:Wu-C_6_Pyb3z0NiQ50o0gsctmss0MFrIyFIN3kTJdTY",
                None,
                T
            ),
            Err(SigningError::Malformed(_))
        ));
    }

    #[test]
    fn ascii_escaping_matches_python() {
        let data =
            obj(json!({"e": "é", "emoji": "😀", "del": "\u{7f}", "nl": "a\nb", "q": "\"\\/"}));
        assert_eq!(
            to_django_json(&data),
            r#"{"e":"\u00e9","emoji":"\ud83d\ude00","del":"\u007f","nl":"a\nb","q":"\"\\/"}"#
        );
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let s = Signer::new(SECRET, SESSION_STORE_SALT);
        for bad in [
            "Zmxhc2tkajphbGtkamY=",
            "bad:encoded:value",
            "",
            ":",
            "::",
            "e30:1r31eq:",
        ] {
            assert_eq!(
                s.loads_at(bad, None, T),
                Err(SigningError::BadSignature),
                "{bad:?}"
            );
        }
        // The other salt's signature does not verify.
        let cookie = Signer::new(SECRET, COOKIE_SALT)
            .dumps_at(&Map::new(), T, true)
            .unwrap();
        assert_eq!(
            s.loads_at(&cookie, None, T),
            Err(SigningError::BadSignature)
        );
        // Tampering with any part breaks it.
        let good = s.dumps_at(&obj(json!({"user": 1})), T, false).unwrap();
        let (payload, rest) = good.split_once(':').unwrap();
        let forged = format!("{}:{rest}", B64.encode(br#"{"user":2}"#));
        assert_eq!(
            s.loads_at(&forged, None, T),
            Err(SigningError::BadSignature)
        );
        assert_eq!(
            s.loads_at(&format!("{good}="), None, T),
            Err(SigningError::BadSignature)
        );
        let truncated = &good[..good.len() - 1];
        assert_eq!(
            s.loads_at(truncated, None, T),
            Err(SigningError::BadSignature)
        );
        assert!(!payload.is_empty());
    }

    #[test]
    fn max_age_is_strictly_greater() {
        let s = Signer::new(SECRET, COOKIE_SALT);
        let signed = s.dumps_at(&Map::new(), T, true).unwrap();
        assert!(s.loads_at(&signed, Some(10), T + 10).is_ok());
        assert_eq!(
            s.loads_at(&signed, Some(10), T + 11),
            Err(SigningError::Expired {
                age: 11,
                max_age: 10
            })
        );
    }

    #[test]
    fn fallback_keys_verify_but_never_sign() {
        let old = Signer::new("old-secret", COOKIE_SALT);
        let rotated = Signer::with_fallbacks("new-secret", ["old-secret"], COOKIE_SALT);
        let by_old = old.dumps_at(&obj(json!({"a": 1})), T, true).unwrap();
        assert_eq!(
            rotated.loads_at(&by_old, None, T).unwrap(),
            obj(json!({"a": 1}))
        );
        let by_rotated = rotated.dumps_at(&obj(json!({"a": 1})), T, true).unwrap();
        assert_eq!(
            by_rotated,
            Signer::new("new-secret", COOKIE_SALT)
                .dumps_at(&obj(json!({"a": 1})), T, true)
                .unwrap()
        );
        assert_eq!(
            old.loads_at(&by_rotated, None, T),
            Err(SigningError::BadSignature)
        );
    }

    #[test]
    fn non_objects_and_bombs_are_malformed() {
        assert!(matches!(
            decode_payload(&B64.encode(b"[1,2]")),
            Err(SigningError::Malformed(_))
        ));
        let big = vec![b' '; (MAX_DECOMPRESSED_LEN + 10) as usize];
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&big).unwrap();
        let bomb = format!(".{}", B64.encode(enc.finish().unwrap()));
        assert!(matches!(
            decode_payload(&bomb),
            Err(SigningError::Malformed(_))
        ));
    }
}
