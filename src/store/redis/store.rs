//! `SessionStore` and `CacheStore` for `RedisStore`: one command per operation.

use std::sync::Arc;

use redis::Value;
use time::OffsetDateTime;

use super::RedisStore;
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

impl SessionStore for RedisStore {
    /// Clones share the connection and the prefix (a new prefix is a new allocation).
    fn identity(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.prefix).cast::<u8>() as usize)
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let stored: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.redis_key(key)))
            .await?;
        let Some(bytes) = stored else {
            return Ok(None);
        };
        let Some((data, preserved)) = self.format.decode(&bytes) else {
            return Ok(None);
        };
        Ok(Some(LoadedRecord {
            data: Arc::new(data),
            version: Version::from_bytes(bytes).with_preserved(preserved),
            expiry_date: None,
        }))
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
            let mut set = redis::cmd("SET");
            set.arg(self.redis_key(&key))
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(ttl);
            let reply: Value = self.write(set).await?;
            match reply {
                // The key is taken: draw another.
                Value::Nil => continue,
                Value::Okay => return Ok((key, Version::from_bytes(value))),
                Value::SimpleString(s) if s == "OK" => {
                    return Ok((key, Version::from_bytes(value)));
                }
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
        let answer = self
            .compare_and_swap(self.redis_key(key), expected, &value, ttl)
            .await?;
        Ok(match answer {
            1 => SaveOutcome::Saved {
                key: key.clone(),
                version: Version::from_bytes(value).with_preserved(preserved),
            },
            0 => SaveOutcome::Conflict,
            -1 => SaveOutcome::Gone,
            other => {
                return Err(Error::store(format!(
                    "unexpected reply from the save script: {other}"
                )));
            }
        })
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        let mut del = redis::cmd("DEL");
        del.arg(self.redis_key(key));
        let _: i64 = self.write(del).await?;
        Ok(())
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.query(redis::cmd("EXISTS").arg(self.redis_key(key)))
            .await
    }

    /// Does nothing: every key carries a TTL, and Redis removes expired keys itself.
    async fn clear_expired(&self) -> Result<(), Error> {
        Ok(())
    }
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
        let mut set = redis::cmd("SET");
        set.arg(self.redis_key(key)).arg(value).arg("PX").arg(ttl);
        let _: Value = self.write(set).await?;
        Ok(())
    }
}
