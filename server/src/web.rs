//! HTTP integration (cargo feature `web`): the hub shares a port with a web
//! app. One hyper 1 HTTP/1.1 server answers on the hub's path as
//! [`Server::listen`](crate::Server::listen) does (WebSocket upgrades and
//! JSON-RPC POSTs, same admission checks: shutdown, origin, connection
//! limit, authenticator; CORS preflights) and serves static files on the
//! other paths, through the server's one accept loop (so
//! `max_pending_handshakes` and `handshake_timeout` bound it too, and the
//! server's TLS identity, if any, makes it `https://`).
//!
//! ```no_run
//! use switchboard_server::Server;
//! use switchboard_server::web::WebServer;
//! use switchboard_shared::Methods;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Server::builder().build(Methods::new()).handle();
//! let addr = WebServer::new(hub.clone())
//!     .hub_path("/rpc")                                   // ws://HOST/rpc
//!     .file("/switchboard.js", "client/js/switchboard.js") // one file
//!     .dir("/", "public")                                  // a directory, index.html for `/`
//!     .listen("127.0.0.1:8080")
//!     .await?;
//! println!("http://{addr}/");
//! hub.stopped().await; // `hub.shutdown(..)` also stops the HTTP listener
//! # Ok(()) }
//! ```
//!
//! Static files are served by tower-http's `ServeDir` / `ServeFile` (path
//! decoding, `..` refused, content types, `HEAD`, ranges, conditional
//! requests); on top of it, hidden path segments (`.name`) are refused. For
//! a router of your own, see the `axum` module (cargo feature `axum`).

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use tokio::net::{TcpListener, ToSocketAddrs};
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ListenError;
use crate::handle::ServerHandle;
use crate::serve::accept;
use crate::serve::http as hub_http;

/// The body of every response this module makes.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// Where requests under one path go.
#[derive(Debug, Clone)]
enum Mount {
    /// Files under a directory.
    Dir(ServeDir),
    /// One file at exactly one path.
    File(ServeFile),
}

/// An HTTP server for the hub and a few static files; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use = "a web server does nothing until `listen` is called"]
pub struct WebServer {
    hub: ServerHandle,
    hub_path: String,
    /// Longest prefix first.
    mounts: Vec<(String, Mount)>,
}

impl WebServer {
    /// A web server for `hub`, with the hub on `/rpc` and no files.
    pub fn new(hub: ServerHandle) -> Self {
        WebServer { hub, hub_path: "/rpc".into(), mounts: Vec::new() }
    }

    /// Sets the path whose WebSocket upgrades go to the hub (default `/rpc`).
    /// A plain GET of it gets 426 "Upgrade Required".
    pub fn hub_path(mut self, path: impl Into<String>) -> Self {
        self.hub_path = with_leading_slash(path.into());
        self
    }

    /// Serves the files under `dir` at `prefix` (`/` for the site root); a
    /// directory's `index.html` answers for the directory.
    pub fn dir(self, prefix: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        let mut prefix = with_leading_slash(prefix.into());
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        self.mount(prefix, Mount::Dir(ServeDir::new(dir.into())))
    }

    /// Serves one file at exactly `path`.
    pub fn file(self, path: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        self.mount(with_leading_slash(path.into()), Mount::File(ServeFile::new(file.into())))
    }

    fn mount(mut self, prefix: String, mount: Mount) -> Self {
        self.mounts.push((prefix, mount));
        self.mounts.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        self
    }

    /// Binds `addr` (port 0 picks a free port) and serves on a background
    /// task until the hub shuts down. Returns the bound address.
    pub async fn listen(self, addr: impl ToSocketAddrs + std::fmt::Display) -> Result<SocketAddr, ListenError> {
        let shown = addr.to_string();
        let listener = TcpListener::bind(addr).await.map_err(|source| ListenError::Bind { addr: shown, source })?;
        self.listen_on(listener)
    }

    /// Serves on a listener the caller has bound, until the hub shuts down.
    /// Must be called within a Tokio runtime.
    ///
    /// The hub counts it as one of its listeners: a shutdown stops it
    /// accepting, lets open HTTP connections finish their request, and the
    /// hub is stopped only once it has closed. The hub reports this address
    /// as its `local_addr` when it has no other.
    pub fn listen_on(self, listener: TcpListener) -> Result<SocketAddr, ListenError> {
        tracing::info!(target: "switchboard::server", hub_path = %self.hub_path, "serving the hub and static files");
        let hub = self.hub.clone();
        let app = Arc::new(self);
        listen_http(&hub, listener, move |remote| {
            let app = Arc::clone(&app);
            service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.respond(request, Some(remote)).await) }
            })
        })
    }

    /// Answers one request: the hub's upgrade, a static file, or 404. For
    /// embedding in another hyper service (hyper's upgrade extension must be
    /// in the request, as it is in the requests hyper hands to services).
    pub async fn respond<B>(&self, request: Request<B>, remote: Option<SocketAddr>) -> Response<Body>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let path = request.uri().path().to_owned();
        if path == self.hub_path {
            return hub_response(&self.hub, request, remote).await;
        }
        if let Some(answer) = crate::operations::respond(&self.hub, request.method(), &path).await {
            return answer.map(hub_http::full);
        }
        if path.split('/').any(is_hidden) {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        for (prefix, mount) in &self.mounts {
            let rest = match mount {
                Mount::File(_) if path == *prefix => "",
                Mount::Dir(_) if path.starts_with(prefix.as_str()) => &path[prefix.len()..],
                Mount::Dir(_) if path == prefix.trim_end_matches('/') => "",
                _ => continue,
            };
            let (mut parts, _body) = request.into_parts();
            // The directory sees the path below its prefix.
            let below = match parts.uri.query() {
                Some(query) => format!("/{rest}?{query}"),
                None => format!("/{rest}"),
            };
            parts.uri = below.parse().unwrap_or_else(|_| Uri::from_static("/"));
            let request = Request::from_parts(parts, Full::<Bytes>::default());
            let served = match mount {
                Mount::Dir(dir) => dir.clone().try_call(request).await,
                Mount::File(file) => file.clone().try_call(request).await,
            };
            return match served {
                Ok(response) => with_charset(response.map(|body| body.boxed_unsync())),
                Err(error)
                    if matches!(error.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) =>
                {
                    text(StatusCode::NOT_FOUND, "not found\n")
                }
                Err(error) => {
                    tracing::warn!(target: "switchboard::server", %path, %error, "static file unreadable");
                    text(StatusCode::INTERNAL_SERVER_ERROR, "the file could not be read\n")
                }
            };
        }
        text(StatusCode::NOT_FOUND, "not found\n")
    }
}

/// Text gets `; charset=utf-8` (the files served here are UTF-8).
fn with_charset(mut response: Response<Body>) -> Response<Body> {
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Some(text) = content_type.filter(|t| t.starts_with("text/") && !t.contains("charset"))
        && let Ok(value) = HeaderValue::from_str(&format!("{text}; charset=utf-8"))
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A hidden path segment: `.name`, or one whose first byte is an encoded dot.
fn is_hidden(segment: &str) -> bool {
    segment.starts_with('.') || segment.get(..3).is_some_and(|s| s.eq_ignore_ascii_case("%2e"))
}

fn with_leading_slash(path: String) -> String {
    if path.starts_with('/') { path } else { format!("/{path}") }
}

/// Serves HTTP/1.1 on `listener` through the server's one accept loop (TLS
/// first when the server has a TLS identity), with the service `make`
/// builds for each connection (given the client's address), until the hub
/// shuts down.
pub(crate) fn listen_http<M, S, B>(
    hub: &ServerHandle,
    listener: TcpListener,
    make: M,
) -> Result<SocketAddr, ListenError>
where
    M: Fn(SocketAddr) -> S + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    hub.start_background();
    let server = Arc::clone(hub.hub());
    accept::listen(hub.hub(), listener, "HTTP", move |stream, remote, pending| {
        let _ = stream.set_nodelay(true);
        let (hub, service) = (Arc::clone(&server), make(remote));
        async move {
            #[cfg(feature = "tls")]
            if let Some(tls) = &hub.settings().tls {
                if let Ok(stream) = crate::serve::tls::accept(&hub, tls, stream, Some(remote)).await {
                    hub_http::serve_connection(hub, stream, Some(remote), pending, service).await;
                }
                return;
            }
            hub_http::serve_connection(hub, stream, Some(remote), pending, service).await;
        }
    })
    .map_err(ListenError::LocalAddr)
}

/// The hub's answer on its path: the WebSocket upgrade, JSON-RPC over
/// POST, a CORS preflight, 426 for a plain GET, 405 for other methods
/// (see the `http` table in the README).
pub(crate) async fn hub_response<B>(
    hub: &ServerHandle,
    request: Request<B>,
    remote: Option<SocketAddr>,
) -> Response<Body>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    hub_http::respond(hub.hub(), request, remote).await
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    hub_http::text(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_segments_are_recognised_encoded_or_not() {
        assert!(is_hidden(".env"));
        assert!(is_hidden("%2Eenv"));
        assert!(is_hidden("%2e%2e"));
        assert!(!is_hidden("app.js"));
        assert!(!is_hidden(""));
    }
}
