//! Django signed values (`PAYLOAD:TIMESTAMP:SIGNATURE`) from an untrusted client.
//!
//! Invariants, on the input as text (`String::from_utf8_lossy` when it is not UTF-8):
//! - `Signer::loads_at` (cookie salt, Django's test secret, a two-week max age at
//!   1_700_000_000) and `decode_payload` never panic;
//! - a payload that decodes re-encodes (compressed or not) to text that decodes to the same
//!   object, and its JSON (`to_django_json`) is ASCII and parses back to it;
//! - what `loads_at` returns is what `decode_payload` makes of the verified payload;
//! - when `CookieStore::parse_key` accepts the input, `SessionStore::load` of it never panics
//!   and never errs, for a store with the default cookie age, one old enough for the 2023
//!   vectors, and one holding the secret only as a fallback; a record it returns is the
//!   verified payload's data.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use sessionbase::signing::{self, COOKIE_SALT, Signer, SigningError};
use sessionbase::{CookieStore, SessionKey, SessionStore};

#[path = "common/json.rs"]
mod json;
use json::same_map;

const SECRET: &str = "django_tests_secret_key";
const NOW: i64 = 1_700_000_000;
const TWO_WEEKS: i64 = 1_209_600;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    signer: Signer,
    stores: [CookieStore; 3],
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime"),
        signer: Signer::new(SECRET, COOKIE_SALT),
        stores: [
            CookieStore::new(SECRET),
            CookieStore::new(SECRET).with_session_config(&long_lived()),
            CookieStore::new("the current secret")
                .with_fallbacks([SECRET])
                .with_session_config(&long_lived()),
        ],
    })
}

/// Long enough for the 2023 vectors of Django's test suite to load.
fn long_lived() -> sessionbase::SessionConfig {
    sessionbase::SessionConfig::default().with_cookie_age(time::Duration::weeks(52 * 100))
}

fn check_payload(payload: &str) {
    let Ok(data) = signing::decode_payload(payload) else {
        return;
    };
    // Django's `ensure_ascii`: the JSON inside the base64 is ASCII, and parses back.
    let json = signing::to_django_json(&data);
    assert!(json.is_ascii(), "non-ASCII JSON: {json:?}");
    let parsed: Map<String, Value> = serde_json::from_str(&json).expect("our JSON parses");
    assert!(same_map(&data, &parsed), "{data:?} vs {json:?}");
    for compress in [false, true] {
        let encoded = signing::encode_payload(&data, compress).expect("encoding a decoded map");
        assert!(encoded.is_ascii());
        let again = signing::decode_payload(&encoded).expect("decoding what was encoded");
        assert!(
            same_map(&data, &again),
            "payload does not round-trip (compress {compress}): {data:?} vs {again:?}"
        );
    }
}

fn check(fx: &Fixture, text: &str) {
    check_payload(text);

    // What the signature covers, decoded: the only data any store may load from `text`.
    let verified = fx.signer.unsign_at(text, None, NOW);
    let verified_data = verified
        .as_ref()
        .ok()
        .and_then(|(payload, _)| signing::decode_payload(payload).ok());
    match fx.signer.loads_at(text, Some(TWO_WEEKS), NOW) {
        Ok(data) => assert_eq!(Some(&data), verified_data.as_ref()),
        Err(SigningError::BadSignature) => assert!(verified.is_err()),
        Err(SigningError::Expired { age, max_age }) => {
            assert!(verified.is_ok() && age > max_age && max_age == TWO_WEEKS)
        }
        Err(_) => assert!(verified_data.is_none()),
    }

    for store in &fx.stores {
        let Some(key) = store.parse_key(text) else {
            continue;
        };
        assert_eq!(key, SessionKey::from_validated(text));
        let record = fx
            .runtime
            .block_on(store.load(&key))
            .expect("CookieStore::load never errs");
        if let Some(record) = record {
            assert_eq!(
                Some(record.data.as_ref()),
                verified_data.as_ref(),
                "the store loaded data the signer does not verify"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    match std::str::from_utf8(data) {
        Ok(text) => check(fx, text),
        Err(_) => check(fx, &String::from_utf8_lossy(data)),
    }
});
