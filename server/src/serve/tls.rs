//! The TLS handshake on an accepted connection (cargo feature `tls`),
//! bounded by the handshake timeout; the WebSocket or HTTP handshake then
//! runs on the decrypted stream.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::tls::TlsConfig;
use crate::serve::error::ServeError;
use crate::state::hub::Hub;

/// Runs the server side of the TLS handshake on `stream` within the
/// handshake timeout; a failure is logged (at debug: port scanners and
/// clients that distrust the certificate are common) and returned.
pub(crate) async fn accept<S>(
    hub: &Hub,
    tls: &TlsConfig,
    stream: S,
    remote: Option<SocketAddr>,
) -> Result<TlsStream<S>, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timeout = hub.settings().handshake_timeout;
    let acceptor = TlsAcceptor::from(std::sync::Arc::clone(&tls.server));
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => {
            tracing::debug!(target: "switchboard::server", ?remote, %error, "TLS handshake failed");
            Err(ServeError::Tls(error))
        }
        Err(_elapsed) => {
            tracing::debug!(target: "switchboard::server", ?remote, ?timeout, "TLS handshake timed out");
            Err(ServeError::HandshakeTimeout(timeout))
        }
    }
}
