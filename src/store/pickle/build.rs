//! From the decoded nodes to a `PyValue` tree, within the limits.

use super::reader::Node;
use super::{MAX_NODES, MAX_STRING_BYTES, PickleError, Result, invalid};
use crate::store::python::{MAX_DEPTH, PyValue};

/// Turns the decoded objects into a tree, copying shared ones, within the limits.
pub(super) struct Builder<'n> {
    pub(super) nodes: &'n [Node],
    pub(super) on_path: Vec<bool>,
    pub(super) values: usize,
    pub(super) string_bytes: usize,
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

    pub(super) fn build(&mut self, index: usize, depth: usize) -> Result<PyValue> {
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
