//! [`BatchBuilder`]: an outgoing batch of calls and notifications, sent as
//! one JSON array by [`PeerHandle::batch`].

use serde::Serialize;

use super::PeerHandle;
use crate::codec::{Id, encode};
use crate::error::Error;

/// An outgoing batch: calls and notifications sent as one JSON array, built
/// entry by entry and sent with [`PeerHandle::batch`].
#[derive(Debug, Default)]
pub struct BatchBuilder {
    pub(super) frames: Vec<String>,
    /// One per entry: the call's id, `None` for a notification.
    pub(super) ids: Vec<Option<Id>>,
    /// The first entry whose params could not be encoded.
    pub(super) error: Option<Error>,
}

impl BatchBuilder {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a call; its result comes back at this position among the calls.
    pub fn call(mut self, handle: &PeerHandle, method: &str, params: impl Serialize) -> Self {
        let id = handle.next_id();
        match encode::request(&id, method, &params) {
            Ok(frame) => {
                self.frames.push(frame);
                self.ids.push(Some(id));
            }
            Err(e) => self.error = self.error.or(Some(e.into())),
        }
        self
    }

    /// Adds a notification (no result).
    pub fn notify(mut self, method: &str, params: impl Serialize) -> Self {
        match encode::notification(method, &params) {
            Ok(frame) => {
                self.frames.push(frame);
                self.ids.push(None);
            }
            Err(e) => self.error = self.error.or(Some(e.into())),
        }
        self
    }

    /// How many entries (calls and notifications) it holds.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}
