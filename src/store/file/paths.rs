//! Session file names, and the file-system helpers every operation uses.

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::Inner;
use crate::key::is_server_side_key;
use crate::{Error, SessionKey};

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

impl Inner {
    /// `<prefix><record key>` (the session key, or its private id), after checking that
    /// neither part can name another path.
    pub(super) fn file_name(&self, key: &SessionKey) -> Result<String, Error> {
        self.stored_file_name(&self.record_keys.of(key))
    }

    /// `<prefix><record key>` for a key already mapped to its record key.
    pub(super) fn stored_file_name(&self, key: &SessionKey) -> Result<String, Error> {
        if !is_server_side_key(key.as_str()) {
            return Err(Error::store(
                "file session store: refusing a session key that is not 8 to 40 characters \
                 of [a-z0-9] as a file name",
            ));
        }
        self.check_prefix()?;
        Ok(format!("{}{}", self.prefix, key.as_str()))
    }

    pub(super) fn check_prefix(&self) -> Result<(), Error> {
        if self.prefix.contains(['/', '\\', '\0']) {
            return Err(Error::Config(format!(
                "the FileStore prefix {:?} contains a path separator or NUL",
                self.prefix
            )));
        }
        Ok(())
    }

    pub(super) fn fail(&self, action: &'static str, source: io::Error) -> Error {
        Error::store(IoFailure {
            action,
            dir: self.dir.clone(),
            source,
        })
    }
}

/// Options that create files readable by their owner only (Django's `mkstemp` gives 0600).
pub(super) fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A file time as an `OffsetDateTime`, saturating at the limits of the type.
pub(super) fn to_datetime(t: SystemTime) -> OffsetDateTime {
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
