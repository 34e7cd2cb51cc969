//! [`Server`]: a built server, and the listeners that feed it connections.

use std::fmt;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::listen::Listen;
use crate::error::ListenError;
use crate::handle::ServerHandle;
use crate::listen;
use crate::state::hub::Hub;

/// A built server, not yet listening.
///
/// ```no_run
/// use switchboard_server::Server;
/// use switchboard_shared::{Context, ErrorObject, Methods};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut methods = Methods::new();
/// methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
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
        f.debug_struct("Server").field("methods", self.hub.methods()).finish_non_exhaustive()
    }
}

impl Server {
    pub(crate) fn from_hub(hub: Arc<Hub>) -> Self {
        Server { hub }
    }

    /// A handle to the server, usable before and after it listens.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle::from_hub(Arc::clone(&self.hub))
    }

    /// Binds `addr` and accepts connections on it, on a background task,
    /// until [`ServerHandle::shutdown`]. `addr` is a [`Listen`] or what
    /// parses as one: `ws://HOST:PORT` or a bare `HOST:PORT` (WebSocket; a
    /// `SocketAddr` too), `tcp://HOST:PORT` or `unix:/path` (newline-delimited
    /// JSON-RPC on a raw socket); port 0 picks a free port.
    ///
    /// Call it once per interface: every listener serves the same methods,
    /// registry, limits and lifecycle, and a shutdown closes them all. The
    /// handle lists them ([`ServerHandle::listening`]) and reports the first
    /// TCP address as [`local_addr`](ServerHandle::local_addr).
    ///
    /// Fails with [`ListenError::Invalid`] for an address of another form,
    /// [`ListenError::Bind`] when the address cannot be bound,
    /// [`ListenError::NoCredentials`] for a raw socket on a server with an
    /// authenticator (see [`RawSockets`](crate::RawSockets)), and
    /// [`ListenError::SocketInUse`] / [`ListenError::NotASocket`] when a Unix
    /// socket path is taken (a stale socket file is replaced).
    ///
    /// ```no_run
    /// use switchboard_server::Server;
    /// use switchboard_shared::Methods;
    ///
    /// # async fn run() -> Result<(), switchboard_server::ListenError> {
    /// let server = Server::builder().build(Methods::new());
    /// server.listen("ws://0.0.0.0:9000").await?;
    /// server.listen("tcp://127.0.0.1:9001").await?;
    /// let handle = server.listen("unix:/run/hub.sock").await?;
    /// for listener in handle.listening() {
    ///     println!("listening on {listener}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn listen<A>(&self, addr: A) -> Result<ServerHandle, ListenError>
    where
        A: TryInto<Listen>,
        A::Error: Into<ListenError>,
    {
        let listen = addr.try_into().map_err(Into::into)?;
        let handle = self.handle();
        handle.start_background();
        listen::start(&self.hub, listen).await?;
        Ok(handle)
    }

    /// Accepts WebSocket connections on a listener the caller has bound (with
    /// its own socket options). Must be called within a Tokio runtime.
    pub fn listen_on(&self, listener: TcpListener) -> Result<ServerHandle, ListenError> {
        let handle = self.handle();
        handle.start_background();
        listen::websocket(&self.hub, listener)?;
        Ok(handle)
    }
}
