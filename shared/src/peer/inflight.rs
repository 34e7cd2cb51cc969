//! The requests of the other side that are running now, by id, so that a
//! `$/cancelRequest` can stop one.
//!
//! Terms:
//! - a request is **tracked** from the moment its handler turns out to wait
//!   (it did not finish on its first poll) until it is answered; only
//!   tracked requests can be cancelled (the others are answered already);
//! - **cancelling** a tracked request aborts its handler's future (it is
//!   dropped at its next poll, so its `Drop` guards run) and fires its
//!   **token**, which the handler may have asked for through
//!   [`Context::cancellation`](crate::Context::cancellation) to stop work it
//!   handed to other tasks. The task that ran the handler then answers
//!   -32800: every request still gets exactly one response;
//! - a token asked for on the handler's first poll exists before the request
//!   is tracked; the entry is created then and tracking fills it in.

use std::collections::HashMap;

use futures_util::future::{AbortHandle, AbortRegistration};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::codec::Id;

#[derive(Debug, Default)]
struct Entry {
    abort: Option<AbortHandle>,
    token: Option<CancellationToken>,
}

/// The running requests of one connection. The map is made on first use:
/// most connections never have a handler that waits.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    #[allow(clippy::box_collection, reason = "one pointer in every idle connection instead of a 48-byte map")]
    calls: Mutex<Option<Box<HashMap<Id, Entry>>>>,
}

impl InFlight {
    /// Starts tracking `id`; the returned registration makes its handler abortable.
    pub(crate) fn track(&self, id: Id) -> AbortRegistration {
        let (abort, registration) = AbortHandle::new_pair();
        self.calls.lock().get_or_insert_default().entry(id).or_default().abort = Some(abort);
        registration
    }

    /// The token of request `id`, made on first use.
    pub(crate) fn token(&self, id: &Id) -> CancellationToken {
        let mut calls = self.calls.lock();
        let entry = calls.get_or_insert_default().entry(id.clone()).or_default();
        entry.token.get_or_insert_with(CancellationToken::new).clone()
    }

    /// Cancels request `id`. `false` when it is not tracked (already answered, or never waited).
    pub(crate) fn cancel(&self, id: &Id) -> bool {
        let Some(entry) = self.calls.lock().as_mut().and_then(|calls| calls.remove(id)) else { return false };
        if let Some(token) = entry.token {
            token.cancel();
        }
        match entry.abort {
            Some(abort) => {
                abort.abort();
                true
            }
            None => false,
        }
    }

    /// Stops tracking `id` (its answer is on its way).
    pub(crate) fn finish(&self, id: &Id) {
        if let Some(calls) = self.calls.lock().as_mut() {
            calls.remove(id);
        }
    }

    /// Whether anything is tracked or has a token (a cheap check before `finish`).
    pub(crate) fn is_empty(&self) -> bool {
        self.calls.lock().as_ref().is_none_or(|calls| calls.is_empty())
    }

    /// Cancels everything: the connection has ended.
    pub(crate) fn cancel_all(&self) {
        let calls = self.calls.lock().take().unwrap_or_default();
        for (_, entry) in *calls {
            if let Some(token) = entry.token {
                token.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::Abortable;

    #[tokio::test]
    async fn cancelling_a_tracked_request_aborts_it_and_fires_its_token() {
        let table = InFlight::default();
        let id = Id::Num(7);
        let token = table.token(&id);
        let registration = table.track(id.clone());
        assert!(table.cancel(&id));
        assert!(token.is_cancelled());
        assert!(Abortable::new(std::future::pending::<()>(), registration).await.is_err());
        assert!(table.is_empty());
    }

    #[test]
    fn an_untracked_or_finished_request_cannot_be_cancelled() {
        let table = InFlight::default();
        assert!(!table.cancel(&Id::Num(1)));
        let _registration = table.track(Id::Num(1));
        table.finish(&Id::Num(1));
        assert!(!table.cancel(&Id::Num(1)));
    }
}
