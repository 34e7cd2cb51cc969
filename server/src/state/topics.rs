//! One topic's local fan-out: its subscribers on this server, and how each
//! receives the topic's publications.
//!
//! Terms:
//! - a **plain** subscriber receives `{"method": M, "params": P}`, as
//!   published; a **positioned** one receives the `rpc.publication`
//!   notification, with the topic, epoch and offset;
//! - a positioned subscription starts **buffering**: it is registered first,
//!   so nothing delivered after that is missed, and what is delivered while
//!   the broker takes its snapshot is kept aside; then, under the topic's
//!   lock, it **goes live**: the subscribe result is queued, then the
//!   replayed publications, then the buffered ones past the snapshot's
//!   offset, and every later delivery goes straight to its queue;
//! - every frame is encoded once per publication and shared by every
//!   recipient: the positioned frame by the broker, the plain one here, the
//!   first time a plain subscriber needs it.
//!
//! The topic's lock is held while a publication is queued for every
//! subscriber, so every subscriber of a topic sees its publications in the
//! same order. A topic with a slow-consumer policy other than `Disconnect`
//! queues its publications tagged ([`Sheddable`], one per publication, its
//! conflation key read once), so a full queue sheds them as the policy says.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use switchboard_shared::stream::StreamPosition;
use switchboard_shared::tokio_tungstenite::tungstenite::Utf8Bytes;
use switchboard_shared::{PeerHandle, Shed, Sheddable};
use uuid::Uuid;

use crate::config::topics::{ConflationKey, SlowConsumer};
use crate::state::broker::entry::StreamEntry;

/// What a buffering subscriber keeps until it goes live.
#[derive(Debug)]
struct Buffer {
    /// Which subscribe this buffer belongs to (a later one replaces it).
    ticket: u64,
    entries: Vec<StreamEntry>,
    bytes: usize,
    /// Past the byte bound: the connection was closed as a slow consumer.
    overflowed: bool,
}

#[derive(Debug)]
enum Mode {
    Plain,
    Positioned {
        /// Deliveries up to this position (the snapshot's) were replayed or
        /// predate the subscription: a broker may deliver them late.
        skip_through: Option<StreamPosition>,
    },
    Buffering(Buffer),
}

#[derive(Debug)]
struct Subscriber {
    peer: PeerHandle,
    mode: Mode,
}

/// Where a positioned subscription starts, as it goes live.
#[derive(Debug)]
pub(crate) struct Start {
    /// The subscribe result (none for a notification).
    pub(crate) result: Option<Utf8Bytes>,
    /// The snapshot's position.
    pub(crate) position: StreamPosition,
    /// The replayed publications, oldest first.
    pub(crate) replay: Vec<StreamEntry>,
}

/// One topic's subscribers on this server.
#[derive(Debug)]
pub(crate) struct Topic {
    name: Arc<str>,
    /// Its slow-consumer policy, resolved once.
    policy: SlowConsumer,
    subscribers: Mutex<HashMap<Uuid, Subscriber>>,
    /// Bytes a buffering subscriber may keep aside.
    max_buffer: usize,
}

/// Queues `frame` for `peer`, tagged when the topic sheds.
fn send(peer: &PeerHandle, frame: Utf8Bytes, tag: Option<&Arc<Sheddable>>) {
    // A refusal closed the connection (or it was closing): the queue logs it.
    let _ = match tag {
        None => peer.try_send_text(frame),
        Some(tag) => peer.try_send_publication(frame, tag),
    };
}

impl Topic {
    pub(crate) fn new(name: Arc<str>, policy: SlowConsumer, max_buffer: usize) -> Self {
        Topic { name, policy, subscribers: Mutex::default(), max_buffer }
    }

    /// The queue tag of `entry`, when the topic sheds.
    fn tag(&self, entry: &StreamEntry) -> Option<Arc<Sheddable>> {
        let shed = match &self.policy {
            SlowConsumer::Disconnect => return None,
            SlowConsumer::DropOldest => Shed::DropOldest,
            SlowConsumer::LatestPerKey(ConflationKey::Method) => Shed::LatestPerKey(Some(entry.method_json().into())),
            SlowConsumer::LatestPerKey(ConflationKey::Param(pointer)) => {
                let params: serde_json::Value = serde_json::from_str(entry.params_json()).unwrap_or_default();
                Shed::LatestPerKey(params.pointer(pointer).map(|key| key.to_string().into()))
            }
        };
        Some(Arc::new(Sheddable { topic: Arc::clone(&self.name), shed }))
    }

    /// Adds `peer` as a plain subscriber, unless it is one already (in
    /// either form); `false` when it was.
    pub(crate) fn add_plain(&self, peer: &PeerHandle) -> bool {
        let mut subscribers = self.subscribers.lock();
        if subscribers.contains_key(&peer.id()) {
            return false;
        }
        subscribers.insert(peer.id(), Subscriber { peer: peer.clone(), mode: Mode::Plain });
        true
    }

    /// Adds `peer` as a buffering positioned subscriber (replacing any
    /// earlier form of its subscription); `true` when it was not one yet.
    pub(crate) fn add_buffering(&self, peer: &PeerHandle, ticket: u64) -> bool {
        let buffer = Buffer { ticket, entries: Vec::new(), bytes: 0, overflowed: false };
        let subscriber = Subscriber { peer: peer.clone(), mode: Mode::Buffering(buffer) };
        self.subscribers.lock().insert(peer.id(), subscriber).is_none()
    }

    /// Removes a subscriber; `true` when no subscriber is left.
    pub(crate) fn remove(&self, id: Uuid) -> bool {
        let mut subscribers = self.subscribers.lock();
        subscribers.remove(&id);
        subscribers.is_empty()
    }

    /// Whether `id` subscribes to it (in either form).
    pub(crate) fn contains(&self, id: Uuid) -> bool {
        self.subscribers.lock().contains_key(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.subscribers.lock().len()
    }

    /// Calls `f` with every subscriber's peer, under the topic's lock.
    pub(crate) fn for_each_peer(&self, mut f: impl FnMut(&PeerHandle)) {
        self.subscribers.lock().values().for_each(|s| f(&s.peer));
    }

    /// Queues a publication for every subscriber.
    pub(crate) fn deliver(&self, entry: &StreamEntry) {
        let mut plain: Option<Utf8Bytes> = None;
        let tag = self.tag(entry);
        let max_buffer = self.max_buffer;
        for subscriber in self.subscribers.lock().values_mut() {
            match &mut subscriber.mode {
                Mode::Plain => {
                    let frame = plain.get_or_insert_with(|| entry.plain_frame());
                    send(&subscriber.peer, frame.clone(), tag.as_ref());
                }
                Mode::Positioned { skip_through } => {
                    if let Some(through) = skip_through {
                        if through.epoch == entry.epoch() && entry.offset() <= through.offset {
                            continue;
                        }
                        *skip_through = None;
                    }
                    send(&subscriber.peer, entry.frame().clone(), tag.as_ref());
                }
                Mode::Buffering(buffer) => {
                    if buffer.overflowed {
                        continue;
                    }
                    buffer.bytes += entry.frame().len();
                    if buffer.bytes > max_buffer && !buffer.entries.is_empty() {
                        // As if its outbound queue were full.
                        tracing::warn!(target: "switchboard::server", connection = %subscriber.peer.id(), "slow consumer: publications buffered past max_queue_bytes while subscribing");
                        buffer.overflowed = true;
                        buffer.entries = Vec::new();
                        subscriber.peer.close(1008, "slow consumer");
                        continue;
                    }
                    buffer.entries.push(entry.clone());
                }
            }
        }
    }

    /// Takes the buffering subscription `ticket` of `peer` live: queues the
    /// result, the replay, then what was buffered past the snapshot's
    /// position. When the subscription has ended or was replaced meanwhile,
    /// only the result is queued.
    pub(crate) fn go_live(&self, peer: &PeerHandle, ticket: u64, start: Start) {
        let mut subscribers = self.subscribers.lock();
        if let Some(result) = start.result {
            let _ = peer.try_send_text(result);
        }
        let Some(subscriber) = subscribers.get_mut(&peer.id()) else { return };
        let buffer = match &mut subscriber.mode {
            Mode::Buffering(buffer) if buffer.ticket == ticket => std::mem::take(&mut buffer.entries),
            _ => return,
        };
        let Start { position, replay, .. } = start;
        let after = |entry: &&StreamEntry| entry.epoch() != position.epoch || entry.offset() > position.offset;
        for entry in replay.iter().chain(buffer.iter().filter(after)) {
            send(peer, entry.frame().clone(), self.tag(entry).as_ref());
        }
        subscriber.mode = Mode::Positioned { skip_through: Some(position) };
    }

    /// Forgets a buffering subscription whose snapshot failed; `true` when
    /// no subscriber is left.
    pub(crate) fn abandon(&self, id: Uuid, ticket: u64) -> bool {
        let mut subscribers = self.subscribers.lock();
        if matches!(subscribers.get(&id), Some(Subscriber { mode: Mode::Buffering(b), .. }) if b.ticket == ticket) {
            subscribers.remove(&id);
        }
        subscribers.is_empty()
    }
}
