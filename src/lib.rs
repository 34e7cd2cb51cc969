//! Switchboard: a WebSocket JSON-RPC 2.0 hub.
pub use switchboard_client as client;
pub use switchboard_server as server;
pub use switchboard_shared as shared;
