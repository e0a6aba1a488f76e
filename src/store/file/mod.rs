//! `FileStore`: one file per session, Django's `file` backend.
//!
//! The file of session `key` is `<dir>/<prefix><key>` and holds exactly
//! [`Codec::encode`] of the data, so Django and Rust can share a directory. Writes go to a
//! temporary file in the same directory that is then renamed over the session file, so a
//! reader sees the old content or the new, never a mix. Saves are compare-and-swap under a
//! lock; see [`FileStore`].

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::Duration;

use super::{
    Codec, LoadedRecord, PrivateId, Record, RecordKey, RecordKeys, SaveOutcome, SessionStore,
    UserRecord, Version,
};
use crate::{Error, SessionConfig, SessionKey};
use record::Stored;

mod locking;
mod paths;
mod record;
#[cfg(test)]
mod tests;
mod user_scan;
mod writes;

/// Django's `SESSION_COOKIE_NAME` default, which its file backend uses as the file prefix.
const DEFAULT_PREFIX: &str = "sessionid";
/// Django's `SESSION_COOKIE_AGE` default: two weeks.
const DEFAULT_COOKIE_AGE: Duration = Duration::weeks(2);

/// Sessions in files, one per session: Django's `file` backend
/// (`SESSION_ENGINE = "django.contrib.sessions.backends.file"`).
///
/// # Files
///
/// The session `key` lives in `<dir>/<prefix><key>`; the prefix is the layer's cookie name
/// (`sessionid` by default), as Django names the files after `SESSION_COOKIE_NAME`, so a
/// directory shared with Django needs only the same cookie name. The file holds exactly
/// [`Codec::encode`] of the session data: with [`Codec::django`] and Django's
/// `SECRET_KEY`, Django reads the files Rust writes and the other way round. An empty file
/// (the placeholder a create leaves for an instant) loads as an empty session. Files are
/// created with mode `0600` on Unix, as Django's `mkstemp` does.
///
/// Keys never name a path unless they are 8 to 40 characters of `[a-z0-9]`: the default
/// [`parse_key`](SessionStore::parse_key) enforces it, and the file name builder checks it
/// again (as well as that the prefix holds no path separator) and fails without touching
/// the file system.
///
/// # Expiry
///
/// A file records no expiry date of its own: like Django, the store derives it from
/// `_session_expiry` and the file's modification time (the time of the last save).
///
/// | `_session_expiry` | expires at |
/// |---|---|
/// | a date ([`Expiry::At`]) | that date |
/// | a number of seconds `n` ([`Expiry::Inactivity`]) | mtime + `n` |
/// | `0` ([`Expiry::BrowserClose`]) or absent | mtime + cookie age |
/// | anything else | the record does not load |
///
/// **Differences from Django**: Django never expires a file whose
/// `_session_expiry` is a positive integer; here it expires `n` seconds after the last save,
/// as with the other stores. An expired file loads as no session; the [`Session`] then
/// creates a fresh key when it saves (Django's file backend creates the new key and an empty
/// file during the load). The cookie age and the file name prefix are the layer's
/// [`SessionConfig::cookie_age`](crate::SessionConfig::cookie_age) and
/// [`cookie_name`](crate::SessionConfig::cookie_name), handed to the store when the layer is
/// built ([`with_session_config`](Self::with_session_config)).
///
/// # Errors
///
/// A missing file, and a file that is not a regular file, not UTF-8 or fails to decode
/// (tampered, foreign key, truncated), load as no session (Django: the same). Any other
/// I/O failure (no permission, an I/O error, the directory replaced by a file) is an
/// operational fault and fails with [`Error::Store`] rather than silently logging users
/// out; the error names the directory and the operation, never the file (its name holds
/// a live key). A directory that has vanished makes every file missing: loads find no
/// session and creates fail. Writes are not flushed to disk with `fsync` (nor are
/// Django's): after a power loss a session may be lost, never half-written.
///
/// # Concurrency
///
/// Every change to a session file (create, save, delete, and `clear_expired` removing it)
/// happens under a lock: a mutex in this process plus an advisory file lock
/// ([`File::lock`]) for other processes. Locks are striped: the file name hashes (FNV-1a, a
/// fixed function, so every process agrees) to one of 64 lock files
/// `<dir>/.sessionbase-lock-00` … `-63`, created on demand and never removed, so lock files
/// never accumulate. The session file itself is not locked: it is replaced by a rename on
/// every save (a lock on it would stay on the replaced file), and on Windows a lock would
/// stop concurrent loads from reading it. Loads take no lock: the rename makes them atomic.
///
/// A save reads the file under the lock and writes only if it still holds the bytes that
/// were loaded (the [`Version`] is the file content); otherwise it answers
/// [`SaveOutcome::Conflict`], or [`SaveOutcome::Gone`] when the file is missing, expired or
/// unreadable. A save that lost a race waits a random moment (a millisecond per save
/// under way on its stripe in this process) before answering `Conflict`, so that many
/// requests racing on one session do not all retry in lockstep. Django processes sharing
/// the directory take no lock (Django relies on the rename alone), so a save racing a
/// Django save can still lose that one. A [`touch`](SessionStore::touch) compares the same
/// way and then sets only the file's modification time, which the expiry derives from.
///
/// # Cleaning
///
/// [`clear_expired`](SessionStore::clear_expired) (Django's `clearsessions`) scans the
/// directory: it removes expired session files, keeps live and undecodable ones, removes
/// temporary files `<prefix><key>_out_*` older than a minute (left by a crash), and leaves
/// every other file alone. It looks only at regular files directly in the directory.
///
/// A user's sessions ([`user_records`](SessionStore::user_records)) are found the same way:
/// a scan that reads and decodes every live session file (`user_scan.rs`), so files Django
/// wrote are found too, and saving costs nothing more.
///
/// Cloning is cheap and shares the configuration.
///
/// ```
/// use sessionbase::store::Codec;
/// use sessionbase::{FileStore, Session, SessionConfig};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("sessionbase-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
///
/// let store = FileStore::new(&dir)?
///     // Django's SECRET_KEY: Django reads these files too.
///     .with_codec(Codec::django("django-insecure-change-me", Vec::<String>::new()));
/// let session = Session::new(store.clone(), SessionConfig::default());
/// session.insert("user_id", 42)?;
/// session.save().await?;
///
/// let key = session.session_key().expect("saved");
/// assert!(dir.join(format!("sessionid{key}")).is_file());
/// let again = Session::load(store, SessionConfig::default(), key.as_ref()).await?;
/// assert_eq!(again.get::<u32>("user_id")?, Some(42));
///
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// [`Session`]: crate::Session
/// [`Expiry::At`]: crate::Expiry::At
/// [`Expiry::Inactivity`]: crate::Expiry::Inactivity
/// [`Expiry::BrowserClose`]: crate::Expiry::BrowserClose
/// [`File::lock`]: std::fs::File::lock
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    dir: PathBuf,
    prefix: String,
    codec: Codec,
    cookie_age: Duration,
    record_keys: RecordKeys,
    user_id_key: String,
}

impl FileStore {
    /// A store keeping its files in `dir`, which must be an existing directory (Django's
    /// `SESSION_FILE_PATH`); otherwise [`Error::Config`], as Django raises
    /// `ImproperlyConfigured`. The prefix is `sessionid`, the codec [`Codec::plain`] and the
    /// cookie age two weeks.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        if !fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Config(format!(
                "The session storage path {dir:?} doesn't exist. Please set the FileStore \
                 directory to an existing directory in which sessions can be stored."
            )));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                prefix: DEFAULT_PREFIX.to_owned(),
                codec: Codec::plain(),
                cookie_age: DEFAULT_COOKIE_AGE,
                record_keys: RecordKeys::default(),
                user_id_key: crate::store::DEFAULT_USER_ID_KEY.into(),
            }),
        })
    }

    /// Takes the settings the store depends on from `config`, as Django's file backend reads
    /// them: the file name prefix is the cookie name (`SESSION_COOKIE_NAME`), and a session
    /// with no custom expiry, or expiring at browser close, expires `cookie_age` after its
    /// file was last written. A [`SessionLayer`](crate::SessionLayer) or
    /// [`Session::new`](crate::Session::new) does this with its own configuration; call it
    /// only to use the store on its own. A layer's cookie name is a validated RFC 6265 token,
    /// so its prefix cannot hold a path separator; a name that does (from an unvalidated
    /// configuration) makes every operation fail with [`Error::Config`].
    pub fn with_session_config(mut self, config: &SessionConfig) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.prefix.clone_from(&config.cookie_name);
        inner.cookie_age = config.cookie_age;
        self
    }

    /// Sets how session data is encoded (default [`Codec::plain`]). Use
    /// [`Codec::django`] with Django's `SECRET_KEY` (and `SECRET_KEY_FALLBACKS`) to share the
    /// files with Django.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        Arc::make_mut(&mut self.inner).codec = codec;
        self
    }

    /// Names files after the private ids of `id` instead of the session keys (see
    /// [`PrivateId`]): a listing of the directory names no usable cookie. Django cannot
    /// share such a directory.
    pub fn with_private_id(mut self, id: PrivateId) -> Self {
        Arc::make_mut(&mut self.inner).record_keys = RecordKeys::private(id);
        self
    }

    /// Reads a session's user id under `key` instead of `_auth_user_id`
    /// ([`user_records`](SessionStore::user_records)).
    pub fn with_user_id_key(mut self, key: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).user_id_key = key.into();
        self
    }

    /// The directory the session files are in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file name prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The path of `key`'s file (see [`Inner::file_name`]).
    #[cfg(test)]
    fn path(&self, key: &SessionKey) -> Result<PathBuf, Error> {
        self.inner
            .file_name(key)
            .map(|name| self.inner.dir.join(name))
    }
}

/// Runs blocking file-system work on Tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::store)?
}

impl SessionStore for FileStore {
    /// The prefix and the cookie age come from the layer's configuration (a copy only when
    /// they differ from the store's).
    fn configured(&self, config: &SessionConfig) -> Option<Self> {
        let inner = &self.inner;
        let same = inner.prefix == config.cookie_name && inner.cookie_age == config.cookie_age;
        (!same).then(|| self.clone().with_session_config(config))
    }

    fn check_config(&self, config: &SessionConfig) -> Result<(), Error> {
        self.inner.record_keys.check_config("FileStore", config)
    }

    /// Clones share the directory and the settings.
    fn identity(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.inner) as usize)
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        let inner = Arc::clone(&self.inner);
        let file_name = inner.file_name(key)?;
        blocking(move || {
            Ok(match inner.read(&inner.dir.join(file_name))? {
                Stored::Live {
                    data,
                    preserved,
                    bytes,
                    expiry_date,
                } => Some(LoadedRecord {
                    data: Arc::new(data),
                    version: Version::from_bytes(bytes).with_preserved(preserved),
                    expiry_date: Some(expiry_date),
                }),
                Stored::Missing | Stored::Unreadable | Stored::Expired => None,
            })
        })
        .await
    }

    /// Claims a fresh key with an exclusive create, then writes the content. The record's
    /// `expiry_date` is not stored: the expiry derives from the data and the file's
    /// modification time (see [`FileStore`]).
    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        let inner = Arc::clone(&self.inner);
        let content = inner.codec.encode(&record.data)?;
        blocking(move || inner.create(content.as_bytes())).await
    }

    /// Compare-and-swap under the session's stripe lock; see [`FileStore`].
    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let inner = Arc::clone(&self.inner);
        let content = inner
            .codec
            .encode_preserving(&record.data, expected.preserved())?;
        let (key, expected) = (key.clone(), expected.clone());
        blocking(move || inner.save(&key, content.as_bytes(), &expected)).await
    }

    /// The file's modification time alone, under the lock; see [`FileStore`].
    async fn touch(
        &self,
        key: &SessionKey,
        _record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let inner = Arc::clone(&self.inner);
        let (key, expected) = (key.clone(), expected.clone());
        blocking(move || inner.touch(&key, &expected)).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        blocking(move || inner.delete(&key)).await
    }

    /// Whether `key`'s file holds a record that would load (present, decodable, not
    /// expired).
    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        Ok(self.load(key).await?.is_some())
    }

    async fn clear_expired(&self) -> Result<(), Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.clear_expired()).await
    }

    fn user_id_key(&self) -> &str {
        &self.inner.user_id_key
    }

    fn record_key(&self, key: &SessionKey) -> RecordKey {
        self.inner.record_keys.record_key(key)
    }

    /// Deletes by the stored key itself (a private id cannot be turned back into a key).
    async fn delete_record(&self, record_key: &RecordKey) -> Result<(), Error> {
        let Some(stored) = record_key.stored() else {
            return Ok(());
        };
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.delete_stored(&stored)).await
    }

    /// A scan of the directory, as `clear_expired`'s (see [`FileStore`]).
    async fn user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        let inner = Arc::clone(&self.inner);
        let user_id = user_id.to_owned();
        blocking(move || inner.user_records(&user_id)).await
    }
}
