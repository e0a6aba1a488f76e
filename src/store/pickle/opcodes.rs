//! Opcode arguments as Python reads them: decimal lines, raw-unicode-escape text, binary
//! ints, and the opcodes refused.

use std::fmt::Write as _;

use super::reader::Node;
use super::{MAX_INT_BITS, PickleError, Result, invalid};
use crate::store::python::{MAX_INT_DIGITS, PyValue, int_from_canonical};

/// A length from the input (one beyond usize could never be read anyway).
pub(super) fn to_len(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| PickleError::Truncated)
}

/// PUT's and GET's decimal index.
pub(super) fn memo_index(line: &[u8], opcode: &str) -> Result<u64> {
    match std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(i) if i < 0 && opcode == "PUT" => Err(invalid("negative PUT argument")),
        Some(i) => {
            u64::try_from(i).map_err(|_| invalid(format!("memo value not found at index {i}")))
        }
        None => Err(invalid(format!("{opcode} argument is not a decimal int"))),
    }
}

/// Why an opcode outside the data subset is refused.
pub(super) fn refusal(opcode: u8) -> PickleError {
    let (name, what) = match opcode {
        b'c' => ("GLOBAL", None),
        0x93 => ("STACK_GLOBAL", None),
        b'R' => ("REDUCE", None),
        b'b' => ("BUILD", None),
        b'i' => ("INST", None),
        b'o' => ("OBJ", None),
        0x81 => ("NEWOBJ", None),
        0x92 => ("NEWOBJ_EX", None),
        0x82 => ("EXT1", None),
        0x83 => ("EXT2", None),
        0x84 => ("EXT4", None),
        b'P' => ("PERSID", None),
        b'Q' => ("BINPERSID", None),
        b'C' => ("SHORT_BINBYTES", Some("bytes")),
        b'B' => ("BINBYTES", Some("bytes")),
        0x8e => ("BINBYTES8", Some("bytes")),
        0x96 => ("BYTEARRAY8", Some("a bytearray")),
        0x8f => ("EMPTY_SET", Some("a set")),
        0x90 => ("ADDITEMS", Some("a set")),
        0x91 => ("FROZENSET", Some("a frozenset")),
        b'S' => ("STRING", Some("a Python 2 str")),
        b'T' => ("BINSTRING", Some("a Python 2 str")),
        b'U' => ("SHORT_BINSTRING", Some("a Python 2 str")),
        0x97 => ("NEXT_BUFFER", Some("an out-of-band buffer")),
        0x98 => ("READONLY_BUFFER", Some("an out-of-band buffer")),
        _ => return PickleError::UnknownOpcode(opcode),
    };
    match what {
        None => PickleError::NeedsCallable(name),
        Some(what) => PickleError::UnsupportedType { opcode: name, what },
    }
}

/// UTF-8 as Python's pickle writes it ('surrogatepass': a lone surrogate is refused).
pub(super) fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| match &bytes[e.valid_up_to()..] {
        [0xED, 0xA0..=0xBF, _, ..] => PickleError::LoneSurrogate,
        _ => invalid("str is not valid UTF-8"),
    })
}

/// Canonical decimal (`-?(0|[1-9][0-9]*)`), or None.
pub(super) fn canonical_int(text: &[u8]) -> Option<&str> {
    let ok = match text.strip_prefix(b"-").unwrap_or(text) {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    ok.then(|| std::str::from_utf8(text).ok()).flatten()
}

/// Canonical decimal text as an Int or BigInt node, within Python's digit limit.
fn int_node(text: &[u8], opcode: &str) -> Result<Node> {
    let text = canonical_int(text)
        .ok_or_else(|| invalid(format!("{opcode} argument is not a decimal int")))?;
    if text.trim_start_matches('-').len() > MAX_INT_DIGITS {
        return Err(PickleError::IntTooLong);
    }
    Ok(match int_from_canonical(text) {
        PyValue::BigInt(s) => Node::BigInt(s),
        PyValue::Int(i) => Node::Int(i),
        _ => Node::Int(0),
    })
}

/// INT's text: `00`/`01` (and, as CPython reads it, `-0`) are False/True. Decimal only:
/// CPython also reads `007` (octal), `+1` and ` 1`, which no pickler writes.
pub(super) fn int_line(line: &[u8]) -> Result<Node> {
    match line {
        b"00" | b"-0" => Ok(Node::Bool(false)),
        b"01" => Ok(Node::Bool(true)),
        _ => int_node(line, "INT"),
    }
}

/// LONG's text, its trailing 'L' optional: decimal, as Python writes it.
pub(super) fn long_line(line: &[u8]) -> Result<Node> {
    match line.strip_suffix(b"L").unwrap_or(line) {
        b"-0" => Ok(Node::Int(0)),
        digits => int_node(digits, "LONG"),
    }
}

/// FLOAT's text, as Python's float(); an overflow (`1e400`) is an error there, so here too.
pub(super) fn float_line(line: &[u8]) -> Result<Node> {
    let text = std::str::from_utf8(line).unwrap_or("");
    let f: f64 = text
        .parse()
        .map_err(|_| invalid("could not convert FLOAT argument to float"))?;
    let named = text.trim_start_matches(['-', '+']).to_ascii_lowercase();
    if f.is_infinite() && named != "inf" && named != "infinity" {
        return Err(invalid("FLOAT value too large to convert to float"));
    }
    Ok(Node::Float(f))
}

/// Python's 'raw-unicode-escape' decoding: bytes are Latin-1 but for `\uXXXX` and
/// `\UXXXXXXXX`; a backslash before anything else stays, with what follows it.
pub(super) fn raw_unicode_escape(bytes: &[u8]) -> Result<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let count = match bytes[i..] {
            [b'\\', b'u', ..] => 4,
            [b'\\', b'U', ..] => 8,
            [b'\\', other, ..] => {
                out.extend(['\\', char::from(other)]);
                i += 2;
                continue;
            }
            [b, ..] => {
                out.push(char::from(b));
                i += 1;
                continue;
            }
            [] => break,
        };
        let hex = bytes.get(i + 2..i + 2 + count);
        let code = hex
            .and_then(|h| u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            .filter(|_| hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
            .ok_or_else(|| invalid("truncated \\uXXXX escape in UNICODE"))?;
        if code > 0x10FFFF {
            return Err(invalid("\\Uxxxxxxxx out of range in UNICODE"));
        }
        out.push(char::from_u32(code).ok_or(PickleError::LoneSurrogate)?);
        i += 2 + count;
    }
    Ok(out)
}

const BILLION: u64 = 1_000_000_000;

/// Two's complement negation, little-endian.
pub(super) fn negate(bytes: &mut [u8]) {
    let mut carry = true;
    for b in bytes {
        (*b, carry) = (!*b).overflowing_add(u8::from(carry));
    }
}

/// LONG1/LONG4's argument: a little-endian two's complement int of any length.
pub(super) fn long_binary(bytes: &[u8]) -> Result<Node> {
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    if bytes.len() <= 8 {
        let mut buf = [if negative { 0xFF } else { 0 }; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        return Ok(Node::Int(i64::from_le_bytes(buf)));
    }
    let mut magnitude = bytes.to_vec();
    if negative {
        negate(&mut magnitude);
    }
    while magnitude.last() == Some(&0) {
        magnitude.pop();
    }
    if magnitude.is_empty() {
        return Ok(Node::Int(0));
    }
    let bits = magnitude
        .last()
        .map_or(0, |b| magnitude.len() * 8 - b.leading_zeros() as usize);
    if bits > MAX_INT_BITS {
        return Err(PickleError::IntTooLong);
    }
    // Base-10**9 digits, least significant first, by long division of the bytes.
    let mut chunks = Vec::new();
    while !magnitude.is_empty() {
        let mut rem = 0u64;
        for b in magnitude.iter_mut().rev() {
            let cur = (rem << 8) | u64::from(*b);
            *b = u8::try_from(cur / BILLION).unwrap_or(u8::MAX);
            rem = cur % BILLION;
        }
        chunks.push(rem);
        while magnitude.last() == Some(&0) {
            magnitude.pop();
        }
    }
    let mut text = String::from(if negative { "-" } else { "" });
    for (i, chunk) in chunks.iter().rev().enumerate() {
        let _ = if i == 0 {
            write!(text, "{chunk}")
        } else {
            write!(text, "{chunk:09}")
        };
    }
    int_node(text.as_bytes(), "LONG")
}
