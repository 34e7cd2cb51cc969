//! The names of every key and channel the Redis cluster uses (the layout
//! and TTLs are in the [module docs](super)).

use uuid::Uuid;

use crate::state::cluster::NodeId;

/// Key and channel names under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Keys { prefix: prefix.to_owned() }
    }

    /// `{prefix}:node:{node}`: the node's liveness key.
    pub(super) fn node(&self, node: &NodeId) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// `{prefix}:nodes`: every live node, scored by when it expires.
    pub(super) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// `{prefix}:conn:{connection}`: the directory entry (the node's id).
    pub(super) fn connection(&self, connection: Uuid) -> String {
        format!("{}:conn:{connection}", self.prefix)
    }

    /// `{prefix}:presence:{topic}`: the topic's members (connection → node).
    pub(super) fn presence(&self, topic: &str) -> String {
        format!("{}:presence:{topic}", self.prefix)
    }

    /// `{prefix}:presence-expiry:{topic}`: the topic's members, scored by when they expire.
    pub(super) fn presence_expiry(&self, topic: &str) -> String {
        format!("{}:presence-expiry:{topic}", self.prefix)
    }

    /// `{prefix}:control:` — a node's control channel is this plus its id.
    pub(super) fn control_prefix(&self) -> String {
        format!("{}:control:", self.prefix)
    }

    /// `{prefix}:control:{node}`: the node's control channel.
    pub(super) fn control(&self, node: &NodeId) -> String {
        format!("{}:control:{node}", self.prefix)
    }

    /// `{prefix}:broadcast`: the channel every node listens to.
    pub(super) fn broadcast(&self) -> String {
        format!("{}:broadcast", self.prefix)
    }
}
