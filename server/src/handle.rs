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

use crate::call::ServerCall;
use crate::error::{CallError, DeliveryError};
use crate::push::{self, Answer};
use crate::serve::accept;
use crate::serve::admission::{self, Admission, Admitted, Refused};
use crate::serve::connection;
use crate::serve::error::ServeError;
use crate::state::cluster::{ClusterError, NodeId, Presence};
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

    /// The live connections of this hub (for the whole cluster, see
    /// [`cluster_connections`](Self::cluster_connections)).
    pub fn connections(&self) -> Vec<ConnectionSummary> {
        self.hub.registry().summaries()
    }

    /// How many connections this hub serves (not counting the other hubs of
    /// a cluster).
    pub fn connection_count(&self) -> usize {
        self.hub.registry().len()
    }

    /// This hub's node id: the cluster's name for it (a random one when it
    /// is alone).
    pub fn node(&self) -> NodeId {
        self.hub.node().clone()
    }

    /// The connections of every hub of the cluster, with their hub: this
    /// hub's at once, and those of every other hub that answers by
    /// `deadline` from now (a hub that does not is absent). Without a
    /// cluster, this hub's.
    pub async fn cluster_connections(&self, deadline: Duration) -> Result<Vec<Presence>, ClusterError> {
        let node = self.hub.node();
        let mut all: Vec<Presence> =
            self.hub.registry().ids().into_iter().map(|id| Presence::new(id, node.clone())).collect();
        if let Some(cluster) = self.hub.cluster() {
            all.extend(cluster.connections(deadline).await?);
        }
        all.sort();
        Ok(all)
    }

    /// The members of `topic` on every hub of the cluster, with their hub
    /// (sorted). Without a cluster, this hub's members. Each hub records
    /// its members in Redis as they join and leave; a killed hub's expire
    /// within the cluster's TTL. Fails only when the cluster cannot be asked.
    pub async fn presence(&self, topic: &str) -> Result<Vec<Presence>, ClusterError> {
        match self.hub.cluster() {
            Some(cluster) => cluster.presence(topic).await,
            None => {
                let node = self.hub.node();
                let mut members: Vec<Presence> = self
                    .hub
                    .registry()
                    .peers(&Target::Topic(topic.to_owned()))
                    .iter()
                    .map(|peer| Presence::new(peer.id(), node.clone()))
                    .collect();
                members.sort();
                Ok(members)
            }
        }
    }

    /// Which hub serves `connection`: this one (answered at once), another
    /// of the cluster (from its directory), or `None` when none does.
    pub async fn locate(&self, connection: Uuid) -> Result<Option<NodeId>, ClusterError> {
        if self.hub.registry().peer(connection).is_some() {
            return Ok(Some(self.hub.node().clone()));
        }
        match self.hub.cluster() {
            Some(cluster) => cluster.locate(connection).await,
            None => Ok(None),
        }
    }

    /// The live hubs of the cluster, this one included (just this one
    /// without a cluster).
    pub async fn nodes(&self) -> Result<Vec<NodeId>, ClusterError> {
        match self.hub.cluster() {
            Some(cluster) => cluster.nodes().await,
            None => Ok(vec![self.hub.node().clone()]),
        }
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
    /// A client of this hub is called directly. With a cluster, a client of
    /// another hub is called through that hub, and a definite error comes
    /// within the timeout when there is none: [`CallError::UnknownConnection`]
    /// (no hub serves it; at once), [`CallError::NodeUnreachable`] (its hub
    /// is gone; at once, or within about the cluster's TTL for a call in
    /// flight), [`CallError::Cluster`] (Redis unreachable).
    ///
    /// ```no_run
    /// # async fn demo(server: switchboard_server::ServerHandle, id: uuid::Uuid) -> Result<(), switchboard_server::CallError> {
    /// use std::time::Duration;
    /// let ok: bool = server.call(id, "client.confirm", ["delete?"]).timeout(Duration::from_secs(30)).await?;
    /// # let _ = ok; Ok(()) }
    /// ```
    pub fn call<R: DeserializeOwned>(&self, connection: Uuid, method: &str, params: impl Serialize) -> ServerCall<R> {
        match (self.hub.registry().peer(connection), self.hub.cluster()) {
            (Some(peer), _) => ServerCall::local(peer.call(method, params)),
            (None, Some(cluster)) => {
                ServerCall::remote(Arc::clone(cluster), connection, method, params, self.hub.settings().call_timeout)
            }
            (None, None) => ServerCall::refused(CallError::UnknownConnection(connection)),
        }
    }

    /// Sends a notification to one client. Never waits: a client whose
    /// outbound queue is full is cut off as a slow consumer.
    ///
    /// With a cluster, a connection this hub does not serve is sent the
    /// notification through its hub, in order with this hub's other
    /// messages, and `Ok` means sent, not delivered: an unknown connection
    /// is then not reported (a [`call`](Self::call) reports it).
    pub fn notify(&self, connection: Uuid, method: &str, params: impl Serialize) -> Result<(), DeliveryError> {
        let peer = self.hub.registry().peer(connection);
        let frame = push::encode_notification(method, &params)?;
        match (peer, self.hub.cluster()) {
            (Some(peer), _) => peer.try_send_text(frame).map_err(|_| DeliveryError::Disconnected(connection)),
            (None, Some(cluster)) => {
                cluster.notify(connection, &frame);
                Ok(())
            }
            (None, None) => Err(DeliveryError::UnknownConnection(connection)),
        }
    }

    /// Sends a notification to every live connection; returns how many of
    /// this hub's took it. It is encoded once and its bytes are shared.
    ///
    /// With a cluster, every other hub gets it once and delivers it to its
    /// own connections (see [`push`](Self::push)); they are not counted.
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
    /// how many of this hub's took it. For [`Target::Topic`] that is every member of the
    /// topic, plain or positioned, with the plain notification: it is not
    /// part of the topic's stream (no offset, no history; see
    /// [`publish`](Self::publish)).
    ///
    /// With a cluster, the other hubs get the frame once each (one message
    /// on the broadcast channel, without waiting) and deliver it to the
    /// targets they serve; for [`Target::Connections`] only the ids this
    /// hub does not serve are sent on. Their deliveries are not counted.
    pub fn push(&self, target: &Target, method: &str, params: impl Serialize) -> Result<usize, DeliveryError> {
        let frame = push::encode_notification(method, &params)?;
        Ok(push::push(&self.hub, target, &frame))
    }

    /// Calls `method` on every connection `target` designates, all at once,
    /// and gathers each one's result or error. Returns when every connection
    /// has answered or at `deadline` from now, whichever is first; a
    /// connection that has not answered by then has `Error::Timeout`.
    /// Fails only when the params cannot be encoded.
    ///
    /// With a cluster, every hub calls the targets it serves: each first
    /// says which connections it calls, then sends their answers as they
    /// come. A connection a hub named but did not answer for by the
    /// deadline has `Error::Timeout`; the connections of a hub that did not
    /// even say (dead, cut off, Redis unreachable) are absent from the
    /// result, so a dead or slow hub never holds the call past its deadline.
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

    /// How many connections of this hub are members of `topic` (for the
    /// whole cluster, see [`presence`](Self::presence)).
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
    /// origin policy (403), the connection limit (503; a slot is taken here)
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
        let Admitted { info, slot } = admission.admitted;
        connection::start(&self.hub, ws, info, slot)
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
