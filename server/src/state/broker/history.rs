//! One topic's stream in memory: its epoch, its latest offset and the
//! publications it retains, each kept as the [`StreamEntry`] that every
//! positioned subscriber receives (encoded once, shared, replayed without
//! copying).
//!
//! Terms (see [`switchboard_shared::stream`] for epoch, offset, recovery):
//! - **retained**: the newest publications, within the limits on entries and
//!   bytes; older ones are **evicted**;
//! - a stream **expires** when nothing was published to it for the TTL: its
//!   history is dropped, and the next publication starts a new epoch.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use switchboard_shared::codec::EncodeError;
use switchboard_shared::stream::StreamPosition;

use crate::config::topics::HistoryLimits;
use crate::state::broker::entry::StreamEntry;

/// What a subscriber that gives `since` gets.
#[derive(Debug, Clone)]
pub enum Replay {
    /// Every publication after `since`, oldest first (maybe none).
    Complete(Vec<StreamEntry>),
    /// Some are gone, or the epoch changed: nothing is replayed.
    Lost,
}

/// One topic's stream.
#[derive(Debug)]
pub(crate) struct Stream {
    epoch: Arc<str>,
    offset: u64,
    retained: VecDeque<StreamEntry>,
    bytes: usize,
    last_publish: Instant,
}

impl Stream {
    /// A fresh stream with a new epoch and nothing published.
    pub(crate) fn new(now: Instant) -> Self {
        Stream { epoch: new_epoch(), offset: 0, retained: VecDeque::new(), bytes: 0, last_publish: now }
    }

    /// Where the stream stands: its epoch and latest offset.
    pub(crate) fn position(&self) -> StreamPosition {
        StreamPosition::new(&*self.epoch, self.offset)
    }

    /// Whether anything was ever published to it (in this epoch).
    pub(crate) fn is_published(&self) -> bool {
        self.offset > 0
    }

    /// When it was last published to (or started).
    pub(crate) fn last_publish(&self) -> Instant {
        self.last_publish
    }

    /// Whether the stream has expired (no publication for the TTL).
    pub(crate) fn expired(&self, now: Instant, limits: &HistoryLimits) -> bool {
        self.offset > 0 && now.saturating_duration_since(self.last_publish) >= limits.ttl
    }

    /// Starts afresh (a new epoch) if expired: the epoch then reported is
    /// the one the next publication carries.
    pub(crate) fn refresh(&mut self, now: Instant, limits: &HistoryLimits) {
        if self.expired(now, limits) {
            *self = Stream::new(now);
        }
    }

    /// Appends a publication; returns it, encoded, with its offset.
    pub(crate) fn append(
        &mut self,
        topic: &Arc<str>,
        method: &str,
        params: &RawValue,
        now: Instant,
        limits: &HistoryLimits,
    ) -> Result<StreamEntry, EncodeError> {
        self.refresh(now, limits);
        let offset = self.offset + 1;
        let entry = StreamEntry::encode(Arc::clone(topic), Arc::clone(&self.epoch), offset, method, params)?;
        self.offset = offset;
        self.last_publish = now;
        if limits.max_entries > 0 {
            self.bytes += entry.frame().len();
            self.retained.push_back(entry.clone());
            while self.retained.len() > limits.max_entries || (self.bytes > limits.max_bytes && self.retained.len() > 1)
            {
                let evicted = self.retained.pop_front().expect("not empty");
                self.bytes -= evicted.frame().len();
            }
        }
        Ok(entry)
    }

    /// The publications after `since`, all of them or none; at most `cap`.
    pub(crate) fn since(&self, since: &StreamPosition, cap: usize) -> Replay {
        if since.epoch != *self.epoch || since.offset > self.offset {
            return Replay::Lost;
        }
        let missed = self.offset - since.offset;
        if missed == 0 {
            return Replay::Complete(Vec::new());
        }
        if missed > cap as u64 {
            return Replay::Lost;
        }
        match self.retained.front() {
            Some(oldest) if oldest.offset() <= since.offset + 1 => {
                let skip = (since.offset + 1 - oldest.offset()) as usize;
                Replay::Complete(self.retained.iter().skip(skip).cloned().collect())
            }
            _ => Replay::Lost,
        }
    }

    /// Up to `limit` retained publications after `since` (all retained ones
    /// without it, or when `since` is of another epoch), oldest first.
    pub(crate) fn history(&self, since: Option<&StreamPosition>, limit: usize) -> Vec<StreamEntry> {
        let after = match since {
            Some(since) if since.epoch == *self.epoch => since.offset,
            _ => 0,
        };
        let skip = self.retained.front().map_or(0, |oldest| after.saturating_sub(oldest.offset() - 1)) as usize;
        self.retained.iter().skip(skip).take(limit).cloned().collect()
    }

    /// Bytes retained.
    #[cfg(test)]
    pub(crate) fn retained_bytes(&self) -> usize {
        self.bytes
    }
}

/// A new epoch: 12 random hex digits, unique enough per topic.
pub(crate) fn new_epoch() -> Arc<str> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    Arc::from(&id[..12])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: HistoryLimits =
        HistoryLimits { max_entries: 3, max_bytes: 1 << 20, ttl: Duration::from_secs(60), max_topics: 10 };

    fn t() -> Arc<str> {
        Arc::from("t")
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn filled(n: u64, now: Instant) -> Stream {
        let mut stream = Stream::new(now);
        for i in 1..=n {
            stream.append(&t(), "tick", &raw(&format!("[{i}]")), now, &LIMITS).unwrap();
        }
        stream
    }

    fn offsets(replay: Replay) -> Option<Vec<u64>> {
        match replay {
            Replay::Complete(retained) => Some(retained.iter().map(|r| r.offset()).collect()),
            Replay::Lost => None,
        }
    }

    #[test]
    fn a_publication_is_encoded_once_as_the_notification_and_as_its_history_entry() {
        let now = Instant::now();
        let mut stream = Stream::new(now);
        let first = stream.append(&t(), "tick", &raw(r#"{"p":1}"#), now, &LIMITS).unwrap();
        let epoch = stream.position().epoch;
        let expected = format!(r#"{{"topic":"t","epoch":"{epoch}","offset":1,"method":"tick","params":{{"p":1}}}}"#);
        assert_eq!(first.publication_json(), expected);
        assert_eq!(
            first.frame().as_str(),
            format!(r#"{{"jsonrpc":"2.0","method":"rpc.publication","params":{expected}}}"#)
        );
    }

    #[test]
    fn offsets_are_consecutive_from_one() {
        let stream = filled(5, Instant::now());
        assert_eq!(stream.position().offset, 5);
        let offsets = |page: Vec<StreamEntry>| page.iter().map(|r| r.offset()).collect::<Vec<_>>();
        assert_eq!(offsets(stream.history(None, 100)), vec![3, 4, 5], "the newest three are retained");
        let at = |offset| StreamPosition::new(stream.position().epoch, offset);
        assert_eq!(offsets(stream.history(Some(&at(3)), 100)), vec![4, 5]);
        assert_eq!(offsets(stream.history(Some(&at(1)), 1)), vec![3], "from the oldest retained, within the limit");
        assert_eq!(offsets(stream.history(Some(&at(5)), 100)), Vec::<u64>::new());
        assert_eq!(offsets(stream.history(Some(&StreamPosition::new("other", 4)), 100)), vec![3, 4, 5]);
    }

    #[test]
    fn a_replay_is_everything_after_since_or_nothing() {
        let stream = filled(5, Instant::now());
        let epoch = stream.position().epoch;
        let at = |offset| StreamPosition::new(epoch.clone(), offset);
        assert_eq!(offsets(stream.since(&at(5), 100)), Some(vec![]));
        assert_eq!(offsets(stream.since(&at(3), 100)), Some(vec![4, 5]));
        assert_eq!(offsets(stream.since(&at(2), 100)), Some(vec![3, 4, 5]));
        assert_eq!(offsets(stream.since(&at(1), 100)), None, "offset 2 was evicted");
        assert_eq!(offsets(stream.since(&at(6), 100)), None, "ahead of the stream");
        assert_eq!(offsets(stream.since(&at(2), 2)), None, "over the replay cap");
        assert_eq!(offsets(stream.since(&StreamPosition::new("other", 4), 100)), None, "another epoch");
    }

    #[test]
    fn an_idle_topic_expires_and_starts_a_new_epoch() {
        let then = Instant::now();
        let mut stream = filled(2, then);
        let old = stream.position();
        let later = then + LIMITS.ttl;
        assert!(stream.expired(later, &LIMITS));
        stream.append(&t(), "tick", &raw("[3]"), later, &LIMITS).unwrap();
        assert_ne!(stream.position().epoch, old.epoch);
        assert_eq!(stream.position().offset, 1);
        assert!(matches!(stream.since(&old, 100), Replay::Lost));
    }

    #[test]
    fn the_byte_bound_evicts_the_oldest_but_keeps_the_newest() {
        let limits = HistoryLimits { max_entries: 100, max_bytes: 300, ..LIMITS };
        let now = Instant::now();
        let mut stream = Stream::new(now);
        for i in 0..10 {
            stream.append(&t(), "tick", &raw(&format!(r#"["{}"]"#, "x".repeat(100 + i))), now, &limits).unwrap();
        }
        assert!(stream.retained_bytes() <= 300);
        assert_eq!(stream.history(None, 100).last().unwrap().offset(), 10);
    }
}
