//! `session_data` as a server-side store reads it back: `Codec::decode` on arbitrary text.
//!
//! Invariants, on the input as text (`String::from_utf8_lossy` when it is not UTF-8):
//! - `Codec::plain().decode` and `Codec::django(..).decode` never panic;
//! - the plain codec decodes exactly what Python's `json.loads` reads as a dict
//!   (`python::parse_django_json`: JSON objects, and Python's `NaN`, `Infinity` and
//!   out-of-range exponents too), to what serde_json parses or, where serde_json cannot,
//!   to the nearest JSON value;
//! - when the input is a JSON object, `encode` then `decode` gives it back, with both
//!   codecs, and the encoded text is ASCII (Django's `ensure_ascii`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessionbase::store::Codec;
use sessionbase::store::python::{PyValue, parse_django_json};

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

    let python = match parse_django_json(text) {
        Ok(dict @ PyValue::Dict(_)) => match dict.to_json() {
            Value::Object(map) => Some(map),
            _ => None,
        },
        _ => None,
    };
    let serde = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    match (&from_plain, &python, &serde) {
        (None, None, None) => {}
        (Some(got), Some(py), _) if same_map(got, py) => {}
        (Some(got), _, Some(sj)) if same_map(got, sj) => {}
        _ => panic!(
            "plain codec: {from_plain:?}, Python's reading: {python:?}, serde_json: {serde:?} for {text:?}"
        ),
    }
    let Some(data) = serde else { return };
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
