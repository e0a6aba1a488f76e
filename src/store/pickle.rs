//! A restricted pickle codec for [`PyValue`]: what Django's Redis cache backends store.
//!
//! Django's `RedisCache` (and django-redis) store a session dict as
//! `pickle.dumps(d, pickle.HIGHEST_PROTOCOL)`; older setups write protocols 2 to 4. [`loads`]
//! is a small pickle machine for the data opcodes only (protocols 0 to 5): it never imports
//! or calls anything, so a pickle that needs a class or a callable (a `datetime`, an
//! `os.system` REDUCE) is refused, as are the types a JSON-shaped session cannot hold
//! (bytes, sets). [`dumps`] writes protocol 5 that Python reads back to the same value.
//!
//! Everything is bounded: the input ([`MAX_PICKLE_LEN`]), the nesting
//! ([`MAX_DEPTH`](super::python::MAX_DEPTH)) and the size of the value built, which the memo
//! could otherwise multiply (one list referenced a million times).

use std::collections::HashMap;
use std::rc::Rc;

use super::python::{MAX_DEPTH, MAX_INT_DIGITS, PyValue, int_from_canonical};

/// The largest pickle read: far above a session, small enough to bound the work.
pub const MAX_PICKLE_LEN: usize = 1 << 20;
/// The most values (and dict keys) a pickle may build: a pickle without shared references
/// spends a byte at least on each, so only the memo's sharing can reach this.
const MAX_NODES: usize = 1 << 20;
/// The most string bytes (values and keys) a pickle may build, shared ones counted each time.
const MAX_STRING_BYTES: usize = 16 << 20;
/// The longest LONG4 read; the digit limit refuses far shorter ones, this bounds the work first.
const MAX_LONG_BYTES: usize = 4096;

/// Why [`loads`] refused a pickle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// The input ended before STOP or inside an opcode's argument.
    #[error("truncated pickle")]
    Truncated,
    /// The input is larger than [`MAX_PICKLE_LEN`].
    #[error("pickle of {0} bytes is larger than the {MAX_PICKLE_LEN}-byte limit: refused")]
    TooLarge(usize),
    /// The pickle imports, calls or builds an object: never done here.
    #[error("pickle needs a class or callable (opcode {0}): refused")]
    NeedsCallable(&'static str),
    /// The pickle holds a type a JSON-shaped session cannot hold.
    #[error("pickle holds {what} (opcode {opcode}), which a session cannot hold: refused")]
    UnsupportedType {
        /// The opcode's name.
        opcode: &'static str,
        /// What it makes.
        what: &'static str,
    },
    /// A byte that is no pickle opcode.
    #[error("invalid pickle: unknown opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    /// A str holding a lone surrogate: Python reads it, UTF-8 cannot hold it.
    #[error("pickle holds a str with a lone surrogate: refused")]
    LoneSurrogate,
    /// A container that holds itself.
    #[error("pickle holds a recursive structure: refused")]
    Recursive,
    /// The value built would exceed the size or nesting limits.
    #[error("pickle builds a value {0}: refused")]
    TooBig(&'static str),
    /// An int beyond Python's 4300-digit limit for ints as text.
    #[error("pickle holds an int of more than 4300 digits: refused")]
    IntTooLong,
    /// `loads_dict` on a pickle of something else.
    #[error("pickle holds a {0}, not a dict")]
    NotADict(&'static str),
    /// Anything else that Python's unpickler would refuse too, or a form it never writes.
    #[error("invalid pickle: {0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, PickleError>;

fn invalid(message: impl Into<String>) -> PickleError {
    PickleError::Invalid(message.into())
}

/// Reads a pickle of a session value, executing nothing.
///
/// Refused: pickles that need a class or callable, bytes, bytearrays, sets, frozensets and
/// Python 2 strs, out-of-band buffers, dict keys that are not str, strs with a lone
/// surrogate, ints of more than 4300 digits, recursive structures, and the limits above.
/// Bytes after STOP are ignored, as Python does.
pub fn loads(bytes: &[u8]) -> Result<PyValue> {
    if bytes.len() > MAX_PICKLE_LEN {
        return Err(PickleError::TooLarge(bytes.len()));
    }
    let mut machine = Machine::new(bytes);
    let root = machine.run()?;
    let mut builder = Builder {
        nodes: &machine.nodes,
        on_path: vec![false; machine.nodes.len()],
        values: 0,
        string_bytes: 0,
    };
    builder.build(root, 0)
}

/// [`loads`] for a pickle that must hold a dict: the session dict's items, in order.
pub fn loads_dict(bytes: &[u8]) -> Result<Vec<(String, PyValue)>> {
    match loads(bytes)? {
        PyValue::Dict(items) => Ok(items),
        other => Err(PickleError::NotADict(type_name(&other))),
    }
}

fn type_name(value: &PyValue) -> &'static str {
    match value {
        PyValue::None => "None",
        PyValue::Bool(_) => "bool",
        PyValue::Int(_) | PyValue::BigInt(_) => "int",
        PyValue::Float(_) => "float",
        PyValue::Str(_) => "str",
        PyValue::List(_) => "list",
        PyValue::Dict(_) => "dict",
    }
}

/// An object while decoding; containers refer to others by index, as the memo does.
#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    BigInt(String),
    Float(f64),
    // Interned: equal strs are one node, so dict keys compare by index.
    Str(Rc<str>),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    // (key, value): keys are Str nodes, each once.
    Dict(Vec<(usize, usize)>),
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "bool",
            Self::Int(_) | Self::BigInt(_) => "int",
            Self::Float(_) => "float",
            Self::Str(_) => "str",
            Self::List(_) => "list",
            Self::Tuple(_) => "tuple",
            Self::Dict(_) => "dict",
        }
    }
}

const NONE: usize = 0;
const TRUE: usize = 1;
const FALSE: usize = 2;
/// Dicts with more entries get an index from key to position.
const INDEX_FROM: usize = 16;

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<usize>,
    // Stack lengths at each MARK, as Python's metastack: nothing pops below the last.
    marks: Vec<usize>,
    memo: HashMap<u64, usize>,
    strings: HashMap<Rc<str>, usize>,
    dict_index: HashMap<usize, HashMap<usize, usize>>,
}

impl<'a> Machine<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            nodes: vec![Node::None, Node::Bool(true), Node::Bool(false)],
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            strings: HashMap::new(),
            dict_index: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let input = self.input;
        let end = self.pos.checked_add(n).ok_or(PickleError::Truncated)?;
        let bytes = input.get(self.pos..end).ok_or(PickleError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// The line after a text opcode, without its '\n'.
    fn line(&mut self) -> Result<&'a [u8]> {
        let rest = &self.input[self.pos..];
        let n = memchr::memchr(b'\n', rest).ok_or(PickleError::Truncated)?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn add(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn push(&mut self, node: Node) {
        let index = self.add(node);
        self.stack.push(index);
    }

    fn push_str(&mut self, s: &str) {
        let index = match self.strings.get(s) {
            Some(&index) => index,
            None => {
                let s: Rc<str> = Rc::from(s);
                let index = self.add(Node::Str(Rc::clone(&s)));
                self.strings.insert(s, index);
                index
            }
        };
        self.stack.push(index);
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn underflow(&self) -> PickleError {
        invalid(if self.marks.is_empty() {
            "unpickling stack underflow"
        } else {
            "unexpected MARK found"
        })
    }

    fn pop(&mut self) -> Result<usize> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow());
        }
        self.stack.pop().ok_or_else(|| self.underflow())
    }

    fn top(&self) -> Result<usize> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow());
        }
        self.stack.last().copied().ok_or_else(|| self.underflow())
    }

    fn pop_mark(&mut self) -> Result<Vec<usize>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| invalid("could not find MARK"))?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&mut self, index: u64) -> Result<()> {
        let node = *self
            .memo
            .get(&index)
            .ok_or_else(|| invalid(format!("memo value not found at index {index}")))?;
        self.stack.push(node);
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Result<()> {
        let node = self.top()?;
        self.memo.insert(index, node);
        Ok(())
    }

    /// APPEND(S): `items` onto the list below them. Python does nothing for no items, even
    /// on a non-list.
    fn append(&mut self, items: Vec<usize>) -> Result<()> {
        let target = self.top()?;
        if items.is_empty() {
            return Ok(());
        }
        match &mut self.nodes[target] {
            Node::List(list) => {
                list.extend(items);
                Ok(())
            }
            other => Err(invalid(format!("APPEND to a {}", other.kind()))),
        }
    }

    /// SETITEM(S) and DICT: `d[k] = v` for each pair, as a Python dict (a known key keeps
    /// its place and takes the new value).
    fn set_items(&mut self, target: usize, items: &[usize]) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(invalid("odd number of items for SETITEMS"));
        }
        for pair in items.chunks_exact(2) {
            let (key, value) = (pair[0], pair[1]);
            if !matches!(self.nodes[key], Node::Str(_)) {
                return Err(invalid(format!(
                    "dict key is a {}, not a str",
                    self.nodes[key].kind()
                )));
            }
            let Node::Dict(entries) = &mut self.nodes[target] else {
                return Err(invalid(format!(
                    "SETITEM on a {}",
                    self.nodes[target].kind()
                )));
            };
            let found = match self.dict_index.get(&target) {
                Some(index) => index.get(&key).copied(),
                None => entries.iter().position(|&(k, _)| k == key),
            };
            if let Some(i) = found {
                entries[i].1 = value;
                continue;
            }
            entries.push((key, value));
            let len = entries.len();
            if let Some(index) = self.dict_index.get_mut(&target) {
                index.insert(key, len - 1);
            } else if len >= INDEX_FROM {
                let index = entries.iter().enumerate().map(|(i, &(k, _))| (k, i));
                self.dict_index.insert(target, index.collect());
            }
        }
        Ok(())
    }

    /// Runs the opcodes up to STOP; the object it pops.
    fn run(&mut self) -> Result<usize> {
        loop {
            let opcode = self.byte()?;
            match opcode {
                b'.' => return self.pop(),
                0x80 => {
                    let protocol = self.byte()?;
                    if protocol > 5 {
                        return Err(invalid(format!("unsupported pickle protocol: {protocol}")));
                    }
                }
                0x95 => {
                    // FRAME: a length over what follows; opcodes just continue inside it.
                    let n = u64::from_le_bytes(self.array()?);
                    let n = to_len(n)?;
                    if n > self.input.len() - self.pos {
                        return Err(PickleError::Truncated);
                    }
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                b'N' => self.stack.push(NONE),
                0x88 => self.stack.push(TRUE),
                0x89 => self.stack.push(FALSE),
                b'I' => {
                    let node = int_line(self.line()?)?;
                    self.push(node);
                }
                b'J' => {
                    let i = i32::from_le_bytes(self.array()?);
                    self.push(Node::Int(i.into()));
                }
                b'K' => {
                    let i = self.byte()?;
                    self.push(Node::Int(i.into()));
                }
                b'M' => {
                    let i = u16::from_le_bytes(self.array()?);
                    self.push(Node::Int(i.into()));
                }
                b'L' => {
                    let line = self.line()?;
                    let digits = line.strip_suffix(b"L").unwrap_or(line);
                    let node = long_text(digits)?;
                    self.push(node);
                }
                0x8a => {
                    let n = self.byte()?;
                    let node = long_binary(self.take(n.into())?)?;
                    self.push(node);
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = usize::try_from(n)
                        .map_err(|_| invalid("LONG pickle has negative byte count"))?;
                    if n > MAX_LONG_BYTES {
                        return Err(PickleError::IntTooLong);
                    }
                    let node = long_binary(self.take(n)?)?;
                    self.push(node);
                }
                b'F' => {
                    let node = float_line(self.line()?)?;
                    self.push(node);
                }
                b'G' => {
                    let f = f64::from_be_bytes(self.array()?);
                    self.push(Node::Float(f));
                }
                b'V' => {
                    let s = raw_unicode_escape(self.line()?)?;
                    self.push_str(&s);
                }
                0x8c => {
                    let n = self.byte()?;
                    let bytes = self.take(n.into())?;
                    self.push_str(utf8(bytes)?);
                }
                b'X' => {
                    let n = self.u32()?;
                    let bytes = self.take(to_len(n.into())?)?;
                    self.push_str(utf8(bytes)?);
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.array()?);
                    let bytes = self.take(to_len(n)?)?;
                    self.push_str(utf8(bytes)?);
                }
                b']' => self.push(Node::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b')' => self.push(Node::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(opcode - 0x84);
                    if self.stack.len() < self.fence() + n {
                        return Err(self.underflow());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::Tuple(items));
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    if !items.len().is_multiple_of(2) {
                        return Err(invalid("odd number of items for DICT"));
                    }
                    let dict = self.add(Node::Dict(Vec::new()));
                    self.set_items(dict, &items)?;
                    self.stack.push(dict);
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, &[key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    if !items.is_empty() {
                        self.set_items(dict, &items)?;
                    }
                }
                b'p' => {
                    let index = std::str::from_utf8(self.line()?)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .ok_or_else(|| invalid("PUT with an invalid index"))?;
                    let index =
                        u64::try_from(index).map_err(|_| invalid("negative PUT argument"))?;
                    self.memo_put(index)?;
                }
                b'q' => {
                    let index = self.byte()?;
                    self.memo_put(index.into())?;
                }
                b'r' => {
                    let index = self.u32()?;
                    self.memo_put(index.into())?;
                }
                0x94 => {
                    let index = u64::try_from(self.memo.len()).unwrap_or(u64::MAX);
                    self.memo_put(index)?;
                }
                b'g' => {
                    let line = self.line()?;
                    let index = std::str::from_utf8(line)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| {
                            invalid(format!(
                                "memo value not found at index {}",
                                String::from_utf8_lossy(line)
                            ))
                        })?;
                    self.memo_get(index)?;
                }
                b'h' => {
                    let index = self.byte()?;
                    self.memo_get(index.into())?;
                }
                b'j' => {
                    let index = self.u32()?;
                    self.memo_get(index.into())?;
                }
                _ => return Err(refusal(opcode)),
            }
        }
    }
}

/// A length from the input (one beyond usize could never be read anyway).
fn to_len(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| PickleError::Truncated)
}

/// Why an opcode outside the data subset is refused.
fn refusal(opcode: u8) -> PickleError {
    let callable = |name| PickleError::NeedsCallable(name);
    let unsupported = |opcode, what| PickleError::UnsupportedType { opcode, what };
    match opcode {
        b'c' => callable("GLOBAL"),
        0x93 => callable("STACK_GLOBAL"),
        b'R' => callable("REDUCE"),
        b'b' => callable("BUILD"),
        b'i' => callable("INST"),
        b'o' => callable("OBJ"),
        0x81 => callable("NEWOBJ"),
        0x92 => callable("NEWOBJ_EX"),
        0x82 => callable("EXT1"),
        0x83 => callable("EXT2"),
        0x84 => callable("EXT4"),
        b'P' => callable("PERSID"),
        b'Q' => callable("BINPERSID"),
        b'C' => unsupported("SHORT_BINBYTES", "bytes"),
        b'B' => unsupported("BINBYTES", "bytes"),
        0x8e => unsupported("BINBYTES8", "bytes"),
        0x96 => unsupported("BYTEARRAY8", "a bytearray"),
        0x8f => unsupported("EMPTY_SET", "a set"),
        0x90 => unsupported("ADDITEMS", "a set"),
        0x91 => unsupported("FROZENSET", "a frozenset"),
        b'S' => unsupported("STRING", "a Python 2 str"),
        b'T' => unsupported("BINSTRING", "a Python 2 str"),
        b'U' => unsupported("SHORT_BINSTRING", "a Python 2 str"),
        0x97 => unsupported("NEXT_BUFFER", "an out-of-band buffer"),
        0x98 => unsupported("READONLY_BUFFER", "an out-of-band buffer"),
        _ => PickleError::UnknownOpcode(opcode),
    }
}

/// UTF-8 as Python's pickle writes it ('surrogatepass': a lone surrogate is refused).
fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let rest = &bytes[e.valid_up_to()..];
        if rest.len() >= 3 && rest[0] == 0xED && (0xA0..0xC0).contains(&rest[1]) {
            PickleError::LoneSurrogate
        } else {
            invalid("str is not valid UTF-8")
        }
    })
}

/// Canonical decimal (`-?(0|[1-9][0-9]*)`) or None.
fn canonical_int(text: &[u8]) -> Option<&str> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let ok = match digits {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !ok {
        return None;
    }
    std::str::from_utf8(text).ok()
}

fn checked_int(text: &str) -> Result<Node> {
    if text.trim_start_matches('-').len() > MAX_INT_DIGITS {
        return Err(PickleError::IntTooLong);
    }
    Ok(match int_from_canonical(text) {
        PyValue::BigInt(s) => Node::BigInt(s),
        PyValue::Int(i) => Node::Int(i),
        _ => Node::Int(0),
    })
}

/// INT's text: `00`/`01` (and, as CPython reads it, `-0`) are False/True. Only the forms
/// Python writes: CPython also reads `007` as octal, `+1` and ` 1`, which no pickler writes.
fn int_line(line: &[u8]) -> Result<Node> {
    match line {
        b"00" | b"-0" => return Ok(Node::Bool(false)),
        b"01" => return Ok(Node::Bool(true)),
        _ => {}
    }
    let text = canonical_int(line).ok_or_else(|| invalid("INT argument is not a decimal int"))?;
    checked_int(text)
}

/// LONG's text (its trailing 'L' stripped): decimal, as Python writes it.
fn long_text(text: &[u8]) -> Result<Node> {
    let text = canonical_int(text).ok_or_else(|| invalid("LONG argument is not a decimal int"))?;
    if text == "-0" {
        return Ok(Node::Int(0));
    }
    checked_int(text)
}

/// FLOAT's text, as Python's float(): overflow (`1e400`) is an error there, so here too.
fn float_line(line: &[u8]) -> Result<Node> {
    let text = std::str::from_utf8(line).map_err(|_| invalid("FLOAT argument is not text"))?;
    let f: f64 = text
        .parse()
        .map_err(|_| invalid("could not convert FLOAT argument to float"))?;
    let named_infinity = text.trim_start_matches(['-', '+']).to_ascii_lowercase();
    if f.is_infinite() && named_infinity != "inf" && named_infinity != "infinity" {
        return Err(invalid("FLOAT value too large to convert to float"));
    }
    Ok(Node::Float(f))
}

/// Python's 'raw-unicode-escape' decoding: bytes are Latin-1 but for `\uXXXX` and
/// `\UXXXXXXXX`; a backslash before anything else stays (with what follows it).
fn raw_unicode_escape(bytes: &[u8]) -> Result<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b != b'\\' || i >= bytes.len() {
            out.push(char::from(b));
            continue;
        }
        let count = match bytes[i] {
            b'u' => 4,
            b'U' => 8,
            other => {
                out.push('\\');
                out.push(char::from(other));
                i += 1;
                continue;
            }
        };
        i += 1;
        let hex = bytes
            .get(i..i + count)
            .ok_or_else(|| invalid("truncated \\uXXXX escape in UNICODE"))?;
        let mut code: u32 = 0;
        for &h in hex {
            let digit = char::from(h)
                .to_digit(16)
                .ok_or_else(|| invalid("truncated \\uXXXX escape in UNICODE"))?;
            code = code * 16 + digit;
        }
        i += count;
        if code > 0x10FFFF {
            return Err(invalid("\\Uxxxxxxxx out of range in UNICODE"));
        }
        out.push(char::from_u32(code).ok_or(PickleError::LoneSurrogate)?);
    }
    Ok(out)
}

/// LONG1/LONG4's argument: a little-endian two's complement int of any length.
fn long_binary(bytes: &[u8]) -> Result<Node> {
    let Some(&last) = bytes.last() else {
        return Ok(Node::Int(0));
    };
    let negative = last & 0x80 != 0;
    if bytes.len() <= 8 {
        let mut buf = [if negative { 0xFF } else { 0 }; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        return Ok(Node::Int(i64::from_le_bytes(buf)));
    }
    // The magnitude in 32-bit limbs, least significant first.
    let mut limbs: Vec<u32> = bytes
        .chunks(4)
        .map(|chunk| {
            let mut buf = [if negative { 0xFF } else { 0 }; 4];
            buf[..chunk.len()].copy_from_slice(chunk);
            u32::from_le_bytes(buf)
        })
        .collect();
    if negative {
        let mut carry = true;
        for limb in &mut limbs {
            let (sum, overflow) = (!*limb).overflowing_add(u32::from(carry));
            *limb = sum;
            carry = overflow;
        }
    }
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    // 2**14285 > 10**4300: longer is over Python's digit limit before any division.
    let bits = limbs.len() * 32 - limbs.last().map_or(32, |l| l.leading_zeros() as usize);
    if bits > 14285 {
        return Err(PickleError::IntTooLong);
    }
    if limbs.len() <= 2 {
        let magnitude = limbs
            .iter()
            .rev()
            .fold(0u64, |acc, &l| (acc << 32) | u64::from(l));
        let value = if negative {
            -i128::from(magnitude)
        } else {
            i128::from(magnitude)
        };
        if let Ok(i) = i64::try_from(value) {
            return Ok(Node::Int(i));
        }
    }
    let mut chunks = Vec::new();
    while !limbs.is_empty() {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = u32::try_from(cur / 1_000_000_000).unwrap_or(u32::MAX);
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut text = String::with_capacity(chunks.len() * 9 + 1);
    if negative {
        text.push('-');
    }
    for (i, chunk) in chunks.iter().rev().enumerate() {
        if i == 0 {
            text.push_str(&chunk.to_string());
        } else {
            text.push_str(&format!("{chunk:09}"));
        }
    }
    checked_int(&text)
}

/// Turns the decoded objects into a tree, copying shared ones, within the limits.
struct Builder<'n> {
    nodes: &'n [Node],
    on_path: Vec<bool>,
    values: usize,
    string_bytes: usize,
}

impl Builder<'_> {
    fn count(&mut self, string_bytes: usize) -> Result<()> {
        self.values += 1;
        self.string_bytes += string_bytes;
        if self.values > MAX_NODES {
            return Err(PickleError::TooBig("of more than 2**20 values"));
        }
        if self.string_bytes > MAX_STRING_BYTES {
            return Err(PickleError::TooBig("of more than 16 MiB of strings"));
        }
        Ok(())
    }

    fn build(&mut self, index: usize, depth: usize) -> Result<PyValue> {
        let node = &self.nodes[index];
        let string_bytes = match node {
            Node::Str(s) => s.len(),
            _ => 0,
        };
        self.count(string_bytes)?;
        let value = match node {
            Node::None => PyValue::None,
            Node::Bool(b) => PyValue::Bool(*b),
            Node::Int(i) => PyValue::Int(*i),
            Node::BigInt(s) => PyValue::BigInt(s.clone()),
            Node::Float(f) => PyValue::Float(*f),
            Node::Str(s) => PyValue::Str(String::from(&**s)),
            Node::List(items) | Node::Tuple(items) => {
                self.enter(index, depth)?;
                let mut list = Vec::with_capacity(items.len().min(MAX_NODES));
                for &item in items {
                    list.push(self.build(item, depth + 1)?);
                }
                self.on_path[index] = false;
                PyValue::List(list)
            }
            Node::Dict(entries) => {
                self.enter(index, depth)?;
                let mut dict = Vec::with_capacity(entries.len().min(MAX_NODES));
                for &(key, value) in entries {
                    let Node::Str(k) = &self.nodes[key] else {
                        return Err(invalid("dict key is not a str"));
                    };
                    self.count(k.len())?;
                    dict.push((String::from(&**k), self.build(value, depth + 1)?));
                }
                self.on_path[index] = false;
                PyValue::Dict(dict)
            }
        };
        Ok(value)
    }

    fn enter(&mut self, index: usize, depth: usize) -> Result<()> {
        if self.on_path[index] {
            return Err(PickleError::Recursive);
        }
        if depth >= MAX_DEPTH {
            return Err(PickleError::TooBig("nested more than 127 deep"));
        }
        self.on_path[index] = true;
        Ok(())
    }
}

/// Pickles `value` as protocol 5, which Python reads back to the same value (floats to the
/// same bits). No memo and no frames, which Python does not need; otherwise the opcodes
/// Python's pickler writes.
///
/// A BigInt that is not canonical decimal is written as a LONG that Python refuses to read,
/// rather than as a different number.
pub fn dumps(value: &PyValue) -> Vec<u8> {
    let mut out = vec![0x80, 5];
    write(value, &mut out);
    out.push(b'.');
    out
}

/// Python's `pickle._BATCHSIZE`.
const BATCH: usize = 1000;

fn write(value: &PyValue, out: &mut Vec<u8>) {
    match value {
        PyValue::None => out.push(b'N'),
        PyValue::Bool(true) => out.push(0x88),
        PyValue::Bool(false) => out.push(0x89),
        PyValue::Int(i) => write_int(*i, out),
        PyValue::BigInt(digits) => match encode_decimal(digits) {
            Some(bytes) => write_long(&bytes, out),
            None => {
                out.push(b'L');
                out.extend_from_slice(digits.as_bytes());
                out.extend_from_slice(b"L\n");
            }
        },
        PyValue::Float(f) => {
            out.push(b'G');
            out.extend_from_slice(&f.to_be_bytes());
        }
        PyValue::Str(s) => write_str(s, out),
        PyValue::List(items) => {
            out.push(b']');
            for batch in items.chunks(BATCH) {
                if let [item] = batch {
                    write(item, out);
                    out.push(b'a');
                } else {
                    out.push(b'(');
                    batch.iter().for_each(|item| write(item, out));
                    out.push(b'e');
                }
            }
        }
        PyValue::Dict(entries) => {
            out.push(b'}');
            for batch in entries.chunks(BATCH) {
                let many = batch.len() > 1;
                if many {
                    out.push(b'(');
                }
                for (key, value) in batch {
                    write_str(key, out);
                    write(value, out);
                }
                out.push(if many { b'u' } else { b's' });
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
        let bytes = i.to_le_bytes();
        write_long(&minimal_twos_complement(&bytes), out);
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    if let Ok(n) = u8::try_from(bytes.len()) {
        out.extend_from_slice(&[0x8c, n]);
    } else if let Ok(n) = u32::try_from(bytes.len()) {
        out.push(b'X');
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(0x8d);
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(bytes);
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
fn minimal_twos_complement(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let filler = if negative { 0xFF } else { 0 };
    while bytes.len() > 1 {
        let n = bytes.len();
        if bytes[n - 1] == filler && (bytes[n - 2] & 0x80 != 0) == negative {
            bytes.pop();
        } else {
            break;
        }
    }
    bytes
}

/// Canonical decimal text as [`minimal_twos_complement`] bytes, or None if it is not.
fn encode_decimal(text: &str) -> Option<Vec<u8>> {
    let digits = canonical_int(text.as_bytes())?;
    let negative = digits.starts_with('-');
    let digits = digits.trim_start_matches('-').as_bytes();
    // Magnitude in 32-bit limbs, least significant first: limbs * 10**9 + chunk per chunk.
    let mut limbs: Vec<u32> = Vec::new();
    let head = digits.len() % 9;
    let chunks = std::iter::once(&digits[..head]).chain(digits[head..].chunks(9));
    for chunk in chunks.filter(|c| !c.is_empty()) {
        let (scale, value) = chunk.iter().fold((1u64, 0u64), |(s, v), &d| {
            (s * 10, v * 10 + u64::from(d - b'0'))
        });
        let mut carry = value;
        for limb in &mut limbs {
            let cur = u64::from(*limb) * scale + carry;
            *limb = cur as u32;
            carry = cur >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    // One spare byte for the sign bit, then two's complement for negatives.
    let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    bytes.push(0);
    if negative {
        let mut carry = true;
        for b in &mut bytes {
            let (sum, overflow) = (!*b).overflowing_add(u8::from(carry));
            *b = sum;
            carry = overflow;
        }
    }
    Some(minimal_twos_complement(&bytes))
}
