//! The application-level heartbeat's state in one server: its interval,
//! whether its task runs, and the last round trip measured per connection.
//! The protocol and the task are in [`app_heartbeat`](crate::app_heartbeat).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use switchboard_shared::PeerHandle;
use uuid::Uuid;

/// The heartbeat's state in one server.
#[derive(Debug, Default)]
pub(crate) struct AppHeartbeat {
    interval: Option<Duration>,
    started: AtomicBool,
    /// The last round trip measured per connection.
    rtts: Mutex<HashMap<Uuid, Duration>>,
}

impl AppHeartbeat {
    pub(crate) fn new(interval: Option<Duration>) -> Self {
        AppHeartbeat { interval, ..AppHeartbeat::default() }
    }

    /// The interval, the first time it is asked for while the setting is on;
    /// `None` afterwards (or when it is off): the task is started once.
    pub(crate) fn start(&self) -> Option<Duration> {
        let interval = self.interval?;
        (!self.started.swap(true, Ordering::AcqRel)).then_some(interval)
    }

    /// Records a round trip measured on `connection`.
    pub(crate) fn record(&self, connection: Uuid, rtt: Duration) {
        self.rtts.lock().insert(connection, rtt);
    }

    /// The last round trip measured on `connection`.
    pub(crate) fn rtt(&self, connection: Uuid) -> Option<Duration> {
        self.rtts.lock().get(&connection).copied()
    }

    /// The last round trip of each of `peers` (the live connections), in
    /// their order; the round trips of connections not among them are forgotten.
    pub(crate) fn rtts_of(&self, peers: &[PeerHandle]) -> Vec<Option<Duration>> {
        let mut rtts = self.rtts.lock();
        if !rtts.is_empty() {
            let live: HashSet<Uuid> = peers.iter().map(PeerHandle::id).collect();
            rtts.retain(|id, _| live.contains(id));
        }
        peers.iter().map(|peer| rtts.get(&peer.id()).copied()).collect()
    }
}

/// The server's clock in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A duration in whole milliseconds.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
