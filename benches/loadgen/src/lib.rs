//! Shared pieces of Switchboard's load generator and raw baseline server.
//!
//! - [`scan`]: a small top-level JSON object scanner that finds the JSON-RPC
//!   fields of a frame without building a tree (strings are skipped with
//!   `memchr`, so a 16 KiB echo reply costs about as much as a memcpy).
//! - [`sys`]: process facts read from `/proc` (resident memory, CPU time)
//!   and the file descriptor limit.
//! - [`target`]: turning a `ws://` URL into a loopback socket address, and
//!   refusing anything that is not on this machine.
//! - [`wire`]: the client side of a connection, lean or tokio-tungstenite.

pub mod scan;
pub mod sys;
pub mod target;
pub mod wire;
