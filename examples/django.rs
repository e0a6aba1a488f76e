//! An axum service sharing sessions with a Django app: run the Django test project and this
//! example on one database, one cache and one secret, log in through Django, and this service
//! knows who is logged in; log in here, and Django's `request.user` is that user. See "Sharing
//! sessions with Django" in the README for the walk-through.
//!
//! ```text
//! SECRET_KEY=change-me DATABASE_URL=sqlite:///tmp/shared.sqlite3 SESSION_ENGINE=cached_db \
//!   CACHE_BACKEND=redis CACHE_LOCATION=redis://127.0.0.1:6379/0 \
//!   cargo run --example django --features redis
//! ```
//!
//! Settings come from the environment, named as in settings.py: `SECRET_KEY` (required),
//! `SECRET_KEY_FALLBACKS` (comma-separated), `SESSION_ENGINE` (default `db`), `DATABASE_URL`
//! (`sqlite:///path` or, with the `postgres` feature, `postgres://...`), `SESSION_FILE_PATH`,
//! `SESSION_CACHE_ALIAS` (default `default`), and `CACHES[SESSION_CACHE_ALIAS]` as
//! `CACHE_BACKEND` (a dotted path, or a short name: `redis`, `django_redis`, `dummy`,
//! `locmem`; default Django's `LocMemCache`, which `cached_db` and `cache` refuse),
//! `CACHE_LOCATION`, `CACHE_KEY_PREFIX` and `CACHE_VERSION`. `PORT` defaults to 3000.
//!
//! Routes (every answer is text): `/whoami`; `/set?key=K&value=V`; `/get?key=K`;
//! `/login?user_id=N` (Django's `login()` with `ModelBackend`, the password hash read from
//! `auth_user`, or given as `&password_hash=`); `/flush` (Django's `logout()`); `/cycle`
//! (`cycle_key()`).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::{Router, http::StatusCode, routing::get};
use serde::Deserialize;
use sessionbase::django::{DjangoCache, DjangoConfig, MODEL_BACKEND, SessionUser};
use sessionbase::{Error, Session};

/// Django's `auth_user` table, read for the password hash `login` needs.
enum Users {
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

impl Users {
    fn connect(url: &str) -> Result<Option<Self>, sqlx::Error> {
        if url.starts_with("sqlite:") {
            return Ok(Some(Self::Sqlite(sqlx::SqlitePool::connect_lazy(url)?)));
        }
        #[cfg(feature = "postgres")]
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            return Ok(Some(Self::Postgres(sqlx::PgPool::connect_lazy(url)?)));
        }
        Ok(None)
    }

    async fn password_hash(&self, id: i64) -> Result<Option<String>, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar("SELECT password FROM auth_user WHERE id = ?")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT password FROM auth_user WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            }
        }
    }
}

struct App {
    django: DjangoConfig,
    users: Option<Users>,
}

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

#[derive(Deserialize)]
struct Login {
    user_id: String,
    password_hash: Option<String>,
}

async fn login(
    State(app): State<Arc<App>>,
    session: Session,
    Query(q): Query<Login>,
) -> Result<(StatusCode, String), Error> {
    let password_hash = match (q.password_hash, &app.users) {
        (Some(hash), _) => hash,
        (None, None) => {
            let text = "no DATABASE_URL to read auth_user from: pass &password_hash=\n";
            return Ok((StatusCode::BAD_REQUEST, text.into()));
        }
        (None, Some(users)) => {
            let Ok(id) = q.user_id.parse() else {
                let text = format!("user_id {:?} is not an auth_user id\n", q.user_id);
                return Ok((StatusCode::BAD_REQUEST, text));
            };
            match users.password_hash(id).await {
                Ok(Some(hash)) => hash,
                Ok(None) => {
                    let text = format!("no user {id} in Django's auth_user table\n");
                    return Ok((StatusCode::NOT_FOUND, text));
                }
                Err(e) => {
                    let text = format!("reading auth_user failed (run Django's migrate?): {e}\n");
                    return Ok((StatusCode::INTERNAL_SERVER_ERROR, text));
                }
            }
        }
    };
    app.django
        .login(&session, &q.user_id, MODEL_BACKEND, &password_hash)
        .await?;
    Ok((StatusCode::OK, format!("logged in as user {}\n", q.user_id)))
}

async fn flush(State(app): State<Arc<App>>, session: Session) -> Result<String, Error> {
    app.django.logout(&session).await?;
    Ok("logged out: session flushed\n".into())
}

async fn cycle(session: Session) -> Result<String, Error> {
    session.cycle_key().await?;
    let key = session.session_key().map(|k| k.to_string());
    Ok(format!(
        "session key cycled to {}\n",
        key.unwrap_or_default()
    ))
}

/// An environment variable; empty counts as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Django's settings from the environment, as the module docs list them.
fn settings() -> Result<DjangoConfig, String> {
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

    let backend = match env("CACHE_BACKEND").as_deref() {
        None | Some("locmem") => "django.core.cache.backends.locmem.LocMemCache".to_owned(),
        Some("dummy") => "django.core.cache.backends.dummy.DummyCache".to_owned(),
        Some("redis") => "django.core.cache.backends.redis.RedisCache".to_owned(),
        Some("django_redis") => "django_redis.cache.RedisCache".to_owned(),
        Some(dotted) => dotted.to_owned(),
    };
    let mut cache = DjangoCache::new(backend);
    if let Some(location) = env("CACHE_LOCATION") {
        cache = cache.with_location(location);
    }
    if let Some(prefix) = env("CACHE_KEY_PREFIX") {
        cache = cache.with_key_prefix(prefix);
    }
    if let Some(version) = env("CACHE_VERSION") {
        let version = version
            .trim()
            .parse()
            .map_err(|_| format!("CACHE_VERSION must be an integer, got {version:?}"))?;
        cache = cache.with_version(version);
    }
    let alias = env("SESSION_CACHE_ALIAS").unwrap_or_else(|| "default".into());
    Ok(django
        .with_cache(&alias, cache)
        .with_session_cache_alias(alias))
}

async fn run() -> Result<(), String> {
    let django = settings()?;
    let layer = django.layer().await.map_err(|e| e.to_string())?;
    let users = match &django.database_url {
        Some(url) => Users::connect(url).map_err(|e| format!("DATABASE_URL: {e}"))?,
        None => None,
    };

    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/set", get(set))
        .route("/get", get(get_value))
        .route("/login", get(login))
        .route("/flush", get(flush))
        .route("/cycle", get(cycle))
        .layer(layer)
        .with_state(Arc::new(App { django, users }));

    let port = env("PORT").unwrap_or_else(|| "3000".into());
    let addr = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({e}): set PORT to a free port"))?;
    tracing::info!("sharing Django's sessions on http://{addr}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("examples/django: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
