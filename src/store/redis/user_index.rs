//! The Redis store's user index: a hash per user, `<prefix>user:<user id>`, whose fields are
//! the record keys of the user's sessions and whose values are when each was last written
//! (Unix milliseconds). Every create, save and touch of a session whose data names a user
//! writes it: on a single node in the same script as the record (`scripts.rs`), so the two
//! never disagree; on a Redis Cluster, where the hash is in another slot, in a script of its
//! own sent just before the record's write, so that the index never misses a live session.
//! The hash lives at least as long as the longest session it names.
//!
//! Listing is index-then-verify: each field's record is read and kept only when it is live
//! and still names the user. A field whose record is gone is dropped from the hash (on a
//! cluster only once it is a minute old, as its record's create may still be on its way); a
//! field whose record now names another user is skipped and left to expire with the hash.
//!
//! Django's `cache` engine writes sessions without the index: a store that shares Redis with
//! Django ([`with_user_scan`](RedisStore::with_user_scan), which
//! [`DjangoConfig`](crate::django::DjangoConfig) turns on) lists by a `SCAN` of every session
//! key instead, and does not write the index at all.

use std::collections::HashMap;

use redis::Value;
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

use super::RedisStore;
use super::cached_ops::Via;
use super::connection::Connection;
use super::scripts::{INDEX_LUA, INDEX_SCRIPT};
use crate::store::user_index::{belongs_to, user_id_of};
use crate::store::{LoadedRecord, RecordKey, SessionStore, UserRecord};
use crate::{Error, SessionKey};

/// Infix between the prefix and the user id: a `:` never occurs in a session key, so no
/// session's Redis key is ever an index's.
const INDEX_INFIX: &str = "user:";
/// How old a cluster index field whose record is missing must be before listing drops it:
/// far longer than a create takes to follow its index write.
const PRUNE_AFTER_MS: i64 = 60_000;
/// How many keys one `SCAN` step asks for, and one `MGET` reads.
const SCAN_BATCH: usize = 500;

/// What a write of a session's record sends for the user index.
pub(super) struct IndexWrite {
    /// The record's key, then the index's when it goes in the same script.
    pub(super) keys: Vec<String>,
    /// The extra script arguments (the member and the time), when it does.
    pub(super) member: Option<String>,
}

impl IndexWrite {
    /// The member and the time as script arguments (empty without an index in the script).
    pub(super) fn args(&self) -> (&[u8], String) {
        match &self.member {
            Some(member) => (member.as_bytes(), now_ms().to_string()),
            None => (&[], String::new()),
        }
    }
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

impl RedisStore {
    /// The Redis key of the index of the user `user_id`.
    fn index_key(&self, user_id: &str) -> String {
        format!("{}{INDEX_INFIX}{user_id}", self.prefix)
    }

    /// The Redis key of the record keyed `record_key`.
    fn record_redis_key(&self, record_key: &RecordKey) -> String {
        format!("{}{}", self.prefix, record_key.as_str())
    }

    /// The keys and arguments of a write of `key`'s record holding `data`, alive `ttl_ms`.
    /// On a cluster, writes the index entry first (see the module docs).
    pub(super) async fn index_write(
        &self,
        key: &SessionKey,
        data: &Map<String, Json>,
        ttl_ms: i64,
    ) -> Result<IndexWrite, Error> {
        let mut keys = vec![self.redis_key(key)];
        // A store that lists by scanning never reads the index: nothing to keep.
        let user = user_id_of(data, &self.user_id_key).filter(|_| ttl_ms > 0 && !self.user_scan);
        let Some(user) = user else {
            return Ok(IndexWrite { keys, member: None });
        };
        let index = self.index_key(&user.to_text());
        let member = self.record_key(key).as_str().to_owned();
        if matches!(self.connection, Connection::Cluster(_)) {
            let mut via = Via::Store(self.connection.clone());
            let ttl = ttl_ms.to_string();
            let _: i64 = self
                .script(
                    &mut via,
                    (INDEX_LUA, &INDEX_SCRIPT),
                    &[index],
                    &[
                        ttl.as_bytes(),
                        member.as_bytes(),
                        now_ms().to_string().as_bytes(),
                    ],
                )
                .await?;
            return Ok(IndexWrite { keys, member: None });
        }
        keys.push(index);
        Ok(IndexWrite {
            keys,
            member: Some(member),
        })
    }

    /// The user's live records: by a scan when the store shares Redis with Django, otherwise
    /// from the index, verified (see the module docs).
    pub(super) async fn indexed_user_records(
        &self,
        user_id: &str,
    ) -> Result<Vec<UserRecord>, Error> {
        if self.user_scan {
            return self.scanned_user_records(user_id).await;
        }
        let index = self.index_key(user_id);
        let fields: HashMap<String, i64> = self.query(redis::cmd("HGETALL").arg(&index)).await?;
        let cluster = matches!(self.connection, Connection::Cluster(_));
        let now = now_ms();
        let mut found = Vec::new();
        let mut gone = Vec::new();
        for (member, saved_ms) in fields {
            let record_key = RecordKey::new(member);
            match self.load_record(&record_key).await? {
                Some(record) if belongs_to(&record.data, &self.user_id_key, user_id) => {
                    found.push(UserRecord {
                        record_key,
                        data: record.data,
                        expiry_date: record.expiry_date,
                        last_saved: OffsetDateTime::from_unix_timestamp_nanos(
                            i128::from(saved_ms) * 1_000_000,
                        )
                        .ok(),
                    });
                }
                Some(_) => {}
                None if !cluster || now - saved_ms > PRUNE_AFTER_MS => gone.push(record_key),
                None => {}
            }
        }
        if !gone.is_empty() {
            let mut hdel = redis::cmd("HDEL");
            hdel.arg(&index);
            for record_key in &gone {
                hdel.arg(record_key.as_str());
            }
            let _: i64 = self.query(&hdel).await?;
        }
        Ok(found)
    }

    /// The record keyed `record_key`, read from Redis (never from the local cache, which
    /// may lag behind another instance's write).
    async fn load_record(&self, record_key: &RecordKey) -> Result<Option<LoadedRecord>, Error> {
        let stored: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.record_redis_key(record_key)))
            .await?;
        Ok(stored.and_then(|bytes| self.decode(bytes)))
    }

    /// Every session key under the prefix, read and decoded in batches, kept when it names
    /// the user: Django's sessions included. A single node only (see `with_user_scan`).
    async fn scanned_user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut cursor = 0_u64;
        let mut found = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_BATCH),
                )
                .await?;
            let sessions: Vec<String> = keys
                .into_iter()
                .filter(|full| {
                    full.strip_prefix(&*self.prefix)
                        .is_some_and(|rest| self.parse_key(rest).is_some())
                })
                .collect();
            if !sessions.is_empty() {
                let values: Vec<Value> = self.query(redis::cmd("MGET").arg(&sessions)).await?;
                for (full, value) in sessions.iter().zip(values) {
                    let Value::BulkString(bytes) = value else {
                        continue;
                    };
                    let Some(record) = self.decode(bytes) else {
                        continue;
                    };
                    if belongs_to(&record.data, &self.user_id_key, user_id) {
                        found.push(UserRecord {
                            record_key: RecordKey::new(&full[self.prefix.len()..]),
                            data: record.data,
                            expiry_date: None,
                            last_saved: None,
                        });
                    }
                }
            }
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }
}

/// `text` with the characters `SCAN MATCH` reads as a pattern escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_characters_of_the_prefix_are_escaped() {
        assert_eq!(super::glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:");
    }
}
