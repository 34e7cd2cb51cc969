//! The serving layer: how connections get into the server. The one accept
//! loop, TLS, the handshake and its admission checks, HTTP requests on the
//! hub's port, raw socket connections, and the start of a connection on the
//! peer engine. Imports [`state`](crate::state) and
//! [`config`](crate::config), never the API above it.

pub(crate) mod accept;
pub(crate) mod admission;
pub(crate) mod connection;
pub(crate) mod error;
pub(crate) mod handshake;
#[cfg(feature = "http")]
pub(crate) mod http;
pub(crate) mod observe;
pub(crate) mod raw;
pub(crate) mod read_ahead;
pub(crate) mod refresh;
#[cfg(feature = "tls")]
pub(crate) mod tls;
