//! The `metrics` feature over real HTTP: a `DebuggingRecorder`, installed for this test's
//! thread only (`metrics::with_local_recorder`, so no other suite's metrics mix in), sees
//! every metric the README lists move: each event counter, save conflicts and retries,
//! store errors by kind, store latency by operation, and session sizes.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use sessionbase::{Error, MemoryStore, Session, SessionConfig, SessionKey, SessionLayer};
use tokio::sync::Notify;

use crate::common::{FailingStore, Failure, client, session_cookie, spawn};

/// The metrics recorded, as (name, sorted labels, value).
type Recorded = Vec<(String, Vec<(String, String)>, DebugValue)>;

fn counter(recorded: &Recorded, name: &str, labels: &[(&str, &str)]) -> u64 {
    recorded
        .iter()
        .filter(|(n, l, _)| n == name && has_labels(l, labels))
        .map(|(_, _, v)| match v {
            DebugValue::Counter(n) => *n,
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

fn histogram(recorded: &Recorded, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    recorded
        .iter()
        .filter(|(n, l, _)| n == name && has_labels(l, labels))
        .flat_map(|(_, _, v)| match v {
            DebugValue::Histogram(values) => {
                values.iter().map(|v| v.into_inner()).collect::<Vec<f64>>()
            }
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .collect()
}

fn has_labels(have: &[(String, String)], want: &[(&str, &str)]) -> bool {
    want.iter()
        .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
}

#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

/// Routes that exercise every store operation and every event.
fn app(store: MemoryStore, config: SessionConfig, gate: Arc<Gate>) -> Router {
    let other = store.clone();
    Router::new()
        .route(
            "/set",
            get(|s: Session| async move {
                s.insert_value("user", json!(7));
                "ok"
            }),
        )
        .route(
            "/items",
            get(|s: Session| async move { s.len().to_string() }),
        )
        .route(
            "/cycle",
            get(|s: Session| async move { s.cycle_key().await.map(|()| "ok") }),
        )
        .route(
            "/flush",
            get(|s: Session| async move { s.flush().await.map(|()| "ok") }),
        )
        .route(
            "/login",
            get(|s: Session| async move {
                s.insert_value("_auth_user_id", json!("7"));
                "ok"
            }),
        )
        .route(
            "/revoke_others",
            get(|s: Session| async move { s.revoke_other_sessions().await.map(|n| n.to_string()) }),
        )
        .route(
            "/exists",
            get(|s: Session| async move {
                let key = s.session_key().map(|k| k.to_string()).unwrap_or_default();
                s.exists(&key).await.map(|e| e.to_string())
            }),
        )
        .route(
            // Writes, while another request saves the same session first: a lost race.
            "/race",
            get(move |s: Session| async move {
                s.insert_value("mine", json!(1));
                let key = s.session_key().expect("a keyed session").to_string();
                let theirs = Session::load(other, SessionConfig::default(), &key).await?;
                theirs.insert_value("theirs", json!(2));
                theirs.save().await?;
                Ok::<_, Error>("ok")
            }),
        )
        .route(
            "/slow",
            get(move |s: Session| async move {
                s.insert_value("late", json!(1));
                gate.entered.notify_one();
                gate.release.notified().await;
                "ok"
            }),
        )
        .layer(SessionLayer::new(store).with_config(config).expect("valid"))
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

async fn drive() {
    let store = MemoryStore::new();
    let gate = Arc::new(Gate::default());
    let base = spawn(app(
        store.clone(),
        SessionConfig::default(),
        Arc::clone(&gate),
    ))
    .await;
    // The same store with save_every_request: an unchanged session is touched.
    let every = SessionConfig::default().with_save_every_request(true);
    let touching = spawn(app(store.clone(), every, Arc::default())).await;

    let created = get_with(&base, "/set", None).await;
    let key = session_cookie(&created, "sessionid").value;
    assert_eq!(
        get_with(&base, "/items", Some(&key)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_with(&touching, "/items", Some(&key)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_with(&base, "/exists", Some(&key)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_with(&base, "/race", Some(&key)).await.status(),
        StatusCode::OK
    );
    let cycled = get_with(&base, "/cycle", Some(&key)).await;
    let key = session_cookie(&cycled, "sessionid").value;
    get_with(&base, "/flush", Some(&key)).await;
    get_with(&base, "/items", Some(&key)).await;
    get_with(&base, "/items", Some("Forged-Cookie-Value")).await;

    // Interrupted: a logout while another request of the session is in its handler.
    let created = get_with(&base, "/set", None).await;
    let key = session_cookie(&created, "sessionid").value;
    let slow = tokio::spawn({
        let (base, key) = (base.clone(), key.clone());
        async move { get_with(&base, "/slow", Some(&key)).await.status() }
    });
    gate.entered.notified().await;
    get_with(&base, "/flush", Some(&key)).await;
    gate.release.notify_one();
    assert_eq!(slow.await.unwrap(), StatusCode::BAD_REQUEST);

    // Revoked: "log out other devices" from one of two sessions of a user.
    let laptop = session_cookie(&get_with(&base, "/login", None).await, "sessionid").value;
    get_with(&base, "/login", None).await;
    let revoked = get_with(&base, "/revoke_others", Some(&laptop)).await;
    assert_eq!(revoked.text().await.unwrap(), "1");

    // Store errors, by kind.
    let valid = SessionKey::generate().unwrap().to_string();
    for failure in [Failure::Unavailable, Failure::Other] {
        let failing = spawn(
            Router::new()
                .route(
                    "/items",
                    get(|s: Session| async move { s.len().to_string() }),
                )
                .layer(SessionLayer::new(FailingStore::new(failure))),
        )
        .await;
        let response = get_with(&failing, "/items", Some(&valid)).await;
        assert!(response.status().is_server_error());
    }
}

#[test]
fn every_metric_moves_over_http() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    metrics::with_local_recorder(&recorder, || runtime.block_on(drive()));
    let recorded: Recorded = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect();

    for event in [
        "created",
        "key_cycled",
        "flushed",
        "expired_on_load",
        "interrupted",
        "rejected_cookie",
        "revoked",
    ] {
        let n = counter(&recorded, "sessionbase_events_total", &[("event", event)]);
        assert!(n >= 1, "no {event} event counted: {recorded:?}");
    }
    assert_eq!(
        counter(
            &recorded,
            "sessionbase_events_total",
            &[("event", "created")]
        ),
        4,
        "four sessions were created"
    );
    assert!(counter(&recorded, "sessionbase_save_conflicts_total", &[]) >= 1);
    assert!(counter(&recorded, "sessionbase_save_retries_total", &[]) >= 1);
    for (kind, op) in [("unavailable", "load"), ("store", "load")] {
        let labels = [("kind", kind), ("op", op)];
        let n = counter(&recorded, "sessionbase_store_errors_total", &labels);
        assert_eq!(n, 1, "{kind}: {recorded:?}");
    }
    for op in ["load", "create", "save", "touch", "delete", "exists"] {
        let durations = histogram(
            &recorded,
            "sessionbase_store_duration_seconds",
            &[("op", op)],
        );
        assert!(!durations.is_empty(), "no {op} timed: {recorded:?}");
        assert!(
            durations.iter().all(|d| (0.0..10.0).contains(d)),
            "{op}: {durations:?}"
        );
    }
    // `{"user":7}`, the first session's first save, is 10 bytes of JSON.
    let sizes = histogram(&recorded, "sessionbase_session_size_bytes", &[]);
    assert!(sizes.contains(&10.0), "{sizes:?}");
}
