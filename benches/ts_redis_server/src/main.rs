//! The tower-sessions 0.14 + tower-sessions-redis-store 0.16 contender of `benches/http.rs`
//! and `benches/contention.rs`.
//!
//! `ts-redis-server COOKIES_FILE SESSIONS` (Redis at `REDIS_URL`): creates SESSIONS
//! sessions through its own router, writes their `Cookie` values to COOKIES_FILE, one a
//! line, then serves the benchmark routes (`benches/ts_common/app.rs`) on 127.0.0.1 until
//! killed. `BENCH_SAVE_EVERY_REQUEST=1` saves every request (`with_always_save(true)`).

#[path = "../../ts_common/app.rs"]
mod app;

use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::clients::Client;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config};

fn main() {
    let (cookies_file, sessions) = app::args("ts-redis-server COOKIES_FILE SESSIONS");
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    app::runtime().block_on(async move {
        let client = Client::new(Config::from_url(&url).expect("REDIS_URL"), None, None, None);
        client.init().await.expect("connect to Redis");
        let app = app::router(RedisStore::new(client));
        app::create_and_serve(app, &cookies_file, sessions).await;
    });
}
