//! What a handler knows about the connection its call arrived on.

use std::net::SocketAddr;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::codec::Id;
use crate::peer::PeerHandle;

/// Facts about one connection, fixed at the handshake.
///
/// Its `Debug` output keeps secrets out: the values of secret query
/// parameters (`token`, see [`credentials`](crate::credentials)) are
/// redacted, and so are headers marked sensitive (a server marks
/// `Authorization`, `Proxy-Authorization` and `Cookie` so).
#[derive(Default)]
pub struct ConnectionInfo {
    /// A fresh uuid v4 per connection.
    pub id: Uuid,
    /// The other side's address, when known.
    pub remote: Option<SocketAddr>,
    /// The request path of the WebSocket upgrade (`/` for the client's view of the server).
    pub path: String,
    /// The query string of the upgrade request, without `?`.
    pub query: Option<String>,
    /// The upgrade request's headers (on the server) or the response's (on the client).
    /// A server keeps all but those of the WebSocket handshake itself
    /// (`Connection`, `Upgrade`, `Sec-WebSocket-Key`, `-Version` and
    /// `-Extensions`), which say nothing about the client once it is upgraded.
    pub headers: http::HeaderMap,
    /// What the authenticator accepted the connection with.
    pub auth: Option<Value>,
    /// Anything else the embedding layer wants handlers to see (typed map).
    pub extensions: http::Extensions,
}

impl std::fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("id", &self.id)
            .field("remote", &self.remote)
            .field("path", &self.path)
            .field("query", &self.query.as_deref().map(crate::credentials::redact_query))
            .field("headers", &self.headers)
            .field("auth", &self.auth)
            .field("extensions", &self.extensions)
            .finish()
    }
}

impl ConnectionInfo {
    /// Info with a fresh id and nothing else.
    pub fn new() -> Self {
        ConnectionInfo { id: Uuid::new_v4(), path: "/".into(), ..Default::default() }
    }
}

/// Given to every handler: who is calling, and a handle to call them back.
///
/// Cloning is cheap (one reference count).
#[derive(Debug, Clone)]
pub struct Context {
    /// The connection (its facts are reached through it: one pointer, not two).
    peer: PeerHandle,
    /// The id of the request being handled (async handlers of requests only).
    call: Option<Id>,
}

impl Context {
    /// A context for calls arriving on `peer`. The peer engine makes its
    /// own; a transport that runs handlers itself (HTTP POST, with a
    /// [`PeerHandle::one_shot`]) makes one per request.
    pub fn new(peer: PeerHandle) -> Self {
        Context { peer, call: None }
    }

    /// This context, for the handler of request `id`.
    pub(crate) fn for_call(&self, id: Option<Id>) -> Self {
        Context { peer: self.peer.clone(), call: id }
    }

    /// A token that fires when the caller cancels this request
    /// (`$/cancelRequest`) or the connection ends. The handler's own future
    /// is dropped on cancellation anyway (its `Drop` guards run); hand the
    /// token to work the handler started elsewhere (a spawned task, a query)
    /// so that it stops too. Outside an async handler of a request (a
    /// notification, a sync handler) the token never fires.
    ///
    /// ```
    /// use switchboard_shared::{Context, ErrorObject, Methods};
    ///
    /// let mut methods = Methods::new();
    /// methods.register("export", |(): (), cx: Context| async move {
    ///     let stop = cx.cancellation();
    ///     let job = tokio::spawn(async move {
    ///         tokio::select! {
    ///             _ = stop.cancelled() => None,
    ///             rows = async { Some(42u64) } => rows,
    ///         }
    ///     });
    ///     job.await.map_err(ErrorObject::internal)?.ok_or_else(|| ErrorObject::internal("cancelled"))
    /// });
    /// ```
    pub fn cancellation(&self) -> CancellationToken {
        match &self.call {
            Some(id) => self.peer.cancellation_token(id),
            None => CancellationToken::new(),
        }
    }

    /// The id of the request being handled, when the handler is an async
    /// handler of a request (not a notification).
    pub fn request_id(&self) -> Option<&Id> {
        self.call.as_ref()
    }

    /// The connection's id.
    pub fn connection_id(&self) -> Uuid {
        self.peer.info().id
    }

    /// Everything known about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        self.peer.info()
    }

    /// The authenticator's data, if any.
    pub fn auth(&self) -> Option<&Value> {
        self.peer.info().auth.as_ref()
    }

    /// The other side's address, if known.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.peer.info().remote
    }

    /// A typed extension the embedding layer attached to the connection, or
    /// else to every connection (`PeerConfig::extensions`).
    pub fn extension<T: Send + Sync + Clone + 'static>(&self) -> Option<&T> {
        self.peer.info().extensions.get::<T>().or_else(|| self.peer.config().extensions.get::<T>())
    }

    /// The application state of type `T` added with
    /// [`Methods::with_state`](crate::Methods::with_state); an error
    /// (-32603, naming the type) when none was added, so handlers can use `?`.
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Result<&T, crate::ErrorObject> {
        self.peer.methods().state::<T>().ok_or_else(|| {
            crate::ErrorObject::internal(format_args!(
                "no state of type {} was added with Methods::with_state",
                std::any::type_name::<T>()
            ))
        })
    }

    /// A handle to call or notify the peer that made this call.
    pub fn peer(&self) -> &PeerHandle {
        &self.peer
    }
}
