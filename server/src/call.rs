//! [`ServerCall`]: one call from the server to a client, on this hub (the
//! peer engine's call) or, with a cluster, on another hub (through the
//! cluster, started at the first poll like a local call).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use switchboard_shared::codec::EncodeError;
use switchboard_shared::peer::decode_result;
use switchboard_shared::{Error, PeerCall};
use uuid::Uuid;

use crate::error::CallError;
use crate::state::cluster::{CallOutcome, Cluster, ClusterFuture};

/// One call from the server to a client, returned by [`ServerHandle::call`](crate::ServerHandle::call):
/// set its timeout, then await it. It is a [`Future`], so it composes with
/// `join_all` and `select!`; dropping it after the first poll cancels the
/// call (`$/cancelRequest`, on whichever hub the client is).
#[must_use = "a call is sent only when it is awaited"]
pub struct ServerCall<R> {
    call: Call<R>,
}

enum Call<R> {
    Local(PeerCall<R>),
    Remote(Box<Remote>, PhantomData<fn() -> R>),
    /// Why there is no call (taken when reported).
    Refused(Option<CallError>),
}

/// A call to a connection on another hub.
struct Remote {
    cluster: Arc<dyn Cluster>,
    connection: Uuid,
    method: String,
    /// Taken when the call starts.
    params: Option<Box<RawValue>>,
    timeout: Option<Duration>,
    running: Option<ClusterFuture<CallOutcome>>,
}

impl<R> std::fmt::Debug for ServerCall<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.call {
            Call::Local(call) => f.debug_tuple("ServerCall").field(call).finish(),
            Call::Remote(remote, _) => f
                .debug_struct("ServerCall")
                .field("connection", &remote.connection)
                .field("node", &"remote")
                .field("timeout", &remote.timeout)
                .finish(),
            Call::Refused(error) => f.debug_struct("ServerCall").field("refused", error).finish(),
        }
    }
}

/// Params as raw JSON, refused at once when a call would refuse them (not
/// an array, an object or `()`).
pub(crate) fn raw_params(params: impl Serialize) -> Result<Box<RawValue>, CallError> {
    let raw = serde_json::value::to_raw_value(&params).map_err(|e| Error::from(EncodeError::Json(e)))?;
    let text = raw.get();
    if text.starts_with(['[', '{']) || text == "null" {
        Ok(raw)
    } else {
        Err(Error::from(EncodeError::ScalarParams(text.to_owned())).into())
    }
}

impl<R> ServerCall<R> {
    pub(crate) fn local(call: PeerCall<R>) -> Self {
        ServerCall { call: Call::Local(call) }
    }

    pub(crate) fn refused(error: CallError) -> Self {
        ServerCall { call: Call::Refused(Some(error)) }
    }

    /// A call to `connection` through `cluster`, with the server's default timeout.
    pub(crate) fn remote(
        cluster: Arc<dyn Cluster>,
        connection: Uuid,
        method: &str,
        params: impl Serialize,
        timeout: Duration,
    ) -> Self {
        match raw_params(params) {
            Ok(params) => {
                let remote = Remote {
                    cluster,
                    connection,
                    method: method.to_owned(),
                    params: Some(params),
                    timeout: Some(timeout),
                    running: None,
                };
                ServerCall { call: Call::Remote(Box::new(remote), PhantomData) }
            }
            Err(e) => Self::refused(e),
        }
    }

    /// Fails with a timeout if no reply came within `limit` (instead of the
    /// server's `call_timeout`).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.call = match self.call {
            Call::Local(call) => Call::Local(call.timeout(limit)),
            Call::Remote(mut remote, r) => {
                remote.timeout = Some(limit);
                Call::Remote(remote, r)
            }
            refused => refused,
        };
        self
    }

    /// Waits for the reply however long it takes (until the connection
    /// ends; for a client on another hub, also until that hub is found gone).
    pub fn no_timeout(mut self) -> Self {
        self.call = match self.call {
            Call::Local(call) => Call::Local(call.no_timeout()),
            Call::Remote(mut remote, r) => {
                remote.timeout = None;
                Call::Remote(remote, r)
            }
            refused => refused,
        };
        self
    }
}

impl<R: DeserializeOwned> Future for ServerCall<R> {
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().call {
            Call::Local(call) => Pin::new(call).poll(cx).map_err(CallError::from),
            Call::Remote(remote, _) => {
                let Remote { cluster, connection, method, params, timeout, running } = &mut **remote;
                let running = running.get_or_insert_with(|| {
                    let params = params.take().expect("ServerCall polled after completion");
                    cluster.call(*connection, method, params, *timeout)
                });
                Poll::Ready(match std::task::ready!(running.as_mut().poll(cx)) {
                    Ok(Ok(raw)) => decode_result(&raw).map_err(CallError::from),
                    Ok(Err(e)) => Err(CallError::Call(e)),
                    Err(e) => Err(CallError::from(e)),
                })
            }
            Call::Refused(refused) => Poll::Ready(Err(refused.take().expect("ServerCall polled after completion"))),
        }
    }
}
