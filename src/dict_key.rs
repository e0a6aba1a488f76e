//! What the dictionary operations take as a key.

use std::borrow::Cow;

/// A session dictionary key as [`Session::insert`](crate::Session::insert) takes it: any
/// string type, borrowed or owned (`&str`, `&&str` from iterating a slice of pairs,
/// `String`, `&String`, `Box<str>`, `Cow<str>`).
///
/// Replacing a value reuses the stored key, so only a new key costs a `String`, and an owned
/// `String` is moved in rather than copied.
///
/// ```
/// # use sessionbase::{MemoryStore, Session, SessionConfig};
/// let session = Session::new(MemoryStore::new(), SessionConfig::default());
/// for (key, value) in [("a", 1), ("b", 2)].iter() {
///     session.insert(key, value)?; // `key` is a `&&str`
/// }
/// session.insert(String::from("c"), 3)?;
/// assert_eq!(session.keys(), ["a", "b", "c"]);
/// # Ok::<(), sessionbase::Error>(())
/// ```
pub trait DictKey: AsRef<str> {
    /// The key as an owned `String`, for a key the session did not hold yet.
    fn into_key(self) -> String;
}

impl DictKey for String {
    fn into_key(self) -> String {
        self
    }
}

impl DictKey for &String {
    fn into_key(self) -> String {
        self.clone()
    }
}

impl DictKey for &str {
    fn into_key(self) -> String {
        self.to_owned()
    }
}

impl DictKey for &&str {
    fn into_key(self) -> String {
        (*self).to_owned()
    }
}

impl DictKey for &mut str {
    fn into_key(self) -> String {
        self.to_owned()
    }
}

impl DictKey for Box<str> {
    fn into_key(self) -> String {
        self.into_string()
    }
}

impl DictKey for Cow<'_, str> {
    fn into_key(self) -> String {
        self.into_owned()
    }
}

impl DictKey for &Cow<'_, str> {
    fn into_key(self) -> String {
        self.clone().into_owned()
    }
}
