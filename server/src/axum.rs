//! axum integration (cargo feature `axum`): the hub as a route of your own
//! [`Router`], next to your handlers and tower-http's file services.
//!
//! - [`route`] answers WebSocket upgrades with the hub, after the same
//!   admission checks as the server's own listener (shutdown, origin,
//!   connection limit, authenticator); a plain GET gets 426. It works under
//!   any server that keeps hyper's upgrade in the request (`axum::serve`
//!   does); the client's address comes from axum's `ConnectInfo`, when set.
//! - [`serve`] runs a router through the server's one accept loop, so
//!   `max_pending_handshakes` and `handshake_timeout` bound it, it sets
//!   `ConnectInfo<SocketAddr>` on every request, and `ServerHandle::shutdown`
//!   stops it (the hub is stopped once it has closed). Under `axum::serve`
//!   instead, those are axum's to configure.
//!
//! axum's own `WebSocketUpgrade` is built on another tokio-tungstenite than
//! this crate's, so the route takes hyper's raw upgrade instead; the
//! `ws` feature of axum is not needed.
//!
//! ```no_run
//! use axum::Router;
//! use switchboard_server::Server;
//! use switchboard_shared::Methods;
//! use tower_http::services::ServeDir;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Server::builder().build(Methods::new()).handle();
//! let app = Router::new()
//!     .route("/ws", switchboard_server::axum::route(hub.clone()))
//!     .fallback_service(ServeDir::new("public"));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let addr = switchboard_server::axum::serve(&hub, listener, app)?;
//! println!("http://{addr}/");
//! hub.stopped().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use ::axum::Router;
use ::axum::body::Body;
use ::axum::extract::{ConnectInfo, Request};
use ::axum::routing::{MethodRouter, any};
use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::error::ListenError;
use crate::handle::ServerHandle;
use crate::web;

/// The hub as an axum route: mount it with `Router::route(path, route(hub))`.
/// See the [module docs](self).
pub fn route<S>(hub: ServerHandle) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    any(move |request: Request| {
        let hub = hub.clone();
        async move {
            let remote = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
            web::hub_response(&hub, request, remote).await.map(Body::new)
        }
    })
}

/// Serves `router` on `listener` (HTTP/1.1, upgrades) through the server's
/// one accept loop, on a background task, until the hub shuts down; returns
/// the bound address, which the hub reports as its `local_addr` when it has
/// no other. See the [module docs](self). Must be called within a Tokio runtime.
pub fn serve(hub: &ServerHandle, listener: TcpListener, router: Router) -> Result<SocketAddr, ListenError> {
    web::listen_http(hub, listener, move |remote| {
        let service = TowerToHyperService::new(router.clone());
        service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            service.call(request)
        })
    })
}
