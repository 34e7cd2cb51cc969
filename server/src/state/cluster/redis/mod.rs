//! [`RedisCluster`]: several hubs act as one for addressed traffic and
//! presence, through one Redis (cargo feature `redis`). Its key layout,
//! channels and timing are documented on the type; the pieces:
//! - `keys`: every key and channel name;
//! - `writer`: the one task that writes, in order, as pipelines (directory,
//!   presence, liveness, control messages), with the heartbeat;
//! - `directory`: what this node has written (its mirror) and how;
//! - `liveness`: the node's key and the node set;
//! - `control`: the listener on the node's pub/sub connection;
//! - `serving`: what the node does for other nodes' messages;
//! - `waiting`: calls and gatherings waiting for other nodes;
//! - `wire`: the control messages;
//! - `scripts`: the Lua scripts.

mod control;
mod directory;
mod keys;
mod liveness;
mod scripts;
mod serving;
mod waiting;
mod wire;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::value::RawValue;
use switchboard_shared::tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::state::cluster::redis::control::Listener;
use crate::state::cluster::redis::directory::Mirror;
use crate::state::cluster::redis::keys::Keys;
use crate::state::cluster::redis::liveness::unavailable;
use crate::state::cluster::redis::serving::Serving;
use crate::state::cluster::redis::waiting::Waiting;
use crate::state::cluster::redis::wire::{Control, WireTarget};
use crate::state::cluster::redis::writer::{Op, Writer};
use crate::state::cluster::{
    CallOutcome, Cluster, ClusterError, ClusterFuture, LocalNode, NodeId, Presence, RemoteAnswer,
};
use crate::state::registry::Target;

pub(crate) use liveness::{DEFAULT_TTL, MIN_TTL};

/// The default key prefix.
pub(crate) const DEFAULT_PREFIX: &str = "switchboard";

/// How long one Redis command (or pipeline) may take before it fails.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting (TCP and subscription) may take at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reconnection attempts of the command connection before a command
/// fails, and the longest wait between two: while Redis is down, cluster
/// operations fail within about a second (the next command tries again).
const COMMAND_RETRIES: (usize, Duration) = (2, Duration::from_millis(500));

/// Several hubs acting as one for addressed traffic and presence, through
/// Redis: give each server its own, all with the same URL and prefix.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard_server::{RedisCluster, Server};
/// use switchboard_shared::Methods;
///
/// let cluster = RedisCluster::connect("redis://127.0.0.1:6379").await?;
/// let hub = Server::builder().cluster(cluster).build(Methods::new()).listen("0.0.0.0:9000").await?;
/// // A connection on any hub of the cluster:
/// # let connection = uuid::Uuid::nil();
/// let answer: String = hub.call(connection, "whoami", ()).await?;
/// # let _ = answer; Ok(()) }
/// ```
///
/// It is cheap to clone; its tasks end when the server it was given to
/// stops (or every clone is dropped), and the node's entries are then
/// removed from Redis.
///
/// # Connections
///
/// Each node (hub) has a random id and two Redis connections: one for
/// commands (a `ConnectionManager`, which reconnects by itself) and one
/// dedicated to pub/sub, subscribed to the node's **control channel** and
/// to the **broadcast channel** (it reconnects with backoff, 100 ms
/// doubling up to 5 s, and is pinged every heartbeat). Every write goes out
/// in order, as pipelines, from one task per node: one round trip for
/// whatever is queued.
///
/// # Keys and channels
///
/// Under a prefix (default `switchboard`, [`RedisClusterBuilder::key_prefix`]).
/// Every key has a TTL (default 15 s, [`RedisClusterBuilder::ttl`]), which
/// its node refreshes on every heartbeat, every third of the TTL:
///
/// | key | type | holds | TTL |
/// |---|---|---|---|
/// | `{prefix}:node:{node}` | string | the node's liveness (`live`) | the TTL; deleted when the node stops |
/// | `{prefix}:nodes` | sorted set | every node, scored by when it expires (Redis's clock, ms) | the TTL, extended by every heartbeat; expired members are dropped on every write and read |
/// | `{prefix}:conn:{connection}` | string | the directory: the id of the connection's node | the TTL; deleted when the connection ends |
/// | `{prefix}:presence:{topic}` | hash | the topic's members: connection → node | the TTL, extended by every write; a member's entry goes when it leaves or expires |
/// | `{prefix}:presence-expiry:{topic}` | sorted set | the same members, scored by when they expire | as above |
///
/// | channel | who listens | what for |
/// |---|---|---|
/// | `{prefix}:control:{node}` | that node | calls, notifications, replies, counts and answers addressed to it |
/// | `{prefix}:broadcast` | every node | cluster-wide pushes, `call_many`, the roll call of connections |
///
/// Presence is a hash plus a sorted set of expiries because Redis 7.0 has
/// no per-field TTL (`HEXPIRE` came with 7.4): entries whose expiry is past
/// are dropped on every read, and the keys expire when no node refreshes
/// them any more. Expiries use Redis's clock, so the nodes' clocks need not
/// agree.
///
/// # Control messages
///
/// One JSON object per pub/sub message, tagged by its kind; params,
/// results and notification frames are embedded as raw JSON:
///
/// | message | channel | meaning |
/// |---|---|---|
/// | `{"call": {from, id, connection, method, params, timeout_ms}}` | the connection's node | call `method` on `connection`, reply to node `from` |
/// | `{"reply": {id, outcome}}` | the caller's node | the call's outcome |
/// | `{"cancel": {from, id}}` | the callee's node | the caller gave up (the client gets `$/cancelRequest`) |
/// | `{"probe": {from, id}}` / `{"probed": {id, running}}` | callee's / caller's node | is the call still running? |
/// | `{"notify": {connection, frame}}` | the connection's node | queue `frame` (a notification) for `connection` |
/// | `{"push": {from, target, frame}}` | broadcast | queue `frame` for the targets each node serves |
/// | `{"many": {from, id, target, method, params, deadline_ms}}` | broadcast | call the targets each node serves |
/// | `{"roll": {from, id}}` | broadcast | list your connections |
/// | `{"count": {id, node, connections}}` | the asker's node | the connections a node calls (or has), sent first |
/// | `{"answers": {id, node, answers}}` | the asker's node | `[[connection, outcome], ...]`, as they come |
///
/// An `outcome` is `{"ok": result}`, `{"rpc": error object}`,
/// `{"timeout": ms}`, `{"disconnected": null}`, `{"unknown": null}` or
/// `{"failed": "why"}`. A call, a notification and a reply are routed by
/// one Lua script (directory lookup and `PUBLISH` in one round trip).
///
/// # Timing
///
/// A node that is killed stops refreshing: its directory entries, presence
/// entries and liveness key expire within the TTL, and the other nodes
/// forget its connections. Before that, a call to one of them fails at once
/// ([`ClusterError::NodeUnreachable`]: its control channel has no
/// subscriber). A call in flight to a node that dies fails within about a
/// TTL: the caller probes the node every third of the TTL. While Redis is
/// unreachable, cluster operations fail with [`ClusterError::Unavailable`]
/// within about a second (local connections are served as usual); once it
/// is back, every node subscribes again and writes its entries again on
/// its next heartbeat.
#[derive(Clone)]
pub struct RedisCluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("node", &self.inner.node)
            .field("ttl", &self.inner.ttl)
            .field("subscribed", &*self.inner.subscribed.borrow())
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisCluster`]; start from [`RedisCluster::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is awaited"]
pub struct RedisClusterBuilder {
    url: String,
    ttl: Duration,
    prefix: String,
}

impl RedisClusterBuilder {
    /// Sets the TTL of every key this node writes, and so how long the
    /// other nodes take to forget it once it is killed; it refreshes them
    /// every third of it.
    ///
    /// Default: 15 s (a heartbeat every 5 s). The minimum is 500 ms. Give
    /// every node of a cluster the same TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(MIN_TTL);
        self
    }

    /// Sets the prefix of every key and channel, so several clusters can
    /// share one Redis.
    ///
    /// Default: `switchboard`. Nodes with different prefixes do not see each other.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Connects to Redis, subscribes to this node's control channel and
    /// marks the node live. Fails with [`ClusterError::Config`] for a bad
    /// URL and [`ClusterError::Unavailable`] when Redis cannot be reached
    /// within 5 s; once connected, the node reconnects by itself.
    pub async fn connect(self) -> Result<RedisCluster, ClusterError> {
        let client =
            redis::Client::open(self.url.as_str()).map_err(|e| ClusterError::Config(format!("{}: {e}", self.url)))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(COMMAND_RETRIES.0)
            .set_max_delay(COMMAND_RETRIES.1);
        let commands = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| unavailable_at(&self.url, e))?;
        let node = NodeId::random();
        let keys = Keys::new(&self.prefix);
        let (ops, ops_rx) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = watch::channel(false);
        let (stop_tx, stop) = watch::channel(false);
        let inner = Arc::new(Inner {
            node: node.clone(),
            keys: keys.clone(),
            ttl: self.ttl,
            commands: commands.clone(),
            ops,
            local: OnceLock::new(),
            waiting: Waiting::default(),
            serving: Serving::default(),
            subscribed: subscribed.clone(),
            ids: AtomicU64::new(1),
        });
        let interval = liveness::heartbeat_interval(self.ttl);
        let listener = Listener {
            client,
            channels: [keys.control(&node), keys.broadcast()],
            ping_every: interval,
            inner: Arc::downgrade(&inner),
            subscribed: subscribed_tx,
            stop,
        };
        let mut writer = Writer {
            commands,
            keys,
            node,
            ttl: self.ttl,
            ops: ops_rx,
            mirror: Mirror::default(),
            local: None,
            healthy: true,
        };
        // From here on the tasks own what they need: dropping `stop_tx` on
        // failure stops the listener.
        tokio::spawn(listener.run());
        match tokio::time::timeout(CONNECT_TIMEOUT, subscribed.wait_for(|s| *s)).await {
            Ok(Ok(_)) => {}
            _ => {
                return Err(ClusterError::Unavailable(format!(
                    "{}: could not subscribe within {CONNECT_TIMEOUT:?}",
                    self.url
                )));
            }
        }
        let mut beat = redis::pipe();
        liveness::beat(&mut beat, &writer.keys, &writer.node, wire::millis(self.ttl));
        beat.query_async::<()>(&mut writer.commands).await.map_err(|e| unavailable_at(&self.url, e))?;
        tracing::info!(target: "switchboard::cluster", node = %writer.node, ttl = ?self.ttl, "node joined the cluster");
        tokio::spawn(writer.run(stop_tx));
        Ok(RedisCluster { inner })
    }
}

fn unavailable_at(url: &str, e: redis::RedisError) -> ClusterError {
    ClusterError::Unavailable(format!("{url}: {e}"))
}

impl RedisCluster {
    /// Starts configuring a node of the cluster whose Redis is at `url`
    /// (`redis://[user:password@]host:port[/db]`).
    pub fn builder(url: impl Into<String>) -> RedisClusterBuilder {
        RedisClusterBuilder { url: url.into(), ttl: DEFAULT_TTL, prefix: DEFAULT_PREFIX.to_owned() }
    }

    /// Connects a node with every default (see [`RedisClusterBuilder::connect`]).
    pub async fn connect(url: impl Into<String>) -> Result<RedisCluster, ClusterError> {
        Self::builder(url).connect().await
    }
}

/// What the handle, the listener and the tasks share.
struct Inner {
    node: NodeId,
    keys: Keys,
    ttl: Duration,
    commands: ConnectionManager,
    /// To the writer task.
    ops: mpsc::UnboundedSender<Op>,
    local: OnceLock<LocalNode>,
    waiting: Waiting,
    serving: Serving,
    subscribed: watch::Receiver<bool>,
    ids: AtomicU64,
}

impl Inner {
    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// How often a call in flight probes its node.
    fn probe_interval(&self) -> Duration {
        liveness::heartbeat_interval(self.ttl)
    }

    /// Sends `message` to `node`'s control channel, in order, without waiting.
    fn send(&self, node: &NodeId, message: &Control) {
        self.queue(Op::Publish { channel: self.keys.control(node), message: message.encode(), done: None });
    }

    fn queue(&self, op: Op) {
        // Closed only once the node has left the cluster: nothing to send then.
        let _ = self.ops.send(op);
    }
}

/// `{"<kind>":{<fields>,"frame":<frame>}}`: a frame embedded as it is, not
/// parsed again (it is a notification this server encoded).
fn with_frame(kind: &str, fields: &str, frame: &Utf8Bytes) -> String {
    format!(r#"{{"{kind}":{{{fields},"frame":{}}}}}"#, frame.as_str())
}

impl Cluster for RedisCluster {
    fn node(&self) -> NodeId {
        self.inner.node.clone()
    }

    fn attach(&self, local: LocalNode) {
        if self.inner.local.set(local.clone()).is_err() {
            tracing::error!(target: "switchboard::cluster", node = %self.inner.node, "a RedisCluster serves one server: connect one per server; this one stays with the first");
            return;
        }
        self.inner.queue(Op::Attach(local));
    }

    fn connected(&self, connection: Uuid) {
        self.inner.queue(Op::Connected(connection));
    }

    fn disconnected(&self, connection: Uuid) {
        self.inner.queue(Op::Disconnected(connection));
    }

    fn joined(&self, connection: Uuid, topic: &str) {
        self.inner.queue(Op::Joined(connection, Arc::from(topic)));
    }

    fn left(&self, connection: Uuid, topic: &str) {
        self.inner.queue(Op::Left(connection, Arc::from(topic)));
    }

    fn call(
        &self,
        connection: Uuid,
        method: &str,
        params: Box<RawValue>,
        timeout: Option<Duration>,
    ) -> ClusterFuture<CallOutcome> {
        Box::pin(Arc::clone(&self.inner).call(connection, method.to_owned(), params, timeout))
    }

    fn notify(&self, connection: Uuid, frame: &Utf8Bytes) {
        let message = with_frame("notify", &format!(r#""connection":"{connection}""#), frame);
        self.inner.queue(Op::Route { connection, message, done: None });
    }

    fn push(&self, target: &Target, frame: &Utf8Bytes) {
        let target = serde_json::to_string(&WireTarget::from(target)).expect("a target always encodes");
        let from = serde_json::to_string(&self.inner.node).expect("a node id always encodes");
        let message = with_frame("push", &format!(r#""from":{from},"target":{target}"#), frame);
        self.inner.queue(Op::Publish { channel: self.inner.keys.broadcast(), message, done: None });
    }

    fn call_many(
        &self,
        target: &Target,
        method: &str,
        params: Box<RawValue>,
        deadline: Duration,
    ) -> ClusterFuture<Vec<RemoteAnswer>> {
        Box::pin(Arc::clone(&self.inner).call_many(WireTarget::from(target), method.to_owned(), params, deadline))
    }

    fn presence(&self, topic: &str) -> ClusterFuture<Vec<Presence>> {
        let (mut commands, keys) = (self.inner.commands.clone(), self.inner.keys.clone());
        let topic = topic.to_owned();
        Box::pin(async move {
            let pairs: Vec<(String, String)> = scripts::presence_read()
                .key(keys.presence(&topic))
                .key(keys.presence_expiry(&topic))
                .invoke_async(&mut commands)
                .await
                .map_err(unavailable)?;
            let mut members: Vec<Presence> = pairs
                .into_iter()
                .filter_map(|(connection, node)| {
                    Some(Presence::new(connection.parse().ok()?, NodeId::from(node.as_str())))
                })
                .collect();
            members.sort();
            Ok(members)
        })
    }

    fn locate(&self, connection: Uuid) -> ClusterFuture<Option<NodeId>> {
        let (mut commands, key) = (self.inner.commands.clone(), self.inner.keys.connection(connection));
        Box::pin(async move {
            let node: Option<String> =
                redis::cmd("GET").arg(key).query_async(&mut commands).await.map_err(unavailable)?;
            Ok(node.map(|node| NodeId::from(node.as_str())))
        })
    }

    fn connections(&self, deadline: Duration) -> ClusterFuture<Vec<Presence>> {
        Box::pin(Arc::clone(&self.inner).roll_call(deadline))
    }

    fn nodes(&self) -> ClusterFuture<Vec<NodeId>> {
        let (commands, keys) = (self.inner.commands.clone(), self.inner.keys.clone());
        Box::pin(async move { liveness::nodes(commands, &keys).await })
    }
}
