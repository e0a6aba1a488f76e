//! Django's JSON: `json.dumps` with compact separators and `ensure_ascii`.

use std::io::{self, Write};

use serde_json::{Map, Value};

use crate::store::python::python_float_repr;

/// Python's `json.dumps(data, separators=(",", ":"))`: compact, with every character outside
/// printable ASCII escaped as `\uXXXX` (surrogate pairs above U+FFFF).
// Public for the fuzz targets (fuzz/), not part of the API.
#[doc(hidden)]
pub fn to_django_json(data: &Map<String, Value>) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    // Serializing a Map of Values into a Vec cannot fail.
    if serde::Serialize::serialize(data, &mut ser).is_err() {
        return "{}".to_owned();
    }
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's compact formatter, escaping like Python's `ensure_ascii=True`.
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    // Python's `float.__repr__` (`1e+16`, `1e-05`), not serde_json's spelling (`1e16`,
    // `1e-5`): the same float, written as Django would write it. Non-finite floats never
    // reach here (serde_json holds none).
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut repr = String::new();
        python_float_repr(value, &mut repr);
        writer.write_all(repr.as_bytes())
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}
