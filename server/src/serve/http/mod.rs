//! HTTP on the hub's port (cargo feature `http`): what the hub answers to
//! requests that are not WebSocket upgrades, and the hyper connection that
//! carries them.
//!
//! On the hub's path (any path for [`Server::listen`](crate::Server::listen),
//! the hub path of the `web` and `axum` integrations):
//!
//! | request | answer |
//! |---|---|
//! | `GET` with `Upgrade: websocket` | the WebSocket upgrade (admission first) |
//! | `GET /metrics`, `/healthz`, `/readyz` | the operators' answers ([`operations`](crate::operations)) |
//! | other `GET` | 426 Upgrade Required |
//! | `POST`, `Content-Type: application/json` | the JSON-RPC answer (200), or 204 when there is none ([`post`]) |
//! | `POST`, another content type | 415 Unsupported Media Type |
//! | `OPTIONS` | a CORS preflight ([`cors`]), or 204 with `Allow` |
//! | any other method | 405 Method Not Allowed, with `Allow: GET, POST, OPTIONS` |
//!
//! The server's own listener reads the first request head itself: an
//! upgrade stays on the WebSocket path (no hyper in between, the hot path
//! unchanged); anything else hands the connection, head included
//! ([`prefixed`]), to hyper, which then serves it with keep-alive (a later
//! upgrade on that connection goes through hyper's upgrade, [`upgrade`]).

pub(crate) mod cors;
pub(crate) mod post;
pub(crate) mod prefixed;
pub(crate) mod upgrade;

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::serve::accept::PendingHandshake;
use crate::serve::handshake;
use crate::state::hub::Hub;

/// The body of every response the hub makes over HTTP.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The methods the hub's path answers.
const ALLOW: &str = "GET, POST, OPTIONS";

/// The hub's answer to one HTTP request on its path (see the module docs).
/// For an upgrade, hyper's upgrade extension must be in the request (it is
/// in the requests hyper hands to services). Needs a Tokio runtime.
pub(crate) async fn respond<B>(hub: &Arc<Hub>, request: Request<B>, remote: Option<SocketAddr>) -> Response<Body>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    match *request.method() {
        Method::GET if handshake::is_websocket_upgrade(&request) => upgrade::upgrade(hub, request, remote).await,
        Method::GET => {
            if let Some(answer) = crate::serve::observe::respond(hub, request.method(), request.uri().path()).await {
                return answer.map(full);
            }
            let mut response = text(
                StatusCode::UPGRADE_REQUIRED,
                "this is the Switchboard hub: connect with a WebSocket, or POST JSON-RPC\n",
            );
            response.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            response
        }
        Method::POST => {
            let origin = request.headers().get(header::ORIGIN).cloned();
            let mut response = post::answer(hub, request, remote).await;
            cors::expose(&hub.policies().cors, origin.as_ref(), &mut response);
            response
        }
        Method::OPTIONS => cors::preflight(&hub.policies().cors, request.headers(), remote),
        _ => {
            let mut response =
                text(StatusCode::METHOD_NOT_ALLOWED, "the hub answers GET (WebSocket), POST (JSON-RPC) and OPTIONS\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            response
        }
    }
}

/// Serves one HTTP/1.1 connection (keep-alive, upgrades) with `service`
/// until the client closes it or the hub stops running. It counts against
/// `max_pending_handshakes` until its first request head has arrived (or it
/// has ended, or timed out waiting for one: `handshake_timeout` bounds
/// reading each request head); a shutdown lets the request in progress
/// finish, then closes it.
pub(crate) async fn serve_connection<I, S, B>(
    hub: Arc<Hub>,
    io: I,
    remote: Option<SocketAddr>,
    pending: PendingHandshake,
    service: S,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let pending = Mutex::new(pending);
    let service = service_fn(move |request| {
        pending.lock().done();
        service.call(request)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(hub.settings().handshake_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let outcome = tokio::select! {
        outcome = connection.as_mut() => outcome,
        () = hub.stopped_running() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = outcome {
        tracing::debug!(target: "switchboard::server", ?remote, %error, "HTTP connection ended with an error");
    }
}

/// Serves an HTTP connection whose first request head the server's own
/// handshake has read (`read`: every byte read so far), answering every
/// path as the hub's.
pub(crate) async fn serve_handed_over<S>(
    hub: Arc<Hub>,
    stream: S,
    read: Vec<u8>,
    remote: Option<SocketAddr>,
    pending: PendingHandshake,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = prefixed::Prefixed::new(read, stream);
    let service = {
        let hub = Arc::clone(&hub);
        service_fn(move |request: Request<Incoming>| {
            let hub = Arc::clone(&hub);
            async move { Ok::<_, std::convert::Infallible>(respond(&hub, request, remote).await) }
        })
    };
    serve_connection(hub, io, remote, pending, service).await;
}

/// A body of `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
