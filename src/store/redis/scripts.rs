//! The Lua script of the compare-and-swap save.

use std::sync::LazyLock;

use redis::Script;

/// Compare-and-swap in one round trip. `KEYS[1]` the session's key, `ARGV[1]` the value the
/// caller loaded (its version), `ARGV[2]` the new value, `ARGV[3]` the TTL in milliseconds.
/// Returns 1 when written (deleted when the TTL is not positive: the record expired), 0 when
/// the stored value is another one (conflict), -1 when there is no record (gone).
pub(super) const SAVE_LUA: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl, 'XX')
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
