//! A visit counter whose sessions live in Redis, so that several instances of the app share
//! them: run it twice on two ports and alternate between them with one cookie jar.
//!
//! ```text
//! # Redis on 127.0.0.1:6379 (or set REDIS_URL, e.g. redis://:password@host:6379/0)
//! PORT=3000 cargo run --example redis --features redis &
//! PORT=3001 cargo run --example redis --features redis &
//!
//! curl -c jar -b jar http://127.0.0.1:3000/        # port 3000: 0 earlier visits
//! curl -c jar -b jar http://127.0.0.1:3001/        # port 3001: 1 earlier visits
//! curl -c jar -b jar http://127.0.0.1:3000/        # port 3000: 2 earlier visits
//! curl -c jar -b jar http://127.0.0.1:3001/forget  # logs out on every instance
//! curl -c jar -b jar http://127.0.0.1:3000/        # port 3000: 0 earlier visits
//! ```
//!
//! Both instances use the same key prefix, so they see the same sessions. If Redis goes
//! away, requests that use the session answer 503 and work again once it is back, without a
//! restart. For a Redis Cluster, build the store with
//! `RedisStore::cluster(["redis://node1:6379/", "redis://node2:6379/"])` instead.

use axum::{Router, extract::State, routing::get};
use sessionbase::{RedisStore, Session, SessionLayer};

async fn index(State(port): State<u16>, session: Session) -> Result<String, sessionbase::Error> {
    let visits: u64 = session.get("visits")?.unwrap_or(0);
    session.insert("visits", visits + 1)?;
    Ok(format!("port {port}: {visits} earlier visits\n"))
}

async fn forget(session: Session) -> Result<&'static str, sessionbase::Error> {
    session.flush().await?;
    Ok("forgotten\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse()?,
        Err(_) => 3000,
    };

    // Never log the URL itself: it may hold a password.
    let store = RedisStore::connect(&redis_url)
        .await?
        .with_prefix("sessionbase-example:");

    let app = Router::new()
        .route("/", get(index))
        .route("/forget", get(forget))
        .layer(SessionLayer::new(store))
        .with_state(port);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        "redis counter listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
