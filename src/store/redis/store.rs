//! `SessionStore` and `CacheStore` for `RedisStore`: one command per operation (see
//! `cached_ops.rs` for where they go and what is cached with a local cache). Each entry
//! point turns the session key into its record key first; everything below uses that.

use std::sync::Arc;
use std::time::Instant;

use redis::Value;
use time::OffsetDateTime;

use super::RedisStore;
use super::cached_ops::{Via, Written};
use super::scripts::{CREATE_LUA, CREATE_SCRIPT, SAVE_LUA, SAVE_SCRIPT, TOUCH_LUA, TOUCH_SCRIPT};
use crate::store::preserved::Preserved;
use crate::store::{
    CacheStore, LoadedRecord, Record, RecordKey, SaveOutcome, SessionStore, UserRecord, Version,
};
use crate::{Error, SessionKey};

/// How many fresh keys `create` draws before giving up. With 165-bit keys a single
/// collision is already unheard of; the bound only guarantees that `create` ends.
const MAX_CREATE_ATTEMPTS: usize = 8;
/// The largest TTL written, in milliseconds (about 3000 years): Redis refuses expiry times
/// that overflow when added to its clock.
const MAX_TTL_MS: i64 = 100_000_000_000_000;

/// Milliseconds from now until `expiry_date`, capped; zero or less when it has passed.
fn ttl_ms(expiry_date: OffsetDateTime) -> i64 {
    let ms = (expiry_date - OffsetDateTime::now_utc()).whole_milliseconds();
    i64::try_from(ms).unwrap_or(i64::MAX).min(MAX_TTL_MS)
}

impl RedisStore {
    /// The record in `bytes` as `load` returns it, or `None` (logged) when it does not decode.
    pub(super) fn decode(&self, bytes: Vec<u8>) -> Option<LoadedRecord> {
        let (data, preserved) = self.format.decode(&bytes)?;
        Some(LoadedRecord {
            data: Arc::new(data),
            version: Version::from_bytes(bytes).with_preserved(preserved),
            expiry_date: None,
        })
    }

    /// `load` without the local cache: one `GET` on the store's connection.
    pub(super) async fn plain_load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let stored: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.full_key(key)))
            .await?;
        Ok(stored.and_then(|bytes| self.decode(bytes)))
    }
}

impl SessionStore for RedisStore {
    /// Clones share the connection and the prefix (a new prefix is a new allocation).
    fn identity(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.prefix).cast::<u8>() as usize)
    }

    fn check_config(&self, config: &crate::SessionConfig) -> Result<(), Error> {
        self.record_keys.check_config("RedisStore", config)
    }

    /// Under a configuration shared with Django, whose writes never update the user index:
    /// lists by `SCAN` (as [`with_user_scan`](RedisStore::with_user_scan)), or on a cluster,
    /// where one `SCAN` reaches one node, refuses to list rather than miss Django's sessions.
    fn configured(&self, config: &crate::SessionConfig) -> Option<Self> {
        if !config.shared_with_django || self.user_scan || self.listing_refused {
            return None;
        }
        let mut store = self.clone();
        if matches!(self.connection, super::connection::Connection::Cluster(_)) {
            store.listing_refused = true;
        } else {
            store.user_scan = true;
        }
        Some(store)
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let key = &*self.record_keys.of(key);
        if self.cache.is_some() {
            self.cached_load(key).await
        } else {
            self.plain_load(key).await
        }
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        let value = self.format.encode(&record.data, &Preserved::default())?;
        let ttl = ttl_ms(record.expiry_date);
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let public = SessionKey::generate()?;
            if ttl <= 0 {
                // Already expired: a record that would never load is not written.
                return Ok((public, Version::from_bytes(value)));
            }
            let key = self.record_keys.of(&public).into_owned();
            let index = self.index_write(&public, &record.data, ttl).await?;
            let (ticket, mut via) = self.begin_write(&key);
            let sent = Instant::now();
            let ttl_arg = ttl.to_string();
            let reply: Result<Value, Error> =
                if matches!(via, Via::Tracking(_)) || index.member.is_some() {
                    // Cached: created and tracked in one step; indexed: created and indexed in
                    // one step (see `scripts.rs`).
                    let (member, now) = index.args();
                    self.script::<i64>(
                        &mut via,
                        (CREATE_LUA, &CREATE_SCRIPT),
                        &index.keys,
                        &[&value, ttl_arg.as_bytes(), member, now.as_bytes()],
                    )
                    .await
                    .map(|created| {
                        if created == 1 {
                            Value::Okay
                        } else {
                            Value::Nil
                        }
                    })
                } else {
                    let mut set = redis::cmd("SET");
                    set.arg(self.full_key(&key))
                        .arg(&value)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl);
                    self.write(&mut via, set).await
                };
            let created = matches!(&reply, Ok(Value::Okay))
                || matches!(&reply, Ok(Value::SimpleString(s)) if s == "OK");
            let written = created.then_some(Written {
                value: &value,
                sent,
                ttl_ms: ttl,
            });
            self.end_write(&key, ticket, written);
            match reply? {
                // The key is taken: draw another.
                Value::Nil => continue,
                _ if created => return Ok((public, Version::from_bytes(value))),
                other => {
                    return Err(Error::store(format!(
                        "unexpected reply to SET NX: {other:?}"
                    )));
                }
            }
        }
        Err(Error::store(format!(
            "{MAX_CREATE_ATTEMPTS} freshly generated session keys were all taken"
        )))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let value = self.format.encode(&record.data, expected.preserved())?;
        let ttl = ttl_ms(record.expiry_date).max(0);
        let preserved = expected.preserved().clone();
        // A version that is not stored bytes (from another store) matches nothing: a stored
        // value is never empty.
        let expected = expected.as_bytes().unwrap_or_default();
        let public = key;
        let index = self.index_write(public, &record.data, ttl).await?;
        let (member, now) = index.args();
        let key = &*self.record_keys.of(key);
        let (ticket, mut via) = self.begin_write(key);
        let sent = Instant::now();
        let ttl_arg = ttl.to_string();
        let answer: Result<i64, Error> = self
            .script(
                &mut via,
                (SAVE_LUA, &SAVE_SCRIPT),
                &index.keys,
                &[expected, &value, ttl_arg.as_bytes(), member, now.as_bytes()],
            )
            .await;
        // Written and live (a TTL of 0 deleted it): the value this instance just wrote is
        // current, and may stay cached.
        let written = (matches!(answer, Ok(1)) && ttl > 0).then_some(Written {
            value: &value,
            sent,
            ttl_ms: ttl,
        });
        self.end_write(key, ticket, written);
        let version = Version::from_bytes(value).with_preserved(preserved);
        outcome(answer?, public, version, "save")
    }

    /// One script, as `save`, that compares the stored value and then only moves the TTL
    /// (`PEXPIRE`), or deletes the key when the TTL is not positive, as `save` does. With a
    /// local cache it is a write of the key like any other, and like a save it leaves the
    /// value in the cache, now with the new deadline: the value stored is the one compared.
    async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let ttl = ttl_ms(record.expiry_date).max(0);
        let ttl_arg = ttl.to_string();
        let value = expected.as_bytes().unwrap_or_default();
        let public = key;
        let index = self.index_write(public, &record.data, ttl).await?;
        let (member, now) = index.args();
        let key = &*self.record_keys.of(key);
        let (ticket, mut via) = self.begin_write(key);
        let sent = Instant::now();
        let answer: Result<i64, Error> = self
            .script(
                &mut via,
                (TOUCH_LUA, &TOUCH_SCRIPT),
                &index.keys,
                &[value, ttl_arg.as_bytes(), member, now.as_bytes()],
            )
            .await;
        let written = (matches!(answer, Ok(1)) && ttl > 0).then_some(Written {
            value,
            sent,
            ttl_ms: ttl,
        });
        self.end_write(key, ticket, written);
        outcome(answer?, public, expected.clone(), "touch")
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.delete_stored(&self.record_keys.of(key)).await
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let key = &*self.record_keys.of(key);
        if self
            .cache
            .as_ref()
            .is_some_and(|tracked| tracked.cache().get(key).is_some())
        {
            return Ok(true);
        }
        self.query(redis::cmd("EXISTS").arg(self.full_key(key)))
            .await
    }

    /// Does nothing: every key carries a TTL, and Redis removes expired keys itself.
    async fn clear_expired(&self) -> Result<(), Error> {
        Ok(())
    }

    fn user_id_key(&self) -> &str {
        &self.user_id_key
    }

    fn record_key(&self, key: &SessionKey) -> RecordKey {
        self.record_keys.record_key(key)
    }

    /// Deletes by the stored key itself (a private id cannot be turned back into a key),
    /// through the local cache as `delete` does.
    async fn delete_record(&self, record_key: &RecordKey) -> Result<(), Error> {
        match record_key.stored() {
            Some(stored) => self.delete_stored(&stored).await,
            None => Ok(()),
        }
    }

    /// From the user's index, each record verified; by a scan with
    /// [`with_user_scan`](RedisStore::with_user_scan) (see [`RedisStore`]).
    async fn user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        if self.listing_refused {
            return Err(Error::Unsupported(
                "list the sessions of a user on a Redis Cluster shared with Django (Django's \
                 sessions are in no index, and SCAN reaches one node)",
            ));
        }
        self.indexed_user_records(user_id).await
    }
}

impl RedisStore {
    /// `DEL` of the record stored under `key` (a record key).
    async fn delete_stored(&self, key: &SessionKey) -> Result<(), Error> {
        let (ticket, mut via) = self.begin_write(key);
        let mut del = redis::cmd("DEL");
        del.arg(self.full_key(key));
        let reply: Result<i64, Error> = self.write(&mut via, del).await;
        self.end_write(key, ticket, None);
        reply?;
        Ok(())
    }
}

/// What the save and touch scripts answered: 1 written, 0 another value, -1 no key.
fn outcome(
    answer: i64,
    key: &SessionKey,
    version: Version,
    script: &str,
) -> Result<SaveOutcome, Error> {
    Ok(match answer {
        1 => SaveOutcome::Saved {
            key: key.clone(),
            version,
        },
        0 => SaveOutcome::Conflict,
        -1 => SaveOutcome::Gone,
        other => {
            return Err(Error::store(format!(
                "unexpected reply from the {script} script: {other}"
            )));
        }
    })
}

impl CacheStore for RedisStore {
    /// `SET key value PX ttl`, replacing whatever is there; a record already expired is
    /// deleted instead.
    async fn put(&self, key: &SessionKey, record: &Record) -> Result<(), Error> {
        let key = &*self.record_keys.of(key);
        let ttl = ttl_ms(record.expiry_date);
        if ttl <= 0 {
            return self.delete_stored(key).await;
        }
        let value = self.format.encode(&record.data, &Preserved::default())?;
        let (ticket, mut via) = self.begin_write(key);
        let mut set = redis::cmd("SET");
        set.arg(self.full_key(key)).arg(value).arg("PX").arg(ttl);
        let reply: Result<Value, Error> = self.write(&mut via, set).await;
        // Not cached: `put` is a cache's fill, seldom read back through this same store.
        self.end_write(key, ticket, None);
        reply?;
        Ok(())
    }

    /// `PEXPIRE key ttl`, which leaves a missing key missing; an expiry already passed
    /// deletes the key instead, as `put` does.
    async fn expire_at(&self, key: &SessionKey, expiry_date: OffsetDateTime) -> Result<(), Error> {
        let key = &*self.record_keys.of(key);
        let ttl = ttl_ms(expiry_date);
        if ttl <= 0 {
            return self.delete_stored(key).await;
        }
        let (ticket, mut via) = self.begin_write(key);
        let mut pexpire = redis::cmd("PEXPIRE");
        pexpire.arg(self.full_key(key)).arg(ttl);
        let reply: Result<i64, Error> = self.write(&mut via, pexpire).await;
        self.end_write(key, ticket, None);
        reply?;
        Ok(())
    }
}
