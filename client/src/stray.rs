//! What the server sent that none of our calls could take: an error reply
//! with `"id": null`, a frame that is not JSON-RPC. Counted, and handed to
//! whoever listens through [`Client::strays`](crate::Client::strays), so a
//! misbehaving server is visible instead of silently swallowed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_shared::StrayMessage;
use switchboard_shared::peer::StrayHook;
use tokio::sync::broadcast;

/// Stray messages kept for listeners that fall this far behind; older ones
/// are skipped (and counted as missed).
const BUFFER: usize = 64;

/// The client's record of stray messages, fed by every connection's engine.
#[derive(Debug)]
pub(crate) struct Strays {
    tx: broadcast::Sender<StrayMessage>,
    errors_without_id: AtomicU64,
    malformed: AtomicU64,
}

impl Strays {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Strays {
            tx: broadcast::channel(BUFFER).0,
            errors_without_id: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
        })
    }

    /// The hook every connection's engine reports to.
    pub(crate) fn hook(self: &Arc<Self>) -> StrayHook {
        let strays = Arc::clone(self);
        Arc::new(move |stray: StrayMessage| {
            let counter = match &stray {
                StrayMessage::ErrorWithoutId { .. } => &strays.errors_without_id,
                _ => &strays.malformed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            // Nobody listening is fine: the counters keep the record.
            let _ = strays.tx.send(stray);
        })
    }

    pub(crate) fn subscribe(&self) -> StrayMessages {
        StrayMessages { rx: self.tx.subscribe(), missed: 0 }
    }

    pub(crate) fn errors_without_id(&self) -> u64 {
        self.errors_without_id.load(Ordering::Relaxed)
    }

    pub(crate) fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }
}

/// The stray messages from the moment [`Client::strays`](crate::Client::strays)
/// was called. Read them with [`StrayMessages::next`].
#[derive(Debug)]
pub struct StrayMessages {
    rx: broadcast::Receiver<StrayMessage>,
    missed: u64,
}

impl StrayMessages {
    /// The next stray message; `None` once the client is gone.
    pub async fn next(&mut self) -> Option<StrayMessage> {
        loop {
            match self.rx.recv().await {
                Ok(stray) => return Some(stray),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// How many were skipped because this listener fell more than 64 behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}
