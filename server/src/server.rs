//! [`Server`]: a built server, and the listener that feeds it connections.

use std::fmt;
use std::sync::Arc;

use tokio::net::{TcpListener, ToSocketAddrs};

use crate::error::ListenError;
use crate::handle::ServerHandle;
use crate::serve::accept;
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
        let handle = self.handle();
        handle.start_background();
        let hub = Arc::clone(&self.hub);
        accept::listen(&self.hub, listener, "WebSocket", move |stream, remote, pending| {
            let hub = Arc::clone(&hub);
            async move { accept::serve_accepted(&hub, stream, remote, pending).await }
        })
        .map_err(ListenError::LocalAddr)?;
        Ok(handle)
    }
}
