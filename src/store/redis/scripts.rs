//! The Lua scripts: the compare-and-swap save and touch, and the create of a cached store.

use std::sync::LazyLock;

use redis::Script;

/// Compare-and-swap in one round trip. `KEYS[1]` the session's key, `ARGV[1]` the value the
/// caller loaded (its version), `ARGV[2]` the new value, `ARGV[3]` the TTL in milliseconds.
/// Returns 1 when written (deleted when the TTL is not positive: the record expired), 0 when
/// the stored value is another one (conflict), -1 when there is no record (gone).
///
/// The `EXISTS` after the write is for a store with a local cache (`tracking.rs`): its
/// write on the tracking connection (`NOLOOP`) is not reported back to it, but it also ends
/// Redis's tracking of the key, and reading the key again in the same script has Redis track
/// it from the write on, so that the next change by anyone else is pushed. Elsewhere it is
/// one lookup.
pub(super) const SAVE_LUA: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl, 'XX')
    redis.call('EXISTS', KEYS[1])
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
elseif current then
  return 0
else
  return -1
end
";

/// `EVALSHA`, falling back to loading the script when the server does not know it yet.
pub(super) static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE_LUA));

/// `SET KEYS[1] ARGV[1] NX PX ARGV[2]`, then a read of the key so that a store with a local
/// cache has Redis track it from its creation on (see [`SAVE_LUA`]). Returns 1 when created,
/// 0 when the key was taken.
pub(super) const CREATE_LUA: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('EXISTS', KEYS[1])
  return 1
end
return 0
";

/// `EVALSHA` of [`CREATE_LUA`], for creates on the tracking connection.
pub(super) static CREATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CREATE_LUA));

/// The expiry alone, compare-and-swap, in one round trip. `KEYS[1]` the session's key,
/// `ARGV[1]` the value the caller loaded (its version), `ARGV[2]` the TTL in milliseconds.
/// Returns as [`SAVE_SCRIPT`] does; the value is never rewritten. The `EXISTS` after the
/// `PEXPIRE` is the save script's: it keeps Redis tracking the key for a local cache.
pub(super) const TOUCH_LUA: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('EXISTS', KEYS[1])
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
elseif current then
  return 0
else
  return -1
end
";

/// `EVALSHA` of [`TOUCH_LUA`], as [`SAVE_SCRIPT`].
pub(super) static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(TOUCH_LUA));
