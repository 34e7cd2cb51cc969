//! The settings of topic streams: how much history the in-memory broker
//! keeps per topic and in all, how much a subscriber may be replayed or
//! read back at once (the table is on [`ServerBuilder`](crate::ServerBuilder)),
//! and each topic's slow-consumer policy.

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

/// What happens to a subscriber of a topic whose outbound queue is full
/// when a publication of the topic is queued for it (set per topic with
/// [`ServerBuilder::topic_policy`](crate::ServerBuilder::topic_policy)).
///
/// With `DropOldest` and `LatestPerKey` a subscriber may miss publications:
/// a positioned one sees a gap in the offsets (it can read what it missed
/// with `rpc.history`, while it is retained), a plain one just misses them.
/// For those topics the bound applies to what is still queued, not to what
/// the connection's writer has already taken for the socket, so such a
/// connection may hold about twice `max_queue_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Close the connection with 1008 "slow consumer", as for any frame. The default.
    #[default]
    Disconnect,
    /// Drop the oldest queued publication of the topic to make room (as many
    /// as it takes; when none is queued, the new one is dropped). The
    /// subscriber keeps its connection and gets the newest publications.
    DropOldest,
    /// Conflate: of the topic's queued publications, only the newest per key
    /// stays. The subscriber always gets the latest publication of every key
    /// (prices per symbol, state per entity); when the keys alone fill the
    /// queue, it is closed with 1008 as with `Disconnect`.
    LatestPerKey(ConflationKey),
}

/// What identifies the publications [`SlowConsumer::LatestPerKey`]
/// conflates: two with the same key, the newer replaces the older.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflationKey {
    /// The publication's method.
    Method,
    /// The value at this JSON pointer (RFC 6901) in the params: `/symbol`
    /// for `{"symbol": ..}`, `/0` for the first of positional params.
    /// Publications without it share one key.
    Param(String),
}

impl ConflationKey {
    /// The key of the params field `name` (a pointer to `/name`).
    pub fn field(name: &str) -> Self {
        ConflationKey::Param(format!("/{}", name.replace('~', "~0").replace('/', "~1")))
    }
}

/// The slow-consumer policy of each topic: by name, or by a prefix (a
/// pattern ending in `*`); the exact name wins, then the longest prefix.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicPolicies {
    exact: std::collections::HashMap<String, SlowConsumer>,
    /// Sorted longest first.
    prefixes: Vec<(String, SlowConsumer)>,
}

impl TopicPolicies {
    pub(crate) fn set(&mut self, pattern: &str, policy: SlowConsumer) {
        match pattern.strip_suffix('*') {
            Some(prefix) => {
                self.prefixes.retain(|(p, _)| p != prefix);
                self.prefixes.push((prefix.to_owned(), policy));
                self.prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
            }
            None => {
                self.exact.insert(pattern.to_owned(), policy);
            }
        }
    }

    /// The policy of `topic`.
    pub(crate) fn of(&self, topic: &str) -> SlowConsumer {
        if let Some(policy) = self.exact.get(topic) {
            return policy.clone();
        }
        self.prefixes
            .iter()
            .find(|(p, _)| topic.starts_with(p.as_str()))
            .map(|(_, policy)| policy.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_name_wins_then_the_longest_prefix() {
        let mut policies = TopicPolicies::default();
        policies.set("prices.*", SlowConsumer::DropOldest);
        policies.set("prices.fx.*", SlowConsumer::LatestPerKey(ConflationKey::Method));
        policies.set("prices.fx.eur", SlowConsumer::Disconnect);
        assert_eq!(policies.of("prices.acme"), SlowConsumer::DropOldest);
        assert_eq!(policies.of("prices.fx.usd"), SlowConsumer::LatestPerKey(ConflationKey::Method));
        assert_eq!(policies.of("prices.fx.eur"), SlowConsumer::Disconnect);
        assert_eq!(policies.of("news"), SlowConsumer::Disconnect);
        assert_eq!(ConflationKey::field("a/b"), ConflationKey::Param("/a~1b".into()));
    }
}
