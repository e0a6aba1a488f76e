//! Django's `clearsessions`: removes expired sessions from the store named on the command
//! line, once.
//!
//! ```text
//! cargo run --example clearsessions -- file /var/lib/myapp/sessions
//! cargo run --example clearsessions -- sqlite sqlite://sessions.db
//! cargo run --example clearsessions --features postgres -- postgres postgres://postgres@127.0.0.1/test
//! cargo run --example clearsessions --features redis -- redis redis://127.0.0.1:6379/
//! ```
//!
//! In a long-running app, `sessionbase::store::spawn_clear_expired(store, interval)` does the
//! same every interval in the background.

use std::process::ExitCode;

use sessionbase::{Error, SessionStore};

async fn clear(store: impl SessionStore) -> Result<(), Error> {
    store.clear_expired().await
}

async fn run(kind: &str, target: Option<&str>) -> Result<(), Error> {
    let target = || target.ok_or_else(|| Error::Config(format!("`{kind}` needs a location")));
    match kind {
        "memory" => clear(sessionbase::MemoryStore::new()).await,
        "file" => clear(sessionbase::FileStore::new(target()?)?).await,
        "sqlite" => clear(sessionbase::SqliteStore::connect(target()?).await?).await,
        #[cfg(feature = "postgres")]
        "postgres" => clear(sessionbase::PostgresStore::connect(target()?).await?).await,
        #[cfg(feature = "redis")]
        "redis" => clear(sessionbase::RedisStore::connect(target()?).await?).await,
        other => Err(Error::Config(format!(
            "unknown store `{other}` (memory, file, sqlite, postgres, redis; the last two need their feature)"
        ))),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(kind) = args.first() else {
        eprintln!("usage: clearsessions <memory|file|sqlite|postgres|redis> [directory or URL]");
        return ExitCode::from(2);
    };
    match run(kind, args.get(1).map(String::as_str)).await {
        Ok(()) => {
            println!("expired sessions cleared");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("clearsessions failed: {error}");
            ExitCode::FAILURE
        }
    }
}
