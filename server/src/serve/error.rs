//! Why a connection handed to the server was not served.

use std::io;
use std::time::Duration;

/// Why a connection handed to the server was not served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The client did not finish the WebSocket handshake in time (a half-open
    /// or very slow client). Raise `handshake_timeout` if such clients are expected.
    #[error("the WebSocket handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The upgrade request was refused with an HTTP status before the upgrade:
    /// origin not allowed (403), authentication failed (401 / 403) or timed
    /// out (503), not a valid WebSocket upgrade request (400 / 426 / 431).
    #[error("the upgrade was refused with HTTP {status}: {reason}")]
    Refused {
        /// The HTTP status sent to the client.
        status: u16,
        /// Why, as sent in the response body.
        reason: String,
    },
    /// The connection limit is reached (the client got HTTP 503). Retry later
    /// or raise `max_connections`.
    #[error("the connection limit of {limit} is reached")]
    TooManyConnections {
        /// The configured `max_connections`.
        limit: usize,
    },
    /// The server is shutting down and accepts no new connections.
    #[error("the server is shutting down and accepts no new connections")]
    ShuttingDown,
    /// The socket failed or closed during the handshake.
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(#[source] io::Error),
    /// The TLS handshake failed (the client does not trust the certificate,
    /// speaks plain HTTP to a TLS port, or offers no common protocol version).
    #[error("the TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
}
