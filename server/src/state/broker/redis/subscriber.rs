//! The subscription task: the hub's own pub/sub connection to Redis, the
//! topics it watches, and delivery of their publications, in order and
//! once, to the attached servers.
//!
//! Terms:
//! - a topic is **watched** while some attached server has local
//!   subscribers of it (a reference count: `watch` adds one, `unwatch`
//!   takes one away); the task is subscribed to the channels of exactly the
//!   watched topics, one `SUBSCRIBE` / `UNSUBSCRIBE` for all the changes
//!   queued at once;
//! - a topic's **last** position is the last publication delivered, or,
//!   right after its channel was subscribed, where its stream stood then:
//!   what a gap or a reconnect is measured from.
//!
//! Rules, per message of a watched topic:
//! - an offset at or below the last one, in its epoch: a duplicate, dropped;
//! - an offset past the next one, in its epoch (a gap): the missing ones
//!   are read from the stream and delivered first (what the stream no
//!   longer has is left out: positioned clients see the gap);
//! - another epoch (the stream started afresh): the ones before it in that
//!   epoch were missed, and are read from the stream first as for a gap.
//!
//! After `SUBSCRIBE` is confirmed, messages received before the
//! confirmation (already queued: the connection queues messages in the
//! order it reads them) belong to an earlier subscription and are dropped,
//! then each topic's stream is read: a topic seen before gets what was
//! published since its last position (a reconnect's catch-up), a new one
//! its current position. Only then are the `watching` waiters answered.
//! While the connection is down (after a failed attempt, until the next),
//! `watching` fails at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::Msg;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};

use switchboard_shared::stream::StreamPosition;

use crate::state::broker::redis::read::{Mode, Read, read};
use crate::state::broker::redis::{Shared, codec, unavailable};
use crate::state::broker::{BrokerError, BrokerFuture, Fanout};
use crate::state::telemetry::BrokerOperation;

/// How often an idle subscription connection is checked with a PING (a
/// half-open connection is found within this plus the timeout).
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// The first wait after a failed connection attempt; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

type Waiter = oneshot::Sender<Result<(), BrokerError>>;

/// What the broker asks of the task.
#[derive(Debug)]
enum Command {
    Watch(Arc<str>),
    Unwatch(Arc<str>),
    /// Answer once the topic's channel is subscribed.
    Ready(Arc<str>, Waiter),
}

/// The broker's side of the task.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    commands: mpsc::UnboundedSender<Command>,
}

impl Subscriber {
    /// Starts the task; it ends once every `Subscriber` is dropped.
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = Task { shared, commands: receiver, watched: HashMap::new(), last_error: None };
        tokio::spawn(task.run());
        Subscriber { commands }
    }

    pub(crate) fn watch(&self, topic: &str) {
        let _ = self.commands.send(Command::Watch(topic.into()));
    }

    pub(crate) fn unwatch(&self, topic: &str) {
        let _ = self.commands.send(Command::Unwatch(topic.into()));
    }

    /// Resolves once `topic`'s channel is subscribed; fails when the task
    /// cannot say so within `bound`.
    pub(crate) fn watching(&self, topic: &str, bound: Duration) -> BrokerFuture<()> {
        let (waiter, answer) = oneshot::channel();
        if self.commands.send(Command::Ready(topic.into(), waiter)).is_err() {
            return Box::pin(std::future::ready(Err(unavailable("the broker has stopped"))));
        }
        Box::pin(async move {
            match tokio::time::timeout(bound, answer).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(unavailable("the broker has stopped")),
                Err(_) => Err(unavailable(format_args!("Redis did not confirm the subscription within {bound:?}"))),
            }
        })
    }
}

/// A watched topic.
#[derive(Debug, Default)]
struct Watched {
    /// Servers with local subscribers of it.
    refs: usize,
    /// Whether the current connection has confirmed its `SUBSCRIBE`.
    subscribed: bool,
    /// The last position delivered (or read when subscribed): epoch, offset.
    last: Option<(Arc<str>, u64)>,
    /// Waiting for `subscribed`.
    waiters: Vec<Waiter>,
}

impl Watched {
    fn answer(&mut self, outcome: impl Fn() -> Result<(), BrokerError>) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(outcome());
        }
    }
}

/// [`read`], once more after a failure: the first command on a command
/// connection that broke while idle (Redis restarted) fails, and makes it
/// reconnect for the second.
async fn read_again_once(
    shared: &Shared,
    topic: &Arc<str>,
    since: Option<&StreamPosition>,
    count: usize,
) -> Result<Read, BrokerError> {
    match read(shared, topic, Mode::Page, since, count).await {
        Ok(read) => Ok(read),
        Err(_) => read(shared, topic, Mode::Page, since, count).await,
    }
}

/// Why serving a connection ended.
enum Ended {
    /// Subscribing (or catching up) on the new connection failed: as a failed attempt.
    Failed(BrokerError),
    /// The connection failed after serving; connect again at once.
    Lost(BrokerError),
    /// Every `Subscriber` is gone.
    BrokerGone,
}

struct Task {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    watched: HashMap<Arc<str>, Watched>,
    /// Why the last connection attempt failed (for `watching` meanwhile).
    last_error: Option<String>,
}

impl Task {
    async fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let connection =
                self.shared.bounded("opening the subscription connection", self.shared.client.get_async_pubsub()).await;
            let failed = match connection {
                Ok(connection) => {
                    let (sink, stream) = connection.split();
                    let ended = self.serve(sink, stream).await;
                    for watched in self.watched.values_mut() {
                        watched.subscribed = false;
                    }
                    match ended {
                        Ended::BrokerGone => return,
                        Ended::Lost(e) => {
                            self.shared.fanouts.read().iter().for_each(Fanout::observe_reconnect);
                            tracing::warn!(target: "switchboard::server", error = %e, "Redis subscription connection lost; reconnecting");
                            backoff = MIN_BACKOFF;
                            // At once: a killed connection usually comes back at the first try.
                            continue;
                        }
                        Ended::Failed(e) => e,
                    }
                }
                Err(e) => e,
            };
            self.shared.fanouts.read().iter().for_each(|f| f.observe_error(BrokerOperation::Deliver));
            if self.last_error.is_none() {
                tracing::warn!(target: "switchboard::server", error = %failed, "Redis unreachable for subscriptions; retrying with backoff");
            }
            let why = failed.to_string();
            for watched in self.watched.values_mut() {
                let why = why.clone();
                watched.answer(move || Err(BrokerError::Unavailable(why.clone())));
            }
            self.last_error = Some(why);
            if !self.wait(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Waits `delay` before the next connection attempt, answering
    /// commands meanwhile; `false` when every `Subscriber` is gone.
    ///
    /// A subscribe waiting for the connection brings the next attempt
    /// forward to `MIN_BACKOFF` after the last one: a subscribe just after
    /// Redis came back must not fail with the outage's error, and attempts
    /// stay at most one per `MIN_BACKOFF` however many subscribes arrive.
    async fn wait(&mut self, delay: Duration) -> bool {
        let failed_at = tokio::time::Instant::now();
        let until = tokio::time::sleep(if self.awaited() { delay.min(MIN_BACKOFF) } else { delay });
        tokio::pin!(until);
        loop {
            tokio::select! {
                () = &mut until => return true,
                command = self.commands.recv() => match command {
                    None => return false,
                    Some(command) => {
                        self.apply(command);
                        let soon = failed_at + MIN_BACKOFF;
                        if self.awaited() && until.deadline() > soon {
                            until.as_mut().reset(soon);
                        }
                    }
                },
            }
        }
    }

    /// Takes a command in (no Redis traffic: [`reconcile`](Self::reconcile) does it).
    fn apply(&mut self, command: Command) {
        match command {
            Command::Watch(topic) => self.watched.entry(topic).or_default().refs += 1,
            Command::Unwatch(topic) => {
                if let Some(watched) = self.watched.get_mut(&topic) {
                    watched.refs = watched.refs.saturating_sub(1);
                    if watched.refs == 0
                        && !watched.subscribed
                        && let Some(mut gone) = self.watched.remove(&topic)
                    {
                        gone.answer(|| Ok(()));
                    }
                }
            }
            Command::Ready(topic, waiter) => match self.watched.get_mut(&topic) {
                // Not watched (any more): nothing to wait for.
                None => {
                    let _ = waiter.send(Ok(()));
                }
                Some(watched) if watched.subscribed || watched.refs == 0 => {
                    let _ = waiter.send(Ok(()));
                }
                // Answered once subscribed, or with the error of the next
                // failed attempt (between attempts, `wait` brings the next
                // one forward: Redis may well be back).
                Some(watched) => watched.waiters.push(waiter),
            },
        }
    }

    /// Whether a subscriber waits for a connection to be made.
    fn awaited(&self) -> bool {
        self.watched.values().any(|watched| !watched.waiters.is_empty())
    }

    /// Delivers the watched topics' publications from a fresh connection
    /// until it fails or the broker is gone.
    async fn serve(&mut self, mut sink: PubSubSink, mut stream: PubSubStream) -> Ended {
        if let Err(e) = self.reconcile(&mut sink, &mut stream).await {
            return Ended::Failed(e);
        }
        if self.last_error.take().is_some() {
            tracing::info!(target: "switchboard::server", url = %self.shared.url, "Redis subscriptions are back");
        }
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = self.commands.recv() => {
                    let Some(command) = command else { return Ended::BrokerGone };
                    self.apply(command);
                    // Everything queued, then one round trip for all of it.
                    while let Ok(command) = self.commands.try_recv() {
                        self.apply(command);
                    }
                    if let Err(e) = self.reconcile(&mut sink, &mut stream).await {
                        return Ended::Lost(e);
                    }
                }
                message = stream.next() => match message {
                    Some(message) => self.receive(&message).await,
                    None => return Ended::Lost(unavailable("the connection closed")),
                },
                _ = ping.tick() => {
                    if let Err(e) = self.shared.bounded("pinging", sink.ping::<redis::Value>()).await {
                        return Ended::Lost(e);
                    }
                }
            }
        }
    }

    /// Brings the connection's subscriptions in line with the watched
    /// topics: unsubscribes the unwatched, subscribes the new (then catches
    /// them up and answers their waiters).
    async fn reconcile(&mut self, sink: &mut PubSubSink, stream: &mut PubSubStream) -> Result<(), BrokerError> {
        let left: Vec<Arc<str>> =
            self.watched.iter().filter(|(_, w)| w.refs == 0 && w.subscribed).map(|(t, _)| Arc::clone(t)).collect();
        if !left.is_empty() {
            let channels: Vec<String> = left.iter().map(|t| self.shared.keys.channel(t)).collect();
            self.shared.bounded("unsubscribing", sink.unsubscribe(channels)).await?;
            for topic in &left {
                if let Some(mut gone) = self.watched.remove(topic) {
                    gone.answer(|| Ok(()));
                }
            }
        }
        let new: Vec<Arc<str>> =
            self.watched.iter().filter(|(_, w)| w.refs > 0 && !w.subscribed).map(|(t, _)| Arc::clone(t)).collect();
        if new.is_empty() {
            return Ok(());
        }
        let channels: Vec<String> = new.iter().map(|t| self.shared.keys.channel(t)).collect();
        if let Err(e) = self.shared.bounded("subscribing", sink.subscribe(channels)).await {
            for topic in &new {
                if let Some(watched) = self.watched.get_mut(topic) {
                    let why = e.to_string();
                    watched.answer(move || Err(BrokerError::Unavailable(why.clone())));
                }
            }
            return Err(e);
        }
        // Received before the confirmation: from an earlier subscription of
        // these topics (left and joined again), so dropped; the others' as usual.
        let fresh: HashSet<&str> = new.iter().map(|t| &**t).collect();
        while let Some(Some(message)) = stream.next().now_or_never() {
            let topic = self.shared.keys.topic_of(message.get_channel_name());
            if !topic.is_some_and(|t| fresh.contains(t)) {
                self.receive(&message).await;
            }
        }
        for topic in &new {
            if let Some(watched) = self.watched.get_mut(topic) {
                watched.subscribed = true;
            }
        }
        if let Err(e) = self.catch_up(&new).await {
            // Not knowing what was missed, start over on a new connection.
            for topic in &new {
                if let Some(watched) = self.watched.get_mut(topic) {
                    let why = e.to_string();
                    watched.answer(move || Err(BrokerError::Unavailable(why.clone())));
                }
            }
            return Err(e);
        }
        for topic in &new {
            if let Some(watched) = self.watched.get_mut(topic) {
                watched.answer(|| Ok(()));
            }
        }
        Ok(())
    }

    /// Reads the streams of topics just subscribed: for those with a last
    /// position, delivers what was published after it; for the others, takes
    /// where the stream stands as their last position.
    async fn catch_up(&mut self, topics: &[Arc<str>]) -> Result<(), BrokerError> {
        let limit = self.shared.catch_up_limit();
        let reads = topics.iter().map(|topic| {
            let since = self.watched.get(topic).and_then(|w| w.last.clone());
            let shared = &self.shared;
            async move {
                let since = since.map(|(epoch, offset)| StreamPosition::new(&*epoch, offset));
                let count = if since.is_some() { limit } else { 0 };
                (since.is_some(), read_again_once(shared, topic, since.as_ref(), count).await)
            }
        });
        // Concurrent reads, pipelined on the command connection.
        let reads = futures_util::future::join_all(reads).await;
        let mut failed = None;
        for (topic, (seen, outcome)) in topics.iter().zip(reads) {
            let read = match outcome {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!(target: "switchboard::server", topic = %topic, error = %e, "could not read the stream after subscribing");
                    failed = Some(e);
                    continue;
                }
            };
            let Some(watched) = self.watched.get_mut(topic) else { continue };
            let mut delivered = 0;
            let entries = read.entries.unwrap_or_default();
            let full_page = entries.len() >= limit;
            for entry in entries {
                let after_last = match &watched.last {
                    Some((epoch, offset)) => **epoch != *entry.epoch() || entry.offset() > *offset,
                    None => false,
                };
                if after_last {
                    self.shared.deliver(&entry);
                    watched.last = Some((Arc::clone(&read.epoch), entry.offset()));
                    delivered += 1;
                }
            }
            // A short page reached the top: that is where the stream stands
            // (what it no longer has is left for the clients to see).
            if !full_page || watched.last.is_none() {
                watched.last = Some((Arc::clone(&read.epoch), read.position.offset));
            }
            if seen && delivered > 0 {
                tracing::info!(target: "switchboard::server", topic = %topic, delivered, "caught up from the stream after resubscribing");
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Delivers one message of the channel, filling a gap before it.
    async fn receive(&mut self, message: &Msg) {
        let Some(name) = self.shared.keys.topic_of(message.get_channel_name()) else { return };
        let Some((topic, watched)) = self.watched.get_key_value(name) else { return };
        if !watched.subscribed {
            return;
        }
        let topic = Arc::clone(topic);
        let (epoch, offset, body) = match codec::message(message.get_payload_bytes()) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(target: "switchboard::server", topic = %topic, error = %e, "dropped a message");
                return;
            }
        };
        let (epoch, after) = match &watched.last {
            Some((last_epoch, last)) if **last_epoch == *epoch => {
                if offset <= *last {
                    return;
                }
                (Arc::clone(last_epoch), *last)
            }
            // A new epoch: whatever came before this in it was missed.
            Some(_) => (Arc::from(epoch), 0),
            // No position to measure from (the stream could not be read when subscribed).
            None => (Arc::from(epoch), offset.saturating_sub(1)),
        };
        if offset > after + 1 {
            self.fill(&topic, &epoch, after, offset).await;
        }
        match codec::entry(&topic, &epoch, offset, body) {
            Ok(entry) => self.shared.deliver(&entry),
            Err(e) => {
                tracing::warn!(target: "switchboard::server", topic = %topic, offset, error = %e, "dropped a message")
            }
        }
        if let Some(watched) = self.watched.get_mut(&topic) {
            watched.last = Some((epoch, offset));
        }
    }

    /// Delivers the publications of `topic` between `last` and `next`
    /// (exclusive) in `epoch`, read from its stream.
    async fn fill(&self, topic: &Arc<str>, epoch: &Arc<str>, last: u64, next: u64) {
        let since = StreamPosition::new(&**epoch, last);
        let count = usize::try_from(next - last - 1).unwrap_or(usize::MAX).min(self.shared.catch_up_limit());
        match read_again_once(&self.shared, topic, Some(&since), count).await {
            Ok(read) if *read.epoch == **epoch => {
                let missing: Vec<_> =
                    read.entries.unwrap_or_default().into_iter().filter(|e| e.offset() < next).collect();
                tracing::info!(target: "switchboard::server", topic = %topic, missed = next - last - 1, recovered = missing.len(), "filled a gap in the channel from the stream");
                for entry in &missing {
                    self.shared.deliver(entry);
                }
            }
            // The stream started afresh meanwhile: this publication's epoch is gone.
            Ok(_) => {}
            // Delivered with the gap: positioned clients see it and read `rpc.history`.
            Err(e) => {
                tracing::warn!(target: "switchboard::server", topic = %topic, error = %e, "could not fill a gap in the channel")
            }
        }
    }
}
