//! The pending-call table: our outstanding calls, keyed by id.
//!
//! Terms:
//! - a **slot** is inserted when a call is sent and holds the sender half of
//!   a oneshot channel the caller awaits;
//! - **complete** hands a reply to its slot and removes it; a reply with no
//!   slot (never sent, already timed out, duplicated) is *unknown*: counted,
//!   logged, never fatal;
//! - **fail_all** ends every slot with [`Error::Disconnected`] at once and
//!   closes the table, so a call made after the socket ended fails at once
//!   instead of waiting for a reply that cannot come;
//! - a **group** is the slots of one call, or of one batch: an error reply
//!   without an id is handed to the outstanding group when there is exactly
//!   one, the only case where it is unambiguous;
//! - **matching**: a reply's id matches a call's when both are the same
//!   string, or numbers of the same value (`1`, `1.0` and `1e0` match the
//!   call `1`); a string never matches a number.
//!
//! A [`PendingGuard`] removes its slot when the caller stops waiting (timeout
//! or the caller's future dropped), so the table never leaks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::codec::Id;
use crate::error::Error;

/// What a slot receives: the raw result or why there is none.
pub(crate) type Reply = Result<Box<RawValue>, Error>;

/// The table of outstanding calls.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    state: Mutex<State>,
    unknown: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// Each slot with the group it belongs to.
    slots: HashMap<Id, (oneshot::Sender<Reply>, u64)>,
    next_group: u64,
    closed: bool,
}

impl Pending {
    /// An empty, open table.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a slot for `id`, a group of its own. Fails with `Disconnected`
    /// once the table is closed, and with `Encode` if `id` is already pending
    /// (a custom id generator that repeats itself: two calls could not be
    /// told apart).
    pub(crate) fn insert(self: &Arc<Self>, id: Id) -> Result<PendingGuard, Error> {
        let mut guards = self.insert_group([id])?;
        Ok(guards.pop().expect("one id, one guard"))
    }

    /// Adds one slot per id, all in one group (the calls of one batch).
    pub(crate) fn insert_group(
        self: &Arc<Self>,
        ids: impl IntoIterator<Item = Id>,
    ) -> Result<Vec<PendingGuard>, Error> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(Error::Disconnected);
        }
        let group = state.next_group;
        state.next_group += 1;
        let mut guards = Vec::new();
        for id in ids {
            if state.slots.contains_key(&id) {
                for guard in &mut guards {
                    let guard: &mut PendingGuard = guard;
                    if let Some(id) = guard.id.take() {
                        state.slots.remove(&id);
                    }
                }
                return Err(Error::Encode(format!("id {id} is already pending")));
            }
            let (tx, rx) = oneshot::channel();
            state.slots.insert(id.clone(), (tx, group));
            guards.push(PendingGuard { table: Arc::clone(self), id: Some(id), rx });
        }
        Ok(guards)
    }

    /// Hands `reply` to the slot for `id`. Returns `false` (and counts it) when
    /// no call with that id is pending.
    pub(crate) fn complete(&self, id: &Id, reply: Reply) -> bool {
        let slot = {
            let mut state = self.state.lock();
            match state.slots.remove(id) {
                None => integral(id).and_then(|n| state.slots.remove(&Id::Num(n))),
                found => found,
            }
        };
        match slot {
            // The caller may have just given up; that is not an error.
            Some((tx, _group)) => {
                let _ = tx.send(reply);
                true
            }
            None => {
                let n = self.unknown.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(%id, unknown_total = n, "reply for an unknown id dropped");
                false
            }
        }
    }

    /// Fails every pending call with `Disconnected` and refuses new ones.
    pub(crate) fn fail_all(&self) {
        let slots = {
            let mut state = self.state.lock();
            state.closed = true;
            std::mem::take(&mut state.slots)
        };
        for (_, (tx, _)) in slots {
            let _ = tx.send(Err(Error::Disconnected));
        }
    }

    /// Fails the outstanding group with `error` when there is exactly one
    /// (one call, or the calls of one batch); returns how many calls failed
    /// (0 when none or several groups were outstanding).
    pub(crate) fn fail_sole_group(&self, error: &crate::codec::ErrorObject) -> usize {
        let slots = {
            let mut state = self.state.lock();
            let mut groups = state.slots.values().map(|(_, group)| *group);
            let Some(first) = groups.next() else { return 0 };
            if groups.any(|group| group != first) {
                return 0;
            }
            std::mem::take(&mut state.slots)
        };
        let failed = slots.len();
        for (_, (tx, _)) in slots {
            let _ = tx.send(Err(Error::Rpc(error.clone())));
        }
        failed
    }

    /// Whether a call with `id` is waiting for a reply.
    pub(crate) fn contains(&self, id: &Id) -> bool {
        self.state.lock().slots.contains_key(id)
    }

    /// Whether the table is closed (the connection is ending): inserts fail.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// How many calls are waiting for a reply.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().slots.len()
    }

    /// How many replies arrived for ids that were not pending.
    pub(crate) fn unknown_replies(&self) -> u64 {
        self.unknown.load(Ordering::Relaxed)
    }

    fn remove(&self, id: &Id) {
        self.state.lock().slots.remove(id);
    }
}

/// The integer a non-canonical numeric id stands for (`1.0`, `1e0`, `10E-1`),
/// when it is one exactly.
fn integral(id: &Id) -> Option<i64> {
    let Id::Number(text) = id else { return None };
    let value: f64 = text.parse().ok()?;
    // Only where f64 holds every integer exactly.
    (value.fract() == 0.0 && value.abs() <= 9_007_199_254_740_992.0).then_some(value as i64)
}

/// A caller's claim on one slot; removes the slot when dropped.
#[derive(Debug)]
pub(crate) struct PendingGuard {
    table: Arc<Pending>,
    id: Option<Id>,
    rx: oneshot::Receiver<Reply>,
}

impl PendingGuard {
    /// The id of this call.
    pub(crate) fn id(&self) -> &Id {
        self.id.as_ref().expect("id is taken only on completion")
    }

    /// Waits for the reply, up to `timeout` if one is given.
    pub(crate) async fn wait(mut self, timeout: Option<std::time::Duration>) -> Reply {
        let reply = match timeout {
            None => (&mut self.rx).await,
            Some(limit) => match tokio::time::timeout(limit, &mut self.rx).await {
                Ok(reply) => reply,
                // Dropping `self` below removes the slot at once.
                Err(_) => return Err(Error::Timeout(limit)),
            },
        };
        // The slot was removed by whoever answered.
        self.id = None;
        reply.unwrap_or(Err(Error::Disconnected))
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.table.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn a_reply_reaches_its_caller() {
        let table = Arc::new(Pending::new());
        let guard = table.insert(Id::Num(1)).unwrap();
        assert!(table.complete(&Id::Num(1), Ok(raw("5"))));
        assert_eq!(guard.wait(None).await.unwrap().get(), "5");
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn unknown_ids_are_counted_not_fatal() {
        let table = Arc::new(Pending::new());
        assert!(!table.complete(&Id::Num(9), Ok(raw("1"))));
        assert_eq!(table.unknown_replies(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_call_leaves_the_table_at_once() {
        let table = Arc::new(Pending::new());
        let guard = table.insert(Id::Num(1)).unwrap();
        let err = guard.wait(Some(Duration::from_millis(5))).await.unwrap_err();
        assert!(matches!(err, Error::Timeout(_)));
        assert_eq!(table.len(), 0);
        assert!(!table.complete(&Id::Num(1), Ok(raw("1"))), "a late reply is unknown");
    }

    #[tokio::test]
    async fn fail_all_ends_every_call_and_refuses_new_ones() {
        let table = Arc::new(Pending::new());
        let a = table.insert(Id::Num(1)).unwrap();
        let b = table.insert(Id::from("b")).unwrap();
        table.fail_all();
        assert!(matches!(a.wait(None).await, Err(Error::Disconnected)));
        assert!(matches!(b.wait(None).await, Err(Error::Disconnected)));
        assert!(matches!(table.insert(Id::Num(2)), Err(Error::Disconnected)));
    }

    #[tokio::test]
    async fn a_dropped_caller_frees_its_slot() {
        let table = Arc::new(Pending::new());
        drop(table.insert(Id::Num(1)).unwrap());
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn numeric_ids_match_by_value_and_strings_exactly() {
        let table = Arc::new(Pending::new());
        // (reply id, whether it matches the call with id 1)
        let cases = [("1", true), ("1.0", true), ("1e0", true), ("10E-1", true), ("1.5", false), (r#""1""#, false)];
        for (reply, matches) in cases {
            let guard = table.insert(Id::Num(1)).unwrap();
            assert_eq!(table.complete(&Id::from_json(reply).unwrap(), Ok(raw("5"))), matches, "reply id {reply}");
            drop(guard);
        }
        let _guard = table.insert(Id::from("1")).unwrap();
        assert!(!table.complete(&Id::Num(1), Ok(raw("5"))), "a number never matches a string");
        assert!(table.complete(&Id::from("1"), Ok(raw("5"))));
    }

    #[tokio::test]
    async fn an_error_without_id_fails_the_sole_outstanding_group_only() {
        let table = Arc::new(Pending::new());
        let error = crate::codec::ErrorObject::invalid_request("batch too long");
        let batch = table.insert_group([Id::Num(1), Id::Num(2)]).unwrap();
        assert_eq!(table.fail_sole_group(&error), 2);
        for guard in batch {
            assert!(matches!(guard.wait(None).await, Err(Error::Rpc(e)) if e == error));
        }
        let _a = table.insert(Id::Num(3)).unwrap();
        let _b = table.insert(Id::Num(4)).unwrap();
        assert_eq!(table.fail_sole_group(&error), 0, "two calls outstanding: ambiguous");
        assert_eq!(table.len(), 2);
    }

    #[tokio::test]
    async fn duplicate_ids_are_refused() {
        let table = Arc::new(Pending::new());
        let _a = table.insert(Id::Num(1)).unwrap();
        assert!(table.insert(Id::Num(1)).is_err());
    }
}
