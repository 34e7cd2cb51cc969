//! Runs one admitted connection: starts the peer engine on it, registers
//! it, runs the hooks, and cleans up when it ends.

use std::sync::Arc;

use switchboard_shared::tokio_tungstenite::WebSocketStream;
use switchboard_shared::{CloseReason, ConnectionInfo, PeerHandle, peer};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::handle::ServerHandle;
use crate::hooks;
use crate::hub::Hub;
use crate::lifecycle::Slot;
use crate::registry::Registration;

/// Serves `ws` until it ends. `slot` is held for the connection's whole life.
pub(crate) fn start<S>(hub: &Arc<Hub>, ws: WebSocketStream<S>, mut info: ConnectionInfo, slot: Slot) -> PeerHandle
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if info.id.is_nil() {
        info.id = uuid::Uuid::new_v4();
    }
    info.extensions.insert(ServerHandle { hub: Arc::clone(hub) });
    let peer = peer::spawn(ws, Arc::clone(&hub.methods), info, hub.peer_config.clone());
    let registration = hub.registry.register(&peer);
    match registration {
        Registration::Registered => {
            tracing::info!(
                target: "switchboard::server",
                id = %peer.id(),
                remote = ?peer.info().remote,
                path = %peer.info().path,
                "connection accepted"
            );
            if let Some(hook) = &hub.policies.on_connect {
                hooks::run("on_connect", || hook(&peer));
            }
        }
        Registration::ShuttingDown => {
            // Upgraded while a shutdown began: close at once with 1001.
            peer.shutdown(tokio::time::Instant::now());
        }
    }
    tokio::spawn(watch(Arc::clone(hub), peer.clone(), slot, registration));
    peer
}

/// Waits for the end of the connection, then forgets it.
async fn watch(hub: Arc<Hub>, peer: PeerHandle, slot: Slot, registration: Registration) {
    let reason = peer.closed().await;
    hub.registry.remove(peer.id());
    drop(slot);
    match &reason {
        CloseReason::SlowConsumer => tracing::warn!(
            target: "switchboard::server",
            id = %peer.id(),
            remote = ?peer.info().remote,
            max_queue_bytes = hub.settings.max_queue_bytes,
            "slow consumer cut off: its outbound queue reached the bound; closed with 1008"
        ),
        CloseReason::MessageTooBig => tracing::warn!(
            target: "switchboard::server",
            id = %peer.id(),
            max_message_size = hub.settings.max_message_size,
            "message over the size limit; closed with 1009"
        ),
        reason => tracing::info!(target: "switchboard::server", id = %peer.id(), %reason, "connection closed"),
    }
    if registration == Registration::Registered {
        if let Some(hook) = &hub.policies.on_disconnect {
            hooks::run("on_disconnect", || hook(&peer, &reason));
        }
    }
}
