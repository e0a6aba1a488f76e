//! Django's JSON read as Python's `json.loads` reads it.

use std::collections::HashMap;

use super::{MAX_DEPTH, MAX_INT_DIGITS, PyValue, int_from_canonical};

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
