//! A visit counter on the in-memory store.
//!
//! ```text
//! cargo run --example counter
//! curl -c jar -b jar http://127.0.0.1:3000/   # 0 earlier visits
//! curl -c jar -b jar http://127.0.0.1:3000/   # 1 earlier visits
//! ```

use axum::{Router, routing::get};
use sessionbase::{MemoryStore, Session, SessionLayer};

async fn index(session: Session) -> Result<String, sessionbase::Error> {
    let visits: u64 = session.get("visits")?.unwrap_or(0);
    session.insert("visits", visits + 1)?;
    Ok(format!("{visits} earlier visits\n"))
}

async fn forget(session: Session) -> Result<&'static str, sessionbase::Error> {
    session.flush().await?;
    Ok("forgotten\n")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let app = Router::new()
        .route("/", get(index))
        .route("/forget", get(forget))
        .layer(SessionLayer::new(MemoryStore::new()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("counter listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
