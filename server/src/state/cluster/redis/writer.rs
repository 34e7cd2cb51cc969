//! The writer task: every write a node makes to Redis goes through it, in
//! the order it was asked for. It takes what is queued, sends it as one
//! pipeline (one round trip however many ops), and hands each op that
//! waits its own result. So a node's control messages arrive in the order
//! they were sent, and its directory and presence follow the registry's
//! order (a connection that ended is never written back by a late refresh).
//!
//! On every heartbeat it marks the node live and writes its whole mirror
//! again; when the server stops (or the cluster is dropped) it removes the
//! node's entries and tells the listener to stop.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Pipeline, RedisResult, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use crate::state::cluster::redis::directory::{Mirror, Writes};
use crate::state::cluster::redis::keys::Keys;
use crate::state::cluster::redis::liveness::{self, unavailable};
use crate::state::cluster::redis::{scripts, wire};
use crate::state::cluster::{ClusterError, LocalNode, NodeId};

/// Ops sent as one pipeline at most.
const MAX_BATCH: usize = 1024;

/// Commands per pipeline when the whole mirror is written again.
const REFRESH_CHUNK: usize = 1000;

/// What the writer is asked to do.
#[derive(Debug)]
pub(super) enum Op {
    /// The server is built: stop with it.
    Attach(LocalNode),
    Connected(Uuid),
    Disconnected(Uuid),
    Joined(Uuid, Arc<str>),
    Left(Uuid, Arc<str>),
    /// `PUBLISH`; `done` gets how many nodes received it.
    Publish {
        channel: String,
        message: String,
        done: Option<oneshot::Sender<Result<i64, ClusterError>>>,
    },
    /// Publishes on the control channel of the connection's node.
    Route {
        connection: Uuid,
        message: String,
        done: Option<oneshot::Sender<Result<Routed, ClusterError>>>,
    },
}

/// Where a routed message went.
#[derive(Debug)]
pub(super) enum Routed {
    /// No node serves the connection.
    Unknown,
    /// Published on `node`'s control channel, which `receivers` listen to.
    Sent { node: NodeId, receivers: i64 },
}

/// How a pipeline's result reaches the op that waits for it.
enum Reply {
    Publish(Option<oneshot::Sender<Result<i64, ClusterError>>>),
    Route(Option<oneshot::Sender<Result<Routed, ClusterError>>>),
}

impl Reply {
    fn give(self, value: RedisResult<Value>) {
        match self {
            Reply::Publish(done) => {
                if let Some(done) = done {
                    let _ = done.send(value.and_then(|v| Ok(redis::from_redis_value(v)?)).map_err(unavailable));
                }
            }
            Reply::Route(done) => {
                if let Some(done) = done {
                    let routed = value.and_then(|v| Ok(redis::from_redis_value::<Option<(String, i64)>>(v)?));
                    let _ = done.send(routed.map_err(unavailable).map(|routed| match routed {
                        None => Routed::Unknown,
                        Some((node, receivers)) => Routed::Sent { node: NodeId::from(node.as_str()), receivers },
                    }));
                }
            }
        }
    }

    fn fail(self, error: &ClusterError) {
        match self {
            Reply::Publish(done) => drop(done.map(|d| d.send(Err(error.clone())))),
            Reply::Route(done) => drop(done.map(|d| d.send(Err(error.clone())))),
        }
    }
}

/// The writer task's state.
pub(super) struct Writer {
    pub(super) commands: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) node: NodeId,
    pub(super) ttl: Duration,
    pub(super) ops: mpsc::UnboundedReceiver<Op>,
    pub(super) mirror: Mirror,
    pub(super) local: Option<LocalNode>,
    /// Whether the last write went through (failures are logged once per outage).
    pub(super) healthy: bool,
}

impl Writer {
    /// Runs until the server stops or the cluster is dropped, then cleans
    /// up and tells the listener to stop.
    pub(super) async fn run(mut self, stop: watch::Sender<bool>) {
        let every = liveness::heartbeat_interval(self.ttl);
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let local = self.local.clone();
            let stopped = async move {
                match local {
                    Some(local) => local.stopped().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = stopped => break,
                _ = tick.tick() => self.heartbeat().await,
                op = self.ops.recv() => match op {
                    Some(op) => {
                        let mut batch = vec![op];
                        while batch.len() < MAX_BATCH {
                            match self.ops.try_recv() {
                                Ok(op) => batch.push(op),
                                Err(_) => break,
                            }
                        }
                        self.write(batch).await;
                    }
                    None => break,
                },
            }
        }
        self.depart().await;
        let _ = stop.send(true);
    }

    fn ttl_ms(&self) -> u64 {
        wire::millis(self.ttl)
    }

    /// Sends `batch` as one pipeline and hands out the results.
    async fn write(&mut self, batch: Vec<Op>) {
        let writes = Writes { keys: &self.keys, node: &self.node, ttl_ms: wire::millis(self.ttl) };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut replies = Vec::new();
        for op in batch {
            match op {
                Op::Attach(local) => self.local = Some(local),
                Op::Connected(connection) => self.mirror.connected(&writes, &mut pipe, connection),
                Op::Disconnected(connection) => self.mirror.disconnected(&writes, &mut pipe, connection),
                Op::Joined(connection, topic) => self.mirror.joined(&writes, &mut pipe, connection, topic),
                Op::Left(connection, topic) => self.mirror.left(&writes, &mut pipe, connection, &topic),
                Op::Publish { channel, message, done } => {
                    pipe.cmd("PUBLISH").arg(channel).arg(message);
                    replies.push(Reply::Publish(done));
                }
                Op::Route { connection, message, done } => {
                    let entry = self.keys.connection(connection);
                    pipe.add_command(scripts::route(&entry, &self.keys.control_prefix(), &message));
                    replies.push(Reply::Route(done));
                }
            }
        }
        if pipe.is_empty() {
            return;
        }
        match pipe.query_async::<Vec<RedisResult<Value>>>(&mut self.commands).await {
            Ok(values) => {
                self.went_through();
                let mut values = values.into_iter();
                for reply in replies {
                    reply.give(values.next().unwrap_or(Ok(Value::Nil)));
                }
            }
            Err(e) => {
                let error = unavailable(e);
                self.failed(&error);
                replies.into_iter().for_each(|reply| reply.fail(&error));
            }
        }
    }

    /// Marks the node live and writes its whole mirror again.
    async fn heartbeat(&mut self) {
        let writes = Writes { keys: &self.keys, node: &self.node, ttl_ms: self.ttl_ms() };
        let mut pipes = self.mirror.refresh(&writes, REFRESH_CHUNK);
        liveness::beat(&mut pipes[0], &self.keys, &self.node, self.ttl_ms());
        for pipe in &pipes {
            if let Err(e) = pipe.query_async::<()>(&mut self.commands).await {
                self.failed(&unavailable(e));
                return;
            }
        }
        self.went_through();
    }

    /// Writes what is still queued, then removes every entry of this node.
    async fn depart(&mut self) {
        let mut batch = Vec::new();
        while let Ok(op) = self.ops.try_recv() {
            batch.push(op);
        }
        if !batch.is_empty() {
            self.write(batch).await;
        }
        let writes = Writes { keys: &self.keys, node: &self.node, ttl_ms: wire::millis(self.ttl) };
        let mut pipe: Pipeline = redis::pipe();
        self.mirror.clear(&writes, &mut pipe);
        liveness::depart(&mut pipe, &self.keys, &self.node);
        if let Err(e) = pipe.query_async::<()>(&mut self.commands).await {
            tracing::warn!(target: "switchboard::cluster", node = %self.node, error = %e, "could not remove this node's entries from Redis; they expire with their TTL");
        }
        tracing::info!(target: "switchboard::cluster", node = %self.node, "node left the cluster");
    }

    fn went_through(&mut self) {
        if !self.healthy {
            self.healthy = true;
            tracing::info!(target: "switchboard::cluster", node = %self.node, connections = self.mirror.len(), "Redis reachable again; this node's entries are written again");
        }
    }

    fn failed(&mut self, error: &ClusterError) {
        if self.healthy {
            self.healthy = false;
            tracing::warn!(target: "switchboard::cluster", node = %self.node, %error, "Redis write failed; retrying on every heartbeat");
        }
    }
}
