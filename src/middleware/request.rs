//! `process_request`: the session cookie out of the `Cookie` headers.

use http::HeaderMap;
use http::header::COOKIE;

use crate::SessionKey;

/// What the request said about the session cookie.
#[derive(Debug, Default)]
pub(crate) struct IncomingCookie {
    /// A cookie with the session cookie's name was sent, whatever its value.
    pub(crate) present: bool,
    /// The value, when the store accepts it as a key.
    pub(crate) key: Option<SessionKey>,
}

/// Finds the session cookie in every `Cookie` header, in one pass over the bytes.
///
/// Duplicates (a sibling subdomain or another path can add a cookie of the same name): the
/// last well-formed value wins, and distinct well-formed values are logged as suspicious.
/// When a session cookie was sent but none of its values is a key, `rejected_cookie` gets the
/// last value (for the `RejectedCookie` event, which logs its salted fingerprint, never it).
pub(crate) fn incoming(
    headers: &HeaderMap,
    name: &str,
    parse: impl Fn(&str) -> Option<SessionKey>,
    rejected_cookie: impl FnOnce(&[u8]),
) -> IncomingCookie {
    let mut found = IncomingCookie::default();
    let mut distinct_keys = false;
    let mut rejected: &[u8] = &[];
    for header in headers.get_all(COOKIE) {
        for (n, value) in pairs(header.as_bytes()) {
            if n != name.as_bytes() {
                continue;
            }
            found.present = true;
            let Some(key) = std::str::from_utf8(value).ok().and_then(&parse) else {
                rejected = value;
                continue;
            };
            if found.key.as_ref().is_some_and(|k| *k != key) {
                distinct_keys = true;
            }
            found.key = Some(key);
        }
    }
    if distinct_keys {
        tracing::warn!(
            cookie = name,
            "request carries several different session cookies; using the last"
        );
    }
    if found.present && found.key.is_none() {
        rejected_cookie(rejected);
    }
    found
}

/// `name=value` pairs of a `Cookie` header (RFC 6265 §4.2.1, leniently: whitespace around
/// names and values is dropped and a quoted value is unquoted). Pairs without `=` are skipped.
fn pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    // memchr: a session cookie sits among others, often long ones (CSRF tokens, analytics).
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        loop {
            let current = rest?;
            let pair = match memchr::memchr(b';', current) {
                Some(end) => {
                    rest = Some(&current[end + 1..]);
                    &current[..end]
                }
                None => {
                    rest = None;
                    current
                }
            };
            let Some(eq) = memchr::memchr(b'=', pair) else {
                continue;
            };
            let name = pair[..eq].trim_ascii();
            let mut value = pair[eq + 1..].trim_ascii();
            if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
                value = &value[1..value.len() - 1];
            }
            return Some((name, value));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn find(values: &[&[u8]]) -> IncomingCookie {
        incoming(&headers(values), "sessionid", SessionKey::parse, |_| {})
    }

    #[test]
    fn finds_only_the_session_cookie() {
        let c = find(&[b"a=1; sessionid=abcdefgh12; csrftoken=x"]);
        assert!(c.present);
        assert_eq!(c.key.unwrap().as_str(), "abcdefgh12");
        let c = find(&[b"xsessionid=abcdefgh12; sessionidx=abcdefgh12"]);
        assert!(!c.present && c.key.is_none());
        let c = find(&[b"a=1", b" sessionid = \"abcdefgh12\" "]);
        assert_eq!(c.key.unwrap().as_str(), "abcdefgh12");
    }

    #[test]
    fn malformed_values_are_present_but_keyless() {
        for v in [
            &b"sessionid=abc"[..],
            b"sessionid=",
            b"sessionid=ABCDEFGHIJ",
            b"sessionid=\xff\xfeabcdefgh",
            b"sessionid=../../etc/passwd",
        ] {
            let c = find(&[v]);
            assert!(c.present, "{v:?}");
            assert!(c.key.is_none(), "{v:?}");
        }
    }

    #[test]
    fn last_well_formed_duplicate_wins() {
        let c = find(&[b"sessionid=aaaaaaaaaa; sessionid=bbbbbbbbbb; sessionid=bad"]);
        assert_eq!(c.key.unwrap().as_str(), "bbbbbbbbbb");
    }
}
