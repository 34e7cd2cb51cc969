//! The cluster seam: addressed traffic and presence across several hubs
//! (server processes) that act as one.
//!
//! Terms:
//! - a **node** is one hub of the cluster, named by its [`NodeId`];
//! - the **directory** says which node serves a connection; each node
//!   registers its own connections (and removes them when they end);
//! - **addressed traffic** is what names its recipients: a call or a
//!   notification to one connection, a push to every connection or to a
//!   topic's members, a `call_many`;
//! - **presence** is which connections (and their node) are members of a
//!   topic, cluster-wide;
//! - the **local node** ([`LocalNode`]) is this server's side of the
//!   cluster: where the cluster hands what other nodes address to this
//!   server's connections.
//!
//! The server always tries its own registry first: a connection it serves
//! never costs a trip through the cluster, and a server built without a
//! cluster (the default: [`ServerBuilder::cluster`](crate::ServerBuilder::cluster))
//! never takes any. Only what is not local goes through [`Cluster`].
//!
//! It lives in the `state` layer because the registry reports its
//! connections and memberships to it (under its lock, so in the order they
//! happen) and the cluster delivers into the registry.

#[cfg(feature = "redis")]
pub(crate) mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_shared::PeerHandle;
use switchboard_shared::tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio::sync::watch;
use uuid::Uuid;

use crate::state::lifecycle::ServerPhase;
use crate::state::registry::{Registry, Target};

/// What a cluster's asynchronous operations return: a future that owns
/// what it needs.
pub type ClusterFuture<T> = Pin<Box<dyn Future<Output = Result<T, ClusterError>> + Send + 'static>>;

/// The outcome of a call as the called connection's side saw it: its raw
/// result, or why there is none (its error object, a timeout, a disconnect...).
pub type CallOutcome = Result<Box<RawValue>, switchboard_shared::Error>;

/// The name of one node (hub) of a cluster: unique, stable for the node's life.
/// On the wire it is a JSON string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|id| NodeId(Arc::from(id)))
    }
}

impl NodeId {
    /// A fresh random node id (a uuid v4).
    pub fn random() -> Self {
        NodeId(Arc::from(Uuid::new_v4().to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> Self {
        NodeId(Arc::from(id))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A connection and the node that serves it (a topic's presence, or the
/// cluster's connections).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct Presence {
    /// The connection.
    pub connection: Uuid,
    /// The node that serves it.
    pub node: NodeId,
}

impl Presence {
    /// A presence entry from its parts.
    pub fn new(connection: Uuid, node: NodeId) -> Self {
        Presence { connection, node }
    }
}

/// One connection's answer to a `call_many`, from another node.
#[derive(Debug)]
#[non_exhaustive]
pub struct RemoteAnswer {
    /// The connection that was called.
    pub connection: Uuid,
    /// The node that serves it.
    pub node: NodeId,
    /// Its raw result, or why there is none.
    pub result: CallOutcome,
}

impl RemoteAnswer {
    /// An answer from its parts.
    pub fn new(connection: Uuid, node: NodeId, result: CallOutcome) -> Self {
        RemoteAnswer { connection, node, result }
    }
}

/// Why a cluster operation gave no result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No node serves this connection: it has ended, its node is gone and
    /// its directory entry has expired, or the id is wrong.
    #[error("no live connection {0} on any node")]
    UnknownConnection(Uuid),
    /// The directory names the connection's node, but that node does not
    /// listen any more (it was killed or lost its link to the cluster), or
    /// lost track of the call. Its entries expire within the cluster's TTL.
    #[error("connection {connection} is on node {node}, which is unreachable")]
    NodeUnreachable {
        /// The connection addressed.
        connection: Uuid,
        /// The node the directory named.
        node: NodeId,
    },
    /// The cluster's backend (Redis...) could not be reached or failed; the
    /// node reconnects on its own: try again later.
    #[error("the cluster is unavailable: {0}")]
    Unavailable(String),
    /// The cluster could not be set up (a malformed URL...): fix the configuration.
    #[error("the cluster is misconfigured: {0}")]
    Config(String),
}

/// Several hubs acting as one, for addressed traffic and presence.
///
/// Implement it to connect servers through some backend (`RedisCluster`
/// with the `redis` feature); a server built without one is alone. The
/// server asks it only about what is not local: a connection this server
/// serves never reaches it. The contract:
/// - the event methods ([`connected`](Self::connected), [`disconnected`](Self::disconnected),
///   [`joined`](Self::joined), [`left`](Self::left)) are called in the order
///   the events happen, under the registry's lock: they must not block nor
///   call back into the server (queue the work);
/// - [`notify`](Self::notify) and [`push`](Self::push) never wait: they are
///   sent in the order they are called, and delivered by the other nodes
///   only (this node has delivered locally already);
/// - every future ends: with a result, or with a definite error by its
///   deadline (or, without one, once the node it waits on is found gone).
pub trait Cluster: Send + Sync + fmt::Debug + 'static {
    /// This node's id.
    fn node(&self) -> NodeId;

    /// Connects a server: from now on, what other nodes address to its
    /// connections is handed to `local`. Called once, when the server is built.
    fn attach(&self, local: LocalNode);

    /// A connection of this node started: it can be addressed from any node.
    fn connected(&self, connection: Uuid);

    /// A connection of this node ended (it has left its topics too).
    fn disconnected(&self, connection: Uuid);

    /// A connection of this node joined `topic` (presence).
    fn joined(&self, connection: Uuid, topic: &str);

    /// A connection of this node left `topic` (presence).
    fn left(&self, connection: Uuid, topic: &str);

    /// Calls `method` on a connection another node serves; `timeout` bounds
    /// the whole call (`None`: until the connection or its node ends).
    fn call(
        &self,
        connection: Uuid,
        method: &str,
        params: Box<RawValue>,
        timeout: Option<Duration>,
    ) -> ClusterFuture<CallOutcome>;

    /// Queues a notification frame for a connection another node serves,
    /// if any does (an unknown connection is not reported).
    fn notify(&self, connection: Uuid, frame: &Utf8Bytes);

    /// Queues a notification frame for the connections `target` designates
    /// on every other node (for [`Target::Connections`], only ids this node
    /// does not serve are passed).
    fn push(&self, target: &Target, frame: &Utf8Bytes);

    /// Calls `method` on the connections `target` designates on every other
    /// node and gathers their answers by `deadline` from now. Each node
    /// first says which of its connections it calls, then answers: a
    /// connection named but not answered by the deadline has a timeout; the
    /// connections of a node that did not say are absent.
    fn call_many(
        &self,
        target: &Target,
        method: &str,
        params: Box<RawValue>,
        deadline: Duration,
    ) -> ClusterFuture<Vec<RemoteAnswer>>;

    /// The members of `topic` on every node (this one included).
    fn presence(&self, topic: &str) -> ClusterFuture<Vec<Presence>>;

    /// Where a connection is served: its node, or `None` when no node serves it.
    fn locate(&self, connection: Uuid) -> ClusterFuture<Option<NodeId>>;

    /// The connections of every other node that answers by `deadline`.
    fn connections(&self, deadline: Duration) -> ClusterFuture<Vec<Presence>>;

    /// The live nodes (this one included).
    fn nodes(&self) -> ClusterFuture<Vec<NodeId>>;
}

/// A server's side of its cluster: where the cluster hands what other nodes
/// address to this server's connections. Cheap to clone; it does not keep
/// the server alive.
#[derive(Clone)]
pub struct LocalNode {
    registry: Weak<Registry>,
    phase: watch::Receiver<ServerPhase>,
}

impl fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalNode").field("server_gone", &self.is_gone()).finish()
    }
}

impl LocalNode {
    pub(crate) fn new(registry: &Arc<Registry>, phase: watch::Receiver<ServerPhase>) -> Self {
        LocalNode { registry: Arc::downgrade(registry), phase }
    }

    /// The peer of a connection this server serves.
    pub fn peer(&self, connection: Uuid) -> Option<PeerHandle> {
        self.registry.upgrade()?.peer(connection)
    }

    /// The peers `target` designates on this server.
    pub fn peers(&self, target: &Target) -> Vec<PeerHandle> {
        self.registry.upgrade().map(|r| r.peers(target)).unwrap_or_default()
    }

    /// Queues `frame` for the connections `target` designates on this
    /// server; returns how many took it. Never waits (a full queue is
    /// handled as for any push).
    pub fn push(&self, target: &Target, frame: &Utf8Bytes) -> usize {
        let Some(registry) = self.registry.upgrade() else { return 0 };
        let mut delivered = 0;
        registry.for_each(target, |peer| {
            if peer.try_send_text(frame.clone()).is_ok() {
                delivered += 1;
            }
        });
        delivered
    }

    /// The connections this server serves.
    pub fn connections(&self) -> Vec<Uuid> {
        self.registry.upgrade().map(|r| r.ids()).unwrap_or_default()
    }

    /// Whether the server is gone.
    pub fn is_gone(&self) -> bool {
        self.registry.strong_count() == 0
    }

    /// Resolves once the server has stopped (or is gone).
    pub async fn stopped(&self) {
        let mut phase = self.phase.clone();
        let _ = phase.wait_for(|phase| *phase == ServerPhase::Stopped).await;
    }
}
