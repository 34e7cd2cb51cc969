//! The names of everything the Redis broker keeps in Redis, all under one
//! prefix (default `switchboard`), so several deployments can share a Redis
//! and one can be wiped with `SCAN MATCH prefix:*`.
//!
//! | name | kind | holds | time to live |
//! |---|---|---|---|
//! | `PREFIX:meta:TOPIC` | hash | `e`: the topic's epoch, `o`: its latest offset | the history TTL, renewed by every publication |
//! | `PREFIX:stream:TOPIC` | stream | the newest publications (at most the history size), entry id `OFFSET-0`, field `d` | the history TTL, renewed by every publication |
//! | `PREFIX:pub:TOPIC` | pub/sub channel | every publication, as it is made | (a channel holds nothing) |
//!
//! Each name is the prefix, the kind and the topic's name as it is, so
//! every topic has its own names and the topic is read back from a
//! channel's name by cutting the channel prefix off.

use std::sync::Arc;

/// The names of a deployment's keys and channels.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    meta: Arc<str>,
    stream: Arc<str>,
    channel: Arc<str>,
}

impl Keys {
    /// The names under `prefix` (e.g. `switchboard`).
    pub(crate) fn new(prefix: &str) -> Self {
        Keys {
            meta: format!("{prefix}:meta:").into(),
            stream: format!("{prefix}:stream:").into(),
            channel: format!("{prefix}:pub:").into(),
        }
    }

    /// The hash holding `topic`'s epoch and latest offset.
    pub(crate) fn meta(&self, topic: &str) -> String {
        [&*self.meta, topic].concat()
    }

    /// The stream holding `topic`'s retained publications.
    pub(crate) fn stream(&self, topic: &str) -> String {
        [&*self.stream, topic].concat()
    }

    /// The channel `topic`'s publications are announced on.
    pub(crate) fn channel(&self, topic: &str) -> String {
        [&*self.channel, topic].concat()
    }

    /// The topic whose channel is `channel` (`None` for another channel).
    pub(crate) fn topic_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&*self.channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_the_prefix_the_kind_and_the_topic() {
        let keys = Keys::new("sb");
        assert_eq!(keys.meta("a:b"), "sb:meta:a:b");
        assert_eq!(keys.stream("a:b"), "sb:stream:a:b");
        assert_eq!(keys.channel("a:b"), "sb:pub:a:b");
        assert_eq!(keys.topic_of(&keys.channel("a:b")), Some("a:b"));
        assert_eq!(keys.topic_of("other:pub:a"), None);
    }
}
