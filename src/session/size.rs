//! `max_session_size`: refusing a session whose JSON would be too long, without building it.

use serde_json::{Map, Value};

use crate::Error;

/// Fails when `data` as compact JSON is longer than `limit` bytes, without building the
/// JSON: a writer counts the bytes and stops at the limit.
pub(super) fn check_size(data: &Map<String, Value>, limit: usize) -> Result<(), Error> {
    if object_size_bound(data) <= limit {
        // The usual case: a quick upper bound suffices, no serializer runs.
        return Ok(());
    }
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(buf.len())
                .ok_or_else(|| std::io::Error::other("over the limit"))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(limit), data).map_err(|_| {
        tracing::error!(
            limit,
            keys = data.len(),
            "session larger than max_session_size; not saved"
        );
        Error::SessionTooLarge { limit }
    })
}

/// An upper bound of the length of `data` as compact JSON (a string at most 6 bytes per
/// byte, `\u00XX`; a number at most 24 characters).
fn object_size_bound(data: &Map<String, Value>) -> usize {
    // Braces, and a colon and a comma per entry.
    data.iter().fold(2 * data.len() + 2, |n, (k, v)| {
        n.saturating_add(2 + 6 * k.len())
            .saturating_add(value_size_bound(v))
    })
}

fn value_size_bound(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => 2 + 6 * s.len(),
        Value::Array(items) => items.iter().fold(items.len() + 2, |n, v| {
            n.saturating_add(value_size_bound(v))
        }),
        Value::Object(map) => object_size_bound(map),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_bound_is_never_below_the_json_length() {
        let samples = [
            json!({}),
            json!({"a": null, "b": true, "c": false}),
            json!({"n": -9_223_372_036_854_775_808i64, "u": u64::MAX, "f": -1.797_693_134_862_315_7e308}),
            json!({"\u{1}\"\\\n": "\u{0}\u{1f}\"\\\t", "é": "日本"}),
            json!({"list": [1, [2, [3, {}]], "x", null], "o": {"p": {"q": []}}}),
        ];
        for sample in samples {
            let Value::Object(map) = sample else {
                unreachable!()
            };
            let exact = serde_json::to_string(&map).unwrap().len();
            assert!(object_size_bound(&map) >= exact, "{map:?}");
            assert!(check_size(&map, exact).is_ok());
            assert!(check_size(&map, exact - 1).is_err());
        }
    }
}
