//! A user's sessions in a directory: every live session file read and decoded, as
//! `clear_expired` reads them, and kept when its data names the user.

use std::fs;
use std::sync::Arc;

use super::Inner;
use super::record::Stored;
use crate::Error;
use crate::key::is_server_side_key;
use crate::store::user_index::belongs_to;
use crate::store::{RecordKey, UserRecord};

impl Inner {
    /// The live session files whose data names the user `user_id`. A file that cannot be
    /// read is logged and skipped: one bad file must not hide the user's other sessions.
    pub(super) fn user_records(&self, user_id: &str) -> Result<Vec<UserRecord>, Error> {
        self.check_prefix()?;
        let entries = fs::read_dir(&self.dir).map_err(|e| self.fail("list the directory", e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.fail("list the directory", e))?;
            let name = entry.file_name();
            let Some(key) = name
                .to_str()
                .and_then(|name| name.strip_prefix(self.prefix.as_str()))
                .filter(|key| is_server_side_key(key))
            else {
                continue;
            };
            // Never follow a symbolic link, nor enter a directory.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            match self.read(&entry.path()) {
                Ok(Stored::Live {
                    data, expiry_date, ..
                }) if belongs_to(&data, &self.user_id_key, user_id) => {
                    found.push(UserRecord {
                        record_key: RecordKey::new(key),
                        data: Arc::new(data),
                        expiry_date: Some(expiry_date),
                        last_saved: None,
                    });
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "user_records: skipping a session file"),
            }
        }
        Ok(found)
    }
}
