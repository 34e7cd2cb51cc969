//! Connection state: each endpoint's, and the client's, which sums them up.
//!
//! Each endpoint's supervisor reports its own [`State`] to a board;
//! the client's state is derived from all of them ([`State::of_endpoints`])
//! and published on a `tokio::sync::watch` channel, so an application can
//! show it or wait for readiness.

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::builder::AttemptError;

/// Where a connection (one endpoint's, or the client's as a whole) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// An attempt to open the socket is under way (the first one, or an
    /// immediate retry after a drop). Calls made now fail with
    /// [`Error::Offline`](crate::Error::Offline) unless they wait for readiness.
    Connecting,
    /// The socket is open: calls go out. For the client: at least one
    /// endpoint is open.
    Ready,
    /// Not connected, waiting out a reconnect delay before the next attempt.
    /// Calls fail fast with [`Error::Offline`](crate::Error::Offline) unless they wait for readiness.
    Offline,
    /// Not connected and never will be again: [`Client::close`](crate::Client::close)
    /// was called, or the reconnect policy gave up (on every endpoint, for
    /// the client). Calls fail with [`Error::Offline`](crate::Error::Offline), waiting or not.
    Closed,
}

impl State {
    /// The client's state given its endpoints': `Ready` if any is ready,
    /// else `Closed` if all are closed, else `Connecting` if any is
    /// connecting, else `Offline`.
    ///
    /// ```
    /// use switchboard_client::State;
    /// assert_eq!(State::of_endpoints([State::Offline, State::Ready]), State::Ready);
    /// assert_eq!(State::of_endpoints([State::Offline, State::Connecting]), State::Connecting);
    /// assert_eq!(State::of_endpoints([State::Closed, State::Offline]), State::Offline);
    /// assert_eq!(State::of_endpoints([State::Closed, State::Closed]), State::Closed);
    /// ```
    pub fn of_endpoints(states: impl IntoIterator<Item = State>) -> State {
        let (mut connecting, mut all_closed) = (false, true);
        for state in states {
            match state {
                State::Ready => return State::Ready,
                State::Connecting => (connecting, all_closed) = (true, false),
                State::Offline => all_closed = false,
                State::Closed => {}
            }
        }
        if all_closed {
            State::Closed
        } else if connecting {
            State::Connecting
        } else {
            State::Offline
        }
    }

    /// Whether calls can go out now.
    pub fn is_ready(self) -> bool {
        self == State::Ready
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Connecting => "connecting",
            State::Ready => "ready",
            State::Offline => "offline",
            State::Closed => "closed",
        })
    }
}

/// What the board knows of one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) state: State,
    /// Whether it was ever ready (a fast up-and-down may never show as `Ready`
    /// to a watcher, but is remembered here).
    pub(crate) ever_ready: bool,
    /// Why its last attempt failed, if it did.
    pub(crate) last_error: Option<AttemptError>,
    /// Failed attempts since it was last ready (or since the start).
    pub(crate) failures: u64,
}

/// Every endpoint's state, and the client's derived from them.
#[derive(Debug)]
pub(crate) struct Board {
    slots: watch::Sender<Vec<Slot>>,
    client: watch::Sender<State>,
    endpoints: watch::Sender<Vec<State>>,
    /// Serialises updates, so that the client state follows the slots in order.
    update: Mutex<()>,
}

impl Board {
    pub(crate) fn new(endpoints: usize) -> Self {
        let slot = Slot { state: State::Connecting, ever_ready: false, last_error: None, failures: 0 };
        let initial = if endpoints == 0 { State::Closed } else { State::Connecting };
        Board {
            slots: watch::Sender::new(vec![slot; endpoints]),
            client: watch::Sender::new(initial),
            endpoints: watch::Sender::new(vec![State::Connecting; endpoints]),
            update: Mutex::new(()),
        }
    }

    fn modify(&self, index: usize, change: impl FnOnce(&mut Slot)) {
        let _serial = self.update.lock();
        let mut client = State::Closed;
        let mut each = Vec::new();
        self.slots.send_modify(|slots| {
            change(&mut slots[index]);
            each = slots.iter().map(|s| s.state).collect();
            client = State::of_endpoints(each.iter().copied());
        });
        self.endpoints.send_if_modified(|current| {
            let changed = *current != each;
            *current = each;
            changed
        });
        self.client.send_if_modified(|current| std::mem::replace(current, client) != client);
    }

    pub(crate) fn set(&self, index: usize, state: State) {
        self.modify(index, |slot| slot.state = state);
    }

    pub(crate) fn ready(&self, index: usize) {
        self.modify(index, |slot| {
            slot.state = State::Ready;
            slot.ever_ready = true;
            slot.last_error = None;
            slot.failures = 0;
        });
    }

    pub(crate) fn failed(&self, index: usize, error: AttemptError) {
        self.modify(index, |slot| {
            slot.last_error = Some(error);
            slot.failures += 1;
        });
    }

    pub(crate) fn state(&self) -> State {
        *self.client.borrow()
    }

    pub(crate) fn endpoint(&self, index: usize) -> Slot {
        self.slots.borrow()[index].clone()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<State> {
        self.client.subscribe()
    }

    pub(crate) fn watch_endpoints(&self) -> watch::Receiver<Vec<State>> {
        self.endpoints.subscribe()
    }

    pub(crate) fn watch_slots(&self) -> watch::Receiver<Vec<Slot>> {
        self.slots.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_ready_while_any_endpoint_is() {
        let board = Board::new(2);
        assert_eq!(board.state(), State::Connecting);
        board.ready(1);
        assert_eq!(board.state(), State::Ready);
        board.set(0, State::Offline);
        assert_eq!(board.state(), State::Ready);
        board.set(1, State::Connecting);
        assert_eq!(board.state(), State::Connecting);
        board.set(1, State::Closed);
        assert_eq!(board.state(), State::Offline);
        board.set(0, State::Closed);
        assert_eq!(board.state(), State::Closed);
    }

    #[test]
    fn a_watcher_sees_only_real_changes() {
        let board = Board::new(2);
        let mut rx = board.watch();
        board.set(0, State::Offline);
        assert!(!rx.has_changed().unwrap(), "still connecting through endpoint 1");
        board.ready(0);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), State::Ready);
    }

    #[test]
    fn failures_are_remembered_until_ready() {
        let board = Board::new(1);
        let refused = || AttemptError::Io(std::sync::Arc::new(std::io::ErrorKind::ConnectionRefused.into()));
        board.failed(0, refused());
        board.failed(0, refused());
        assert_eq!(board.endpoint(0).failures, 2);
        board.ready(0);
        let slot = board.endpoint(0);
        assert!(slot.ever_ready && slot.failures == 0 && slot.last_error.is_none());
    }
}
