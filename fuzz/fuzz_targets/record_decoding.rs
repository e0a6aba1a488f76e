//! `session_data` as a server-side store reads it back: `Codec::decode` on arbitrary text.
//!
//! Invariants, on the input as text (`String::from_utf8_lossy` when it is not UTF-8):
//! - `Codec::plain().decode` and `Codec::django(..).decode` never panic;
//! - the plain codec decodes exactly the JSON objects, to what serde_json parses;
//! - when the input is a JSON object, `encode` then `decode` gives it back, with both
//!   codecs, and the encoded text is ASCII (Django's `ensure_ascii`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessionbase::store::Codec;

#[path = "common/json.rs"]
mod json;
use json::same_map;

fn codecs() -> &'static [Codec; 2] {
    static CODECS: OnceLock<[Codec; 2]> = OnceLock::new();
    CODECS.get_or_init(|| [Codec::plain(), Codec::django("k", Vec::<String>::new())])
}

fn check(text: &str) {
    let [plain, django] = codecs();
    let from_plain = plain.decode(text);
    let _ = django.decode(text);

    let Ok(Value::Object(data)) = serde_json::from_str::<Value>(text) else {
        assert!(
            from_plain.is_none(),
            "plain codec decoded a non-object: {text:?}"
        );
        return;
    };
    assert_eq!(from_plain.as_ref(), Some(&data));
    for codec in [plain, django] {
        let encoded = codec.encode(&data).expect("encoding a JSON object");
        assert!(encoded.is_ascii(), "non-ASCII encoding: {encoded:?}");
        let decoded = codec
            .decode(&encoded)
            .unwrap_or_else(|| panic!("{codec:?} does not decode its own {encoded:?}"));
        assert!(
            same_map(&data, &decoded),
            "{codec:?} does not round-trip: {data:?} vs {decoded:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});
