//! Sealing session data into a signed cookie value, and opening one: the signature, the
//! signing time and the expiry checks.

use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use super::CookieStore;
use crate::expiry::{self, EXPIRY_KEY, Expiry};
use crate::middleware::set_cookie::MAX_COOKIE_SIZE;
use crate::signing::{self, SigningError};
use crate::store::preserved::Preserved;
use crate::{Error, SessionKey};

/// Whether `value` has the shape of a signed value: `[A-Za-z0-9_\-.:]`, at least two `:`,
/// at most `MAX_COOKIE_SIZE` bytes.
pub(super) fn is_signed_value(value: &str) -> bool {
    value.len() <= MAX_COOKIE_SIZE
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        && value.bytes().filter(|&b| b == b':').count() >= 2
}

/// Why a cookie value loads as no session: a category only, never the value.
fn reason(error: &SigningError) -> &'static str {
    match error {
        SigningError::BadSignature => "bad signature",
        SigningError::Expired { .. } => "older than the cookie age",
        SigningError::Malformed(_) => "malformed payload",
    }
}

impl CookieStore {
    /// Checks `signed` against the current secret and the fallbacks. Every key is tried
    /// whichever one matches, so timing does not tell them apart.
    fn unsign<'a>(&self, signed: &'a str, now: i64) -> Result<(&'a str, i64), SigningError> {
        let max_age = Some(self.inner.cookie_age.whole_seconds());
        let current = self.inner.signer.unsign_at(signed, max_age, now);
        let fallback = self
            .inner
            .fallbacks
            .as_ref()
            .map(|f| f.unsign_at(signed, max_age, now));
        match (current, fallback) {
            (Err(SigningError::BadSignature), Some(fallback)) => fallback,
            (current, _) => current,
        }
    }

    /// The data in `signed` as of `now` and the instant it stops loading, or why it is no
    /// session.
    pub(super) fn open(
        &self,
        signed: &str,
        now: OffsetDateTime,
    ) -> Result<(Map<String, Value>, Preserved, OffsetDateTime), &'static str> {
        let (payload, timestamp) = self
            .unsign(signed, now.unix_timestamp())
            .map_err(|e| reason(&e))?;
        let (data, preserved) =
            signing::decode_payload_preserving(payload).map_err(|e| reason(&e))?;
        let expiry_date = session_expiry(
            &data,
            timestamp,
            now,
            self.inner.cookie_age,
            self.inner.future_leeway,
        )?;
        Ok((data, preserved, expiry_date))
    }

    /// The signed cookie value for `data` at `now` (Unix seconds), or
    /// [`Error::CookieTooLarge`] when the cookie would not fit.
    pub(super) fn seal(
        &self,
        data: &Map<String, Value>,
        preserved: &Preserved,
        now: i64,
    ) -> Result<SessionKey, Error> {
        let value = if preserved.is_empty() {
            self.inner.signer.dumps_at(data, now, true)
        } else {
            self.inner
                .signer
                .dumps_json_at(&preserved.to_django_json(data), now, true)
        }
        .map_err(Error::store)?;
        fits_in_a_cookie(&self.inner.cookie_name, &value, data)?;
        Ok(SessionKey::from_validated(value))
    }
}

/// When a session sealed at `sealed_at` (Unix seconds) stops loading, or why it already
/// has as of `now`: older than `cookie_age`, sealed beyond `future_leeway` ahead of `now`,
/// past its custom expiry (`_session_expiry`, computed from the sealing time, and never
/// later than the cookie age), or with a `_session_expiry` of the wrong type. What the
/// signed and the encrypted cookie stores both check once the cookie is authentic.
pub(super) fn session_expiry(
    data: &Map<String, Value>,
    sealed_at: i64,
    now: OffsetDateTime,
    cookie_age: Duration,
    future_leeway: Duration,
) -> Result<OffsetDateTime, &'static str> {
    let custom = match data.get(EXPIRY_KEY).map(Expiry::from_value) {
        None => None,
        Some(Ok(expiry)) => expiry,
        Some(Err(_)) => return Err("malformed _session_expiry"),
    };
    let sealed_at =
        OffsetDateTime::from_unix_timestamp(sealed_at).map_err(|_| "signing time out of range")?;
    if sealed_at > now.saturating_add(future_leeway) {
        return Err("signed in the future, beyond the clock-skew leeway");
    }
    // Django's `max_age` check: whole seconds, older than the age is expired.
    if now
        .unix_timestamp()
        .saturating_sub(sealed_at.unix_timestamp())
        > cookie_age.whole_seconds()
    {
        return Err("older than the cookie age");
    }
    // The cookie age caps every session.
    let mut expiry_date = sealed_at.saturating_add(cookie_age);
    // A custom expiry may end it sooner; browser close (0) means the cookie age.
    if let Some(expiry @ (Expiry::Inactivity(_) | Expiry::At(_))) = custom {
        let custom_date = expiry::expiry_date(sealed_at, Some(&expiry), cookie_age);
        if custom_date <= now {
            return Err("custom expiry passed");
        }
        expiry_date = expiry_date.min(custom_date);
    }
    Ok(expiry_date)
}

/// [`Error::CookieTooLarge`] (logged) unless `name=value` fits in `MAX_COOKIE_SIZE` bytes.
pub(super) fn fits_in_a_cookie(
    name: &str,
    value: &str,
    data: &Map<String, Value>,
) -> Result<(), Error> {
    let size = name.len() + 1 + value.len();
    if size > MAX_COOKIE_SIZE {
        tracing::error!(
            size,
            limit = MAX_COOKIE_SIZE,
            keys = data.len(),
            "session too large for a cookie; not saved"
        );
        return Err(Error::CookieTooLarge {
            size,
            limit: MAX_COOKIE_SIZE,
        });
    }
    Ok(())
}
