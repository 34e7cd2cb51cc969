//! Switchboard's server: a WebSocket JSON-RPC 2.0 hub that many long-lived
//! clients connect to, that answers their calls, calls them back, and
//! pushes to them.
//!
//! Every connection runs on the shared peer engine
//! ([`switchboard_shared::peer`]); this crate adds what only a server has:
//!
//! - [`ServerBuilder`]: every limit and policy, with its default;
//! - [`listener`](Server::listen) and [`handshake`](ServerHandle::serve_connection):
//!   accept, check origin, connection limit and [`auth`], upgrade;
//! - a **registry** of live connections and topics, behind [`ServerHandle`]:
//!   call, notify, broadcast, publish, [`call_many`](ServerHandle::call_many),
//!   graceful [`shutdown`](ServerHandle::shutdown);
//! - the built-in `rpc.subscribe` / `rpc.unsubscribe` ([`Builtins`]);
//! - [`ServerContext`]: the server as handlers see it;
//! - [`admit`](ServerHandle::admit) / [`serve_admitted`](ServerHandle::serve_admitted):
//!   the same admission checks for an HTTP layer that upgrades by itself;
//! - [`app_heartbeat`]: `rpc.heartbeat` notifications for browsers (opt-in);
//! - `web` (cargo feature `web`): a hyper HTTP server for the hub plus static files.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchboard_server::{Server, ServerContext};
//! use switchboard_shared::{Context, ErrorObject, Methods};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut methods = Methods::new();
//! methods.register("say", |(text,): (String,), cx: Context| async move {
//!     let heard = cx.server()?.publish("chat", "said", [&text])?;
//!     Ok::<_, ErrorObject>(heard)
//! });
//! let server = Server::builder().build(methods).listen("127.0.0.1:9000").await?;
//! tokio::signal::ctrl_c().await?;
//! server.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

mod admission;
pub mod app_heartbeat;
pub mod auth;
mod builder;
mod builtin;
mod connection;
mod context;
mod error;
mod handle;
mod handshake;
mod hooks;
mod hub;
mod lifecycle;
mod listener;
pub mod origin;
mod push;
mod registry;
mod server;
#[cfg(feature = "web")]
pub mod web;

pub use admission::{Admission, Refused};
pub use auth::{Authenticator, Rejection, UpgradeRequest};
pub use builder::{ServerBuilder, defaults};
pub use builtin::{Builtins, SubscriptionDecision};
pub use context::ServerContext;
pub use error::{CallError, ListenError, NotServed, PushError, ServeError};
pub use handle::ServerHandle;
pub use lifecycle::Phase;
pub use origin::{MissingOrigin, OriginPolicy};
pub use push::Answer;
pub use registry::{ConnectionSummary, Target};
pub use server::Server;

/// Re-exported: the protocol core the server is built on.
pub use switchboard_shared as shared;
