//! The session lives in the request's extensions, so it keeps working wherever the request
//! goes: behind a middleware that runs the rest of the stack in a spawned task, behind a
//! `Buffer` (another task polls the inner service), in a plain Tower service, and in a task
//! a handler spawns. Each runs over real HTTP on both dispatch paths (`on_both_paths!` at
//! the end).

use std::convert::Infallible;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Router, routing::get};
use sessionbase::{Error, MemoryStore, Session, SessionLayer};

use crate::common::{self, SuiteStore, on_both_paths};

async fn count(session: Session) -> Result<String, Error> {
    let n: u64 = session.get("n")?.unwrap_or(0) + 1;
    session.insert("n", n)?;
    Ok(n.to_string())
}

/// A common way to survive client disconnects: the rest of the stack runs in its own task.
async fn in_spawned_task(request: Request, next: Next) -> Response {
    tokio::spawn(next.run(request))
        .await
        .expect("the inner stack's task")
}

/// Sends three requests with the cookie the previous one set; returns the bodies.
async fn three_visits(base: &str) -> Vec<String> {
    let client = common::client();
    let mut cookie: Option<String> = None;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let mut request = client.get(format!("{base}/"));
        if let Some(c) = &cookie {
            request = request.header("cookie", c);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        if let Some(set) = common::set_cookies(&response).first() {
            cookie = Some(format!("sessionid={}", set.value));
        }
        bodies.push(response.text().await.unwrap());
    }
    bodies
}

async fn spawned_inner_stack<S: SuiteStore>() {
    let store = S::new_store();
    let app = Router::new()
        .route("/", get(count))
        .layer(middleware::from_fn(in_spawned_task))
        .layer(SessionLayer::new(store));
    let base = common::spawn(app).await;
    assert_eq!(three_visits(&base).await, ["1", "2", "3"]);
}

async fn buffered_inner_stack<S: SuiteStore>() {
    let store = S::new_store();
    use axum::error_handling::HandleErrorLayer;
    use tower::ServiceBuilder;
    let inner = Router::new().route("/", get(count));
    let buffered = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            http::StatusCode::SERVICE_UNAVAILABLE
        }))
        .layer(tower::buffer::BufferLayer::new(16))
        .service(inner);
    let app = Router::new()
        .fallback_service(buffered)
        .layer(SessionLayer::new(store));
    let base = common::spawn(app).await;
    assert_eq!(three_visits(&base).await, ["1", "2", "3"]);
}

/// A plain Tower service (no axum extractor): the session from the request's extensions.
async fn tower_service<S: SuiteStore>() {
    let store = S::new_store();
    let service = tower::service_fn(|request: Request| async move {
        let session = Session::from_extensions(request.extensions()).await?;
        let n: u64 = session.get("n")?.unwrap_or(0) + 1;
        session.insert("n", n)?;
        Ok::<_, Error>(Response::new(axum::body::Body::from(n.to_string())))
    });
    let service = tower::ServiceBuilder::new()
        .map_err(|e: Error| -> Infallible { panic!("{e}") })
        .service(service);
    let app = Router::new()
        .fallback_service(service)
        .layer(SessionLayer::new(store));
    let base = common::spawn(app).await;
    assert_eq!(three_visits(&base).await, ["1", "2", "3"]);
}

/// With a store that answers at once, the handle in the extensions is usable as it is.
#[tokio::test]
async fn extensions_get_works_as_is_on_an_immediate_store() {
    let app = Router::new()
        .route(
            "/",
            get(|request: Request| async move {
                let session = request.extensions().get::<Session>().expect("the layer's");
                let n: u64 = session.get("n").unwrap().unwrap_or(0) + 1;
                session.insert("n", n).unwrap();
                n.to_string()
            }),
        )
        .layer(SessionLayer::new(MemoryStore::new()));
    let base = common::spawn(app).await;
    assert_eq!(three_visits(&base).await, ["1", "2", "3"]);
}

async fn handler_spawns_the_work<S: SuiteStore>() {
    let store = S::new_store();
    let app = Router::new()
        .route(
            "/",
            get(|session: Session| async move {
                tokio::spawn(async move { count(session).await })
                    .await
                    .expect("the handler's task")
            }),
        )
        .layer(SessionLayer::new(store));
    let base = common::spawn(app).await;
    assert_eq!(three_visits(&base).await, ["1", "2", "3"]);
}

on_both_paths! {
    #[tokio::test] async fn spawned_inner_stack;
    #[tokio::test] async fn buffered_inner_stack;
    #[tokio::test] async fn tower_service;
    #[tokio::test] async fn handler_spawns_the_work;
}
