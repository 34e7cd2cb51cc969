//! HTTP integration (cargo feature `web`): the hub shares a port with a web
//! app. One hyper 1 HTTP/1.1 server answers WebSocket upgrades on the hub's
//! path with the hub (same admission checks as [`Server::listen`](crate::Server::listen):
//! shutdown, origin, connection limit, authenticator) and serves static
//! files on the other paths.
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
//! An application with its own hyper service uses [`WebServer::respond`]
//! in it, or [`ServerHandle::admit`] and [`ServerHandle::serve_websocket`].
//!
//! Static files are read whole per request and sent with `Cache-Control:
//! no-cache`; paths are percent-decoded, `..` and hidden (`.name`) segments
//! are refused, and a file must resolve (symlinks followed) inside its
//! directory. It is meant for a dashboard's few files, not as a CDN.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use switchboard_shared::tokio_tungstenite::WebSocketStream;
use switchboard_shared::tokio_tungstenite::tungstenite::protocol::Role;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::error::ListenError;
use crate::handle::ServerHandle;
use crate::serve::accept::{self, PendingHandshake};
use crate::serve::handshake;

/// The body of every response this module makes.
pub type Body = Full<Bytes>;

/// Where requests under one path go.
#[derive(Debug, Clone)]
enum Mount {
    /// Files under a directory.
    Dir(PathBuf),
    /// One file at exactly one path.
    File(PathBuf),
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
        self.mount(prefix, Mount::Dir(dir.into()))
    }

    /// Serves one file at exactly `path`.
    pub fn file(self, path: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        self.mount(with_leading_slash(path.into()), Mount::File(file.into()))
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
        self.hub.start_background();
        let hub = Arc::clone(self.hub.hub());
        tracing::info!(target: "switchboard::server", hub_path = %self.hub_path, "serving HTTP");
        let app = Arc::new(self);
        accept::listen(&hub, listener, "HTTP", move |stream, remote, pending| {
            serve_http(Arc::clone(&app), stream, remote, pending)
        })
        .map_err(ListenError::LocalAddr)
    }

    /// Answers one request: the hub's upgrade, a static file, or 404. For
    /// embedding in another hyper service.
    pub async fn respond<B>(&self, request: Request<B>, remote: Option<SocketAddr>) -> Response<Body> {
        let path = request.uri().path();
        if path == self.hub_path {
            return if handshake::is_websocket_upgrade(&request) {
                upgrade(&self.hub, request, remote).await
            } else {
                let mut response =
                    text(StatusCode::UPGRADE_REQUIRED, "this is the Switchboard hub: connect with a WebSocket\n");
                response.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                response
            };
        }
        for (prefix, mount) in &self.mounts {
            let rest = match mount {
                Mount::File(_) if path == prefix => "",
                Mount::Dir(_) if path.starts_with(prefix.as_str()) => &path[prefix.len()..],
                Mount::Dir(_) if path == prefix.trim_end_matches('/') => "",
                _ => continue,
            };
            let head = match *request.method() {
                Method::GET => false,
                Method::HEAD => true,
                _ => {
                    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
                    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                    return response;
                }
            };
            let file = match mount {
                Mount::File(file) => Some(file.clone()),
                Mount::Dir(dir) => resolve(dir, rest).await,
            };
            return match file {
                Some(file) => send_file(&file, head).await,
                None => not_found(),
            };
        }
        not_found()
    }
}

fn with_leading_slash(path: String) -> String {
    if path.starts_with('/') { path } else { format!("/{path}") }
}

/// Serves one HTTP/1.1 connection (keep-alive, upgrades).
/// The connection counts against `max_pending_handshakes` until its first
/// request has arrived (or it has ended, or timed out waiting for one).
async fn serve_http(app: Arc<WebServer>, stream: TcpStream, remote: SocketAddr, pending: PendingHandshake) {
    let _ = stream.set_nodelay(true);
    let hub = app.hub.clone();
    let pending = Mutex::new(pending);
    let service = service_fn(move |request| {
        pending.lock().done();
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(app.respond(request, Some(remote)).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(hub.hub().settings().handshake_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let outcome = tokio::select! {
        outcome = connection.as_mut() => outcome,
        () = hub.hub().stopped_running() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = outcome {
        tracing::debug!(target: "switchboard::server", %remote, %error, "HTTP connection ended with an error");
    }
}

/// Upgrades `request` to a hub connection and returns the response to send:
/// `101 Switching Protocols`, or the refusal (400 for a malformed upgrade,
/// 426 for a WebSocket version other than 13, else the admission's 401, 403
/// or 503). The socket is served once hyper hands it over, which must
/// happen within the hub's handshake timeout. Needs a Tokio runtime.
pub(crate) async fn upgrade<B>(
    hub: &ServerHandle,
    mut request: Request<B>,
    remote: Option<SocketAddr>,
) -> Response<Body> {
    let admitted = match handshake::accept_key(&request) {
        Ok(key) => hub.admit(&request, remote).await.map(|admission| (key, admission)).map_err(|r| r.response()),
        Err(refusal) => Err(refusal.response()),
    };
    let (key, admission) = match admitted {
        Ok(admitted) => admitted,
        Err(refused) => return refused.map(|body| Full::new(Bytes::from(body))),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let hub = hub.clone();
    let timeout = hub.hub().settings().handshake_timeout;
    tokio::spawn(async move {
        match tokio::time::timeout(timeout, on_upgrade).await {
            Ok(Ok(upgraded)) => {
                let config = hub.websocket_config();
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                hub.serve_websocket(ws, admission);
            }
            // The admission is dropped with its slot.
            Ok(Err(error)) => tracing::debug!(target: "switchboard::server", ?remote, %error, "HTTP upgrade failed"),
            Err(_) => tracing::debug!(target: "switchboard::server", ?remote, ?timeout, "HTTP upgrade timed out"),
        }
    });
    handshake::switching_protocols(&key).map(|()| Body::default())
}

/// A plain-text response.
fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// The file `rest` (a percent-encoded path below a mount) names under `dir`,
/// or `None` when it names something outside it or hidden.
async fn resolve(dir: &Path, rest: &str) -> Option<PathBuf> {
    let decoded = percent_decode(rest)?;
    let mut path = dir.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            s if s.starts_with('.') || s.contains(['\\', '\0']) => return None,
            s => path.push(s),
        }
    }
    if tokio::fs::metadata(&path).await.ok()?.is_dir() {
        path.push("index.html");
    }
    // Symlinks may not lead out of the directory.
    let (root, real) = (tokio::fs::canonicalize(dir).await.ok()?, tokio::fs::canonicalize(&path).await.ok()?);
    real.starts_with(&root).then_some(real)
}

/// Decodes `%XX` escapes; `None` for a bad escape or text that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The Content-Type for a file name.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("txt" | "md" | "ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn send_file(path: &Path, head: bool) -> Response<Body> {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        Err(e) => {
            tracing::warn!(target: "switchboard::server", path = %path.display(), error = %e, "static file unreadable");
            return not_found();
        }
    };
    let length = bytes.len();
    let mut response = Response::new(if head { Body::default() } else { Full::new(Bytes::from(bytes)) });
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if head {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_refuses_bad_escapes() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%2e%2E").as_deref(), Some(".."));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[tokio::test]
    async fn resolve_stays_inside_the_directory() {
        let dir = std::env::temp_dir().join(format!("switchboard-web-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("index.html"), "i").unwrap();
        std::fs::write(dir.join("sub/a.js"), "a").unwrap();
        std::fs::write(dir.join(".secret"), "s").unwrap();
        let real = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(resolve(&dir, "").await, Some(real.join("index.html")));
        assert_eq!(resolve(&dir, "sub/a.js").await, Some(real.join("sub/a.js")));
        assert_eq!(resolve(&dir, "sub/../index.html").await, None);
        assert_eq!(resolve(&dir, "%2e%2e/etc/passwd").await, None);
        assert_eq!(resolve(&dir, ".secret").await, None);
        assert_eq!(resolve(&dir, "missing.js").await, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type(Path::new("a/app.JS")), "text/javascript; charset=utf-8");
        assert_eq!(content_type(Path::new("index.html")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("blob")), "application/octet-stream");
    }
}
