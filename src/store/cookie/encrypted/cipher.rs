//! The encrypted cookie value: AES-256-GCM under a key derived by HKDF-SHA256, a random
//! 96-bit nonce per value, the cookie name as associated data, and the sealing time inside
//! the ciphertext.
//!
//! ```text
//! value     = base64url-nopad( nonce (12) || ciphertext || tag (16) )
//! plaintext = sealed_at (i64, big-endian Unix seconds) || compact JSON of the data
//! aad       = "sessionbase.encrypted-cookie.v1" || 0x00 || cookie name
//! key       = HKDF-SHA256(ikm = secret, salt = none, info = KEY_INFO), 32 bytes
//! ```

use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::Error;
use crate::key::os_random;

/// What the derived key is for: no other use of the secret derives the same key.
const KEY_INFO: &[u8] = b"sessionbase.store.EncryptedCookieStore.v1 AES-256-GCM key";
/// The start of the associated data; the cookie name follows.
const AAD_CONTEXT: &[u8] = b"sessionbase.encrypted-cookie.v1\0";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const TIME_LEN: usize = 8;
/// The shortest secret accepted, in bytes: 256 bits.
pub(super) const MIN_SECRET_LEN: usize = 32;

/// The shortest value that can be authentic: nonce, sealing time and tag around `{}`, in
/// unpadded base64 (4 characters per 3 bytes, rounded up).
pub(super) const MIN_VALUE_LEN: usize = ((NONCE_LEN + TIME_LEN + 2 + TAG_LEN) * 4).div_ceil(3);

/// One AES-256-GCM key, derived from one secret.
#[derive(Clone)]
pub(super) struct CookieCipher(Aes256Gcm);

impl CookieCipher {
    /// The cipher of `secret` (at least [`MIN_SECRET_LEN`] bytes, or [`Error::Config`]).
    pub(super) fn new(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::Config(format!(
                "EncryptedCookieStore secrets must be at least {MIN_SECRET_LEN} bytes (got {})",
                secret.len()
            )));
        }
        let mut key = Key::<Aes256Gcm>::default();
        Hkdf::<Sha256>::new(None, secret)
            .expand(KEY_INFO, &mut key)
            .map_err(|e| Error::Config(format!("EncryptedCookieStore key derivation: {e}")))?;
        Ok(Self(Aes256Gcm::new(&key)))
    }

    /// The cookie value holding `json` sealed at `sealed_at`, for the cookie `name`.
    pub(super) fn seal(&self, name: &str, sealed_at: i64, json: &[u8]) -> Result<String, Error> {
        let mut nonce = Nonce::<Aes256Gcm>::default();
        os_random(&mut nonce)?;
        let mut plaintext = Vec::with_capacity(TIME_LEN + json.len());
        plaintext.extend_from_slice(&sealed_at.to_be_bytes());
        plaintext.extend_from_slice(json);
        let aad = aad(name);
        let ciphertext = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::store("AES-256-GCM encryption failed"))?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// Opens `value` for the cookie `name` with the first of `ciphers` that authenticates it:
/// the sealing time and the JSON, or why it is no session. Every cipher is tried, so timing
/// does not tell which key matched.
pub(super) fn open<'a>(
    ciphers: impl IntoIterator<Item = &'a CookieCipher>,
    name: &str,
    value: &str,
) -> Result<(i64, Vec<u8>), &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| "not base64")?;
    if bytes.len() < NONCE_LEN + TIME_LEN + TAG_LEN {
        return Err("too short");
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| "too short")?;
    let aad = aad(name);
    let mut opened = None;
    for cipher in ciphers {
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        if let Ok(plaintext) = cipher.0.decrypt(&nonce, payload) {
            opened.get_or_insert(plaintext);
        }
    }
    let plaintext = opened.ok_or("not authentic (tampered, another key or another cookie)")?;
    let (time, json) = plaintext.split_at(TIME_LEN);
    let sealed_at = i64::from_be_bytes(time.try_into().map_err(|_| "too short")?);
    Ok((sealed_at, json.to_vec()))
}

fn aad(name: &str) -> Vec<u8> {
    [AAD_CONTEXT, name.as_bytes()].concat()
}
