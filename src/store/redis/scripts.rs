//! The Lua scripts: the compare-and-swap save and touch, the create of a cached or indexed
//! store, and the user index (`user_index.rs`).

use std::sync::LazyLock;

use redis::Script;

/// `index(ttl, member, now)`: when the script is given a second key, the user's index (a
/// hash), sets its field `member` to `now` (the write's time, Unix milliseconds) and makes it
/// live at least `ttl` milliseconds, so it outlives every session it names. Without a second key (no user, or a cluster, where the index is written
/// first by [`INDEX_LUA`]), nothing.
macro_rules! index_lua {
    () => {
        r"
local function index(ttl, member, now)
  if KEYS[2] then
    redis.call('HSET', KEYS[2], member, now)
    if redis.call('PTTL', KEYS[2]) < ttl then
      redis.call('PEXPIRE', KEYS[2], ttl)
    end
  end
end
"
    };
}

/// Compare-and-swap in one round trip. `KEYS[1]` the session's key, `ARGV[1]` the value the
/// caller loaded (its version), `ARGV[2]` the new value, `ARGV[3]` the TTL in milliseconds,
/// and, with the user's index as `KEYS[2]`, `ARGV[4]` the record's field in it and `ARGV[5]`
/// the time.
/// Returns 1 when written (deleted when the TTL is not positive: the record expired), 0 when
/// the stored value is another one (conflict), -1 when there is no record (gone).
///
/// The `EXISTS` after the write is for a store with a local cache (`tracking.rs`): its
/// write on the tracking connection (`NOLOOP`) is not reported back to it, but it also ends
/// Redis's tracking of the key, and reading the key again in the same script has Redis track
/// it from the write on, so that the next change by anyone else is pushed. Elsewhere it is
/// one lookup.
pub(super) const SAVE_LUA: &str = concat!(
    index_lua!(),
    r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl, 'XX')
    redis.call('EXISTS', KEYS[1])
    index(ttl, ARGV[4], ARGV[5])
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
elseif current then
  return 0
else
  return -1
end
"
);

/// `EVALSHA`, falling back to loading the script when the server does not know it yet.
pub(super) static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE_LUA));

/// `SET KEYS[1] ARGV[1] NX PX ARGV[2]`, then a read of the key so that a store with a local
/// cache has Redis track it from its creation on (see [`SAVE_LUA`]), and the user's index
/// (`KEYS[2]`, field `ARGV[3]`, time `ARGV[4]`) when given. Returns 1 when created, 0 when the key was
/// taken.
pub(super) const CREATE_LUA: &str = concat!(
    index_lua!(),
    r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('EXISTS', KEYS[1])
  index(tonumber(ARGV[2]), ARGV[3], ARGV[4])
  return 1
end
return 0
"
);

/// `EVALSHA` of [`CREATE_LUA`], for creates on the tracking connection or with an index.
pub(super) static CREATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CREATE_LUA));

/// The expiry alone, compare-and-swap, in one round trip. `KEYS[1]` the session's key,
/// `ARGV[1]` the value the caller loaded (its version), `ARGV[2]` the TTL in milliseconds,
/// and with the user's index as `KEYS[2]`, `ARGV[3]` the field and `ARGV[4]` the time (the
/// index then lives as long). Returns as [`SAVE_SCRIPT`] does; the value is never rewritten. The `EXISTS` after
/// the `PEXPIRE` is the save script's: it keeps Redis tracking the key for a local cache.
pub(super) const TOUCH_LUA: &str = concat!(
    index_lua!(),
    r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('EXISTS', KEYS[1])
    index(ttl, ARGV[3], ARGV[4])
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
elseif current then
  return 0
else
  return -1
end
"
);

/// `EVALSHA` of [`TOUCH_LUA`], as [`SAVE_SCRIPT`].
pub(super) static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(TOUCH_LUA));

/// The user index alone, for a Redis Cluster, where it is in another slot than the record:
/// `KEYS[1]` the index, `ARGV[1]` the TTL, `ARGV[2]` the field, `ARGV[3]` the time. Sent before the record's
/// write, so that the index never misses a live session (an entry whose write then failed is
/// pruned by the next listing).
pub(super) const INDEX_LUA: &str = r"
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
";

/// `EVALSHA` of [`INDEX_LUA`].
pub(super) static INDEX_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(INDEX_LUA));
