//! `Clear-Site-Data: "cache"` on the response that deletes the session cookie (a logout),
//! with `SessionConfig::cache_control_no_store`.
//!
//! `no-store` keeps a signed-in page out of HTTP caches, but Chromium keeps no-store pages in
//! its back/forward cache too, and a tab opened before a logout in another tab then shows the
//! signed-in page again on Back (`tests/it/demos/browser.rs` sees it in a real Chromium).
//! `"cache"` makes the browser drop those pages (and the origin's HTTP cache, so static files
//! are fetched again after a logout: the price of the guarantee). Merged with what the
//! handler sent: `"cache"` is added once, and nothing is added when `"*"` already asks for
//! everything.

use http::header::{Entry, HeaderName};
use http::{HeaderMap, HeaderValue};

use super::cache_control::directives;

static CLEAR_SITE_DATA: HeaderName = HeaderName::from_static("clear-site-data");

/// Adds `"cache"` to the response's `Clear-Site-Data`, merged with what is there.
pub(crate) fn add_cache(headers: &mut HeaderMap) {
    let Entry::Occupied(entry) = headers.entry(&CLEAR_SITE_DATA) else {
        headers.insert(&CLEAR_SITE_DATA, HeaderValue::from_static("\"cache\""));
        return;
    };
    let mut types: Vec<&[u8]> = Vec::new();
    for value in entry.iter() {
        types.extend(directives(value.as_bytes()));
    }
    if types
        .iter()
        .any(|t| t.eq_ignore_ascii_case(b"\"cache\"") || *t == b"\"*\"")
    {
        return;
    }
    types.push(b"\"cache\"");
    match HeaderValue::from_bytes(&types.join(&b", "[..])) {
        Ok(value) => {
            headers.insert(&CLEAR_SITE_DATA, value);
        }
        // Pieces of valid header values joined by ", " are a valid one; kept as a guard.
        Err(_) => {
            tracing::error!("merged Clear-Site-Data is not a valid header value; using \"cache\"");
            headers.insert(&CLEAR_SITE_DATA, HeaderValue::from_static("\"cache\""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(existing: &[&'static str]) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for value in existing {
            headers.append(&CLEAR_SITE_DATA, HeaderValue::from_static(value));
        }
        add_cache(&mut headers);
        headers
            .get_all(&CLEAR_SITE_DATA)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn cache_is_merged_into_what_the_handler_sent() {
        assert_eq!(merged(&[]), ["\"cache\""]);
        assert_eq!(merged(&["\"cookies\""]), ["\"cookies\", \"cache\""]);
        assert_eq!(merged(&["\"cache\""]), ["\"cache\""]);
        assert_eq!(merged(&["\"*\""]), ["\"*\""]);
        assert_eq!(
            merged(&["\"storage\"", " \"cookies\" ,"]),
            ["\"storage\", \"cookies\", \"cache\""]
        );
        assert_eq!(
            merged(&["\"cookies\", \"CACHE\""]),
            ["\"cookies\", \"CACHE\""]
        );
    }
}
