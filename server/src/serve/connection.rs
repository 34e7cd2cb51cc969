//! Runs one admitted connection: starts the peer engine on it, registers
//! it, runs the hooks, watches its credentials' expiry (see `refresh.rs`),
//! and cleans up when it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use switchboard_shared::peer::CloseHook;
use switchboard_shared::transport::Transport;
use switchboard_shared::{CloseReason, PeerHandle, peer};

use crate::config::hooks;
use crate::serve::admission::Admitted;
use crate::serve::refresh;
use crate::state::hub::Hub;
use crate::state::registry::Registration;

/// Where a connection's start-up stands, so that exactly one of [`start`]
/// and the close hook forgets it, after `on_connect` and never twice.
const STARTING: u8 = 0;
const REGISTERED: u8 = 1;
const UNREGISTERED: u8 = 2;
const ENDED: u8 = 3;

/// Serves `transport` (an upgraded WebSocket, or lines over a raw socket)
/// until it ends. The admission's slot is held for the connection's whole life.
pub(crate) fn start<T: Transport>(hub: &Arc<Hub>, transport: T, admitted: Admitted) -> PeerHandle {
    let Admitted { mut info, slot, expires } = admitted;
    if info.id.is_nil() {
        info.id = uuid::Uuid::new_v4();
    }
    let stage = Arc::new(AtomicU8::new(STARTING));
    // The connection's own task runs this when it ends: no second task per
    // connection sits waiting for the end.
    let on_close: CloseHook = {
        let (hub, stage) = (Arc::clone(hub), Arc::clone(&stage));
        Box::new(move |peer: &PeerHandle, reason: &CloseReason| {
            drop(slot);
            match stage.swap(ENDED, Ordering::AcqRel) {
                REGISTERED => forget(&hub, peer, reason, Registration::Registered),
                UNREGISTERED => forget(&hub, peer, reason, Registration::ShuttingDown),
                // Still starting: `start` sees the end and forgets it itself.
                _ => {}
            }
        })
    };
    let peer = peer::spawn_with_close_hook(
        transport,
        Arc::clone(hub.methods()),
        info,
        Arc::clone(hub.peer_config()),
        Some(on_close),
    );
    let registration = hub.registry().register(&peer);
    hub.registry().telemetry().connection_opened();
    match registration {
        Registration::Registered => {
            tracing::debug!(
                target: "switchboard::server",
                id = %peer.id(),
                remote = ?peer.info().remote,
                path = %peer.info().path,
                "connection accepted"
            );
            if let Some(hook) = &hub.policies().on_connect {
                hooks::run("on_connect", || hook(&peer));
            }
            if let Some(expires) = expires {
                refresh::watch(hub, &peer, expires);
            }
        }
        Registration::ShuttingDown => {
            // Upgraded while a shutdown began: close at once with 1001.
            peer.shutdown(tokio::time::Instant::now());
        }
    }
    let started = if registration == Registration::Registered { REGISTERED } else { UNREGISTERED };
    if stage.compare_exchange(STARTING, started, Ordering::AcqRel, Ordering::Acquire).is_err() {
        // It ended while starting; the hook left the forgetting to us.
        let reason = peer.close_reason().unwrap_or(CloseReason::Local { code: 1001, reason: "ended".into() });
        forget(hub, &peer, &reason, registration);
    }
    peer
}

/// Forgets an ended connection: registry, log line, `on_disconnect`.
fn forget(hub: &Arc<Hub>, peer: &PeerHandle, reason: &CloseReason, registration: Registration) {
    hub.registry().remove(peer.id());
    hub.registry().telemetry().connection_closed(reason);
    match reason {
        CloseReason::SlowConsumer => tracing::warn!(
            target: "switchboard::server",
            id = %peer.id(),
            remote = ?peer.info().remote,
            max_queue_bytes = hub.settings().max_queue_bytes,
            "slow consumer cut off: its outbound queue reached the bound; closed with 1008"
        ),
        CloseReason::MessageTooBig => tracing::warn!(
            target: "switchboard::server",
            id = %peer.id(),
            max_message_size = hub.settings().max_message_size,
            "message over the size limit; closed with 1009"
        ),
        reason => tracing::debug!(target: "switchboard::server", id = %peer.id(), %reason, "connection closed"),
    }
    if registration == Registration::Registered
        && let Some(hook) = &hub.policies().on_disconnect
    {
        hooks::run("on_disconnect", || hook(peer, reason));
    }
}
