//! The sessions of this session's user, from a handler: listing them, "log out other
//! devices", and revoking one by its handle (see [`crate::store::user_index`]).

use super::Session;
use crate::store::user_index::{self, Revoke, SessionHandle, UserSession, user_id_of};
use crate::store::{RecordKey, Version};
use crate::{Error, SessionKey};

impl Session {
    /// The live sessions of this session's user, those that would load under this
    /// session's configuration (none past `absolute_max_age`; the user id under the store's
    /// [`user_id_key`](crate::SessionStore::user_id_key), `_auth_user_id` by default), this
    /// one marked [`is_current`](UserSession::is_current) once it is saved. None when no user
    /// is logged in to this session. Fails with [`Error::Unsupported`] on a store that cannot
    /// list them (the signed-cookie store).
    pub async fn user_sessions(&self) -> Result<Vec<UserSession>, Error> {
        let Some((user_id, current)) = self.user_and_record().await? else {
            return Ok(Vec::new());
        };
        let store = &self.shared().store;
        let mut records = store.user_records(&user_id, self.limit()).await?;
        // Only what would load: not past `absolute_max_age`, no malformed expiry.
        let config = &self.shared().config;
        records.retain(|record| super::expiry::is_acceptable(config, &record.data));
        Ok(user_index::listing(records, current.as_ref()))
    }

    /// "Log out other devices": revokes every other session of this session's user, and
    /// keeps this one. How many were revoked (0 when no user is logged in).
    pub async fn revoke_other_sessions(&self) -> Result<usize, Error> {
        let key = self.state().key.clone();
        match &key {
            Some(key) => self.revoke_of_user(Revoke::AllExcept(key)).await,
            // Unsaved: every stored session of the user is another one.
            None => self.revoke_of_user(Revoke::All).await,
        }
    }

    /// Revokes the session of this session's user that `handle` names (from
    /// [`user_sessions`](Self::user_sessions)); whether there was one. A handle of another
    /// user's session revokes nothing. Revoking this very session logs it out, as
    /// [`flush`](Self::flush) does.
    pub async fn revoke_user_session(&self, handle: &SessionHandle) -> Result<bool, Error> {
        let revoked = self.revoke_of_user(Revoke::One(handle)).await? > 0;
        let current = self.state().key.clone();
        if revoked && current.is_some_and(|key| self.handle_of(&key) == *handle) {
            // Already deleted: forget it here too, so the response drops the cookie.
            let mut state = self.state();
            state.clear();
            state.key = None;
            state.version = Version::default();
        }
        Ok(revoked)
    }

    /// The handle of the session `key` on this session's store.
    fn handle_of(&self, key: &SessionKey) -> SessionHandle {
        SessionHandle::of(&self.shared().store.record_key(key))
    }

    async fn revoke_of_user(&self, which: Revoke<'_>) -> Result<usize, Error> {
        let Some((user_id, current)) = self.user_and_record().await? else {
            return Ok(0);
        };
        let store = &self.shared().store;
        let limit = self.limit();
        let records = store.user_records(&user_id, limit).await?;
        let config = Some(&*self.shared().config);
        user_index::revoke(
            records,
            which,
            current.as_ref(),
            config,
            |record| async move { store.delete_record(&record, limit).await },
        )
        .await
    }

    /// This session's user id and its record key (`None` before its first save), or `None`
    /// when no user is logged in.
    async fn user_and_record(&self) -> Result<Option<(String, Option<RecordKey>)>, Error> {
        self.fetch().await?;
        let store = &self.shared().store;
        let mut state = self.state();
        let Some(user_id) = user_id_of(state.data(), store.user_id_key()).map(|u| u.to_text())
        else {
            return Ok(None);
        };
        let current = state.key.as_ref().map(|key| store.record_key(key));
        Ok(Some((user_id, current)))
    }
}
