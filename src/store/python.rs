//! Session values as Python holds them, and Django's JSON read and written exactly.
//!
//! Django's `JSONSerializer` writes `json.dumps(obj, separators=(",", ":"))` and reads
//! `json.loads`. Python's JSON holds what `serde_json` cannot: integers of any size, `NaN`,
//! `Infinity` and `-Infinity`. [`PyValue`] holds all of it, so that a record read here and
//! written back is byte for byte what Python would write.
//!
//! Two limits make Python's own refusals ours, so that every value read here can be written
//! back and read again, as JSON and as a pickle: containers nest at most [`MAX_DEPTH`] deep
//! (serde_json's limit), and integers have at most [`MAX_INT_DIGITS`] digits (Python's
//! `sys.get_int_max_str_digits()`: beyond it `json.loads` and `json.dumps` raise).

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// The deepest nesting of lists and dicts read: serde_json's own limit (127 containers), so
/// that whatever is read here also reads as `serde_json` JSON.
pub const MAX_DEPTH: usize = 127;

/// The most digits an integer may have: Python's default `sys.get_int_max_str_digits()`.
pub const MAX_INT_DIGITS: usize = 4300;

/// A session value as Python holds it (what Django's JSONSerializer and pickle can carry).
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An int that fits in 64 bits.
    Int(i64),
    /// An int beyond i64: decimal digits with an optional leading '-', exactly as Python
    /// prints it (no leading zeros). u64 values above i64::MAX are BigInt too.
    BigInt(String),
    /// A float; NaN and ±inf allowed (Python's json writes NaN, Infinity, -Infinity).
    Float(f64),
    /// A str.
    Str(String),
    /// A list (a tuple too: pickle's tuples decode as lists, as JSON has them).
    List(Vec<PyValue>),
    /// A dict with str keys, in insertion order, each key once.
    Dict(Vec<(String, PyValue)>),
}

/// Why text is not JSON that Python's `json.loads` reads into a [`PyValue`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Django JSON at byte {offset}: {message}")]
pub struct JsonError {
    message: &'static str,
    offset: usize,
}

impl JsonError {
    /// What is wrong.
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// The byte offset in the text where it went wrong.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// Parses what Python's `json.loads` accepts from Django's `JSONSerializer` output.
///
/// Integers stay exact at any size (up to [`MAX_INT_DIGITS`], as Python); numbers with a
/// fraction or exponent are floats rounded as Python's `float()` (`1e400` is infinity). A
/// duplicate key keeps its first position and its last value, as a Python dict does. Refused
/// beyond Python's own refusals: a lone surrogate escape (`"\ud800"`, which a Rust `String`
/// cannot hold) and nesting deeper than [`MAX_DEPTH`].
pub fn parse_django_json(text: &str) -> Result<PyValue, JsonError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("extra data after the value"));
    }
    Ok(value)
}

/// Builds a dict with Python's semantics for a repeated key.
struct DictBuilder {
    entries: Vec<(String, PyValue)>,
    // Only for large dicts: a linear scan is cheaper for the few keys of most sessions.
    index: Option<HashMap<String, usize>>,
}

const INDEX_FROM: usize = 16;

impl DictBuilder {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            index: None,
        }
    }

    /// `d[key] = value`: a new key goes last, a known key keeps its place.
    fn insert(&mut self, key: String, value: PyValue) {
        let found = match &self.index {
            Some(index) => index.get(&key).copied(),
            None => self.entries.iter().position(|(k, _)| *k == key),
        };
        if let Some(i) = found {
            self.entries[i].1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.entries.len());
        } else if self.entries.len() + 1 >= INDEX_FROM {
            let mut index: HashMap<String, usize> = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            index.insert(key.clone(), self.entries.len());
            self.index = Some(index);
        }
        self.entries.push((key, value));
    }

    fn finish(self) -> Vec<(String, PyValue)> {
        self.entries
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &'static str) -> JsonError {
        JsonError {
            message,
            offset: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat_literal(&mut self, literal: &str) -> bool {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    /// A value at `self.pos` (no whitespace before it), inside `depth` containers.
    fn value(&mut self, depth: usize) -> Result<PyValue, JsonError> {
        let value = match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                PyValue::Str(self.string()?)
            }
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'-' | b'0'..=b'9') => {
                if self.eat_literal("-Infinity") {
                    PyValue::Float(f64::NEG_INFINITY)
                } else {
                    self.number()?
                }
            }
            _ if self.eat_literal("null") => PyValue::None,
            _ if self.eat_literal("true") => PyValue::Bool(true),
            _ if self.eat_literal("false") => PyValue::Bool(false),
            _ if self.eat_literal("NaN") => PyValue::Float(f64::NAN),
            _ if self.eat_literal("Infinity") => PyValue::Float(f64::INFINITY),
            _ => return Err(self.error("expecting a value")),
        };
        Ok(value)
    }

    fn enter(&self, depth: usize) -> Result<usize, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        Ok(depth + 1)
    }

    fn object(&mut self, depth: usize) -> Result<PyValue, JsonError> {
        let depth = self.enter(depth)?;
        self.pos += 1;
        let mut dict = DictBuilder::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(PyValue::Dict(Vec::new()));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expecting a property name in double quotes"));
            }
            self.pos += 1;
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expecting ':'"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            dict.insert(key, value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_whitespace();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(PyValue::Dict(dict.finish()));
                }
                _ => return Err(self.error("expecting ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<PyValue, JsonError> {
        let depth = self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(PyValue::List(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_whitespace();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(PyValue::List(items));
                }
                _ => return Err(self.error("expecting ',' or ']'")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Python's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`; a '.' or
    /// an 'e' that no digit follows is not part of the number (and then is extra data).
    fn number(&mut self) -> Result<PyValue, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => {
                self.pos = start;
                return Err(self.error("expecting a value"));
            }
        }
        let int_end = self.pos;
        let mut is_float = false;
        if self.peek() == Some(b'.') && matches!(self.bytes.get(self.pos + 1), Some(b'0'..=b'9')) {
            self.pos += 1;
            self.digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            let e_start = self.pos;
            self.pos += 1;
            if let Some(b'-' | b'+') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                self.pos = e_start;
            } else {
                is_float = true;
            }
        }
        let number = &self.text[start..self.pos];
        if is_float {
            // Rust's parser is correctly rounded, as Python's float(); overflow is inf in both.
            return number
                .parse::<f64>()
                .map(PyValue::Float)
                .map_err(|_| self.error("invalid number"));
        }
        let digits = int_end - start - usize::from(number.starts_with('-'));
        if digits > MAX_INT_DIGITS {
            self.pos = start;
            return Err(self.error("integer with more digits than Python reads (4300)"));
        }
        Ok(int_from_canonical(number))
    }

    /// The rest of a string whose opening quote is consumed.
    fn string(&mut self) -> Result<String, JsonError> {
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The run ends at an ASCII byte or the end, so it is whole characters.
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos -= 1;
                            out.push(self.unicode_escape()?);
                            continue;
                        }
                        None => return Err(self.error("unterminated string")),
                        Some(_) => return Err(self.error("invalid \\escape")),
                    };
                    self.pos += 1;
                    out.push(escaped);
                }
                None => return Err(self.error("unterminated string")),
                Some(_) => return Err(self.error("invalid control character in a string")),
            }
        }
    }

    /// `\uXXXX` at `self.pos`, and its low half when it is a high surrogate.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            let low = if self.bytes[self.pos..].starts_with(b"\\u") {
                let here = self.pos;
                let low = self.hex4()?;
                if !(0xDC00..0xE000).contains(&low) {
                    self.pos = here;
                    return Err(
                        self.error("lone surrogate escape (Python reads it; UTF-8 cannot hold it)")
                    );
                }
                low
            } else {
                return Err(
                    self.error("lone surrogate escape (Python reads it; UTF-8 cannot hold it)")
                );
            };
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| {
            self.error("lone surrogate escape (Python reads it; UTF-8 cannot hold it)")
        })
    }

    /// `\uXXXX` at `self.pos`: exactly four hex digits, either case.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let hex = self
            .bytes
            .get(self.pos + 2..self.pos + 6)
            .ok_or_else(|| self.error("invalid \\uXXXX escape"))?;
        let mut code = 0;
        for &b in hex {
            let digit = char::from(b)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\uXXXX escape"))?;
            code = code * 16 + digit;
        }
        self.pos += 6;
        Ok(code)
    }
}

/// An int from canonical decimal text (`-?(0|[1-9][0-9]*)`): Int when it fits, else BigInt.
pub(crate) fn int_from_canonical(text: &str) -> PyValue {
    match text.parse::<i64>() {
        Ok(i) => PyValue::Int(i),
        Err(_) => PyValue::BigInt(text.to_owned()),
    }
}

impl PyValue {
    /// Appends what Python's `json.dumps(value, separators=(",", ":"))` writes.
    ///
    /// ASCII only (`ensure_ascii`), floats as `repr`, `NaN`/`Infinity`/`-Infinity` for the
    /// non-finite floats, ints exact. A BigInt is written as it holds it. Recursion is as
    /// deep as the value (at most [`MAX_DEPTH`] for values this crate reads).
    pub fn write_django_json(&self, out: &mut String) {
        match self {
            Self::None => out.push_str("null"),
            Self::Bool(true) => out.push_str("true"),
            Self::Bool(false) => out.push_str("false"),
            Self::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Self::BigInt(digits) => out.push_str(digits),
            Self::Float(f) if f.is_nan() => out.push_str("NaN"),
            Self::Float(f) if f.is_infinite() => {
                out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" });
            }
            Self::Float(f) => python_float_repr(*f, out),
            Self::Str(s) => write_json_string(s, out),
            Self::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_django_json(out);
                }
                out.push(']');
            }
            Self::Dict(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(key, out);
                    out.push(':');
                    value.write_django_json(out);
                }
                out.push('}');
            }
        }
    }

    /// The value from serde_json: u64 beyond i64 as BigInt, other numbers as Int or Float.
    pub fn from_json(value: &Value) -> PyValue {
        match value {
            Value::Null => Self::None,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Self::BigInt(u.to_string())
                } else {
                    Self::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Self::Str(s.clone()),
            Value::Array(items) => Self::List(items.iter().map(Self::from_json).collect()),
            Value::Object(map) => dict_from_json_map(map),
        }
    }

    /// The nearest serde_json value, lossy where JSON cannot hold the value: a BigInt becomes
    /// the float Python's `float(int)` gives (a u64 stays exact), or `null` beyond the float
    /// range (where Python raises); NaN and ±inf become `null`. [`is_exact_in_json`] says
    /// whether anything was lost.
    ///
    /// [`is_exact_in_json`]: PyValue::is_exact_in_json
    pub fn to_json(&self) -> Value {
        match self {
            Self::None => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::from(*i),
            Self::BigInt(digits) => {
                if let Ok(u) = digits.parse::<u64>() {
                    return Value::from(u);
                }
                // Correctly rounded, half to even: what Python's float(int) gives.
                digits
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
            Self::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Str(s) => Value::String(s.clone()),
            Self::List(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Dict(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Whether [`to_json`](PyValue::to_json) keeps the value exactly: false when it holds
    /// (at any depth) a BigInt beyond u64 or a non-finite float.
    ///
    /// A u64 beyond i64 is exact: serde_json holds it, and [`from_json`](PyValue::from_json)
    /// gives the same BigInt back.
    pub fn is_exact_in_json(&self) -> bool {
        match self {
            Self::None | Self::Bool(_) | Self::Int(_) | Self::Str(_) => true,
            Self::BigInt(digits) => digits.parse::<u64>().is_ok(),
            Self::Float(f) => f.is_finite(),
            Self::List(items) => items.iter().all(Self::is_exact_in_json),
            Self::Dict(entries) => entries.iter().all(|(_, v)| v.is_exact_in_json()),
        }
    }

    /// Equality with floats compared by their bits: a NaN equals the same NaN, and `0.0`
    /// differs from `-0.0` (what a lossless round trip must keep).
    pub fn identical(&self, other: &PyValue) -> bool {
        match (self, other) {
            (Self::Float(a), Self::Float(b)) => a.to_bits() == b.to_bits(),
            (Self::List(a), Self::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.identical(y))
            }
            (Self::Dict(a), Self::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.identical(vb))
            }
            _ => self == other,
        }
    }
}

/// A serde_json object as a dict, in its order.
pub fn dict_from_json_map(map: &Map<String, Value>) -> PyValue {
    PyValue::Dict(
        map.iter()
            .map(|(k, v)| (k.clone(), PyValue::from_json(v)))
            .collect(),
    )
}

/// A str as Python's `json.dumps` writes it with `ensure_ascii`.
fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let short = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            ' '..='~' => continue,
            _ => "",
        };
        out.push_str(&s[start..i]);
        start = i + c.len_utf8();
        if short.is_empty() {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push_str(short);
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `f` as `{:e}` with the digits of Python's repr ("-1.2345e-7").
///
/// `{:e}` gives the shortest digits that read back as `f`, as Python does; but when two
/// such digit strings are equally near `f` (`-111275153569243.125` to 17 digits) it takes the
/// upper one, while Python rounds half to even. A tie can only differ from Python when the
/// last digit is odd; then the correctly rounded digits of the same length (Rust rounds
/// those half to even) are Python's if they read back as `f` too.
fn shortest_digits(f: f64) -> String {
    let shortest = format!("{f:e}");
    let mantissa = shortest.split('e').next().unwrap_or("");
    let odd = mantissa
        .bytes()
        .last()
        .is_some_and(|d| d.is_ascii_digit() && (d - b'0') % 2 == 1);
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    if odd {
        let even = format!("{:.*e}", digits - 1, f);
        if even != shortest && even.parse::<f64>().is_ok_and(|g| g.to_bits() == f.to_bits()) {
            return even;
        }
    }
    shortest
}

/// Appends Python's `repr(float)`: the shortest digits that read back as `f`, positional
/// when the decimal exponent is in -4..16 (`0.0001`, `123.0`, `-0.0`), scientific otherwise
/// with a sign and at least two exponent digits (`1e-05`, `1e+16`). Non-finite floats as
/// Python's repr too: `nan`, `inf`, `-inf`.
pub fn python_float_repr(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("nan");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let sci = shortest_digits(f);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (first, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    out.push_str(sign);
    if (-4..16).contains(&exponent) {
        let digits_len = first.len() + rest.len();
        if exponent >= 0 {
            let int_len = usize::try_from(exponent).unwrap_or(0) + 1;
            let mut digits = first.chars().chain(rest.chars());
            out.extend(digits.by_ref().take(int_len));
            out.extend(std::iter::repeat_n('0', int_len.saturating_sub(digits_len)));
            out.push('.');
            let before = out.len();
            out.extend(digits);
            if out.len() == before {
                out.push('0');
            }
        } else {
            out.push_str("0.");
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(first);
            out.push_str(rest);
        }
    } else {
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.unsigned_abs()
        );
    }
}

#[cfg(test)]
mod scratch {
    #[test]
    #[ignore]
    fn explore_float_repr() {
        let text = std::fs::read_to_string("/tmp/pyx/floats.txt").unwrap();
        let mut bad = 0;
        for line in text.lines() {
            let (bits, repr) = line.split_once(' ').unwrap();
            let f = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            let mut out = String::new();
            super::python_float_repr(f, &mut out);
            if out != repr {
                bad += 1;
                if bad < 20 { eprintln!("{bits} python {repr} rust {out}"); }
            }
        }
        eprintln!("{} lines, {bad} mismatches", text.lines().count());
        assert_eq!(bad, 0);
    }
}
