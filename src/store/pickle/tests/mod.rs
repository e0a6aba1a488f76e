use sha2::{Digest, Sha256};

use super::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn s(text: &str) -> PyValue {
    PyValue::Str(text.into())
}

fn big(digits: &str) -> PyValue {
    PyValue::BigInt(digits.into())
}

fn f(bits: u64) -> PyValue {
    PyValue::Float(f64::from_bits(bits))
}

fn d(items: Vec<(&str, PyValue)>) -> PyValue {
    PyValue::Dict(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn list(items: Vec<PyValue>) -> PyValue {
    PyValue::List(items)
}

fn int(i: i64) -> PyValue {
    PyValue::Int(i)
}

/// `[80 05] FRAME(len) body`, as CPython frames a pickle shorter than its 64 KiB target.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 5, 0x95];
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn json_of(value: &PyValue) -> String {
    let mut out = String::new();
    value.write_django_json(&mut out);
    out
}

fn assert_refused(bytes: &[u8], message: &str) {
    match loads(bytes) {
        Ok(value) => panic!("{bytes:?} read as {value:?}, expected {message:?}"),
        Err(error) => assert!(
            error.to_string().contains(message),
            "{bytes:?}: {error} (expected {message:?})"
        ),
    }
}

mod dumps;
mod loads;
mod refusals;
mod vectors;
