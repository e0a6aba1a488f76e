//! The unpickler: a machine for the data opcodes, building nodes that refer to each other
//! by index, as the memo does.

use std::collections::HashMap;
use std::rc::Rc;

use super::build::Builder;
use super::opcodes::{
    float_line, int_line, long_binary, long_line, memo_index, raw_unicode_escape, refusal, to_len,
    utf8,
};
use super::{MAX_LONG_BYTES, MAX_PICKLE_LEN, PickleError, Result, invalid};
use crate::store::python::PyValue;

/// An object while decoding; containers refer to others by index, as the memo does, so
/// that every reference sees what is appended to the object later.
#[derive(Debug)]
pub(super) enum Node {
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
    pub(super) fn kind(&self) -> &'static str {
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
pub(super) struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    pub(super) nodes: Vec<Node>,
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
    pub(super) fn run(input: &'a [u8]) -> Result<(Self, usize)> {
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
    pub(super) fn build(&self, root: usize) -> Result<PyValue> {
        let mut builder = Builder {
            nodes: &self.nodes,
            on_path: vec![false; self.nodes.len()],
            values: 0,
            string_bytes: 0,
        };
        builder.build(root, 0)
    }
}
