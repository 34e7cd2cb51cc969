//! The server's phase (running, draining, stopped) and its connection slots.
//!
//! A **slot** is held by every connection from the moment its upgrade is
//! admitted until its task has ended; `max_connections` bounds the slots,
//! and `max_connections_per_ip` the slots of one client address (IPv4 and
//! IPv4-mapped IPv6 count as one; a connection without a known address
//! counts only against the total).
//! Each accept loop holds a **listener guard** until its listening socket is
//! closed. Once a shutdown has begun no slot is handed out, and the server
//! is stopped when the last slot and the last guard are released.

use std::collections::HashMap;
use std::net::IpAddr;
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
    FullForAddress { limit: usize },
}

#[derive(Debug)]
struct Counts {
    live: usize,
    /// Live slots per client address; an address leaves the map with its last slot.
    per_ip: HashMap<IpAddr, usize>,
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
    max_per_ip: usize,
}

impl Lifecycle {
    pub(crate) fn new(max_connections: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Lifecycle {
            counts: Mutex::new(Counts { live: 0, per_ip: HashMap::new(), listeners: 0, phase: ServerPhase::Running }),
            phase: watch::Sender::new(ServerPhase::Running),
            max: max_connections,
            max_per_ip,
        })
    }

    /// Takes a slot for a new connection from `ip` (when known).
    pub(crate) fn reserve(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Slot, NoSlot> {
        let ip = ip.map(|ip| ip.to_canonical());
        let mut counts = self.counts.lock();
        if counts.phase != ServerPhase::Running {
            return Err(NoSlot::ShuttingDown);
        }
        if counts.live >= self.max {
            return Err(NoSlot::Full { limit: self.max });
        }
        if let Some(ip) = ip {
            let from_ip = counts.per_ip.entry(ip).or_insert(0);
            if *from_ip >= self.max_per_ip {
                if *from_ip == 0 {
                    counts.per_ip.remove(&ip);
                }
                return Err(NoSlot::FullForAddress { limit: self.max_per_ip });
            }
            *from_ip += 1;
        }
        counts.live += 1;
        Ok(Slot { lifecycle: Arc::clone(self), ip })
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
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let ip = self.ip;
        self.lifecycle.release(|counts| {
            counts.live -= 1;
            if let Some(ip) = ip
                && let Some(from_ip) = counts.per_ip.get_mut(&ip)
            {
                *from_ip -= 1;
                if *from_ip == 0 {
                    counts.per_ip.remove(&ip);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_released() {
        let life = Lifecycle::new(1, 1);
        let slot = life.reserve(None).unwrap();
        assert_eq!(life.reserve(None).unwrap_err(), NoSlot::Full { limit: 1 });
        drop(slot);
        assert!(life.reserve(None).is_ok());
    }

    #[test]
    fn slots_of_one_address_are_bounded_and_released() {
        let life = Lifecycle::new(10, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = life.reserve(Some(a)).unwrap();
        let _second = life.reserve(Some(a)).unwrap();
        assert_eq!(life.reserve(Some(a)).unwrap_err(), NoSlot::FullForAddress { limit: 2 });
        // The same address as IPv4-mapped IPv6 is the same client.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(life.reserve(Some(mapped)).unwrap_err(), NoSlot::FullForAddress { limit: 2 });
        let other = life.reserve(Some(b)).unwrap();
        drop(first);
        let third = life.reserve(Some(a)).unwrap();
        drop((third, _second, other));
        assert!(life.counts.lock().per_ip.is_empty(), "released addresses leave the map");
    }

    #[test]
    fn draining_stops_when_the_last_slot_goes() {
        let life = Lifecycle::new(4, 4);
        let slot = life.reserve(None).unwrap();
        assert!(life.begin_drain());
        assert!(!life.begin_drain());
        assert_eq!(life.phase(), ServerPhase::Draining);
        assert_eq!(life.reserve(None).unwrap_err(), NoSlot::ShuttingDown);
        drop(slot);
        assert_eq!(life.phase(), ServerPhase::Stopped);
    }

    #[test]
    fn draining_waits_for_the_listener_too() {
        let life = Lifecycle::new(4, 4);
        let listener = life.listener();
        assert!(life.begin_drain());
        assert_eq!(life.phase(), ServerPhase::Draining);
        drop(listener);
        assert_eq!(life.phase(), ServerPhase::Stopped);
    }

    #[test]
    fn an_idle_server_stops_at_once() {
        let life = Lifecycle::new(4, 4);
        assert!(life.begin_drain());
        assert_eq!(life.phase(), ServerPhase::Stopped);
    }
}
