//! Values a Django record holds that serde_json cannot (integers beyond 64 bits, NaN and the
//! infinities Python's `json` writes), kept exactly as stored so that a save writes them back
//! unchanged.
//!
//! A session works on `serde_json` values, so such a value reaches the handler as its
//! nearest JSON value (a big integer as the nearest float, NaN and infinities as `null`).
//! The exact value travels with the record's [`Version`](super::Version) from the load to
//! the save, and the save writes it back for every key whose value the handler left as it
//! was loaded: a Rust save never changes what it did not write.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::python::{PyValue, parse_django_json};

/// The top-level values of one loaded record that JSON would change, with the JSON value
/// the session saw for each.
#[derive(Clone, Debug, Default)]
pub(crate) struct Preserved(Option<Arc<[Exact]>>);

#[derive(Debug)]
struct Exact {
    key: String,
    exact: PyValue,
    seen: Value,
}

impl Preserved {
    /// Whether nothing needs preserving (the common case: a plain JSON record).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Splits a Python dict into the session's JSON data and the values JSON changes.
    pub(crate) fn split(items: Vec<(String, PyValue)>) -> (Map<String, Value>, Self) {
        let mut map = Map::with_capacity(items.len());
        let mut exact = Vec::new();
        for (key, value) in items {
            let seen = value.to_json();
            if !value.is_exact_in_json() {
                exact.push(Exact {
                    key: key.clone(),
                    exact: value,
                    seen: seen.clone(),
                });
            }
            map.insert(key, seen);
        }
        let preserved = (!exact.is_empty()).then(|| Arc::from(exact));
        (map, Self(preserved))
    }

    /// The dict to store for `data`: every value still as the session loaded it is written
    /// as it was stored; the rest as the session holds it.
    pub(crate) fn to_python(&self, data: &Map<String, Value>) -> PyValue {
        PyValue::Dict(
            data.iter()
                .map(|(key, value)| {
                    let python = match self.original(key, value) {
                        Some(exact) => exact.clone(),
                        None => PyValue::from_json(value),
                    };
                    (key.clone(), python)
                })
                .collect(),
        )
    }

    fn original(&self, key: &str, value: &Value) -> Option<&PyValue> {
        self.0
            .as_deref()?
            .iter()
            .find(|e| e.key == key && e.seen == *value)
            .map(|e| &e.exact)
    }

    /// Django's JSON for `data` (`json.dumps(data, separators=(",", ":"))`), with the
    /// preserved values as they were stored.
    pub(crate) fn to_django_json(&self, data: &Map<String, Value>) -> String {
        if self.is_empty() {
            return crate::signing::to_django_json(data);
        }
        let mut out = String::with_capacity(128);
        self.to_python(data).write_django_json(&mut out);
        out
    }
}

/// The session dict in Django's JSON (`SessionBase.decode`'s payload), and what of it JSON
/// cannot hold exactly. serde_json parses the common record; a record it cannot parse
/// (`NaN`, `Infinity`) or could round (a run of 19 or more digits, so an integer that may
/// not fit in 64 bits) is parsed as Python's `json.loads` would.
pub(crate) fn parse_session_json(json: &[u8]) -> Result<(Map<String, Value>, Preserved), String> {
    if !has_long_digit_run(json)
        && let Ok(Value::Object(map)) = serde_json::from_slice(json)
    {
        return Ok((map, Preserved::default()));
    }
    let text = std::str::from_utf8(json).map_err(|e| e.to_string())?;
    match parse_django_json(text).map_err(|e| e.to_string())? {
        PyValue::Dict(items) => Ok(Preserved::split(items)),
        _ => Err("payload is not a JSON object".into()),
    }
}

/// Whether `json` holds 19 or more consecutive ASCII digits: the shortest integer that can
/// fall outside 64 bits (`-9223372036854775809`). Digits inside strings count too; they
/// only send the record down the exact path.
fn has_long_digit_run(json: &[u8]) -> bool {
    let mut run = 0;
    for &b in json {
        if b.is_ascii_digit() {
            run += 1;
            if run >= 19 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_records_take_the_fast_path_and_preserve_nothing() {
        let (map, preserved) = parse_session_json(br#"{"a":1,"b":"x","c":[1.5]}"#).unwrap();
        assert_eq!(Value::Object(map), json!({"a": 1, "b": "x", "c": [1.5]}));
        assert!(preserved.is_empty());
    }

    #[test]
    fn big_integers_and_nan_are_written_back_as_stored() {
        let stored = r#"{"big":1180591620717411303424,"n":NaN,"l":[1,-Infinity],"u":18446744073709551615,"s":"x"}"#;
        let (mut map, preserved) = parse_session_json(stored.as_bytes()).unwrap();
        assert_eq!(map["n"], Value::Null);
        assert_eq!(map["u"], json!(18_446_744_073_709_551_615_u64));
        assert_eq!(preserved.to_django_json(&map), stored);
        // A key the session changed is written as the session holds it; the rest as stored.
        map.insert("s".into(), json!("y"));
        map.insert("n".into(), json!(2));
        assert_eq!(
            preserved.to_django_json(&map),
            r#"{"big":1180591620717411303424,"n":2,"l":[1,-Infinity],"u":18446744073709551615,"s":"y"}"#
        );
    }

    #[test]
    fn malformed_and_non_objects_are_errors() {
        for bad in [&b"[1]"[..], b"{", b"{\"a\":nan}", b"\xff", b"{\"a\":1}x"] {
            assert!(parse_session_json(bad).is_err(), "{bad:?}");
        }
    }
}
