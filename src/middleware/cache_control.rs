//! `Cache-Control: no-store` on the responses that depend on the session, with
//! `SessionConfig::cache_control_no_store`: a signed-in page then never comes back from a
//! cache (the browser's back/forward cache included) after the session ended.
//!
//! Merged as Django's `patch_cache_control` merges (directives by name, case-insensitively,
//! across every `Cache-Control` header, the handler's kept): `no-store` is added once; the
//! directives that would let a cache store or reuse the response anyway are dropped, since
//! no-store forbids it (RFC 9111 §5.2.2.5) and caches that get the precedence wrong exist:
//! `public`, `max-age`, `s-maxage`, `immutable`, `stale-while-revalidate`, `stale-if-error`,
//! and `must-understand`, with which RFC 9111 §5.2.2.3 tells caches to *ignore* no-store.
//! Everything else the handler set (`private`, `no-cache`, `must-revalidate`, extensions)
//! stays, so nothing stricter is ever weakened.

use http::header::{CACHE_CONTROL, Entry};
use http::{HeaderMap, HeaderValue};

/// The directives no-store overrides, which are dropped when it is added.
const OVERRIDDEN: [&[u8]; 7] = [
    b"public",
    b"max-age",
    b"s-maxage",
    b"immutable",
    b"stale-while-revalidate",
    b"stale-if-error",
    b"must-understand",
];

/// Adds `no-store` to the response's `Cache-Control`, merged with what is there.
pub(crate) fn add_no_store(headers: &mut HeaderMap) {
    let Entry::Occupied(entry) = headers.entry(CACHE_CONTROL) else {
        // The usual case, in one lookup and no allocation.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return;
    };
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut has_no_store = false;
    let mut dropped = false;
    for value in entry.iter() {
        for directive in directives(value.as_bytes()) {
            let name = directive_name(directive);
            if name.eq_ignore_ascii_case(b"no-store") {
                has_no_store = true;
            } else if OVERRIDDEN.iter().any(|o| name.eq_ignore_ascii_case(o)) {
                dropped = true;
                continue;
            }
            kept.push(directive);
        }
    }
    if has_no_store && !dropped && entry.iter().count() == 1 {
        // Already as strict as it gets: left byte for byte as the handler wrote it.
        return;
    }
    let mut merged = kept.join(&b", "[..]);
    if !has_no_store {
        if !merged.is_empty() {
            merged.extend_from_slice(b", ");
        }
        merged.extend_from_slice(b"no-store");
    }
    match HeaderValue::from_bytes(&merged) {
        Ok(value) => {
            headers.insert(CACHE_CONTROL, value);
        }
        // Pieces of valid header values joined by ", " are a valid one; kept as a guard.
        Err(_) => {
            tracing::error!("merged Cache-Control is not a valid header value; using no-store");
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

/// The directives of one `Cache-Control` value, trimmed: split on the commas outside quoted
/// strings (`no-cache="Set-Cookie, Foo"` is one directive), empty ones skipped.
pub(super) fn directives(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = value;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let mut quoted = false;
            let mut escaped = false;
            let mut end = rest.len();
            for (i, &b) in rest.iter().enumerate() {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' if quoted => escaped = true,
                    b'"' => quoted = !quoted,
                    b',' if !quoted => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let directive = rest[..end].trim_ascii();
            rest = rest.get(end + 1..).unwrap_or_default();
            if !directive.is_empty() {
                return Some(directive);
            }
        }
        None
    })
}

/// The name of a directive (`max-age` of `max-age = 60`).
fn directive_name(directive: &[u8]) -> &[u8] {
    match memchr::memchr(b'=', directive) {
        Some(eq) => directive[..eq].trim_ascii(),
        None => directive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(existing: &[&'static str]) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for value in existing {
            headers.append(CACHE_CONTROL, HeaderValue::from_static(value));
        }
        add_no_store(&mut headers);
        headers
            .get_all(CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn no_store_is_merged_into_what_the_handler_set() {
        assert_eq!(merged(&[]), ["no-store"]);
        assert_eq!(merged(&["private"]), ["private, no-store"]);
        assert_eq!(merged(&["no-store"]), ["no-store"]);
        assert_eq!(merged(&["No-Store , private"]), ["No-Store , private"]);
        assert_eq!(
            merged(&["private", "no-cache"]),
            ["private, no-cache, no-store"]
        );
        assert_eq!(merged(&["no-store", "private"]), ["no-store, private"]);
        assert_eq!(
            merged(&["  ,no-cache,,  must-revalidate ,"]),
            ["no-cache, must-revalidate, no-store"]
        );
        assert_eq!(
            merged(&["PUBLIC, Max-Age=3600, s-maxage = 60, immutable"]),
            ["no-store"]
        );
        assert_eq!(merged(&["public, max-age=60", "no-store"]), ["no-store"]);
        assert_eq!(merged(&["must-understand, no-store"]), ["no-store"]);
        assert_eq!(
            merged(&[r#"no-cache="Set-Cookie, X-A", max-age=5"#]),
            [r#"no-cache="Set-Cookie, X-A", no-store"#]
        );
        assert_eq!(
            merged(&[r#"x-ext="a\"b,c", stale-while-revalidate=9"#]),
            [r#"x-ext="a\"b,c", no-store"#]
        );
    }
}
