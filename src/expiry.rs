//! Session expiry: Django's `set_expiry` values and the age/date arithmetic of
//! `get_expiry_age` and `get_expiry_date`, as pure functions.
//!
//! ```
//! use sessionbase::Expiry;
//! use sessionbase::expiry::{expiry_age, expiry_date};
//! use time::{Duration, macros::datetime};
//!
//! let modification = datetime!(2026-11-27 12:00:00 UTC);
//! let cookie_age = Duration::weeks(2);
//! // No custom expiry: the cookie age.
//! assert_eq!(expiry_age(modification, None, cookie_age), 1_209_600);
//! // An absolute date 9.5 s away: floor of the difference, as Django computes it.
//! let at = Expiry::At(modification + Duration::milliseconds(9_500));
//! assert_eq!(expiry_age(modification, Some(&at), cookie_age), 9);
//! // Inactivity: the number itself; the date moves with the modification time.
//! let idle = Expiry::Inactivity(Duration::seconds(-5));
//! assert_eq!(expiry_age(modification, Some(&idle), cookie_age), -5);
//! assert_eq!(expiry_date(modification, Some(&idle), cookie_age), modification - Duration::seconds(5));
//! ```

use std::fmt::Write as _;

use serde_json::Value;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The session key under which Django keeps a custom expiry.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// The session key under which the session's creation time (Unix seconds) is kept when
/// `SessionConfig::absolute_max_age` is set. Django ignores it; it survives `cycle_key` and
/// goes with `flush`.
pub const CREATED_KEY: &str = "_sessionbase_created";

/// A custom expiry for one session: Django's `set_expiry(value)`.
///
/// | Django | `Expiry` | stored under `_session_expiry` |
/// |---|---|---|
/// | `set_expiry(0)` | `BrowserClose` | `0` |
/// | `set_expiry(300)` | `Inactivity(Duration::seconds(300))` | `300` |
/// | `set_expiry(datetime)` | `At(datetime)` | `"2026-11-27T01:55:12.051589+00:00"` |
/// | `set_expiry(timedelta)` | `Expiry::after(duration)` (an `At`) | as `At` |
/// | `set_expiry(None)` | `None` passed to `Session::set_expiry` | removed |
///
/// Stored values keep Django's forms: an integer for whole seconds of `Inactivity` (a
/// fraction is stored as a float, as Django stores `set_expiry(0.5)`; an inactivity of zero
/// is Django's `0`, which means browser close) and microseconds for `At`.
///
/// ```
/// use sessionbase::Expiry;
/// use time::{Duration, macros::datetime};
///
/// let at = Expiry::At(datetime!(2026-11-27 01:55:12.051589 UTC));
/// assert_eq!(at.to_value(), serde_json::json!("2026-11-27T01:55:12.051589+00:00"));
/// assert_eq!(Expiry::from_value(&serde_json::json!(0)), Ok(Some(Expiry::BrowserClose)));
/// assert_eq!(
///     Expiry::from_value(&serde_json::json!(300)),
///     Ok(Some(Expiry::Inactivity(Duration::seconds(300))))
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The cookie lasts until the browser closes; the store keeps the record for the cookie
    /// age.
    BrowserClose,
    /// The session expires this long after its last save. Negative means already expired.
    Inactivity(Duration),
    /// The session expires at this instant.
    At(OffsetDateTime),
}

/// `_session_expiry` held something Django could not have written there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`_session_expiry` must be an integer, a number or an ISO 8601 date-time string")]
pub struct InvalidExpiry;

impl Expiry {
    /// `At(now + duration)`: what Django stores for `set_expiry(timedelta)`.
    pub fn after(duration: Duration) -> Self {
        Self::At(OffsetDateTime::now_utc().saturating_add(duration))
    }

    /// The JSON value Django stores under `_session_expiry` for this expiry.
    pub fn to_value(&self) -> Value {
        match self {
            Self::BrowserClose => Value::from(0),
            // Whole seconds as Django's int; a fraction as its float (so 0.5 s is not 0).
            Self::Inactivity(d) if d.subsec_nanoseconds() == 0 => Value::from(d.whole_seconds()),
            Self::Inactivity(d) => Value::from(d.as_seconds_f64()),
            Self::At(t) => Value::String(to_python_isoformat(*t)),
        }
    }

    /// Reads a stored `_session_expiry`. `null` counts as no custom expiry, as in Django.
    /// A number that is zero is `BrowserClose`, any other number an `Inactivity`, a string
    /// an `At` (with an offset, or naive and taken as UTC).
    pub fn from_value(value: &Value) -> Result<Option<Self>, InvalidExpiry> {
        match value {
            Value::Null => Ok(None),
            Value::Number(n) => {
                let seconds = if let Some(i) = n.as_i64() {
                    Duration::seconds(i)
                } else {
                    Duration::checked_seconds_f64(n.as_f64().ok_or(InvalidExpiry)?)
                        .ok_or(InvalidExpiry)?
                };
                Ok(Some(if seconds.is_zero() {
                    Self::BrowserClose
                } else {
                    Self::Inactivity(seconds)
                }))
            }
            Value::String(s) => parse_isoformat(s)
                .map(|t| Some(Self::At(t)))
                .ok_or(InvalidExpiry),
            _ => Err(InvalidExpiry),
        }
    }
}

/// Django's `get_expiry_age(modification=…, expiry=…)`, in whole seconds.
///
/// No expiry or `BrowserClose`: the cookie age. `Inactivity(d)`: `d` itself (not relative to
/// `modification`). `At(t)`: `t − modification`, floored toward −∞.
pub fn expiry_age(
    modification: OffsetDateTime,
    expiry: Option<&Expiry>,
    cookie_age: Duration,
) -> i64 {
    match expiry {
        None | Some(Expiry::BrowserClose) => cookie_age.whole_seconds(),
        Some(Expiry::Inactivity(d)) => d.whole_seconds(),
        Some(Expiry::At(t)) => floor_seconds(*t - modification),
    }
}

/// Django's `get_expiry_date(modification=…, expiry=…)`.
///
/// `At(t)`: `t`. `Inactivity(d)`: `modification + d`. Otherwise `modification + cookie_age`.
/// Saturates at the limits of `OffsetDateTime` instead of overflowing.
pub fn expiry_date(
    modification: OffsetDateTime,
    expiry: Option<&Expiry>,
    cookie_age: Duration,
) -> OffsetDateTime {
    match expiry {
        Some(Expiry::At(t)) => *t,
        Some(Expiry::Inactivity(d)) => modification.saturating_add(*d),
        None | Some(Expiry::BrowserClose) => modification.saturating_add(cookie_age),
    }
}

/// Django's `get_expire_at_browser_close()`: the setting when there is no custom expiry,
/// else whether the custom expiry is `0`.
pub fn expire_at_browser_close(expiry: Option<&Expiry>, setting: bool) -> bool {
    match expiry {
        None => setting,
        Some(e) => *e == Expiry::BrowserClose,
    }
}

fn floor_seconds(d: Duration) -> i64 {
    let whole = d.whole_seconds();
    if d.subsec_nanoseconds() < 0 {
        whole - 1
    } else {
        whole
    }
}

/// Python's `datetime.isoformat()` of an aware UTC datetime: microseconds only when
/// non-zero, and always `+00:00`.
pub(crate) fn to_python_isoformat(t: OffsetDateTime) -> String {
    // Python's range in UTC: instants beyond it are clamped rather than written in a form
    // nothing reads back (or, converting to UTC, panicking at the edge of `time`'s range).
    let first = time::macros::datetime!(0001-01-01 00:00:00 UTC);
    let last = time::macros::datetime!(9999-12-31 23:59:59.999999 UTC);
    let t = t.clamp(first, last).to_offset(UtcOffset::UTC);
    let mut out = String::with_capacity(32);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.microsecond() != 0 {
        let _ = write!(out, ".{:06}", t.microsecond());
    }
    out.push_str("+00:00");
    out
}

const DATETIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");
const OFFSET: &[FormatItem<'static>] =
    format_description!("[offset_hour sign:mandatory]:[offset_minute]");

/// Parses what Python's `isoformat()` writes (and `fromisoformat()` reads back): a
/// date-time with optional fraction and an optional `±HH:MM` or `Z` offset. A naive value is
/// taken as UTC (Django's default `USE_TZ = True` never writes one).
pub(crate) fn parse_isoformat(s: &str) -> Option<OffsetDateTime> {
    let (datetime, offset) = if let Some(rest) = s.strip_suffix('Z') {
        (rest, UtcOffset::UTC)
    } else if s.len() > 6
        && s.is_char_boundary(s.len() - 6)
        && matches!(s.as_bytes()[s.len() - 6], b'+' | b'-')
        && s.as_bytes()[s.len() - 3] == b':'
    {
        let (dt, off) = s.split_at(s.len() - 6);
        (dt, UtcOffset::parse(off, OFFSET).ok()?)
    } else {
        (s, UtcOffset::UTC)
    };
    let t = PrimitiveDateTime::parse(datetime, DATETIME)
        .ok()?
        .assume_offset(offset)
        .checked_to_offset(UtcOffset::UTC)?;
    // Python's datetimes have years 1 to 9999: anything else was not written by Django, and
    // could not be written back in the same form.
    (1..=9999).contains(&t.year()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const AGE: Duration = Duration::weeks(2);

    #[test]
    fn age_floors_fractions_toward_minus_infinity_as_django_verified() {
        let m = datetime!(2026-01-01 00:00:00 UTC);
        let at = |ms| Expiry::At(m + Duration::milliseconds(ms));
        assert_eq!(expiry_age(m, Some(&at(9_500)), AGE), 9);
        assert_eq!(expiry_age(m, Some(&at(200)), AGE), 0);
        assert_eq!(expiry_age(m, Some(&at(-500)), AGE), -1);
        assert_eq!(expiry_age(m, Some(&at(-10_000)), AGE), -10);
    }

    #[test]
    fn numeric_expiry_passes_through_and_zero_means_cookie_age() {
        let m = datetime!(2026-01-01 00:00:00 UTC);
        assert_eq!(expiry_age(m, None, AGE), 1_209_600);
        assert_eq!(expiry_age(m, Some(&Expiry::BrowserClose), AGE), 1_209_600);
        let neg = Expiry::Inactivity(Duration::seconds(-5));
        assert_eq!(expiry_age(m, Some(&neg), AGE), -5);
        assert_eq!(expiry_date(m, Some(&neg), AGE), m - Duration::seconds(5));
        assert_eq!(expiry_date(m, Some(&Expiry::BrowserClose), AGE), m + AGE);
        assert_eq!(expiry_date(m, None, AGE), m + AGE);
        let at = datetime!(2030-05-05 05:05:05.000123 UTC);
        assert_eq!(expiry_date(m, Some(&Expiry::At(at)), AGE), at);
    }

    #[test]
    fn browser_close_matrix_from_django_tests() {
        let ten = Expiry::Inactivity(Duration::seconds(10));
        for setting in [false, true] {
            assert!(!expire_at_browser_close(Some(&ten), setting));
            assert!(expire_at_browser_close(
                Some(&Expiry::BrowserClose),
                setting
            ));
            assert_eq!(expire_at_browser_close(None, setting), setting);
        }
    }

    #[test]
    fn huge_values_saturate_instead_of_panicking() {
        let m = datetime!(2026-01-01 00:00:00 UTC);
        let huge = Expiry::from_value(&json!(i64::MAX)).unwrap();
        let _ = expiry_date(m, huge.as_ref(), AGE);
        let tiny = Expiry::from_value(&json!(i64::MIN)).unwrap();
        let _ = expiry_date(m, tiny.as_ref(), AGE);
        assert_eq!(Expiry::from_value(&json!(1e300)), Err(InvalidExpiry));
    }

    #[test]
    fn stored_forms_match_django() {
        assert_eq!(Expiry::BrowserClose.to_value(), json!(0));
        assert_eq!(
            Expiry::Inactivity(Duration::seconds(-10)).to_value(),
            json!(-10)
        );
        assert_eq!(
            Expiry::At(datetime!(2026-11-27 01:55:12.051589 UTC)).to_value(),
            json!("2026-11-27T01:55:12.051589+00:00")
        );
        assert_eq!(
            Expiry::At(datetime!(2026-11-27 01:55:12 UTC)).to_value(),
            json!("2026-11-27T01:55:12+00:00")
        );
        // Other offsets are written in UTC; nanoseconds are cut to Django's microseconds.
        assert_eq!(
            Expiry::At(datetime!(2026-11-27 03:55:12.000000999 +02:00)).to_value(),
            json!("2026-11-27T01:55:12+00:00")
        );
    }

    #[test]
    fn stored_forms_parse_back() {
        let parse = |v: Value| Expiry::from_value(&v);
        assert_eq!(parse(json!(null)), Ok(None));
        assert_eq!(parse(json!(0)), Ok(Some(Expiry::BrowserClose)));
        assert_eq!(parse(json!(0.0)), Ok(Some(Expiry::BrowserClose)));
        assert_eq!(
            parse(json!(1.5)),
            Ok(Some(Expiry::Inactivity(Duration::milliseconds(1500))))
        );
        assert_eq!(
            parse(json!("2026-11-27T01:55:12.051589+00:00")),
            Ok(Some(Expiry::At(datetime!(2026-11-27 01:55:12.051589 UTC))))
        );
        assert_eq!(
            parse(json!("2026-11-27T03:55:12+02:00")),
            Ok(Some(Expiry::At(datetime!(2026-11-27 01:55:12 UTC))))
        );
        assert_eq!(
            parse(json!("2026-11-27T01:55:12")),
            Ok(Some(Expiry::At(datetime!(2026-11-27 01:55:12 UTC))))
        );
        assert_eq!(
            parse(json!("2026-11-27T01:55:12Z")),
            Ok(Some(Expiry::At(datetime!(2026-11-27 01:55:12 UTC))))
        );
        for bad in [
            json!(true),
            json!([1]),
            json!({"a": 1}),
            json!("tomorrow"),
            json!(""),
        ] {
            assert_eq!(parse(bad.clone()), Err(InvalidExpiry), "{bad}");
        }
    }

    #[test]
    fn fractional_inactivity_is_a_float_not_browser_close() {
        let half = Expiry::Inactivity(Duration::milliseconds(500));
        assert_eq!(half.to_value(), json!(0.5));
        assert_eq!(Expiry::from_value(&half.to_value()), Ok(Some(half)));
        assert_eq!(Expiry::Inactivity(Duration::ZERO).to_value(), json!(0));
    }

    #[test]
    fn dates_at_the_edges_never_panic_and_always_read_back() {
        // Python writes these for aware datetimes in other zones; they are past UTC's edges.
        for s in [
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00+01:00",
            "0000-06-01T00:00:00+00:00",
        ] {
            assert_eq!(Expiry::from_value(&json!(s)), Err(InvalidExpiry), "{s}");
        }
        for t in [
            datetime!(-9999-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59 -23:59),
            datetime!(0000-06-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59.999999999 UTC),
        ] {
            let value = Expiry::At(t).to_value();
            assert!(
                matches!(Expiry::from_value(&value), Ok(Some(Expiry::At(_)))),
                "{value}"
            );
        }
    }

    #[test]
    fn microsecond_dates_round_trip_exactly() {
        let t = datetime!(2026-11-27 01:55:12.000001 UTC);
        assert_eq!(
            Expiry::from_value(&Expiry::At(t).to_value()),
            Ok(Some(Expiry::At(t)))
        );
    }
}
