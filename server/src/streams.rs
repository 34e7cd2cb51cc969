//! Topic streams as clients and handlers see them: a positioned
//! `rpc.subscribe` (result, replay, then live publications, in that order on
//! the connection), `rpc.history`, and [`Published`], what
//! [`ServerHandle::publish`](crate::ServerHandle::publish) returns.
//!
//! A positioned subscribe answers its call itself: the engine would queue
//! the answer after the handler returns, and the replay must follow it. So
//! the handler queues the result frame, under the topic's lock, then the
//! replay, and gives the engine nothing to send. Inside a batch, that
//! answer is therefore sent on its own, ahead of the batch's array.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use serde_json::value::RawValue;
use switchboard_shared::codec::encode;
use switchboard_shared::stream::{HistoryParams, StreamPosition, SubscribeParams, Subscribed};
use switchboard_shared::tokio_tungstenite::tungstenite::Utf8Bytes;
use switchboard_shared::{Dispatch, ErrorObject, Id, PeerHandle};

use crate::error::DeliveryError;
use crate::state::broker::history::Replay;
use crate::state::broker::{BrokerError, BrokerFuture};
use crate::state::hub::Hub;
use crate::state::registry::Join;
use crate::state::topics::Start;

/// A publication handed to the broker. Awaiting it gives its position in
/// the topic's stream; dropping it does not undo anything: the publication
/// is made (or, with a broker such as Redis, queued to be made), in order,
/// when `publish` returns. With the default in-memory broker the position
/// is known at once; a broker that cannot reach its backend fails it with
/// [`DeliveryError::Broker`] in bounded time.
///
/// ```
/// # async fn demo(server: switchboard_server::ServerHandle) -> Result<(), switchboard_server::DeliveryError> {
/// server.publish("news", "headline", ["fire drill at noon"])?; // fire and forget
/// let position = server.publish("news", "headline", ["all clear"])?.await?;
/// println!("published at offset {} of epoch {}", position.offset, position.epoch);
/// # Ok(()) }
/// ```
pub struct Published {
    position: BrokerFuture<StreamPosition>,
}

impl Published {
    pub(crate) fn new(position: BrokerFuture<StreamPosition>) -> Self {
        Published { position }
    }
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published").finish_non_exhaustive()
    }
}

impl Future for Published {
    type Output = Result<StreamPosition, DeliveryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.position.as_mut().poll(cx).map(|outcome| outcome.map_err(DeliveryError::from))
    }
}

/// -32003 "Broker unavailable" when the broker cannot be reached.
fn broker_failed(e: BrokerError) -> ErrorObject {
    ErrorObject::from(e)
}

/// Starts a positioned subscription: registers it buffering, waits until the
/// broker brings the topic's publications here, asks it for its snapshot,
/// then takes it live (result, replay, buffered) and answers nothing
/// through the engine. `denied` turns a refused join into the error to
/// answer; a broker that cannot be reached answers -32003.
pub(crate) fn subscribe(
    hub: &Arc<Hub>,
    params: SubscribeParams,
    peer: &PeerHandle,
    id: Option<Id>,
    denied: impl FnOnce(Join) -> ErrorObject,
) -> Dispatch {
    let SubscribeParams { topic, since, .. } = params;
    let limit = Some(hub.settings().max_subscriptions);
    let pending = match hub.registry().join_positioned(peer, &topic, limit) {
        Ok(pending) => pending,
        Err(join) => return Dispatch::Ready(id.map(|id| encode::error(&id, &denied(join)))),
    };
    // Registered first: what is published once the broker watches the topic
    // is delivered to it (buffered), so the snapshot, taken after, cannot
    // miss anything.
    let watching = hub.broker().watching(&topic);
    let (hub, peer) = (Arc::clone(hub), peer.clone());
    Dispatch::Pending(Box::pin(async move {
        let max_replay = hub.settings().max_replay;
        let snapshot = match watching.await {
            Ok(()) => hub.broker().snapshot(&topic, since.as_ref(), max_replay).await,
            Err(e) => Err(e),
        };
        let snapshot = match snapshot {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::warn!(target: "switchboard::server", topic, error = %e, "positioned subscribe failed");
                hub.registry().abandon(peer.id(), &topic, &pending);
                return id.map(|id| encode::error(&id, &broker_failed(e)));
            }
        };
        let (recovered, replay) = match snapshot.replay {
            Replay::Complete(entries) => (since.is_some(), entries),
            Replay::Lost => (false, Vec::new()),
        };
        if since.is_some() {
            hub.registry().telemetry().resumed(recovered, replay.len());
        }
        let position = snapshot.position;
        let result = match id {
            None => None,
            Some(id) => {
                let subscribed =
                    Subscribed { topic, epoch: position.epoch.clone(), offset: position.offset, recovered };
                let frame = encode::success(&id, &subscribed)
                    .unwrap_or_else(|e| encode::error(&id, &ErrorObject::internal(format_args!("{e}"))));
                Some(Utf8Bytes::from(frame))
            }
        };
        pending.topic.go_live(&peer, pending.ticket, Start { result, position, replay });
        None
    }))
}

/// `rpc.history`'s answer: `{"epoch","offset","publications":[...]}`, the
/// publications cut from their encoded frames.
pub(crate) async fn history(hub: Arc<Hub>, params: HistoryParams) -> Result<Box<RawValue>, ErrorObject> {
    if params.topic.is_empty() {
        return Err(ErrorObject::invalid_params("the topic must not be empty"));
    }
    let max = hub.settings().max_history_page;
    let limit = params.limit.unwrap_or(max).min(max);
    let page = hub.broker().history(&params.topic, params.since.as_ref(), limit).await.map_err(broker_failed)?;
    let mut text =
        String::with_capacity(64 + page.entries.iter().map(|e| e.publication_json().len() + 1).sum::<usize>());
    text.push_str(r#"{"epoch":"#);
    text.push_str(&serde_json::to_string(&page.position.epoch).map_err(ErrorObject::internal)?);
    text.push_str(r#","offset":"#);
    text.push_str(&page.position.offset.to_string());
    text.push_str(r#","publications":["#);
    for (i, entry) in page.entries.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(entry.publication_json());
    }
    text.push_str("]}");
    RawValue::from_string(text).map_err(ErrorObject::internal)
}
