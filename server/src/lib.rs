//! Switchboard's server: a WebSocket JSON-RPC 2.0 hub that many long-lived
//! clients connect to, that answers their calls, calls them back, and
//! pushes to them.
//!
//! Every connection runs on the shared peer engine
//! ([`switchboard_shared::peer`]); this crate adds what only a server has:
//!
//! - [`ServerBuilder`]: every limit and policy, with its default;
//! - [`listen`](Server::listen): the one accept loop, with the handshake:
//!   check origin (same origin by default, [`OriginPolicy`]), connection
//!   limits (in all and per client address) and the authenticator
//!   (synchronous [`Authenticator`] or awaiting [`AsyncAuthenticator`];
//!   credentials may expire and be refreshed), then upgrade; called once
//!   per interface ([`Listen`]: `ws://`, and newline-delimited JSON-RPC on
//!   `tcp://` and `unix:` raw sockets), one server behind them all;
//! - a **registry** of live connections and topics, behind [`ServerHandle`]:
//!   call, notify, broadcast, publish, [`call_many`](ServerHandle::call_many),
//!   graceful [`shutdown`](ServerHandle::shutdown);
//! - **topic streams** through a [`Broker`] (the in-process [`MemoryBroker`]
//!   by default): every publication gets an offset within the topic's epoch
//!   and is kept in history, so a positioned subscriber can resume after
//!   the last offset it saw ([`ServerHandle::publish`], and the README's
//!   "Topic streams" for the wire); with the cargo feature `redis`,
//!   `RedisBroker` shares topic streams between several hub processes
//!   through Redis, so they act as one;
//! - a **cluster** (optional, [`ServerBuilder::cluster`]; `RedisCluster`
//!   with the cargo feature `redis`): several hubs act as one for calls,
//!   notifications, pushes and `call_many` by connection id or topic, and
//!   for presence ([`ServerHandle::presence`]);
//! - the built-in methods `rpc.discover`, `rpc.subscribe`, `rpc.unsubscribe` and `rpc.history` ([`Builtins`]);
//! - [`ServerContext`]: the server as handlers see it, with the
//!   connection's typed [`identity`](ServerContext::identity);
//! - two ways to hand the server a connection yourself:
//!   [`serve_stream`](ServerHandle::serve_stream) for an accepted stream (the
//!   whole handshake), and [`admit`](ServerHandle::admit) then
//!   [`serve_websocket`](ServerHandle::serve_websocket) for an HTTP layer
//!   that upgrades by itself;
//! - [`app_heartbeat`]: `rpc.heartbeat` notifications for browsers (opt-in);
//! - JSON-RPC over HTTP POST on the hub's own port (cargo feature `http`):
//!   one request or a batch per POST, the same methods, limits, origin
//!   policy and authenticator; CORS with [`ServerBuilder::cors`];
//! - TLS in the process (cargo feature `tls`): [`ServerBuilder::tls`] with
//!   a [`TlsConfig`] serves `wss://` and `https://` on the same port;
//! - `web` (cargo feature `web`): a hyper HTTP server for the hub plus static files;
//! - `axum` (cargo feature `axum`): the hub as a route of an axum `Router`;
//! - [`operations`]: Prometheus metrics (cargo feature `metrics`), health
//!   and readiness endpoints, and [`on_call`](ServerBuilder::on_call) hooks
//!   and the `switchboard::audit` log that see every call.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchboard_server::{Server, ServerContext};
//! use switchboard_shared::{Context, ErrorObject, Methods};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut methods = Methods::new();
//! methods.register("say", |(text,): (String,), cx: Context| async move {
//!     let position = cx.server()?.publish("chat", "said", [&text])?.await?;
//!     Ok::<_, ErrorObject>(position.offset)
//! });
//! let server = Server::builder().build(methods).listen("127.0.0.1:9000").await?;
//! tokio::signal::ctrl_c().await?;
//! server.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

// The layers, bottom up; `use crate::` arrows only point down
// (api → serve → state → config), which `tests/layers.rs` checks.
mod config;
mod serve;
mod state;

// The API on top.
pub mod app_heartbeat;
#[cfg(feature = "axum")]
pub mod axum;
mod builder;
mod builtin;
mod call;
mod context;
mod error;
mod handle;
mod listen;
pub mod operations;
mod push;
mod server;
mod streams;
#[cfg(feature = "web")]
pub mod web;

pub use builder::ServerBuilder;
pub use call::ServerCall;
pub use config::auth::{AsyncAuthenticator, AuthFuture, Authenticator, Identity, Rejection, UpgradeRequest};
pub use config::cors::CorsPolicy;
pub use config::listen::{InvalidListen, Listen, Listening, RawSockets};
pub use config::origin::{InvalidOrigin, MissingOrigin, OriginPattern, OriginPolicy};
pub use config::settings::defaults;
pub use config::subscriptions::{Builtins, SubscriptionDecision};
#[cfg(feature = "metrics")]
pub use config::telemetry::Metrics;
#[cfg(feature = "tls")]
pub use config::tls::{TlsConfig, TlsError};
pub use config::topics::{ConflationKey, HistoryLimits, SlowConsumer};
pub use context::ServerContext;
pub use error::{CallError, DeliveryError, ListenError, NotServed};
pub use handle::ServerHandle;
pub use operations::NotReady;
pub use push::Answer;
pub use serve::admission::{Admission, Refused};
pub use serve::error::ServeError;
pub use server::Server;
pub use state::broker::entry::StreamEntry;
pub use state::broker::history::Replay;
#[cfg(feature = "redis")]
pub use state::broker::{Addressed, RedisBroker, RedisBrokerBuilder, RedisConnectError};
pub use state::broker::{Broker, BrokerError, BrokerFuture, Fanout, HistoryPage, MemoryBroker, Snapshot};
#[cfg(feature = "redis")]
pub use state::cluster::redis::{RedisCluster, RedisClusterBuilder};
pub use state::cluster::{
    CallOutcome, Cluster, ClusterError, ClusterFuture, LocalNode, NodeId, Presence, RemoteAnswer,
};
pub use state::lifecycle::ServerPhase;
pub use state::registry::{ConnectionSummary, Target};
pub use state::telemetry::{BrokerOperation, MethodStats};
pub use streams::Published;
pub use switchboard_shared::peer::{CallEvent, Direction, Outcome};

/// Re-exported: the protocol core the server is built on.
pub use switchboard_shared as shared;
