//! Writing session files: replace by rename, create, compare-and-swap save and touch,
//! delete, and `clear_expired`'s scan.

use std::fs;
use std::io::{ErrorKind, Write};
use std::time::{Duration as StdDuration, SystemTime};

use super::Inner;
use super::paths::{private_options, remove_if_present};
use super::record::Stored;
use crate::key::is_server_side_key;
use crate::store::{SaveOutcome, Version};
use crate::{Error, SessionKey};

/// What separates a session file's name from the random part of its temporary files
/// (Django's `tempfile.mkstemp(prefix=<file name> + "_out_")`).
const TEMP_MARKER: &str = "_out_";
/// Temporary files older than this are leftovers of a crash; `clear_expired` removes them.
const STALE_TEMP_AGE: StdDuration = StdDuration::from_secs(60);
/// Attempts at drawing an unused key (or temporary name) before giving up: with 165-bit keys
/// a second attempt already means something other than chance.
const MAX_NAME_ATTEMPTS: usize = 16;

impl Inner {
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

    pub(super) fn create(&self, content: &[u8]) -> Result<(SessionKey, Version), Error> {
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

    pub(super) fn save(
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

    /// Compare-and-swap as `save`, then only the modification time is set to now: a file's
    /// expiry derives from it (Django's `_expiry_date`: mtime + cookie age), so the file
    /// then loads, for Django too, as the same content rewritten now would.
    pub(super) fn touch(&self, key: &SessionKey, expected: &Version) -> Result<SaveOutcome, Error> {
        let file_name = self.file_name(key)?;
        let _lock = self.lock(&file_name)?;
        let path = self.dir.join(&file_name);
        match self.read(&path)? {
            Stored::Missing | Stored::Unreadable | Stored::Expired => return Ok(SaveOutcome::Gone),
            Stored::Live { bytes, .. } if expected.as_bytes() != Some(&bytes[..]) => {
                return Ok(SaveOutcome::Conflict);
            }
            Stored::Live { .. } => {}
        }
        // Opened for writing (Windows needs it to set a time), never created nor truncated.
        match fs::OpenOptions::new().write(true).open(&path) {
            Ok(file) => file
                .set_modified(SystemTime::now())
                .map_err(|e| self.fail("set a session file's modification time", e))?,
            // Removed since by a process that takes no lock (Django).
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(SaveOutcome::Gone),
            Err(e) => return Err(self.fail("open a session file", e)),
        }
        Ok(SaveOutcome::Saved {
            key: key.clone(),
            version: expected.clone(),
        })
    }

    pub(super) fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.delete_stored(&self.record_keys.of(key))
    }

    /// Removes the file of the record keyed `stored` (already a record key).
    pub(super) fn delete_stored(&self, stored: &SessionKey) -> Result<(), Error> {
        let file_name = self.stored_file_name(stored)?;
        let _lock = self.lock(&file_name)?;
        remove_if_present(&self.dir.join(&file_name))
            .map_err(|e| self.fail("remove a session file", e))
    }

    pub(super) fn clear_expired(&self) -> Result<(), Error> {
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
