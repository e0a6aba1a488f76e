//! `RedisStore`: work in progress.

/// Sessions in Redis, one key per session with a TTL.
#[derive(Clone, Debug)]
pub struct RedisStore;
