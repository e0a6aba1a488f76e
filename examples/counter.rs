//! A visit counter on the in-memory store: a page for browsers, plain text for curl.
//!
//! ```text
//! cargo run --example counter                 # PORT=3001 to use another port
//! curl -c jar -b jar http://127.0.0.1:3000/   # 0 earlier visits
//! curl -c jar -b jar http://127.0.0.1:3000/   # 1 earlier visits
//! curl -c jar -b jar http://127.0.0.1:3000/forget
//! ```

use std::process::ExitCode;

use axum::{
    Router,
    http::{HeaderMap, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use sessionbase::{MemoryStore, Session, SessionConfig, SessionLayer};

pub(crate) mod support;
use support::page;

/// Whether the client asked for a page (a browser) rather than text (curl sends `*/*`).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

async fn index(session: Session, headers: HeaderMap) -> Result<Response, sessionbase::Error> {
    let visits: u64 = session.get("visits")?.unwrap_or(0);
    session.insert("visits", visits + 1)?;
    let plural = if visits == 1 { "" } else { "s" };
    Ok(if wants_html(&headers) {
        Html(page(
            "Visit counter",
            &format!(
                "<p>You have been here {visits} time{plural} before.</p>\
                 <p><a href=/>Count again</a></p>\
                 <form method=post action=/forget><button>Forget me</button></form>"
            ),
        ))
        .into_response()
    } else {
        format!("{visits} earlier visits\n").into_response()
    })
}

async fn forget(session: Session, headers: HeaderMap) -> Result<Response, sessionbase::Error> {
    // Deletes the record and the cookie.
    session.flush().await?;
    Ok(if wants_html(&headers) {
        Redirect::to("/").into_response()
    } else {
        "forgotten\n".into_response()
    })
}

/// The demo's routes behind the session layer.
pub fn app() -> Result<Router, sessionbase::Error> {
    // `no_store`: a page showing a session must not come back from the browser's cache.
    let config = SessionConfig::default().with_cache_control_no_store(true);
    let layer = SessionLayer::new(MemoryStore::new()).with_config(config)?;
    Ok(Router::new()
        .route("/", get(index))
        .route("/forget", get(forget).post(forget))
        .layer(layer))
}

#[tokio::main]
async fn main() -> ExitCode {
    support::init_tracing();
    match app() {
        Ok(app) => support::serve("counter", app).await,
        Err(e) => {
            eprintln!("counter: {e}");
            ExitCode::FAILURE
        }
    }
}
