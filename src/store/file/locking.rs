//! The striped locks: a mutex in this process and an advisory lock file for the others.

use std::fs::File;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Inner;
use super::paths::private_options;
use crate::Error;

/// How many locks sessions are spread over, in this process and across processes.
pub(super) const STRIPES: usize = 64;
/// The name of lock file `n` is this followed by two decimal digits. It can never be a
/// session file: `.` and `-` are not key characters.
pub(super) const LOCK_FILE_PREFIX: &str = ".sessionbase-lock-";

/// In-process halves of the striped locks, shared by every `FileStore` of this process (so
/// two stores on one directory exclude each other even where file locks are per process).
static LOCAL_LOCKS: [Mutex<()>; STRIPES] = [const { Mutex::new(()) }; STRIPES];

/// The lock of one stripe: the in-process mutex, then the file lock (released first, when
/// the file closes).
pub(super) struct StripeLock {
    _file: Option<File>,
    _local: MutexGuard<'static, ()>,
}

impl Inner {
    /// Takes the stripe lock of `file_name`, in this process and across processes.
    pub(super) fn lock(&self, file_name: &str) -> Result<StripeLock, Error> {
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
}

/// The in-process half of `file_name`'s stripe lock.
fn local_lock(file_name: &str) -> MutexGuard<'static, ()> {
    // The mutex guards no data: a panic while it was held leaves nothing inconsistent.
    LOCAL_LOCKS[stripe_of(file_name)]
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The stripe of a file name: FNV-1a, fixed so that every process (and every version of
/// this crate) picks the same lock file for the same session.
pub(super) fn stripe_of(file_name: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in file_name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // STRIPES is far below u64::MAX, so the remainder fits any usize.
    (hash % STRIPES as u64) as usize
}
