//! The audit events over real HTTP: the app's hook gets each lifecycle event (created, key
//! cycled, flushed, expired on load, interrupted by a concurrent logout, rejected cookie),
//! named by a fingerprint that stays the same for one key and is never the key; and the
//! `tracing` lines of those events (captured here) never carry a key or a cookie value.
//!
//! Each test runs on a current-thread runtime of its own under a thread-local subscriber,
//! so the server, the client and the logs all stay on the test's thread (and away from the
//! `faults` suite's global subscriber).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use serde_json::json;
use sessionbase::{Error, Session, SessionConfig, SessionEvent, SessionEventKind, SessionLayer};
use tokio::sync::Notify;

use crate::common::{SuiteStore, client, on_both_paths, session_cookie, spawn};

/// Runs `test` on a current-thread runtime with every `tracing` line at INFO and above
/// written to the returned text.
pub fn with_captured_logs<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    tracing::subscriber::with_default(subscriber, || runtime.block_on(test()));
    let text = buffer
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    String::from_utf8(text).expect("UTF-8 logs")
}

/// Lets a test hold a request inside its handler while another request runs.
#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

/// `/set` writes, `/items` reads, `/cycle` cycles the key, `/flush` logs out; `/slow`
/// writes, then waits for the test's go before the layer saves.
fn app<S: SuiteStore>(store: S, config: SessionConfig, gate: Arc<Gate>) -> Router {
    let layer = SessionLayer::new(store)
        .with_config(config)
        .expect("a valid configuration");
    Router::new()
        .route(
            "/set",
            get(|session: Session| async move {
                session.insert_value("user", json!(7));
                "ok"
            }),
        )
        .route(
            "/items",
            get(|session: Session| async move { session.len().to_string() }),
        )
        .route(
            "/cycle",
            get(|session: Session| async move {
                session.cycle_key().await?;
                Ok::<_, Error>("cycled")
            }),
        )
        .route(
            "/flush",
            get(|session: Session| async move {
                session.flush().await?;
                Ok::<_, Error>("flushed")
            }),
        )
        .route(
            "/login",
            get(|session: Session| async move {
                session.insert_value("_auth_user_id", json!("7"));
                "ok"
            }),
        )
        .route(
            "/revoke_others",
            get(|session: Session| async move {
                let revoked = session.revoke_other_sessions().await?;
                Ok::<_, Error>(revoked.to_string())
            }),
        )
        .route(
            "/slow",
            get(move |session: Session| async move {
                session.insert_value("late", json!("write"));
                gate.entered.notify_one();
                gate.release.notified().await;
                "ok"
            }),
        )
        .layer(layer)
}

async fn get_with(base: &str, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{base}{path}"));
    if let Some(value) = cookie {
        request = request.header(header::COOKIE, format!("sessionid={value}"));
    }
    request
        .send()
        .await
        .expect("the request reaches the server")
}

/// The session cookie a response sets.
fn new_key(response: &reqwest::Response) -> String {
    session_cookie(response, "sessionid").value
}

/// What the hook received, taken out.
fn take(events: &Mutex<Vec<SessionEvent>>) -> Vec<SessionEvent> {
    std::mem::take(&mut *events.lock().unwrap_or_else(PoisonError::into_inner))
}

const FORGED: &str = "Forged-Cookie-Value-0123";

fn hook_gets_each_event_and_never_a_key<S: SuiteStore>() {
    let mut keys: Vec<String> = Vec::new();
    let logs = with_captured_logs(|| async {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let config = SessionConfig::default()
            .with_event_hook(move |e: &SessionEvent| sink.lock().unwrap().push(*e));
        let gate = Arc::new(Gate::default());
        let base = spawn(app(S::new_store(), config, Arc::clone(&gate))).await;
        let kinds = |events: &[SessionEvent]| events.iter().map(|e| e.kind).collect::<Vec<_>>();

        // Created: the first save of a new session.
        let a = new_key(&get_with(&base, "/set", None).await);
        let created = take(&events);
        assert_eq!(kinds(&created), [SessionEventKind::Created]);
        let fa = created[0].session.expect("a fingerprint");
        // Using the session again is no event.
        get_with(&base, "/items", Some(&a)).await;
        get_with(&base, "/set", Some(&a)).await;
        assert_eq!(take(&events), []);

        // KeyCycled: the new key's fingerprint, and the old one's.
        let b = new_key(&get_with(&base, "/cycle", Some(&a)).await);
        let cycled = take(&events);
        assert_eq!(kinds(&cycled), [SessionEventKind::KeyCycled]);
        assert_eq!(cycled[0].previous, Some(fa));
        let fb = cycled[0].session.expect("a fingerprint");
        assert_ne!(fa, fb);

        // Flushed, then ExpiredOnLoad when the old cookie comes back.
        let flushed = get_with(&base, "/flush", Some(&b)).await;
        assert!(session_cookie(&flushed, "sessionid").is_removal());
        let logged_out = take(&events);
        assert_eq!(kinds(&logged_out), [SessionEventKind::Flushed]);
        assert_eq!(logged_out[0].session, Some(fb));
        assert_eq!(body(get_with(&base, "/items", Some(&b)).await).await, "0");
        let expired = take(&events);
        assert_eq!(kinds(&expired), [SessionEventKind::ExpiredOnLoad]);
        assert_eq!(expired[0].session, Some(fb));
        // A well-formed key never issued loads the same way.
        let never = sessionbase::SessionKey::generate().unwrap().to_string();
        get_with(&base, "/items", Some(&never)).await;
        let unknown = take(&events);
        assert_eq!(kinds(&unknown), [SessionEventKind::ExpiredOnLoad]);
        assert!(unknown[0].session.is_some_and(|f| f != fb));

        // RejectedCookie: a forged value, the same fingerprint each time it comes back.
        get_with(&base, "/items", Some(FORGED)).await;
        get_with(&base, "/items", Some(FORGED)).await;
        let rejected = take(&events);
        assert_eq!(
            kinds(&rejected),
            [
                SessionEventKind::RejectedCookie,
                SessionEventKind::RejectedCookie
            ]
        );
        assert!(rejected[0].session.is_some());
        assert_eq!(rejected[0].session, rejected[1].session);

        // Interrupted: a logout while another request of the session is in its handler.
        let c = new_key(&get_with(&base, "/set", None).await);
        let fc = take(&events)[0].session;
        let slow = tokio::spawn({
            let (base, c) = (base.clone(), c.clone());
            async move { get_with(&base, "/slow", Some(&c)).await.status() }
        });
        gate.entered.notified().await;
        get_with(&base, "/flush", Some(&c)).await;
        gate.release.notify_one();
        assert_eq!(slow.await.unwrap(), StatusCode::BAD_REQUEST);
        let interrupted = take(&events);
        assert_eq!(
            kinds(&interrupted),
            [SessionEventKind::Flushed, SessionEventKind::Interrupted]
        );
        assert!(interrupted.iter().all(|e| e.session == fc));

        // No event shows a key, in its fields or its Debug form.
        let all = [
            created,
            cycled,
            logged_out,
            expired,
            unknown,
            rejected,
            interrupted,
        ];
        keys.extend([a, b, c, never, FORGED.to_owned()]);
        for event in all.iter().flatten() {
            let shown = format!("{event:?} {:?}", event.session.map(|f| f.to_string()));
            assert!(keys.iter().all(|k| !shown.contains(k.as_str())), "{shown}");
            if let Some(fingerprint) = event.session {
                assert_eq!(fingerprint.to_string().len(), 16);
            }
        }
    });

    // Each event was logged, with its fingerprint; no line carries a key or the cookie.
    for event in [
        "created",
        "key_cycled",
        "flushed",
        "expired_on_load",
        "rejected_cookie",
        "interrupted",
    ] {
        let line = logs
            .lines()
            .find(|l| l.contains(&format!("event=\"{event}\"")))
            .unwrap_or_else(|| panic!("no log line for {event}: {logs}"));
        assert!(line.contains("sessionbase::events"), "{line}");
        assert!(line.contains("session="), "{line}");
    }
    assert!(logs.contains("previous="), "{logs}");
    for key in &keys {
        assert!(
            !logs.contains(key.as_str()),
            "a key or cookie value is logged: {key}\n{logs}"
        );
    }
}

async fn body(response: reqwest::Response) -> String {
    response.text().await.expect("a body")
}

fn without_a_hook_events_are_still_logged<S: SuiteStore>() {
    // Without a hook the events are still logged.
    let logs = with_captured_logs(|| async {
        let gate = Arc::new(Gate::default());
        let base = spawn(app(S::new_store(), SessionConfig::default(), gate)).await;
        let key = new_key(&get_with(&base, "/set", None).await);
        get_with(&base, "/flush", Some(&key)).await;
    });
    assert!(logs.contains("event=\"created\""), "{logs}");
    assert!(logs.contains("event=\"flushed\""), "{logs}");
}

/// "Log out other devices": one `Revoked` event per session revoked, named by that
/// session's fingerprint (the one its `Created` carried), logged, and never the key.
fn revocation_is_an_event_of_the_revoked_session<S: SuiteStore>() {
    let mut keys = Vec::new();
    let logs = with_captured_logs(|| async {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let config = SessionConfig::default()
            .with_event_hook(move |e: &SessionEvent| sink.lock().unwrap().push(*e));
        let base = spawn(app(S::new_store(), config, Arc::default())).await;
        let laptop = new_key(&get_with(&base, "/login", None).await);
        take(&events);
        let phone = new_key(&get_with(&base, "/login", None).await);
        let phone_created = take(&events);
        assert_eq!(phone_created[0].kind, SessionEventKind::Created);

        let answer = get_with(&base, "/revoke_others", Some(&laptop)).await;
        assert_eq!(body(answer).await, "1");
        let revoked = take(&events);
        assert_eq!(
            revoked.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [SessionEventKind::Revoked]
        );
        assert_eq!(revoked[0].session, phone_created[0].session);
        // The phone is logged out: its cookie now names no session.
        assert_eq!(
            body(get_with(&base, "/items", Some(&phone)).await).await,
            "0"
        );
        assert_eq!(take(&events)[0].kind, SessionEventKind::ExpiredOnLoad);
        let shown = format!("{revoked:?}");
        assert!(
            !shown.contains(&phone) && !shown.contains(&laptop),
            "{shown}"
        );
        keys.extend([laptop, phone]);
    });
    let line = logs
        .lines()
        .find(|l| l.contains("event=\"revoked\""))
        .unwrap_or_else(|| panic!("no log line for the revocation: {logs}"));
    assert!(line.contains("session="), "{line}");
    for key in &keys {
        assert!(!logs.contains(key.as_str()), "a key is logged: {logs}");
    }
}

on_both_paths! {
    #[test]
    fn revocation_is_an_event_of_the_revoked_session;
    #[test]
    fn hook_gets_each_event_and_never_a_key;
    #[test]
    fn without_a_hook_events_are_still_logged;
}
