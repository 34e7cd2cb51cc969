//! The connection registry: live connections by id, and topic membership.
//!
//! Terms:
//! - a **member** is a connection the registry knows: it is added when the
//!   connection is registered (right after its upgrade) or, if a handler
//!   joins it to a topic before that, at the join;
//! - a **topic** maps to its local fan-out ([`Topic`]): the peers that
//!   joined it, plain or positioned, so a publication walks exactly its
//!   recipients;
//! - the registry is **closed** by a shutdown: connections registering after
//!   that are refused and closed at once.
//!
//! A member is removed only once its connection has ended; a join for an
//! ended connection is refused, so nothing outlives its connection.
//!
//! The registry tells the broker when a topic gains its first local
//! subscriber and loses its last ([`Broker::watch`] / [`Broker::unwatch`]),
//! under its lock, so the broker sees them in the order they happened.
//!
//! With a cluster, the registry tells it of every member added and removed
//! and of every join and leave, under its lock, so in the order they happen
//! (the cluster's directory and presence follow the registry).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::RwLock;
use serde_json::Value;
use switchboard_shared::PeerHandle;
use uuid::Uuid;

use crate::config::topics::TopicPolicies;
use crate::state::broker::Broker;
use crate::state::broker::entry::StreamEntry;
use crate::state::cluster::Cluster;
use crate::state::telemetry::Telemetry;
use crate::state::topics::Topic;

/// A snapshot of one live connection, as [`crate::ServerHandle::connections`] lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionSummary {
    /// The connection id (uuid v4).
    pub id: Uuid,
    /// The client's address, when known.
    pub remote: Option<SocketAddr>,
    /// The path of the upgrade request.
    pub path: String,
    /// The authenticator's data.
    pub auth: Option<Value>,
    /// When the server registered it.
    pub connected_at: SystemTime,
    /// The topics it has joined, sorted.
    pub topics: Vec<String>,
    /// Its calls being handled right now.
    pub in_flight: usize,
    /// Bytes waiting in its outbound queue.
    pub queued_bytes: usize,
}

/// Whom a push or a `call_many` goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// Every live connection.
    All,
    /// The members of one topic.
    Topic(String),
    /// These connections (unknown ids are skipped).
    Connections(Vec<Uuid>),
}

/// The outcome of registering a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    Registered,
    ShuttingDown,
}

/// The outcome of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    Joined,
    AlreadyMember,
    /// The connection has ended.
    Ended,
    /// The connection is in `limit` topics already.
    LimitReached {
        limit: usize,
    },
}

#[derive(Debug)]
struct Member {
    peer: PeerHandle,
    topics: Memberships,
    connected_at: SystemTime,
}

/// The topics one member has joined: a set made on the first join and
/// freed with the last leave, so a member that joins none (most connections
/// of a hub that only answers calls) carries one empty pointer, not an empty
/// set (48 bytes in every slot of the members table).
#[derive(Debug, Default)]
#[allow(clippy::box_collection, reason = "the box is the point: one pointer in every slot of the members table")]
struct Memberships(Option<Box<HashSet<Arc<str>>>>);

impl Memberships {
    fn contains(&self, topic: &str) -> bool {
        self.0.as_ref().is_some_and(|set| set.contains(topic))
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |set| set.len())
    }

    fn insert(&mut self, topic: Arc<str>) {
        self.0.get_or_insert_default().insert(topic);
    }

    /// `true` when it was a member.
    fn remove(&mut self, topic: &str) -> bool {
        let Some(set) = &mut self.0 else { return false };
        let removed = set.remove(topic);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().flat_map(|set| set.iter())
    }
}

impl IntoIterator for Memberships {
    type Item = Arc<str>;
    type IntoIter = std::iter::Flatten<std::option::IntoIter<std::collections::hash_set::IntoIter<Arc<str>>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.map(|set| set.into_iter()).into_iter().flatten()
    }
}

#[derive(Debug, Default)]
struct State {
    members: HashMap<Uuid, Member>,
    topics: HashMap<Arc<str>, Arc<Topic>>,
    closed: bool,
}

/// A positioned subscription registered and buffering, to be taken live
/// with [`Topic::go_live`] once the broker's snapshot is in.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) topic: Arc<Topic>,
    pub(crate) ticket: u64,
}

impl State {
    /// Removes `id` from `topic`'s subscribers, and the topic once empty;
    /// `true` when it was removed.
    fn drop_subscriber(&mut self, topic: &str, id: Uuid) -> bool {
        if self.topics.get(topic).is_some_and(|t| t.remove(id)) {
            self.topics.remove(topic);
            return true;
        }
        false
    }

    /// The member for `peer`, added if missing (and reported to the
    /// cluster); `None` once the connection has ended.
    fn member(&mut self, peer: &PeerHandle, cluster: Option<&Arc<dyn Cluster>>) -> Option<&mut Member> {
        if peer.is_closed() {
            // Its removal may have run already: adding it back would leak it.
            return None;
        }
        Some(self.members.entry(peer.id()).or_insert_with(|| {
            if let Some(cluster) = cluster {
                cluster.connected(peer.id());
            }
            Member { peer: peer.clone(), topics: Memberships::default(), connected_at: SystemTime::now() }
        }))
    }
}

/// Live connections and topics.
#[derive(Debug)]
pub(crate) struct Registry {
    state: RwLock<State>,
    /// Told of every connection and membership, under the lock (so in
    /// order); `None` for a server alone.
    cluster: Option<Arc<dyn Cluster>>,
    /// Bytes a subscriber may have buffered while its subscription starts.
    max_buffer: usize,
    /// The slow-consumer policy of each topic.
    policies: TopicPolicies,
    tickets: AtomicU64,
    /// Told when a topic gains its first subscriber here and loses its last.
    broker: Arc<dyn Broker>,
    /// What the server counts and tells (metrics, call hooks, audit log).
    telemetry: Arc<Telemetry>,
}

impl Registry {
    pub(crate) fn new(
        max_buffer: usize,
        policies: TopicPolicies,
        broker: Arc<dyn Broker>,
        cluster: Option<Arc<dyn Cluster>>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Registry {
            state: RwLock::default(),
            cluster,
            max_buffer,
            policies,
            tickets: AtomicU64::new(1),
            broker,
            telemetry,
        }
    }

    /// What the server counts and tells.
    pub(crate) fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// A topic's local fan-out, for its first subscriber: the broker starts
    /// bringing its publications here.
    fn new_topic(&self, name: &Arc<str>) -> Arc<Topic> {
        self.broker.watch(name);
        Arc::new(Topic::new(Arc::clone(name), self.policies.of(name), self.max_buffer))
    }

    /// Removes `id` from `topic` (and the topic once empty, telling the broker).
    fn drop_subscriber(&self, state: &mut State, topic: &str, id: Uuid) {
        if state.drop_subscriber(topic, id) {
            self.broker.unwatch(topic);
        }
    }

    /// Adds a freshly upgraded connection, unless a shutdown has begun.
    pub(crate) fn register(&self, peer: &PeerHandle) -> Registration {
        let mut state = self.state.write();
        if state.closed {
            return Registration::ShuttingDown;
        }
        state.member(peer, self.cluster.as_ref());
        Registration::Registered
    }

    /// Forgets an ended connection and its memberships.
    pub(crate) fn remove(&self, id: Uuid) {
        let mut state = self.state.write();
        let Some(member) = state.members.remove(&id) else { return };
        for topic in member.topics {
            self.drop_subscriber(&mut state, &topic, id);
        }
        if let Some(cluster) = &self.cluster {
            cluster.disconnected(id);
        }
    }

    /// Refuses further registrations and returns every live peer.
    pub(crate) fn close(&self) -> Vec<PeerHandle> {
        let mut state = self.state.write();
        state.closed = true;
        state.members.values().map(|m| m.peer.clone()).collect()
    }

    /// Joins `peer` to `topic` as a plain subscriber; `limit` caps its
    /// topics (`None`: no cap). A member in either form stays as it is.
    pub(crate) fn join(&self, peer: &PeerHandle, topic: &str, limit: Option<usize>) -> Join {
        let mut state = self.state.write();
        let Some(member) = state.member(peer, self.cluster.as_ref()) else { return Join::Ended };
        if member.topics.contains(topic) {
            return Join::AlreadyMember;
        }
        if let Some(limit) = limit
            && member.topics.len() >= limit
        {
            return Join::LimitReached { limit };
        }
        let topic: Arc<str> = Arc::from(topic);
        member.topics.insert(Arc::clone(&topic));
        state.topics.entry(Arc::clone(&topic)).or_insert_with(|| self.new_topic(&topic)).add_plain(peer);
        if let Some(cluster) = &self.cluster {
            cluster.joined(peer.id(), &topic);
        }
        Join::Joined
    }

    /// Joins `peer` to `topic` as a positioned subscriber, buffering until
    /// it goes live (a member in either form starts over positioned);
    /// `limit` caps its topics.
    pub(crate) fn join_positioned(
        &self,
        peer: &PeerHandle,
        topic: &str,
        limit: Option<usize>,
    ) -> Result<Pending, Join> {
        let mut state = self.state.write();
        let Some(member) = state.member(peer, self.cluster.as_ref()) else { return Err(Join::Ended) };
        if !member.topics.contains(topic) {
            if let Some(limit) = limit
                && member.topics.len() >= limit
            {
                return Err(Join::LimitReached { limit });
            }
            member.topics.insert(Arc::from(topic));
            if let Some(cluster) = &self.cluster {
                cluster.joined(peer.id(), topic);
            }
        }
        let topic = match state.topics.get(topic) {
            Some(existing) => Arc::clone(existing),
            None => {
                let name: Arc<str> = Arc::from(topic);
                let created = self.new_topic(&name);
                state.topics.insert(name, Arc::clone(&created));
                created
            }
        };
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        topic.add_buffering(peer, ticket);
        Ok(Pending { topic, ticket })
    }

    /// Forgets a positioned subscription that could not start (its
    /// snapshot failed), unless a later subscribe has replaced it.
    pub(crate) fn abandon(&self, id: Uuid, name: &str, pending: &Pending) {
        let mut state = self.state.write();
        let emptied = pending.topic.abandon(id, pending.ticket);
        if emptied && state.topics.get(name).is_some_and(|t| Arc::ptr_eq(t, &pending.topic)) {
            state.topics.remove(name);
            self.broker.unwatch(name);
        }
        if !pending.topic.contains(id) {
            let left = state.members.get_mut(&id).is_some_and(|member| member.topics.remove(name));
            if let (true, Some(cluster)) = (left, &self.cluster) {
                cluster.left(id, name);
            }
        }
    }

    /// Removes `id` from `topic`; `false` when it was not a member.
    pub(crate) fn leave(&self, id: Uuid, topic: &str) -> bool {
        let mut state = self.state.write();
        let was_member = state.members.get_mut(&id).is_some_and(|m| m.topics.remove(topic));
        if was_member {
            self.drop_subscriber(&mut state, topic, id);
            if let Some(cluster) = &self.cluster {
                cluster.left(id, topic);
            }
        }
        was_member
    }

    /// Queues a publication of the topic's stream for its subscribers here.
    pub(crate) fn deliver(&self, entry: &StreamEntry) {
        let topic = self.state.read().topics.get(entry.topic()).cloned();
        self.telemetry.publication(topic.as_deref().map_or(0, Topic::len));
        if let Some(topic) = topic {
            topic.deliver(entry);
        }
    }

    /// The peer of a live connection.
    pub(crate) fn peer(&self, id: Uuid) -> Option<PeerHandle> {
        self.state.read().members.get(&id).map(|m| m.peer.clone())
    }

    /// Calls `f` with every peer `target` designates, under the read lock:
    /// `f` must not block nor touch the registry.
    pub(crate) fn for_each(&self, target: &Target, mut f: impl FnMut(&PeerHandle)) {
        let state = self.state.read();
        match target {
            Target::All => state.members.values().for_each(|m| f(&m.peer)),
            Target::Topic(topic) => {
                if let Some(topic) = state.topics.get(topic.as_str()) {
                    topic.for_each_peer(f);
                }
            }
            Target::Connections(ids) => {
                ids.iter().filter_map(|id| state.members.get(id)).for_each(|m| f(&m.peer));
            }
        }
    }

    /// The peers `target` designates.
    pub(crate) fn peers(&self, target: &Target) -> Vec<PeerHandle> {
        let mut peers = Vec::new();
        self.for_each(target, |p| peers.push(p.clone()));
        peers
    }

    /// The ids of the live connections.
    pub(crate) fn ids(&self) -> Vec<Uuid> {
        self.state.read().members.keys().copied().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.state.read().members.len()
    }

    pub(crate) fn subscribers(&self, topic: &str) -> usize {
        self.state.read().topics.get(topic).map_or(0, |t| t.len())
    }

    pub(crate) fn summaries(&self) -> Vec<ConnectionSummary> {
        let state = self.state.read();
        state
            .members
            .values()
            .map(|m| {
                let info = m.peer.info();
                let mut topics: Vec<String> = m.topics.iter().map(|t| t.to_string()).collect();
                topics.sort();
                ConnectionSummary {
                    id: info.id,
                    remote: info.remote,
                    path: info.path.clone(),
                    auth: info.auth.clone(),
                    connected_at: m.connected_at,
                    topics,
                    in_flight: m.peer.in_flight(),
                    queued_bytes: m.peer.queued_bytes(),
                }
            })
            .collect()
    }
}

impl Drop for Registry {
    /// The server is gone: its topics are no longer watched (a broker shared
    /// with other servers keeps bringing them theirs).
    fn drop(&mut self) {
        for topic in self.state.get_mut().topics.keys() {
            self.broker.unwatch(topic);
        }
    }
}
