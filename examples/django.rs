//! An axum service sharing sessions with a Django app: run the Django test project and this
//! example on one database with one secret, log in through Django, and this service knows who
//! is logged in. See "Sharing sessions with Django" in the README for the walk-through.
//!
//! ```text
//! SECRET_KEY=change-me DATABASE_URL=sqlite:///tmp/shared.sqlite3 cargo run --example django
//! ```
//!
//! Settings come from the environment, named as in settings.py: `SECRET_KEY` (required),
//! `SECRET_KEY_FALLBACKS` (comma-separated), `SESSION_ENGINE` (default `db`), `DATABASE_URL`,
//! `SESSION_FILE_PATH`, and `PORT` (default 3000).

use axum::{Router, extract::Query, routing::get};
use serde::Deserialize;
use sessionbase::django::{DjangoConfig, SessionUser};
use sessionbase::{Error, Session};

async fn whoami(session: Session) -> Result<String, Error> {
    Ok(match SessionUser::from_session(&session)? {
        Some(user) => format!(
            "logged in through Django as user {} ({})\n",
            user.user_id, user.backend
        ),
        None => "anonymous\n".to_owned(),
    })
}

#[derive(Deserialize)]
struct Set {
    key: String,
    value: String,
}

async fn set(session: Session, Query(q): Query<Set>) -> Result<String, Error> {
    session.insert(&q.key, &q.value)?;
    Ok(format!("{} = {:?}\n", q.key, q.value))
}

#[derive(Deserialize)]
struct Get {
    key: String,
}

async fn get_value(session: Session, Query(q): Query<Get>) -> String {
    format!(
        "{} = {}\n",
        q.key,
        session.get_value(&q.key).unwrap_or_default()
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());

    let secret = env("SECRET_KEY").ok_or("set SECRET_KEY to the Django app's SECRET_KEY")?;
    let mut django = DjangoConfig::new(secret)
        .with_session_engine(env("SESSION_ENGINE").unwrap_or_else(|| "db".into()));
    if let Some(fallbacks) = env("SECRET_KEY_FALLBACKS") {
        django = django.with_secret_key_fallbacks(fallbacks.split(','));
    }
    if let Some(url) = env("DATABASE_URL") {
        django = django.with_database_url(url);
    }
    if let Some(path) = env("SESSION_FILE_PATH") {
        django = django.with_session_file_path(path);
    }

    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/set", get(set))
        .route("/get", get(get_value))
        .layer(django.layer().await?);

    let port = env("PORT").unwrap_or_else(|| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    tracing::info!(
        "sharing Django's sessions on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
