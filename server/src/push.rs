//! Server push: notifications encoded once and shared by every recipient,
//! and `call_many`, which calls many connections at once and gathers each
//! one's result or error by a deadline.
//!
//! A push never waits: a recipient whose outbound queue is full is cut off
//! as a slow consumer (close 1008) and the others are served as usual.
//!
//! With a cluster, this hub's connections are served first, as without
//! one; what the target designates beyond them goes to the other hubs
//! through the cluster (a push without waiting, a `call_many` gathered by
//! the same deadline).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_shared::codec::{EncodeError, encode};
use switchboard_shared::peer::decode_result;
use switchboard_shared::tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

use crate::error::DeliveryError;
use crate::state::hub::Hub;
use crate::state::registry::Target;

/// One connection's answer to a [`crate::ServerHandle::call_many`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Answer<R> {
    /// The connection that was called.
    pub connection: Uuid,
    /// Its result, its error object (`Error::Rpc`), or why there is neither
    /// (`Error::Timeout` at the deadline, `Error::Disconnected`...).
    pub result: Result<R, switchboard_shared::Error>,
}

/// Encodes a notification frame once, for any number of recipients.
pub(crate) fn encode_notification(method: &str, params: &impl Serialize) -> Result<Utf8Bytes, DeliveryError> {
    Ok(Utf8Bytes::from(encode::notification(method, params)?))
}

/// Queues `frame` for every connection `target` designates (on other
/// hubs too, with a cluster); returns how many of this hub's took it. The
/// bytes are shared, not copied.
pub(crate) fn push(hub: &Hub, target: &Target, frame: &Utf8Bytes) -> usize {
    let mut delivered = 0;
    hub.registry().for_each(target, |peer| {
        if peer.try_send_text(frame.clone()).is_ok() {
            delivered += 1;
        }
    });
    if let Some(cluster) = hub.cluster()
        && let Some(remote) = beyond(hub, target)
    {
        cluster.push(&remote, frame);
    }
    delivered
}

/// What `target` designates beyond this hub's connections, if anything
/// may be: the same target, or the ids this hub does not serve.
fn beyond(hub: &Hub, target: &Target) -> Option<Target> {
    match target {
        Target::Connections(ids) => {
            let remote: Vec<Uuid> = ids.iter().copied().filter(|id| hub.registry().peer(*id).is_none()).collect();
            (!remote.is_empty()).then_some(Target::Connections(remote))
        }
        other => Some(other.clone()),
    }
}

/// Calls `method` on every connection `target` designates, at once, and
/// returns every answer once all have one (at the latest at `deadline`).
pub(crate) async fn call_many<R: DeserializeOwned>(
    hub: &Hub,
    target: &Target,
    method: &str,
    params: impl Serialize,
    deadline: Duration,
) -> Result<Vec<Answer<R>>, DeliveryError> {
    // Serialize the params once; each request differs only by its id.
    let params = serde_json::value::to_raw_value(&params).map_err(EncodeError::Json)?;
    // Refuse params every call would refuse (a scalar), before calling anyone.
    encode::notification(method, &params)?;
    let peers = hub.registry().peers(target);
    let remote = match (hub.cluster(), beyond(hub, target)) {
        (Some(cluster), Some(remote)) => Some(cluster.call_many(&remote, method, params.clone(), deadline)),
        _ => None,
    };
    let calls = peers.into_iter().map(|peer| {
        let params = &params;
        async move {
            let result = match peer.call_raw(method, params, Some(deadline)).await {
                Ok(raw) => decode_result(&raw),
                Err(e) => Err(e),
            };
            Answer { connection: peer.id(), result }
        }
    });
    let Some(remote) = remote else { return Ok(futures_util::future::join_all(calls).await) };
    let (mut answers, remote) = futures_util::future::join(futures_util::future::join_all(calls), remote).await;
    match remote {
        Ok(remote) => answers.extend(remote.into_iter().map(|answer| Answer {
            connection: answer.connection,
            result: answer.result.and_then(|raw| decode_result(&raw)),
        })),
        // The other hubs' connections are absent, as for hubs that do not answer.
        Err(e) => {
            tracing::warn!(target: "switchboard::cluster", error = %e, "call_many reached only this hub's connections")
        }
    }
    Ok(answers)
}
