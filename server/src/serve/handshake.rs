//! The server's own WebSocket handshake on an accepted stream: the
//! admission checks on the upgrade request, then the upgrade, all within the
//! handshake timeout.

use std::net::SocketAddr;

use switchboard_shared::tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use switchboard_shared::tokio_tungstenite::tungstenite::{self, Error as WsError};
use switchboard_shared::tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::serve::admission::{Admitted, Refusal, admit, log_refusal};
use crate::serve::error::ServeError;
use crate::state::hub::Hub;

/// Performs the server side of the upgrade on `stream`, with the admission
/// checks and the handshake timeout.
pub(crate) async fn upgrade<S>(
    hub: &Hub,
    stream: S,
    remote: Option<SocketAddr>,
) -> Result<(WebSocketStream<S>, Admitted), ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut outcome: Option<Result<Admitted, Refusal>> = None;
    #[expect(clippy::result_large_err, reason = "the signature is tungstenite's `Callback`")]
    let callback = |request: &Request, response: Response| {
        let admission = admit(hub, request, remote);
        let reply = match &admission {
            Ok(_) => Ok(response),
            Err(refusal) => {
                log_refusal(refusal, request, remote);
                Err(refusal.response())
            }
        };
        outcome = Some(admission);
        reply
    };
    let timeout = hub.settings().handshake_timeout;
    let handshake = accept_hdr_async_with_config(stream, callback, Some(hub.ws_config()));
    let result = tokio::time::timeout(timeout, handshake).await;
    match (result, outcome) {
        (Err(_elapsed), _) => {
            tracing::debug!(target: "switchboard::server", remote = ?remote, ?timeout, "handshake timed out");
            Err(ServeError::HandshakeTimeout(timeout))
        }
        (Ok(Ok(ws)), Some(Ok(admitted))) => Ok((ws, admitted)),
        (Ok(_), Some(Err(refusal))) => Err(refusal.into_error()),
        (Ok(Err(e)), _) => {
            tracing::debug!(target: "switchboard::server", remote = ?remote, error = %e, "handshake failed");
            Err(ServeError::Handshake(Box::new(e)))
        }
        // The callback runs on every successful upgrade.
        (Ok(Ok(_)), None) => Err(ServeError::Handshake(Box::new(WsError::Protocol(
            tungstenite::error::ProtocolError::HandshakeIncomplete,
        )))),
    }
}
