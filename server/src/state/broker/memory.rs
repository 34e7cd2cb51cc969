//! [`MemoryBroker`]: the in-process broker, the default. Streams and their
//! history live in this process: a restart starts every topic afresh (new
//! epochs), so a client resuming across it is told `recovered: false`.
//!
//! A publication is appended and delivered to every attached fan-out under
//! its topic's lock, so deliveries are in offset order per topic whatever
//! the number of publishers; a snapshot taken under the same lock sees every
//! delivery before it, and none after.

use std::collections::HashMap;
use std::future::ready;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use serde_json::value::RawValue;
use switchboard_shared::stream::StreamPosition;

use crate::config::topics::HistoryLimits;
use crate::state::broker::history::{Replay, Stream};
use crate::state::broker::{Broker, BrokerError, BrokerFuture, Fanout, HistoryPage, Snapshot};

type Shared = Arc<Mutex<Stream>>;

/// The in-process broker: each topic's stream (epoch, offsets, history
/// within [`HistoryLimits`]) in this process's memory, delivered to the
/// servers attached to it. The default broker of every server, built from
/// the builder's history settings; build one yourself to share it between
/// servers in one process (each gets every publication).
///
/// ```
/// use switchboard_server::{HistoryLimits, MemoryBroker, Server};
/// use switchboard_shared::Methods;
///
/// let broker = MemoryBroker::new(HistoryLimits { max_entries: 10_000, ..HistoryLimits::default() });
/// let server = Server::builder().broker(broker).build(Methods::new());
/// # drop(server);
/// ```
#[derive(Debug)]
pub struct MemoryBroker {
    limits: HistoryLimits,
    streams: RwLock<HashMap<Arc<str>, Shared>>,
    fanouts: RwLock<Vec<Fanout>>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker::new(HistoryLimits::default())
    }
}

impl MemoryBroker {
    /// A broker keeping history within `limits`.
    pub fn new(limits: HistoryLimits) -> Self {
        MemoryBroker { limits, streams: RwLock::default(), fanouts: RwLock::default() }
    }

    /// The limits it keeps history within.
    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }

    /// How many topics have a stream.
    pub fn topics(&self) -> usize {
        self.streams.read().len()
    }

    /// `topic`'s stream, started if it has none.
    fn stream(&self, topic: &str) -> (Arc<str>, Shared) {
        if let Some((name, stream)) = self.streams.read().get_key_value(topic) {
            return (Arc::clone(name), Arc::clone(stream));
        }
        let mut streams = self.streams.write();
        if let Some((name, stream)) = streams.get_key_value(topic) {
            return (Arc::clone(name), Arc::clone(stream));
        }
        let now = Instant::now();
        if streams.len() >= self.limits.max_topics.max(1) {
            self.make_room(&mut streams, now);
        }
        let name: Arc<str> = Arc::from(topic);
        let stream = Arc::new(Mutex::new(Stream::new(now)));
        streams.insert(Arc::clone(&name), Arc::clone(&stream));
        (name, stream)
    }

    /// Forgets expired streams, then (still full) the one published to
    /// longest ago; never-published ones first, so that subscribing to (or
    /// reading) topics nobody publishes to cannot push real history out.
    fn make_room(&self, streams: &mut HashMap<Arc<str>, Shared>, now: Instant) {
        streams.retain(|_, stream| !stream.lock().expired(now, &self.limits));
        if streams.len() < self.limits.max_topics.max(1) {
            return;
        }
        let oldest = streams
            .iter()
            .min_by_key(|(_, stream)| {
                let stream = stream.lock();
                (stream.is_published(), stream.last_publish())
            })
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            tracing::debug!(target: "switchboard::server", topic = %name, "topic history forgotten: max_topics reached");
            streams.remove(&name);
        }
    }

    fn publish_now(&self, topic: &str, method: &str, params: &RawValue) -> Result<StreamPosition, BrokerError> {
        let (name, stream) = self.stream(topic);
        let mut stream = stream.lock();
        let entry = stream.append(&name, method, params, Instant::now(), &self.limits)?;
        // Under the topic's lock: deliveries are in offset order.
        for fanout in self.fanouts.read().iter() {
            fanout.deliver(&entry);
        }
        Ok(entry.position())
    }
}

impl Broker for MemoryBroker {
    fn attach(&self, fanout: Fanout) {
        let mut fanouts = self.fanouts.write();
        fanouts.retain(|f| !f.is_gone());
        fanouts.push(fanout);
    }

    fn publish(&self, topic: &str, method: &str, params: &RawValue) -> BrokerFuture<StreamPosition> {
        Box::pin(ready(self.publish_now(topic, method, params)))
    }

    fn snapshot(&self, topic: &str, since: Option<&StreamPosition>, max_replay: usize) -> BrokerFuture<Snapshot> {
        let (_, stream) = self.stream(topic);
        let mut stream = stream.lock();
        stream.refresh(Instant::now(), &self.limits);
        let replay = match since {
            Some(since) => stream.since(since, max_replay),
            None => Replay::Complete(Vec::new()),
        };
        Box::pin(ready(Ok(Snapshot::new(stream.position(), replay))))
    }

    fn history(&self, topic: &str, since: Option<&StreamPosition>, limit: usize) -> BrokerFuture<HistoryPage> {
        let (_, stream) = self.stream(topic);
        let mut stream = stream.lock();
        stream.refresh(Instant::now(), &self.limits);
        Box::pin(ready(Ok(HistoryPage::new(stream.position(), stream.history(since, limit)))))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn now<T>(future: BrokerFuture<T>) -> T {
        futures_util::FutureExt::now_or_never(future).expect("ready at once").expect("no error")
    }

    #[test]
    fn a_topic_never_published_to_has_the_epoch_its_first_publication_gets() {
        let broker = MemoryBroker::default();
        let before = now(broker.snapshot("t", None, 10)).position;
        assert_eq!(before.offset, 0);
        let first = now(broker.publish("t", "m", &raw("[1]")));
        assert_eq!(first, StreamPosition::new(before.epoch.clone(), 1));
        assert_eq!(now(broker.history("t", None, 10)).position, first);
    }

    #[test]
    fn past_max_topics_the_topic_published_to_longest_ago_is_forgotten() {
        let broker = MemoryBroker::new(HistoryLimits { max_topics: 2, ..HistoryLimits::default() });
        let a = now(broker.publish("a", "m", &raw("[1]")));
        now(broker.publish("b", "m", &raw("[1]")));
        now(broker.publish("c", "m", &raw("[1]")));
        assert_eq!(broker.topics(), 2);
        let again = now(broker.snapshot("a", Some(&a), 10));
        assert_ne!(again.position.epoch, a.epoch, "a's stream started afresh");
        assert!(matches!(again.replay, Replay::Lost));
    }

    #[test]
    fn topics_never_published_to_are_forgotten_before_any_history() {
        let broker = MemoryBroker::new(HistoryLimits { max_topics: 2, ..HistoryLimits::default() });
        let kept = now(broker.publish("kept", "m", &raw("[1]")));
        for probe in ["x", "y", "z"] {
            now(broker.history(probe, None, 10));
        }
        let again = now(broker.snapshot("kept", Some(&kept), 10));
        assert_eq!(again.position, kept, "the published topic kept its stream");
        assert!(matches!(again.replay, Replay::Complete(ref e) if e.is_empty()));
    }

    #[test]
    fn an_expired_topic_reports_the_epoch_of_its_next_publication() {
        let broker = MemoryBroker::new(HistoryLimits { ttl: Duration::ZERO, ..HistoryLimits::default() });
        let first = now(broker.publish("t", "m", &raw("[1]")));
        let snapshot = now(broker.snapshot("t", Some(&first), 10));
        assert_ne!(snapshot.position.epoch, first.epoch);
        assert!(matches!(snapshot.replay, Replay::Lost));
        let next = now(broker.publish("t", "m", &raw("[2]")));
        assert_eq!(next, StreamPosition::new(snapshot.position.epoch, 1));
    }
}
