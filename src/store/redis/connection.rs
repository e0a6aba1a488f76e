//! The connection to a single Redis server or a Redis Cluster, its timeouts, and how its
//! errors map to the crate's.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, RedisError, RedisFuture, ServerErrorKind, Value};

use crate::Error;

/// How long one attempt to open a connection may take.
pub(super) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// How long Redis may take to answer one command.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a Redis Cluster request may take, redirections and retries included.
pub(super) const CLUSTER_OVERALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest and longest pause (milliseconds) of the cluster client before it retries a
/// request (redis-rs waits 1.28 s at least by default): short, so that a request that meets
/// a failover or a resharding retries several times within [`CLUSTER_OVERALL_TIMEOUT`] and
/// succeeds as soon as the new topology is known.
pub(super) const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (20, 400);
/// How many times the connection manager retries a failed reconnection before reporting the
/// failure (every later command starts a new reconnection): few, so that a request against a
/// Redis that is down fails within about a second instead of waiting out a long backoff.
pub(super) const RECONNECT_RETRIES: usize = 2;
/// The longest pause between two reconnection attempts.
pub(super) const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// The two kinds of connection, both cheap to clone and both reconnecting by themselves.
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Maps a Redis error: unreachable, timed out, dropped or a cluster that cannot serve the
/// key right now is [`Error::StoreUnavailable`]; anything else is [`Error::Store`]. A
/// `MOVED` or `ASK` only reaches here when the cluster client ran out of retries following
/// redirections, in the middle of a failover (a node still redirecting to the primary that
/// died): the cluster is changing, not broken.
pub(super) fn map_err(e: RedisError) -> Error {
    if is_transient(&e) {
        Error::unavailable(e)
    } else {
        Error::store(e)
    }
}

/// Whether `e` says Redis cannot be reached or cannot serve right now (rather than refusing
/// the command).
pub(super) fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::BusyLoading
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                )
        )
}

/// Maps an error while connecting: a URL or option that cannot work is a configuration
/// error, the rest as [`map_err`]. Redis's messages never repeat the URL or the password.
pub(super) fn map_connect_err(e: RedisError) -> Error {
    if e.kind() == ErrorKind::InvalidClientConfig {
        Error::Config(format!("invalid Redis connection settings: {e}"))
    } else {
        map_err(e)
    }
}
