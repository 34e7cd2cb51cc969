//! [`Server`]: a built server, and the entry points that feed it
//! connections (a listener, a TCP stream, any stream, an upgraded socket).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_shared::read_ahead::ReadAhead;
use switchboard_shared::tokio_tungstenite::WebSocketStream;
use switchboard_shared::tokio_tungstenite::tungstenite::protocol::CloseFrame;
use switchboard_shared::tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use switchboard_shared::{ConnectionInfo, Methods, PeerHandle};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::builder::ServerBuilder;
use crate::connection;
use crate::error::{ListenError, ServeError};
use crate::handle::ServerHandle;
use crate::handshake;
use crate::hub::Hub;
use crate::lifecycle::NoSlot;
use crate::listener;

/// A built server, not yet listening.
///
/// ```no_run
/// use switchboard_server::Server;
/// use switchboard_shared::{Context, ErrorObject, Methods};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut methods = Methods::new();
/// methods.register_sync("add", |(a, b): (i64, i64), _cx: &Context| Ok::<_, ErrorObject>(a + b));
/// let handle = Server::builder().build(methods).listen("127.0.0.1:0").await?;
/// println!("listening on {:?}", handle.local_addr());
/// handle.stopped().await;
/// # Ok(()) }
/// ```
pub struct Server {
    hub: Arc<Hub>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("methods", &self.hub.methods).finish_non_exhaustive()
    }
}

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// A server with every default around `methods`.
    pub fn new(methods: Methods) -> Self {
        ServerBuilder::new().build(methods)
    }

    pub(crate) fn from_hub(hub: Arc<Hub>) -> Self {
        Server { hub }
    }

    /// A handle to the server, usable before and after it listens.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle { hub: Arc::clone(&self.hub) }
    }

    /// Binds `addr` (port 0 picks a free port) and accepts connections on a
    /// background task until [`ServerHandle::shutdown`]. The handle reports
    /// the bound address.
    pub async fn listen(self, addr: impl ToSocketAddrs + fmt::Display) -> Result<ServerHandle, ListenError> {
        let shown = addr.to_string();
        let listener = TcpListener::bind(addr).await.map_err(|source| ListenError::Bind { addr: shown, source })?;
        self.listen_on(listener)
    }

    /// Accepts connections on a listener the caller has bound (with its own
    /// socket options). Must be called within a Tokio runtime.
    pub fn listen_on(self, listener: TcpListener) -> Result<ServerHandle, ListenError> {
        let addr = listener.local_addr().map_err(ListenError::LocalAddr)?;
        // `listen` consumes the server, so the address is set once.
        let _ = self.hub.local_addr.set(addr);
        listener::warn_if_exposed(&self.hub, &listener);
        tracing::info!(target: "switchboard::server", %addr, "listening");
        let guard = self.hub.lifecycle.listener();
        let hub = Arc::clone(&self.hub);
        tokio::spawn(listener::accept_loop(Arc::clone(&hub), listener, guard, move |stream, remote, pending| {
            let hub = Arc::clone(&hub);
            async move {
                // The outcome is logged where it is decided. `serve_tcp`
                // returns once the handshake is over, ending `pending`.
                let _ = serve_tcp(&hub, stream, Some(remote)).await;
                drop(pending);
            }
        }));
        Ok(self.handle())
    }

    /// Serves one TCP connection accepted by the caller; see
    /// [`ServerHandle::serve_connection`].
    pub async fn serve_connection(&self, stream: TcpStream) -> Result<PeerHandle, ServeError> {
        self.handle().serve_connection(stream).await
    }

    /// Serves a socket an HTTP layer has already upgraded; see
    /// [`ServerHandle::serve_websocket`].
    pub async fn serve_websocket<S>(
        &self,
        ws: WebSocketStream<S>,
        info: ConnectionInfo,
    ) -> Result<PeerHandle, ServeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.handle().serve_websocket(ws, info).await
    }
}

/// Serves an accepted TCP connection.
pub(crate) async fn serve_tcp(
    hub: &Arc<Hub>,
    stream: TcpStream,
    remote: Option<SocketAddr>,
) -> Result<PeerHandle, ServeError> {
    // Answers are small and latency matters more than packet count; the
    // writer already coalesces bursts into one write.
    let _ = stream.set_nodelay(true);
    // Small reads for idle sockets, big ones for busy sockets: see `ReadAhead`.
    serve_stream(hub, ReadAhead::new(stream), remote).await
}

/// Upgrades and serves any stream.
pub(crate) async fn serve_stream<S>(
    hub: &Arc<Hub>,
    stream: S,
    remote: Option<SocketAddr>,
) -> Result<PeerHandle, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (ws, admitted) = handshake::upgrade(hub, stream, remote).await?;
    Ok(connection::start(hub, ws, admitted.info, admitted.slot))
}

/// Serves an already-upgraded socket, within the connection limit.
pub(crate) async fn serve_websocket<S>(
    hub: &Arc<Hub>,
    mut ws: WebSocketStream<S>,
    info: ConnectionInfo,
) -> Result<PeerHandle, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match hub.lifecycle.reserve() {
        Ok(slot) => Ok(connection::start(hub, ws, info, slot)),
        Err(no_slot) => {
            let (code, reason, error) = match no_slot {
                NoSlot::ShuttingDown => (CloseCode::Away, "server shutting down", ServeError::ShuttingDown),
                NoSlot::Full { limit } => {
                    (CloseCode::Again, "too many connections", ServeError::TooManyConnections { limit })
                }
            };
            tracing::warn!(target: "switchboard::server", remote = ?info.remote, %error, "connection rejected");
            let frame = CloseFrame { code, reason: reason.into() };
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
            Err(error)
        }
    }
}
