//! The server's phase (running, draining, stopped) and its connection slots.
//!
//! A **slot** is held by every connection from the moment its upgrade is
//! admitted until its task has ended; `max_connections` bounds the slots.
//! Each accept loop holds a **listener guard** until its listening socket is
//! closed. Once a shutdown has begun no slot is handed out, and the server
//! is stopped when the last slot and the last guard are released.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerPhase {
    /// Accepting and serving connections.
    Running,
    /// A graceful shutdown is under way: nothing new is accepted, in-flight
    /// calls are finishing, connections are closing with 1001.
    Draining,
    /// Every connection has ended.
    Stopped,
}

/// Why no slot was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSlot {
    ShuttingDown,
    Full { limit: usize },
}

#[derive(Debug)]
struct Counts {
    live: usize,
    listeners: usize,
    phase: ServerPhase,
}

impl Counts {
    fn idle(&self) -> bool {
        self.live == 0 && self.listeners == 0
    }
}

/// Slots and phase, changed together under one lock.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    counts: Mutex<Counts>,
    phase: watch::Sender<ServerPhase>,
    max: usize,
}

impl Lifecycle {
    pub(crate) fn new(max_connections: usize) -> Arc<Self> {
        Arc::new(Lifecycle {
            counts: Mutex::new(Counts { live: 0, listeners: 0, phase: ServerPhase::Running }),
            phase: watch::Sender::new(ServerPhase::Running),
            max: max_connections,
        })
    }

    /// Takes a slot for a new connection.
    pub(crate) fn reserve(self: &Arc<Self>) -> Result<Slot, NoSlot> {
        let mut counts = self.counts.lock();
        if counts.phase != ServerPhase::Running {
            return Err(NoSlot::ShuttingDown);
        }
        if counts.live >= self.max {
            return Err(NoSlot::Full { limit: self.max });
        }
        counts.live += 1;
        Ok(Slot { lifecycle: Arc::clone(self) })
    }

    /// Starts draining. Returns `false` when a shutdown had already begun.
    pub(crate) fn begin_drain(&self) -> bool {
        let mut counts = self.counts.lock();
        if counts.phase != ServerPhase::Running {
            return false;
        }
        counts.phase = if counts.idle() { ServerPhase::Stopped } else { ServerPhase::Draining };
        self.phase.send_replace(counts.phase);
        true
    }

    pub(crate) fn phase(&self) -> ServerPhase {
        *self.phase.borrow()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<ServerPhase> {
        self.phase.subscribe()
    }

    /// Registers an accept loop; the server is not stopped before it is dropped.
    pub(crate) fn listener(self: &Arc<Self>) -> ListenerGuard {
        self.counts.lock().listeners += 1;
        ListenerGuard { lifecycle: Arc::clone(self) }
    }

    fn release(&self, release: impl FnOnce(&mut Counts)) {
        let mut counts = self.counts.lock();
        release(&mut counts);
        if counts.idle() && counts.phase == ServerPhase::Draining {
            counts.phase = ServerPhase::Stopped;
            self.phase.send_replace(ServerPhase::Stopped);
        }
    }
}

/// Held by an accept loop while its listening socket is open.
#[derive(Debug)]
pub(crate) struct ListenerGuard {
    lifecycle: Arc<Lifecycle>,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.lifecycle.release(|counts| counts.listeners -= 1);
    }
}

/// One connection's claim on the connection limit; released when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    lifecycle: Arc<Lifecycle>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.lifecycle.release(|counts| counts.live -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_released() {
        let life = Lifecycle::new(1);
        let slot = life.reserve().unwrap();
        assert_eq!(life.reserve().unwrap_err(), NoSlot::Full { limit: 1 });
        drop(slot);
        assert!(life.reserve().is_ok());
    }

    #[test]
    fn draining_stops_when_the_last_slot_goes() {
        let life = Lifecycle::new(4);
        let slot = life.reserve().unwrap();
        assert!(life.begin_drain());
        assert!(!life.begin_drain());
        assert_eq!(life.phase(), ServerPhase::Draining);
        assert_eq!(life.reserve().unwrap_err(), NoSlot::ShuttingDown);
        drop(slot);
        assert_eq!(life.phase(), ServerPhase::Stopped);
    }

    #[test]
    fn draining_waits_for_the_listener_too() {
        let life = Lifecycle::new(4);
        let listener = life.listener();
        assert!(life.begin_drain());
        assert_eq!(life.phase(), ServerPhase::Draining);
        drop(listener);
        assert_eq!(life.phase(), ServerPhase::Stopped);
    }

    #[test]
    fn an_idle_server_stops_at_once() {
        let life = Lifecycle::new(4);
        assert!(life.begin_drain());
        assert_eq!(life.phase(), ServerPhase::Stopped);
    }
}
