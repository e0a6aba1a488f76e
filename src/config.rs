//! `SessionConfig`: Django's `SESSION_*` settings, with Django's defaults.

use time::Duration;

use crate::Error;

/// The `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// `SameSite=Lax`, Django's default.
    Lax,
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=None`; browsers require `Secure` with it.
    None,
}

impl SameSite {
    /// The attribute value as written in `Set-Cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::Strict => "Strict",
            Self::None => "None",
        }
    }
}

/// Django's session settings. Every field is public and starts at Django's default.
///
/// | Django setting | field | default |
/// |---|---|---|
/// | `SESSION_COOKIE_NAME` | `cookie_name` | `"sessionid"` |
/// | `SESSION_COOKIE_AGE` | `cookie_age` | 2 weeks |
/// | `SESSION_COOKIE_DOMAIN` | `cookie_domain` | `None` |
/// | `SESSION_COOKIE_PATH` | `cookie_path` | `"/"` |
/// | `SESSION_COOKIE_SECURE` | `cookie_secure` | `false` |
/// | `SESSION_COOKIE_HTTPONLY` | `cookie_http_only` | `true` |
/// | `SESSION_COOKIE_SAMESITE` | `cookie_same_site` | `Some(SameSite::Lax)` |
/// | `SESSION_EXPIRE_AT_BROWSER_CLOSE` | `expire_at_browser_close` | `false` |
/// | `SESSION_SAVE_EVERY_REQUEST` | `save_every_request` | `false` |
///
/// ```
/// use sessionbase::{SameSite, SessionConfig};
/// use time::Duration;
///
/// let config = SessionConfig::default()
///     .with_cookie_name("__Host-session")
///     .with_cookie_secure(true)
///     .with_cookie_age(Duration::hours(8))
///     .with_cookie_same_site(Some(SameSite::Strict));
/// assert!(config.validate().is_ok());
///
/// // A `__Host-` cookie without `Secure` would be dropped by every browser.
/// let broken = SessionConfig::default().with_cookie_name("__Host-session");
/// assert!(broken.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// `SESSION_COOKIE_NAME`: the cookie's name.
    pub cookie_name: String,
    /// `SESSION_COOKIE_AGE`: the default lifetime (the cookie's `Max-Age` and the stored
    /// record's expiry, unless the session sets its own).
    pub cookie_age: Duration,
    /// `SESSION_COOKIE_DOMAIN`: the `Domain` attribute, left out when `None`.
    pub cookie_domain: Option<String>,
    /// `SESSION_COOKIE_PATH`: the `Path` attribute.
    pub cookie_path: String,
    /// `SESSION_COOKIE_SECURE`: adds `Secure`.
    pub cookie_secure: bool,
    /// `SESSION_COOKIE_HTTPONLY`: adds `HttpOnly`.
    pub cookie_http_only: bool,
    /// `SESSION_COOKIE_SAMESITE`: the `SameSite` attribute, left out when `None`.
    pub cookie_same_site: Option<SameSite>,
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE`: browser-length cookies for sessions without a
    /// custom expiry.
    pub expire_at_browser_close: bool,
    /// `SESSION_SAVE_EVERY_REQUEST`: save and re-send the cookie on every response whose
    /// session is not empty.
    pub save_every_request: bool,
    /// Beyond Django: the longest a store call may take before the request fails with
    /// [`Error::StoreTimeout`] (503), so that a hung store gives a clear error instead of a
    /// hung request. Default 10 seconds; `None` waits as long as the store does. Needs Tokio's
    /// timer (on in `#[tokio::main]`).
    pub store_timeout: Option<std::time::Duration>,
    /// Beyond Django, as OWASP recommends: the longest a session may live however active it
    /// stays, counted from its creation (kept in the session under `_sessionbase_created`).
    /// It survives `cycle_key` (so cycling cannot extend a hijacked session) and restarts
    /// with `flush`. Default `None`: Django's idle expiry only.
    pub absolute_max_age: Option<Duration>,
    /// Beyond Django: the largest session a save writes, in bytes of compact JSON (default
    /// 1 MiB); a larger one fails with `Error::SessionTooLarge` instead of filling the store.
    /// `None` removes the cap.
    pub max_session_size: Option<usize>,
    /// Whether these sessions are shared with a Django app (set by
    /// [`DjangoConfig::session_config`](crate::django::DjangoConfig::session_config); default
    /// `false`). A store whose records Django cannot read (one with a private id, the
    /// encrypted-cookie store) refuses such a configuration at startup
    /// ([`SessionStore::check_config`](crate::SessionStore::check_config)).
    pub shared_with_django: bool,
    /// Beyond Django (OWASP's advice): adds `Cache-Control: no-store`, merged with what the
    /// handler set and never weakening it, to every response that used the session (the
    /// responses that get `Vary: Cookie`: the session was accessed, or its cookie set or
    /// deleted; and the [`OnError`](crate::OnError) answer to a failed save), so that a
    /// signed-in page does not come back from a cache or the browser's
    /// back/forward cache after a logout. The response that deletes the cookie (a logout)
    /// also gets `Clear-Site-Data: "cache"`, merged likewise: Chromium keeps no-store pages
    /// in its back/forward cache, and only that makes it drop them (it also empties the
    /// origin's HTTP cache, so static files are fetched again after a logout). Default
    /// `false`, as Django.
    pub cache_control_no_store: bool,
    /// Beyond Django 5.2: adds the `Partitioned` attribute (CHIPS) to the session cookie and
    /// its removal, for an app embedded in other sites. Browsers require `Secure` with it,
    /// so [`validate`](Self::validate) does too. Default `false`.
    pub cookie_partitioned: bool,
    /// Beyond Django: receives every audit event of the session lifecycle (created, key
    /// cycled, flushed, expired on load, interrupted, rejected cookie, revoked; see
    /// [`crate::events`]), set with [`with_event_hook`](Self::with_event_hook). The events
    /// are logged through `tracing` either way. Default `None`.
    pub event_hook: Option<crate::events::EventHook>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "sessionid".to_owned(),
            cookie_age: Duration::seconds(1_209_600),
            cookie_domain: None,
            cookie_path: "/".to_owned(),
            cookie_secure: false,
            cookie_http_only: true,
            cookie_same_site: Some(SameSite::Lax),
            expire_at_browser_close: false,
            save_every_request: false,
            store_timeout: Some(std::time::Duration::from_secs(10)),
            absolute_max_age: None,
            max_session_size: Some(1024 * 1024),
            shared_with_django: false,
            cache_control_no_store: false,
            cookie_partitioned: false,
            event_hook: None,
        }
    }
}

impl SessionConfig {
    /// Sets `cookie_name`.
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Sets `cookie_age`.
    pub fn with_cookie_age(mut self, age: Duration) -> Self {
        self.cookie_age = age;
        self
    }

    /// Sets `cookie_domain`.
    pub fn with_cookie_domain(mut self, domain: Option<String>) -> Self {
        self.cookie_domain = domain;
        self
    }

    /// Sets `cookie_path`.
    pub fn with_cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie_path = path.into();
        self
    }

    /// Sets `cookie_secure`.
    pub fn with_cookie_secure(mut self, secure: bool) -> Self {
        self.cookie_secure = secure;
        self
    }

    /// Sets `cookie_http_only`.
    pub fn with_cookie_http_only(mut self, http_only: bool) -> Self {
        self.cookie_http_only = http_only;
        self
    }

    /// Sets `cookie_same_site`.
    pub fn with_cookie_same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.cookie_same_site = same_site;
        self
    }

    /// Sets `expire_at_browser_close`.
    pub fn with_expire_at_browser_close(mut self, yes: bool) -> Self {
        self.expire_at_browser_close = yes;
        self
    }

    /// Sets `save_every_request`.
    pub fn with_save_every_request(mut self, yes: bool) -> Self {
        self.save_every_request = yes;
        self
    }

    /// Sets `store_timeout`.
    pub fn with_store_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// Sets `shared_with_django`.
    pub fn with_shared_with_django(mut self, shared: bool) -> Self {
        self.shared_with_django = shared;
        self
    }

    /// Sets `max_session_size`.
    pub fn with_max_session_size(mut self, bytes: Option<usize>) -> Self {
        self.max_session_size = bytes;
        self
    }

    /// Sets `absolute_max_age`.
    pub fn with_absolute_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.absolute_max_age = max_age;
        self
    }

    /// Sets `cache_control_no_store`.
    pub fn with_cache_control_no_store(mut self, yes: bool) -> Self {
        self.cache_control_no_store = yes;
        self
    }

    /// Sets `cookie_partitioned`.
    pub fn with_cookie_partitioned(mut self, yes: bool) -> Self {
        self.cookie_partitioned = yes;
        self
    }

    /// Checks that browsers will keep the cookie this configuration describes:
    /// the name is an RFC 6265 token; domain and path hold no `;`, control character or
    /// non-ASCII; `SameSite=None`, `Partitioned` and the `__Secure-`/`__Host-` prefixes come with `Secure`;
    /// a `__Host-` cookie has no domain and the path `/`. Django would start and then lose
    /// every session silently; here it is an error at startup.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |msg: String| Err(Error::Config(msg));
        if self.cookie_name.is_empty() || !self.cookie_name.bytes().all(is_token_byte) {
            return fail(format!(
                "cookie_name {:?} is not an RFC 6265 token",
                self.cookie_name
            ));
        }
        let is_attr_safe = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';');
        if let Some(domain) = &self.cookie_domain
            && (domain.is_empty() || !is_attr_safe(domain))
        {
            return fail(format!("cookie_domain {domain:?} is not a valid domain"));
        }
        if !self.cookie_path.starts_with('/') || !is_attr_safe(&self.cookie_path) {
            return fail(format!(
                "cookie_path {:?} must start with '/' and hold no ';' or control characters",
                self.cookie_path
            ));
        }
        if self.cookie_same_site == Some(SameSite::None) && !self.cookie_secure {
            return fail(
                "cookie_same_site None needs cookie_secure: browsers reject it otherwise".into(),
            );
        }
        if self.cookie_partitioned && !self.cookie_secure {
            return fail(
                "cookie_partitioned needs cookie_secure: browsers reject it otherwise".into(),
            );
        }
        let host = self.cookie_name.starts_with("__Host-");
        if (host || self.cookie_name.starts_with("__Secure-")) && !self.cookie_secure {
            return fail(format!(
                "cookie_name {:?} has a __Secure-/__Host- prefix, which needs cookie_secure",
                self.cookie_name
            ));
        }
        if host && (self.cookie_domain.is_some() || self.cookie_path != "/") {
            return fail(format!(
                "cookie_name {:?} has the __Host- prefix, which needs no cookie_domain and cookie_path \"/\"",
                self.cookie_name
            ));
        }
        if self.cookie_age.is_negative() {
            return fail("cookie_age must not be negative".into());
        }
        if self.absolute_max_age.is_some_and(|a| !a.is_positive()) {
            return fail("absolute_max_age must be positive (or None)".into());
        }
        if self.store_timeout.is_some_and(|t| t.is_zero()) {
            return fail("store_timeout must be positive (or None for no limit)".into());
        }
        self.check_with_cookie_crate()
    }

    /// The cookie the middleware renders for this configuration, read back by the `cookie`
    /// crate's parser: a name, domain or path that a standard parser reads differently
    /// (an attribute value that ends early or swallows the next) fails here, at startup.
    fn check_with_cookie_crate(&self) -> Result<(), Error> {
        let template = crate::middleware::set_cookie::CookieTemplate::new(self);
        let rendered = crate::middleware::set_cookie::set_cookie(
            &template,
            "k2345678",
            Some(self.cookie_age.whole_seconds()),
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .and_then(|value| value.to_str().ok().map(str::to_owned))
        .ok_or_else(|| Error::Config("the session cookie is not a valid header value".into()))?;
        let parsed = cookie::Cookie::parse(rendered.as_str())
            .map_err(|e| Error::Config(format!("the session cookie does not parse: {e}")))?;
        // The crate drops a domain's leading dot, as browsers do.
        let domain = self
            .cookie_domain
            .as_deref()
            .map(|d| d.trim_start_matches('.'));
        let same_site = self.cookie_same_site.map(SameSite::as_str);
        let read_back = parsed.name() == self.cookie_name
            && parsed.value() == "k2345678"
            && parsed.path() == Some(self.cookie_path.as_str())
            && parsed.domain() == domain
            && parsed.http_only() == Some(true).filter(|_| self.cookie_http_only)
            && parsed.secure() == Some(true).filter(|_| self.cookie_secure)
            && parsed.partitioned() == Some(true).filter(|_| self.cookie_partitioned)
            && parsed.same_site().map(|s| s.to_string()).as_deref() == same_site;
        if !read_back {
            return Err(Error::Config(format!(
                "the session cookie {rendered:?} reads back differently: check cookie_name, \
                 cookie_domain and cookie_path"
            )));
        }
        Ok(())
    }
}

/// RFC 6265 / RFC 9110 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_djangos() {
        let c = SessionConfig::default();
        assert_eq!(c.cookie_name, "sessionid");
        assert_eq!(c.cookie_age.whole_seconds(), 1_209_600);
        assert_eq!(c.cookie_domain, None);
        assert_eq!(c.cookie_path, "/");
        assert!(!c.cookie_secure);
        assert!(c.cookie_http_only);
        assert_eq!(c.cookie_same_site, Some(SameSite::Lax));
        assert!(!c.expire_at_browser_close);
        assert!(!c.save_every_request);
        assert!(!c.cache_control_no_store);
        assert!(!c.cookie_partitioned);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn impossible_cookies_are_rejected() {
        let d = SessionConfig::default;
        let bad = [
            d().with_cookie_name(""),
            d().with_cookie_name("session id"),
            d().with_cookie_name("a;b"),
            d().with_cookie_same_site(Some(SameSite::None)),
            d().with_cookie_partitioned(true),
            d().with_cookie_name("__Secure-id"),
            d().with_cookie_name("__Host-id"),
            d().with_cookie_name("__Host-id")
                .with_cookie_secure(true)
                .with_cookie_domain(Some("example.com".into())),
            d().with_cookie_name("__Host-id")
                .with_cookie_secure(true)
                .with_cookie_path("/app"),
            d().with_cookie_path("no-slash"),
            d().with_cookie_path("/a;b"),
            d().with_cookie_domain(Some("ex\nample.com".into())),
            d().with_cookie_age(Duration::seconds(-1)),
            // What only the `cookie` crate's read-back catches: a standard parser trims the
            // spaces, so the browser's cookie would not be the configured one.
            d().with_cookie_domain(Some(" example.com".into())),
            d().with_cookie_path("/app "),
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(Error::Config(_))),
                "{config:?}"
            );
        }
        let good = [
            d().with_cookie_same_site(Some(SameSite::None))
                .with_cookie_secure(true),
            d().with_cookie_name("__Secure-id")
                .with_cookie_secure(true)
                .with_cookie_domain(Some(".example.com".into())),
            d().with_cookie_name("__Host-id").with_cookie_secure(true),
            d().with_cookie_same_site(None),
            d().with_cookie_partitioned(true).with_cookie_secure(true),
            d().with_cookie_name("__Host-id")
                .with_cookie_secure(true)
                .with_cookie_partitioned(true)
                .with_cookie_same_site(Some(SameSite::None)),
        ];
        for config in good {
            assert!(config.validate().is_ok(), "{config:?}");
        }
    }
}
