//! The payload of a signed value: Django's JSON in URL-safe base64, zlib-compressed when
//! that is shorter.

use std::io::Read;

use base64::Engine;
use flate2::Compression;
use flate2::read::ZlibDecoder;
use serde_json::{Map, Value};

use super::json::to_django_json;
use super::{B64, MAX_DECOMPRESSED_LEN, SigningError};
use crate::store::preserved::{Preserved, parse_session_json};

/// The base64 payload of `signing.dumps`: compact ASCII JSON, zlib-compressed when that
/// saves more than one byte.
// Public for the fuzz targets (fuzz/), not part of the API.
#[doc(hidden)]
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
// Public for the fuzz targets (fuzz/), not part of the API.
#[doc(hidden)]
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
