//! Reading a session file: what it holds, decoded, and when it expires.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::Inner;
use super::paths::to_datetime;
use crate::Error;
use crate::expiry::{self, EXPIRY_KEY, Expiry};
use crate::store::preserved::Preserved;

/// What a session file holds, as far as the store is concerned.
pub(super) enum Stored {
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

impl Inner {
    /// Reads and classifies the file at `path`.
    pub(super) fn read(&self, path: &Path) -> Result<Stored, Error> {
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
    pub(super) fn classify(
        &self,
        bytes: Vec<u8>,
        mtime: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Stored {
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
}
