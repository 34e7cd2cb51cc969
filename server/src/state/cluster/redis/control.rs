//! The listener task: this node's dedicated pub/sub connection, subscribed
//! to its own control channel and to the broadcast channel. It pings Redis
//! every heartbeat interval (a silent, half-open connection is found out);
//! when the connection drops it fails everything waiting on this node (its
//! replies may have been missed), then reconnects with backoff (100 ms
//! doubling up to 5 s). It stops when the writer says so or the cluster is
//! dropped.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::state::cluster::redis::Inner;

/// The first wait before reconnecting, and the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// What the listener needs.
pub(super) struct Listener {
    pub(super) client: redis::Client,
    pub(super) channels: [String; 2],
    pub(super) ping_every: Duration,
    pub(super) inner: Weak<Inner>,
    /// Set while subscribed.
    pub(super) subscribed: watch::Sender<bool>,
    /// Becomes `true` (or closes) when the listener must stop.
    pub(super) stop: watch::Receiver<bool>,
}

impl Listener {
    pub(super) async fn run(mut self) {
        let mut backoff = BACKOFF.0;
        loop {
            match self.listen().await {
                Ok(Ended::Stop) => return,
                Ok(Ended::Dropped) => backoff = BACKOFF.0,
                Err(e) => {
                    tracing::warn!(target: "switchboard::cluster", error = %e, retry_in = ?backoff, "cannot subscribe to the control channel")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stopping(&mut self.stop) => return,
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    /// Subscribes and handles messages until the connection drops or the
    /// listener must stop.
    async fn listen(&mut self) -> redis::RedisResult<Ended> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        for channel in &self.channels {
            pubsub.subscribe(channel).await?;
        }
        let (mut sink, mut messages) = pubsub.split();
        self.subscribed.send_replace(true);
        tracing::info!(target: "switchboard::cluster", channel = %self.channels[0], "listening on the control channel");
        let mut ping = tokio::time::interval(self.ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ping.tick().await;
        let ended = loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => {
                        let Some(inner) = self.inner.upgrade() else { break Ended::Stop };
                        inner.receive(message.get_payload_bytes());
                    }
                    None => break Ended::Dropped,
                },
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(self.ping_every, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        break Ended::Dropped;
                    }
                }
                () = stopping(&mut self.stop) => break Ended::Stop,
            }
        };
        self.subscribed.send_replace(false);
        if let Some(inner) = self.inner.upgrade() {
            inner.waiting.fail_all();
        }
        if matches!(ended, Ended::Dropped) {
            tracing::warn!(target: "switchboard::cluster", "control channel subscription lost; reconnecting");
        }
        Ok(ended)
    }
}

/// Resolves once the listener must stop (told so, or the writer is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held across an await.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Why a subscription ended.
enum Ended {
    Stop,
    Dropped,
}
