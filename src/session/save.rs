//! The store operations: `save`, `create`, `delete`, `exists`, `flush`, `cycle_key`, and the
//! read of the record before first use.

use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use super::Session;
use super::chain::LinkHandle;
use super::changes::Changes;
use super::expiry::{created_at, is_acceptable, stored_expiry};
use super::size::check_size;
use super::state::{Locked, empty};
use crate::events::{self, SessionEventKind};
use crate::expiry::{self, CREATED_KEY};
use crate::store::{Data, LoadedRecord, Record, SaveOutcome, Version};
use crate::{Error, SessionKey};

/// How many times a save reloads and re-applies its changes after losing a race.
const MAX_SAVE_ATTEMPTS: u32 = 32;
/// Lost races retried at once after the reload: a loser's reload already holds the winner's
/// write, so only a save that keeps losing (to many other instances) pauses.
const IMMEDIATE_RETRIES: u32 = 3;
/// The longest pause between two attempts of a save that keeps losing races.
const MAX_CONFLICT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(512);

/// A random pause before retry `n` (from 1) of a save that lost a race: uniform over a window
/// that doubles from 1 ms up to [`MAX_CONFLICT_BACKOFF`]. Without it, losers retry in
/// lockstep and each round lets exactly one of them through.
fn conflict_backoff(n: u32) -> std::time::Duration {
    use rand::RngExt as _;
    let window = std::time::Duration::from_millis(1)
        .saturating_mul(1 << n.saturating_sub(1).min(9))
        .min(MAX_CONFLICT_BACKOFF);
    window.mul_f64(rand::rng().random::<f64>())
}

/// A save, decided under the lock and carried out after it.
enum SavePlan {
    /// No key: store the data under a fresh one.
    Create { data: Data, generation: u64 },
    /// Update the record `key` loaded at `version`.
    Update {
        key: SessionKey,
        data: Data,
        version: Version,
        generation: u64,
    },
}

impl Session {
    /// `session.save()`: writes the session. Without a key, this creates one ([`create`]).
    /// With one, it updates the stored record, and fails with
    /// [`Error::SessionInterrupted`] when that record is gone (deleted or expired) rather than
    /// resurrecting it. When a concurrent request saved in between, the record is reloaded
    /// and this request's own changes are applied on top of it, so neither loses a key the
    /// other did not touch (for the same key, the last writer wins).
    ///
    /// [`create`]: Self::create
    pub async fn save(&self) -> Result<(), Error> {
        self.save_at(OffsetDateTime::now_utc()).await.map(drop)
    }

    /// `save()` as of `now`, the request's one clock reading; returns the key the cookie
    /// carries from now on.
    pub(crate) async fn save_at(&self, now: OffsetDateTime) -> Result<SessionKey, Error> {
        let plan = self.plan_save(&mut self.state(), now);
        let creates = matches!(plan, SavePlan::Create { .. });
        let saved = self.execute(plan, now).await;
        self.announce_save(creates, &saved);
        saved
    }

    /// The audit event of a save: a new key, or a record found gone.
    fn announce_save(&self, creates: bool, saved: &Result<SessionKey, Error>) {
        match saved {
            Ok(key) if creates => {
                events::emit_for(self.config(), SessionEventKind::Created, Some(key));
            }
            Err(Error::SessionInterrupted) => self.announce_interrupted(),
            _ => {}
        }
    }

    /// The event of a save or touch that found its record deleted.
    pub(super) fn announce_interrupted(&self) {
        let key = self.state().key.clone();
        events::emit_for(self.config(), SessionEventKind::Interrupted, key.as_ref());
    }

    /// What a save will write, taken under the lock the caller holds.
    fn plan_save(&self, state: &mut Locked<'_>, now: OffsetDateTime) -> SavePlan {
        if state.key.is_none() {
            return self.plan_create(state, now);
        }
        self.stamp_creation(state, now);
        let data = Arc::clone(state.data());
        let generation = state.changes.generation;
        match state.key.clone() {
            Some(key) => SavePlan::Update {
                key,
                data,
                version: state.version.clone(),
                generation,
            },
            // Reading the data dropped a key the store did not know: create instead.
            None => SavePlan::Create { data, generation },
        }
    }

    fn plan_create(&self, state: &mut Locked<'_>, now: OffsetDateTime) -> SavePlan {
        state.accessed = true;
        if state.loaded.is_none() {
            // Django's save(must_create=True) saves what is loaded, or nothing.
            state.fetched = None;
            state.loaded = Some(empty());
        }
        self.stamp_creation(state, now);
        SavePlan::Create {
            data: Arc::clone(state.data()),
            generation: state.changes.generation,
        }
    }

    /// With `absolute_max_age` set, stamps a session that has no creation time yet (a new
    /// one, or one saved before the option was turned on) with the current time.
    fn stamp_creation(&self, state: &mut Locked<'_>, now: OffsetDateTime) {
        if self.config().absolute_max_age.is_some() && !state.data().contains_key(CREATED_KEY) {
            state.set(CREATED_KEY, Value::from(now.unix_timestamp()));
        }
    }

    /// Writes what `plan` says and returns the key the cookie carries from now on.
    async fn execute(&self, plan: SavePlan, now: OffsetDateTime) -> Result<SessionKey, Error> {
        let (key, data, version, generation) = match plan {
            SavePlan::Create { data, generation } => {
                let record = self.record(data, now)?;
                let (key, version) = self.shared().store.create(&record, self.limit()).await?;
                // Django's create() sets `modified` once the record exists.
                return Ok(self.saved(key, version, generation, None, true));
            }
            SavePlan::Update {
                key,
                data,
                version,
                generation,
            } => (key, data, version, generation),
        };
        if !self.shared().store.is_immediate() {
            // Behind I/O, the update waits its turn behind this process's other saves of the
            // key and is written together with them (see `chain.rs`).
            return self.update_in_group(key, version, now).await;
        }
        let record = self.record(Arc::clone(&data), now)?;
        let store = &self.shared().store;
        let (key, version, written) =
            match store.save(&key, &record, &version, self.limit()).await? {
                SaveOutcome::Saved { key, version } => (key, version, None),
                SaveOutcome::Gone => return Err(Error::SessionInterrupted),
                // Another request wrote. Kept out of this future so that the common one stays
                // small.
                SaveOutcome::Conflict => {
                    let rebuild = |fresh: &LoadedRecord| {
                        let mut state = self.state();
                        let mine = Arc::clone(state.data());
                        Ok(state.changes.apply(&fresh.data, &mine))
                    };
                    let (key, version, data) =
                        Box::pin(self.save_after_conflicts(key, rebuild)).await?;
                    (key, version, Some(data))
                }
            };
        Ok(self.saved(key, version, generation, written.as_ref(), false))
    }

    /// This session's place in the chain of `key`: the one it joined when it read the
    /// record, or a new one.
    pub(super) fn link_for(&self, key: &SessionKey) -> LinkHandle {
        match self.state().link.take() {
            Some(link) if link.is_for(key) => link,
            _ => self.shared().chains.join(key),
        }
    }

    /// Records a successful save. `rebased_onto` is the data written when it was not this
    /// session's own (its changes re-applied to a newer record, or written together with
    /// other requests' changes); `created` sets `modified`, as Django's `create()` does.
    pub(super) fn saved(
        &self,
        key: SessionKey,
        version: Version,
        generation: u64,
        rebased_onto: Option<&Data>,
        created: bool,
    ) -> SessionKey {
        let mut state = self.state();
        state.modified |= created;
        if let Some(written) = rebased_onto {
            let loaded = if state.changes.generation == generation {
                Arc::clone(written)
            } else {
                // Changed again while the save ran: those changes stay on top.
                let mine = Arc::clone(state.data());
                state.changes.apply(written, &mine)
            };
            state.loaded = Some(loaded);
        }
        state.key = Some(key.clone());
        state.version = version;
        if state.changes.generation == generation {
            state.changes = Changes::default();
        }
        key
    }

    /// After a lost race: reload, rebuild the data to write on top of the fresh record
    /// (`rebuild` re-applies the changes of the save, or of the group of saves) and save
    /// again, at once for the first few losses and then pausing a little longer each time.
    /// Returns what was written: the key, its version and the data.
    pub(super) async fn save_after_conflicts(
        &self,
        key: SessionKey,
        mut rebuild: impl FnMut(&LoadedRecord) -> Result<Data, Error>,
    ) -> Result<(SessionKey, Version, Data), Error> {
        let store = &self.shared().store;
        for conflicts in 1..MAX_SAVE_ATTEMPTS {
            if conflicts > IMMEDIATE_RETRIES {
                tokio::time::sleep(conflict_backoff(conflicts - IMMEDIATE_RETRIES)).await;
            }
            crate::instruments::save_retry();
            // The same checks as a first load: a record that became unacceptable (too old, a
            // malformed expiry) is gone for this request too.
            let Some(fresh) = store
                .load(&key, self.limit())
                .await?
                .filter(|r| is_acceptable(self.config(), &r.data))
            else {
                return Err(Error::SessionInterrupted);
            };
            let data = rebuild(&fresh)?;
            // After a pause: the expiry counts from now.
            let now = OffsetDateTime::now_utc();
            let record = self.record(Arc::clone(&data), now)?;
            match store
                .save(&key, &record, &fresh.version, self.limit())
                .await?
            {
                SaveOutcome::Saved { key, version } => return Ok((key, version, data)),
                SaveOutcome::Gone => return Err(Error::SessionInterrupted),
                SaveOutcome::Conflict => {}
            }
        }
        tracing::warn!(
            attempts = MAX_SAVE_ATTEMPTS,
            "session save kept losing to concurrent saves"
        );
        Err(Error::Conflict(MAX_SAVE_ATTEMPTS))
    }

    /// `session.create()`: stores the session's current data under a fresh key (the store
    /// never overwrites an existing record) and sets `modified`.
    pub async fn create(&self) -> Result<(), Error> {
        let saved = self.create_key().await;
        self.announce_save(true, &saved);
        saved.map(drop)
    }

    /// `create()` without its event; returns the new key.
    async fn create_key(&self) -> Result<SessionKey, Error> {
        let now = OffsetDateTime::now_utc();
        let plan = self.plan_create(&mut self.state(), now);
        self.execute(plan, now).await
    }

    /// `session.delete()`: removes the stored record of the current key (the key itself
    /// stays; a later save then fails with [`Error::SessionInterrupted`]).
    pub async fn delete(&self) -> Result<(), Error> {
        let key = self.state().key.clone();
        match key {
            Some(key) => self.shared().store.delete(&key, self.limit()).await,
            None => Ok(()),
        }
    }

    /// `session.exists(key)`: whether the store holds a record for `key`. A value that is not
    /// a well-formed key for the store is `false` without asking it.
    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        let store = &self.shared().store;
        match store.parse_key(key) {
            Some(key) => store.exists(&key, self.limit()).await,
            None => Ok(false),
        }
    }

    /// `session.flush()`: deletes the stored record, empties the data and drops the key
    /// (logout). The old key is invalid on the server before this returns; if the store
    /// cannot delete it, the session is left as it was and the error returned.
    pub async fn flush(&self) -> Result<(), Error> {
        self.delete().await?;
        let old = {
            let mut state = self.state();
            state.clear();
            state.version = Version::default();
            state.key.take()
        };
        events::emit_for(self.config(), SessionEventKind::Flushed, old.as_ref());
        Ok(())
    }

    /// `session.cycle_key()`: moves the data to a fresh key and deletes the old record
    /// (call it on login against session fixation). Beyond Django: when the old record is
    /// gone by then (another request logged the session out or revoked it since it was
    /// loaded), the new record is deleted too and this fails with
    /// [`Error::SessionInterrupted`], as a save would, instead of bringing the session back.
    pub async fn cycle_key(&self) -> Result<(), Error> {
        let old = {
            let mut state = self.state();
            state.data();
            state.key.clone()
        };
        let new = self.create_key().await?;
        let config = self.config();
        let Some(old) = old else {
            events::emit_for(config, SessionEventKind::Created, Some(&new));
            return Ok(());
        };
        // Beyond Django: the old record must still be there. A session revoked or logged out
        // by another request since it was loaded would otherwise come back, logged in, under
        // the new key (the compare-and-swap guarantee of saves, kept by the cycle too).
        // A load, not `exists`: a client-side store keeps nothing to look up, yet its old
        // "record" (the cookie) still loads.
        match self.shared().store.load(&old, self.limit()).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                if let Err(error) = self.shared().store.delete(&new, self.limit()).await {
                    tracing::warn!(%error, "cycle_key: could not delete the new record of a session ended meanwhile; it expires by itself");
                }
                {
                    let mut state = self.state();
                    state.clear();
                    state.version = Version::default();
                    state.key = None;
                }
                events::emit_for(config, SessionEventKind::Interrupted, Some(&old));
                return Err(Error::SessionInterrupted);
            }
            Err(error) => {
                events::emit_for(config, SessionEventKind::Created, Some(&new));
                return Err(error);
            }
        }
        if let Err(error) = self.shared().store.delete(&old, self.limit()).await {
            // The new record exists; the old one may too, so the key has not moved yet.
            events::emit_for(config, SessionEventKind::Created, Some(&new));
            return Err(error);
        }
        let (new, old) = (new.as_str().as_bytes(), old.as_str().as_bytes());
        events::emit(config, SessionEventKind::KeyCycled, Some(new), Some(old));
        Ok(())
    }

    /// Reads the record the cookie named, once, without changing any of Django's flags, so
    /// that dictionary operations can then run synchronously. Does nothing when it was read
    /// already, the data is loaded, or there is no key.
    pub(crate) async fn fetch(&self) -> Result<(), Error> {
        let key = {
            let mut state = self.state();
            let Some(key) = state.pending_fetch() else {
                return Ok(());
            };
            // A store that answers at once is read under the lock (stores never take a
            // session's lock, so the order cannot deadlock).
            if let Some(loaded) = self.shared().store.load_now(&key) {
                state.fetched = Some(self.acceptable(loaded?));
                return Ok(());
            }
            key
        };
        // Joined before the read: a save of this process that finishes after it is then
        // known to this session's save.
        let link = self.shared().chains.join(&key);
        let loaded = self.shared().store.load(&key, self.limit()).await?;
        let record = self.acceptable(loaded);
        let mut state = self.state();
        if state.loaded.is_none() && state.fetched.is_none() {
            state.fetched = Some(record);
            state.link = Some(link);
        }
        Ok(())
    }

    fn acceptable(&self, loaded: Option<LoadedRecord>) -> Option<LoadedRecord> {
        loaded.filter(|r| is_acceptable(self.config(), &r.data))
    }

    /// The `store_timeout` every store call is bounded by.
    pub(super) fn limit(&self) -> Option<std::time::Duration> {
        self.config().store_timeout
    }

    /// The record a save writes: `data` and its expiry date as of now. Fails with
    /// [`Error::SessionTooLarge`] beyond `max_session_size`.
    pub(super) fn record(&self, data: Data, now: OffsetDateTime) -> Result<Record, Error> {
        let config = self.config();
        if let Some(limit) = config.max_session_size {
            check_size(&data, limit)?;
        }
        let expiry = stored_expiry(&data);
        let mut expiry_date = expiry::expiry_date(now, expiry.as_ref(), config.cookie_age);
        if let (Some(max_age), Some(created)) = (config.absolute_max_age, created_at(&data)) {
            expiry_date = expiry_date.min(created.saturating_add(max_age));
        }
        Ok(Record { data, expiry_date })
    }
}
