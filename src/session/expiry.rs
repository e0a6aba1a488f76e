//! `set_expiry` and the expiry arithmetic over the session's stored expiry, with
//! `absolute_max_age` as a cap.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::Session;
use super::state::Locked;
use crate::SessionConfig;
use crate::expiry::{self, CREATED_KEY, EXPIRY_KEY, Expiry};

/// The creation time kept in `data` by `absolute_max_age`, if any.
pub(crate) fn created_at(data: &Map<String, Value>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(data.get(CREATED_KEY)?.as_i64()?).ok()
}

/// The custom expiry kept in `data`; a value of the wrong type counts as none.
pub(super) fn stored_expiry(data: &Map<String, Value>) -> Option<Expiry> {
    let value = data.get(EXPIRY_KEY)?;
    Expiry::from_value(value).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring malformed session expiry");
        None
    })
}

/// Whether a stored record may load: a well-formed `_session_expiry`, and no older than
/// `absolute_max_age`.
pub(super) fn is_acceptable(config: &SessionConfig, data: &Map<String, Value>) -> bool {
    if let Some(Err(_)) = data.get(EXPIRY_KEY).map(Expiry::from_value) {
        tracing::warn!("session record has a malformed _session_expiry; treating it as no session");
        return false;
    }
    if let Some(max_age) = config.absolute_max_age {
        match data.get(CREATED_KEY).map(|v| {
            v.as_i64()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        }) {
            Some(None) => {
                tracing::warn!(
                    "session record has a malformed creation time; treating it as no session"
                );
                return false;
            }
            Some(Some(created)) if created.saturating_add(max_age) <= OffsetDateTime::now_utc() => {
                tracing::info!("session outlived absolute_max_age; treating it as no session");
                return false;
            }
            _ => {}
        }
    }
    true
}

impl Session {
    /// `session.set_expiry(value)`. `Some(expiry)` stores it under `_session_expiry` as
    /// Django does; `None` removes it (setting `modified` only when there was one), going
    /// back to the configured policy.
    pub fn set_expiry(&self, expiry: Option<Expiry>) {
        let mut state = self.state();
        match expiry {
            Some(e) => state.set(EXPIRY_KEY, e.to_value()),
            None => {
                state.remove(EXPIRY_KEY);
            }
        }
    }

    /// The custom expiry stored by [`set_expiry`](Self::set_expiry), if any.
    pub fn get_expiry(&self) -> Option<Expiry> {
        self.state().stored_expiry()
    }

    /// `session.get_expiry_age()`: seconds from now until the session expires.
    ///
    /// With `absolute_max_age` set, never beyond the session's absolute deadline.
    pub fn get_expiry_age(&self) -> i64 {
        self.expiry_age_at(OffsetDateTime::now_utc())
    }

    /// `get_expiry_age()` as of `now`, the request's one clock reading.
    pub(crate) fn expiry_age_at(&self, now: OffsetDateTime) -> i64 {
        let mut state = self.state();
        let expiry = state.stored_expiry();
        let deadline = self.absolute_deadline_in(&mut state);
        drop(state);
        let age = self.get_expiry_age_with(now, expiry);
        match deadline {
            Some(deadline) => age.min(expiry::expiry_age(
                now,
                Some(&Expiry::At(deadline)),
                self.config().cookie_age,
            )),
            None => age,
        }
    }

    /// `session.get_expiry_age(modification=…, expiry=…)`. Takes the expiry explicitly (as
    /// Django's `expiry=` argument; `None` means "no custom expiry") and never loads. For the
    /// stored one, pass [`get_expiry`](Self::get_expiry).
    pub fn get_expiry_age_with(&self, modification: OffsetDateTime, expiry: Option<Expiry>) -> i64 {
        expiry::expiry_age(modification, expiry.as_ref(), self.config().cookie_age)
    }

    /// `session.get_expiry_date()`: when the session expires if saved now.
    ///
    /// With `absolute_max_age` set, never beyond the session's absolute deadline.
    pub fn get_expiry_date(&self) -> OffsetDateTime {
        let expiry = self.get_expiry();
        let date = self.get_expiry_date_with(OffsetDateTime::now_utc(), expiry);
        self.absolute_deadline()
            .map_or(date, |deadline| date.min(deadline))
    }

    /// When the session stops being valid however active it stays: its creation time plus
    /// `absolute_max_age`, if that option is set and the session has been saved.
    pub fn absolute_deadline(&self) -> Option<OffsetDateTime> {
        self.config().absolute_max_age?;
        self.absolute_deadline_in(&mut self.state())
    }

    pub(super) fn absolute_deadline_in(&self, state: &mut Locked<'_>) -> Option<OffsetDateTime> {
        let max_age = self.config().absolute_max_age?;
        let created = created_at(state.data())?;
        Some(created.saturating_add(max_age))
    }

    /// `session.get_expiry_date(modification=…, expiry=…)`; see
    /// [`get_expiry_age_with`](Self::get_expiry_age_with).
    pub fn get_expiry_date_with(
        &self,
        modification: OffsetDateTime,
        expiry: Option<Expiry>,
    ) -> OffsetDateTime {
        expiry::expiry_date(modification, expiry.as_ref(), self.config().cookie_age)
    }

    /// `session.get_expire_at_browser_close()`: whether the cookie lasts only until the
    /// browser closes.
    pub fn get_expire_at_browser_close(&self) -> bool {
        let expiry = self.get_expiry();
        expiry::expire_at_browser_close(expiry.as_ref(), self.config().expire_at_browser_close)
    }

    /// `session.get_session_cookie_age()`: the configured cookie age, in seconds.
    pub fn get_session_cookie_age(&self) -> i64 {
        self.config().cookie_age.whole_seconds()
    }
}
