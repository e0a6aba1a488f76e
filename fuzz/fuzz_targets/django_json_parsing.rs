//! Django's JSON as a record's payload is read when serde_json cannot hold it:
//! `parse_django_json` on arbitrary text.
//!
//! Invariants, on the input as text (`String::from_utf8_lossy` when it is not UTF-8):
//! - `parse_django_json` never panics;
//! - when it succeeds, `write_django_json` writes ASCII that parses back to a value that
//!   writes the same text (the same value, NaNs aside: JSON has one NaN), and the value pickles
//!   (`dumps`) and unpickles (`loads`) to itself, floats by their bits;
//! - what serde_json reads as a JSON object without big or non-finite numbers, this reads
//!   too, to the same value (`to_json` gives serde_json's value back), but that `-0` is the
//!   int 0 (as Python reads it) where serde_json reads the float -0.0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessionbase::store::pickle::{self, MAX_PICKLE_LEN, PickleError};
use sessionbase::store::python::parse_django_json;

/// Equal, but for `-0`: serde_json reads it as the float -0.0, Python as the int 0.
fn same_as_serde(ours: &Value, serde: &Value) -> bool {
    match (ours, serde) {
        (Value::Number(a), Value::Number(b)) => {
            a == b || (a.as_i64() == Some(0) && b.is_f64() && b.as_f64() == Some(0.0))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_as_serde(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_as_serde(va, vb))
        }
        _ => ours == serde,
    }
}

fn check(text: &str) {
    let parsed = parse_django_json(text);
    if let Ok(serde @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        let value = parsed
            .as_ref()
            .unwrap_or_else(|e| panic!("serde_json reads {text:?}, parse_django_json: {e}"));
        if value.is_exact_in_json() {
            let ours = value.to_json();
            assert!(
                same_as_serde(&ours, &serde),
                "{text:?}: {ours:?} vs {serde:?}"
            );
        }
    }
    let Ok(value) = parsed else {
        return;
    };

    let mut json = String::new();
    value.write_django_json(&mut json);
    assert!(json.is_ascii(), "non-ASCII JSON: {json:?}");
    let again = parse_django_json(&json)
        .unwrap_or_else(|e| panic!("write_django_json wrote what parse refuses ({e}): {json:?}"));
    let mut rewritten = String::new();
    again.write_django_json(&mut rewritten);
    assert_eq!(rewritten, json);

    let bytes = pickle::dumps(&value);
    match pickle::loads(&bytes) {
        Ok(back) => assert!(back.identical(&value), "{value:?} unpickled as {back:?}"),
        Err(PickleError::TooLarge(_)) if bytes.len() > MAX_PICKLE_LEN => {}
        Err(e) => panic!("loads refuses what dumps wrote ({e}): {value:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});
