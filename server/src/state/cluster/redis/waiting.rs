//! The caller's side: calls to connections of other nodes, and gatherings
//! (`call_many`, the roll call of connections) waiting for what other nodes
//! send back on this node's control channel.
//!
//! Each waits under an id unique on this node. A call that outlasts a
//! heartbeat interval **probes** its node every interval: the node answers
//! whether it still runs the call. A node that does not listen any more
//! (the probe reaches nobody), that no longer knows the call, or that
//! leaves three probes unanswered, fails the call with
//! [`ClusterError::NodeUnreachable`]: even a call without a timeout ends.
//! When this node loses its own subscription, everything waiting fails at
//! once (replies may have been missed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::value::RawValue;
use switchboard_shared::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use crate::state::cluster::redis::Inner;
use crate::state::cluster::redis::wire::{Control, Outcome, WireTarget, millis};
use crate::state::cluster::redis::writer::{Op, Routed};
use crate::state::cluster::{CallOutcome, ClusterError, NodeId, Presence, RemoteAnswer};

/// Probes a node may leave unanswered before its call fails.
const MAX_UNANSWERED_PROBES: u32 = 3;

/// What another node sends back.
#[derive(Debug)]
pub(super) enum Event {
    Reply(Outcome),
    Probed(bool),
    Count(NodeId, Vec<Uuid>),
    Answers(NodeId, Vec<(Uuid, Outcome)>),
}

/// Everything waiting on this node, by id.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    waiters: Mutex<HashMap<u64, mpsc::UnboundedSender<Event>>>,
}

impl Waiting {
    fn register(&self, id: u64) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.waiters.lock().insert(id, tx);
        rx
    }

    fn forget(&self, id: u64) {
        self.waiters.lock().remove(&id);
    }

    /// Hands `event` to what waits under `id` (a late one is dropped).
    pub(super) fn deliver(&self, id: u64, event: Event) {
        if let Some(waiter) = self.waiters.lock().get(&id) {
            let _ = waiter.send(event);
        }
    }

    /// Fails everything waiting (this node's subscription was lost).
    pub(super) fn fail_all(&self) {
        self.waiters.lock().clear();
    }
}

/// Forgets a waiter when its future ends or is dropped; a call given up
/// before its reply is cancelled on its node.
struct Registration<'a> {
    inner: &'a Inner,
    id: u64,
    cancel_on: Option<NodeId>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.inner.waiting.forget(self.id);
        if let Some(node) = self.cancel_on.take() {
            self.inner.send(&node, &Control::Cancel { from: self.inner.node.clone(), id: self.id });
        }
    }
}

/// Awaits `future` until `deadline` (`None`: no deadline); `None` when it passed.
async fn until<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}

fn stopped() -> ClusterError {
    ClusterError::Unavailable("this node has left the cluster (its server stopped)".into())
}

fn lost() -> ClusterError {
    ClusterError::Unavailable("this node lost its control channel subscription while waiting".into())
}

impl Inner {
    fn ensure_listening(&self) -> Result<(), ClusterError> {
        if *self.subscribed.borrow() {
            Ok(())
        } else {
            Err(ClusterError::Unavailable(
                "this node is not subscribed to its control channel (is Redis reachable?)".into(),
            ))
        }
    }

    /// Publishes `message` on `channel`; resolves to how many nodes received it.
    async fn publish(&self, channel: String, message: String) -> Result<i64, ClusterError> {
        let (done, receivers) = oneshot::channel();
        self.ops.send(Op::Publish { channel, message, done: Some(done) }).map_err(|_| stopped())?;
        receivers.await.map_err(|_| stopped())?
    }

    /// Calls `method` on a connection of another node (see [`crate::state::cluster::Cluster::call`]).
    pub(super) async fn call(
        self: Arc<Self>,
        connection: Uuid,
        method: String,
        params: Box<RawValue>,
        timeout: Option<Duration>,
    ) -> Result<CallOutcome, ClusterError> {
        let deadline = timeout.map(|limit| Instant::now() + limit);
        let timed_out = || Ok(Err(Error::Timeout(timeout.unwrap_or_default())));
        self.ensure_listening()?;
        let id = self.next_id();
        let mut events = self.waiting.register(id);
        let mut registration = Registration { inner: &self, id, cancel_on: None };
        let timeout_ms = timeout.map(millis);
        let message = Control::Call { from: self.node.clone(), id, connection, method, params, timeout_ms }.encode();
        let (done, routed) = oneshot::channel();
        self.ops.send(Op::Route { connection, message, done: Some(done) }).map_err(|_| stopped())?;
        let node = match until(deadline, routed).await {
            None => return timed_out(),
            Some(Err(_)) => return Err(stopped()),
            Some(Ok(routed)) => match routed? {
                Routed::Unknown => return Err(ClusterError::UnknownConnection(connection)),
                Routed::Sent { node, receivers: 0 } => return Err(ClusterError::NodeUnreachable { connection, node }),
                Routed::Sent { node, .. } => node,
            },
        };
        registration.cancel_on = Some(node.clone());
        let unreachable = || Err(ClusterError::NodeUnreachable { connection, node: node.clone() });
        let every = self.probe_interval();
        let mut probes = tokio::time::interval_at(Instant::now() + every, every);
        probes.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut unanswered = 0;
        loop {
            let passed = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.recv() => match event {
                    None => return Err(lost()),
                    Some(Event::Reply(outcome)) => {
                        registration.cancel_on = None;
                        return outcome.into_result().ok_or(ClusterError::UnknownConnection(connection));
                    }
                    Some(Event::Probed(true)) => unanswered = 0,
                    Some(Event::Probed(false)) => {
                        registration.cancel_on = None;
                        return unreachable();
                    }
                    Some(_) => {}
                },
                () = passed => return timed_out(),
                _ = probes.tick() => {
                    if unanswered >= MAX_UNANSWERED_PROBES {
                        return unreachable();
                    }
                    unanswered += 1;
                    let probe = Control::Probe { from: self.node.clone(), id }.encode();
                    match until(deadline, self.publish(self.keys.control(&node), probe)).await {
                        None => return timed_out(),
                        Some(Ok(0)) => return unreachable(),
                        // A failed probe counts as unanswered.
                        Some(_) => {}
                    }
                }
            }
        }
    }

    /// Asks every other node on the broadcast channel, then gathers what
    /// they send back by `deadline`: each node's count, and, with
    /// `answers`, its answers to every connection it counted.
    async fn gather(
        &self,
        id: u64,
        message: String,
        deadline: Duration,
        answers: bool,
    ) -> Result<Gathered, ClusterError> {
        let end = Instant::now() + deadline;
        self.ensure_listening()?;
        let mut events = self.waiting.register(id);
        let _registration = Registration { inner: self, id, cancel_on: None };
        let mut gathered = Gathered::default();
        let receivers = match tokio::time::timeout_at(end, self.publish(self.keys.broadcast(), message)).await {
            Err(_) => return Ok(gathered),
            Ok(receivers) => receivers?,
        };
        // This node listens to the broadcast channel too.
        let others = usize::try_from(receivers - 1).unwrap_or(0);
        while gathered.counts.len() < others || (answers && gathered.answered < gathered.named) {
            let event = match tokio::time::timeout_at(end, events.recv()).await {
                Err(_) | Ok(None) => break,
                Ok(Some(event)) => event,
            };
            match event {
                Event::Count(node, connections) => {
                    if !gathered.counts.contains_key(&node) {
                        gathered.named += connections.len();
                        gathered.counts.insert(node, connections);
                    }
                }
                Event::Answers(node, list) => {
                    for (connection, outcome) in list {
                        if gathered.answers.insert(connection, (node.clone(), outcome)).is_none() {
                            gathered.answered += 1;
                        }
                    }
                }
                Event::Reply(_) | Event::Probed(_) => {}
            }
        }
        Ok(gathered)
    }

    /// `call_many` on every other node (see [`crate::state::cluster::Cluster::call_many`]).
    pub(super) async fn call_many(
        self: Arc<Self>,
        target: WireTarget,
        method: String,
        params: Box<RawValue>,
        deadline: Duration,
    ) -> Result<Vec<RemoteAnswer>, ClusterError> {
        let id = self.next_id();
        let deadline_ms = millis(deadline);
        let message = Control::Many { from: self.node.clone(), id, target, method, params, deadline_ms }.encode();
        let Gathered { counts, mut answers, .. } = self.gather(id, message, deadline, true).await?;
        let mut out = Vec::with_capacity(answers.len());
        for (node, connections) in counts {
            for connection in connections {
                let result = match answers.remove(&connection) {
                    Some((_, outcome)) => outcome.into_result().unwrap_or(Err(Error::Disconnected)),
                    None => Err(Error::Timeout(deadline)),
                };
                out.push(RemoteAnswer::new(connection, node.clone(), result));
            }
        }
        Ok(out)
    }

    /// The connections of every other node that answers by `deadline`.
    pub(super) async fn roll_call(self: Arc<Self>, deadline: Duration) -> Result<Vec<Presence>, ClusterError> {
        let id = self.next_id();
        let message = Control::Roll { from: self.node.clone(), id }.encode();
        let Gathered { counts, .. } = self.gather(id, message, deadline, false).await?;
        Ok(counts
            .into_iter()
            .flat_map(|(node, connections)| connections.into_iter().map(move |c| Presence::new(c, node.clone())))
            .collect())
    }
}

/// What a gathering got.
#[derive(Debug, Default)]
struct Gathered {
    counts: HashMap<NodeId, Vec<Uuid>>,
    answers: HashMap<Uuid, (NodeId, Outcome)>,
    /// Connections counted, and answered.
    named: usize,
    answered: usize,
}
