//! `process_response`'s output: `Set-Cookie` and `Vary` exactly as Django writes them.
//!
//! The attributes come in Django's order (Python's `http.cookies` sorts them: `Domain`,
//! `expires`, `HttpOnly`, `Max-Age`, `Partitioned`, `Path`, `SameSite`, `Secure`; Python 3.14
//! added `Partitioned`), which is not the order
//! the `cookie` crate renders; the parts only the configuration decides are joined once, so
//! that writing a cookie is a handful of copies. `benches/set_cookie.rs`, 2026-12-02 on the
//! 2-core CI machine: this template 72 ns a cookie, the `cookie` crate building and
//! rendering the same one 303 ns (231 ns more, over the 20 ns a request the crate may cost).
//! The crate does check every configuration: [`SessionConfig::validate`] parses the cookie
//! rendered here back with it.

use http::header::VARY;
use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use crate::SessionConfig;
use crate::config::SameSite;

/// The most bytes of `name=value` browsers keep in one cookie.
pub(crate) const MAX_COOKIE_SIZE: usize = 4096;

const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Appends the RFC 1123 date Django writes in `expires` (`Fri, 11 Dec 2026 01:55:15 GMT`).
/// By hand, from the Unix time, into a fixed layout (`benches/set_cookie.rs`, 2026-12-02:
/// 22 ns, against 61 ns for `httpdate::fmt_http_date` and 109 ns for `time`'s formatter;
/// both over the 20 ns a request a crate may cost more). Pinned against `time`'s formatter
/// in the tests below.
pub(crate) fn push_http_date(out: &mut Vec<u8>, seconds: i64) {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    // Saturated dates stay within years 0..=9999 in practice; clamp for the format's sake.
    let year = year.clamp(0, 9999) as u32;
    let mut date = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    // 1970-01-01 was a Thursday.
    date[0..3].copy_from_slice(WEEKDAYS[(days + 3).rem_euclid(7) as usize]);
    put_two_digits(&mut date[5..7], day);
    date[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    put_two_digits(&mut date[12..14], year / 100);
    put_two_digits(&mut date[14..16], year % 100);
    put_two_digits(&mut date[17..19], of_day / 3600);
    put_two_digits(&mut date[20..22], of_day / 60 % 60);
    put_two_digits(&mut date[23..25], of_day % 60);
    out.extend_from_slice(&date);
}

/// Writes `n` (below 100) as two decimal digits.
fn put_two_digits(out: &mut [u8], n: u32) {
    // Two single decimal digits.
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): `(year, month 1..=12, day 1..=31)`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut start = digits.len();
    while n > 0 {
        start -= 1;
        // A single decimal digit.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[start.min(digits.len() - width.min(digits.len()))..]);
}

/// The parts of the session's `Set-Cookie` that only the configuration decides, joined
/// once, so that writing a cookie is a handful of copies.
#[derive(Debug)]
pub(crate) struct CookieTemplate {
    /// `name=`.
    head: Box<[u8]>,
    /// `; Domain=…` (when set) and `; expires=`.
    before_date: Box<[u8]>,
    /// `; HttpOnly` (when set) and `; Max-Age=`.
    before_age: Box<[u8]>,
    /// `; Domain=…` and `; HttpOnly`, for a browser-length cookie.
    without_age: Box<[u8]>,
    /// `; Partitioned`, `; Path=…`, `; SameSite=…` and `; Secure`, as configured.
    tail: Box<[u8]>,
    /// The whole `Set-Cookie` that deletes the cookie: it depends on the configuration only.
    pub(crate) removal: Option<HeaderValue>,
}

impl CookieTemplate {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        let mut domain = Vec::new();
        if let Some(d) = &config.cookie_domain {
            domain.extend_from_slice(b"; Domain=");
            domain.extend_from_slice(d.as_bytes());
        }
        let http_only: &[u8] = if config.cookie_http_only {
            b"; HttpOnly"
        } else {
            b""
        };
        let mut tail = Vec::new();
        push_tail(&mut tail, config, config.cookie_secure);
        Self {
            head: [config.cookie_name.as_bytes(), b"="].concat().into(),
            before_date: [&domain[..], b"; expires="].concat().into(),
            before_age: [http_only, b"; Max-Age="].concat().into(),
            without_age: [&domain[..], http_only].concat().into(),
            tail: tail.into(),
            removal: removal(config),
        }
    }
}

/// `Set-Cookie` for the session, in Django's attribute order: `Domain`, `expires`,
/// `HttpOnly`, `Max-Age`, `Partitioned`, `Path`, `SameSite`, `Secure`. `max_age` is `None` for a
/// browser-length cookie.
pub(crate) fn set_cookie(
    template: &CookieTemplate,
    value: &str,
    max_age: Option<i64>,
    now: OffsetDateTime,
) -> Option<HeaderValue> {
    // Built in a buffer kept per thread, then copied once into the header's exact-size
    // allocation (a `Vec` handed over with spare capacity would cost a second one).
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|out| {
        out.clear();
        write_set_cookie(out, template, value, max_age, now);
        let header = HeaderValue::from_bytes(out).ok();
        if out.capacity() > MAX_COOKIE_SIZE * 2 {
            // A huge cookie was refused later anyway; don't keep its buffer.
            *out = Vec::new();
        }
        header
    })
}

fn write_set_cookie(
    out: &mut Vec<u8>,
    template: &CookieTemplate,
    value: &str,
    max_age: Option<i64>,
    now: OffsetDateTime,
) {
    out.extend_from_slice(&template.head);
    out.extend_from_slice(value.as_bytes());
    match max_age {
        Some(age) => {
            out.extend_from_slice(&template.before_date);
            push_http_date(out, now.unix_timestamp().saturating_add(age));
            out.extend_from_slice(&template.before_age);
            if age < 0 {
                out.push(b'-');
            }
            // Ages beyond u32 (136 years) are clamped; Django's are two weeks by default.
            push_digits(
                out,
                u32::try_from(age.unsigned_abs()).unwrap_or(u32::MAX),
                1,
            );
        }
        None => out.extend_from_slice(&template.without_age),
    }
    out.extend_from_slice(&template.tail);
}

/// The `Set-Cookie` that deletes the session cookie: Django's `delete_cookie` (same path,
/// domain and SameSite, expired in 1970, `Max-Age=0`), except that `Secure`, `HttpOnly` and
/// `Partitioned` follow the configuration too: browsers ignore a `__Host-`/`__Secure-`
/// removal without `Secure`, and a partitioned cookie is only removed by a partitioned one.
pub(crate) fn removal(config: &SessionConfig) -> Option<HeaderValue> {
    let mut out = Vec::with_capacity(config.cookie_name.len() + 112);
    out.extend_from_slice(config.cookie_name.as_bytes());
    out.push(b'=');
    if let Some(domain) = &config.cookie_domain {
        out.extend_from_slice(b"; Domain=");
        out.extend_from_slice(domain.as_bytes());
    }
    out.extend_from_slice(b"; expires=Thu, 01 Jan 1970 00:00:00 GMT");
    if config.cookie_http_only {
        out.extend_from_slice(b"; HttpOnly");
    }
    out.extend_from_slice(b"; Max-Age=0");
    let secure = config.cookie_secure
        || config.cookie_name.starts_with("__Secure-")
        || config.cookie_name.starts_with("__Host-")
        || config.cookie_same_site == Some(SameSite::None);
    push_tail(&mut out, config, secure);
    HeaderValue::try_from(out).ok()
}

fn push_tail(out: &mut Vec<u8>, config: &SessionConfig, secure: bool) {
    if config.cookie_partitioned {
        out.extend_from_slice(b"; Partitioned");
    }
    out.extend_from_slice(b"; Path=");
    out.extend_from_slice(config.cookie_path.as_bytes());
    if let Some(same_site) = config.cookie_same_site {
        out.extend_from_slice(b"; SameSite=");
        out.extend_from_slice(same_site.as_str().as_bytes());
    }
    if secure {
        out.extend_from_slice(b"; Secure");
    }
}

/// Django's `patch_vary_headers(response, ("Cookie",))`: keeps the existing values, adds
/// `Cookie` once (case-insensitively), and leaves a `*` alone.
pub(crate) fn add_vary_cookie(headers: &mut HeaderMap) {
    if let http::header::Entry::Vacant(vacant) = headers.entry(VARY) {
        // The usual case, in one lookup.
        vacant.insert(HeaderValue::from_static("Cookie"));
        return;
    }
    let mut existing: Vec<&str> = Vec::new();
    for value in headers.get_all(VARY) {
        let Ok(text) = value.to_str() else { continue };
        existing.extend(text.split(',').map(str::trim).filter(|s| !s.is_empty()));
    }
    if existing
        .iter()
        .any(|v| *v == "*" || v.eq_ignore_ascii_case("cookie"))
    {
        if existing.contains(&"*") && headers.get_all(VARY).iter().count() > 1 {
            headers.insert(VARY, HeaderValue::from_static("*"));
        }
        return;
    }
    if existing.is_empty() {
        headers.insert(VARY, HeaderValue::from_static("Cookie"));
        return;
    }
    let merged = format!("{}, Cookie", existing.join(", "));
    if let Ok(value) = HeaderValue::try_from(merged) {
        headers.insert(VARY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SameSite;
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn set_cookie_is_djangos_rendering() {
        let now = datetime!(2026-11-27 01:55:15 UTC);
        let config = SessionConfig::default();
        let v = set_cookie(
            &CookieTemplate::new(&config),
            "ld2xyabcdefgh",
            Some(1_209_600),
            now,
        )
        .unwrap();
        assert_eq!(
            v,
            "sessionid=ld2xyabcdefgh; expires=Fri, 11 Dec 2026 01:55:15 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
        );
        let v = set_cookie(&CookieTemplate::new(&config), "ld2xyabcdefgh", None, now).unwrap();
        assert_eq!(v, "sessionid=ld2xyabcdefgh; HttpOnly; Path=/; SameSite=Lax");
        let v = set_cookie(&CookieTemplate::new(&config), "k2345678", Some(-10), now).unwrap();
        assert_eq!(
            v,
            "sessionid=k2345678; expires=Fri, 27 Nov 2026 01:55:05 GMT; HttpOnly; Max-Age=-10; Path=/; SameSite=Lax"
        );
        let config = SessionConfig::default()
            .with_cookie_domain(Some(".example.local".into()))
            .with_cookie_path("/example/")
            .with_cookie_secure(true)
            .with_cookie_http_only(false)
            .with_cookie_same_site(Some(SameSite::Strict));
        let v = set_cookie(&CookieTemplate::new(&config), "k2345678", None, now).unwrap();
        assert_eq!(
            v,
            "sessionid=k2345678; Domain=.example.local; Path=/example/; SameSite=Strict; Secure"
        );
        let config = SessionConfig::default()
            .with_cookie_secure(true)
            .with_cookie_partitioned(true)
            .with_cookie_same_site(Some(SameSite::None));
        let v = set_cookie(&CookieTemplate::new(&config), "k2345678", Some(60), now).unwrap();
        assert_eq!(
            v,
            "sessionid=k2345678; expires=Fri, 27 Nov 2026 01:56:15 GMT; HttpOnly; Max-Age=60; Partitioned; Path=/; SameSite=None; Secure"
        );
        assert_eq!(
            removal(&config).unwrap(),
            "sessionid=; expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Max-Age=0; Partitioned; Path=/; SameSite=None; Secure"
        );
    }

    #[test]
    fn http_dates_match_time_s_formatter() {
        let reference = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let mut t = datetime!(1970-01-01 00:00:00 UTC);
        for _ in 0..2_000 {
            let mut out = Vec::new();
            push_http_date(&mut out, t.unix_timestamp());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                t.format(reference).unwrap()
            );
            t += Duration::seconds(86_413 * 7 + 3_601);
        }
        // Leap centuries, and dates before 1970 and far ahead.
        let mut t = datetime!(1600-02-28 23:59:59 UTC);
        while t.year() < 9999 {
            let mut out = Vec::new();
            push_http_date(&mut out, t.unix_timestamp());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                t.format(reference).unwrap()
            );
            t += Duration::seconds(3_000_017);
        }
        let mut out = Vec::new();
        push_digits(&mut out, 0, 1);
        push_digits(&mut out, 1_209_600, 1);
        push_digits(&mut out, 7, 2);
        push_digits(&mut out, 2026, 4);
        push_digits(&mut out, 987, 4);
        push_digits(&mut out, u32::MAX, 1);
        assert_eq!(out, b"0120960007202609874294967295");
    }

    #[test]
    fn removal_cookie_keeps_path_domain_samesite_and_configured_flags() {
        let v = removal(&SessionConfig::default().with_cookie_http_only(false)).unwrap();
        assert_eq!(
            v,
            "sessionid=; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
        );
        let config = SessionConfig::default()
            .with_cookie_domain(Some(".example.local".into()))
            .with_cookie_path("/example/");
        assert_eq!(
            removal(&config).unwrap(),
            "sessionid=; Domain=.example.local; expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Max-Age=0; Path=/example/; SameSite=Lax"
        );
        let host = SessionConfig::default()
            .with_cookie_name("__Host-s")
            .with_cookie_secure(true);
        assert!(
            removal(&host)
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }

    #[test]
    fn vary_is_merged_once() {
        let vary = |existing: &[&'static str]| {
            let mut h = HeaderMap::new();
            for v in existing {
                h.append(VARY, HeaderValue::from_static(v));
            }
            add_vary_cookie(&mut h);
            h.get_all(VARY)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(vary(&[]), ["Cookie"]);
        assert_eq!(vary(&["Accept-Encoding"]), ["Accept-Encoding, Cookie"]);
        assert_eq!(
            vary(&["Accept-Encoding", "Origin"]),
            ["Accept-Encoding, Origin, Cookie"]
        );
        assert_eq!(
            vary(&["accept-encoding, cookie"]),
            ["accept-encoding, cookie"]
        );
        assert_eq!(vary(&["*"]), ["*"]);
        assert_eq!(vary(&["Origin", "*"]), ["*"]);
    }
}
