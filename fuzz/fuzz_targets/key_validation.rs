//! `SessionKey::parse` and the stores' `parse_key` on arbitrary text.
//!
//! Invariants, for the input as UTF-8 (when it is) and as `String::from_utf8_lossy`:
//! - `SessionKey::parse` is `Some` exactly for 8 to 40 characters of `[a-z0-9]`, and the key
//!   it returns gives the text back (`as_str`, `Display`, equality with `from_validated`);
//! - the default `parse_key` (the memory store's) agrees with `SessionKey::parse`;
//! - `CookieStore::parse_key` never panics and accepts exactly its documented grammar:
//!   `[A-Za-z0-9_\-.:]`, at least two `:`, at most 4096 bytes. The input is also stretched
//!   to 4095, 4096 and 4097 bytes so that the size limit is exercised.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sessionbase::{CookieStore, MemoryStore, SessionKey, SessionStore};

fn stores() -> &'static (CookieStore, MemoryStore) {
    static STORES: OnceLock<(CookieStore, MemoryStore)> = OnceLock::new();
    STORES.get_or_init(|| (CookieStore::new("secret"), MemoryStore::new()))
}

fn is_server_side_key(s: &str) -> bool {
    let n = s.chars().count();
    (8..=40).contains(&n) && s.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9'))
}

fn is_cookie_value(s: &str) -> bool {
    s.len() <= 4096
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        && s.matches(':').count() >= 2
}

fn check_key(s: &str) {
    let parsed = SessionKey::parse(s);
    assert_eq!(parsed.is_some(), is_server_side_key(s), "parse({s:?})");
    if let Some(key) = parsed {
        assert_eq!(key.as_str(), s);
        assert_eq!(key.as_ref(), s);
        assert_eq!(key.to_string(), s);
        assert_eq!(key, SessionKey::from_validated(s));
        assert_eq!(format!("{key:?}"), "SessionKey(..)");
    }
    // Whatever the caller validated, the text comes back (inline up to 40 bytes, shared above).
    let validated = SessionKey::from_validated(s);
    assert_eq!(validated.as_str(), s);
    assert_eq!(validated.clone(), validated);

    let (cookie, memory) = stores();
    let default = memory.parse_key(s);
    assert_eq!(
        default.as_ref().map(SessionKey::as_str),
        SessionKey::parse(s).as_ref().map(SessionKey::as_str)
    );
    check_cookie_key(cookie, s);
}

fn check_cookie_key(cookie: &CookieStore, s: &str) {
    let accepted = cookie.parse_key(s);
    assert_eq!(
        accepted.is_some(),
        is_cookie_value(s),
        "CookieStore::parse_key of {} bytes: {:?}",
        s.len(),
        s.get(..s.len().min(80))
    );
    if let Some(key) = accepted {
        assert_eq!(key.as_str(), s);
    }
}

/// `s` repeated up to `len` bytes, cut at the first character boundary at or past `len`.
fn stretch(s: &str, len: usize) -> String {
    let mut out = s.repeat(len / s.len() + 1);
    let end = (len..=out.len())
        .find(|&i| out.is_char_boundary(i))
        .unwrap_or(out.len());
    out.truncate(end);
    out
}

fn check(s: &str) {
    check_key(s);
    if !s.is_empty() && s.len() < 4095 {
        let (cookie, _) = stores();
        for len in [4095, 4096, 4097] {
            check_cookie_key(cookie, &stretch(s, len));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        // U+FFFD in place of the invalid sequences: rejected by both grammars.
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});
