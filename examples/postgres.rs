//! Several instances, one session: a visit counter whose sessions live in PostgreSQL.
//!
//! Run it twice, on two ports, against the same database:
//!
//! ```sh
//! PORT=3000 cargo run --example postgres --features postgres
//! PORT=3001 cargo run --example postgres --features postgres
//! ```
//!
//! then open <http://127.0.0.1:3000/> and <http://127.0.0.1:3001/> in one browser. Cookies
//! are per host, not per port, so both instances get the same session cookie, and the
//! counter goes up by one whichever instance you visit: each reads and writes the same row
//! of `django_session`. `/logout` on one instance flushes the session for both.
//!
//! Settings, from the environment:
//! - `DATABASE_URL`: the database (default `postgres://postgres@127.0.0.1:5432/test`);
//!   the table `django_session` is created if absent.
//! - `PORT`: the port to listen on, on 127.0.0.1 (default 3000).
//! - `SECRET_KEY`: when set, `session_data` is signed exactly as Django's
//!   `SessionBase.encode` does, so a Django project with this `SECRET_KEY` and the same
//!   database reads these sessions (and these instances read its sessions); when unset,
//!   `session_data` is plain JSON.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sessionbase::store::{Codec, spawn_clear_expired};
use sessionbase::{Error, PostgresStore, Session, SessionLayer};

async fn index(State(port): State<u16>, session: Session) -> Result<String, Error> {
    let visits: u64 = session.get("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(format!(
        "Instance on port {port}: {visits} visit(s) in this session, across every instance.\n"
    ))
}

async fn logout(session: Session) -> Result<&'static str, Error> {
    session.flush().await?;
    Ok("Session flushed on every instance.\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();

    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse()?,
        Err(_) => 3000,
    };

    let mut store = PostgresStore::connect(&url).await?;
    if let Ok(secret) = std::env::var("SECRET_KEY") {
        store = store.with_codec(Codec::django(secret, Vec::<String>::new()));
    }
    // Every instance may migrate at start-up: it is idempotent and serialised.
    store.migrate().await?;
    // Django's `clearsessions`, hourly (harmless when several instances run it).
    let _cleaner = spawn_clear_expired(store.clone(), Duration::from_secs(3600));

    let app = Router::new()
        .route("/", get(index))
        .route("/logout", get(logout))
        .with_state(port)
        .layer(SessionLayer::new(store));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
