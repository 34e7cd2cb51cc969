//! The application-level heartbeat, for clients that cannot send WebSocket
//! pings (browsers): opt in with [`ServerBuilder::app_heartbeat`](crate::ServerBuilder::app_heartbeat).
//!
//! Browsers answer the server's WebSocket pings by themselves, so the server
//! already notices a dead browser (the ping keep-alive of
//! [`ServerBuilder::heartbeat`](crate::ServerBuilder::heartbeat)). The other
//! direction is what is missing: a page's script cannot ping, nor see the
//! pongs, so it cannot tell a quiet server from a dead one. With this setting
//! on, the server sends every connection, every `interval`, the notification
//!
//! ```json
//! {"jsonrpc": "2.0", "method": "rpc.heartbeat", "params": {"t": 1718000000000, "interval": 15000, "rtt": 3}}
//! ```
//!
//! - `t`: the server's clock in milliseconds since the Unix epoch (only ever
//!   compared with the server's own clock);
//! - `interval`: the heartbeat interval in milliseconds, so a client can size
//!   its silence timeout (the JavaScript client's default is three intervals);
//! - `rtt`: the last round trip the server measured on this connection, in
//!   milliseconds (`null` before the first answer).
//!
//! A client answers each one with the notification
//! `{"jsonrpc": "2.0", "method": "rpc.heartbeat_ack", "params": {"t": <the same t>}}`;
//! the server takes the round trip from it ([`ServerHandle::heartbeat_rtt`](crate::ServerHandle::heartbeat_rtt)) and
//! any inbound frame, the answer included, counts as life for the ping
//! keep-alive. A client that does not know these methods ignores the
//! notification (notifications are never answered), so the setting is safe
//! for every client; the Rust client ignores them.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_shared::codec::encode;
use switchboard_shared::{Context, ErrorObject, Method, Methods};

use crate::state::heartbeat::{millis, now_ms};
use crate::state::hub::Hub;
use crate::state::lifecycle::ServerPhase;
use crate::state::registry::Target;

/// The notification the server sends.
pub const HEARTBEAT_METHOD: &str = "rpc.heartbeat";
/// The notification a client answers with.
pub const HEARTBEAT_ACK_METHOD: &str = "rpc.heartbeat_ack";

#[derive(Serialize)]
struct Beat {
    t: u64,
    interval: u64,
    rtt: Option<u64>,
}

#[derive(Deserialize)]
struct Ack {
    t: u64,
}

/// Registers `rpc.heartbeat_ack` (unless the user registered that name).
pub(crate) fn install(methods: &mut Methods, hub: &Weak<Hub>) {
    if methods.contains(HEARTBEAT_ACK_METHOD) {
        return;
    }
    let hub = hub.clone();
    let ack = move |Ack { t }: Ack, cx: Context| {
        let rtt = Duration::from_millis(now_ms().saturating_sub(t));
        if let Some(hub) = hub.upgrade() {
            hub.app_heartbeat().record(cx.connection_id(), rtt);
        }
        tracing::trace!(target: "switchboard::server", id = %cx.connection_id(), rtt_ms = millis(rtt), "heartbeat answered");
        Ok::<_, ErrorObject>(())
    };
    methods.insert(
        HEARTBEAT_ACK_METHOD,
        Method::sync(ack).described("A client's answer to an rpc.heartbeat notification: {\"t\": <its t>}."),
    );
}

/// Starts the server's heartbeat task once, if the setting is on.
pub(crate) fn ensure_started(hub: &Arc<Hub>) {
    let Some(interval) = hub.app_heartbeat().start() else { return };
    tokio::spawn(run(Arc::downgrade(hub), interval));
}

/// Beats every `interval` until the server leaves the running phase or is dropped.
async fn run(hub: Weak<Hub>, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        if hub.phase() != ServerPhase::Running {
            return;
        }
        beat(&hub, interval);
    }
}

/// Sends one heartbeat to every live connection and forgets the round trips
/// of connections that have ended.
fn beat(hub: &Hub, interval: Duration) {
    let peers = hub.registry().peers(&Target::All);
    let rtts = hub.app_heartbeat().rtts_of(&peers);
    let t = now_ms();
    for (peer, rtt) in peers.into_iter().zip(rtts) {
        let params = Beat { t, interval: millis(interval), rtt: rtt.map(millis) };
        match encode::notification(HEARTBEAT_METHOD, &params) {
            // A full queue cuts the connection off as a slow consumer, as any push does.
            Ok(frame) => drop(peer.try_send_text(frame.into())),
            Err(e) => tracing::error!(target: "switchboard::server", error = %e, "heartbeat not encodable"),
        }
    }
}
