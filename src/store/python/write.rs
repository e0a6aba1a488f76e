//! Django's JSON written as Python's `json.dumps(value, separators=(",", ":"))` writes it.

use std::fmt::Write as _;

use super::{PyValue, python_float_repr};

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
