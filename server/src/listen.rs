//! Starting a listener of each kind ([`Listen`]): bind, check that it may
//! start, and hand it to the one accept loop with what it serves
//! (the WebSocket handshake, or lines on a raw socket).
//!
//! A Unix socket path may hold a **stale** socket file (its server died
//! without removing it): it is replaced only when it is a socket and a
//! connection to it is refused; a live socket or any other file is left
//! alone and the listener does not start.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::listen::{Listen, Listening, RawSockets};
use crate::error::ListenError;
use crate::serve::{accept, raw};
use crate::state::hub::Hub;

/// Binds `listen` and starts accepting on it.
pub(crate) async fn start(hub: &Arc<Hub>, listen: Listen) -> Result<Listening, ListenError> {
    if !matches!(listen, Listen::WebSocket(_))
        && hub.policies().authenticator.is_some()
        && hub.settings().raw_sockets == RawSockets::RefuseWithAuthenticator
    {
        return Err(ListenError::NoCredentials { listen: listen.to_string() });
    }
    match listen {
        Listen::WebSocket(addr) => {
            let listener = bind_tcp(&addr).await?;
            let addr = websocket(hub, listener)?;
            Ok(Listening::WebSocket(addr))
        }
        Listen::Tcp(addr) => {
            let listener = bind_tcp(&addr).await?;
            let addr = listener.local_addr().map_err(ListenError::LocalAddr)?;
            let listening = Listening::Tcp(addr);
            let serving = Arc::clone(hub);
            accept::listen_as(hub, listener, listening.clone(), "TCP lines", move |stream, remote, mut pending| {
                let hub = Arc::clone(&serving);
                async move {
                    // No handshake: the slot of `max_pending_handshakes` is free at once.
                    pending.done();
                    // Answers are small and latency matters more than packet count.
                    let _ = stream.set_nodelay(true);
                    let _ = raw::serve_lines(&hub, stream, Some(remote)).await;
                }
            });
            Ok(listening)
        }
        Listen::Unix(path) => unix(hub, path).await,
    }
}

/// Accepts WebSocket connections on a bound listener; returns its address.
pub(crate) fn websocket(hub: &Arc<Hub>, listener: TcpListener) -> Result<std::net::SocketAddr, ListenError> {
    let addr = listener.local_addr().map_err(ListenError::LocalAddr)?;
    let serving = Arc::clone(hub);
    accept::listen_as(hub, listener, Listening::WebSocket(addr), "WebSocket", move |stream, remote, pending| {
        let hub = Arc::clone(&serving);
        // TLS when configured, then the upgrade (or an HTTP request); the
        // outcome is logged where it is decided.
        async move { accept::serve_accepted(&hub, stream, remote, pending).await }
    });
    Ok(addr)
}

async fn bind_tcp(addr: &str) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr).await.map_err(|source| ListenError::Bind { addr: addr.to_owned(), source })
}

#[cfg(unix)]
async fn unix(hub: &Arc<Hub>, path: std::path::PathBuf) -> Result<Listening, ListenError> {
    let listener = bind_unix(&path).await?;
    let listening = Listening::Unix(path.clone());
    let serving = Arc::clone(hub);
    let socket = raw::UnixSocket::new(listener, path);
    accept::listen_as(hub, socket, listening.clone(), "Unix lines", move |stream, _remote, mut pending| {
        let hub = Arc::clone(&serving);
        async move {
            pending.done();
            let _ = raw::serve_lines(&hub, stream, None).await;
        }
    });
    Ok(listening)
}

#[cfg(not(unix))]
async fn unix(_hub: &Arc<Hub>, path: std::path::PathBuf) -> Result<Listening, ListenError> {
    let source = std::io::Error::new(std::io::ErrorKind::Unsupported, "Unix sockets need a Unix system");
    Err(ListenError::Bind { addr: format!("unix:{}", path.display()), source })
}

/// Binds a Unix socket at `path`, replacing a stale socket file.
#[cfg(unix)]
async fn bind_unix(path: &std::path::Path) -> Result<tokio::net::UnixListener, ListenError> {
    use std::os::unix::fs::FileTypeExt;
    let bind_error = |source| ListenError::Bind { addr: format!("unix:{}", path.display()), source };
    match tokio::net::UnixListener::bind(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        bound => return bound.map_err(bind_error),
    }
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket());
    if !is_socket {
        return Err(ListenError::NotASocket { path: path.to_owned() });
    }
    match tokio::net::UnixStream::connect(path).await {
        Ok(_) => return Err(ListenError::SocketInUse { path: path.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(target: "switchboard::server", path = %path.display(), "replacing a stale socket file");
            std::fs::remove_file(path).map_err(bind_error)?;
        }
        Err(e) => return Err(bind_error(e)),
    }
    tokio::net::UnixListener::bind(path).map_err(bind_error)
}
