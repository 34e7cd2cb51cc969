//! The settings of topic streams: how much history the in-memory broker
//! keeps per topic and in all, and how much a subscriber may be replayed or
//! read back at once (the table is on [`ServerBuilder`](crate::ServerBuilder)).

use std::time::Duration;

use crate::config::settings::defaults;

/// How much history the in-memory broker
/// ([`MemoryBroker`](crate::MemoryBroker)) keeps.
///
/// A topic keeps its newest publications within both per-topic bounds; a
/// topic with no publication for `ttl` forgets its history, and its next
/// publication starts a new epoch. At most `max_topics` topics have a
/// stream at once: past that, the one published to longest ago is
/// forgotten (as if its TTL had passed).
///
/// ```
/// use std::time::Duration;
/// use switchboard_server::HistoryLimits;
///
/// let limits = HistoryLimits { max_entries: 100, ttl: Duration::from_secs(60), ..HistoryLimits::default() };
/// assert_eq!(limits.max_bytes, HistoryLimits::default().max_bytes);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Publications retained per topic (0: none; offsets and epochs are still kept).
    pub max_entries: usize,
    /// Bytes of encoded `rpc.publication` frames retained per topic (the
    /// newest publication is kept whatever its size).
    pub max_bytes: usize,
    /// A topic with no publication for this long forgets its history.
    pub ttl: Duration,
    /// Topics with a stream (an epoch, an offset, maybe history) at once.
    pub max_topics: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_entries: defaults::HISTORY_ENTRIES,
            max_bytes: defaults::HISTORY_BYTES,
            ttl: defaults::HISTORY_TTL,
            max_topics: defaults::HISTORY_TOPICS,
        }
    }
}
