//! Running the other side's requests under flow control.
//!
//! Terms:
//! - a handler is first **polled in place**; one that finishes at once (most
//!   do) costs no task and no extra wake-up. One that has to wait is spawned
//!   and is **in flight** until it is answered;
//! - at `max_in_flight`, new requests are **parked**: copied out of their
//!   frame into a FIFO bounded in bytes (`max_parked_bytes`), and run as
//!   slots free up, in arrival order;
//! - beyond the parked bound a request is **refused busy**: answered at once
//!   with -32002 "Server busy" (`data` names the limit), a notification is
//!   dropped and counted. While **draining** (graceful shutdown) every new
//!   or parked request is refused with -32000 "Server shutting down";
//! - before any of this, a connection with a **rate limit** takes a token
//!   per call (see `rate.rs`); a call without one is answered -32005 "Rate
//!   limited" (a notification dropped) and never reaches the bounds above;
//! - responses never enter this: the connection routes them to the pending
//!   table as they arrive, so no bound here can hold up an answer the
//!   running handlers are waiting for.
//!
//! A JSON-RPC 1.0 request (with [`Jsonrpc1`] on) runs the same way; each of
//! its answers is re-encoded in 1.0 just before it is queued.
//!
//! Every request gets exactly one response: its handler's, -32603 if the
//! handler panicked (at any point, with the request's own id), -32800 if
//! its caller cancelled it, or a refusal. Notifications get none, even
//! when their handler panics.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::Abortable;
use serde_json::value::RawValue;
use tracing::Instrument as _;

use super::connection::Connection;
use super::observe;
use super::rate::{RATE_LIMIT_CLOSE_CODE, RATE_LIMIT_CLOSE_REASON, Verdict};
use super::{CANCEL_METHOD, Cancellation, Jsonrpc1, MalformedFrames, StrayMessage};
use crate::codec::{self, Entry, ErrorObject, Frame, Id, Invalid, InvalidKind, Version, encode};
use crate::context::Context;
use crate::error::Error;
use crate::methods::{Dispatch, HandlerFuture, panicked};

/// A request (or notification) copied out of its frame to wait for a slot.
#[derive(Debug)]
struct OwnedCall {
    method: Box<str>,
    params: Option<Box<RawValue>>,
    id: Option<Id>,
    version: Version,
}

/// One entry of a batch, ready to run.
#[derive(Debug)]
enum Item<'a> {
    Call {
        method: Cow<'a, str>,
        params: Option<&'a RawValue>,
        id: Option<Id>,
    },
    /// An entry answered without running anything (an invalid entry's error).
    Answer(String),
}

/// [`Item`] copied out of its frame.
#[derive(Debug)]
enum OwnedItem {
    Call(OwnedCall),
    Answer(String),
}

#[derive(Debug)]
enum Work {
    One(OwnedCall),
    Batch(Vec<OwnedItem>),
}

/// Requests waiting for an in-flight slot, bounded in bytes.
#[derive(Debug)]
pub(super) struct Parked {
    queue: VecDeque<(Work, usize)>,
    bytes: usize,
    max_bytes: usize,
}

/// What a parked entry is counted as besides its params: the copy's own
/// allocations, so that many tiny requests cannot park unbounded memory.
const PARK_OVERHEAD: usize = 64;

impl Parked {
    fn new(max_bytes: usize) -> Self {
        Parked { queue: VecDeque::new(), bytes: 0, max_bytes }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn has_room(&self, bytes: usize) -> bool {
        self.queue.is_empty() || self.bytes + bytes <= self.max_bytes
    }

    fn push(&mut self, work: Work, bytes: usize) {
        self.bytes += bytes;
        self.queue.push_back((work, bytes));
    }

    fn pop(&mut self) -> Option<Work> {
        let (work, bytes) = self.queue.pop_front()?;
        self.bytes -= bytes;
        Some(work)
    }

    /// Takes out the single parked request with `id`.
    fn remove(&mut self, id: &Id) -> bool {
        let found =
            self.queue.iter().position(|(work, _)| matches!(work, Work::One(call) if call.id.as_ref() == Some(id)));
        match found.and_then(|at| self.queue.remove(at)) {
            Some((_, bytes)) => {
                self.bytes -= bytes;
                true
            }
            None => false,
        }
    }
}

impl OwnedCall {
    fn new(method: &str, params: Option<&RawValue>, id: Option<Id>, version: Version) -> Self {
        OwnedCall { method: method.into(), params: params.map(ToOwned::to_owned), id, version }
    }

    fn size(&self) -> usize {
        PARK_OVERHEAD + self.method.len() + self.params.as_ref().map_or(0, |p| p.get().len())
    }
}

/// What the rate limit makes of one call.
enum Limited {
    /// It may run.
    Pass,
    /// A refused request: send this answer instead.
    Answer(String),
    /// A refused notification, or anything once the connection is closing for abuse.
    Drop,
}

/// What happens to a request that arrives now.
enum Admit {
    Run,
    Park,
    Refuse(ErrorObject),
}

impl Connection {
    pub(super) fn on_text(&mut self, text: &str) {
        if self.close_sent.is_some() {
            return;
        }
        if self.handle.shared.config.jsonrpc1 != Jsonrpc1::Reject {
            return self.on_text_compat(text);
        }
        match codec::decode_frame(text) {
            Err(error) => self.on_malformed(error),
            Ok(Frame::Single(entry)) => {
                if let Some(item) = self.on_entry(entry) {
                    self.on_single(item, Version::V2);
                }
            }
            Ok(Frame::Batch(entries)) => self.on_batch(entries),
        }
        if self.close_for_rate {
            self.close_for_rate = false;
            self.handle.close(RATE_LIMIT_CLOSE_CODE, RATE_LIMIT_CLOSE_REASON);
        }
    }

    /// [`on_text`](Self::on_text) with JSON-RPC 1.0 accepted too.
    fn on_text_compat(&mut self, text: &str) {
        match codec::decode_frame_compat(text) {
            Err(error) => self.on_malformed(error),
            Ok((Frame::Single(entry), version)) => {
                if let Some(item) = self.on_entry(entry) {
                    self.on_single(item, version);
                }
            }
            Ok((Frame::Batch(entries), _)) => self.on_batch(entries),
        }
    }

    /// Routes responses and cancellations at once; returns what is left to run.
    fn on_entry<'a>(&mut self, entry: Entry<'a>) -> Option<Item<'a>> {
        let pending = &self.handle.shared.pending;
        match entry {
            Ok(codec::Message::Request(req)) => {
                Some(Item::Call { method: req.method, params: req.params, id: Some(req.id) })
            }
            Ok(codec::Message::Notification(note)) => {
                if note.method == CANCEL_METHOD && self.handle.shared.config.cancellation == Cancellation::Notify {
                    self.on_cancel(note.params);
                    return None;
                }
                Some(Item::Call { method: note.method, params: note.params, id: None })
            }
            Ok(codec::Message::Response(resp)) => {
                match (resp.id, resp.outcome) {
                    (Id::Null, Err(error)) => self.on_error_without_id(error),
                    (id, outcome) => {
                        pending.complete(&id, outcome.map(|raw| raw.to_owned()).map_err(Error::Rpc));
                    }
                }
                None
            }
            Err(Invalid { kind: InvalidKind::Shapeless, id, .. }) if id != Id::Null && pending.contains(&id) => {
                // Neither a call nor a response, carrying the id of one of our
                // pending calls: a broken reply to it, which fails it at once.
                tracing::warn!(%id, "invalid response received: neither result nor error");
                let detail = "a response must carry exactly one of \"result\" and \"error\"; it had neither";
                pending.complete(&id, Err(Error::InvalidResponse(detail.into())));
                None
            }
            Err(Invalid { kind: InvalidKind::Request | InvalidKind::Shapeless, id, error }) => {
                Some(Item::Answer(encode::error(&id, &error)))
            }
            Err(Invalid { kind: InvalidKind::Response, id, error }) => {
                let detail = error.data.as_ref().and_then(|d| d.as_str()).unwrap_or("malformed").to_owned();
                tracing::warn!(%id, %detail, "invalid response received");
                if id != Id::Null {
                    pending.complete(&id, Err(Error::InvalidResponse(detail)));
                }
                None
            }
        }
    }

    fn on_single(&mut self, item: Item<'_>, version: Version) {
        let Item::Call { method, params, id } = item else {
            if let Item::Answer(answer) = item {
                self.reply_as(version, answer);
            }
            return;
        };
        if self.rate.is_some() {
            match self.rate_limit(id.as_ref(), Instant::now()) {
                Limited::Pass => {}
                Limited::Answer(answer) => return self.reply(answer),
                Limited::Drop => return,
            }
        }
        match self.admit(PARK_OVERHEAD + method.len() + params.map_or(0, |p| p.get().len())) {
            Admit::Run => self.run_one(&method, params, id, version),
            Admit::Park => {
                observe::flow(&self.handle, observe::FlowEvent::Parked);
                let call = OwnedCall::new(&method, params, id, version);
                let size = call.size();
                self.parked_mut().push(Work::One(call), size);
            }
            Admit::Refuse(error) => self.refuse(id, &error, version),
        }
    }

    fn on_batch(&mut self, entries: Vec<Entry<'_>>) {
        let too_long = entries.len() > self.handle.shared.config.max_batch_len;
        let count = entries.len();
        let items: Vec<Item<'_>> = entries.into_iter().filter_map(|entry| self.on_entry(entry)).collect();
        // Every call of the batch takes a token, also of one too long to run:
        // answering costs too.
        let items = if self.rate.is_some() { self.rate_limit_batch(items) } else { items };
        if items.is_empty() {
            return;
        }
        if too_long {
            let limit = self.handle.shared.config.max_batch_len;
            let error = ErrorObject::invalid_request(format!("batch of {count} entries exceeds the limit of {limit}"));
            return self.refuse_batch(items, &error);
        }
        let size = items
            .iter()
            .map(|item| match item {
                Item::Call { method, params, .. } => PARK_OVERHEAD + method.len() + params.map_or(0, |p| p.get().len()),
                Item::Answer(answer) => answer.len(),
            })
            .sum();
        match self.admit(size) {
            Admit::Run => self.run_batch(items),
            Admit::Park => {
                observe::flow(&self.handle, observe::FlowEvent::Parked);
                let owned = items
                    .into_iter()
                    .map(|item| match item {
                        Item::Call { method, params, id } => {
                            OwnedItem::Call(OwnedCall::new(&method, params, id, Version::V2))
                        }
                        Item::Answer(answer) => OwnedItem::Answer(answer),
                    })
                    .collect();
                self.parked_mut().push(Work::Batch(owned), size);
            }
            Admit::Refuse(error) => self.refuse_batch(items, &error),
        }
    }

    /// Takes a rate-limit token for each call of a batch: a refused request
    /// becomes its error answer, a refused notification leaves the batch.
    fn rate_limit_batch<'a>(&mut self, items: Vec<Item<'a>>) -> Vec<Item<'a>> {
        let now = Instant::now();
        items
            .into_iter()
            .filter_map(|item| match item {
                Item::Call { ref id, .. } => match self.rate_limit(id.as_ref(), now) {
                    Limited::Pass => Some(item),
                    Limited::Answer(answer) => Some(Item::Answer(answer)),
                    Limited::Drop => None,
                },
                answer @ Item::Answer(_) => Some(answer),
            })
            .collect()
    }

    /// Takes a rate-limit token for one call (the bucket must be set):
    /// counts a refusal, and starts the close when it is one too many.
    fn rate_limit(&mut self, id: Option<&Id>, now: Instant) -> Limited {
        let Some(bucket) = self.rate.as_mut() else { return Limited::Pass };
        let (wait, close) = match bucket.take(now) {
            Verdict::Admit => return Limited::Pass,
            Verdict::Ignore => return Limited::Drop,
            Verdict::Refuse(wait) => (wait, false),
            Verdict::RefuseAndClose(wait) => (wait, true),
        };
        let shared = &self.handle.shared;
        shared.stats.count(|s| &s.rate_limited);
        if close {
            tracing::warn!("rate limit exceeded again and again; closing with {RATE_LIMIT_CLOSE_CODE}");
            // After this frame's answers (see `on_text`): the last refusal is answered too.
            self.close_for_rate = true;
        }
        match id {
            Some(id) => Limited::Answer(encode::error(id, &ErrorObject::rate_limited(wait))),
            None => {
                shared.stats.count(|s| &s.dropped_notifications);
                Limited::Drop
            }
        }
    }

    /// Decides, from the load and the lifecycle, what becomes of new work of `bytes`.
    fn admit(&mut self, bytes: usize) -> Admit {
        if self.draining || self.handle.shared.draining.load(Ordering::Acquire) {
            return Admit::Refuse(ErrorObject::shutting_down());
        }
        let config = &self.handle.shared.config;
        if self.parked.as_ref().is_none_or(|p| p.queue.is_empty())
            && self.handle.in_flight() < config.max_in_flight.max(1)
        {
            return Admit::Run;
        }
        if self.parked.as_ref().is_none_or(|p| p.has_room(bytes)) {
            return Admit::Park;
        }
        Admit::Refuse(ErrorObject::server_busy(format!(
            "max_in_flight ({}) requests are running and max_parked_bytes ({}) are parked on this connection",
            config.max_in_flight, config.max_parked_bytes
        )))
    }

    /// Answers a request that will not run; drops (and counts) a notification.
    fn refuse(&mut self, id: Option<Id>, error: &ErrorObject, version: Version) {
        observe::refused(&self.handle, id.as_ref(), error.code);
        let stats = &self.handle.shared.stats;
        match id {
            Some(id) => {
                if error.code == codec::code::SERVER_BUSY {
                    stats.count(|s| &s.busy_refusals);
                }
                self.reply_as(version, encode::error(&id, error));
            }
            None => {
                stats.count(|s| &s.dropped_notifications);
                tracing::debug!(code = error.code, "notification dropped");
            }
        }
    }

    /// Answers every request of a batch with `error` (invalid entries keep
    /// their own errors), as one array; nothing when only notifications.
    fn refuse_batch(&mut self, items: Vec<Item<'_>>, error: &ErrorObject) {
        self.collecting = Some(Vec::new());
        for item in items {
            match item {
                Item::Call { id, .. } => self.refuse(id, error, Version::V2),
                Item::Answer(answer) => self.reply(answer),
            }
        }
        let answers = self.collecting.take().unwrap_or_default();
        if !answers.is_empty() {
            self.reply(encode::batch(&answers));
        }
    }

    /// The parked queue, made on first use.
    fn parked_mut(&mut self) -> &mut Parked {
        let max_bytes = self.handle.shared.config.max_parked_bytes;
        self.parked.get_or_insert_with(|| Box::new(Parked::new(max_bytes)))
    }

    /// Runs parked work while slots are free; frees the queue once it is empty.
    pub(super) fn unpark(&mut self) {
        if self.parked.as_ref().is_some_and(|p| p.queue.is_empty()) {
            self.parked = None;
            return;
        }
        let max = self.handle.shared.config.max_in_flight.max(1);
        while self.handle.in_flight() < max {
            let Some(work) = self.parked.as_mut().and_then(|p| p.pop()) else { break };
            match work {
                Work::One(call) => self.run_one(&call.method, call.params.as_deref(), call.id, call.version),
                Work::Batch(items) => {
                    let items = items
                        .iter()
                        .map(|item| match item {
                            OwnedItem::Call(call) => Item::Call {
                                method: Cow::Borrowed(&call.method),
                                params: call.params.as_deref(),
                                id: call.id.clone(),
                            },
                            OwnedItem::Answer(answer) => Item::Answer(answer.clone()),
                        })
                        .collect();
                    self.run_batch(items);
                }
            }
        }
    }

    /// Refuses everything parked (a graceful shutdown began).
    pub(super) fn refuse_parked(&mut self, error: ErrorObject) {
        while let Some(work) = self.parked.as_mut().and_then(|p| p.pop()) {
            match work {
                Work::One(call) => self.refuse(call.id, &error, call.version),
                Work::Batch(items) => {
                    let items = items
                        .into_iter()
                        .map(|item| match item {
                            OwnedItem::Call(call) => {
                                Item::Call { method: Cow::Borrowed(""), params: None, id: call.id }
                            }
                            OwnedItem::Answer(answer) => Item::Answer(answer),
                        })
                        .collect();
                    self.refuse_batch(items, &error);
                }
            }
        }
    }

    /// A frame that is not JSON-RPC: answered or reported, as configured.
    pub(super) fn on_malformed(&mut self, error: ErrorObject) {
        let shared = &self.handle.shared;
        shared.stats.count(|s| &s.malformed);
        match shared.config.malformed_frames {
            MalformedFrames::Answer => self.reply(encode::error(&Id::Null, &error)),
            _ => {
                tracing::warn!(%error, "malformed frame received");
                if let Some(hook) = &shared.config.on_stray {
                    hook(StrayMessage::Malformed { error });
                }
            }
        }
    }

    /// An error response nobody can be matched to by id.
    fn on_error_without_id(&mut self, error: ErrorObject) {
        let shared = &self.handle.shared;
        shared.stats.count(|s| &s.errors_without_id);
        let failed_calls = shared.pending.fail_sole_group(&error);
        tracing::warn!(%error, failed_calls, "error response without an id received");
        if let Some(hook) = &shared.config.on_stray {
            hook(StrayMessage::ErrorWithoutId { error, failed_calls });
        }
    }

    /// `$/cancelRequest {"id": ..}` from the other side.
    fn on_cancel(&mut self, params: Option<&RawValue>) {
        #[derive(serde::Deserialize)]
        struct CancelParams<'a> {
            #[serde(borrow)]
            id: &'a RawValue,
        }
        let id = params
            .and_then(|p| serde_json::from_str::<CancelParams<'_>>(p.get()).ok())
            .and_then(|p| Id::from_raw(p.id).ok());
        let Some(id) = id else {
            tracing::debug!("$/cancelRequest without a usable id ignored");
            return;
        };
        let shared = &self.handle.shared;
        if shared.inflight.cancel(&id) {
            // Its task answers -32800.
            shared.stats.count(|s| &s.cancelled);
        } else if self.parked.as_mut().is_some_and(|p| p.remove(&id)) {
            shared.stats.count(|s| &s.cancelled);
            self.reply(encode::error(&id, &ErrorObject::request_cancelled()));
        }
        // Otherwise it was answered already: nothing to do.
    }

    /// Runs one request or notification now.
    fn run_one(&mut self, method: &str, params: Option<&RawValue>, id: Option<Id>, version: Version) {
        if let Some(future) = self.invoke(method, params, id.clone(), version) {
            let tracked = self.track(future, id);
            match version {
                Version::V1 => self.spawn(async move { tracked.await.map(|answer| codec::v1::answer(&answer)) }, 1),
                _ => self.spawn(tracked, 1),
            }
        }
    }

    fn run_batch(&mut self, items: Vec<Item<'_>>) {
        self.collecting = Some(Vec::new());
        let mut waiting = Vec::new();
        for item in items {
            match item {
                Item::Call { method, params, id } => {
                    if let Some(future) = self.invoke(&method, params, id.clone(), Version::V2) {
                        waiting.push(Box::pin(self.track(future, id)));
                    }
                }
                Item::Answer(answer) => self.reply(answer),
            }
        }
        let mut ready = self.collecting.take().unwrap_or_default();
        if waiting.is_empty() {
            if !ready.is_empty() {
                self.reply(encode::batch(&ready));
            }
            return;
        }
        // Calls that must wait run together in one task, which sends the whole array.
        let count = waiting.len();
        let batch = async move {
            let outs = futures_util::future::join_all(waiting).await;
            ready.extend(outs.into_iter().flatten());
            (!ready.is_empty()).then(|| encode::batch(&ready))
        };
        self.spawn(batch, count);
    }

    /// Runs a handler, polling it once in place. Returns it if it must wait;
    /// an answer ready at once is queued in `version`.
    fn invoke(
        &mut self,
        method: &str,
        params: Option<&RawValue>,
        id: Option<Id>,
        version: Version,
    ) -> Option<HandlerFuture> {
        let audit =
            tracing::enabled!(target: "switchboard::call", tracing::Level::DEBUG) || observe::is_watched(&self.handle);
        let started = audit.then(observe::Started::now);
        let panic_id = id.clone();
        // Made per request: one reference count, instead of a context held by
        // every idle connection.
        let cx = Context::new(self.handle.clone());
        let (index, dispatch) = self.methods.dispatch_indexed(method, params, &cx, id);
        let call = |started| observe::Incoming { method, index, id: panic_id.as_ref(), started };
        let mut future = match dispatch {
            Dispatch::Ready(out) => {
                if let Some(started) = started {
                    audit_call(&self.handle, call(started), out.as_deref());
                }
                if let Some(out) = out {
                    self.reply_as(version, out);
                }
                return None;
            }
            Dispatch::Pending(future) => future,
        };
        let mut cx = std::task::Context::from_waker(Waker::noop());
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
        let shared = &self.handle.shared;
        if !matches!(polled, Ok(Poll::Pending)) && !shared.inflight.is_empty() {
            // Its handler may have asked for a cancellation token; it is done.
            if let Some(id) = &panic_id {
                shared.inflight.finish(id);
            }
        }
        match polled {
            Ok(Poll::Ready(out)) => {
                if let Some(started) = started {
                    audit_call(&self.handle, call(started), out.as_deref());
                }
                if let Some(out) = out {
                    self.reply_as(version, out);
                }
                None
            }
            Ok(Poll::Pending) => match started {
                Some(started) => {
                    // Reported when it answers, or as cancelled or panicked if it never does.
                    let waiting = observe::Waiting::new(&self.handle, call(started));
                    Some(Box::pin(async move {
                        let out = future.await;
                        waiting.answered(out.as_deref(), audit_call);
                        out
                    }))
                }
                None => Some(future),
            },
            Err(_) => {
                if let Some(started) = started {
                    let answer = panicked(panic_id.clone());
                    audit_call(&self.handle, call(started), answer.as_deref());
                }
                tracing::error!(method, "handler panicked");
                shared.stats.count(|s| &s.handler_panics);
                if let Some(out) = panicked(panic_id) {
                    self.reply_as(version, out);
                }
                None
            }
        }
    }

    /// Wraps a waiting handler: a panic at any point is answered with the
    /// request's own id (a notification's is not answered), and a request
    /// can be cancelled while it runs.
    fn track(&self, future: HandlerFuture, id: Option<Id>) -> impl Future<Output = Option<String>> + Send + 'static {
        let shared = Arc::clone(&self.handle.shared);
        let registration = match (&id, shared.config.cancellation) {
            (Some(id), Cancellation::Notify) => Some(shared.inflight.track(id.clone())),
            _ => None,
        };
        async move {
            let guarded = AssertUnwindSafe(future).catch_unwind();
            let outcome = match registration {
                None => guarded.await,
                Some(registration) => {
                    let outcome = Abortable::new(guarded, registration).await;
                    if let Some(id) = &id {
                        shared.inflight.finish(id);
                    }
                    match outcome {
                        Ok(outcome) => outcome,
                        Err(_aborted) => {
                            return id.map(|id| encode::error(&id, &ErrorObject::request_cancelled()));
                        }
                    }
                }
            };
            outcome.unwrap_or_else(|_| {
                tracing::error!(id = ?id, "handler panicked");
                shared.stats.count(|s| &s.handler_panics);
                panicked(id)
            })
        }
    }

    /// Queues an answer to a request read as `version`.
    fn reply_as(&mut self, version: Version, frame: String) {
        match version {
            Version::V1 => self.reply(codec::v1::answer(&frame)),
            _ => self.reply(frame),
        }
    }

    /// Queues an answer (or gathers it into the batch being handled).
    pub(super) fn reply(&mut self, frame: String) {
        if let Some(batch) = &mut self.collecting {
            batch.push(frame);
            return;
        }
        let shared = &self.handle.shared;
        shared.stats.calls_answered.fetch_add(1, Ordering::Relaxed);
        // A full answer bound closes the connection (slow consumer); the loop notices.
        let _ = shared.queue.push_reply(frame.into());
    }

    /// Runs a waiting handler on its own task; it counts `weight` calls in flight.
    fn spawn(&mut self, future: impl Future<Output = Option<String>> + Send + 'static, weight: usize) {
        let shared = Arc::clone(&self.handle.shared);
        shared.in_flight.fetch_add(weight, Ordering::AcqRel);
        tokio::spawn(
            async move {
                // Frees the slots however the task ends.
                let slot = Slot { shared, weight };
                if let Some(frame) = future.await {
                    slot.shared.stats.calls_answered.fetch_add(1, Ordering::Relaxed);
                    let _ = slot.shared.queue.push_reply(frame.into());
                }
            }
            .in_current_span(),
        );
    }
}

/// `weight` in-flight slots, given back on drop (and the connection woken to
/// run parked work).
struct Slot {
    shared: Arc<super::handle::Shared>,
    weight: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(self.weight, Ordering::AcqRel);
        self.shared.queue.wake.notify_one();
    }
}

fn audit_call(peer: &super::PeerHandle, call: observe::Incoming<'_>, out: Option<&str>) {
    observe::incoming(peer, call, out);
    if !tracing::enabled!(target: "switchboard::call", tracing::Level::DEBUG) {
        return;
    }
    let observe::Incoming { method, id, started, .. } = call;
    let outcome = match out {
        None => "notification",
        Some(frame) if frame.starts_with(r#"{"jsonrpc":"2.0","error""#) => "error",
        Some(_) => "ok",
    };
    tracing::debug!(
        target: "switchboard::call",
        method,
        id = %id.map(ToString::to_string).unwrap_or_default(),
        duration_us = started.elapsed().as_micros() as u64,
        outcome,
        "call"
    );
}
