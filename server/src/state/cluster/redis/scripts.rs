//! The Lua scripts the Redis cluster runs: each reads and writes its keys
//! atomically, with Redis's own clock (`TIME`) for expiry scores, so the
//! nodes' clocks never need to agree. Pipelined ones are sent as `EVAL`
//! (nothing to reload after a Redis restart); the read ones go through
//! [`redis::Script`], which loads them when Redis does not know them.

use std::sync::LazyLock;

use redis::{Cmd, Script};

/// `KEYS[1]`: a directory entry; `ARGV[1]`: the control channels' prefix;
/// `ARGV[2]`: a control message. Publishes the message on the control
/// channel of the connection's node; returns `{node, receivers}`, or nil
/// when no node serves the connection.
const ROUTE: &str = r"
local node = redis.call('GET', KEYS[1])
if not node then return false end
return {node, redis.call('PUBLISH', ARGV[1] .. node, ARGV[2])}
";

/// Redis's clock in milliseconds, and a TTL that only grows (so a node
/// with a shorter TTL never cuts another's entries short).
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
";

/// `KEYS[1]`: a topic's presence hash; `KEYS[2]`: its expiry set;
/// `ARGV[1]`: connection; `ARGV[2]`: node; `ARGV[3]`: TTL in ms. Adds (or
/// refreshes) the connection's entry, expiring `ARGV[3]` ms from now.
const PRESENCE_ADD: &str = r"
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
extend(KEYS[1], ttl)
extend(KEYS[2], ttl)
return 1
";

/// `KEYS[1]`: a topic's presence hash; `KEYS[2]`: its expiry set. Drops
/// the expired entries, then returns the others as `[connection, node, ...]`.
const PRESENCE_READ: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #expired, 1000 do
  redis.call('HDEL', KEYS[1], unpack(expired, i, math.min(i + 999, #expired)))
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
return redis.call('HGETALL', KEYS[1])
";

/// `KEYS[1]`: the node set; `ARGV[1]`: node; `ARGV[2]`: TTL in ms. Marks
/// the node live for `ARGV[2]` ms and drops the expired ones.
const NODE_BEAT: &str = r"
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
extend(KEYS[1], ttl)
return 1
";

/// `KEYS[1]`: the node set. Drops the expired nodes and returns the others.
const NODES_READ: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
";

fn with_prelude(body: &str) -> String {
    format!("{PRELUDE}{body}")
}

static PRESENCE_ADD_SOURCE: LazyLock<String> = LazyLock::new(|| with_prelude(PRESENCE_ADD));
static NODE_BEAT_SOURCE: LazyLock<String> = LazyLock::new(|| with_prelude(NODE_BEAT));
static PRESENCE_READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&with_prelude(PRESENCE_READ)));
static NODES_READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&with_prelude(NODES_READ)));

/// `EVAL source numkeys keys...` (arguments are added by the caller).
fn eval(source: &str, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(source).arg(keys.len());
    for key in keys {
        cmd.arg(*key);
    }
    cmd
}

/// Routes `message` to the node of the connection whose directory entry is `entry`.
pub(super) fn route(entry: &str, control_prefix: &str, message: &str) -> Cmd {
    let mut cmd = eval(ROUTE, &[entry]);
    cmd.arg(control_prefix).arg(message);
    cmd
}

/// Adds or refreshes a presence entry.
pub(super) fn presence_add(hash: &str, expiry: &str, connection: &str, node: &str, ttl_ms: u64) -> Cmd {
    let mut cmd = eval(&PRESENCE_ADD_SOURCE, &[hash, expiry]);
    cmd.arg(connection).arg(node).arg(ttl_ms);
    cmd
}

/// Marks a node live.
pub(super) fn node_beat(nodes: &str, node: &str, ttl_ms: u64) -> Cmd {
    let mut cmd = eval(&NODE_BEAT_SOURCE, &[nodes]);
    cmd.arg(node).arg(ttl_ms);
    cmd
}

/// Reads a topic's live presence entries.
pub(super) fn presence_read() -> &'static Script {
    &PRESENCE_READ_SCRIPT
}

/// Reads the live nodes.
pub(super) fn nodes_read() -> &'static Script {
    &NODES_READ_SCRIPT
}
