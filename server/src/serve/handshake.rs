//! The WebSocket handshake: the checks that make an HTTP request a valid
//! upgrade, shared by every way in, and the server's own handshake on an
//! accepted stream (read the request head, admit, answer, upgrade), all
//! within the handshake timeout. A request that is not an upgrade (a
//! JSON-RPC POST, a CORS preflight) is handed to the HTTP server instead,
//! when the listener serves HTTP too.

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use switchboard_shared::tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use switchboard_shared::transport::ServerSocket;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::serve::admission::{self, Admitted, Refusal};
use crate::serve::error::ServeError;
use crate::state::hub::Hub;

/// The longest request head read (request line and headers).
const MAX_HEAD: usize = 16 << 10;
/// The most headers one request head may have.
const MAX_HEADERS: usize = 64;
/// Bytes asked of the stream per read of the request head.
const HEAD_READ: usize = 1024;

/// Whether `request` asks for a WebSocket upgrade (`GET`, `Connection:
/// upgrade`, `Upgrade: websocket`).
pub(crate) fn is_websocket_upgrade<B>(request: &http::Request<B>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    request.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
}

/// The `Sec-WebSocket-Accept` value for a valid upgrade request, or why it
/// is not one (400, or 426 for a WebSocket version other than 13).
pub(crate) fn accept_key<B>(request: &http::Request<B>) -> Result<String, Refusal> {
    if !is_websocket_upgrade(request) {
        return Err(Refusal::NotUpgrade { status: StatusCode::BAD_REQUEST, reason: "not a WebSocket upgrade request" });
    }
    let version = request.headers().get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok());
    if version.map(str::trim) != Some("13") {
        return Err(Refusal::NotUpgrade {
            status: StatusCode::UPGRADE_REQUIRED,
            reason: "WebSocket version 13 is required",
        });
    }
    match request.headers().get(header::SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(derive_accept_key(key.as_bytes())),
        None => Err(Refusal::NotUpgrade { status: StatusCode::BAD_REQUEST, reason: "Sec-WebSocket-Key is missing" }),
    }
}

/// The `101 Switching Protocols` answer to an admitted upgrade.
pub(crate) fn switching_protocols(accept_key: &str) -> http::Response<()> {
    let mut response = http::Response::new(());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// What the server's own handshake does with a request that is not a
/// WebSocket upgrade (`GET` with `Connection: upgrade`, `Upgrade: websocket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OtherRequests {
    /// Refuse it (400): the stream is for a WebSocket only.
    Refuse,
    /// Hand the connection to the HTTP server (cargo feature `http`).
    #[cfg(feature = "http")]
    ServeHttp,
}

/// How a stream's handshake ended.
#[allow(clippy::large_enum_variant, reason = "returned once per handshake, never stored")]
pub(crate) enum Handshake<S> {
    /// Upgraded and admitted: serve it as a hub connection.
    WebSocket(ServerSocket<S>, Admitted),
    /// An HTTP request that is not an upgrade (`OtherRequests::ServeHttp`):
    /// `read` holds every byte read from `stream` so far, its head first.
    #[cfg(feature = "http")]
    Http { stream: S, read: Vec<u8> },
}

/// What the timed part of the handshake decided.
#[allow(clippy::large_enum_variant, reason = "returned once per handshake, never stored")]
enum Step {
    Upgraded {
        rest: Vec<u8>,
        admitted: Admitted,
    },
    #[cfg(feature = "http")]
    Http(Vec<u8>),
}

/// Performs the server side of the upgrade on `stream`: reads the request
/// head, runs the admission checks (the authenticator may await), answers,
/// and upgrades; all within the handshake timeout. A request that is not an
/// upgrade is refused or handed over, as `other` says.
pub(crate) async fn upgrade<S>(
    hub: &Hub,
    mut stream: S,
    remote: Option<SocketAddr>,
    other: OtherRequests,
) -> Result<Handshake<S>, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timeout = hub.settings().handshake_timeout;
    let handshake = async {
        let (request, mut read, end) = match read_head(&mut stream).await? {
            Ok(head) => head,
            Err(refusal) => return Err(refuse(&mut stream, refusal).await),
        };
        #[cfg(feature = "http")]
        if other == OtherRequests::ServeHttp && !is_websocket_upgrade(&request) {
            return Ok(Step::Http(read));
        }
        let _ = other;
        let key = match accept_key(&request) {
            Ok(key) => key,
            Err(refusal) => return Err(refuse(&mut stream, refusal).await),
        };
        let admitted = match admission::admit(hub, request, remote).await {
            Ok(admitted) => admitted,
            Err(refusal) => return Err(refuse(&mut stream, refusal).await),
        };
        write_response(&mut stream, &switching_protocols(&key), "").await.map_err(ServeError::Handshake)?;
        Ok(Step::Upgraded { rest: read.split_off(end), admitted })
    };
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(Step::Upgraded { rest, admitted })) => {
            let ws = ServerSocket::from_partially_read(stream, rest, Some(hub.ws_config())).await;
            Ok(Handshake::WebSocket(ws, admitted))
        }
        #[cfg(feature = "http")]
        Ok(Ok(Step::Http(read))) => Ok(Handshake::Http { stream, read }),
        Ok(Err(error)) => {
            if let ServeError::Handshake(e) = &error {
                tracing::debug!(target: "switchboard::server", remote = ?remote, error = %e, "handshake failed");
            }
            Err(error)
        }
        Err(_elapsed) => {
            crate::serve::observe::handshake_timed_out(hub);
            tracing::debug!(target: "switchboard::server", remote = ?remote, ?timeout, "handshake timed out");
            Err(ServeError::HandshakeTimeout(timeout))
        }
    }
}

/// Answers a refused request and says why it was not served.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, refusal: Refusal) -> ServeError {
    let response = refusal.response();
    let (parts, body) = response.into_parts();
    let response = http::Response::from_parts(parts, ());
    // The client may be gone already; the refusal is what matters.
    let _ = write_response(stream, &response, &body).await;
    let _ = stream.shutdown().await;
    refusal.into_error()
}

/// Reads one HTTP/1.1 request head; returns it, every byte read, and where
/// the head ends in them; or the refusal for a head that is not a valid request.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Result<(http::Request<()>, Vec<u8>, usize), Refusal>, ServeError> {
    let bad = |reason| Refusal::NotUpgrade { status: StatusCode::BAD_REQUEST, reason };
    let mut buf = Vec::with_capacity(HEAD_READ);
    loop {
        // Straight into the buffer: a chunk on the stack would be kept in the
        // handshake task's state, which every connection pays for.
        buf.reserve(HEAD_READ);
        let n = stream.read_buf(&mut buf).await.map_err(ServeError::Handshake)?;
        if n == 0 {
            return Err(ServeError::Handshake(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let end = match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(end)) => end,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Ok(Err(Refusal::NotUpgrade {
                    status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    reason: "the request head is too large",
                }));
            }
            Err(_) => return Ok(Err(bad("not an HTTP/1.1 request"))),
        };
        let mut request = http::Request::new(());
        *request.method_mut() = match Method::from_bytes(parsed.method.unwrap_or("").as_bytes()) {
            Ok(method) => method,
            Err(_) => return Ok(Err(bad("not an HTTP/1.1 request"))),
        };
        *request.uri_mut() = match parsed.path.unwrap_or("/").parse() {
            Ok(uri) => uri,
            Err(_) => return Ok(Err(bad("the request target is not a valid URI"))),
        };
        *request.version_mut() = http::Version::HTTP_11;
        let target = request.headers_mut();
        for h in parsed.headers.iter() {
            match (header::HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value)) {
                (Ok(name), Ok(value)) => {
                    target.append(name, value);
                }
                _ => return Ok(Err(bad("a request header is not valid"))),
            }
        }
        if parsed.version != Some(1) {
            return Ok(Err(bad("an HTTP/1.1 request is required")));
        }
        return Ok(Ok((request, buf, end)));
    }
}

/// Writes a response head and `body` (with its `Content-Length` unless 101).
async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &http::Response<()>,
    body: &str,
) -> std::io::Result<()> {
    let status = response.status();
    let mut out = format!("HTTP/1.1 {} {}\r\n", status.as_str(), status.canonical_reason().unwrap_or(""));
    for (name, value) in response.headers() {
        out.push_str(name.as_str());
        out.push_str(": ");
        out.push_str(value.to_str().unwrap_or(""));
        out.push_str("\r\n");
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        out.push_str(&format!("content-length: {}\r\nconnection: close\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    stream.write_all(out.as_bytes()).await?;
    stream.flush().await
}
