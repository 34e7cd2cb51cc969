//! Admission for HTTP layers that perform the WebSocket upgrade themselves
//! (hyper, axum, the [`web`](crate::web) module): the same checks, in the
//! same order, as the server's own handshake (shutdown, origin, connection
//! limit, authenticator), before the `101 Switching Protocols` is sent.
//!
//! ```no_run
//! # use switchboard_server::ServerHandle;
//! # async fn upgrade(hub: ServerHandle, request: http::Request<()>, ws: switchboard_server::shared::tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) {
//! match hub.admit(&request, None) {
//!     // Answer 101, finish the upgrade, then hand the socket over:
//!     Ok(admission) => drop(hub.serve_admitted(ws, admission)),
//!     // Answer with the refusal's status, headers and body instead.
//!     Err(refused) => drop(refused.response()),
//! }
//! # }
//! ```

use std::net::SocketAddr;

use http::StatusCode;
use switchboard_shared::tokio_tungstenite::WebSocketStream;
use switchboard_shared::{ConnectionInfo, PeerHandle};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::ServeError;
use crate::handle::ServerHandle;
use crate::handshake::{self, Admitted, Refusal};

/// An upgrade request that passed every admission check. It holds one of the
/// server's connection slots until it is served with
/// [`ServerHandle::serve_admitted`] (then until that connection ends) or dropped.
#[derive(Debug)]
#[must_use = "an admission holds a connection slot until it is served or dropped"]
pub struct Admission {
    admitted: Admitted,
}

impl Admission {
    /// What handlers will see of the connection (id, path, query, headers,
    /// auth data); the remote address is the one given to `admit`.
    pub fn info(&self) -> &ConnectionInfo {
        &self.admitted.info
    }

    /// Lets the HTTP layer add to it (extensions for handlers, say).
    pub fn info_mut(&mut self) -> &mut ConnectionInfo {
        &mut self.admitted.info
    }
}

/// Why an upgrade request was refused; answer the client with
/// [`response`](Self::response) instead of upgrading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    refusal: Refusal,
}

impl Refused {
    /// 503 (shutting down, connection limit), 403 (origin, authenticator) or 401.
    pub fn status(&self) -> StatusCode {
        self.refusal.status()
    }

    /// Why, as the response body says it.
    pub fn reason(&self) -> String {
        self.refusal.reason()
    }

    /// The HTTP response to send: the status, a plain-text body, and
    /// `WWW-Authenticate` or `Retry-After` where they apply.
    pub fn response(&self) -> http::Response<String> {
        self.refusal.response().map(Option::unwrap_or_default)
    }

    /// The same refusal as the server's own handshake reports it.
    pub fn into_error(self) -> ServeError {
        self.refusal.into_error()
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status().as_u16(), self.reason())
    }
}

impl std::error::Error for Refused {}

impl ServerHandle {
    /// Runs the admission checks of the server's own handshake on an upgrade
    /// request that an HTTP layer received: a shutdown under way (503), the
    /// origin policy (403), the connection limit (503; a slot is taken here)
    /// and the authenticator (401 / 403, or auth data for the context).
    /// A refusal is logged as the server's handshake logs it.
    ///
    /// The caller answers 101 and completes the upgrade for an [`Admission`]
    /// (within the handshake timeout, if it wants the same guarantee), or
    /// sends [`Refused::response`].
    pub fn admit(&self, request: &http::Request<()>, remote: Option<SocketAddr>) -> Result<Admission, Refused> {
        match handshake::admit(&self.hub, request, remote) {
            Ok(admitted) => Ok(Admission { admitted }),
            Err(refusal) => {
                handshake::log_refusal(&refusal, request, remote);
                Err(Refused { refusal })
            }
        }
    }

    /// Serves a socket upgraded after [`admit`](Self::admit) said yes. The
    /// connection keeps the admission's slot until it ends. Upgrade with
    /// [`websocket_config`](Self::websocket_config) so the message size
    /// limit and read buffer apply.
    pub fn serve_admitted<S>(&self, ws: WebSocketStream<S>, admission: Admission) -> PeerHandle
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Admitted { info, slot } = admission.admitted;
        crate::connection::start(&self.hub, ws, info, slot)
    }
}
