//! Node liveness: each node's key and its place in the node set, written on
//! every heartbeat with the TTL, removed when the node stops. A node that
//! stops beating (killed, cut off from Redis) is forgotten within the TTL,
//! and so are its directory and presence entries (they share the TTL and
//! are refreshed by the same heartbeat).

use std::time::Duration;

use redis::Pipeline;
use redis::aio::ConnectionManager;

use crate::state::cluster::redis::keys::Keys;
use crate::state::cluster::redis::scripts;
use crate::state::cluster::{ClusterError, NodeId};

/// The TTL of every key this cluster writes, when not set.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// The shortest TTL accepted.
pub(crate) const MIN_TTL: Duration = Duration::from_millis(500);

/// How often a node refreshes its keys: a third of the TTL, so two
/// heartbeats may be lost before its entries expire.
pub(super) fn heartbeat_interval(ttl: Duration) -> Duration {
    ttl / 3
}

/// Adds to `pipe` the commands that mark `node` live for `ttl_ms`.
pub(super) fn beat(pipe: &mut Pipeline, keys: &Keys, node: &NodeId, ttl_ms: u64) {
    pipe.cmd("SET").arg(keys.node(node)).arg("live").arg("PX").arg(ttl_ms).ignore();
    pipe.add_command(scripts::node_beat(&keys.nodes(), node.as_str(), ttl_ms)).ignore();
}

/// Adds to `pipe` the commands that forget `node` (it is stopping).
pub(super) fn depart(pipe: &mut Pipeline, keys: &Keys, node: &NodeId) {
    pipe.cmd("DEL").arg(keys.node(node)).ignore();
    pipe.cmd("ZREM").arg(keys.nodes()).arg(node.as_str()).ignore();
}

/// The live nodes.
pub(super) async fn nodes(mut commands: ConnectionManager, keys: &Keys) -> Result<Vec<NodeId>, ClusterError> {
    let nodes: Vec<String> =
        scripts::nodes_read().key(keys.nodes()).invoke_async(&mut commands).await.map_err(unavailable)?;
    Ok(nodes.iter().map(|node| NodeId::from(node.as_str())).collect())
}

/// A Redis failure, as the cluster reports it.
pub(super) fn unavailable(e: redis::RedisError) -> ClusterError {
    ClusterError::Unavailable(e.to_string())
}
