//! The integration tests: one test binary (`cargo test --test it`), one module per suite.
//!
//! Run one suite with a filter on its module path, for example
//! `cargo test --all-features --test it django_interop::` or `cargo test --test it http::`.
//! The Session API and HTTP suites run twice, in modules `memory` and `io`: once on
//! `MemoryStore`, which the library calls directly, and once on the same store behind
//! `common::IoStore`, whose calls are pending once as a network store's are (see
//! `common::dispatch`).
//!
//! What the modules share in one process, and why that is safe:
//! - `allocations` installs the binary's `#[global_allocator]`: it counts per thread, and
//!   each of its tests measures its own thread only (a current-thread runtime), so the other
//!   tests neither disturb the counts nor notice the counting;
//! - `faults` installs a global `tracing` subscriber and a panic hook: its log checks select
//!   the lines of its own apps (a span names each), and the hook counts only panics on the
//!   worker threads of its own runtimes (named `faults-worker`);
//! - ports: servers bind port 0, and the child processes that need a port chosen in advance
//!   (Django, `redis-server`, PostgreSQL) get it from `common::free_port`, which never hands
//!   one out twice in the process.

// A test binary has no public API: `pub` only shares items between its modules.
#![allow(unreachable_pub)]

mod common;

mod absolute_max_age;
mod allocations;
mod contention;
mod cookie_store;
mod demos;
mod django_interop;
mod encrypted_cookie_store;
mod events;
mod extensions;
mod faults;
mod hostile;
mod http;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod load;
mod multi_instance_postgres;
mod multi_instance_redis;
mod no_store;
mod postgres_connections;
mod postgres_store;
mod private_id;
mod properties;
#[cfg(feature = "metrics")]
mod recorded_metrics;
mod redis_cluster;
mod redis_local_cache;
mod redis_store;
mod redis_user_index;
mod rolling;
mod session_api;
mod suites;
mod user_sessions;
