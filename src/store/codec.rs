//! How server-side stores turn session data into the text they keep: Django's
//! `SessionBase.encode` (signed with the salt `django.contrib.sessions.SessionStore`,
//! compressed JSON) when a secret is configured, plain JSON otherwise.

use serde_json::{Map, Value};

use super::preserved::{Preserved, parse_session_json};
use crate::Error;
use crate::signing::{SESSION_STORE_SALT, Signer, SigningError};

/// Encodes and decodes `session_data` as Django does.
///
/// ```
/// use sessionbase::store::Codec;
/// use serde_json::json;
///
/// let codec = Codec::django("django_tests_secret_key", Vec::<String>::new());
/// let data = json!({"hello": "world"}).as_object().cloned().unwrap();
/// let text = codec.encode(&data).unwrap();
/// assert_eq!(codec.decode(&text), Some(data.clone()));
/// // Tampered or foreign data decodes as no session.
/// assert_eq!(codec.decode("bad:encoded:value"), None);
///
/// let plain = Codec::plain();
/// assert_eq!(plain.encode(&data).unwrap(), r#"{"hello":"world"}"#);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Codec {
    signer: Option<Signer>,
}

impl Codec {
    /// Plain compact JSON: for stores only Rust reads.
    pub fn plain() -> Self {
        Self { signer: None }
    }

    /// Django's `SessionBase.encode`/`decode` with `SECRET_KEY` and `SECRET_KEY_FALLBACKS`.
    pub fn django<I>(secret: impl AsRef<[u8]>, fallbacks: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        Self {
            signer: Some(Signer::with_fallbacks(
                secret,
                fallbacks,
                SESSION_STORE_SALT,
            )),
        }
    }

    /// Whether data is signed (Django format) rather than plain JSON.
    pub fn is_signed(&self) -> bool {
        self.signer.is_some()
    }

    /// The text to store for `data`.
    pub fn encode(&self, data: &Map<String, Value>) -> Result<String, Error> {
        self.encode_preserving(data, &Preserved::default())
    }

    /// The text to store for `data`, with the values of `preserved` that the session left
    /// unchanged written as they were stored.
    pub(crate) fn encode_preserving(
        &self,
        data: &Map<String, Value>,
        preserved: &Preserved,
    ) -> Result<String, Error> {
        let json = preserved.to_django_json(data);
        match &self.signer {
            Some(signer) => signer.dumps_json(&json, true).map_err(Error::store),
            None => Ok(json),
        }
    }

    /// The data in `text`, or `None` (logged as suspicious) when it is tampered, signed with
    /// an unknown key, truncated or not a JSON object: such a record counts as no session.
    ///
    /// Python's JSON can hold what `serde_json` cannot: an integer beyond 64 bits reads as
    /// the nearest float, `NaN` and the infinities as `null`. The stores keep such values
    /// exactly as stored and write them back unchanged when the session did not change
    /// them.
    pub fn decode(&self, text: &str) -> Option<Map<String, Value>> {
        self.decode_preserving(text).map(|(map, _)| map)
    }

    /// [`decode`](Self::decode), keeping what JSON cannot hold exactly.
    pub(crate) fn decode_preserving(&self, text: &str) -> Option<(Map<String, Value>, Preserved)> {
        let decoded = match &self.signer {
            Some(signer) => signer.loads_preserving(text, None),
            None => parse_session_json(text.as_bytes()).map_err(SigningError::Malformed),
        };
        decoded
            .inspect_err(|error| {
                // Django logs this on `django.security.SuspiciousSession`.
                tracing::warn!(target: "sessionbase::security", %error, "Session data corrupted");
            })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's fast float parser is off by one ULP on some long floats; with
    /// `float_roundtrip` every float a session holds comes back bit for bit, as in Python.
    #[test]
    fn floats_round_trip_exactly() {
        let mut x: f64 = 0.1;
        let mut floats = vec![
            0.1 + 0.2,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e23,
            -1.0e23,
        ];
        for _ in 0..2_000 {
            // A deterministic walk over awkward mantissas and exponents.
            x = (x * 1.618_033_988_749_895 + 0.377).fract()
                * 10f64.powi(((x * 1e3) as i32 % 600) - 300);
            floats.push(x);
        }
        for codec in [Codec::plain(), Codec::django("k", Vec::<String>::new())] {
            for &f in &floats {
                let mut map = Map::new();
                map.insert("f".into(), Value::from(f));
                let back = codec.decode(&codec.encode(&map).unwrap()).unwrap();
                assert_eq!(
                    back["f"].as_f64().map(f64::to_bits),
                    Some(f.to_bits()),
                    "{f:e}"
                );
            }
        }
    }
}
