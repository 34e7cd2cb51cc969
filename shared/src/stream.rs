//! The wire of topic streams: positions, positioned subscriptions, the
//! `rpc.publication` notification and `rpc.history`. Both ends use these
//! types, so the server and every client read the same JSON.
//!
//! Terms:
//! - a topic's **stream** numbers its publications with consecutive
//!   **offsets** from 1, within an **epoch** (an opaque string); a new epoch
//!   starts whenever the topic's history starts afresh (a restart of an
//!   in-memory history, a topic idle past its TTL, a wiped Redis);
//! - a [`StreamPosition`] (epoch + offset) names the last publication a
//!   subscriber has; offset 0 is "before the first";
//! - **recovery**: a subscription that gives `since` receives every
//!   publication after it, replayed before live ones, when all of them are
//!   still in history and the epoch is the same (`recovered: true`);
//!   otherwise it receives none of them (`recovered: false`, never a
//!   partial replay) and must reload its state.
//!
//! ```
//! use switchboard_shared::stream::{Publication, StreamPosition};
//!
//! let text = r#"{"topic":"prices","epoch":"e1","offset":42,"method":"tick","params":{"p":1}}"#;
//! let publication: Publication = serde_json::from_str(text).unwrap();
//! assert_eq!(publication.position(), StreamPosition::new("e1", 42));
//! assert_eq!(publication.params.get(), r#"{"p":1}"#);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The notification method that carries a positioned publication.
pub const PUBLICATION_METHOD: &str = "rpc.publication";

/// The built-in method that reads a topic's history.
pub const HISTORY_METHOD: &str = "rpc.history";

/// A place in a topic's stream: the last publication seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StreamPosition {
    /// The stream's epoch, an opaque string.
    pub epoch: String,
    /// The offset of the last publication seen (0: none yet).
    pub offset: u64,
}

impl StreamPosition {
    /// A position from its parts.
    pub fn new(epoch: impl Into<String>, offset: u64) -> Self {
        StreamPosition { epoch: epoch.into(), offset }
    }
}

impl std::fmt::Display for StreamPosition {
    /// `EPOCH:OFFSET`, the form `switchboard listen --since` reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.epoch, self.offset)
    }
}

impl std::str::FromStr for StreamPosition {
    type Err = String;

    /// Reads `EPOCH:OFFSET` (the epoch may itself hold colons; the offset is after the last).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (epoch, offset) = text.rsplit_once(':').ok_or_else(|| format!("{text:?} is not EPOCH:OFFSET"))?;
        let offset = offset.parse().map_err(|_| format!("{offset:?} is not an offset (a whole number)"))?;
        if epoch.is_empty() {
            return Err(format!("{text:?} has an empty epoch"));
        }
        Ok(StreamPosition::new(epoch, offset))
    }
}

/// The named params of `rpc.subscribe`: `{"topic": "t"}` plus, for a
/// positioned subscription, `"positioned": true` or `"since": {...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeParams {
    /// The topic's name.
    pub topic: String,
    /// Resume after this position (implies `positioned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<StreamPosition>,
    /// Receive publications as positioned `rpc.publication` notifications.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub positioned: bool,
}

impl SubscribeParams {
    /// Whether this asks for positioned publications.
    pub fn is_positioned(&self) -> bool {
        self.positioned || self.since.is_some()
    }
}

/// The result of a positioned `rpc.subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    /// The topic's name.
    pub topic: String,
    /// The epoch the topic's next publications carry.
    pub epoch: String,
    /// The topic's latest offset when the subscription took effect (0 before the first publication).
    pub offset: u64,
    /// With `since`: whether every publication after it is being replayed
    /// (true also when none was missed). Without `since`: false.
    pub recovered: bool,
}

impl Subscribed {
    /// The position the subscription started at.
    pub fn position(&self) -> StreamPosition {
        StreamPosition::new(self.epoch.clone(), self.offset)
    }
}

/// One positioned publication: the params of `rpc.publication`, and an
/// entry of `rpc.history`'s result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publication {
    /// The topic's name.
    pub topic: String,
    /// The stream's epoch.
    pub epoch: String,
    /// Its offset in the stream.
    pub offset: u64,
    /// The method it was published as.
    pub method: String,
    /// Its params, as published.
    pub params: Box<RawValue>,
}

impl Publication {
    /// Where this publication is in its stream.
    pub fn position(&self) -> StreamPosition {
        StreamPosition::new(self.epoch.clone(), self.offset)
    }
}

impl PartialEq for Publication {
    fn eq(&self, other: &Self) -> bool {
        (&self.topic, &self.epoch, self.offset, &self.method, self.params.get())
            == (&other.topic, &other.epoch, other.offset, &other.method, other.params.get())
    }
}

/// The params of `rpc.history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryParams {
    /// The topic's name.
    pub topic: String,
    /// Only publications after this position (all retained ones without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<StreamPosition>,
    /// At most this many (the oldest first), within the server's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// The result of `rpc.history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The stream's current epoch.
    pub epoch: String,
    /// The topic's latest offset.
    pub offset: u64,
    /// The publications asked for, oldest first.
    pub publications: Vec<Publication>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_and_writes_as_epoch_colon_offset() {
        let position: StreamPosition = "a:b:41".parse().unwrap();
        assert_eq!(position, StreamPosition::new("a:b", 41));
        assert_eq!(position.to_string(), "a:b:41");
        assert!("41".parse::<StreamPosition>().is_err());
        assert!(":41".parse::<StreamPosition>().is_err());
        assert!("e:x".parse::<StreamPosition>().is_err());
    }

    #[test]
    fn subscribe_params_read_the_three_forms() {
        let plain: SubscribeParams = serde_json::from_str(r#"{"topic":"t"}"#).unwrap();
        assert!(!plain.is_positioned());
        let positioned: SubscribeParams = serde_json::from_str(r#"{"topic":"t","positioned":true}"#).unwrap();
        assert!(positioned.is_positioned());
        let resume: SubscribeParams =
            serde_json::from_str(r#"{"topic":"t","since":{"epoch":"E","offset":41}}"#).unwrap();
        assert_eq!(resume.since, Some(StreamPosition::new("E", 41)));
        assert!(resume.is_positioned());
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"topic":"t"}"#);
    }
}
