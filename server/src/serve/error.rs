//! Why a connection handed to the server was not served.

use std::time::Duration;

use switchboard_shared::tokio_tungstenite::tungstenite;

/// Why a connection handed to the server was not served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The client did not finish the WebSocket handshake in time (a half-open
    /// or very slow client). Raise `handshake_timeout` if such clients are expected.
    #[error("the WebSocket handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The upgrade request was refused with an HTTP status before the upgrade
    /// (origin not allowed, authentication failed).
    #[error("the upgrade was refused with HTTP {status}: {reason}")]
    Refused {
        /// The HTTP status sent to the client.
        status: u16,
        /// Why, as sent in the response body.
        reason: String,
    },
    /// The connection limit is reached (the client got HTTP 503, or close
    /// 1013 for an already-upgraded socket). Retry later or raise `max_connections`.
    #[error("the connection limit of {limit} is reached")]
    TooManyConnections {
        /// The configured `max_connections`.
        limit: usize,
    },
    /// The server is shutting down and accepts no new connections.
    #[error("the server is shutting down and accepts no new connections")]
    ShuttingDown,
    /// The bytes on the socket were not a valid WebSocket upgrade, or the
    /// socket failed during it.
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(#[source] Box<tungstenite::Error>),
}
