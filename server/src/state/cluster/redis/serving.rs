//! The called side: what this node does with the control messages other
//! nodes send it, for its own connections. Calls run on their own tasks,
//! tracked so that the caller can probe or cancel them; every answer goes
//! back through the writer, so a call's reply always precedes a later
//! probe's answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use switchboard_shared::tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::state::cluster::NodeId;
use crate::state::cluster::redis::Inner;
use crate::state::cluster::redis::waiting::Event;
use crate::state::cluster::redis::wire::{Control, Outcome, WireTarget};
use crate::state::registry::Target;

/// Answers one `answers` message carries at most.
const ANSWERS_PER_MESSAGE: usize = 256;

/// The calls this node runs for other nodes, by caller and id.
#[derive(Debug, Default)]
pub(super) struct Serving {
    calls: Mutex<HashMap<(NodeId, u64), AbortHandle>>,
}

impl Inner {
    /// Handles one control message.
    pub(super) fn receive(self: &Arc<Self>, payload: &[u8]) {
        let message = match Control::decode(payload) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(target: "switchboard::cluster", error = %e, "undecodable control message dropped");
                return;
            }
        };
        match message {
            Control::Call { from, id, connection, method, params, timeout_ms } => {
                self.serve_call(from, id, connection, method, params, timeout_ms.map(Duration::from_millis));
            }
            Control::Cancel { from, id } => {
                if let Some(call) = self.serving.calls.lock().remove(&(from, id)) {
                    call.abort();
                }
            }
            Control::Probe { from, id } => {
                let running = self.serving.calls.lock().contains_key(&(from.clone(), id));
                self.send(&from, &Control::Probed { id, running });
            }
            Control::Notify { connection, frame } => {
                if let Some(peer) = self.local.get().and_then(|local| local.peer(connection)) {
                    // A full queue closes the connection, as for any push.
                    let _ = peer.try_send_text(Utf8Bytes::from(frame.get().to_owned()));
                }
            }
            Control::Push { from, target, frame } => {
                if from != self.node
                    && let Some(local) = self.local.get()
                {
                    local.push(&Target::from(target), &Utf8Bytes::from(frame.get().to_owned()));
                }
            }
            Control::Many { from, id, target, method, params, deadline_ms } => {
                if from != self.node {
                    self.serve_many(from, id, target, method, params, Duration::from_millis(deadline_ms));
                }
            }
            Control::Roll { from, id } => {
                if from != self.node {
                    let connections = self.local.get().map(|local| local.connections()).unwrap_or_default();
                    self.send(&from, &Control::Count { id, node: self.node.clone(), connections });
                }
            }
            Control::Reply { id, outcome } => self.waiting.deliver(id, Event::Reply(outcome)),
            Control::Probed { id, running } => self.waiting.deliver(id, Event::Probed(running)),
            Control::Count { id, node, connections } => self.waiting.deliver(id, Event::Count(node, connections)),
            Control::Answers { id, node, answers } => self.waiting.deliver(id, Event::Answers(node, answers)),
        }
    }

    /// Runs a call for node `from` on one of this node's connections.
    fn serve_call(
        self: &Arc<Self>,
        from: NodeId,
        id: u64,
        connection: Uuid,
        method: String,
        params: Box<RawValue>,
        timeout: Option<Duration>,
    ) {
        let Some(peer) = self.local.get().and_then(|local| local.peer(connection)) else {
            self.send(&from, &Control::Reply { id, outcome: Outcome::Unknown(()) });
            return;
        };
        let inner = Arc::clone(self);
        let key = (from.clone(), id);
        // Held while spawning, so the task cannot finish (and forget
        // itself) before it is recorded.
        let mut calls = self.serving.calls.lock();
        let task = tokio::spawn(async move {
            let outcome = peer.call_raw(&method, &params, timeout).await;
            // Answer first, then forget: a probe after this says "not running".
            inner.send(&from, &Control::Reply { id, outcome: Outcome::from(outcome) });
            inner.serving.calls.lock().remove(&(from, id));
        });
        calls.insert(key, task.abort_handle());
    }

    /// Runs a `call_many` for node `from` on this node's connections:
    /// first the count, then the answers as they come.
    fn serve_many(
        self: &Arc<Self>,
        from: NodeId,
        id: u64,
        target: WireTarget,
        method: String,
        params: Box<RawValue>,
        deadline: Duration,
    ) {
        let peers = self.local.get().map(|local| local.peers(&Target::from(target))).unwrap_or_default();
        let connections = peers.iter().map(|peer| peer.id()).collect();
        self.send(&from, &Control::Count { id, node: self.node.clone(), connections });
        if peers.is_empty() {
            return;
        }
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let (method, params) = (&method, &params);
            let calls: FuturesUnordered<_> = peers
                .into_iter()
                .map(|peer| async move { (peer.id(), peer.call_raw(method, params, Some(deadline)).await) })
                .collect();
            let mut ready = calls.ready_chunks(ANSWERS_PER_MESSAGE);
            while let Some(chunk) = ready.next().await {
                let answers =
                    chunk.into_iter().map(|(connection, outcome)| (connection, Outcome::from(outcome))).collect();
                inner.send(&from, &Control::Answers { id, node: inner.node.clone(), answers });
            }
        });
    }
}
