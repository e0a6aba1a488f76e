//! `spawn_clear_expired`: Django's `clearsessions`, run periodically in the background.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::SessionStore;

/// The background task started by [`spawn_clear_expired`]. Dropping the handle leaves the
/// task running; [`stop`](Self::stop) ends it.
#[derive(Debug)]
pub struct ClearExpiredTask {
    handle: JoinHandle<()>,
}

impl ClearExpiredTask {
    /// Stops the task. A `clear_expired` under way is abandoned; running it again later is
    /// harmless, since clearing is idempotent.
    pub fn stop(self) {
        self.handle.abort();
    }

    /// Whether the task has ended (it only ends when stopped or its runtime shuts down).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Calls `store.clear_expired()` every `interval` (the first time after one interval) on the
/// current Tokio runtime, until [`ClearExpiredTask::stop`].
///
/// A failing run is logged at ERROR and the task tries again at the next interval, so a store
/// that is down for a while does not end the cleaning for good.
///
/// ```
/// use std::time::Duration;
/// use sessionbase::{MemoryStore, store::spawn_clear_expired};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let task = spawn_clear_expired(store.clone(), Duration::from_secs(3600));
/// // … serve requests with `SessionLayer::new(store)` …
/// task.stop();
/// # });
/// ```
pub fn spawn_clear_expired<S: SessionStore>(store: S, interval: Duration) -> ClearExpiredTask {
    let handle = tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.clear_expired().await {
                Ok(()) => tracing::debug!("cleared expired sessions"),
                Err(error) => tracing::error!(
                    %error,
                    cause = ?std::error::Error::source(&error),
                    "clearing expired sessions failed; trying again next interval"
                ),
            }
        }
    });
    ClearExpiredTask { handle }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LoadedRecord, Record, SaveOutcome, Version};
    use crate::{Error, SessionKey};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fails every other `clear_expired`, counting calls.
    #[derive(Clone, Default)]
    struct Flaky(Arc<AtomicUsize>);

    impl SessionStore for Flaky {
        async fn load(&self, _: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
            Ok(None)
        }
        async fn create(&self, _: &Record) -> Result<(SessionKey, Version), Error> {
            Err(Error::store("unused"))
        }
        async fn save(
            &self,
            _: &SessionKey,
            _: &Record,
            _: &Version,
        ) -> Result<SaveOutcome, Error> {
            Ok(SaveOutcome::Gone)
        }
        async fn delete(&self, _: &SessionKey) -> Result<(), Error> {
            Ok(())
        }
        async fn exists(&self, _: &SessionKey) -> Result<bool, Error> {
            Ok(false)
        }
        async fn clear_expired(&self) -> Result<(), Error> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            if n.is_multiple_of(2) {
                Err(Error::unavailable("store down"))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_running_after_errors_until_stopped() {
        let store = Flaky::default();
        let task = spawn_clear_expired(store.clone(), Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(60 * 5 + 1)).await;
        assert_eq!(
            store.0.load(Ordering::SeqCst),
            5,
            "one run per interval, errors included"
        );
        assert!(!task.is_finished());
        task.stop();
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(store.0.load(Ordering::SeqCst), 5, "no run after stop");
    }

    #[cfg(feature = "memory")]
    #[tokio::test(start_paused = true)]
    async fn clears_a_memory_store() {
        use crate::store::MemoryStore;
        use serde_json::Map;
        let store = MemoryStore::new();
        let record = Record {
            data: Arc::new(Map::new()),
            expiry_date: time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
        };
        store.create(&record).await.unwrap();
        assert_eq!(store.len(), 1);
        let task = spawn_clear_expired(store.clone(), Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(store.len(), 0);
        task.stop();
    }
}
