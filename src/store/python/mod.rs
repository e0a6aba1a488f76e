//! Session values as Python holds them, and Django's JSON read and written exactly.
//!
//! Django's `JSONSerializer` writes `json.dumps(obj, separators=(",", ":"))` and reads
//! `json.loads`. Python's JSON holds what `serde_json` cannot: integers of any size, `NaN`,
//! `Infinity` and `-Infinity`. [`PyValue`] holds all of it, so that a record read here and
//! written back is byte for byte what Python would write.
//!
//! Two limits keep every value read here writable and readable again, as JSON (serde_json's
//! too) and as a pickle: containers nest at most [`MAX_DEPTH`] deep (serde_json's limit;
//! Python's is its recursion limit, near 1000), and ints have at most [`MAX_INT_DIGITS`]
//! digits (Python's own `sys.get_int_max_str_digits()`: beyond it `json.loads` and
//! `json.dumps` raise).

use serde_json::{Map, Number, Value};

mod float_repr;
mod parse;
#[cfg(test)]
mod tests;
mod write;

pub use float_repr::python_float_repr;
pub use parse::{JsonError, parse_django_json};

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

/// An int from canonical decimal text (`-?(0|[1-9][0-9]*)`): Int when it fits, else BigInt.
pub(crate) fn int_from_canonical(text: &str) -> PyValue {
    match text.parse::<i64>() {
        Ok(i) => PyValue::Int(i),
        Err(_) => PyValue::BigInt(text.to_owned()),
    }
}

impl PyValue {
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
