//! The control messages nodes send each other: one JSON object per Redis
//! pub/sub message, externally tagged (`{"call": {...}}`), on a node's
//! control channel or on the broadcast channel. Params, results and
//! notification frames are embedded as raw JSON, never re-encoded.
//!
//! | message | channel | sent by | meaning |
//! |---|---|---|---|
//! | `call {from, id, connection, method, params, timeout_ms}` | the connection's node | the caller | call `method` on `connection`; reply to `from` with `id` |
//! | `reply {id, outcome}` | the caller's node | the callee's node | the call's outcome |
//! | `cancel {from, id}` | the callee's node | the caller | the caller gave up: drop the call (the client gets `$/cancelRequest`) |
//! | `probe {from, id}` | the callee's node | the caller, while waiting | is call `id` still running? |
//! | `probed {id, running}` | the caller's node | the callee's node | the answer |
//! | `notify {connection, frame}` | the connection's node | anyone | queue `frame` for `connection` |
//! | `push {from, target, frame}` | broadcast | anyone | queue `frame` for the targets each node serves |
//! | `many {from, id, target, method, params, deadline_ms}` | broadcast | the caller | call the targets each node serves |
//! | `roll {from, id}` | broadcast | the asker | list your connections |
//! | `count {id, node, connections}` | the caller's node | every node | the connections it calls (or serves, for `roll`); sent first |
//! | `answers {id, node, answers: [[connection, outcome]...]}` | the caller's node | every node | answers as they come |
//!
//! An `outcome` is `{"ok": result}`, `{"rpc": error object}`,
//! `{"timeout": ms}`, `{"disconnected": null}`, `{"unknown": null}` (no such
//! connection here), or `{"failed": "message"}`. A node ignores broadcast
//! messages `from` itself, and messages it cannot decode (logged).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_shared::{Error, ErrorObject};
use uuid::Uuid;

use crate::state::cluster::{CallOutcome, NodeId};
use crate::state::registry::Target;

/// One control message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Control {
    Call { from: NodeId, id: u64, connection: Uuid, method: String, params: Box<RawValue>, timeout_ms: Option<u64> },
    Reply { id: u64, outcome: Outcome },
    Cancel { from: NodeId, id: u64 },
    Probe { from: NodeId, id: u64 },
    Probed { id: u64, running: bool },
    Notify { connection: Uuid, frame: Box<RawValue> },
    Push { from: NodeId, target: WireTarget, frame: Box<RawValue> },
    Many { from: NodeId, id: u64, target: WireTarget, method: String, params: Box<RawValue>, deadline_ms: u64 },
    Roll { from: NodeId, id: u64 },
    Count { id: u64, node: NodeId, connections: Vec<Uuid> },
    Answers { id: u64, node: NodeId, answers: Vec<(Uuid, Outcome)> },
}

impl Control {
    /// The message as sent.
    pub(super) fn encode(&self) -> String {
        // Every field is a string, number, uuid or valid raw JSON.
        serde_json::to_string(self).expect("a control message always encodes")
    }

    pub(super) fn decode(payload: &[u8]) -> Result<Control, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

/// A `Target` on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum WireTarget {
    All,
    Topic(String),
    Connections(Vec<Uuid>),
}

impl From<&Target> for WireTarget {
    fn from(target: &Target) -> Self {
        match target {
            Target::All => WireTarget::All,
            Target::Topic(topic) => WireTarget::Topic(topic.clone()),
            Target::Connections(ids) => WireTarget::Connections(ids.clone()),
        }
    }
}

impl From<WireTarget> for Target {
    fn from(target: WireTarget) -> Self {
        match target {
            WireTarget::All => Target::All,
            WireTarget::Topic(topic) => Target::Topic(topic),
            WireTarget::Connections(ids) => Target::Connections(ids),
        }
    }
}

/// A call's outcome on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Outcome {
    Ok(Box<RawValue>),
    Rpc(ErrorObject),
    Timeout(u64),
    Disconnected(()),
    Unknown(()),
    Failed(String),
}

impl From<CallOutcome> for Outcome {
    fn from(outcome: CallOutcome) -> Self {
        match outcome {
            Ok(raw) => Outcome::Ok(raw),
            Err(Error::Rpc(object)) => Outcome::Rpc(object),
            Err(Error::Timeout(limit)) => Outcome::Timeout(millis(limit)),
            Err(Error::Disconnected | Error::Offline) => Outcome::Disconnected(()),
            Err(other) => Outcome::Failed(other.to_string()),
        }
    }
}

/// What an outcome means to the caller; `None` for `unknown` (the
/// connection is not on the node the directory named).
impl Outcome {
    pub(super) fn into_result(self) -> Option<CallOutcome> {
        Some(match self {
            Outcome::Ok(raw) => Ok(raw),
            Outcome::Rpc(object) => Err(Error::Rpc(object)),
            Outcome::Timeout(ms) => Err(Error::Timeout(Duration::from_millis(ms))),
            Outcome::Disconnected(()) => Err(Error::Disconnected),
            Outcome::Unknown(()) => return None,
            Outcome::Failed(why) => Err(Error::Transport(why)),
        })
    }
}

/// A duration in whole milliseconds (saturating).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_round_trips_with_its_params_untouched() {
        let params = RawValue::from_string(r#"{"a": [1, 2.50]}"#.into()).unwrap();
        let call = Control::Call {
            from: NodeId::from("n1"),
            id: 7,
            connection: Uuid::nil(),
            method: "m".into(),
            params,
            timeout_ms: Some(1500),
        };
        let text = call.encode();
        assert!(text.starts_with(r#"{"call":{"from":"n1","id":7,"#), "{text}");
        match Control::decode(text.as_bytes()).unwrap() {
            Control::Call { params, timeout_ms, .. } => {
                assert_eq!(params.get(), r#"{"a": [1, 2.50]}"#);
                assert_eq!(timeout_ms, Some(1500));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn outcomes_keep_what_the_caller_needs() {
        let cases: Vec<CallOutcome> = vec![
            Ok(RawValue::from_string("[1]".into()).unwrap()),
            Err(Error::Rpc(ErrorObject::new(7, "no"))),
            Err(Error::Timeout(Duration::from_millis(250))),
            Err(Error::Disconnected),
        ];
        for case in cases {
            let expected = format!("{case:?}");
            let text = serde_json::to_string(&Outcome::from(case)).unwrap();
            let back: Outcome = serde_json::from_str(&text).unwrap();
            assert_eq!(format!("{:?}", back.into_result().unwrap()), expected, "{text}");
        }
        let unknown: Outcome = serde_json::from_str(r#"{"unknown":null}"#).unwrap();
        assert!(unknown.into_result().is_none());
    }
}
