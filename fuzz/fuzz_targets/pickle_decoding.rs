//! A Django Redis cache record as the pickle format reads it: `pickle::loads` on arbitrary
//! bytes.
//!
//! Invariants:
//! - `loads` and `loads_dict` never panic, and agree (`loads_dict` is `loads` of a dict);
//! - when `loads` succeeds, `dumps` then `loads` gives the same value, floats by their bits
//!   (unless the value's shared references make the flat pickle `dumps` writes larger than
//!   `MAX_PICKLE_LEN`: then it is refused as too large, nothing else);
//! - its Django JSON (`write_django_json`) is ASCII, and `parse_django_json` reads it back to
//!   a value that writes the same text: the same value, NaNs aside (JSON has one NaN; the
//!   text tells every other value apart).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionbase::store::pickle::{self, MAX_PICKLE_LEN, PickleError};
use sessionbase::store::python::{PyValue, parse_django_json};

fuzz_target!(|data: &[u8]| {
    let loaded = pickle::loads(data);
    match (&loaded, pickle::loads_dict(data)) {
        (Ok(a @ PyValue::Dict(_)), Ok(b)) => assert!(a.identical(&PyValue::Dict(b))),
        (Ok(PyValue::Dict(_)), Err(e)) => panic!("loads_dict refused a dict: {e}"),
        (Ok(_), Err(PickleError::NotADict(_))) | (Err(_), Err(_)) => {}
        (a, b) => panic!("loads {a:?} but loads_dict {b:?}"),
    }
    let Ok(value) = loaded else {
        return;
    };

    let bytes = pickle::dumps(&value);
    match pickle::loads(&bytes) {
        Ok(again) => assert!(again.identical(&value), "{value:?} became {again:?}"),
        Err(PickleError::TooLarge(n)) if bytes.len() > MAX_PICKLE_LEN => assert_eq!(n, bytes.len()),
        Err(e) => panic!("dumps wrote what loads refuses ({e}): {value:?}"),
    }

    let mut json = String::new();
    value.write_django_json(&mut json);
    assert!(json.is_ascii(), "non-ASCII JSON: {json:?}");
    let parsed = parse_django_json(&json)
        .unwrap_or_else(|e| panic!("write_django_json wrote what parse refuses ({e}): {json:?}"));
    let mut again = String::new();
    parsed.write_django_json(&mut again);
    assert_eq!(again, json);
});
