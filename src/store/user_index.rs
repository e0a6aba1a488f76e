//! Every session of a user: listing them and revoking one, all, or all but the current one.
//!
//! A session belongs to the user whose id its data holds under the store's
//! [`user_id_key`](SessionStore::user_id_key) (`_auth_user_id` by default, where
//! `django.contrib.auth` keeps it). A store finds a user's live records with
//! [`user_records`](SessionStore::user_records), through an index where it keeps one or by a
//! scan of every live record otherwise (the way `clear_expired` walks them), and each of them
//! is checked against the user once more before it is listed, so a record whose user changed,
//! that expired, or that was deleted is never listed. Revoking deletes the record, exactly as
//! a logout does: a concurrent save of it finds no record and answers
//! [`SaveOutcome::Gone`](super::SaveOutcome::Gone), so a revoked session is never resurrected.
//!
//! The pages that list sessions see a [`UserSession`]: a [`SessionHandle`] (a digest of the
//! record's key, never the key), the expiry date, when it was last saved (where the store
//! keeps it), whether it is the request's own session, and the data, so that an app can show
//! the note it stored (a user agent, an address).
//!
//! Revoking lists the user's sessions, then deletes those chosen one by one: a session
//! created after the listing began (a login at that very moment) is not among them. Every
//! revocation, from a handler or from the store, goes through one function of this module.
//!
//! | store | how a user's sessions are found |
//! |---|---|
//! | [`RedisStore`](crate::RedisStore) | a hash per user, kept by the save's own script (written first on a cluster); a `SCAN` instead with `with_user_scan`, when Django writes too (`DjangoConfig` sets it) |
//! | SQL stores | a scan of the table's live rows, Django's included; with `with_user_index` (a table Django does not write to), a side table `<table>_user` kept by the saves |
//! | memory, file | a scan of the live records (the memory store's is in memory) |
//! | [`CachedStore`](super::CachedStore), [`CachedDbStore`](super::CachedDbStore) | the persistent store's; revoking drops the cached copies too |
//! | [`CookieStore`](crate::CookieStore) | none: [`Error::Unsupported`] (the sessions live in the browsers) |
//!
//! In a handler, use [`Session::user_sessions`](crate::Session::user_sessions) and
//! [`Session::revoke_other_sessions`](crate::Session::revoke_other_sessions); without a
//! request (after a password reset, say), [`UserSessions`] on the store:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use sessionbase::store::{Revoke, UserSessions};
//! use sessionbase::{MemoryStore, Session, SessionConfig};
//!
//! let store = MemoryStore::new();
//! let laptop = Session::new(store.clone(), SessionConfig::default());
//! laptop.insert("_auth_user_id", "42")?;
//! laptop.insert("note", "Firefox on a laptop")?;
//! laptop.save().await?;
//! let phone = Session::new(store.clone(), SessionConfig::default());
//! phone.insert("_auth_user_id", "42")?;
//! phone.save().await?;
//!
//! // On the laptop: list, then "log out other devices".
//! let listed = laptop.user_sessions().await?;
//! assert_eq!(listed.len(), 2);
//! assert!(listed.iter().any(|s| s.is_current && s.data["note"] == "Firefox on a laptop"));
//! assert_eq!(laptop.revoke_other_sessions().await?, 1);
//! assert_eq!(store.user_sessions("42").await?.len(), 1);
//!
//! // Without a request: every session of user 42.
//! assert_eq!(store.revoke_user_sessions("42", Revoke::All).await?, 1);
//! assert!(store.user_sessions("42").await?.is_empty());
//! # Ok::<(), sessionbase::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Data, SessionStore};
use crate::{Error, SessionKey};

/// The data key that holds the user id when a store is not told another:
/// `django.contrib.auth`'s `SESSION_KEY`.
pub const DEFAULT_USER_ID_KEY: &str = "_auth_user_id";

/// Domain separation for [`SessionHandle`]: a handle is never a digest another part of the
/// crate (or a `private_id` record key) computes.
const HANDLE_DOMAIN: &[u8] = b"sessionbase user-session handle v1\0";
/// Bytes of SHA-256 a handle keeps: 128 bits, as unguessable as needed and short in a URL.
const HANDLE_BYTES: usize = 16;

/// What a store keys a record by: today the session key itself. Built by
/// [`SessionStore::record_key`] only, so that a store that keys its records by something else
/// (a digest of the session key) changes that one function. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RecordKey(String);

impl RecordKey {
    /// A record key as the store spells it.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key as the store spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stored key itself, for a store whose records are keyed by session-key-shaped
    /// strings: what its `delete_record` deletes, never mapped again (a private id cannot
    /// be turned back into a session key).
    #[cfg_attr(
        not(any(
            feature = "memory",
            feature = "file",
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql",
            feature = "redis"
        )),
        allow(dead_code)
    )]
    pub(crate) fn stored(&self) -> Option<SessionKey> {
        SessionKey::parse(&self.0)
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordKey(..)")
    }
}

/// One live record of a user's, as [`SessionStore::user_records`] finds it.
#[derive(Clone, Debug)]
pub struct UserRecord {
    /// What the store keys it by.
    pub record_key: RecordKey,
    /// The session data.
    pub data: Data,
    /// When it expires, when the store reports it.
    pub expiry_date: Option<OffsetDateTime>,
    /// When it was last written, when the store keeps it (the Redis store's index does).
    pub last_saved: Option<OffsetDateTime>,
}

/// An opaque, non-secret name for one of a user's sessions, to put in a page and revoke it
/// with: a digest of the record's key, never the key. The same session has the same handle on
/// every instance and across restarts; a handle cannot be turned back into a key, and
/// revoking by handle only ever revokes a session of the user it is given with.
///
/// ```
/// use sessionbase::store::SessionHandle;
///
/// let handle: SessionHandle = "00112233445566778899aabbccddeeff".parse().unwrap();
/// assert_eq!(handle.to_string(), "00112233445566778899aabbccddeeff");
/// assert!("not a handle".parse::<SessionHandle>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionHandle(String);

impl SessionHandle {
    /// The handle of the record keyed `record_key`.
    pub fn of(record_key: &RecordKey) -> Self {
        let digest = Sha256::new()
            .chain_update(HANDLE_DOMAIN)
            .chain_update(record_key.as_str().as_bytes())
            .finalize();
        Self(hex(&digest[..HANDLE_BYTES]))
    }

    /// The handle as text (32 lowercase hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not a [`SessionHandle`] (32 lowercase hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a session handle: 32 lowercase hex digits expected")]
pub struct InvalidHandle;

impl std::str::FromStr for SessionHandle {
    type Err = InvalidHandle;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = text.len() == 2 * HANDLE_BYTES
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Self(text.to_owned())).ok_or(InvalidHandle)
    }
}

/// One of a user's live sessions, as a page lists it.
#[derive(Clone, Debug)]
pub struct UserSession {
    /// Its name in the page and for [`Revoke::One`].
    pub handle: SessionHandle,
    /// When it was created, when the session keeps it: the `_sessionbase_created` that
    /// [`absolute_max_age`](crate::SessionConfig::absolute_max_age) stores (`None` without
    /// it, and for Django's sessions).
    pub created: Option<OffsetDateTime>,
    /// When it expires, when the store reports it.
    pub expiry_date: Option<OffsetDateTime>,
    /// When it was last written, when the store keeps it (the Redis store does, for the
    /// sessions it wrote; `None` for Django's and in the other stores).
    pub last_saved: Option<OffsetDateTime>,
    /// Whether it is the session of the request that listed it.
    pub is_current: bool,
    /// Its data: what the app stored in it (a user agent, an address) to show.
    pub data: Data,
}

/// Which of a user's sessions to revoke.
#[derive(Clone, Copy, Debug)]
pub enum Revoke<'a> {
    /// Every one.
    All,
    /// Every one but the session with this key (the current one: "log out other devices",
    /// or keeping the session that just changed the password).
    AllExcept(&'a SessionKey),
    /// The one with this handle, if it is one of the user's.
    One(&'a SessionHandle),
}

/// The user id in `data` under `user_id_key`, as Django compares it: a string as it is
/// (Django stores `str(user.pk)`), a number by its digits, anything else no user.
pub fn user_id_of<'a>(data: &'a Map<String, Value>, user_id_key: &str) -> Option<UserId<'a>> {
    match data.get(user_id_key)? {
        Value::String(id) => Some(UserId::Text(id)),
        Value::Number(n) => Some(UserId::Number(n)),
        _ => None,
    }
}

/// A user id read from session data (see [`user_id_of`]).
#[derive(Clone, Copy, Debug)]
pub enum UserId<'a> {
    /// Stored as a string, as Django does.
    Text(&'a str),
    /// Stored as a JSON number.
    Number(&'a serde_json::Number),
}

impl UserId<'_> {
    /// Whether this is the user `id`.
    pub fn is(&self, id: &str) -> bool {
        match self {
            Self::Text(text) => *text == id,
            Self::Number(n) => n.to_string() == id,
        }
    }

    /// The id as text.
    pub fn to_text(&self) -> String {
        match self {
            Self::Text(text) => (*text).to_owned(),
            Self::Number(n) => n.to_string(),
        }
    }
}

/// Whether `data` is a session of the user `id` (under `user_id_key`).
pub fn belongs_to(data: &Map<String, Value>, user_id_key: &str, id: &str) -> bool {
    user_id_of(data, user_id_key).is_some_and(|user| user.is(id))
}

/// Listing and revoking a user's sessions on any [`SessionStore`], outside a request. They
/// are built on [`SessionStore::user_records`] and [`SessionStore::delete_record`], and
/// cannot be overridden, so revoking happens in one place.
pub trait UserSessions: SessionStore {
    /// The live sessions of the user `user_id` (none marked current).
    fn user_sessions(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<UserSession>, Error>> + Send {
        async move {
            let records = self.user_records(user_id).await?;
            Ok(listing(records, None))
        }
    }

    /// Deletes the sessions of `user_id` that `which` selects; how many were deleted. A
    /// session created after the listing this starts with is not among them.
    fn revoke_user_sessions(
        &self,
        user_id: &str,
        which: Revoke<'_>,
    ) -> impl Future<Output = Result<usize, Error>> + Send {
        async move {
            let records = self.user_records(user_id).await?;
            let current = match which {
                Revoke::AllExcept(key) => Some(self.record_key(key)),
                _ => None,
            };
            revoke(
                records,
                which,
                current.as_ref(),
                None,
                |record| async move { self.delete_record(&record).await },
            )
            .await
        }
    }
}

impl<S: SessionStore + ?Sized> UserSessions for S {}

/// The records as a page lists them; `current` is the record key of the request's session.
pub(crate) fn listing(records: Vec<UserRecord>, current: Option<&RecordKey>) -> Vec<UserSession> {
    records
        .into_iter()
        .map(|record| UserSession {
            handle: SessionHandle::of(&record.record_key),
            created: crate::session::created_at(&record.data),
            expiry_date: record.expiry_date,
            last_saved: record.last_saved,
            is_current: current == Some(&record.record_key),
            data: record.data,
        })
        .collect()
}

/// The one place sessions are revoked, for both levels: deletes (with `delete`) each of
/// `records` that `which` selects, `current` being the record key of
/// [`Revoke::AllExcept`]'s session. How many were deleted.
pub(crate) async fn revoke<F, Fut>(
    records: Vec<UserRecord>,
    which: Revoke<'_>,
    current: Option<&RecordKey>,
    config: Option<&crate::SessionConfig>,
    mut delete: F,
) -> Result<usize, Error>
where
    F: FnMut(RecordKey) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut revoked = 0;
    for record in records {
        let chosen = match which {
            Revoke::All => true,
            Revoke::AllExcept(_) => current != Some(&record.record_key),
            Revoke::One(handle) => SessionHandle::of(&record.record_key) == *handle,
        };
        if chosen {
            delete(record.record_key.clone()).await?;
            revoked += 1;
            crate::events::revoked(config, record.record_key.as_str());
        }
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn user_ids_compare_as_django_does() {
        let text = map(json!({"_auth_user_id": "42"}));
        let number = map(json!({"_auth_user_id": 42}));
        let other = map(json!({"_auth_user_id": [42]}));
        assert!(belongs_to(&text, DEFAULT_USER_ID_KEY, "42"));
        assert!(belongs_to(&number, DEFAULT_USER_ID_KEY, "42"));
        assert!(!belongs_to(&text, DEFAULT_USER_ID_KEY, "4"));
        assert!(!belongs_to(&other, DEFAULT_USER_ID_KEY, "42"));
        assert!(!belongs_to(&text, "user", "42"));
    }

    #[test]
    fn handles_are_stable_digests_that_do_not_contain_the_key() {
        let key = SessionKey::generate().unwrap();
        let record = RecordKey::new(key.as_str());
        let handle = SessionHandle::of(&record);
        assert_eq!(handle, SessionHandle::of(&RecordKey::new(key.as_str())));
        assert_eq!(handle.as_str().len(), 32);
        assert!(!handle.as_str().contains(key.as_str()));
        assert!(!key.as_str().contains(handle.as_str()));
        assert_eq!(handle.as_str().parse::<SessionHandle>(), Ok(handle.clone()));
        assert_ne!(handle, SessionHandle::of(&RecordKey::new("other")));
        assert!(!format!("{:?}", record).contains(key.as_str()));
    }
}
