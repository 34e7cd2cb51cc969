//! Switchboard: a WebSocket JSON-RPC 2.0 hub.
//!
//! One long-lived WebSocket per peer, many calls in flight on it at once, in
//! both directions, plus server push. This facade re-exports the three
//! crates as modules, so everything is named from here:
//!
//! - [`shared`]: the protocol core (codec, method registry, peer engine);
//! - [`server`]: the hub (listener, auth, registry, push, limits);
//! - [`client`]: calls, timeouts, reconnect, failover, subscriptions.
//!
//! ```
//! use switchboard::client::{Client, Subscription};
//! use switchboard::server::{Server, ServerContext, ServerHandle};
//! use switchboard::shared::{Context, ErrorObject, Methods};
//! use switchboard::shared::discover::Document;
//! # let _ = (Client::builder, Server::builder);
//! # fn names(_: Option<(Subscription, ServerHandle, Context, ErrorObject, Methods, Document)>) {}
//! # fn server_of(cx: &Context) -> Option<ServerHandle> { cx.server().ok() }
//! ```
//!
//! [`rpc`] turns a trait into a typed API: the server's registration, the
//! typed callers, typed [`topic`]s and the discovery entries, from one
//! definition.
//!
//! [`demo`] is the hub that `switchboard serve` runs; [`logging`] is how
//! Switchboard's programs log (plain text off a terminal, credentials kept
//! out).

pub mod codegen;
pub mod demo;
pub mod logging;
pub mod topic;
mod typed;

#[doc(inline)]
pub use switchboard_macros::rpc;

/// What the code [`rpc`] generates names: not an API of its own, and not
/// covered by semver.
#[doc(hidden)]
pub mod __private {
    pub use std::sync::Arc;
    pub use std::time::Duration;

    pub use serde::Serialize;
    pub use switchboard_client::{Call, Client};
    pub use switchboard_server::{Answer, CallError, DeliveryError, ServerCall, ServerHandle, Target};
    pub use switchboard_shared::discover::{MethodDoc, TopicDoc};
    pub use switchboard_shared::{Context, Error, ErrorObject, Method, MethodInfo, Methods, PeerCall, PeerHandle};
    pub use uuid::Uuid;

    pub use crate::topic::{Publisher, Subscriber, Topic};
    pub use crate::typed::{
        Slots, absent, assemble, decode, docs, info, info_whole, method, method_sync, param, result, whole, whole_sync,
    };
}

/// The client: multiplexed calls, timeouts, batches, subscriptions,
/// reconnect with backoff, round-robin and failover, relays. Everything of
/// the `switchboard-client` crate, named `switchboard::client::...`.
pub mod client {
    #[doc(inline)]
    pub use switchboard_client::*;
}

/// The hub: listener, handshake (auth, origin, limits), connection and topic
/// registry, push, graceful shutdown. Everything of the `switchboard-server`
/// crate, named `switchboard::server::...`.
pub mod server {
    #[doc(inline)]
    pub use switchboard_server::*;
}

/// The protocol core: codec, method registry, pending calls, outbound queue,
/// the peer engine, discovery. Everything of the `switchboard-shared` crate,
/// named `switchboard::shared::...`.
pub mod shared {
    #[doc(inline)]
    pub use switchboard_shared::*;
}

/// The README's Rust snippets compile as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
