//! Shared pieces of Switchboard's load generator and raw baseline server.
//!
//! - [`scan`]: a small top-level JSON object scanner that finds the JSON-RPC
//!   fields of a frame without building a tree (strings are skipped with
//!   `memchr`, so a 16 KiB echo reply costs about as much as a memcpy).
//! - [`sys`]: process facts read from `/proc` (resident memory, CPU time)
//!   and the file descriptor limit.
//! - [`target`]: turning a `ws://`, `wss://`, `http://` or `https://` URL
//!   into a loopback socket address, and refusing anything that is not on
//!   this machine.
//! - [`wire`]: the client side of a connection, lean or tokio-tungstenite,
//!   WebSocket or HTTP POST.
//! - [`http`]: the lean HTTP/1.1 client (keep-alive, pipelined POSTs).
//! - [`stream`]: a connection's halves, plain TCP or TLS.
//! - [`tls`]: the TLS client trusting `--ca`, and throwaway certificates.

pub mod http;
pub mod scan;
pub mod stream;
pub mod sys;
pub mod target;
pub mod tls;
pub mod wire;
