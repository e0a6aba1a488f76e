//! The tower-sessions 0.14 + tower-sessions-sqlx-store 0.15 (PostgreSQL) contender of
//! `benches/http.rs`.
//!
//! `ts-pg-server COOKIES_FILE SESSIONS` (PostgreSQL at `DATABASE_URL`, the store's table in
//! the schema `TS_PG_SCHEMA`, default `tower_sessions`): creates the schema and table with the
//! store's `migrate()`, then SESSIONS sessions through its own router, writes their `Cookie`
//! values to COOKIES_FILE, one a line, and serves the benchmark routes
//! (`benches/ts_common/app.rs`) on 127.0.0.1 until killed. The benchmark drops the schema.
//! `BENCH_SAVE_EVERY_REQUEST=1` saves every request (`with_always_save(true)`).

#[path = "../../ts_common/app.rs"]
mod app;

use tower_sessions_sqlx_store::PostgresStore;
use tower_sessions_sqlx_store::sqlx::PgPool;

fn main() {
    let (cookies_file, sessions) = app::args("ts-pg-server COOKIES_FILE SESSIONS");
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = std::env::var("TS_PG_SCHEMA").unwrap_or_else(|_| "tower_sessions".into());
    app::runtime().block_on(async move {
        // The pool as tower-sessions-sqlx-store's example opens it: sqlx's defaults.
        let pool = PgPool::connect(&url).await.expect("connect to PostgreSQL");
        let store = PostgresStore::new(pool)
            .with_schema_name(&schema)
            .expect("TS_PG_SCHEMA");
        store.migrate().await.expect("migrate");
        app::create_and_serve(app::router(store), &cookies_file, sessions).await;
    });
}
