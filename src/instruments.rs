//! The metrics the crate records through the `metrics` facade, with the `metrics` feature
//! (the app installs the recorder: Prometheus, StatsD, ...). Without the feature each
//! function here is empty and inlined away.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `sessionbase_events_total` | counter | `event` | each [`SessionEventKind`] |
//! | `sessionbase_save_conflicts_total` | counter | | saves and touches that lost a compare-and-swap to a concurrent write |
//! | `sessionbase_save_retries_total` | counter | | saves written again on top of the fresh record after a lost race |
//! | `sessionbase_store_errors_total` | counter | `op`, `kind` | store calls that failed, by [`Error`] kind |
//! | `sessionbase_store_duration_seconds` | histogram | `op` | each store call, the `store_timeout` included |
//! | `sessionbase_session_size_bytes` | histogram | | the session data each save writes, as compact JSON |
//!
//! `op` is `load`, `create`, `save`, `touch`, `delete` or `exists`; `kind` is
//! `unavailable`, `timeout`, `store`, `serde`, `too_large`, `cookie_too_large`, `random`,
//! `config` or `other`.

use crate::Error;
use crate::events::SessionEventKind;
use crate::store::Record;

/// A store operation, the `op` label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Load,
    Create,
    Save,
    Touch,
    Delete,
    Exists,
}

impl Op {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Create => "create",
            Self::Save => "save",
            Self::Touch => "touch",
            Self::Delete => "delete",
            Self::Exists => "exists",
        }
    }
}

/// An error's `kind` label.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::StoreUnavailable(_) => "unavailable",
        Error::StoreTimeout(_) => "timeout",
        Error::Store(_) => "store",
        Error::Serde { .. } => "serde",
        Error::SessionTooLarge { .. } => "too_large",
        Error::CookieTooLarge { .. } => "cookie_too_large",
        Error::Random(_) => "random",
        Error::Config(_) => "config",
        _ => "other",
    }
}

// Labels on the paths every request may take are literals, one macro call per value: the
// `metrics` macros keep such a key in a `static`, where a computed label would allocate a
// key per call (with or without a recorder).

/// Counts an event.
#[inline]
pub(crate) fn event(kind: SessionEventKind) {
    #[cfg(feature = "metrics")]
    {
        use SessionEventKind as K;
        const NAME: &str = "sessionbase_events_total";
        let counter = match kind {
            K::Created => metrics::counter!(NAME, "event" => "created"),
            K::KeyCycled => metrics::counter!(NAME, "event" => "key_cycled"),
            K::Flushed => metrics::counter!(NAME, "event" => "flushed"),
            K::ExpiredOnLoad => metrics::counter!(NAME, "event" => "expired_on_load"),
            K::Interrupted => metrics::counter!(NAME, "event" => "interrupted"),
            K::RejectedCookie => metrics::counter!(NAME, "event" => "rejected_cookie"),
            K::Revoked => metrics::counter!(NAME, "event" => "revoked"),
        };
        counter.increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// Counts a lost compare-and-swap.
#[inline]
pub(crate) fn save_conflict() {
    #[cfg(feature = "metrics")]
    metrics::counter!("sessionbase_save_conflicts_total").increment(1);
}

/// Counts a save written again after a lost race.
#[inline]
pub(crate) fn save_retry() {
    #[cfg(feature = "metrics")]
    metrics::counter!("sessionbase_save_retries_total").increment(1);
}

/// The time a store call started, when metrics are recorded.
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl Timer {
    #[inline]
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }

    /// Records the call's duration, and its error if it failed; returns its result.
    #[inline]
    pub(crate) fn finish<T>(self, op: Op, result: Result<T, Error>) -> Result<T, Error> {
        #[cfg(feature = "metrics")]
        {
            const NAME: &str = "sessionbase_store_duration_seconds";
            let histogram = match op {
                Op::Load => metrics::histogram!(NAME, "op" => "load"),
                Op::Create => metrics::histogram!(NAME, "op" => "create"),
                Op::Save => metrics::histogram!(NAME, "op" => "save"),
                Op::Touch => metrics::histogram!(NAME, "op" => "touch"),
                Op::Delete => metrics::histogram!(NAME, "op" => "delete"),
                Op::Exists => metrics::histogram!(NAME, "op" => "exists"),
            };
            histogram.record(self.started.elapsed().as_secs_f64());
            if let Err(error) = &result {
                // A failure only: its computed labels may allocate.
                let (op, kind) = (op.as_str(), error_kind(error));
                metrics::counter!("sessionbase_store_errors_total", "op" => op, "kind" => kind)
                    .increment(1);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = op;
        result
    }
}

/// Records the size of the session data a save wrote: the length of its compact JSON,
/// counted without building it.
#[inline]
pub(crate) fn session_size(record: &Record) {
    #[cfg(feature = "metrics")]
    {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        // A map of JSON values always serializes; a failure would only leave the count short.
        if serde_json::to_writer(&mut count, &*record.data).is_ok() {
            metrics::histogram!("sessionbase_session_size_bytes").record(count.0 as f64);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = record;
}
