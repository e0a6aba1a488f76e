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

use super::python::PyValue;
use reader::Machine;
use writer::write;

mod build;
mod opcodes;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

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
