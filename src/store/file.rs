//! `FileStore`: one file per session, Django's `file` backend.
//!
//! The file of session `key` is `<dir>/<prefix><key>` and holds exactly
//! [`Codec::encode`] of the data, so Django and Rust can share a directory. Writes go to a
//! temporary file in the same directory that is then renamed over the session file, so a
//! reader sees the old content or the new, never a mix. Saves are compare-and-swap under a
//! lock; see [`FileStore`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration as StdDuration, SystemTime};

use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::preserved::Preserved;
use super::{Codec, LoadedRecord, Record, SaveOutcome, SessionStore, Version};
use crate::expiry::{self, EXPIRY_KEY, Expiry};
use crate::key::is_server_side_key;
use crate::{Error, SessionKey};

/// Django's `SESSION_COOKIE_NAME` default, which its file backend uses as the file prefix.
const DEFAULT_PREFIX: &str = "sessionid";
/// Django's `SESSION_COOKIE_AGE` default: two weeks.
const DEFAULT_COOKIE_AGE: Duration = Duration::weeks(2);
/// What separates a session file's name from the random part of its temporary files
/// (Django's `tempfile.mkstemp(prefix=<file name> + "_out_")`).
const TEMP_MARKER: &str = "_out_";
/// Temporary files older than this are leftovers of a crash; `clear_expired` removes them.
const STALE_TEMP_AGE: StdDuration = StdDuration::from_secs(60);
/// How many locks sessions are spread over, in this process and across processes.
const STRIPES: usize = 64;
/// The name of lock file `n` is this followed by two decimal digits. It can never be a
/// session file: `.` and `-` are not key characters.
const LOCK_FILE_PREFIX: &str = ".sessionbase-lock-";
/// Attempts at drawing an unused key (or temporary name) before giving up: with 165-bit keys
/// a second attempt already means something other than chance.
const MAX_NAME_ATTEMPTS: usize = 16;

/// In-process halves of the striped locks, shared by every `FileStore` of this process (so
/// two stores on one directory exclude each other even where file locks are per process).
static LOCAL_LOCKS: [Mutex<()>; STRIPES] = [const { Mutex::new(()) }; STRIPES];

/// Sessions in files, one per session: Django's `file` backend
/// (`SESSION_ENGINE = "django.contrib.sessions.backends.file"`).
///
/// # Files
///
/// The session `key` lives in `<dir>/<prefix><key>`; the prefix defaults to `sessionid`,
/// Django's `SESSION_COOKIE_NAME` (Django names the files after the cookie, so set the
/// prefix to your Django cookie name when sharing a directory). The file holds exactly
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
/// **Differences from Django** (its quirk 14.3): Django never expires a file whose
/// `_session_expiry` is a positive integer; here it expires `n` seconds after the last save,
/// as with the other stores. An expired file loads as no session; the [`Session`] then
/// creates a fresh key when it saves (Django's file backend creates the new key and an empty
/// file during the load). The cookie age must equal
/// [`SessionConfig::cookie_age`](crate::SessionConfig::cookie_age): set it with
/// [`with_cookie_age`](Self::with_cookie_age) whenever you change the config's.
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
/// Django save can still lose that one.
///
/// # Cleaning
///
/// [`clear_expired`](SessionStore::clear_expired) (Django's `clearsessions`) scans the
/// directory: it removes expired session files, keeps live and undecodable ones, removes
/// temporary files `<prefix><key>_out_*` older than a minute (left by a crash), and leaves
/// every other file alone. It looks only at regular files directly in the directory.
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
}

/// What a session file holds, as far as the store is concerned.
enum Stored {
    /// No file.
    Missing,
    /// A file that does not load: not a regular file, not UTF-8, undecodable, or with a
    /// `_session_expiry` Django could not have written.
    Unreadable,
    /// A record past its expiry date.
    Expired,
    /// A record that loads; `bytes` is the file content, the record's version.
    Live {
        data: Map<String, Value>,
        preserved: Preserved,
        bytes: Vec<u8>,
        expiry_date: OffsetDateTime,
    },
}

/// An I/O failure, naming what was attempted and the directory (never the file name, which
/// holds a live key).
#[derive(Debug, thiserror::Error)]
#[error("file session store: cannot {action} in {dir:?}: {source}")]
struct IoFailure {
    action: &'static str,
    dir: PathBuf,
    #[source]
    source: io::Error,
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
            }),
        })
    }

    /// Sets the file name prefix (default `sessionid`). Django uses its
    /// `SESSION_COOKIE_NAME`: set this to the same value when sharing a directory with it. A
    /// prefix containing `/`, `\` or NUL makes every operation fail with [`Error::Config`].
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).prefix = prefix.into();
        self
    }

    /// Sets how session data is encoded (default [`Codec::plain`]). Use
    /// [`Codec::django`] with Django's `SECRET_KEY` (and `SECRET_KEY_FALLBACKS`) to share the
    /// files with Django.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        Arc::make_mut(&mut self.inner).codec = codec;
        self
    }

    /// Sets the cookie age (default two weeks, Django's `SESSION_COOKIE_AGE`): a session
    /// with no custom expiry, or expiring at browser close, expires this long after its
    /// file was last written. It must equal
    /// [`SessionConfig::cookie_age`](crate::SessionConfig::cookie_age).
    pub fn with_cookie_age(mut self, age: Duration) -> Self {
        Arc::make_mut(&mut self.inner).cookie_age = age;
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

/// The lock of one stripe: the in-process mutex, then the file lock (released first, when
/// the file closes).
struct StripeLock {
    _file: Option<File>,
    _local: MutexGuard<'static, ()>,
}

impl Inner {
    /// `<prefix><key>`, after checking that neither part can name another path.
    fn file_name(&self, key: &SessionKey) -> Result<String, Error> {
        if !is_server_side_key(key.as_str()) {
            return Err(Error::store(
                "file session store: refusing a session key that is not 8 to 40 characters \
                 of [a-z0-9] as a file name",
            ));
        }
        self.check_prefix()?;
        Ok(format!("{}{}", self.prefix, key.as_str()))
    }

    fn check_prefix(&self) -> Result<(), Error> {
        if self.prefix.contains(['/', '\\', '\0']) {
            return Err(Error::Config(format!(
                "the FileStore prefix {:?} contains a path separator or NUL",
                self.prefix
            )));
        }
        Ok(())
    }

    fn fail(&self, action: &'static str, source: io::Error) -> Error {
        Error::store(IoFailure {
            action,
            dir: self.dir.clone(),
            source,
        })
    }

    /// Takes the stripe lock of `file_name`, in this process and across processes.
    fn lock(&self, file_name: &str) -> Result<StripeLock, Error> {
        let stripe = stripe_of(file_name);
        let local = local_lock(file_name);
        let path = self.dir.join(format!("{LOCK_FILE_PREFIX}{stripe:02}"));
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| self.fail("open a lock file", e))?;
        let file = match file.lock() {
            Ok(()) => Some(file),
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                static WARNED: AtomicBool = AtomicBool::new(false);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "file locks are not supported on this platform; FileStore saves are \
                         serialized only within this process"
                    );
                }
                None
            }
            Err(e) => return Err(self.fail("lock a lock file", e)),
        };
        Ok(StripeLock {
            _file: file,
            _local: local,
        })
    }

    /// Reads and classifies the file at `path`.
    fn read(&self, path: &Path) -> Result<Stored, Error> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Stored::Missing),
            Err(e) => return Err(self.fail("open a session file", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.fail("stat a session file", e))?;
        if !meta.is_file() {
            tracing::warn!(dir = ?self.dir, "a session file name is not a regular file; treating it as no session");
            return Ok(Stored::Unreadable);
        }
        let mtime = meta
            .modified()
            .map_err(|e| self.fail("read a session file's modification time", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| self.fail("read a session file", e))?;
        Ok(self.classify(bytes, to_datetime(mtime), OffsetDateTime::now_utc()))
    }

    /// Decodes `bytes` and checks the expiry, as of `now`, of a file last written at `mtime`.
    fn classify(&self, bytes: Vec<u8>, mtime: OffsetDateTime, now: OffsetDateTime) -> Stored {
        let (data, preserved) = if bytes.is_empty() {
            // Django's create placeholder.
            (Map::new(), Preserved::default())
        } else {
            let Ok(text) = std::str::from_utf8(&bytes) else {
                tracing::warn!(target: "sessionbase::security", "Session data corrupted: not UTF-8");
                return Stored::Unreadable;
            };
            // The codec logs why.
            let Some(decoded) = self.codec.decode_preserving(text) else {
                return Stored::Unreadable;
            };
            decoded
        };
        let expiry = match data.get(EXPIRY_KEY).map(Expiry::from_value) {
            None => None,
            Some(Ok(expiry)) => expiry,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "session file has a malformed _session_expiry; treating it as no session");
                return Stored::Unreadable;
            }
        };
        let expiry_date = expiry::expiry_date(mtime, expiry.as_ref(), self.cookie_age);
        if expiry_date <= now {
            return Stored::Expired;
        }
        Stored::Live {
            data,
            preserved,
            bytes,
            expiry_date,
        }
    }

    /// Writes `content` to a fresh temporary file next to `file_name` and renames it over
    /// `file_name`.
    fn replace(&self, file_name: &str, content: &[u8]) -> Result<(), Error> {
        let mut attempt = 0;
        let (temp, mut file) = loop {
            attempt += 1;
            let suffix = SessionKey::generate()?;
            let temp = self
                .dir
                .join(format!("{file_name}{TEMP_MARKER}{}", suffix.as_str()));
            match private_options().write(true).create_new(true).open(&temp) {
                Ok(file) => break (temp, file),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < MAX_NAME_ATTEMPTS => {}
                Err(e) => return Err(self.fail("create a temporary file", e)),
            }
        };
        let written = file
            .write_all(content)
            .and_then(|()| file.flush())
            .map_err(|e| self.fail("write a temporary file", e));
        drop(file);
        let renamed = written.and_then(|()| {
            fs::rename(&temp, self.dir.join(file_name))
                .map_err(|e| self.fail("rename a temporary file over a session file", e))
        });
        if renamed.is_err() {
            // Best effort: clear_expired removes it later otherwise.
            let _ = fs::remove_file(&temp);
        }
        renamed
    }

    fn create(&self, content: &[u8]) -> Result<(SessionKey, Version), Error> {
        for _ in 0..MAX_NAME_ATTEMPTS {
            let key = SessionKey::generate()?;
            let file_name = self.file_name(&key)?;
            let path = self.dir.join(&file_name);
            let _lock = self.lock(&file_name)?;
            // The empty placeholder claims the key exclusively (Django's O_EXCL create); the
            // content then arrives by rename, so no reader ever sees a partial file.
            match private_options().write(true).create_new(true).open(&path) {
                Ok(placeholder) => drop(placeholder),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(self.fail("create a session file", e)),
            }
            if !content.is_empty()
                && let Err(e) = self.replace(&file_name, content)
            {
                let _ = fs::remove_file(&path);
                return Err(e);
            }
            return Ok((key, Version::from_bytes(content.to_vec())));
        }
        Err(Error::store(
            "file session store: every freshly generated key was taken",
        ))
    }

    fn save(
        &self,
        key: &SessionKey,
        content: &[u8],
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        let file_name = self.file_name(key)?;
        let _lock = self.lock(&file_name)?;
        match self.read(&self.dir.join(&file_name))? {
            Stored::Missing | Stored::Unreadable | Stored::Expired => Ok(SaveOutcome::Gone),
            Stored::Live { bytes, .. } if expected.as_bytes() != Some(&bytes[..]) => {
                Ok(SaveOutcome::Conflict)
            }
            Stored::Live { .. } => {
                self.replace(&file_name, content)?;
                Ok(SaveOutcome::Saved {
                    key: key.clone(),
                    version: Version::from_bytes(content.to_vec())
                        .with_preserved(expected.preserved().clone()),
                })
            }
        }
    }

    fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        let file_name = self.file_name(key)?;
        let _lock = self.lock(&file_name)?;
        remove_if_present(&self.dir.join(&file_name))
            .map_err(|e| self.fail("remove a session file", e))
    }

    fn clear_expired(&self) -> Result<(), Error> {
        self.check_prefix()?;
        let entries = fs::read_dir(&self.dir).map_err(|e| self.fail("list the directory", e))?;
        let mut first_error = None;
        for entry in entries {
            let result = entry
                .map_err(|e| self.fail("list the directory", e))
                .and_then(|entry| self.clear_entry(&entry));
            if let Err(e) = result {
                tracing::warn!(error = %e, "clear_expired: skipping a file");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Removes `entry` if it is an expired session file or a stale temporary file.
    fn clear_entry(&self, entry: &fs::DirEntry) -> Result<(), Error> {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Ok(());
        };
        let Some(rest) = name.strip_prefix(self.prefix.as_str()) else {
            return Ok(());
        };
        // Never follow a symbolic link, nor enter a directory.
        let file_type = entry
            .file_type()
            .map_err(|e| self.fail("stat a directory entry", e))?;
        if !file_type.is_file() {
            return Ok(());
        }
        if is_server_side_key(rest) {
            let path = self.dir.join(name);
            if !matches!(self.read(&path)?, Stored::Expired) {
                return Ok(());
            }
            // Re-check under the lock: a save may have just renewed it.
            let _lock = self.lock(name)?;
            if matches!(self.read(&path)?, Stored::Expired) {
                remove_if_present(&path).map_err(|e| self.fail("remove a session file", e))?;
            }
            return Ok(());
        }
        let is_temp = rest
            .split_once(TEMP_MARKER)
            .is_some_and(|(key, _)| is_server_side_key(key));
        if is_temp {
            let meta = entry
                .metadata()
                .map_err(|e| self.fail("stat a temporary file", e))?;
            let stale = meta
                .modified()
                .ok()
                .and_then(|mtime| SystemTime::now().duration_since(mtime).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            if stale {
                remove_if_present(&entry.path())
                    .map_err(|e| self.fail("remove a temporary file", e))?;
            }
        }
        Ok(())
    }
}

/// The in-process half of `file_name`'s stripe lock.
fn local_lock(file_name: &str) -> MutexGuard<'static, ()> {
    // The mutex guards no data: a panic while it was held leaves nothing inconsistent.
    LOCAL_LOCKS[stripe_of(file_name)]
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Options that create files readable by their owner only (Django's `mkstemp` gives 0600).
fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The stripe of a file name: FNV-1a, fixed so that every process (and every version of
/// this crate) picks the same lock file for the same session.
fn stripe_of(file_name: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in file_name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // STRIPES is far below u64::MAX, so the remainder fits any usize.
    (hash % STRIPES as u64) as usize
}

/// A file time as an `OffsetDateTime`, saturating at the limits of the type.
fn to_datetime(t: SystemTime) -> OffsetDateTime {
    let max = PrimitiveDateTime::MAX.assume_utc();
    let min = PrimitiveDateTime::MIN.assume_utc();
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => Duration::try_from(after)
            .ok()
            .and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_add(d))
            .unwrap_or(max),
        Err(before) => Duration::try_from(before.duration())
            .ok()
            .and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_sub(d))
            .unwrap_or(min),
    }
}

impl SessionStore for FileStore {
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
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::signing::{SESSION_STORE_SALT, Signer};
    use crate::store::conformance::{self, Exceptions};
    use crate::{Session, SessionConfig};

    const SECRET: &str = "django_tests_secret_key";
    /// `signing.dumps({"hello": "world"}, salt=SESSION_STORE_SALT, compress=True)` by Django.
    const DJANGO_HELLO: &str =
        "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:tWy-azdqKYIwu_o6Ht3nBxc5SvPyROA4n-zKWAcm4Cc";

    /// A fresh directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let path = std::env::temp_dir().join(format!(
                "sessionbase-file-test-{}-{}",
                std::process::id(),
                SessionKey::generate().unwrap()
            ));
            fs::create_dir(&path).unwrap();
            Self(path)
        }

        fn store(&self) -> FileStore {
            FileStore::new(&self.0).unwrap()
        }

        fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        /// Every name in the directory but the lock files.
        fn names(&self) -> BTreeSet<String> {
            fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !n.starts_with(LOCK_FILE_PREFIX))
                .collect()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn record(value: Value) -> Record {
        Record {
            data: Arc::new(obj(value)),
            expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
        }
    }

    fn set_mtime(path: &Path, ago: StdDuration) {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - ago).unwrap();
    }

    fn key(text: &str) -> SessionKey {
        SessionKey::parse(text).unwrap()
    }

    async fn load_data(store: &FileStore, key: &SessionKey) -> Option<Value> {
        store
            .load(key)
            .await
            .unwrap()
            .map(|r| Value::Object(r.data.as_ref().clone()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        let dir = TempDir::new();
        conformance::run(dir.store(), Exceptions::none()).await;
        let django = dir
            .store()
            .with_codec(Codec::django(SECRET, Vec::<String>::new()));
        conformance::run(django, Exceptions::none()).await;
    }

    #[tokio::test]
    async fn file_is_named_after_the_key_and_holds_exactly_the_codec_output() {
        let dir = TempDir::new();
        let store = dir
            .store()
            .with_codec(Codec::django(SECRET, Vec::<String>::new()));
        let data = json!({"hello": "world", "_session_expiry": 3600});
        let (key, version) = store.create(&record(data.clone())).await.unwrap();
        let path = dir.file(&format!("sessionid{key}"));
        assert_eq!(store.path(&key).unwrap(), path);
        assert_eq!(dir.names(), BTreeSet::from([format!("sessionid{key}")]));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(version.as_bytes(), Some(text.as_bytes()));
        let decoded = Signer::new(SECRET, SESSION_STORE_SALT)
            .loads(&text, None)
            .unwrap();
        assert_eq!(Value::Object(decoded), data);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }

        // A save replaces the content with the new codec output, and nothing else is left.
        let saved = store
            .save(&key, &record(json!({"hello": "moon"})), &version)
            .await
            .unwrap();
        let SaveOutcome::Saved { version: v1, .. } = saved else {
            panic!("{saved:?}")
        };
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(v1.as_bytes(), Some(text.as_bytes()));
        assert_eq!(
            Signer::new(SECRET, SESSION_STORE_SALT)
                .loads(&text, None)
                .unwrap(),
            obj(json!({"hello": "moon"}))
        );
        assert_eq!(dir.names(), BTreeSet::from([format!("sessionid{key}")]));

        // Plain JSON without a secret.
        let plain = dir.store().with_prefix("sid");
        let (key, _) = plain.create(&record(json!({"a": [1, "b"]}))).await.unwrap();
        assert_eq!(
            fs::read_to_string(dir.file(&format!("sid{key}"))).unwrap(),
            r#"{"a":[1,"b"]}"#
        );
    }

    #[tokio::test]
    async fn a_file_django_wrote_loads_and_saves() {
        let dir = TempDir::new();
        let store = dir
            .store()
            .with_codec(Codec::django(SECRET, Vec::<String>::new()));
        let key = key("django0session0key0abc");
        fs::write(dir.file(&format!("sessionid{key}")), DJANGO_HELLO).unwrap();
        assert_eq!(
            load_data(&store, &key).await,
            Some(json!({"hello": "world"}))
        );
        assert!(store.exists(&key).await.unwrap());

        let config = Arc::new(SessionConfig::default());
        let session = Session::load(store.clone(), Arc::clone(&config), key.as_str())
            .await
            .unwrap();
        assert_eq!(
            session.get::<String>("hello").unwrap().as_deref(),
            Some("world")
        );
        session.insert("n", 1).unwrap();
        session.save().await.unwrap();
        assert_eq!(session.session_key(), Some(key.clone()));
        let text = fs::read_to_string(dir.file(&format!("sessionid{key}"))).unwrap();
        assert_eq!(
            Signer::new(SECRET, SESSION_STORE_SALT)
                .loads(&text, None)
                .unwrap(),
            obj(json!({"hello": "world", "n": 1}))
        );

        // The wrong secret: no session.
        let other = dir
            .store()
            .with_codec(Codec::django("another secret", Vec::<String>::new()));
        assert_eq!(load_data(&other, &key).await, None);
    }

    #[tokio::test]
    async fn an_empty_file_loads_as_an_empty_session() {
        let dir = TempDir::new();
        let store = dir.store();
        let key = key("emptyplaceholder");
        fs::write(dir.file(&format!("sessionid{key}")), "").unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert!(loaded.data.is_empty());
        assert_eq!(loaded.version.as_bytes(), Some(&b""[..]));
        let outcome = store
            .save(&key, &record(json!({"x": 1})), &loaded.version)
            .await
            .unwrap();
        assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
        assert_eq!(load_data(&store, &key).await, Some(json!({"x": 1})));
    }

    #[tokio::test]
    async fn keys_with_path_characters_never_touch_the_file_system() {
        let dir = TempDir::new();
        let store = dir.store();
        // Something to find if a traversal worked.
        fs::write(dir.file("sessionidvictim00"), "{}").unwrap();
        let before = dir.names();
        let bad = [
            "../../etc/passwd",
            "a/b/cdefgh",
            "..\\..\\x",
            "abc.defgh",
            "ABCDEFGHIJ",
            "abcdefgH",
            "../sessionidvictim00",
            "",
            "short",
            &"a".repeat(41),
        ];
        for text in bad {
            assert!(store.parse_key(text).is_none(), "{text:?} parsed");
            let key = SessionKey::from_validated(text);
            assert!(store.path(&key).is_err(), "{text:?} built a path");
            assert!(store.load(&key).await.is_err(), "{text:?} loaded");
            assert!(store.exists(&key).await.is_err(), "{text:?} checked");
            assert!(store.delete(&key).await.is_err(), "{text:?} deleted");
            let saved = store
                .save(&key, &record(json!({})), &Version::from_bytes(*b"{}"))
                .await;
            assert!(saved.is_err(), "{text:?} saved");
        }
        // Not even a lock file was created.
        assert_eq!(
            fs::read_dir(&dir.0).unwrap().count(),
            before.len(),
            "the file system was touched"
        );
        assert_eq!(dir.names(), before);

        // A prefix that would leave the directory is a configuration error.
        let escaping = dir.store().with_prefix("../sessionid");
        let key = key("abcdefgh1234");
        assert!(matches!(escaping.path(&key), Err(Error::Config(_))));
        assert!(matches!(escaping.load(&key).await, Err(Error::Config(_))));
        assert!(matches!(
            escaping.create(&record(json!({}))).await,
            Err(Error::Config(_))
        ));
        assert!(matches!(
            escaping.clear_expired().await,
            Err(Error::Config(_))
        ));
        assert_eq!(dir.names(), before);
    }

    #[tokio::test]
    async fn expiry_follows_the_modification_time() {
        let dir = TempDir::new();
        let store = dir.store();
        let (key, version) = store.create(&record(json!({"a": 1}))).await.unwrap();
        let path = store.path(&key).unwrap();
        // Just inside the cookie age: live.
        set_mtime(&path, StdDuration::from_secs(14 * 86_400 - 60));
        assert!(store.load(&key).await.unwrap().is_some());
        // Just past it: expired.
        set_mtime(&path, StdDuration::from_secs(14 * 86_400 + 1));
        assert!(store.load(&key).await.unwrap().is_none());
        assert!(!store.exists(&key).await.unwrap());
        assert_eq!(
            store
                .save(&key, &record(json!({"a": 2})), &version)
                .await
                .unwrap(),
            SaveOutcome::Gone,
            "an expired file is not renewed by a save"
        );

        // The configured cookie age counts, and browser-close sessions (0) follow it too.
        let short = dir.store().with_cookie_age(Duration::hours(1));
        for data in [
            json!({}),
            json!({"_session_expiry": 0}),
            json!({"_session_expiry": null}),
        ] {
            let (key, _) = short.create(&record(data.clone())).await.unwrap();
            let path = short.path(&key).unwrap();
            set_mtime(&path, StdDuration::from_secs(59 * 60));
            assert!(short.load(&key).await.unwrap().is_some(), "{data}");
            set_mtime(&path, StdDuration::from_secs(61 * 60));
            assert!(short.load(&key).await.unwrap().is_none(), "{data}");
        }
    }

    #[tokio::test]
    async fn custom_expiry_values() {
        let dir = TempDir::new();
        let store = dir.store();
        let hour_ago = StdDuration::from_secs(3600);
        let cases = [
            // Negative inactivity: always expired, as in Django.
            (json!({"_session_expiry": -10}), StdDuration::ZERO, false),
            // Positive inactivity counts from the last write (Django would never expire it).
            (json!({"_session_expiry": 300}), hour_ago, false),
            (
                json!({"_session_expiry": 300}),
                StdDuration::from_secs(200),
                true,
            ),
            (
                json!({"_session_expiry": 0.5}),
                StdDuration::from_secs(1),
                false,
            ),
            // A date: the date alone counts.
            (
                json!({"_session_expiry": "2000-01-01T00:00:00+00:00"}),
                StdDuration::ZERO,
                false,
            ),
            (
                json!({"_session_expiry": "2999-01-01T00:00:00.000001+00:00"}),
                StdDuration::from_secs(30 * 86_400),
                true,
            ),
            // Something Django could not have written: no session.
            (json!({"_session_expiry": true}), StdDuration::ZERO, false),
            (
                json!({"_session_expiry": "tomorrow"}),
                StdDuration::ZERO,
                false,
            ),
            (json!({"_session_expiry": [1]}), StdDuration::ZERO, false),
        ];
        for (data, age, live) in cases {
            let (key, _) = store.create(&record(data.clone())).await.unwrap();
            set_mtime(&store.path(&key).unwrap(), age);
            assert_eq!(
                load_data(&store, &key).await.is_some(),
                live,
                "{data} {age:?}"
            );
            assert_eq!(store.exists(&key).await.unwrap(), live, "{data} {age:?}");
        }
    }

    #[tokio::test]
    async fn loaded_records_carry_their_expiry_date() {
        let dir = TempDir::new();
        let store = dir.store();
        let (key, _) = store
            .create(&record(
                json!({"_session_expiry": "2999-01-01T00:00:00+00:00"}),
            ))
            .await
            .unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            loaded.expiry_date,
            Some(time::macros::datetime!(2999-01-01 00:00:00 UTC))
        );
        let (key, _) = store.create(&record(json!({}))).await.unwrap();
        let expiry = store
            .load(&key)
            .await
            .unwrap()
            .unwrap()
            .expiry_date
            .unwrap();
        let expected = OffsetDateTime::now_utc() + Duration::weeks(2);
        assert!((expiry - expected).abs() < Duration::seconds(5), "{expiry}");
    }

    #[tokio::test]
    async fn corrupt_files_load_as_no_session_and_are_kept() {
        let dir = TempDir::new();
        let signed = dir
            .store()
            .with_codec(Codec::django(SECRET, Vec::<String>::new()));
        let plain = dir.store();
        let tampered =
            DJANGO_HELLO.replacen("eyJoZWxsbyI6IndvcmxkIn0", "eyJoZWxsbyI6Im1vb24ifQ", 1);
        let cases: [(&FileStore, &[u8]); 7] = [
            (&plain, b"garbage"),
            (&plain, b"[1, 2]"),
            (&plain, b"\"text\""),
            (&plain, b"{\"a\": \xff}"),
            (&plain, b"\xff\xfe\x00"),
            (&signed, tampered.as_bytes()),
            (&signed, b"{\"hello\": \"world\"}"),
        ];
        for (i, (store, content)) in cases.into_iter().enumerate() {
            let key = key(&format!("corrupt{i:04}"));
            let path = dir.file(&format!("sessionid{key}"));
            fs::write(&path, content).unwrap();
            assert!(store.load(&key).await.unwrap().is_none(), "case {i}");
            assert!(!store.exists(&key).await.unwrap(), "case {i}");
            assert_eq!(
                store
                    .save(
                        &key,
                        &record(json!({})),
                        &Version::from_bytes(content.to_vec())
                    )
                    .await
                    .unwrap(),
                SaveOutcome::Gone,
                "case {i}"
            );
            store.clear_expired().await.unwrap();
            assert_eq!(fs::read(&path).unwrap(), content, "case {i} was touched");
        }
        // A directory where a session file should be: no session either.
        let key = key("directory0000");
        fs::create_dir(dir.file(&format!("sessionid{key}"))).unwrap();
        assert!(plain.load(&key).await.unwrap().is_none());
        plain.clear_expired().await.unwrap();
        assert!(dir.file(&format!("sessionid{key}")).is_dir());
    }

    #[tokio::test]
    async fn operational_faults_are_errors_not_missing_sessions() {
        let dir = TempDir::new();
        let store = dir.store();
        let (key, version) = store.create(&record(json!({"a": 1}))).await.unwrap();
        // The directory is replaced by a regular file: ENOTDIR, not "no such session".
        fs::remove_dir_all(&dir.0).unwrap();
        fs::write(&dir.0, "not a directory").unwrap();
        let error = store.load(&key).await.unwrap_err();
        assert!(matches!(error, Error::Store(_)), "{error:?}");
        assert!(
            !error.to_string().contains(key.as_str()),
            "the key leaked: {error}"
        );
        assert!(matches!(store.exists(&key).await, Err(Error::Store(_))));
        assert!(matches!(
            store.save(&key, &record(json!({})), &version).await,
            Err(Error::Store(_))
        ));
        assert!(matches!(
            store.create(&record(json!({}))).await,
            Err(Error::Store(_))
        ));
        assert!(matches!(store.delete(&key).await, Err(Error::Store(_))));
        assert!(matches!(store.clear_expired().await, Err(Error::Store(_))));
        fs::remove_file(&dir.0).unwrap();
        // A missing file in a missing directory is still just no session.
        assert!(store.load(&key).await.unwrap().is_none());
        fs::create_dir(&dir.0).unwrap();
    }

    #[tokio::test]
    async fn save_is_compare_and_swap_on_the_file_content() {
        let dir = TempDir::new();
        let store = dir.store();
        let (key, v0) = store.create(&record(json!({"n": 0}))).await.unwrap();
        // Another process (Django, say) rewrites the file.
        fs::write(store.path(&key).unwrap(), r#"{"n":7}"#).unwrap();
        assert_eq!(
            store
                .save(&key, &record(json!({"n": 1})), &v0)
                .await
                .unwrap(),
            SaveOutcome::Conflict
        );
        assert_eq!(load_data(&store, &key).await, Some(json!({"n": 7})));
        let fresh = store.load(&key).await.unwrap().unwrap();
        assert!(matches!(
            store
                .save(&key, &record(json!({"n": 8})), &fresh.version)
                .await
                .unwrap(),
            SaveOutcome::Saved { .. }
        ));
        // Deleted: gone, and not resurrected.
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert_eq!(
            store
                .save(&key, &record(json!({"n": 9})), &fresh.version)
                .await
                .unwrap(),
            SaveOutcome::Gone
        );
        assert!(!store.path(&key).unwrap().exists());
        assert!(dir.names().is_empty(), "{:?}", dir.names());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_saves_through_sessions_keep_every_key() {
        let dir = TempDir::new();
        // Two stores on one directory: they must exclude each other too.
        let stores = [dir.store(), dir.store()];
        let config = Arc::new(SessionConfig::default());
        let session = Session::new(stores[0].clone(), Arc::clone(&config));
        session.insert("base", true).unwrap();
        session.save().await.unwrap();
        let key = session.session_key().unwrap();

        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = stores[i % 2].clone();
                let (config, key) = (Arc::clone(&config), key.clone());
                tokio::spawn(async move {
                    let s = Session::load(store, config, key.as_str()).await.unwrap();
                    s.insert(format!("k{i}"), i).unwrap();
                    s.save().await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let merged = Session::load(stores[1].clone(), config, key.as_str())
            .await
            .unwrap();
        for i in 0..50 {
            assert_eq!(
                merged.get::<usize>(&format!("k{i}")).unwrap(),
                Some(i),
                "k{i} lost"
            );
        }
        assert_eq!(merged.get::<bool>("base").unwrap(), Some(true));
        assert_eq!(dir.names(), BTreeSet::from([format!("sessionid{key}")]));
    }

    /// The file lock excludes other holders of the lock file (another process, here another
    /// open file description, which `flock` treats alike), and loads never wait for it.
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saves_wait_for_the_file_lock_and_loads_do_not() {
        let dir = TempDir::new();
        let store = dir.store();
        let (key, version) = store.create(&record(json!({"n": 0}))).await.unwrap();
        let stripe = stripe_of(&format!("sessionid{key}"));
        let lock_path = dir.file(&format!("{LOCK_FILE_PREFIX}{stripe:02}"));
        let other = OpenOptions::new().write(true).open(&lock_path).unwrap();
        other.lock().unwrap();

        let saving = tokio::spawn({
            let (store, key) = (store.clone(), key.clone());
            async move {
                store
                    .save(&key, &record(json!({"n": 1})), &version)
                    .await
                    .unwrap()
            }
        });
        tokio::time::sleep(StdDuration::from_millis(300)).await;
        assert!(
            !saving.is_finished(),
            "a save ignored another holder's lock"
        );
        // Loads take no file lock (the rename keeps them atomic).
        assert_eq!(load_data(&store, &key).await, Some(json!({"n": 0})));
        other.unlock().unwrap();
        assert!(matches!(saving.await.unwrap(), SaveOutcome::Saved { .. }));
        assert_eq!(load_data(&store, &key).await, Some(json!({"n": 1})));
    }

    #[tokio::test]
    async fn clear_expired_removes_expired_files_only() {
        let dir = TempDir::new();
        let store = dir.store();
        let old = StdDuration::from_secs(15 * 86_400);

        let (live, _) = store.create(&record(json!({"live": true}))).await.unwrap();
        let (dead, _) = store.create(&record(json!({"dead": true}))).await.unwrap();
        set_mtime(&store.path(&dead).unwrap(), old);
        let (negative, _) = store
            .create(&record(json!({"_session_expiry": -10})))
            .await
            .unwrap();
        // An old placeholder left by a crash expires like any empty session.
        fs::write(dir.file("sessionidplaceholder0"), "").unwrap();
        set_mtime(&dir.file("sessionidplaceholder0"), old);
        // Temporary files: a stale one goes, a fresh one (a save under way) stays.
        let stale_temp = format!("sessionid{live}_out_abc123");
        let fresh_temp = format!("sessionid{live}_out_def456");
        fs::write(dir.file(&stale_temp), "{}").unwrap();
        set_mtime(&dir.file(&stale_temp), StdDuration::from_secs(120));
        fs::write(dir.file(&fresh_temp), "{}").unwrap();
        // Foreign files, even old ones, are never touched.
        let foreign = [
            "notes.txt",
            "sessionid",
            "sessionidshort",
            "sessionidUPPERCASE0",
            "sessionidabc.defghij",
            "sessionid_out_abc",
            "xsessionidabcdefgh12",
        ];
        for name in foreign {
            fs::write(dir.file(name), "{}").unwrap();
            set_mtime(&dir.file(name), old);
        }
        // Old files in a subdirectory and behind a symbolic link are not followed.
        fs::create_dir(dir.file("sessionidsubdir000")).unwrap();
        fs::write(dir.file("sessionidsubdir000/sessionidinside00"), "{}").unwrap();
        set_mtime(&dir.file("sessionidsubdir000/sessionidinside00"), old);
        let outside = TempDir::new();
        fs::write(outside.file("target"), "{}").unwrap();
        set_mtime(&outside.file("target"), old);
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.file("target"), dir.file("sessionidsymlink00")).unwrap();

        store.clear_expired().await.unwrap();

        let names = dir.names();
        assert!(names.contains(&format!("sessionid{live}")));
        assert!(!names.contains(&format!("sessionid{dead}")));
        assert!(!names.contains(&format!("sessionid{negative}")));
        assert!(!names.contains("sessionidplaceholder0"));
        assert!(!names.contains(&stale_temp));
        assert!(names.contains(&fresh_temp));
        for name in foreign {
            assert!(names.contains(name), "{name} was removed");
        }
        assert!(dir.file("sessionidsubdir000/sessionidinside00").exists());
        assert!(outside.file("target").exists());
        #[cfg(unix)]
        assert!(names.contains("sessionidsymlink00"));
        assert_eq!(load_data(&store, &live).await, Some(json!({"live": true})));
    }

    #[tokio::test]
    async fn lock_files_are_bounded() {
        let dir = TempDir::new();
        let store = dir.store();
        for _ in 0..300 {
            let (key, _) = store.create(&record(json!({}))).await.unwrap();
            store.delete(&key).await.unwrap();
        }
        let all = fs::read_dir(&dir.0).unwrap().count();
        assert!(all <= STRIPES, "{all} files left");
        assert!(dir.names().is_empty(), "{:?}", dir.names());
    }

    #[test]
    fn stripes_are_stable_across_processes_and_versions() {
        // FNV-1a 64 of the file name; changing it would let two versions race unlocked.
        assert_eq!(stripe_of(""), (0xcbf2_9ce4_8422_2325_u64 % 64) as usize);
        assert_eq!(stripe_of("a"), (0xaf63_dc4c_8601_ec8c_u64 % 64) as usize);
        let spread: BTreeSet<_> = (0..1000)
            .map(|_| stripe_of(&format!("sessionid{}", SessionKey::generate().unwrap())))
            .collect();
        assert_eq!(spread.len(), STRIPES);
    }

    #[test]
    fn new_needs_an_existing_directory() {
        let dir = TempDir::new();
        let missing = dir.file("missing");
        assert!(matches!(FileStore::new(&missing), Err(Error::Config(_))));
        fs::write(dir.file("file"), "").unwrap();
        assert!(matches!(
            FileStore::new(dir.file("file")),
            Err(Error::Config(_))
        ));
        let store = FileStore::new(&dir.0).unwrap();
        assert_eq!(store.dir(), dir.0.as_path());
        assert_eq!(store.prefix(), "sessionid");
        assert_eq!(store.clone().with_prefix("sid").prefix(), "sid");
        assert_eq!(
            store.prefix(),
            "sessionid",
            "clones do not share builder changes"
        );
    }

    #[test]
    fn file_times_convert_without_panicking() {
        assert_eq!(
            to_datetime(SystemTime::UNIX_EPOCH),
            OffsetDateTime::UNIX_EPOCH
        );
        let now = SystemTime::now();
        assert!((to_datetime(now) - OffsetDateTime::now_utc()).abs() < Duration::seconds(5));
        if let Some(far) = SystemTime::UNIX_EPOCH.checked_add(StdDuration::from_secs(u64::MAX / 4))
        {
            assert_eq!(to_datetime(far), PrimitiveDateTime::MAX.assume_utc());
        }
        if let Some(early) =
            SystemTime::UNIX_EPOCH.checked_sub(StdDuration::from_secs(u64::MAX / 4))
        {
            assert_eq!(to_datetime(early), PrimitiveDateTime::MIN.assume_utc());
        }
    }
}
