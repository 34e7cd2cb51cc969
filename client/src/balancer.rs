//! Round-robin over the endpoints that are up.
//!
//! Every call (and notification, and batch) takes the next endpoint in turn,
//! skipping those without an open connection. An endpoint that comes back
//! is simply up again, so it takes its share of the load at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use switchboard_shared::PeerHandle;

use crate::connection::Endpoint;

/// The client's endpoints and the round-robin cursor over them.
#[derive(Debug)]
pub(crate) struct Balancer {
    endpoints: Vec<Arc<Endpoint>>,
    cursor: AtomicUsize,
}

impl Balancer {
    pub(crate) fn new(endpoints: Vec<Arc<Endpoint>>) -> Self {
        Balancer { endpoints, cursor: AtomicUsize::new(0) }
    }

    pub(crate) fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// The next endpoint that is up, and its connection; `None` when none is.
    pub(crate) fn pick(&self) -> Option<PeerHandle> {
        let endpoints = self.endpoints.as_slice();
        if let [only] = endpoints {
            let peer = only.peer()?;
            only.count_sent();
            return Some(peer);
        }
        let turn = self.cursor.fetch_add(1, Ordering::Relaxed);
        // One that went down between being counted and being taken is simply
        // not counted on the next look (going down is final for a connection).
        for _ in 0..endpoints.len() {
            let index = nth_up(turn, endpoints.len(), |i| endpoints[i].is_up())?;
            if let Some(peer) = endpoints[index].peer() {
                endpoints[index].count_sent();
                return Some(peer);
            }
        }
        None
    }

    /// Every open connection (subscriptions go to all of them).
    pub(crate) fn all_up(&self) -> Vec<PeerHandle> {
        self.endpoints.iter().filter_map(|e| e.peer()).collect()
    }
}

/// Turn `turn` of the round-robin: the `turn % k`-th of the `k` endpoints
/// that are up, so that every endpoint that is up gets the same share
/// whichever ones are down. One that goes down between the count and the
/// pick makes the turn fall to the first one still up, never to none.
pub(crate) fn nth_up(turn: usize, len: usize, is_up: impl Fn(usize) -> bool) -> Option<usize> {
    let up = (0..len).filter(|&i| is_up(i)).count();
    if up == 0 {
        return None;
    }
    (0..len).filter(|&i| is_up(i)).nth(turn % up).or_else(|| (0..len).find(|&i| is_up(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(up: &[bool], rounds: usize) -> Vec<usize> {
        (0..rounds).filter_map(|turn| nth_up(turn, up.len(), |i| up[i])).collect()
    }

    #[test]
    fn turns_go_round_every_endpoint_that_is_up() {
        assert_eq!(picks(&[true, true, true], 6), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn an_endpoint_that_is_down_is_skipped_and_the_others_share_evenly() {
        assert_eq!(picks(&[true, false, true], 6), vec![0, 2, 0, 2, 0, 2]);
        assert_eq!(picks(&[false, true, false], 3), vec![1, 1, 1]);
    }

    #[test]
    fn nothing_is_picked_when_everything_is_down() {
        assert_eq!(nth_up(3, 3, |_| false), None);
        assert_eq!(nth_up(0, 0, |_| true), None);
    }

    #[test]
    fn an_endpoint_going_down_between_the_count_and_the_pick_leaves_the_others_picked() {
        // Endpoint 1 is up when counted, down when taken: endpoint 0 is still there.
        let looks = std::cell::Cell::new(0);
        let flaky = |i: usize| {
            if i != 1 {
                return true;
            }
            looks.set(looks.get() + 1);
            looks.get() == 1
        };
        assert_eq!(nth_up(1, 2, flaky), Some(0));
    }

    #[test]
    fn the_cursor_may_wrap_around() {
        assert_eq!(nth_up(usize::MAX, 2, |_| true), Some(usize::MAX % 2));
    }
}
