//! The one accept path: the accept loop every listener runs (with the
//! `max_pending_handshakes` bound), whatever it accepts ([`Acceptor`]: a TCP
//! listener, a Unix socket), and how an accepted stream enters the server
//! (handshake, admission, connection start).

use std::any::Any;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::serve::read_ahead::ReadAhead;
use switchboard_shared::PeerHandle;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::listen::Listening;
use crate::serve::connection;
use crate::serve::error::ServeError;
use crate::serve::handshake::{self, Handshake};
use crate::state::hub::Hub;

/// Pause after an accept error such as "too many open files", so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// What an accept loop accepts from.
pub(crate) trait Acceptor: Send + Sync + 'static {
    /// An accepted connection.
    type Stream: Send + 'static;
    /// The other side's address.
    type Addr: Send + 'static;
    /// Waits for the next connection.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, Self::Addr)>> + Send;
}

impl Acceptor for TcpListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;
    fn accept(&self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

#[cfg(unix)]
impl Acceptor for crate::serve::raw::UnixSocket {
    type Stream = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, Self::Addr)>> + Send {
        self.listener.accept()
    }
}

/// Starts accepting on a TCP `listener` (the one accept loop, on a
/// background task), running `serve` for each accepted connection; `what`
/// names the listener in the log. The hub reports the listener's address as
/// its own when it has none yet, and is not stopped before the loop has
/// closed the listening socket. Must be called within a Tokio runtime.
#[cfg_attr(not(feature = "web"), allow(dead_code, reason = "the `web` feature's listener"))]
pub(crate) fn listen<F, Fut>(
    hub: &Arc<Hub>,
    listener: TcpListener,
    what: &'static str,
    serve: F,
) -> io::Result<SocketAddr>
where
    F: Fn(TcpStream, SocketAddr, PendingHandshake) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr()?;
    hub.set_local_addr(addr);
    warn_if_exposed(hub, addr);
    tracing::info!(target: "switchboard::server", %addr, what, "listening");
    tokio::spawn(accept_loop(Arc::clone(hub), listener, serve));
    Ok(addr)
}

/// [`listen`] for a listener of `Server::listen`, of any kind, which the hub
/// lists as `listening`.
pub(crate) fn listen_as<L, F, Fut>(hub: &Arc<Hub>, listener: L, listening: Listening, what: &'static str, serve: F)
where
    L: Acceptor,
    F: Fn(L::Stream, L::Addr, PendingHandshake) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if let Some(addr) = listening.socket_addr() {
        hub.set_local_addr(addr);
        warn_if_exposed(hub, addr);
    }
    tracing::info!(target: "switchboard::server", listening = %listening, what, "listening");
    hub.add_listening(listening);
    tokio::spawn(accept_loop(Arc::clone(hub), listener, serve));
}

/// Warns when the server is reachable from other hosts without an authenticator.
fn warn_if_exposed(hub: &Hub, addr: SocketAddr) {
    if !addr.ip().is_loopback() && hub.policies().authenticator.is_none() {
        tracing::warn!(
            target: "switchboard::server",
            %addr,
            "listening on a non-loopback address without an authenticator: anyone who can reach it may call every method"
        );
    }
}

/// One accepted connection's claim on the `max_pending_handshakes` bound,
/// held until its handshake is over (or the connection has ended).
#[derive(Debug)]
pub(crate) struct PendingHandshake(Option<OwnedSemaphorePermit>);

impl PendingHandshake {
    /// The handshake is over: the accept loop may take another connection.
    pub(crate) fn done(&mut self) {
        self.0 = None;
    }
}

/// The one accept loop of every listener (`Server::listen`, `WebServer`):
/// accepts until the server leaves the running phase, with at most
/// `max_pending_handshakes` connections in their handshake at once, and
/// runs `serve` on its own task for each. The listener is then dropped, so
/// new TCP connections are refused by the operating system.
async fn accept_loop<L, F, Fut>(hub: Arc<Hub>, listener: L, serve: F)
where
    L: Acceptor,
    F: Fn(L::Stream, L::Addr, PendingHandshake) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let guard = hub.listener();
    let handshakes = Arc::new(Semaphore::new(hub.settings().max_pending_handshakes));
    loop {
        tokio::select! {
            // At the bound, nothing is accepted: new connections wait in the backlog.
            accepted = async {
                let permit = Arc::clone(&handshakes).acquire_owned().await.expect("never closed");
                (permit, listener.accept().await)
            } => match accepted {
                (permit, Ok((stream, remote))) => {
                    tokio::spawn(serve(stream, remote, PendingHandshake(Some(permit))));
                }
                (_, Err(error)) => {
                    tracing::warn!(target: "switchboard::server", %error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            () = hub.stopped_running() => break,
        }
    }
    // Close the socket before the server may count as stopped.
    drop(listener);
    drop(guard);
    tracing::info!(target: "switchboard::server", "stopped accepting connections");
}

/// Serves a connection the accept loop of [`Server::listen`](crate::Server::listen)
/// took: the TLS handshake first when the server has a TLS identity, then
/// the request head: a WebSocket upgrade becomes a hub connection, any
/// other request (cargo feature `http`) goes to the HTTP server on a task of
/// its own. Returns once the handshake is over; the outcome is logged where
/// it is decided.
pub(crate) async fn serve_accepted(hub: &Arc<Hub>, stream: TcpStream, remote: SocketAddr, pending: PendingHandshake) {
    // Answers are small and latency matters more than packet count; the
    // writer already coalesces bursts into one write.
    let _ = stream.set_nodelay(true);
    #[cfg(feature = "tls")]
    if let Some(tls) = &hub.settings().tls {
        // Boxed: a TLS session is large (about 7 KiB), and inline it would
        // size every plain connection's handshake task for it too.
        Box::pin(serve_tls(hub, tls, stream, remote, pending)).await;
        return;
    }
    serve_listened(hub, stream, remote, pending).await;
}

/// The TLS handshake, then [`serve_listened`] on the decrypted stream.
#[cfg(feature = "tls")]
async fn serve_tls(
    hub: &Arc<Hub>,
    tls: &crate::config::tls::TlsConfig,
    stream: TcpStream,
    remote: SocketAddr,
    pending: PendingHandshake,
) {
    if let Ok(stream) = crate::serve::tls::accept(hub, tls, stream, Some(remote)).await {
        serve_listened(hub, stream, remote, pending).await;
    }
}

/// The handshake on a listener's (decrypted) stream; see [`serve_accepted`].
async fn serve_listened<S>(hub: &Arc<Hub>, stream: S, remote: SocketAddr, mut pending: PendingHandshake)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "http")]
    let other = handshake::OtherRequests::ServeHttp;
    #[cfg(not(feature = "http"))]
    let other = handshake::OtherRequests::Refuse;
    match handshake::upgrade(hub, ReadAhead::new(stream), Some(remote), other).await {
        Ok(Handshake::WebSocket(ws, admitted)) => {
            connection::start(hub, ws, admitted);
            pending.done();
        }
        #[cfg(feature = "http")]
        Ok(Handshake::Http { stream, read }) => {
            // Its first request head is in: the HTTP server marks it done.
            let hub = Arc::clone(hub);
            tokio::spawn(crate::serve::http::serve_handed_over(hub, stream, read, Some(remote), pending));
        }
        Err(_) => pending.done(),
    }
}

/// Serves a stream handed to [`ServerHandle::serve_stream`](crate::ServerHandle::serve_stream):
/// the handshake (request head, admission, upgrade) within the handshake
/// timeout, then the connection on its own task. Returns once the handshake
/// is over. Only WebSocket upgrades are served (anything else gets 400). A
/// `TcpStream` gets `TCP_NODELAY`; every stream reads through an adaptive
/// [`ReadAhead`].
pub(crate) async fn serve_stream<S>(
    hub: &Arc<Hub>,
    mut stream: S,
    remote: Option<SocketAddr>,
) -> Result<PeerHandle, ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some(tcp) = (&mut stream as &mut dyn Any).downcast_mut::<TcpStream>() {
        // Answers are small and latency matters more than packet count; the
        // writer already coalesces bursts into one write.
        let _ = tcp.set_nodelay(true);
    }
    // Bursts read in one go through a per-thread buffer; idle sockets hold none: see `ReadAhead`.
    match handshake::upgrade(hub, ReadAhead::new(stream), remote, handshake::OtherRequests::Refuse).await? {
        Handshake::WebSocket(ws, admitted) => Ok(connection::start(hub, ws, admitted)),
        #[cfg(feature = "http")]
        Handshake::Http { .. } => Err(ServeError::Refused {
            status: http::StatusCode::BAD_REQUEST.as_u16(),
            reason: "not a WebSocket upgrade request".into(),
        }),
    }
}

/// A guard on the handshake task, which every connection has while it is
/// being opened (see "Where an idle connection's memory goes" in BENCHMARKS.md).
#[cfg(test)]
mod sizes {
    use switchboard_shared::Methods;

    use super::*;
    use crate::config::settings::{Policies, Settings};
    use crate::config::topics::HistoryLimits;
    use crate::state::broker::memory::MemoryBroker;

    /// The handshake task's future: today about 3 KiB. Freed handshake
    /// tasks leave holes between the long-lived allocations of the
    /// connections opened meanwhile; at 10 KiB (a TLS session inline) idle
    /// memory swung from 5.8 to 9.5 KiB per connection with the pace at
    /// which connections came.
    const HANDSHAKE_FUTURE_MAX: usize = 4 << 10;

    #[tokio::test]
    async fn the_handshake_task_stays_small() {
        let broker = Arc::new(MemoryBroker::new(HistoryLimits::default()));
        let hub = Hub::new_cyclic(Settings::default(), Policies::default(), broker, None, |_| Methods::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, remote) = listener.accept().await.unwrap();
        let handshake = serve_accepted(&hub, stream, remote, PendingHandshake(None));
        let size = std::mem::size_of_val(&handshake);
        assert!(size <= HANDSHAKE_FUTURE_MAX, "the handshake future is {size} bytes (bound {HANDSHAKE_FUTURE_MAX})");
        drop((handshake, client));
    }
}
