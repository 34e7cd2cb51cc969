//! The accept loop: takes TCP connections until a shutdown begins, and
//! serves each on its own task.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::hub::Hub;
use crate::lifecycle::{ListenerGuard, Phase};

/// Pause after an accept error such as "too many open files", so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Warns when the server is reachable from other hosts without an authenticator.
pub(crate) fn warn_if_exposed(hub: &Hub, listener: &TcpListener) {
    let Ok(addr) = listener.local_addr() else { return };
    if !addr.ip().is_loopback() && hub.policies.authenticator.is_none() {
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
pub(crate) async fn accept_loop<F, Fut>(hub: Arc<Hub>, listener: TcpListener, guard: ListenerGuard, serve: F)
where
    F: Fn(TcpStream, SocketAddr, PendingHandshake) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut phase = hub.lifecycle.watch();
    let handshakes = Arc::new(Semaphore::new(hub.settings.max_pending_handshakes));
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
            () = async { drop(phase.wait_for(|phase| *phase != Phase::Running).await) } => break,
        }
    }
    // Close the socket before the server may count as stopped.
    drop(listener);
    drop(guard);
    tracing::info!(target: "switchboard::server", "stopped accepting connections");
}
