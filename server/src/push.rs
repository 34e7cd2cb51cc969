//! Server push: notifications encoded once and shared by every recipient,
//! and `call_many`, which calls many connections at once and gathers each
//! one's result or error by a deadline.
//!
//! A push never waits: a recipient whose outbound queue is full is cut off
//! as a slow consumer (close 1008) and the others are served as usual.

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

/// Queues `frame` for every connection `target` designates; returns how
/// many took it. The bytes are shared, not copied.
pub(crate) fn push(hub: &Hub, target: &Target, frame: &Utf8Bytes) -> usize {
    let mut delivered = 0;
    hub.registry().for_each(target, |peer| {
        if peer.try_send_text(frame.clone()).is_ok() {
            delivered += 1;
        }
    });
    delivered
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
    Ok(futures_util::future::join_all(calls).await)
}
