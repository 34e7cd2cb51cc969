//! The WebSocket upgrade of a request hyper received (the `web` and `axum`
//! integrations, and later requests of a connection hyper serves): the same
//! checks and admission as the server's own handshake, then hyper's
//! upgraded socket is served as a hub connection.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper_util::rt::TokioIo;
use switchboard_shared::transport::ServerSocket;

use crate::serve::admission;
use crate::serve::connection;
use crate::serve::handshake;
use crate::serve::http::{Body, full};
use crate::state::hub::Hub;

/// Upgrades `request` to a hub connection and returns the response to send:
/// `101 Switching Protocols`, or the refusal (400 for a malformed upgrade,
/// 426 for a WebSocket version other than 13, else the admission's 401, 403
/// or 503). The socket is served once hyper hands it over, which must
/// happen within the hub's handshake timeout. Needs a Tokio runtime.
pub(crate) async fn upgrade<B>(hub: &Arc<Hub>, mut request: Request<B>, remote: Option<SocketAddr>) -> Response<Body> {
    let key = match handshake::accept_key(&request) {
        Ok(key) => key,
        Err(refusal) => return refusal.response().map(full),
    };
    let admitted = match admission::admit(hub, head(&request), remote).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.response().map(full),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let hub = Arc::clone(hub);
    let timeout = hub.settings().handshake_timeout;
    tokio::spawn(async move {
        match tokio::time::timeout(timeout, on_upgrade).await {
            Ok(Ok(upgraded)) => {
                let ws = ServerSocket::from_raw_socket(TokioIo::new(upgraded), Some(hub.ws_config())).await;
                connection::start(&hub, ws, admitted);
            }
            // The admission is dropped with its slot.
            Ok(Err(error)) => tracing::debug!(target: "switchboard::server", ?remote, %error, "HTTP upgrade failed"),
            Err(_) => tracing::debug!(target: "switchboard::server", ?remote, ?timeout, "HTTP upgrade timed out"),
        }
    });
    handshake::switching_protocols(&key).map(|()| full(""))
}

/// A copy of the request's head, for admission.
pub(crate) fn head<B>(request: &Request<B>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.version_mut() = request.version();
    *head.headers_mut() = request.headers().clone();
    head
}
