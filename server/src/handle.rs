//! [`ServerHandle`]: everything that can be done to a running server, from
//! anywhere (the code that started it, a handler through
//! [`crate::ServerContext`], a hook).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_shared::codec::EncodeError;
use switchboard_shared::tokio_tungstenite::WebSocketStream;
use switchboard_shared::tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use switchboard_shared::{Methods, PeerHandle};
use tokio::io::{AsyncRead, AsyncWrite};
use uuid::Uuid;

use crate::error::{CallError, DeliveryError};
use crate::push::{self, Answer};
use crate::serve::accept;
use crate::serve::admission::{self, Admission, Refused};
use crate::serve::connection;
use crate::serve::error::ServeError;
use crate::state::hub::Hub;
use crate::state::lifecycle::ServerPhase;
use crate::state::registry::{ConnectionSummary, Join, Target};
use crate::streams::Published;

/// A cheap, cloneable handle to a server: call and push to its clients,
/// list them, hand it more connections, shut it down.
///
/// The server runs until [`shutdown`](Self::shutdown); dropping handles does
/// not stop it.
#[derive(Clone)]
pub struct ServerHandle {
    hub: Arc<Hub>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr())
            .field("phase", &self.phase())
            .field("connections", &self.connection_count())
            .finish()
    }
}

impl ServerHandle {
    pub(crate) fn from_hub(hub: Arc<Hub>) -> Self {
        ServerHandle { hub }
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Starts what runs beside the connections (the application-level
    /// heartbeat, when on), once; every way in calls it.
    pub(crate) fn start_background(&self) {
        crate::app_heartbeat::ensure_started(&self.hub);
    }

    /// The address the server listens on (`None` when it was never told to
    /// listen and only serves connections handed to it).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.hub.local_addr()
    }

    /// The methods clients may call, built-ins included (what a discovery
    /// document describes).
    pub fn methods(&self) -> &Methods {
        self.hub.methods()
    }

    /// Running, draining, or stopped.
    pub fn phase(&self) -> ServerPhase {
        self.hub.phase()
    }

    /// The live connections.
    pub fn connections(&self) -> Vec<ConnectionSummary> {
        self.hub.registry().summaries()
    }

    /// How many connections are live.
    pub fn connection_count(&self) -> usize {
        self.hub.registry().len()
    }

    /// The peer handle of a live connection (to call it with a custom
    /// timeout, close it, watch its end...).
    pub fn peer(&self, connection: Uuid) -> Option<PeerHandle> {
        self.hub.registry().peer(connection)
    }

    /// Calls `method` on one client; await the returned [`ServerCall`] for
    /// the result. The server's `call_timeout` applies unless
    /// [`ServerCall::timeout`] says otherwise.
    ///
    /// ```no_run
    /// # async fn demo(server: switchboard_server::ServerHandle, id: uuid::Uuid) -> Result<(), switchboard_server::CallError> {
    /// use std::time::Duration;
    /// let ok: bool = server.call(id, "client.confirm", ["delete?"]).timeout(Duration::from_secs(30)).await?;
    /// # let _ = ok; Ok(()) }
    /// ```
    pub fn call<R: DeserializeOwned>(&self, connection: Uuid, method: &str, params: impl Serialize) -> ServerCall<R> {
        match self.hub.registry().peer(connection) {
            Some(peer) => ServerCall { call: Ok(peer.call(method, params)) },
            None => ServerCall { call: Err(Some(CallError::UnknownConnection(connection))) },
        }
    }

    /// Sends a notification to one client. Never waits: a client whose
    /// outbound queue is full is cut off as a slow consumer.
    pub fn notify(&self, connection: Uuid, method: &str, params: impl Serialize) -> Result<(), DeliveryError> {
        let peer = self.hub.registry().peer(connection).ok_or(DeliveryError::UnknownConnection(connection))?;
        let frame = push::encode_notification(method, &params)?;
        peer.try_send_text(frame).map_err(|_| DeliveryError::Disconnected(connection))
    }

    /// Sends a notification to every live connection; returns how many took
    /// it. It is encoded once and its bytes are shared.
    pub fn broadcast(&self, method: &str, params: impl Serialize) -> Result<usize, DeliveryError> {
        self.push(&Target::All, method, params)
    }

    /// Publishes to `topic`'s stream: the broker gives the publication the
    /// topic's next offset and keeps it in history, and every subscriber
    /// receives it: plain ones as the notification `{"method": method,
    /// "params": params}`, positioned ones as `rpc.publication` (with the
    /// topic, epoch and offset). Both frames are encoded once and shared.
    /// Never waits: a subscriber whose outbound queue is full is handled by
    /// its topic's slow-consumer policy.
    ///
    /// The publication is made when this returns (in order with this
    /// caller's other publications); await the [`Published`] for its
    /// position. Fails at once when the params are not a JSON array or
    /// object (or `()`).
    pub fn publish(&self, topic: &str, method: &str, params: impl Serialize) -> Result<Published, DeliveryError> {
        let params = serde_json::value::to_raw_value(&params).map_err(EncodeError::Json)?;
        let text = params.get();
        if !(text.starts_with(['[', '{']) || text == "null") {
            return Err(DeliveryError::Encode(EncodeError::ScalarParams(text.to_owned())));
        }
        Ok(Published::new(self.hub.broker().publish(topic, method, &params)))
    }

    /// Sends a notification to the connections `target` designates; returns
    /// how many took it. For [`Target::Topic`] that is every member of the
    /// topic, plain or positioned, with the plain notification: it is not
    /// part of the topic's stream (no offset, no history; see
    /// [`publish`](Self::publish)).
    pub fn push(&self, target: &Target, method: &str, params: impl Serialize) -> Result<usize, DeliveryError> {
        let frame = push::encode_notification(method, &params)?;
        Ok(push::push(&self.hub, target, &frame))
    }

    /// Calls `method` on every connection `target` designates, all at once,
    /// and gathers each one's result or error. Returns when every connection
    /// has answered or at `deadline` from now, whichever is first; a
    /// connection that has not answered by then has `Error::Timeout`.
    /// Fails only when the params cannot be encoded.
    pub async fn call_many<R: DeserializeOwned>(
        &self,
        target: Target,
        method: &str,
        params: impl Serialize,
        deadline: Duration,
    ) -> Result<Vec<Answer<R>>, DeliveryError> {
        push::call_many(&self.hub, &target, method, params, deadline).await
    }

    /// Joins a connection to `topic` (no subscription hook, no limit).
    /// `Ok(true)` when it was not a member yet.
    pub fn join(&self, connection: Uuid, topic: &str) -> Result<bool, DeliveryError> {
        let peer = self.hub.registry().peer(connection).ok_or(DeliveryError::UnknownConnection(connection))?;
        match self.hub.registry().join(&peer, topic, None) {
            Join::Joined => Ok(true),
            Join::AlreadyMember | Join::LimitReached { .. } => Ok(false),
            Join::Ended => Err(DeliveryError::Disconnected(connection)),
        }
    }

    /// Removes a connection from `topic`; `false` when it was not a member.
    pub fn leave(&self, connection: Uuid, topic: &str) -> bool {
        self.hub.registry().leave(connection, topic)
    }

    /// How many connections are members of `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.hub.registry().subscribers(topic)
    }

    /// Starts a graceful shutdown and returns a future that resolves once it
    /// is complete. The shutdown begins at once and goes on even if the
    /// future is dropped; later calls only wait for it.
    ///
    /// The listener stops accepting (new TCP connections are refused, upgrades
    /// in progress get HTTP 503); each connection stops reading new calls,
    /// its in-flight calls may finish and be answered until `deadline` from
    /// now, then it is closed with 1001 "server shutting down".
    pub fn shutdown(&self, deadline: Duration) -> impl Future<Output = ()> + Send + 'static {
        if self.hub.begin_shutdown(tokio::time::Instant::now() + deadline) {
            tracing::info!(target: "switchboard::server", ?deadline, "shutdown begun");
        }
        let hub = Arc::clone(&self.hub);
        async move { hub.stopped().await }
    }

    /// Resolves once the server has stopped (after a shutdown, every
    /// connection has ended).
    pub async fn stopped(&self) {
        self.hub.stopped().await;
    }

    /// Serves a stream accepted by the caller (a `TcpStream`, a TLS stream,
    /// a Unix socket...): the whole server-side handshake, with the admission
    /// checks (shutdown, origin, connection limit, authenticator) and the
    /// handshake timeout, then the connection on its own task. `remote` is
    /// what handlers see as the client's address. Returns once the handshake
    /// is over: spawn it, so one slow client does not hold up your accept
    /// loop (which the server's own listeners bound with
    /// `max_pending_handshakes`; yours is yours to bound).
    ///
    /// This is the one way in for an accepted stream; for a socket an HTTP
    /// layer has upgraded itself, see [`admit`](Self::admit).
    pub async fn serve_stream<S>(&self, stream: S, remote: Option<SocketAddr>) -> Result<PeerHandle, ServeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.start_background();
        accept::serve_stream(&self.hub, stream, remote).await
    }

    /// Runs the admission checks of the server's own handshake on an upgrade
    /// request that an HTTP layer (hyper, axum...) received, before it
    /// answers `101 Switching Protocols`: a shutdown under way (503), the
    /// origin policy (403), the connection limits in all and per
    /// client address (503; a slot is taken here)
    /// and the authenticator (401 / 403, 503 when an asynchronous one times
    /// out; else the connection's identity). A refusal is logged as the
    /// server's handshake logs it. Only the request's head is read (copied
    /// before the returned future starts, which borrows nothing).
    ///
    /// For an [`Admission`], answer 101, complete the upgrade (within the
    /// handshake timeout, for the same guarantee) with
    /// [`websocket_config`](Self::websocket_config), and hand the socket to
    /// [`serve_websocket`](Self::serve_websocket); for a [`Refused`], send
    /// [`Refused::response`] instead.
    ///
    /// ```no_run
    /// # use switchboard_server::ServerHandle;
    /// # use switchboard_server::shared::tokio_tungstenite::WebSocketStream;
    /// # async fn upgrade(hub: ServerHandle, request: http::Request<()>, ws: WebSocketStream<tokio::net::TcpStream>) {
    /// match hub.admit(&request, None).await {
    ///     // Answer 101, finish the upgrade, then hand the socket over:
    ///     Ok(admission) => drop(hub.serve_websocket(ws, admission)),
    ///     // Answer with the refusal's status, headers and body instead.
    ///     Err(refused) => drop(refused.response()),
    /// }
    /// # }
    /// ```
    pub fn admit<B>(
        &self,
        request: &http::Request<B>,
        remote: Option<SocketAddr>,
    ) -> impl Future<Output = Result<Admission, Refused>> + Send + 'static {
        let mut head = http::Request::new(());
        *head.method_mut() = request.method().clone();
        *head.uri_mut() = request.uri().clone();
        *head.version_mut() = request.version();
        *head.headers_mut() = request.headers().clone();
        let hub = Arc::clone(&self.hub);
        async move {
            match admission::admit(&hub, head, remote).await {
                Ok(admitted) => Ok(Admission { admitted }),
                Err(refusal) => Err(Refused { refusal }),
            }
        }
    }

    /// Serves a socket upgraded after [`admit`](Self::admit) said yes; the
    /// connection keeps the admission's slot until it ends. This is the one
    /// way in for an already-upgraded WebSocket.
    pub fn serve_websocket<S>(&self, ws: WebSocketStream<S>, admission: Admission) -> PeerHandle
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.start_background();
        connection::start(&self.hub, ws, admission.admitted)
    }

    /// The WebSocket settings (message size limit, read buffer) the server
    /// upgrades with.
    pub fn websocket_config(&self) -> WebSocketConfig {
        self.hub.ws_config()
    }

    /// The round trip last measured by the application-level heartbeat on
    /// `connection` (see [`ServerBuilder::app_heartbeat`](crate::ServerBuilder::app_heartbeat));
    /// `None` when the heartbeat is off, the client has not answered yet, or
    /// the connection is unknown.
    pub fn heartbeat_rtt(&self, connection: Uuid) -> Option<Duration> {
        self.hub.app_heartbeat().rtt(connection)
    }
}

/// One call from the server to a client, returned by [`ServerHandle::call`]:
/// set its timeout, then await it. It is a [`Future`](std::future::Future),
/// so it composes with `join_all` and `select!`; dropping it after the first
/// poll cancels the call (`$/cancelRequest`).
#[must_use = "a call is sent only when it is awaited"]
#[derive(Debug)]
pub struct ServerCall<R> {
    /// The call, or why there is none (taken when reported).
    call: Result<switchboard_shared::PeerCall<R>, Option<CallError>>,
}

impl<R> ServerCall<R> {
    /// Fails with a timeout if no reply came within `limit` (instead of the
    /// server's `call_timeout`).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.call = self.call.map(|call| call.timeout(limit));
        self
    }

    /// Waits for the reply however long it takes (until the connection ends).
    pub fn no_timeout(mut self) -> Self {
        self.call = self.call.map(switchboard_shared::PeerCall::no_timeout);
        self
    }
}

impl<R: DeserializeOwned> std::future::Future for ServerCall<R> {
    type Output = Result<R, CallError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match &mut self.get_mut().call {
            Ok(call) => std::pin::Pin::new(call).poll(cx).map_err(CallError::from),
            Err(refused) => std::task::Poll::Ready(Err(refused.take().expect("ServerCall polled after completion"))),
        }
    }
}
