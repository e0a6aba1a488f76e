//! The pickler: protocol 5, opcode for opcode what CPython writes, without memo or frames.

use super::opcodes::{canonical_int, negate};
use crate::store::python::PyValue;

/// CPython's pickler's batch size for APPENDS and SETITEMS.
const BATCH: usize = 1000;

pub(super) fn write(value: &PyValue, out: &mut Vec<u8>) {
    match value {
        PyValue::None => out.push(b'N'),
        PyValue::Bool(true) => out.push(0x88),
        PyValue::Bool(false) => out.push(0x89),
        PyValue::Int(i) => write_int(*i, out),
        PyValue::BigInt(digits) => match encode_decimal(digits) {
            Some(bytes) => write_long(&bytes, out),
            None => out.extend_from_slice(format!("L{digits}L\n").as_bytes()),
        },
        PyValue::Float(f) => {
            out.push(b'G');
            out.extend_from_slice(&f.to_be_bytes());
        }
        PyValue::Str(s) => write_str(s, out),
        // CPython's batch_list_exact: one item is an APPEND, more go in MARK ... APPENDS.
        PyValue::List(items) => {
            out.push(b']');
            if let [item] = &items[..] {
                write(item, out);
                out.push(b'a');
                return;
            }
            for batch in items.chunks(BATCH) {
                out.push(b'(');
                batch.iter().for_each(|item| write(item, out));
                out.push(b'e');
            }
        }
        // CPython's batch_dict_exact: the same, but after a full batch it opens another, so
        // a multiple of 1000 items ends with an empty MARK SETITEMS. Kept, to write what it
        // writes.
        PyValue::Dict(entries) => {
            out.push(b'}');
            if let [(key, value)] = &entries[..] {
                write_str(key, out);
                write(value, out);
                out.push(b's');
                return;
            }
            for (i, batch) in entries.chunks(BATCH).enumerate() {
                out.push(b'(');
                for (key, value) in batch {
                    write_str(key, out);
                    write(value, out);
                }
                out.push(b'u');
                if (i + 1) * BATCH == entries.len() {
                    out.extend_from_slice(b"(u");
                }
            }
        }
    }
}

fn write_int(i: i64, out: &mut Vec<u8>) {
    if let Ok(small) = u8::try_from(i) {
        out.extend_from_slice(&[b'K', small]);
    } else if let Ok(small) = u16::try_from(i) {
        out.push(b'M');
        out.extend_from_slice(&small.to_le_bytes());
    } else if let Ok(small) = i32::try_from(i) {
        out.push(b'J');
        out.extend_from_slice(&small.to_le_bytes());
    } else {
        write_long(&minimal_twos_complement(i.to_le_bytes().to_vec()), out);
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    let len = s.len();
    if let Ok(n) = u8::try_from(len) {
        out.extend_from_slice(&[0x8c, n]);
    } else if let Ok(n) = u32::try_from(len) {
        out.push(b'X');
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(0x8d);
        out.extend_from_slice(&(len as u64).to_le_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_long(bytes: &[u8], out: &mut Vec<u8>) {
    if let Ok(n) = u8::try_from(bytes.len()) {
        out.extend_from_slice(&[0x8a, n]);
    } else {
        out.push(0x8b);
        let n = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(bytes);
}

/// Python's `encode_long`: the shortest little-endian two's complement that keeps the sign.
fn minimal_twos_complement(mut bytes: Vec<u8>) -> Vec<u8> {
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let fill = if negative { 0xFF } else { 0 };
    while let [.., next, last] = bytes[..] {
        if last != fill || (next & 0x80 != 0) != negative {
            break;
        }
        bytes.pop();
    }
    bytes
}

/// Canonical decimal text as [`minimal_twos_complement`] bytes, or None if it is not.
fn encode_decimal(text: &str) -> Option<Vec<u8>> {
    let text = canonical_int(text.as_bytes())?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    // The magnitude, little-endian: times ten plus the digit, digit by digit.
    let mut bytes: Vec<u8> = Vec::new();
    for digit in digits.bytes() {
        let mut carry = u32::from(digit - b'0');
        for b in &mut bytes {
            let cur = u32::from(*b) * 10 + carry;
            *b = cur.to_le_bytes()[0];
            carry = cur >> 8;
        }
        if carry > 0 {
            bytes.push(carry.to_le_bytes()[0]);
        }
    }
    bytes.push(0); // room for the sign bit
    if negative {
        negate(&mut bytes);
    }
    Some(minimal_twos_complement(bytes))
}
