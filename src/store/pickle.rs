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
use std::fmt::Write as _;
use std::rc::Rc;

use super::python::{MAX_DEPTH, MAX_INT_DIGITS, PyValue, int_from_canonical};

/// The largest pickle read: far above a session, small enough to bound the work.
pub const MAX_PICKLE_LEN: usize = 1 << 20;
/// The most values (dict keys included) a pickle may build: without shared references each
/// costs a byte of input at least, so only the memo's sharing can reach this.
const MAX_NODES: usize = 1 << 20;
/// The most str bytes (keys included) a pickle may build, a shared str counted each time.
const MAX_STRING_BYTES: usize = 16 << 20;
/// The longest LONG1/LONG4 argument read: the digit limit refuses shorter ones, but only
/// after a conversion whose cost this bounds.
const MAX_LONG_BYTES: usize = 4096;
/// 2**14285 > 10**4300: an int of more bits has more digits than Python writes as text.
const MAX_INT_BITS: usize = 14285;

/// Why [`loads`] refused a pickle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// The input ended before STOP or inside an opcode's argument.
    #[error("truncated pickle")]
    Truncated,
    /// The input is larger than [`MAX_PICKLE_LEN`].
    #[error("pickle of {0} bytes is larger than the {MAX_PICKLE_LEN}-byte limit: refused")]
    TooLarge(usize),
    /// The pickle imports, calls or builds an object (the opcode named): never done here.
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
    /// The value built would exceed the size or nesting limits (which one is said).
    #[error("pickle builds a value {0}: refused")]
    TooBig(&'static str),
    /// An int beyond Python's 4300-digit limit for ints as text (`json.dumps` raises too).
    #[error("pickle holds an int of more than 4300 digits: refused")]
    IntTooLong,
    /// [`loads_dict`] on a pickle of something else (its type named).
    #[error("pickle holds a {0}, not a dict")]
    NotADict(&'static str),
    /// Anything else Python's unpickler refuses too, or a form no pickler writes.
    #[error("invalid pickle: {0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, PickleError>;

fn invalid(message: impl Into<String>) -> PickleError {
    PickleError::Invalid(message.into())
}

/// Reads a pickle of a session value, executing nothing.
///
/// Refused: pickles that need a class or callable, bytes, bytearrays, sets, frozensets,
/// Python 2 strs, out-of-band buffers, dict keys that are not str, strs with a lone
/// surrogate, ints of more than 4300 digits, recursive structures, and the limits above.
/// Tuples read as lists. Bytes after STOP are ignored, as Python does.
pub fn loads(bytes: &[u8]) -> Result<PyValue> {
    let (machine, root) = Machine::run(bytes)?;
    machine.build(root)
}

/// [`loads`] for a pickle that must hold a dict: the session dict's items, in order.
pub fn loads_dict(bytes: &[u8]) -> Result<Vec<(String, PyValue)>> {
    let (machine, root) = Machine::run(bytes)?;
    let kind = machine.nodes[root].kind();
    match machine.build(root)? {
        PyValue::Dict(items) => Ok(items),
        _ => Err(PickleError::NotADict(kind)),
    }
}

/// An object while decoding; containers refer to others by index, as the memo does, so
/// that every reference sees what is appended to the object later.
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

/// The unpickler's state. Nothing grows faster than the input: each opcode adds at most one
/// node, stack entry, mark or memo entry.
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
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(PickleError::Truncated)?;
        let input = self.input;
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

    fn underflow(&self) -> PickleError {
        invalid(if self.marks.is_empty() {
            "unpickling stack underflow"
        } else {
            "unexpected MARK found"
        })
    }

    /// The top `n` objects, none below the last MARK.
    fn pop_n(&mut self, n: usize) -> Result<Vec<usize>> {
        let fence = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < fence + n {
            return Err(self.underflow());
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop(&mut self) -> Result<usize> {
        Ok(self.pop_n(1)?[0])
    }

    fn top(&mut self) -> Result<usize> {
        let top = self.pop()?;
        self.stack.push(top);
        Ok(top)
    }

    fn pop_mark(&mut self) -> Result<Vec<usize>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| invalid("could not find MARK"))?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&mut self, index: u64) -> Result<()> {
        let node = self.memo.get(&index).copied();
        let node = node.ok_or_else(|| invalid(format!("memo value not found at index {index}")))?;
        self.stack.push(node);
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Result<()> {
        let top = self.top()?;
        self.memo.insert(index, top);
        Ok(())
    }

    /// APPEND(S): `items` onto the list below them (with none, Python checks no type).
    fn append(&mut self, items: Vec<usize>) -> Result<()> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            _ if items.is_empty() => Ok(()),
            Node::List(list) => {
                list.extend(items);
                Ok(())
            }
            other => Err(invalid(format!("APPEND to a {}", other.kind()))),
        }
    }

    /// SETITEM(S): `items` into the dict below them (with none, Python checks no type).
    fn set_items_below(&mut self, items: Vec<usize>) -> Result<()> {
        let target = self.top()?;
        if items.is_empty() {
            return Ok(());
        }
        self.set_items(target, &items, "SETITEMS")
    }

    /// DICT: a new dict of the `items`.
    fn dict(&mut self, items: Vec<usize>) -> Result<()> {
        let dict = self.add(Node::Dict(Vec::new()));
        self.set_items(dict, &items, "DICT")?;
        self.stack.push(dict);
        Ok(())
    }

    /// `d[k] = v` for each pair of `items`, as a Python dict: a known key keeps its place.
    fn set_items(&mut self, target: usize, items: &[usize], opcode: &str) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(invalid(format!("odd number of items for {opcode}")));
        }
        for pair in items.chunks_exact(2) {
            let (key, value) = (pair[0], pair[1]);
            if !matches!(self.nodes[key], Node::Str(_)) {
                let kind = self.nodes[key].kind();
                return Err(invalid(format!("dict key is a {kind}, not a str")));
            }
            let kind = self.nodes[target].kind();
            let Node::Dict(entries) = &mut self.nodes[target] else {
                return Err(invalid(format!("SETITEM on a {kind}")));
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
            if let Some(index) = self.dict_index.get_mut(&target) {
                index.insert(key, entries.len() - 1);
            } else if entries.len() >= INDEX_FROM {
                let index = entries.iter().enumerate().map(|(i, &(k, _))| (k, i));
                self.dict_index.insert(target, index.collect());
            }
        }
        Ok(())
    }

    /// Runs the opcodes up to STOP: the machine and the object STOP pops.
    fn run(input: &'a [u8]) -> Result<(Self, usize)> {
        if input.len() > MAX_PICKLE_LEN {
            return Err(PickleError::TooLarge(input.len()));
        }
        let mut m = Machine {
            input,
            pos: 0,
            nodes: vec![Node::None, Node::Bool(true), Node::Bool(false)],
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            strings: HashMap::new(),
            dict_index: HashMap::new(),
        };
        loop {
            match m.byte()? {
                b'.' => {
                    let root = m.pop()?;
                    return Ok((m, root));
                }
                opcode => {
                    if let Some(node) = m.step(opcode)? {
                        let index = m.add(node);
                        m.stack.push(index);
                    }
                }
            }
        }
    }

    /// One opcode (not STOP): the new object it makes, if it makes one.
    fn step(&mut self, opcode: u8) -> Result<Option<Node>> {
        let node = match opcode {
            b'I' => int_line(self.line()?)?,
            b'J' => Node::Int(i32::from_le_bytes(self.array()?).into()),
            b'K' => Node::Int(self.byte()?.into()),
            b'M' => Node::Int(u16::from_le_bytes(self.array()?).into()),
            b'L' => long_line(self.line()?)?,
            0x8a => {
                let n = self.byte()?;
                long_binary(self.take(n.into())?)?
            }
            0x8b => {
                let n = usize::try_from(i32::from_le_bytes(self.array()?))
                    .map_err(|_| invalid("LONG pickle has negative byte count"))?;
                if n > MAX_LONG_BYTES {
                    return Err(PickleError::IntTooLong);
                }
                long_binary(self.take(n)?)?
            }
            b'F' => float_line(self.line()?)?,
            b'G' => Node::Float(f64::from_be_bytes(self.array()?)),
            b']' => Node::List(Vec::new()),
            b')' => Node::Tuple(Vec::new()),
            b'}' => Node::Dict(Vec::new()),
            b'l' => Node::List(self.pop_mark()?),
            b't' => Node::Tuple(self.pop_mark()?),
            0x85..=0x87 => Node::Tuple(self.pop_n(usize::from(opcode - 0x84))?),
            _ => {
                self.stack_step(opcode)?;
                return Ok(None);
            }
        };
        Ok(Some(node))
    }

    /// An opcode that makes no new object (a str is interned, not new).
    fn stack_step(&mut self, opcode: u8) -> Result<()> {
        match opcode {
            0x80 => match self.byte()? {
                0..=5 => Ok(()),
                protocol => Err(invalid(format!("unsupported pickle protocol: {protocol}"))),
            },
            // FRAME: a length over what follows, whose opcodes are read as any others.
            0x95 => match to_len(u64::from_le_bytes(self.array()?))? {
                n if n <= self.input.len() - self.pos => Ok(()),
                _ => Err(PickleError::Truncated),
            },
            b'(' => {
                self.marks.push(self.stack.len());
                Ok(())
            }
            // POP takes a MARK off when one is on top, as CPython does.
            b'0' if self.marks.last() == Some(&self.stack.len()) => {
                self.marks.pop();
                Ok(())
            }
            b'0' => self.pop().map(drop),
            b'1' => self.pop_mark().map(drop),
            b'2' => self.top().and_then(|top| self.push_index(top)),
            b'N' => self.push_index(NONE),
            0x88 => self.push_index(TRUE),
            0x89 => self.push_index(FALSE),
            b'V' => raw_unicode_escape(self.line()?).map(|s| self.push_str(&s)),
            0x8c => {
                let n = self.byte()?;
                self.binunicode(n.into())
            }
            b'X' => {
                let n = self.u32()?;
                self.binunicode(n.into())
            }
            0x8d => {
                let n = u64::from_le_bytes(self.array()?);
                self.binunicode(n)
            }
            b'a' => self.pop_n(1).and_then(|items| self.append(items)),
            b'e' => self.pop_mark().and_then(|items| self.append(items)),
            b'd' => self.pop_mark().and_then(|items| self.dict(items)),
            b's' => self.pop_n(2).and_then(|items| self.set_items_below(items)),
            b'u' => self
                .pop_mark()
                .and_then(|items| self.set_items_below(items)),
            b'p' => memo_index(self.line()?, "PUT").and_then(|i| self.memo_put(i)),
            b'q' => self.byte().and_then(|i| self.memo_put(i.into())),
            b'r' => self.u32().and_then(|i| self.memo_put(i.into())),
            0x94 => self.memo_put(self.memo.len() as u64),
            b'g' => memo_index(self.line()?, "GET").and_then(|i| self.memo_get(i)),
            b'h' => self.byte().and_then(|i| self.memo_get(i.into())),
            b'j' => self.u32().and_then(|i| self.memo_get(i.into())),
            _ => Err(refusal(opcode)),
        }
    }

    fn push_index(&mut self, index: usize) -> Result<()> {
        self.stack.push(index);
        Ok(())
    }

    fn binunicode(&mut self, n: u64) -> Result<()> {
        let bytes = self.take(to_len(n)?)?;
        self.push_str(utf8(bytes)?);
        Ok(())
    }

    /// The tree under `root`, shared objects copied, within the limits.
    fn build(&self, root: usize) -> Result<PyValue> {
        let mut builder = Builder {
            nodes: &self.nodes,
            on_path: vec![false; self.nodes.len()],
            values: 0,
            string_bytes: 0,
        };
        builder.build(root, 0)
    }
}

/// A length from the input (one beyond usize could never be read anyway).
fn to_len(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| PickleError::Truncated)
}

/// PUT's and GET's decimal index.
fn memo_index(line: &[u8], opcode: &str) -> Result<u64> {
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
fn refusal(opcode: u8) -> PickleError {
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
fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| match &bytes[e.valid_up_to()..] {
        [0xED, 0xA0..=0xBF, _, ..] => PickleError::LoneSurrogate,
        _ => invalid("str is not valid UTF-8"),
    })
}

/// Canonical decimal (`-?(0|[1-9][0-9]*)`), or None.
fn canonical_int(text: &[u8]) -> Option<&str> {
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
fn int_line(line: &[u8]) -> Result<Node> {
    match line {
        b"00" | b"-0" => Ok(Node::Bool(false)),
        b"01" => Ok(Node::Bool(true)),
        _ => int_node(line, "INT"),
    }
}

/// LONG's text, its trailing 'L' optional: decimal, as Python writes it.
fn long_line(line: &[u8]) -> Result<Node> {
    match line.strip_suffix(b"L").unwrap_or(line) {
        b"-0" => Ok(Node::Int(0)),
        digits => int_node(digits, "LONG"),
    }
}

/// FLOAT's text, as Python's float(); an overflow (`1e400`) is an error there, so here too.
fn float_line(line: &[u8]) -> Result<Node> {
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
fn raw_unicode_escape(bytes: &[u8]) -> Result<String> {
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
fn negate(bytes: &mut [u8]) {
    let mut carry = true;
    for b in bytes {
        (*b, carry) = (!*b).overflowing_add(u8::from(carry));
    }
}

/// LONG1/LONG4's argument: a little-endian two's complement int of any length.
fn long_binary(bytes: &[u8]) -> Result<Node> {
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
        self.count(if let Node::Str(s) = node { s.len() } else { 0 })?;
        if matches!(node, Node::List(_) | Node::Tuple(_) | Node::Dict(_)) {
            if self.on_path[index] {
                return Err(PickleError::Recursive);
            }
            if depth >= MAX_DEPTH {
                return Err(PickleError::TooBig("nested more than 127 deep"));
            }
            self.on_path[index] = true;
        }
        let value = match node {
            Node::None => PyValue::None,
            Node::Bool(b) => PyValue::Bool(*b),
            Node::Int(i) => PyValue::Int(*i),
            Node::BigInt(s) => PyValue::BigInt(s.clone()),
            Node::Float(f) => PyValue::Float(*f),
            Node::Str(s) => PyValue::Str(String::from(&**s)),
            Node::List(items) | Node::Tuple(items) => {
                let mut list = Vec::with_capacity(items.len().min(MAX_NODES));
                for &item in items {
                    list.push(self.build(item, depth + 1)?);
                }
                PyValue::List(list)
            }
            Node::Dict(entries) => {
                let mut dict = Vec::with_capacity(entries.len().min(MAX_NODES));
                for &(key, value) in entries {
                    let Node::Str(k) = &self.nodes[key] else {
                        return Err(invalid("dict key is not a str"));
                    };
                    self.count(k.len())?;
                    dict.push((String::from(&**k), self.build(value, depth + 1)?));
                }
                PyValue::Dict(dict)
            }
        };
        self.on_path[index] = false;
        Ok(value)
    }
}

/// Pickles `value` as protocol 5, which Python reads back to the same value (floats to the
/// same bits). Opcode for opcode what CPython's pickler writes, but with no memo (shared
/// references are written out each time) and no frames, which Python's reader does not need.
///
/// A BigInt that is not canonical decimal is written as a LONG that Python refuses to read,
/// rather than as a different number.
pub fn dumps(value: &PyValue) -> Vec<u8> {
    let mut out = vec![0x80, 5];
    write(value, &mut out);
    out.push(b'.');
    out
}

/// CPython's pickler's batch size for APPENDS and SETITEMS.
const BATCH: usize = 1000;

fn write(value: &PyValue, out: &mut Vec<u8>) {
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

#[cfg(test)]
mod tests {
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

    // The pickles below are CPython 3.11's `pickle.dumps` output (3.13 writes the same bytes
    // for every one of them), where SESSION is:
    //
    //     {'_auth_user_id': '42', '_auth_user_backend': 'django.contrib.auth.backends.ModelBackend',
    //      '_auth_user_hash': 'c0ffee' * 10, '_session_expiry': 1209600,
    //      'ints': [0, 1, 255, 256, 65535, 65536, -1, -256, 2**31 - 1, -2**31, 2**31, -2**31 - 1,
    //               2**63 - 1, -2**63],
    //      'big': [2**70, -2**64, 2**63, -2**63 - 1, 2**64 - 1, <uuid int>, -<uuid int>],
    //      'floats': [0.1, 1e16, -0.0, nan, inf, -inf, 5e-324, 1.7976931348623157e308, 2.5],
    //      'nested': {'list': [1, [2, [3, []]], {}], 'tuple': (1, 'two', 3.0), 't1': (None,),
    //                 't0': (), 't4': (1, 2, 3, 4), 'd': {'x': {'y': {}}}},
    //      'text': 'héllo wörld \u2028 😀 \U0010ffff', 'ctl': '\x00\n\r\x1a\\ "\'',
    //      'flags': [True, False, None], 'empty': '', '': 'empty key',
    //      'long': 'x' * 300, 'long_utf8': 'é' * 200, 'ключ': 'значение'}
    //
    // FLAT is SESSION without its tuples, shared objects ('' twice) and memo, as dumps writes
    // it; SHARED is {'a': x, 'b': x, 'c': [x, (x,)]} with x = [1, 2].

    const SESSION_P0: &str = "\
        286470300a565f617574685f757365725f69640a70310a5634320a70320a73565f617574685f757365725f62\
        61636b656e640a70330a56646a616e676f2e636f6e747269622e617574682e6261636b656e64732e4d6f6465\
        6c4261636b656e640a70340a73565f617574685f757365725f686173680a70350a5663306666656563306666\
        6565633066666565633066666565633066666565633066666565633066666565633066666565633066666565\
        6330666665650a70360a73565f73657373696f6e5f6578706972790a70370a49313230393630300a7356696e\
        74730a70380a286c70390a49300a6149310a61493235350a61493235360a614936353533350a614936353533\
        360a61492d310a61492d3235360a6149323134373438333634370a61492d323134373438333634380a614c32\
        3134373438333634384c0a614c2d323134373438333634394c0a614c39323233333732303336383534373735\
        3830374c0a614c2d393232333337323033363835343737353830384c0a6173566269670a7031300a286c7031\
        310a4c313138303539313632303731373431313330333432344c0a614c2d3138343436373434303733373039\
        3535313631364c0a614c393232333337323033363835343737353830384c0a614c2d39323233333732303336\
        3835343737353830394c0a614c31383434363734343037333730393535313631354c0a614c32343139373835\
        373136313031313731353136323137313833393633363938383737383130344c0a614c2d3334303238323336\
        363932303933383436333436333337343630373433313736383231313435354c0a617356666c6f6174730a70\
        31320a286c7031330a46302e310a614631652b31360a61462d302e300a61466e616e0a6146696e660a61462d\
        696e660a614635652d3332340a6146312e37393736393331333438363233313537652b3330380a6146322e35\
        0a6173566e65737465640a7031340a28647031350a566c6973740a7031360a286c7031370a49310a61286c70\
        31380a49320a61286c7031390a49330a61286c7032300a61616128647032310a6173567475706c650a703232\
        0a2849310a5674776f0a7032330a46332e300a747032340a735674310a7032350a284e747032360a73567430\
        0a7032370a2874735674340a7032380a2849310a49320a49330a49340a747032390a7356640a7033300a2864\
        7033310a56780a7033320a28647033330a56790a7033340a28647033350a7373737356746578740a7033360a\
        5668e96c6c6f2077f6726c64205c7532303238205c553030303166363030205c5530303130666666660a7033\
        370a735663746c0a7033380a565c75303030305c75303030615c75303030645c75303031615c753030356320\
        22270a7033390a7356666c6167730a7034300a286c7034310a4930310a614930300a614e617356656d707479\
        0a7034320a560a7034330a736734330a56656d707479206b65790a7034340a73566c6f6e670a7034350a5678\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        78787878787878787878787878787878787878787878787878787878787878787878780a7034360a73566c6f\
        6e675f757466380a7034370a56e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9\
        e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9\
        e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9\
        e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9\
        e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e90a7034380a7356\
        5c75303433615c75303433625c75303434655c75303434370a7034390a565c75303433375c75303433645c75\
        303433305c75303434375c75303433355c75303433645c75303433385c75303433350a7035300a732e\
    ";
    const SESSION_P2: &str = "\
        80027d710028580d0000005f617574685f757365725f6964710158020000003432710258120000005f617574\
        685f757365725f6261636b656e6471035829000000646a616e676f2e636f6e747269622e617574682e626163\
        6b656e64732e4d6f64656c4261636b656e647104580f0000005f617574685f757365725f686173687105583c\
        0000006330666665656330666665656330666665656330666665656330666665656330666665656330666665\
        656330666665656330666665656330666665657106580f0000005f73657373696f6e5f65787069727971074a\
        007512005804000000696e747371085d7109284b004b014bff4d00014dffff4a000001004affffffff4a00ff\
        ffff4affffff7f4a000000808a0500000080008a05ffffff7fff8a08ffffffffffffff7f8a08000000000000\
        0080655803000000626967710a5d710b288a090000000000000000408a090000000000000000ff8a09000000\
        0000000080008a09ffffffffffffff7fff8a09ffffffffffffffff008a107856341278563412785634127856\
        34128a1101000000000000000000000000000000ff655806000000666c6f617473710c5d710d28473fb99999\
        9999999a474341c37937e08000478000000000000000477ff8000000000000477ff000000000000047fff000\
        0000000000470000000000000001477fefffffffffffff4740040000000000006558060000006e6573746564\
        710e7d710f2858040000006c69737471105d7111284b015d7112284b025d7113284b035d711465657d711565\
        58050000007475706c6571164b01580300000074776f71174740080000000000008771185802000000743171\
        194e85711a58020000007430711b2958020000007434711c284b014b024b034b0474711d580100000064711e\
        7d711f58010000007871207d712158010000007971227d71237373755804000000746578747124581b000000\
        68c3a96c6c6f2077c3b6726c6420e280a820f09f988020f48fbfbf7125580300000063746c71265808000000\
        000a0d1a5c20222771275805000000666c61677371285d71292888894e655805000000656d707479712a5800\
        000000712b682b5809000000656d707479206b6579712c58040000006c6f6e67712d582c0100007878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        78787878787878787878787878787878787878787878787878787878787878712e58090000006c6f6e675f75\
        746638712f5890010000c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a971305808000000d0bad0bbd18ed18771315810000000d0b7d0bdd0b0d187\
        d0b5d0bdd0b8d0b57132752e\
    ";
    const SESSION_P4: &str = "\
        800495a7050000000000007d94288c0d5f617574685f757365725f6964948c023432948c125f617574685f75\
        7365725f6261636b656e64948c29646a616e676f2e636f6e747269622e617574682e6261636b656e64732e4d\
        6f64656c4261636b656e64948c0f5f617574685f757365725f68617368948c3c633066666565633066666565\
        6330666665656330666665656330666665656330666665656330666665656330666665656330666665656330\
        66666565948c0f5f73657373696f6e5f657870697279944a007512008c04696e7473945d94284b004b014bff\
        4d00014dffff4a000001004affffffff4a00ffffff4affffff7f4a000000808a0500000080008a05ffffff7f\
        ff8a08ffffffffffffff7f8a080000000000000080658c03626967945d94288a090000000000000000408a09\
        0000000000000000ff8a090000000000000080008a09ffffffffffffff7fff8a09ffffffffffffffff008a10\
        785634127856341278563412785634128a1101000000000000000000000000000000ff658c06666c6f617473\
        945d9428473fb999999999999a474341c37937e08000478000000000000000477ff8000000000000477ff000\
        000000000047fff0000000000000470000000000000001477fefffffffffffff474004000000000000658c06\
        6e6573746564947d94288c046c697374945d94284b015d94284b025d94284b035d9465657d94658c05747570\
        6c65944b018c0374776f9447400800000000000087948c027431944e85948c02743094298c02743494284b01\
        4b024b034b0474948c0164947d948c0178947d948c0179947d947373758c0474657874948c1b68c3a96c6c6f\
        2077c3b6726c6420e280a820f09f988020f48fbfbf948c0363746c948c08000a0d1a5c202227948c05666c61\
        6773945d942888894e658c05656d707479948c0094682b8c09656d707479206b6579948c046c6f6e6794582c\
        0100007878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        787878787878787878787878787878787878787878787878787878787878787878787878787878948c096c6f\
        6e675f75746638945890010000c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9948c08d0bad0bbd18ed187948c10d0b7d0bdd0b0d187d0b5d0bdd0\
        b8d0b594752e\
    ";
    const SESSION_P5: &str = "\
        800595a7050000000000007d94288c0d5f617574685f757365725f6964948c023432948c125f617574685f75\
        7365725f6261636b656e64948c29646a616e676f2e636f6e747269622e617574682e6261636b656e64732e4d\
        6f64656c4261636b656e64948c0f5f617574685f757365725f68617368948c3c633066666565633066666565\
        6330666665656330666665656330666665656330666665656330666665656330666665656330666665656330\
        66666565948c0f5f73657373696f6e5f657870697279944a007512008c04696e7473945d94284b004b014bff\
        4d00014dffff4a000001004affffffff4a00ffffff4affffff7f4a000000808a0500000080008a05ffffff7f\
        ff8a08ffffffffffffff7f8a080000000000000080658c03626967945d94288a090000000000000000408a09\
        0000000000000000ff8a090000000000000080008a09ffffffffffffff7fff8a09ffffffffffffffff008a10\
        785634127856341278563412785634128a1101000000000000000000000000000000ff658c06666c6f617473\
        945d9428473fb999999999999a474341c37937e08000478000000000000000477ff8000000000000477ff000\
        000000000047fff0000000000000470000000000000001477fefffffffffffff474004000000000000658c06\
        6e6573746564947d94288c046c697374945d94284b015d94284b025d94284b035d9465657d94658c05747570\
        6c65944b018c0374776f9447400800000000000087948c027431944e85948c02743094298c02743494284b01\
        4b024b034b0474948c0164947d948c0178947d948c0179947d947373758c0474657874948c1b68c3a96c6c6f\
        2077c3b6726c6420e280a820f09f988020f48fbfbf948c0363746c948c08000a0d1a5c202227948c05666c61\
        6773945d942888894e658c05656d707479948c0094682b8c09656d707479206b6579948c046c6f6e6794582c\
        0100007878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        787878787878787878787878787878787878787878787878787878787878787878787878787878948c096c6f\
        6e675f75746638945890010000c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3\
        a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9948c08d0bad0bbd18ed187948c10d0b7d0bdd0b0d187d0b5d0bdd0\
        b8d0b594752e\
    ";
    const SHARED_P5: &str = "\
        80059525000000000000007d94288c0161945d94284b014b02658c01629468028c0163945d94286802680285\
        9465752e\
    ";
    const SHARED_P2: &str = "\
        80027d71002858010000006171015d7102284b014b02655801000000627103680258010000006371045d7105\
        286802680285710665752e\
    ";
    const SHARED_P0: &str = "\
        286470300a56610a70310a286c70320a49310a6149320a617356620a70330a67320a7356630a70340a286c70\
        350a67320a612867320a7470360a61732e\
    ";
    const SHARED_STR_P5: &str = "\
        8005951e000000000000005d94288c0d73686172656420737472696e679468017d946801680173652e\
    ";
    const LONG4_P2: &str = "\
        80025d7100288b01010000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        000000018b010100000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
        00ff8b00010000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
        ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
        ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
        ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
        ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
        ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0065\
        2e\
    ";
    const RECURSIVE_LIST_P5: &str = "\
        80059506000000000000005d946800612e\
    ";
    const RECURSIVE_LIST_P0: &str = "\
        286c70300a67300a612e\
    ";
    const RECURSIVE_DICT_P5: &str = "\
        8005950d000000000000007d948c0473656c66946800732e\
    ";
    const RECURSIVE_TUPLE_P2: &str = "\
        80025d71006800857101612e\
    ";
    const DATETIME_P5: &str = "\
        80059534000000000000007d948c047768656e948c086461746574696d65948c086461746574696d65949394\
        430a07e801010000000000009485945294732e\
    ";
    const DATETIME_P2: &str = "\
        80027d710058040000007768656e7101636461746574696d650a6461746574696d650a7102635f636f646563\
        730a656e636f64650a7103580b00000007c3a80101000000000000710458060000006c6174696e3171058671\
        06527107857108527109732e\
    ";
    const DATETIME_P0: &str = "\
        286470300a567768656e0a70310a636461746574696d650a6461746574696d650a70320a28635f636f646563\
        730a656e636f64650a70330a285607e801015c75303030305c75303030305c75303030305c75303030305c75\
        303030305c75303030300a70340a566c6174696e310a70350a7470360a5270370a7470380a5270390a732e\
    ";
    const SET_P5: &str = "\
        80059510000000000000007d948c0173948f94284b014b0290732e\
    ";
    const SET_P2: &str = "\
        80027d71005801000000737101635f5f6275696c74696e5f5f0a7365740a71025d7103284b014b0265857104\
        527105732e\
    ";
    const FROZENSET_P5: &str = "\
        8005950600000000000000284b0191942e\
    ";
    const BYTES_P5: &str = "\
        8005950e000000000000007d948c016294430361626394732e\
    ";
    const BYTES_P3: &str = "\
        80037d7100580100000062710143036162637102732e\
    ";
    const BYTEARRAY_P5: &str = "\
        8005950d000000000000009602000000000000006162942e\
    ";
    const INSTANCE_P5: &str = "\
        8005952c000000000000007d948c036f626a948c0c6d796170702e6d6f64656c73948c014b9493942981947d\
        948c0161944b017362732e\
    ";
    const INSTANCE_P0: &str = "\
        286470300a566f626a0a70310a63636f70795f7265670a5f7265636f6e7374727563746f720a70320a28636d\
        796170702e6d6f64656c730a4b0a70330a635f5f6275696c74696e5f5f0a6f626a6563740a70340a4e747035\
        0a5270360a286470370a56610a70380a49310a7362732e\
    ";
    const OS_SYSTEM_P5: &str = "\
        80059525000000000000008c05706f736978948c0673797374656d9493948c0a6563686f2070776e65649485\
        9452942e\
    ";
    const OS_SYSTEM_P0: &str = "\
        63706f7369780a73797374656d0a70300a28566563686f2070776e65640a70310a7470320a5270330a2e\
    ";
    const INT_KEY_P5: &str = "\
        8005950c000000000000007d944b018c036f6e6594732e\
    ";
    const TUPLE_KEY_P5: &str = "\
        80059511000000000000007d944b014b0286948c047061697294732e\
    ";
    /// pickle.dumps(FLAT, 5) with its MEMOIZE and FRAME opcodes cut out.
    const FLAT_P5_NO_MEMO: &str = "\
        80057d288c0d5f617574685f757365725f69648c0234328c125f617574685f757365725f6261636b656e648c\
        29646a616e676f2e636f6e747269622e617574682e6261636b656e64732e4d6f64656c4261636b656e648c0f\
        5f617574685f757365725f686173688c3c633066666565633066666565633066666565633066666565633066\
        6665656330666665656330666665656330666665656330666665656330666665658c0f5f73657373696f6e5f\
        6578706972794a007512008c04696e74735d284b004b014bff4d00014dffff4a000001004affffffff4a00ff\
        ffff4affffff7f4a000000808a0500000080008a05ffffff7fff8a08ffffffffffffff7f8a08000000000000\
        0080658c036269675d288a090000000000000000408a090000000000000000ff8a090000000000000080008a\
        09ffffffffffffff7fff8a09ffffffffffffffff008a10785634127856341278563412785634128a11010000\
        00000000000000000000000000ff658c06666c6f6174735d28473fb999999999999a474341c37937e0800047\
        8000000000000000477ff8000000000000477ff000000000000047fff0000000000000470000000000000001\
        477fefffffffffffff474004000000000000658c04746578748c1b68c3a96c6c6f2077c3b6726c6420e280a8\
        20f09f988020f48fbfbf8c0363746c8c08000a0d1a5c2022278c05666c6167735d2888894e658c05656d7074\
        798c008c046c6f6e67582c010000787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878\
        7878787878788c096c6f6e675f757466385890010000c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9\
        c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a98c08d0bad0bbd18ed1878c10d0b7d0bdd0b0\
        d187d0b5d0bdd0b8d0b58c066e65737465647d288c046c6973745d284b015d284b025d284b035d65657d658c\
        036f6e655d4b07618c01647d8c01787d8c01797d737375752e\
    ";
    const DICT1001_P5_SHA256: &str =
        "d01ab40d189f0cac9cc52986c3124b1e2a2d4a8b75c889a6a8c463077ef01935";
    const LIST2500_P5_SHA256: &str =
        "4ca8492cce48c57e7cdf16e707cb51f75e2b9bd77d00e76985ef8c81e8772bd2";
    const MEMO300_P5_SHA256: &str =
        "9584143eb35d9c16abc0cbd29e550931fd78584264a9e466e957250822c59762";
    fn session_value() -> PyValue {
        d(vec![
            ("_auth_user_id", s("42")),
            (
                "_auth_user_backend",
                s("django.contrib.auth.backends.ModelBackend"),
            ),
            (
                "_auth_user_hash",
                s("c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffee"),
            ),
            ("_session_expiry", PyValue::Int(1209600)),
            (
                "ints",
                PyValue::List(vec![
                    PyValue::Int(0),
                    PyValue::Int(1),
                    PyValue::Int(255),
                    PyValue::Int(256),
                    PyValue::Int(65535),
                    PyValue::Int(65536),
                    PyValue::Int(-1),
                    PyValue::Int(-256),
                    PyValue::Int(2147483647),
                    PyValue::Int(-2147483648),
                    PyValue::Int(2147483648),
                    PyValue::Int(-2147483649),
                    PyValue::Int(9223372036854775807),
                    PyValue::Int(-9223372036854775808),
                ]),
            ),
            (
                "big",
                PyValue::List(vec![
                    big("1180591620717411303424"),
                    big("-18446744073709551616"),
                    big("9223372036854775808"),
                    big("-9223372036854775809"),
                    big("18446744073709551615"),
                    big("24197857161011715162171839636988778104"),
                    big("-340282366920938463463374607431768211455"),
                ]),
            ),
            (
                "floats",
                PyValue::List(vec![
                    f(0x3fb999999999999a),
                    f(0x4341c37937e08000),
                    f(0x8000000000000000),
                    f(0x7ff8000000000000),
                    f(0x7ff0000000000000),
                    f(0xfff0000000000000),
                    f(0x0000000000000001),
                    f(0x7fefffffffffffff),
                    f(0x4004000000000000),
                ]),
            ),
            (
                "nested",
                d(vec![
                    (
                        "list",
                        PyValue::List(vec![
                            PyValue::Int(1),
                            PyValue::List(vec![
                                PyValue::Int(2),
                                PyValue::List(vec![PyValue::Int(3), PyValue::List(vec![])]),
                            ]),
                            d(vec![]),
                        ]),
                    ),
                    (
                        "tuple",
                        PyValue::List(vec![PyValue::Int(1), s("two"), f(0x4008000000000000)]),
                    ),
                    ("t1", PyValue::List(vec![PyValue::None])),
                    ("t0", PyValue::List(vec![])),
                    (
                        "t4",
                        PyValue::List(vec![
                            PyValue::Int(1),
                            PyValue::Int(2),
                            PyValue::Int(3),
                            PyValue::Int(4),
                        ]),
                    ),
                    ("d", d(vec![("x", d(vec![("y", d(vec![]))]))])),
                ]),
            ),
            ("text", s("héllo wörld \u{2028} 😀 􏿿")),
            ("ctl", s("\u{0}\n\r\u{1a}\\ \"'")),
            (
                "flags",
                PyValue::List(vec![
                    PyValue::Bool(true),
                    PyValue::Bool(false),
                    PyValue::None,
                ]),
            ),
            ("empty", s("")),
            ("", s("empty key")),
            (
                "long",
                s(
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                ),
            ),
            (
                "long_utf8",
                s(
                    "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
                ),
            ),
            ("ключ", s("значение")),
        ])
    }
    fn flat_value() -> PyValue {
        d(vec![
            ("_auth_user_id", s("42")),
            (
                "_auth_user_backend",
                s("django.contrib.auth.backends.ModelBackend"),
            ),
            (
                "_auth_user_hash",
                s("c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffee"),
            ),
            ("_session_expiry", PyValue::Int(1209600)),
            (
                "ints",
                PyValue::List(vec![
                    PyValue::Int(0),
                    PyValue::Int(1),
                    PyValue::Int(255),
                    PyValue::Int(256),
                    PyValue::Int(65535),
                    PyValue::Int(65536),
                    PyValue::Int(-1),
                    PyValue::Int(-256),
                    PyValue::Int(2147483647),
                    PyValue::Int(-2147483648),
                    PyValue::Int(2147483648),
                    PyValue::Int(-2147483649),
                    PyValue::Int(9223372036854775807),
                    PyValue::Int(-9223372036854775808),
                ]),
            ),
            (
                "big",
                PyValue::List(vec![
                    big("1180591620717411303424"),
                    big("-18446744073709551616"),
                    big("9223372036854775808"),
                    big("-9223372036854775809"),
                    big("18446744073709551615"),
                    big("24197857161011715162171839636988778104"),
                    big("-340282366920938463463374607431768211455"),
                ]),
            ),
            (
                "floats",
                PyValue::List(vec![
                    f(0x3fb999999999999a),
                    f(0x4341c37937e08000),
                    f(0x8000000000000000),
                    f(0x7ff8000000000000),
                    f(0x7ff0000000000000),
                    f(0xfff0000000000000),
                    f(0x0000000000000001),
                    f(0x7fefffffffffffff),
                    f(0x4004000000000000),
                ]),
            ),
            ("text", s("héllo wörld \u{2028} 😀 􏿿")),
            ("ctl", s("\u{0}\n\r\u{1a}\\ \"'")),
            (
                "flags",
                PyValue::List(vec![
                    PyValue::Bool(true),
                    PyValue::Bool(false),
                    PyValue::None,
                ]),
            ),
            ("empty", s("")),
            (
                "long",
                s(
                    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                ),
            ),
            (
                "long_utf8",
                s(
                    "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
                ),
            ),
            ("ключ", s("значение")),
            (
                "nested",
                d(vec![
                    (
                        "list",
                        PyValue::List(vec![
                            PyValue::Int(1),
                            PyValue::List(vec![
                                PyValue::Int(2),
                                PyValue::List(vec![PyValue::Int(3), PyValue::List(vec![])]),
                            ]),
                            d(vec![]),
                        ]),
                    ),
                    ("one", PyValue::List(vec![PyValue::Int(7)])),
                    ("d", d(vec![("x", d(vec![("y", d(vec![]))]))])),
                ]),
            ),
        ])
    }

    /// json.dumps([2**2048, -2**2048, 2**2040 - 1], separators=(",", ":"))
    const LONG4_JSON: &str = "[32317006071311007300714876688669951960444102669715484032130345427524655138867890893197201411522913463688717960921898019494119559150490921095088152386448283120630877367300996091750197750389652106796057638384067568276792218642619756161838094338476170470581645852036305042887575891541065808607552399123930385521914333389668342420684974786564569494856176035326322058077805659331026192708460314150258592864177116725943603718461857357598351152301645904403697613233287231227125684710820209725157101726931323469678542580656697935045997268352998638215525166389437335543602135433229604645318478604952148193555853611059596230656,-32317006071311007300714876688669951960444102669715484032130345427524655138867890893197201411522913463688717960921898019494119559150490921095088152386448283120630877367300996091750197750389652106796057638384067568276792218642619756161838094338476170470581645852036305042887575891541065808607552399123930385521914333389668342420684974786564569494856176035326322058077805659331026192708460314150258592864177116725943603718461857357598351152301645904403697613233287231227125684710820209725157101726931323469678542580656697935045997268352998638215525166389437335543602135433229604645318478604952148193555853611059596230656,126238304966058622268417487065116999845484776053576109500509161826268184136202698801551568013761380717534054534851164138648904527931605160527688095259563605939964364716019515983399209962459578542172100149937763938581219604072733422507180056009672540900709554109516816573779593326332288314873251559077853068444977864803391962580800682760017849589281937637993445539366428356761821065267423102149447628375691862210717202025241630303118559188678304314076943801692528246980959705901641444238894928620825482303431806955690226308773426829503900930529395181208739591967195841536053143145775307050594328881077553168201547775]";

    #[test]
    fn reads_python_session_pickles_of_every_protocol() {
        let expected = session_value();
        for text in [SESSION_P0, SESSION_P2, SESSION_P4, SESSION_P5] {
            let bytes = hex(text);
            let value = loads(&bytes).unwrap();
            assert!(value.identical(&expected), "{value:?}");
            let PyValue::Dict(items) = expected.clone() else {
                unreachable!()
            };
            let read = loads_dict(&bytes).unwrap();
            assert!(PyValue::Dict(read).identical(&PyValue::Dict(items)));
        }
        assert!(
            loads(&hex(FLAT_P5_NO_MEMO))
                .unwrap()
                .identical(&flat_value())
        );
    }

    #[test]
    fn shared_references_are_one_object() {
        let x = || list(vec![int(1), int(2)]);
        let shared = d(vec![
            ("a", x()),
            ("b", x()),
            ("c", list(vec![x(), list(vec![x()])])),
        ]);
        for text in [SHARED_P5, SHARED_P2, SHARED_P0] {
            assert_eq!(loads(&hex(text)).unwrap(), shared);
        }
        let text = s("shared string");
        let expected = list(vec![
            text.clone(),
            text,
            d(vec![("shared string", s("shared string"))]),
        ]);
        assert_eq!(loads(&hex(SHARED_STR_P5)).unwrap(), expected);
        // GETs of a list before APPENDS fills it: both references see [1, 2].
        let later = b"]\x94(h\x00h\x00lq\x010(K\x01K\x02e0h\x01.";
        assert_eq!(loads(later).unwrap(), list(vec![x(), x()]));
    }

    #[test]
    fn reads_python_batches_and_memo_indexes_beyond_a_byte() {
        // {f"k{i}": None for i in range(1001)}: MARK, 1000 items, SETITEMS, MARK, 1, SETITEMS.
        let mut body = b"}\x94(".to_vec();
        for i in 0..1001 {
            let key = format!("k{i}");
            body.extend_from_slice(&[0x8c, key.len() as u8]);
            body.extend_from_slice(key.as_bytes());
            body.extend_from_slice(b"\x94N");
            if i == 999 {
                body.extend_from_slice(b"u(");
            }
        }
        body.extend_from_slice(b"u.");
        let bytes = framed(&body);
        assert_eq!(sha256_hex(&bytes), DICT1001_P5_SHA256);
        let items = loads_dict(&bytes).unwrap();
        assert_eq!(items.len(), 1001);
        assert_eq!(items[1000], ("k1000".into(), PyValue::None));

        // [None] * 2500: APPENDS of 1000, 1000 and 500.
        let mut body = b"]\x94".to_vec();
        for n in [1000, 1000, 500] {
            body.push(b'(');
            body.extend(std::iter::repeat_n(b'N', n));
            body.push(b'e');
        }
        body.push(b'.');
        let bytes = framed(&body);
        assert_eq!(sha256_hex(&bytes), LIST2500_P5_SHA256);
        assert_eq!(loads(&bytes).unwrap(), list(vec![PyValue::None; 2500]));

        // m = [chr(0x100 + i) for i in range(300)]; m.append(m[-1]): a LONG_BINGET of 300.
        let mut body = b"]\x94(".to_vec();
        let strs: Vec<String> = (0..300)
            .map(|i| char::from_u32(0x100 + i).unwrap().to_string())
            .collect();
        for text in &strs {
            body.extend_from_slice(&[0x8c, 2]);
            body.extend_from_slice(text.as_bytes());
            body.push(0x94);
        }
        body.extend_from_slice(b"j\x2c\x01\x00\x00e.");
        let bytes = framed(&body);
        assert_eq!(sha256_hex(&bytes), MEMO300_P5_SHA256);
        let mut expected: Vec<PyValue> = strs.iter().map(|t| s(t)).collect();
        expected.push(s(&strs[299]));
        assert_eq!(loads(&bytes).unwrap(), list(expected));
    }

    #[test]
    fn reads_long4_ints() {
        let value = loads(&hex(LONG4_P2)).unwrap();
        assert_eq!(json_of(&value), LONG4_JSON);
        assert_eq!(loads(&dumps(&value)).unwrap(), value);
        // dumps writes the same LONG4 argument as Python.
        let ours = dumps(&value);
        let PyValue::List(items) = &value else {
            unreachable!()
        };
        let one = dumps(&items[0]);
        assert_eq!(one[2], 0x8b);
        let python = hex(LONG4_P2);
        let arg = &one[2..one.len() - 1];
        assert!(python.windows(arg.len()).any(|w| w == arg));
        assert!(ours.windows(arg.len()).any(|w| w == arg));
    }

    #[test]
    fn refuses_pickles_that_need_a_class_or_callable() {
        for (text, opcode) in [
            (DATETIME_P5, "STACK_GLOBAL"),
            (DATETIME_P2, "GLOBAL"),
            (DATETIME_P0, "GLOBAL"),
            (INSTANCE_P5, "STACK_GLOBAL"),
            (INSTANCE_P0, "GLOBAL"),
            (OS_SYSTEM_P5, "STACK_GLOBAL"),
            (OS_SYSTEM_P0, "GLOBAL"),
            (SET_P2, "GLOBAL"),
        ] {
            assert_eq!(loads(&hex(text)), Err(PickleError::NeedsCallable(opcode)));
        }
        // Each opcode that would call or build something, even with its arguments at hand.
        for (bytes, opcode) in [
            (&b"N)R."[..], "REDUCE"),
            (b"}}b.", "BUILD"),
            (b"(ios\nsystem\n.", "INST"),
            (b"(No.", "OBJ"),
            (b"N)\x81.", "NEWOBJ"),
            (b"N)}\x92.", "NEWOBJ_EX"),
            (b"\x82\x01.", "EXT1"),
            (b"\x83\x01\x00.", "EXT2"),
            (b"\x84\x01\x00\x00\x00.", "EXT4"),
            (b"P1\n.", "PERSID"),
            (b"NQ.", "BINPERSID"),
        ] {
            assert_eq!(loads(bytes), Err(PickleError::NeedsCallable(opcode)));
        }
        assert_eq!(
            loads(&hex(OS_SYSTEM_P0)).unwrap_err().to_string(),
            "pickle needs a class or callable (opcode GLOBAL): refused"
        );
    }

    #[test]
    fn refuses_types_a_session_cannot_hold() {
        for (text, opcode) in [
            (SET_P5, "EMPTY_SET"),
            (FROZENSET_P5, "FROZENSET"),
            (BYTES_P5, "SHORT_BINBYTES"),
            (BYTES_P3, "SHORT_BINBYTES"),
            (BYTEARRAY_P5, "BYTEARRAY8"),
        ] {
            let error = loads(&hex(text)).unwrap_err();
            assert!(
                matches!(error, PickleError::UnsupportedType { opcode: o, .. } if o == opcode),
                "{error}"
            );
        }
        for (bytes, opcode) in [
            (&b"B\x01\x00\x00\x00x."[..], "BINBYTES"),
            (b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00x.", "BINBYTES8"),
            (b"\x8f(K\x01\x90.", "EMPTY_SET"),
            (b"S'abc'\n.", "STRING"),
            (b"T\x03\x00\x00\x00abc.", "BINSTRING"),
            (b"U\x03abc.", "SHORT_BINSTRING"),
            (b"\x97.", "NEXT_BUFFER"),
            (b"N\x98.", "READONLY_BUFFER"),
        ] {
            let error = loads(bytes).unwrap_err();
            assert!(
                matches!(error, PickleError::UnsupportedType { opcode: o, .. } if o == opcode),
                "{bytes:?}: {error}"
            );
        }
        assert_eq!(
            loads(&hex(BYTES_P5)).unwrap_err().to_string(),
            "pickle holds bytes (opcode SHORT_BINBYTES), which a session cannot hold: refused"
        );
        assert_refused(&hex(INT_KEY_P5), "dict key is a int, not a str");
        assert_refused(&hex(TUPLE_KEY_P5), "dict key is a tuple, not a str");
        assert_refused(b"}N\x8c\x01as.", "dict key is a None");
        // A str Python would read with a lone surrogate ('surrogatepass').
        assert_eq!(
            loads(b"X\x03\x00\x00\x00\xed\xa0\x80."),
            Err(PickleError::LoneSurrogate)
        );
        assert_eq!(
            loads(b"V\\ud83d\\ude00\n."),
            Err(PickleError::LoneSurrogate)
        );
        assert_eq!(
            loads(b"\x8c\x06\xed\xa0\xbd\xed\xb8\x80."),
            Err(PickleError::LoneSurrogate)
        );
    }

    #[test]
    fn refuses_recursive_structures() {
        for text in [
            RECURSIVE_LIST_P5,
            RECURSIVE_LIST_P0,
            RECURSIVE_DICT_P5,
            RECURSIVE_TUPLE_P2,
        ] {
            assert_eq!(loads(&hex(text)), Err(PickleError::Recursive));
        }
        // x = [1, x]
        assert_eq!(
            loads(b"\x80\x02]q\x00(K\x01h\x00e."),
            Err(PickleError::Recursive)
        );
    }

    #[test]
    fn every_prefix_is_a_truncated_pickle() {
        for text in [SESSION_P0, SESSION_P2, SESSION_P5] {
            let bytes = hex(text);
            for end in 0..bytes.len() {
                assert_eq!(loads(&bytes[..end]), Err(PickleError::Truncated), "{end}");
            }
        }
        assert_eq!(loads(b"").unwrap_err().to_string(), "truncated pickle");
    }

    #[test]
    fn reads_each_data_opcode_as_python() {
        let nan_payload = f64::from_bits(0x7ff8_0000_0000_0001);
        let cases: Vec<(&[u8], PyValue)> = vec![
            (b"I01\n.", PyValue::Bool(true)),
            (b"I00\n.", PyValue::Bool(false)),
            (b"I-0\n.", PyValue::Bool(false)),
            (b"I0\n.", int(0)),
            (b"I42\n.", int(42)),
            (b"I-2147483649\n.", int(-2_147_483_649)),
            (
                b"I123456789012345678901234567890\n.",
                big("123456789012345678901234567890"),
            ),
            (b"L0L\n.", int(0)),
            (b"L-0L\n.", int(0)),
            (b"L5\n.", int(5)),
            (b"L-9223372036854775809L\n.", big("-9223372036854775809")),
            (b"L18446744073709551615L\n.", big("18446744073709551615")),
            (b"F0.1\n.", PyValue::Float(0.1)),
            (b"F-0.0\n.", PyValue::Float(-0.0)),
            (b"Fnan\n.", PyValue::Float(f64::NAN)),
            (b"Finf\n.", PyValue::Float(f64::INFINITY)),
            (b"F-inf\n.", PyValue::Float(f64::NEG_INFINITY)),
            (b"F1e+16\n.", PyValue::Float(1e16)),
            (b"F5e-324\n.", PyValue::Float(5e-324)),
            (b"F1e-400\n.", PyValue::Float(0.0)),
            (b"V\\u00e9\\\\u0041\\x\\U0001f600\n.", s("é\\\\u0041\\x😀")),
            (b"Vab\\\n.", s("ab\\")),
            (b"V\xe9\xff\n.", s("éÿ")),
            (b"V\n.", s("")),
            (b"\x80\x02N\x8a\x00.", int(0)),
            (b"\x8a\x01\xff.", int(-1)),
            (b"\x8a\x02\x00\x80.", int(-32768)),
            (
                b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.",
                big("9223372036854775808"),
            ),
            (
                b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\xff.",
                int(i64::MIN),
            ),
            (b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.", int(i64::MIN)),
            (
                b"\x8a\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff.",
                int(-1),
            ),
            (b"\x8a\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00.", int(0)),
            (
                b"\x8b\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01.",
                big("18446744073709551616"),
            ),
            (b"\x8b\x00\x00\x00\x00.", int(0)),
            (b"J\xff\xff\xff\xff.", int(-1)),
            (b"M\xff\xff.", int(65535)),
            (b"K\x07.", int(7)),
            (
                b"G\x7f\xf8\x00\x00\x00\x00\x00\x01.",
                PyValue::Float(nan_payload),
            ),
            (
                b"G\xff\xf0\x00\x00\x00\x00\x00\x00.",
                PyValue::Float(f64::NEG_INFINITY),
            ),
            (b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi.", s("hi")),
            (b"X\x00\x00\x00\x00.", s("")),
            (b"\x8c\x04\xf0\x9f\x98\x80.", s("😀")),
            (b"(K\x01K\x02K\x03t.", list(vec![int(1), int(2), int(3)])),
            (b"(t.", list(vec![])),
            (b")\x85.", list(vec![list(vec![])])),
            (b"K\x01K\x02\x86.", list(vec![int(1), int(2)])),
            (b"K\x01K\x02K\x03\x87.", list(vec![int(1), int(2), int(3)])),
            (b"(K\x01\x85.", list(vec![int(1)])),
            (b"(K\x01l.", list(vec![int(1)])),
            (
                b"(\x8c\x01aK\x01\x8c\x01bK\x02d.",
                d(vec![("a", int(1)), ("b", int(2))]),
            ),
            (b"(\x8c\x01aK\x01\x8c\x01aK\x02d.", d(vec![("a", int(2))])),
            (
                b"}\x8c\x01aK\x01s\x8c\x01bK\x02s\x8c\x01aK\x03s.",
                d(vec![("a", int(3)), ("b", int(2))]),
            ),
            (b"]K\x01aK\x02a.", list(vec![int(1), int(2)])),
            (b"](K\x01K\x02e(e.", list(vec![int(1), int(2)])),
            (b"K\x01K\x020.", int(1)),
            (b"K\x01(K\x02K\x031.", int(1)),
            (b"K\x01(0.", int(1)),
            (b"K\x012\x86.", list(vec![int(1), int(1)])),
            (b"Np0\n0g0\n.", PyValue::None),
            (b"Nq\x000h\x00.", PyValue::None),
            (b"Nr\x00\x01\x00\x000j\x00\x01\x00\x00.", PyValue::None),
            (b"N\x940h\x00.", PyValue::None),
            (b"Np7\n\x94h\x01.", PyValue::None),
            // Python ignores what follows STOP.
            (b"N.trailing garbage \x00\xff", PyValue::None),
            (
                b"\x80\x05\x95\x01\x00\x00\x00\x00\x00\x00\x00N.",
                PyValue::None,
            ),
            (
                b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x01.",
                int(1),
            ),
            (b"\x80\x00N.", PyValue::None),
            (b"\x80\x05\x80\x02N.", PyValue::None),
        ];
        for (bytes, expected) in cases {
            let value = loads(bytes).unwrap_or_else(|e| panic!("{bytes:?}: {e}"));
            assert!(value.identical(&expected), "{bytes:?}: {value:?}");
        }
        // A dict of many keys (indexed) keeps Python's order on repeated keys.
        let mut bytes = b"}(".to_vec();
        for i in 0..40 {
            bytes.extend_from_slice(&[0x8c, 1, b'a' + (i % 20) as u8, b'K', i as u8]);
        }
        bytes.extend_from_slice(b"u.");
        let PyValue::Dict(items) = loads(&bytes).unwrap() else {
            panic!("not a dict")
        };
        assert_eq!(items.len(), 20);
        assert_eq!(items[0], ("a".into(), int(20)));
        assert_eq!(items[19], ("t".into(), int(39)));
    }

    #[test]
    fn refuses_what_python_refuses() {
        for (bytes, message) in [
            (&b""[..], "truncated pickle"),
            (b"N", "truncated pickle"),
            (b"\x80\x06N.", "unsupported pickle protocol: 6"),
            (b"(.", "unexpected MARK found"),
            (b"0.", "unpickling stack underflow"),
            (b"1.", "could not find MARK"),
            (b"2.", "unpickling stack underflow"),
            (b"(N1.", "unpickling stack underflow"),
            (b"a.", "unpickling stack underflow"),
            (b"NN(a.", "unexpected MARK found"),
            (b"K\x01(K\x02e.", "APPEND to a int"),
            (b")K\x01a.", "APPEND to a tuple"),
            (b"\x8c\x01a\x8c\x01ba.", "APPEND to a str"),
            (b"}K\x01s.", "unpickling stack underflow"),
            (b"(K\x01d.", "odd number of items for DICT"),
            (b"}(K\x01u.", "odd number of items for SETITEMS"),
            (b"g5\n.", "memo value not found at index 5"),
            (b"h\x00.", "memo value not found at index 0"),
            (b"Np-1\n.", "negative PUT argument"),
            (b"p0\n.", "unpickling stack underflow"),
            (b"\x94.", "unpickling stack underflow"),
            (
                b"\x8b\xff\xff\xff\xff.",
                "LONG pickle has negative byte count",
            ),
            (b"F1e400\n.", "too large"),
            (b"Fx\n.", "could not convert"),
            (b"V\\U00110000\n.", "out of range"),
            (b"V\\u12\n.", "truncated \\uXXXX escape"),
            (b"X\x01\x00\x00\x00\xff.", "not valid UTF-8"),
            (b"X\x05\x00\x00\x00ab.", "truncated pickle"),
            (b"I\n.", "INT argument"),
            (b"Ix\n.", "INT argument"),
            (
                b"\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00N.",
                "truncated pickle",
            ),
            (b"\xff.", "unknown opcode 0xff"),
            (b"\x86.", "unpickling stack underflow"),
            (b"K\x01\x86.", "unpickling stack underflow"),
            (b"}(K\x01K\x02u\x8c\x01a.", "dict key is a int"),
        ] {
            assert_refused(bytes, message);
        }
        // Forms CPython reads but no pickler writes (`I007` is octal 7 there): refused.
        for bytes in [
            &b"I007\n."[..],
            b"I+1\n.",
            b"I 5\n.",
            b"L1_0L\n.",
            b"L+5L\n.",
            b"L007L\n.",
        ] {
            assert_refused(bytes, "is not a decimal int");
        }
    }

    #[test]
    fn bounds_hostile_pickles() {
        assert_eq!(
            loads(&vec![b'N'; MAX_PICKLE_LEN + 1]),
            Err(PickleError::TooLarge(MAX_PICKLE_LEN + 1))
        );
        // One list of 1000 Nones referenced 1000 times: a million values from 3 KB.
        let mut bomb = b"](".to_vec();
        bomb.extend(std::iter::repeat_n(b'N', 1000));
        bomb.extend_from_slice(b"e\x94(");
        bomb.extend(std::iter::repeat_n(*b"h\x00", 1100).flatten());
        bomb.extend_from_slice(b"l.");
        assert_eq!(
            loads(&bomb),
            Err(PickleError::TooBig("of more than 2**20 values"))
        );
        // A 512 KiB str referenced 40 times: 20 MiB of strings.
        let mut bomb = vec![b'X'];
        bomb.extend_from_slice(&(512u32 << 10).to_le_bytes());
        bomb.extend(std::iter::repeat_n(b'x', 512 << 10));
        bomb.extend_from_slice(b"\x94(");
        bomb.extend(std::iter::repeat_n(*b"h\x00", 40).flatten());
        bomb.extend_from_slice(b"l.");
        assert_eq!(
            loads(&bomb),
            Err(PickleError::TooBig("of more than 16 MiB of strings"))
        );
        // Nesting: 127 lists deep reads, 128 is refused, half a million never recurses.
        for (depth, ok) in [(MAX_DEPTH, true), (MAX_DEPTH + 1, false), (500_000, false)] {
            let mut deep = vec![b']'; depth];
            deep.extend(std::iter::repeat_n(b'a', depth - 1));
            deep.push(b'.');
            let result = loads(&deep);
            assert_eq!(result.is_ok(), ok, "{depth}");
            if !ok {
                assert_eq!(
                    result,
                    Err(PickleError::TooBig("nested more than 127 deep"))
                );
            }
        }
        // Ints beyond Python's 4300 digits, and LONG4 lengths beyond any of them.
        let digits = format!("I{}\n.", "1".repeat(4301));
        assert_eq!(loads(digits.as_bytes()), Err(PickleError::IntTooLong));
        let ok = format!("L{}L\n.", "9".repeat(4300));
        assert!(loads(ok.as_bytes()).is_ok());
        let mut long = b"\x8b\x00\x08\x00\x00".to_vec();
        long.extend(std::iter::repeat_n(0x11, 2048));
        long.push(b'.');
        assert_eq!(loads(&long), Err(PickleError::IntTooLong));
        let mut long = b"\x8b\x01\x10\x00\x00".to_vec();
        long.extend(std::iter::repeat_n(0, 4097));
        long.push(b'.');
        assert_eq!(loads(&long), Err(PickleError::IntTooLong));
        // Lengths far beyond the input are truncated pickles, not allocations.
        assert_eq!(
            loads(b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff."),
            Err(PickleError::Truncated)
        );
        assert_eq!(loads(b"X\xff\xff\xff\xff."), Err(PickleError::Truncated));
        assert_eq!(
            loads(b"\x95\xff\xff\xff\xff\xff\xff\xff\xffN."),
            Err(PickleError::Truncated)
        );
        // A memo index of 2**32 - 1 costs one entry (CPython allocates the whole array).
        assert_eq!(
            loads(b"Nr\xff\xff\xff\xff0j\xff\xff\xff\xff."),
            Ok(PyValue::None)
        );
    }

    #[test]
    fn loads_dict_requires_a_dict() {
        assert_eq!(loads_dict(b"]."), Err(PickleError::NotADict("list")));
        assert_eq!(loads_dict(b"K\x01."), Err(PickleError::NotADict("int")));
        assert_eq!(loads_dict(b"}."), Ok(vec![]));
    }

    #[test]
    fn dumps_writes_cpythons_opcodes_without_memo() {
        // Python read this back (`pickle.loads(bytes) == FLAT`): it is its own pickle.
        assert_eq!(dumps(&flat_value()), hex(FLAT_P5_NO_MEMO));
        // Small values, each checked with python3: pickle.loads(bytes) is the value.
        let cases: Vec<(PyValue, &str)> = vec![
            (PyValue::None, "8005 4e 2e"),
            (PyValue::Bool(true), "8005 88 2e"),
            (int(-1), "8005 4a ffffffff 2e"),
            (int(255), "8005 4b ff 2e"),
            (int(256), "8005 4d 0001 2e"),
            (int(65536), "8005 4a 00000100 2e"),
            (int(-2_147_483_649), "8005 8a 05 ff ffff7fff 2e"),
            (int(i64::MIN), "8005 8a 08 0000000000000080 2e"),
            (
                big("9223372036854775808"),
                "8005 8a 09 000000000000008000 2e",
            ),
            (
                big("-9223372036854775809"),
                "8005 8a 09 ffffffffffffff7fff 2e",
            ),
            (PyValue::Float(f64::NAN), "8005 47 7ff8000000000000 2e"),
            (PyValue::Float(-0.0), "8005 47 8000000000000000 2e"),
            (s("é"), "8005 8c 02 c3a9 2e"),
            (list(vec![]), "8005 5d 2e"),
            (list(vec![int(1)]), "8005 5d 4b01 61 2e"),
            (list(vec![int(1), int(2)]), "8005 5d 28 4b01 4b02 65 2e"),
            (d(vec![]), "8005 7d 2e"),
            (d(vec![("a", PyValue::None)]), "8005 7d 8c0161 4e 73 2e"),
            (
                d(vec![("a", PyValue::None), ("b", PyValue::Bool(false))]),
                "8005 7d 28 8c0161 4e 8c0162 89 75 2e",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(dumps(&value), hex(expected), "{value:?}");
        }
        // 256 bytes and more: BINUNICODE.
        let long = dumps(&s(&"é".repeat(128)));
        assert_eq!(&long[..7], &hex("8005 58 00010000")[..]);
        // CPython writes SETITEMS batches of 1000, and after a full batch an empty one.
        let dict =
            |n: usize| PyValue::Dict((0..n).map(|i| (i.to_string(), PyValue::None)).collect());
        let count = |bytes: &[u8], op: u8| bytes.iter().filter(|&&b| b == op).count();
        assert_eq!(count(&dumps(&dict(1000)), b'u'), 2);
        assert_eq!(count(&dumps(&dict(1001)), b'u'), 2);
        assert_eq!(count(&dumps(&dict(2500)), b'u'), 3);
        assert_eq!(count(&dumps(&list(vec![PyValue::None; 2000])), b'e'), 2);
        assert_eq!(count(&dumps(&list(vec![PyValue::None; 2001])), b'e'), 3);
    }

    #[test]
    fn dumps_then_loads_is_the_same_value() {
        let mut values = vec![session_value(), flat_value()];
        for i in [
            0,
            1,
            -1,
            127,
            128,
            255,
            256,
            -128,
            -129,
            65535,
            65536,
            i64::MAX,
            i64::MIN,
        ] {
            values.push(int(i));
            values.push(int(i.wrapping_mul(3)));
        }
        for digits in [
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
        ] {
            values.push(big(digits));
        }
        values.push(big(&"7".repeat(4300)));
        values.push(big(&format!("-{}", "1".repeat(700))));
        for bits in [
            0x7ff8_0000_0000_0001,
            0xfff0_0000_0000_0000,
            0x8000_0000_0000_0000,
            1,
        ] {
            values.push(f(bits));
        }
        values.push(s(&"😀".repeat(100)));
        values.push(PyValue::Dict(
            (0..2001).map(|i| (format!("k{i}"), int(i))).collect(),
        ));
        for value in values {
            let bytes = dumps(&value);
            let back = loads(&bytes).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert!(back.identical(&value), "{value:?}");
        }
        // A BigInt that is not decimal text is written so that Python refuses it.
        let bad = dumps(&big("12x"));
        assert_eq!(bad, b"\x80\x05L12xL\n.");
        assert!(loads(&bad).is_err());
    }
}
