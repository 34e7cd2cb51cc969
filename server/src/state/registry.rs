//! The connection registry: live connections by id, and topic membership.
//!
//! Terms:
//! - a **member** is a connection the registry knows: it is added when the
//!   connection is registered (right after its upgrade) or, if a handler
//!   joins it to a topic before that, at the join;
//! - a **topic** maps to the peers that joined it, so a publication walks
//!   exactly its recipients;
//! - the registry is **closed** by a shutdown: connections registering after
//!   that are refused and closed at once.
//!
//! A member is removed only once its connection has ended; a join for an
//! ended connection is refused, so nothing outlives its connection.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use serde_json::Value;
use switchboard_shared::PeerHandle;
use uuid::Uuid;

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
    topics: HashSet<Arc<str>>,
    connected_at: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    members: HashMap<Uuid, Member>,
    topics: HashMap<Arc<str>, HashMap<Uuid, PeerHandle>>,
    closed: bool,
}

impl State {
    /// The member for `peer`, added if missing; `None` once the connection has ended.
    fn member(&mut self, peer: &PeerHandle) -> Option<&mut Member> {
        if peer.is_closed() {
            // Its removal may have run already: adding it back would leak it.
            return None;
        }
        Some(self.members.entry(peer.id()).or_insert_with(|| Member {
            peer: peer.clone(),
            topics: HashSet::new(),
            connected_at: SystemTime::now(),
        }))
    }
}

/// Live connections and topics.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    state: RwLock<State>,
}

impl Registry {
    /// Adds a freshly upgraded connection, unless a shutdown has begun.
    pub(crate) fn register(&self, peer: &PeerHandle) -> Registration {
        let mut state = self.state.write();
        if state.closed {
            return Registration::ShuttingDown;
        }
        state.member(peer);
        Registration::Registered
    }

    /// Forgets an ended connection and its memberships.
    pub(crate) fn remove(&self, id: Uuid) {
        let mut state = self.state.write();
        let Some(member) = state.members.remove(&id) else { return };
        for topic in member.topics {
            if let Some(peers) = state.topics.get_mut(&topic) {
                peers.remove(&id);
                if peers.is_empty() {
                    state.topics.remove(&topic);
                }
            }
        }
    }

    /// Refuses further registrations and returns every live peer.
    pub(crate) fn close(&self) -> Vec<PeerHandle> {
        let mut state = self.state.write();
        state.closed = true;
        state.members.values().map(|m| m.peer.clone()).collect()
    }

    /// Joins `peer` to `topic`; `limit` caps its topics (`None`: no cap).
    pub(crate) fn join(&self, peer: &PeerHandle, topic: &str, limit: Option<usize>) -> Join {
        let mut state = self.state.write();
        let Some(member) = state.member(peer) else { return Join::Ended };
        if member.topics.contains(topic) {
            return Join::AlreadyMember;
        }
        if let Some(limit) = limit {
            if member.topics.len() >= limit {
                return Join::LimitReached { limit };
            }
        }
        let topic: Arc<str> = Arc::from(topic);
        member.topics.insert(Arc::clone(&topic));
        state.topics.entry(topic).or_default().insert(peer.id(), peer.clone());
        Join::Joined
    }

    /// Removes `id` from `topic`; `false` when it was not a member.
    pub(crate) fn leave(&self, id: Uuid, topic: &str) -> bool {
        let mut state = self.state.write();
        let was_member = state.members.get_mut(&id).is_some_and(|m| m.topics.remove(topic));
        if was_member {
            if let Some(peers) = state.topics.get_mut(topic) {
                peers.remove(&id);
                if peers.is_empty() {
                    state.topics.remove(topic);
                }
            }
        }
        was_member
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
                if let Some(peers) = state.topics.get(topic.as_str()) {
                    peers.values().for_each(f);
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

    pub(crate) fn len(&self) -> usize {
        self.state.read().members.len()
    }

    pub(crate) fn subscribers(&self, topic: &str) -> usize {
        self.state.read().topics.get(topic).map_or(0, HashMap::len)
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
