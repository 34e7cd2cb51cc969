//! Switchboard: a WebSocket JSON-RPC 2.0 hub.
//!
//! One long-lived WebSocket per peer, many calls in flight on it at once, in
//! both directions, plus server push. This facade re-exports the three
//! crates:
//!
//! - [`shared`]: the protocol core (codec, method registry, peer engine);
//! - [`server`]: the hub (listener, auth, registry, push, limits);
//! - [`client`]: calls, timeouts, reconnect, failover, subscriptions.
//!
//! [`demo`] is the hub that `switchboard serve` runs.

pub mod demo;

pub use switchboard_client as client;
pub use switchboard_server as server;
pub use switchboard_shared as shared;

/// The README's Rust snippets compile as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
