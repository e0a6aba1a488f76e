//! Writes acknowledged by replicas: each write command followed by `WAIT` in one pipeline
//! (`RedisStore::with_replica_ack`), and the write helpers of `store.rs` that apply it.

use std::time::Duration;

use redis::{Cmd, FromRedisValue, Script};

use super::RedisStore;
use super::cached_ops::Via;
use super::connection::map_err;
use crate::Error;

/// How many replicas must hold a write before it is reported done, and how long Redis may
/// wait for them.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReplicaAck {
    replicas: usize,
    timeout: Duration,
}

impl ReplicaAck {
    /// `WAIT`'s timeout in milliseconds: at least 1, since `WAIT n 0` blocks forever.
    fn timeout_ms(self) -> u64 {
        u64::try_from(self.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

impl RedisStore {
    /// Reports a write (`create`, `save`, `delete`, and `put` as a cache) done only once at
    /// least `replicas` replicas of the primary that took it have it, so that a failover
    /// right after cannot lose it: each write command is followed, in one pipeline on the
    /// same connection and therefore on the same node, by Redis's
    /// [`WAIT replicas timeout`](https://redis.io/docs/latest/commands/wait/). When fewer
    /// replicas acknowledge within `timeout`, the call fails with
    /// [`Error::StoreUnavailable`] (the layer answers 503; the write may or may not survive),
    /// never with a silent success. `replicas == 0` turns the option off.
    ///
    /// The price is a replication round trip on every write (see BENCHMARKS.md), and a
    /// shard that has lost its replicas refuses every write until one is back. Keep
    /// `timeout` below the connection's response timeout (one second with
    /// [`connect`](Self::connect) and [`cluster`](Self::cluster)): a command that times out
    /// on the client is retried by the cluster client, and a compare-and-swap retried after
    /// it wrote reports a conflict. `WAIT` makes a write survive the failover of its primary
    /// (the replica promoted has it); it does not make Redis strongly consistent, see
    /// RELIABILITY.md.
    pub fn with_replica_ack(mut self, replicas: usize, timeout: Duration) -> Self {
        self.replica_ack = (replicas > 0).then_some(ReplicaAck { replicas, timeout });
        // A new identity (`SessionStore::identity` is the prefix's address): sessions of a
        // handle with other acknowledgements must not write in groups with this one's.
        self.prefix = self.prefix.as_ref().into();
        self
    }

    /// Runs `script` (whose source is `source`) on `key` with `args`, on `via`: by its hash,
    /// or, when replicas must acknowledge it, by its source followed by `WAIT` (in the
    /// pipeline with `WAIT`, a NOSCRIPT cannot be answered by loading the script and trying
    /// again).
    pub(super) async fn script<T: FromRedisValue>(
        &self,
        via: &mut Via,
        (source, script): (&str, &Script),
        keys: &[String],
        args: &[&[u8]],
    ) -> Result<T, Error> {
        if self.replica_ack.is_some() {
            let mut eval = redis::cmd("EVAL");
            eval.arg(source).arg(keys.len()).arg(keys);
            for arg in args {
                eval.arg(*arg);
            }
            return self.write(via, eval).await;
        }
        let mut invocation = script.prepare_invoke();
        invocation.key(keys);
        for arg in args {
            invocation.arg(*arg);
        }
        invocation.invoke_async(via).await.map_err(map_err)
    }

    /// Runs the write `cmd` on `via`, followed by `WAIT` when replicas must acknowledge it.
    pub(super) async fn write<T: FromRedisValue>(
        &self,
        via: &mut Via,
        cmd: Cmd,
    ) -> Result<T, Error> {
        let Some(ack) = self.replica_ack else {
            return cmd.query_async(via).await.map_err(map_err);
        };
        // A pipeline goes to one node, routed by its first command with a key (WAIT has
        // none), so WAIT counts the replicas of the primary that ran the write.
        let mut pipeline = redis::pipe();
        pipeline
            .add_command(cmd)
            .cmd("WAIT")
            .arg(ack.replicas)
            .arg(ack.timeout_ms());
        let (reply, acknowledged): (T, usize) = pipeline.query_async(via).await.map_err(map_err)?;
        if acknowledged < ack.replicas {
            tracing::warn!(
                acknowledged,
                required = ack.replicas,
                timeout = ?ack.timeout,
                "Redis write not acknowledged by enough replicas; reporting the store unavailable"
            );
            return Err(Error::unavailable(format!(
                "{acknowledged} of {} replicas acknowledged the write within {:?}: \
                 it may be lost if its primary fails",
                ack.replicas, ack.timeout
            )));
        }
        Ok(reply)
    }
}
