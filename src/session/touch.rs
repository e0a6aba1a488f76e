//! The middleware's save under `save_every_request`: when the request changed nothing, only
//! the stored record's expiry moves ([`SessionStore::touch`](crate::SessionStore::touch))
//! instead of the whole record being written again.

use std::sync::Arc;

use time::OffsetDateTime;

use super::Session;
use crate::expiry::CREATED_KEY;
use crate::store::SaveOutcome;
use crate::{Error, SessionKey};

impl Session {
    /// What Django's middleware does with `save()` at the end of a request: a session this
    /// request changed is saved; one it did not change, loaded from the store under its key
    /// (the only reason to write is `save_every_request`), is touched: its expiry moves to
    /// the date a save would write, `absolute_max_age` capping it alike, and nothing else.
    /// A touch that finds the record gone fails as a save would
    /// ([`Error::SessionInterrupted`]); one that finds another version saves as after any
    /// lost race. Returns the key the cookie carries from now on.
    pub(crate) async fn save_or_touch_at(&self, now: OffsetDateTime) -> Result<SessionKey, Error> {
        let unchanged = {
            let mut state = self.state();
            match state.key.clone() {
                // `modified` is set by every change; a creation stamp still missing under
                // `absolute_max_age` is a change a save would make.
                Some(key) if !state.modified && self.stamped(state.data()) => {
                    Some((key, Arc::clone(state.data()), state.version.clone()))
                }
                _ => None,
            }
        };
        let Some((key, data, version)) = unchanged else {
            return self.save_at(now).await;
        };
        let record = self.record(data, now)?;
        let store = &self.shared().store;
        match store.touch(&key, &record, &version, self.limit()).await? {
            SaveOutcome::Saved { key, version } => {
                let mut state = self.state();
                state.key = Some(key.clone());
                state.version = version;
                Ok(key)
            }
            SaveOutcome::Gone => {
                self.announce_interrupted();
                Err(Error::SessionInterrupted)
            }
            SaveOutcome::Conflict => self.save_at(now).await,
        }
    }

    /// Whether a save would leave `data` as it is as far as `absolute_max_age` goes.
    fn stamped(&self, data: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.config().absolute_max_age.is_none() || data.contains_key(CREATED_KEY)
    }
}
