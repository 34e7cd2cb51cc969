//! Switchboard's protocol core: the JSON-RPC 2.0 codec and the symmetric peer
//! engine that both the server and the client wrap.
//!
//! - [`codec`]: ids, error objects, one-pass frame decoding, direct encoding;
//! - [`methods`]: the registry of typed async handlers;
//! - `pending`: our outstanding calls and their timeouts (internal);
//! - `writer`: the bounded outbound queue and the coalescing writer (internal);
//! - [`peer`]: the connection task that ties them together;
//! - [`oneshot`]: answering one message without a connection (HTTP POST);
//! - [`transport`]: what a connection runs over (WebSocket, newline-delimited JSON);
//! - [`discover`]: the OpenRPC document behind `rpc.discover`;
//! - [`stream`]: the wire of topic streams (positions, `rpc.publication`, `rpc.history`);
//! - [`credentials`]: the wire of expiring credentials (`rpc.refresh`) and
//!   keeping secrets out of logs.

pub mod codec;
pub mod context;
pub mod credentials;
pub mod discover;
pub mod error;
pub mod methods;
pub mod oneshot;
pub mod peer;
pub(crate) mod pending;
pub mod stream;
pub mod transport;
pub(crate) mod writer;

pub use codec::{ErrorObject, Id, code};
pub use context::{ConnectionInfo, Context};
pub use error::Error;
pub use methods::{Dispatch, Method, MethodInfo, Methods, RpcResult};
pub use peer::{
    BatchBuilder, Cancellation, CloseReason, Heartbeat, IdGenerator, Jsonrpc1, MalformedFrames, PeerCall, PeerConfig,
    PeerHandle, RateLimit, StrayMessage,
};
pub use writer::{Overflow, Shed, Sheddable, TextHeader};

/// Re-exported so users name the same WebSocket types we do.
pub use tokio_tungstenite;
