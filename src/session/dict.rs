//! The dictionary operations: synchronous, and the store is never waited on.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Session;
use crate::{DictKey, Error, SessionKey};

/// Django's test-cookie key and value.
const TEST_COOKIE_NAME: &str = "testcookie";
const TEST_COOKIE_VALUE: &str = "worked";

/// `value` as JSON. NaN and infinities are refused: serde_json would store them as `null`.
fn to_value<T: Serialize>(key: &str, value: T) -> Result<Value, Error> {
    let serde_error = |source| Error::Serde {
        key: key.to_owned(),
        source,
    };
    crate::finite::check(&value)
        .map_err(|e| serde_error(<serde_json::Error as serde::ser::Error>::custom(e)))?;
    serde_json::to_value(value).map_err(serde_error)
}

fn from_value<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, Error> {
    T::deserialize(value).map_err(|source| Error::Serde {
        key: key.to_owned(),
        source,
    })
}

impl Session {
    /// `session.get(key)`: the value under `key` converted to `T`, or `None` when absent.
    /// Fails with [`Error::Serde`] when the stored JSON is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut state = self.state();
        state
            .data()
            .get(key)
            .map(|v| from_value(key, v))
            .transpose()
    }

    /// `session.get(key)` as raw JSON.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.state().data().get(key).cloned()
    }

    /// `session[key] = value`. Sets `modified`, even when the value is unchanged. A value
    /// holding NaN or an infinity is refused with [`Error::Serde`] (JSON has no such number;
    /// serde_json would store `null`).
    pub fn insert<T: Serialize>(&self, key: impl DictKey, value: T) -> Result<(), Error> {
        let value = to_value(key.as_ref(), value)?;
        self.state().set(key, value);
        Ok(())
    }

    /// `session[key] = value` with a raw JSON value.
    pub fn insert_value(&self, key: impl DictKey, value: Value) {
        self.state().set(key, value);
    }

    /// `del session[key]` / `session.pop(key, None)`: removes and returns the value. Sets
    /// `modified` only when the key was there.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.state().remove(key)
    }

    /// `session.pop(key, None)` converted to `T`. When the value is not a `T`, fails and
    /// leaves it in place.
    pub fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut state = self.state();
        let Some(value) = state.data().get(key) else {
            return Ok(None);
        };
        let typed = from_value(key, value)?;
        state.remove(key);
        Ok(Some(typed))
    }

    /// `session.setdefault(key, default)`: the existing value (nothing written, `modified`
    /// unchanged), or `default` after storing it.
    pub fn setdefault<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        default: T,
    ) -> Result<T, Error> {
        let mut state = self.state();
        if let Some(existing) = state.data().get(key) {
            return from_value(key, existing);
        }
        let value = to_value(key, &default)?;
        state.set(key, value);
        Ok(default)
    }

    /// `session.update(items)`: inserts every pair. Sets `modified` even when `items` is
    /// empty, as Django does. Nothing is written unless every value serializes.
    pub fn update<I, K, V>(&self, items: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: DictKey,
        V: Serialize,
    {
        let pairs = items
            .into_iter()
            .map(|(k, v)| {
                let k = k.into_key();
                let v = to_value(&k, v)?;
                Ok((k, v))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mut state = self.state();
        state.data();
        state.modified = true;
        for (k, v) in pairs {
            state.set(k, v);
        }
        Ok(())
    }

    /// `key in session`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.state().data().contains_key(key)
    }

    /// `list(session.keys())`, in insertion order.
    pub fn keys(&self) -> Vec<String> {
        self.state().data().keys().cloned().collect()
    }

    /// `list(session.values())`, in insertion order.
    pub fn values(&self) -> Vec<Value> {
        self.state().data().values().cloned().collect()
    }

    /// `list(session.items())`, in insertion order.
    pub fn items(&self) -> Vec<(String, Value)> {
        self.state()
            .data()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `len(session)`.
    pub fn len(&self) -> usize {
        self.state().data().len()
    }

    /// `session.clear()`: empties the data without reading the store; sets `accessed` and
    /// `modified`.
    pub fn clear(&self) {
        self.state().clear();
    }

    /// `session.is_empty()`, in Django's sense: no key, and no data loaded or an empty one.
    /// It never loads and never sets `accessed`, so a session whose cookie named a key is
    /// not empty until a dictionary operation finds that key unknown.
    pub fn is_empty(&self) -> bool {
        self.state().is_empty()
    }

    /// `session.modified`: whether this request changed the session.
    pub fn modified(&self) -> bool {
        self.state().modified
    }

    /// `session.modified = value`. Set it to force a save (with a fresh expiry) at the end of
    /// the request.
    pub fn set_modified(&self, value: bool) {
        self.state().modified = value;
    }

    /// `session.accessed`: whether this request used the session's data.
    pub fn accessed(&self) -> bool {
        self.state().accessed
    }

    /// `session.session_key`: the key the cookie will carry, if any.
    pub fn session_key(&self) -> Option<SessionKey> {
        self.state().key.clone()
    }

    /// `session.set_test_cookie()`: stores `testcookie = "worked"`.
    pub fn set_test_cookie(&self) {
        self.insert_value(TEST_COOKIE_NAME, Value::from(TEST_COOKIE_VALUE));
    }

    /// `session.test_cookie_worked()`: whether the browser sent back the session in which
    /// `set_test_cookie` was called.
    pub fn test_cookie_worked(&self) -> bool {
        self.state()
            .data()
            .get(TEST_COOKIE_NAME)
            .and_then(Value::as_str)
            == Some(TEST_COOKIE_VALUE)
    }

    /// `session.delete_test_cookie()`: removes it (and sets `modified` when it was there;
    /// Django's sync version, where a missing one raises, and unlike its async twin, which
    /// never sets `modified`).
    pub fn delete_test_cookie(&self) {
        self.remove(TEST_COOKIE_NAME);
    }
}
