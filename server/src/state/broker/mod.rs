//! The broker seam: where publications get their place in a topic's stream
//! (epoch and offset), where history is kept, and where publications come
//! from to be fanned out to this server's subscribers.
//!
//! Terms (see [`switchboard_shared::stream`] for epoch, offset, recovery):
//! - the **broker** orders a topic's publications: it assigns consecutive
//!   offsets within an epoch and keeps what history it can;
//! - the **fan-out** ([`Fanout`]) is this server's side: the broker hands it
//!   every publication of every topic, from this server or (a clustered
//!   broker) from any other, in offset order per topic; it queues each one
//!   for this server's subscribers;
//! - a **snapshot** is what a subscription starts from: where the stream
//!   stands and, for a subscriber that gives `since`, the publications it
//!   missed (all of them or none).
//!
//! - a topic is **watched** while this server has local subscribers of it
//!   (plain or positioned): the registry tells the broker when a topic gains
//!   its first one ([`Broker::watch`]) and loses its last
//!   ([`Broker::unwatch`]), so a broker shared by several servers needs to
//!   bring a server only the topics it has subscribers of.
//!
//! Connections never know which broker is behind them. The in-process
//! [`MemoryBroker`] is the default; a broker shared by several server
//! processes plugs in with [`ServerBuilder::broker`](crate::ServerBuilder::broker)
//! (the Redis broker, cargo feature `redis`, is one).
//! It lives in the `state` layer because the hub holds it beside the registry
//! it delivers into.

pub(crate) mod entry;
pub(crate) mod history;
pub(crate) mod memory;
pub(crate) mod observe;
#[cfg(feature = "redis")]
pub(crate) mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use serde_json::value::RawValue;
use switchboard_shared::codec::EncodeError;
use switchboard_shared::stream::StreamPosition;

use crate::state::broker::entry::StreamEntry;
use crate::state::broker::history::Replay;
use crate::state::cluster::Cluster;
use crate::state::registry::Registry;

/// What a broker's operations return: a future that owns what it needs, so a
/// broker that must ask a server (Redis...) can; the in-memory broker's are
/// ready at once.
pub type BrokerFuture<T> = Pin<Box<dyn Future<Output = Result<T, BrokerError>> + Send + 'static>>;

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The publication could not be encoded (params must be a JSON array or object).
    #[error("the publication could not be encoded: {0}")]
    Encode(#[from] EncodeError),
    /// The broker's backend could not be reached or failed; try again later.
    /// Over JSON-RPC: -32003 "Broker unavailable", the reason as `data`.
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
}

/// Where a subscription starts: the stream's position, and what a
/// subscriber that gave `since` missed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Snapshot {
    /// The epoch the topic's next publications carry, and its latest offset.
    pub position: StreamPosition,
    /// With `since`: the missed publications, all or none. Without `since`:
    /// `Complete` and empty (the subscription is then not `recovered`).
    pub replay: Replay,
}

impl Snapshot {
    /// A snapshot from its parts.
    pub fn new(position: StreamPosition, replay: Replay) -> Self {
        Snapshot { position, replay }
    }
}

/// A page of a topic's history.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HistoryPage {
    /// The stream's current epoch and latest offset.
    pub position: StreamPosition,
    /// The publications asked for, oldest first.
    pub entries: Vec<StreamEntry>,
}

impl HistoryPage {
    /// A page from its parts.
    pub fn new(position: StreamPosition, entries: Vec<StreamEntry>) -> Self {
        HistoryPage { position, entries }
    }
}

/// Orders the publications of every topic and keeps their history; hands
/// every publication to the fan-out of each server attached to it.
///
/// Implement it to share topics between server processes (the in-process
/// [`MemoryBroker`] is the default). The contract:
/// - [`publish`](Self::publish) is **ordered at the call**: two publications
///   made one after the other on one topic get increasing offsets in that
///   order, and are published whether or not the returned futures are awaited;
/// - every publication reaches [`Fanout::deliver`] of every attached server,
///   **in offset order per topic**, exactly once;
/// - a publication published after a snapshot was taken has a greater
///   offset than the snapshot reports, and is delivered after the snapshot
///   was taken (the server registers a subscriber before asking for its
///   snapshot, keeps what is delivered meanwhile, and passes on only what
///   comes after the snapshot's offset: a delivery may lag behind the
///   snapshot);
/// - `snapshot` and `history` report the epoch the topic's next publications
///   carry, also for a topic never published to (starting its stream);
/// - a server calls [`watch`](Self::watch) when a topic gains its first local
///   subscriber and [`unwatch`](Self::unwatch) when it loses its last (in
///   that order, never twice in a row for one topic and server), and awaits
///   [`watching`](Self::watching) before it answers a subscribe or asks for
///   a snapshot: once `watching` resolves, every publication made from then
///   on reaches the server's fan-out. A broker that hands every
///   publication to every server anyway (the in-memory one) keeps the
///   default no-ops.
pub trait Broker: Send + Sync + std::fmt::Debug + 'static {
    /// Connects a server's fan-out: from now on every publication is handed
    /// to it. Called once per server built with this broker.
    fn attach(&self, fanout: Fanout);

    /// Publishes `method` with `params` (a JSON array, object or `null`) to
    /// `topic`; resolves to its position.
    fn publish(&self, topic: &str, method: &str, params: &RawValue) -> BrokerFuture<StreamPosition>;

    /// Where `topic`'s stream stands and, with `since`, every publication
    /// after it when all are still in history, the epoch is the same and
    /// they are at most `max_replay`; else [`Replay::Lost`].
    fn snapshot(&self, topic: &str, since: Option<&StreamPosition>, max_replay: usize) -> BrokerFuture<Snapshot>;

    /// Up to `limit` retained publications of `topic` after `since` (from the
    /// oldest retained without it, or when `since` is of another epoch).
    fn history(&self, topic: &str, since: Option<&StreamPosition>, limit: usize) -> BrokerFuture<HistoryPage>;

    /// `topic` has its first subscriber on a server attached to this broker:
    /// from now on bring its publications to that server. Never waits (it is
    /// called under the registry's lock). Default: nothing.
    fn watch(&self, topic: &str) {
        let _ = topic;
    }

    /// `topic` has lost its last subscriber on a server attached to this
    /// broker. Never waits. Default: nothing.
    fn unwatch(&self, topic: &str) {
        let _ = topic;
    }

    /// Resolves once the publications of `topic` (watched) reach this
    /// broker's fan-outs: every publication made after it resolved is
    /// delivered. Fails, within the broker's own bound, when the broker
    /// cannot say so ([`BrokerError::Unavailable`]). Default: at once.
    fn watching(&self, topic: &str) -> BrokerFuture<()> {
        let _ = topic;
        Box::pin(std::future::ready(Ok(())))
    }

    /// The cluster a server built with this broker joins when its builder
    /// names none ([`ServerBuilder::cluster`](crate::ServerBuilder::cluster)):
    /// a broker shared by several processes may bring the addressed traffic
    /// along. Default: none.
    fn cluster(&self) -> Option<Arc<dyn Cluster>> {
        None
    }

    /// Whether the broker can serve now: the server's readiness probe
    /// (`GET /readyz`) asks it, and reports the server not ready while it
    /// fails or takes longer than a second. Default: ready (the in-memory
    /// broker always is); a broker with a backend checks that it reaches it.
    fn check_ready(&self) -> BrokerFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

pub use memory::MemoryBroker;
#[cfg(feature = "redis")]
pub use redis::{Addressed, RedisBroker, RedisBrokerBuilder, RedisConnectError};

/// A server's side of its broker: where the broker hands every publication
/// (of any topic, from any server) to be queued for this server's
/// subscribers. Cheap to clone; it does not keep the server alive.
#[derive(Clone)]
pub struct Fanout {
    registry: Weak<Registry>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").field("server_gone", &self.is_gone()).finish()
    }
}

impl Fanout {
    pub(crate) fn new(registry: &Arc<Registry>) -> Self {
        Fanout { registry: Arc::downgrade(registry) }
    }

    /// Queues `entry` for every subscriber of its topic on this server:
    /// positioned ones get its `rpc.publication` frame, plain ones the plain
    /// notification (encoded once here). Never waits. Call it in offset
    /// order per topic, from one task at a time per topic.
    pub fn deliver(&self, entry: &StreamEntry) {
        if let Some(registry) = self.registry.upgrade() {
            registry.deliver(entry);
        }
    }

    /// Whether the server is gone (its fan-out can be forgotten).
    pub fn is_gone(&self) -> bool {
        self.registry.strong_count() == 0
    }
}
