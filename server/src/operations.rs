//! Operating a server: what load balancers, Kubernetes and Prometheus ask
//! of it over HTTP, and the same facts in Rust.
//!
//! | request | answer |
//! |---|---|
//! | `GET /metrics` | 200, the server's metrics in the Prometheus text format (0.0.4); 404 when metrics are off or the cargo feature `metrics` is not built |
//! | `GET /healthz` | 200 `ok` while the process serves HTTP at all (liveness) |
//! | `GET /readyz` | 200 `ready` while the server accepts connections and its broker is reachable; 503 with the reason otherwise (a shutdown has begun, the broker fails or takes over a second) |
//!
//! Where they are served:
//! - on the hub's own port (cargo feature `http`): [`Server::listen`](crate::Server::listen)
//!   answers them beside the WebSocket upgrade and HTTP POST, on every path,
//!   and so does `switchboard serve`; so do the web integration's port
//!   ([`WebServer`](crate::web::WebServer), cargo feature `web`) and the
//!   hub path of the axum integration. A hub reachable from the internet
//!   shows its metrics to anyone who asks: filter `/metrics` at the proxy,
//!   or serve them on a port of their own;
//! - on a port of their own with [`listen`] (cargo feature `http`), which
//!   keeps answering until the server has stopped: a shutdown makes the
//!   hub's own port stop accepting at once, so a readiness probe that must
//!   see `/readyz` turn 503 while connections drain asks this port
//!   (`switchboard serve --metrics-addr`);
//! - as routes of an axum `Router` with [`routes`] (cargo feature `axum`);
//! - anywhere else, with [`respond`] (framework-agnostic), or the
//!   [`ServerHandle`] methods [`metrics_text`](ServerHandle::metrics_text),
//!   [`readiness`](ServerHandle::readiness) and
//!   [`method_stats`](ServerHandle::method_stats).
//!
//! The metrics (every name starts with `switchboard_`; `docs/grafana-dashboard.json`
//! charts them, the README's "Operating the hub" says what to alert on):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `build_info` | gauge (1) | `version` |
//! | `start_time_seconds`, `uptime_seconds` | gauge | |
//! | `connections` | gauge | |
//! | `connections_opened_total` | counter | |
//! | `connections_closed_total` | counter | `reason`: remote, local, shutdown, slow_consumer, message_too_big, idle_timeout, transport |
//! | `handshakes_accepted_total` | counter | |
//! | `handshakes_refused_total` | counter | `reason`: origin, auth, auth_timeout, limit, shutting_down, timeout, invalid |
//! | `calls_total` | counter | `direction` (incoming, outgoing), `method`, `outcome` (ok, error, notification, timeout, disconnected, cancelled, failed) |
//! | `call_errors_total` | counter | `direction`, `method`, `code` |
//! | `call_duration_seconds` | histogram | `direction`, `method` |
//! | `calls_in_flight` | gauge | `direction` |
//! | `requests_parked_total` | counter | |
//! | `requests_refused_total`, `notifications_dropped_total` | counter | `reason`: busy, shutting_down, batch_too_long |
//! | `outbound_queue_bytes` | histogram across open connections | |
//! | `publications_total`, `publication_deliveries_total` | counter | |
//! | `publications_shed_total` | counter | `policy`: drop_oldest, latest_per_key |
//! | `subscriptions_resumed_total` | counter | `recovered`: true, false |
//! | `replayed_publications_total` | counter | |
//! | `broker_publish_duration_seconds` | histogram | |
//! | `broker_errors_total` | counter | `operation` |
//! | `broker_reconnects_total` | counter | |
//!
//! Labels are bounded: `method` is one of the methods the server registered
//! (built-ins included) or `other` for incoming calls, the first 64 names
//! called for outgoing ones (then `other`); `code` takes the first 64
//! distinct codes (then `other`).

use http::{Method, Response};

use crate::handle::ServerHandle;
use crate::state::telemetry::MethodStats;
pub use crate::state::telemetry::ready::NotReady;

impl ServerHandle {
    /// The server's metrics in the Prometheus text format (what `GET
    /// /metrics` answers); `None` when metrics are off.
    pub fn metrics_text(&self) -> Option<String> {
        self.hub().registry().telemetry().encode(self.hub().registry()).map(|(_, text)| text)
    }

    /// Every method's call count, error count and latency quantiles since
    /// the server was built, both directions (empty when metrics are off).
    pub fn method_stats(&self) -> Vec<MethodStats> {
        self.hub().registry().telemetry().method_stats()
    }

    /// Whether the server is ready for new connections: running (no
    /// shutdown begun) and its broker reachable (asked with
    /// [`Broker::check_ready`](crate::Broker::check_ready), within a second).
    pub async fn readiness(&self) -> Result<(), NotReady> {
        crate::state::telemetry::ready::readiness(self.hub()).await
    }
}

/// The answer to `GET` (or `HEAD`) of `/metrics`, `/healthz` or `/readyz`
/// (see the [module docs](self)); `None` for any other request, which the
/// caller answers as it would have.
pub async fn respond(hub: &ServerHandle, method: &Method, path: &str) -> Option<Response<String>> {
    crate::serve::observe::respond(hub.hub(), method, path).await
}

#[cfg(feature = "http")]
pub use listener::listen;

/// `/metrics`, `/healthz` and `/readyz` as routes of an axum `Router`, to
/// [`merge`](::axum::Router::merge) into an app (cargo feature `axum`).
///
/// ```no_run
/// # async fn run(hub: switchboard_server::ServerHandle) {
/// let app: axum::Router = axum::Router::new()
///     .route("/rpc", switchboard_server::axum::route(hub.clone()))
///     .merge(switchboard_server::operations::routes(hub.clone()));
/// # drop(app); }
/// ```
#[cfg(feature = "axum")]
pub fn routes<S>(hub: ServerHandle) -> ::axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let answer = move |request: ::axum::extract::Request| {
        let hub = hub.clone();
        async move {
            let answer = respond(&hub, request.method(), request.uri().path()).await;
            answer.unwrap_or_else(crate::serve::observe::not_found).map(::axum::body::Body::from)
        }
    };
    ["/metrics", "/healthz", "/readyz"]
        .into_iter()
        .fold(::axum::Router::new(), |router, path| router.route(path, ::axum::routing::get(answer.clone())))
}

#[cfg(feature = "http")]
mod listener {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use http::Request;
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tokio::net::{TcpListener, ToSocketAddrs};
    use tokio::sync::Semaphore;

    use crate::error::ListenError;
    use crate::handle::ServerHandle;

    /// HTTP connections the operations port serves at once; more wait in the backlog.
    const MAX_CONNECTIONS: usize = 64;

    /// Serves `/metrics`, `/healthz` and `/readyz` (anything else: 404) on
    /// `addr` (port 0 picks a free port) until the server has stopped;
    /// returns the bound address. Unlike the hub's own listeners it keeps
    /// answering while a shutdown drains connections (`/readyz` then says
    /// 503), and it does not hold the shutdown up. Each request head must
    /// arrive within the server's `handshake_timeout`; at most 64
    /// connections are served at once.
    ///
    /// ```no_run
    /// # async fn run(hub: switchboard_server::ServerHandle) -> Result<(), switchboard_server::ListenError> {
    /// let addr = switchboard_server::operations::listen(&hub, "127.0.0.1:9100").await?;
    /// println!("metrics on http://{addr}/metrics");
    /// # Ok(()) }
    /// ```
    pub async fn listen(
        hub: &ServerHandle,
        addr: impl ToSocketAddrs + std::fmt::Display,
    ) -> Result<SocketAddr, ListenError> {
        let shown = addr.to_string();
        let listener = TcpListener::bind(addr).await.map_err(|source| ListenError::Bind { addr: shown, source })?;
        let bound = listener.local_addr().map_err(ListenError::LocalAddr)?;
        tracing::info!(target: "switchboard::server", addr = %bound, "serving /metrics, /healthz and /readyz");
        tokio::spawn(accept(hub.clone(), listener));
        Ok(bound)
    }

    async fn accept(hub: ServerHandle, listener: TcpListener) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                accepted = async {
                    let slot = Arc::clone(&slots).acquire_owned().await.expect("never closed");
                    (slot, listener.accept().await)
                } => accepted,
                () = hub.stopped() => return,
            };
            let (slot, stream) = match accepted {
                (slot, Ok((stream, _remote))) => (slot, stream),
                (_, Err(error)) => {
                    tracing::warn!(target: "switchboard::server", %error, "accept failed on the operations port");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let hub = hub.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let service = service_fn(|request: Request<Incoming>| {
                    let hub = hub.clone();
                    async move {
                        let answer = super::respond(&hub, request.method(), request.uri().path()).await;
                        let response = answer.unwrap_or_else(crate::serve::observe::not_found);
                        Ok::<_, Infallible>(response.map(|body| http_body_util::Full::new(bytes::Bytes::from(body))))
                    }
                });
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(hub.hub().settings().handshake_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = served.await;
            });
        }
    }
}
