//! What this node has written to the directory and to presence: a mirror
//! of its connections and their topics, kept by the writer task in the
//! order the registry reported them, and the commands that write each
//! change (and, on every heartbeat, everything again: that refreshes the
//! TTLs and rebuilds what a restarted Redis lost).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use redis::Pipeline;
use uuid::Uuid;

use crate::state::cluster::NodeId;
use crate::state::cluster::redis::keys::Keys;
use crate::state::cluster::redis::scripts;

/// This node's connections and their topics, as written to Redis.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    connections: HashMap<Uuid, HashSet<Arc<str>>>,
}

/// Writes directory and presence entries for one node.
#[derive(Debug)]
pub(super) struct Writes<'a> {
    pub(super) keys: &'a Keys,
    pub(super) node: &'a NodeId,
    pub(super) ttl_ms: u64,
}

impl Writes<'_> {
    fn register(&self, pipe: &mut Pipeline, connection: Uuid) {
        pipe.cmd("SET")
            .arg(self.keys.connection(connection))
            .arg(self.node.as_str())
            .arg("PX")
            .arg(self.ttl_ms)
            .ignore();
    }

    fn join(&self, pipe: &mut Pipeline, connection: Uuid, topic: &str) {
        let (hash, expiry) = (self.keys.presence(topic), self.keys.presence_expiry(topic));
        let id = connection.to_string();
        pipe.add_command(scripts::presence_add(&hash, &expiry, &id, self.node.as_str(), self.ttl_ms)).ignore();
    }

    fn leave(&self, pipe: &mut Pipeline, connection: Uuid, topic: &str) {
        let id = connection.to_string();
        pipe.cmd("ZREM").arg(self.keys.presence_expiry(topic)).arg(&id).ignore();
        pipe.cmd("HDEL").arg(self.keys.presence(topic)).arg(&id).ignore();
    }
}

impl Mirror {
    pub(super) fn len(&self) -> usize {
        self.connections.len()
    }

    /// A connection started.
    pub(super) fn connected(&mut self, writes: &Writes<'_>, pipe: &mut Pipeline, connection: Uuid) {
        if self.connections.insert(connection, HashSet::new()).is_none() {
            writes.register(pipe, connection);
        }
    }

    /// A connection ended: its directory entry and presence go.
    pub(super) fn disconnected(&mut self, writes: &Writes<'_>, pipe: &mut Pipeline, connection: Uuid) {
        let Some(topics) = self.connections.remove(&connection) else { return };
        pipe.cmd("DEL").arg(writes.keys.connection(connection)).ignore();
        for topic in topics {
            writes.leave(pipe, connection, &topic);
        }
    }

    /// A connection joined a topic.
    pub(super) fn joined(&mut self, writes: &Writes<'_>, pipe: &mut Pipeline, connection: Uuid, topic: Arc<str>) {
        let topics = self.connections.entry(connection).or_insert_with(|| {
            writes.register(pipe, connection);
            HashSet::new()
        });
        if topics.insert(Arc::clone(&topic)) {
            writes.join(pipe, connection, &topic);
        }
    }

    /// A connection left a topic.
    pub(super) fn left(&mut self, writes: &Writes<'_>, pipe: &mut Pipeline, connection: Uuid, topic: &str) {
        if self.connections.get_mut(&connection).is_some_and(|topics| topics.remove(topic)) {
            writes.leave(pipe, connection, topic);
        }
    }

    /// Everything again (TTLs refreshed, lost entries rebuilt), in
    /// pipelines of about `chunk` commands.
    pub(super) fn refresh(&self, writes: &Writes<'_>, chunk: usize) -> Vec<Pipeline> {
        let mut pipes = vec![redis::pipe()];
        let mut size = 0;
        for (connection, topics) in &self.connections {
            if size >= chunk {
                pipes.push(redis::pipe());
                size = 0;
            }
            let pipe = pipes.last_mut().expect("one at least");
            writes.register(pipe, *connection);
            for topic in topics {
                writes.join(pipe, *connection, topic);
            }
            size += 1 + topics.len();
        }
        pipes
    }

    /// Everything removed (the node is stopping).
    pub(super) fn clear(&mut self, writes: &Writes<'_>, pipe: &mut Pipeline) {
        for connection in self.connections.keys().copied().collect::<Vec<_>>() {
            self.disconnected(writes, pipe, connection);
        }
    }
}
