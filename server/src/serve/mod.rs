//! The serving layer: how connections get into the server. The one accept
//! loop, the handshake and its admission checks, and the start of a
//! connection on the peer engine. Imports [`state`](crate::state) and
//! [`config`](crate::config), never the API above it.

pub(crate) mod accept;
pub(crate) mod admission;
pub(crate) mod connection;
pub(crate) mod error;
pub(crate) mod handshake;
pub(crate) mod observe;
pub(crate) mod read_ahead;
