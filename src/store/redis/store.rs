//! `SessionStore` and `CacheStore` for `RedisStore`: one command per operation (see
//! `cached_ops.rs` for where they go and what is cached with a local cache).

use std::sync::Arc;
use std::time::Instant;

use redis::Value;
use time::OffsetDateTime;

use super::RedisStore;
use super::cached_ops::{Via, Written};
use super::connection::map_err;
use super::scripts::{CREATE_SCRIPT, SAVE_SCRIPT, TOUCH_SCRIPT};
use crate::store::preserved::Preserved;
use crate::store::{CacheStore, LoadedRecord, Record, SaveOutcome, SessionStore, Version};
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
            .query(redis::cmd("GET").arg(self.redis_key(key)))
            .await?;
        Ok(stored.and_then(|bytes| self.decode(bytes)))
    }
}

impl SessionStore for RedisStore {
    /// Clones share the connection and the prefix (a new prefix is a new allocation).
    fn identity(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.prefix).cast::<u8>() as usize)
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
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
            let key = SessionKey::generate()?;
            if ttl <= 0 {
                // Already expired: a record that would never load is not written.
                return Ok((key, Version::from_bytes(value)));
            }
            let (ticket, mut via) = self.begin_write(&key);
            let sent = Instant::now();
            let reply: Result<Value, _> = if matches!(via, Via::Tracking(_)) {
                // Cached: created and tracked in one step (see `scripts.rs`).
                CREATE_SCRIPT
                    .key(self.redis_key(&key))
                    .arg(&value)
                    .arg(ttl)
                    .invoke_async::<i64>(&mut via)
                    .await
                    .map(|created| {
                        if created == 1 {
                            Value::Okay
                        } else {
                            Value::Nil
                        }
                    })
            } else {
                redis::cmd("SET")
                    .arg(self.redis_key(&key))
                    .arg(&value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut via)
                    .await
            };
            let created = matches!(&reply, Ok(Value::Okay))
                || matches!(&reply, Ok(Value::SimpleString(s)) if s == "OK");
            let written = created.then_some(Written {
                value: &value,
                sent,
                ttl_ms: ttl,
            });
            self.end_write(&key, ticket, written);
            match reply.map_err(map_err)? {
                // The key is taken: draw another.
                Value::Nil => continue,
                _ if created => return Ok((key, Version::from_bytes(value))),
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
        let (ticket, mut via) = self.begin_write(key);
        let sent = Instant::now();
        let answer: Result<i64, _> = SAVE_SCRIPT
            .key(self.redis_key(key))
            .arg(expected)
            .arg(&value)
            .arg(ttl)
            .invoke_async(&mut via)
            .await;
        // Written and live (a TTL of 0 deleted it): the value this instance just wrote is
        // current, and may stay cached.
        let written = (matches!(answer, Ok(1)) && ttl > 0).then_some(Written {
            value: &value,
            sent,
            ttl_ms: ttl,
        });
        self.end_write(key, ticket, written);
        let answer = answer.map_err(map_err)?;
        let version = Version::from_bytes(value).with_preserved(preserved);
        outcome(answer, key, version, "save")
    }

    /// One script, as `save`, that compares the stored value and then only moves the TTL
    /// (`PEXPIRE`), or deletes the key when the TTL is not positive, as `save` does. With a
    /// local cache it is a write of the key like any other: the cached copy goes (its
    /// deadline is the old TTL) and the next load refills it.
    async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let ttl = ttl_ms(record.expiry_date).max(0);
        let (ticket, mut via) = self.begin_write(key);
        let answer: Result<i64, _> = TOUCH_SCRIPT
            .key(self.redis_key(key))
            .arg(expected.as_bytes().unwrap_or_default())
            .arg(ttl)
            .invoke_async(&mut via)
            .await;
        self.end_write(key, ticket, None);
        outcome(answer.map_err(map_err)?, key, expected.clone(), "touch")
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        let (ticket, mut via) = self.begin_write(key);
        let reply: Result<i64, _> = redis::cmd("DEL")
            .arg(self.redis_key(key))
            .query_async(&mut via)
            .await;
        self.end_write(key, ticket, None);
        reply.map_err(map_err)?;
        Ok(())
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        if self
            .cache
            .as_ref()
            .is_some_and(|tracked| tracked.cache().get(key).is_some())
        {
            return Ok(true);
        }
        self.query(redis::cmd("EXISTS").arg(self.redis_key(key)))
            .await
    }

    /// Does nothing: every key carries a TTL, and Redis removes expired keys itself.
    async fn clear_expired(&self) -> Result<(), Error> {
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
        let ttl = ttl_ms(record.expiry_date);
        if ttl <= 0 {
            return self.delete(key).await;
        }
        let value = self.format.encode(&record.data, &Preserved::default())?;
        let (ticket, mut via) = self.begin_write(key);
        let reply: Result<Value, _> = redis::cmd("SET")
            .arg(self.redis_key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl)
            .query_async(&mut via)
            .await;
        // Not cached: `put` is a cache's fill, seldom read back through this same store.
        self.end_write(key, ticket, None);
        reply.map_err(map_err)?;
        Ok(())
    }

    /// `PEXPIRE key ttl`, which leaves a missing key missing; an expiry already passed
    /// deletes the key instead, as `put` does.
    async fn expire_at(&self, key: &SessionKey, expiry_date: OffsetDateTime) -> Result<(), Error> {
        let ttl = ttl_ms(expiry_date);
        if ttl <= 0 {
            return self.delete(key).await;
        }
        let _: i64 = self
            .query(redis::cmd("PEXPIRE").arg(self.redis_key(key)).arg(ttl))
            .await?;
        Ok(())
    }
}
