//! Audit events of the session lifecycle: to the app's hook
//! ([`SessionConfig::with_event_hook`]), to `tracing` (target `sessionbase::events`), and,
//! with the `metrics` feature, to the counter `sessionbase_events_total{event}`.
//!
//! An event names its session by a [`Fingerprint`], a salted hash of the key, never the key:
//! the salt is random per process, so log lines about one session can be told apart and
//! matched with each other, and a fingerprint cannot be checked against guessed keys nor
//! turned back into a cookie. With no hook set and no subscriber listening at INFO, an
//! event costs a branch: no hash, no allocation.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use sessionbase::events::{SessionEvent, SessionEventKind};
//! use sessionbase::{MemoryStore, Session, SessionConfig};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = Arc::clone(&seen);
//! let config = SessionConfig::default()
//!     .with_event_hook(move |event: &SessionEvent| sink.lock().unwrap().push(event.kind));
//! let session = Session::new(MemoryStore::new(), config);
//! session.insert("user", 7)?;
//! session.save().await?;
//! session.cycle_key().await?;
//! session.flush().await?;
//! assert_eq!(
//!     *seen.lock().unwrap(),
//!     [SessionEventKind::Created, SessionEventKind::KeyCycled, SessionEventKind::Flushed]
//! );
//! # Ok::<(), sessionbase::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::{Arc, LazyLock};

use crate::{SessionConfig, SessionKey};

/// What happened to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionEventKind {
    /// A session was stored under a new key (its first save, or `create()`).
    Created,
    /// `cycle_key()` moved a session to a new key (on login, against session fixation);
    /// [`SessionEvent::previous`] is the old key's fingerprint.
    KeyCycled,
    /// `flush()` deleted the session and dropped its key (logout).
    Flushed,
    /// The cookie named a session the store no longer has (expired, deleted or never
    /// issued) or one past `absolute_max_age`: it loaded as an empty session.
    ExpiredOnLoad,
    /// Django's `SessionInterrupted`: a save found its record deleted in the meantime (a
    /// concurrent logout, a revocation), and the session was not resurrected.
    Interrupted,
    /// The request's session cookie was not a well-formed key for the store (forged,
    /// truncated, or from another application); the fingerprint is of the rejected value.
    RejectedCookie,
    /// The session was revoked on the server (by the app, through the user index).
    Revoked,
}

impl SessionEventKind {
    /// The name used in logs and in the metrics' `event` label: `created`, `key_cycled`,
    /// `flushed`, `expired_on_load`, `interrupted`, `rejected_cookie`, `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::KeyCycled => "key_cycled",
            Self::Flushed => "flushed",
            Self::ExpiredOnLoad => "expired_on_load",
            Self::Interrupted => "interrupted",
            Self::RejectedCookie => "rejected_cookie",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for SessionEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A salted hash of a session key (or of a rejected cookie value): 16 hex digits in logs.
/// The same value gives the same fingerprint for the life of the process, and nothing
/// else can be learnt from it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 8]);

impl Fingerprint {
    /// The fingerprint of `value` in this process.
    pub(crate) fn of(value: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        static SALT: LazyLock<[u8; 16]> = LazyLock::new(|| {
            let mut salt = [0u8; 16];
            // A failed OS RNG leaves a zero salt: the fingerprint then only stops being secret.
            let _ = rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut salt);
            salt
        });
        let digest = Sha256::new()
            .chain_update(*SALT)
            .chain_update(value)
            .finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        Self(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// One event of a session's lifecycle, as the hook receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionEvent {
    /// What happened.
    pub kind: SessionEventKind,
    /// The session concerned: its (new) key's fingerprint, or the rejected value's; `None`
    /// when there was no key (a session flushed before it was ever saved).
    pub session: Option<Fingerprint>,
    /// For [`SessionEventKind::KeyCycled`], the old key's fingerprint.
    pub previous: Option<Fingerprint>,
}

/// The app's receiver of [`SessionEvent`]s ([`SessionConfig::event_hook`]). It runs in the
/// request, synchronously, sometimes while the session's state is locked (`expired_on_load`
/// fires inside the first read of the data), so it should only hand the event on (a channel,
/// a counter) and never use a `Session`.
/// Two hooks are equal when they are the same closure (clones of one `EventHook`).
#[derive(Clone)]
pub struct EventHook(Arc<dyn Fn(&SessionEvent) + Send + Sync>);

impl EventHook {
    /// A hook calling `hook` with every event.
    pub fn new(hook: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        Self(Arc::new(hook))
    }
}

impl fmt::Debug for EventHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventHook(..)")
    }
}

impl PartialEq for EventHook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for EventHook {}

impl SessionConfig {
    /// Sets `event_hook` to `hook`.
    pub fn with_event_hook(mut self, hook: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        self.event_hook = Some(EventHook::new(hook));
        self
    }
}

const TARGET: &str = "sessionbase::events";

/// Delivers an event about `key` (and, for a cycled key, `previous`): counted, logged, and
/// handed to the hook. Fingerprints are computed only when someone reads them.
pub(crate) fn emit(
    config: &SessionConfig,
    kind: SessionEventKind,
    key: Option<&[u8]>,
    previous: Option<&[u8]>,
) {
    crate::instruments::event(kind);
    let warn = matches!(
        kind,
        SessionEventKind::Interrupted | SessionEventKind::RejectedCookie
    );
    let logged = if warn {
        tracing::enabled!(target: TARGET, tracing::Level::WARN)
    } else {
        tracing::enabled!(target: TARGET, tracing::Level::INFO)
    };
    if !logged && config.event_hook.is_none() {
        return;
    }
    let event = SessionEvent {
        kind,
        session: key.map(Fingerprint::of),
        previous: previous.map(Fingerprint::of),
    };
    let session = event.session.map(tracing::field::display);
    let previous = event.previous.map(tracing::field::display);
    if warn {
        tracing::warn!(target: TARGET, event = kind.as_str(), session, previous, "{}", message(kind));
    } else {
        tracing::info!(target: TARGET, event = kind.as_str(), session, previous, "{}", message(kind));
    }
    if let Some(hook) = &config.event_hook {
        (hook.0)(&event);
    }
}

fn message(kind: SessionEventKind) -> &'static str {
    match kind {
        SessionEventKind::Created => "session created",
        SessionEventKind::KeyCycled => "session key cycled",
        SessionEventKind::Flushed => "session flushed",
        SessionEventKind::ExpiredOnLoad => {
            "session cookie named no live session; treating it as no session"
        }
        SessionEventKind::Interrupted => "session deleted during the request; not saved",
        SessionEventKind::RejectedCookie => {
            "session cookie is not a well-formed key; treating it as no session"
        }
        SessionEventKind::Revoked => "session revoked",
    }
}

/// An event about the session `key`.
pub(crate) fn emit_for(config: &SessionConfig, kind: SessionEventKind, key: Option<&SessionKey>) {
    emit(config, kind, key.map(|k| k.as_str().as_bytes()), None);
}

/// The event of a revocation, once the record keyed `record_key` is gone
/// (`store/user_index.rs`). Its fingerprint is the record key's: the session key's own for
/// stores without a private id, so it matches the session's other events. A revocation
/// without a session (a store's `revoke_user_sessions`) has no configuration, and so no hook:
/// it is logged and counted.
pub(crate) fn revoked(config: Option<&SessionConfig>, record_key: &str) {
    static NO_HOOK: std::sync::LazyLock<SessionConfig> =
        std::sync::LazyLock::new(SessionConfig::default);
    let config = config.unwrap_or(&NO_HOOK);
    emit(
        config,
        SessionEventKind::Revoked,
        Some(record_key.as_bytes()),
        None,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn revoked_reaches_the_hook_with_the_key_s_fingerprint_only() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let config =
            SessionConfig::default().with_event_hook(move |e| sink.lock().unwrap().push(*e));
        let key = SessionKey::generate().unwrap();
        revoked(Some(&config), key.as_str());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].kind, SessionEventKind::Revoked);
        assert_eq!(
            seen[0].session,
            Some(Fingerprint::of(key.as_str().as_bytes()))
        );
        let shown = format!("{:?} {}", seen[0], seen[0].session.unwrap());
        assert!(!shown.contains(key.as_str()), "{shown}");
    }

    #[test]
    fn fingerprints_are_stable_per_value_and_hooks_equal_by_identity() {
        assert_eq!(Fingerprint::of(b"abc"), Fingerprint::of(b"abc"));
        assert_ne!(Fingerprint::of(b"abc"), Fingerprint::of(b"abd"));
        assert_eq!(Fingerprint::of(b"abc").to_string().len(), 16);
        let hook = EventHook::new(|_| {});
        assert_eq!(hook, hook.clone());
        assert_ne!(hook, EventHook::new(|_| {}));
        let config = SessionConfig::default().with_event_hook(|_| {});
        assert_eq!(config, config.clone());
        assert_ne!(config, SessionConfig::default());
    }
}
