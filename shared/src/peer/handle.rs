//! [`PeerHandle`]: what other tasks hold of a connection. Calls and
//! notifications to the other side, pre-encoded pushes, close, shutdown,
//! and the wait for the end.
//!
//! Terms:
//! - a **call** inserts its id into the pending table, queues its frame and
//!   waits for the reply, all within one timeout;
//! - a call that gives up (its timeout passed, or its future was dropped)
//!   **cancels**: it sends `$/cancelRequest` so the other side can stop the
//!   work (unless [`Cancellation::Off`]); a reply that still arrives is
//!   counted as unknown and dropped.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::inflight::InFlight;
use super::{BatchBuilder, CANCEL_METHOD, Cancellation, CloseReason, Jsonrpc1, PeerConfig};
use crate::codec::{EncodeError, Id, encode, v1};
use crate::context::ConnectionInfo;
use crate::error::Error;
use crate::methods::Methods;
use crate::pending::Pending;
use crate::writer::{OutboundQueue, Outgoing, Overflow, PushError, Sheddable};

/// Counters of one connection.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) calls_answered: AtomicU64,
    /// Counters of rare events, made on the first one: idle connections
    /// carry one pointer for them.
    rare: std::sync::OnceLock<Box<RareStats>>,
}

/// Counters of events most connections never see.
#[derive(Debug, Default)]
pub(super) struct RareStats {
    pub(super) busy_refusals: AtomicU64,
    pub(super) dropped_notifications: AtomicU64,
    pub(super) handler_panics: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) errors_without_id: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) shed_publications: AtomicU64,
    pub(super) rate_limited: AtomicU64,
}

impl Stats {
    /// Counts one rare event.
    pub(super) fn count(&self, counter: fn(&RareStats) -> &AtomicU64) {
        self.add(counter, 1);
    }

    /// Counts `n` rare events.
    pub(super) fn add(&self, counter: fn(&RareStats) -> &AtomicU64, n: u64) {
        counter(self.rare.get_or_init(Box::default)).fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a rare counter (0 before its first event).
    pub(super) fn read(&self, counter: fn(&RareStats) -> &AtomicU64) -> u64 {
        self.rare.get().map_or(0, |rare| counter(rare).load(Ordering::Relaxed))
    }
}

/// The state a connection's task and its handles share.
pub(super) struct Shared {
    pub(super) info: Arc<ConnectionInfo>,
    pub(super) queue: OutboundQueue,
    pub(super) pending: Arc<Pending>,
    pub(super) inflight: InFlight,
    next_id: AtomicU64,
    /// Shared by every connection of a server: one allocation, not one each.
    pub(super) config: Arc<PeerConfig>,
    /// The methods this connection serves (their state is reached through it).
    pub(super) methods: Arc<Methods>,
    pub(super) in_flight: AtomicUsize,
    /// Why the connection ended, once it has; `closed_notify` wakes the waiters.
    pub(super) closed: Mutex<Option<CloseReason>>,
    pub(super) closed_notify: Notify,
    /// Set by a graceful shutdown: refuse new requests, close once in-flight ones are answered or at the deadline.
    pub(super) drain_deadline: Mutex<Option<Instant>>,
    /// Set with `drain_deadline`, read on every request without a lock.
    pub(super) draining: AtomicBool,
    pub(super) stats: Stats,
    /// No connection behind it ([`PeerHandle::one_shot`]): sends fail with `Error::OneShot`.
    one_shot: bool,
}

impl Shared {
    /// Our request, in the JSON-RPC this connection speaks.
    fn encode_request(&self, id: &Id, method: &str, params: &impl Serialize) -> Result<String, EncodeError> {
        match self.config.jsonrpc1 {
            Jsonrpc1::Speak => v1::request(id, method, params),
            _ => encode::request(id, method, params),
        }
    }

    /// Our notification, in the JSON-RPC this connection speaks.
    fn encode_notification(&self, method: &str, params: &impl Serialize) -> Result<String, EncodeError> {
        match self.config.jsonrpc1 {
            Jsonrpc1::Speak => v1::notification(method, params),
            _ => encode::notification(method, params),
        }
    }
}

/// A cheap, cloneable handle to one connection: call or notify the other
/// side, push pre-encoded frames, close, or wait for the end.
#[derive(Clone)]
pub struct PeerHandle {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHandle").field("id", &self.shared.info.id).finish_non_exhaustive()
    }
}

impl PeerHandle {
    pub(super) fn new(info: ConnectionInfo, config: Arc<PeerConfig>, methods: Arc<Methods>) -> Self {
        let shared = Arc::new(Shared {
            info: Arc::new(info),
            queue: OutboundQueue::new(config.max_queue_bytes),
            pending: Arc::new(Pending::new()),
            inflight: InFlight::default(),
            next_id: AtomicU64::new(1),
            config,
            methods,
            in_flight: AtomicUsize::new(0),
            closed: Mutex::new(None),
            closed_notify: Notify::new(),
            drain_deadline: Mutex::new(None),
            draining: AtomicBool::new(false),
            stats: Stats::default(),
            one_shot: false,
        });
        PeerHandle { shared }
    }

    /// A handle with no connection behind it, for a request that came over a
    /// one-shot transport (an HTTP POST), so that its handler gets a
    /// [`Context`](crate::Context) like any other: the caller's facts, the
    /// methods' state, the config's extensions. Calls, notifications and
    /// pushes on it fail at once with [`Error::OneShot`]; it counts as
    /// closed; the cancellation token of its requests never fires (a request
    /// whose HTTP client leaves has its handler dropped instead).
    pub fn one_shot(info: ConnectionInfo, config: Arc<PeerConfig>, methods: Arc<Methods>) -> Self {
        let shared = Arc::new(Shared {
            info: Arc::new(info),
            queue: OutboundQueue::new(0),
            pending: Arc::new(Pending::new()),
            inflight: InFlight::default(),
            next_id: AtomicU64::new(1),
            config,
            methods,
            in_flight: AtomicUsize::new(0),
            closed: Mutex::new(Some(CloseReason::Local { code: 1000, reason: "one-shot request".into() })),
            closed_notify: Notify::new(),
            drain_deadline: Mutex::new(None),
            draining: AtomicBool::new(false),
            stats: Stats::default(),
            one_shot: true,
        });
        shared.queue.close();
        PeerHandle { shared }
    }

    /// Whether this handle has no connection behind it ([`PeerHandle::one_shot`]):
    /// the request came over HTTP, and the caller cannot be called back,
    /// notified or subscribed.
    pub fn is_one_shot(&self) -> bool {
        self.shared.one_shot
    }

    /// `Err(OneShot)` for a handle without a connection, before anything is queued.
    fn sendable(&self) -> Result<(), Error> {
        if self.shared.one_shot { Err(Error::OneShot) } else { Ok(()) }
    }

    /// The connection's facts (id, remote, headers...).
    pub fn info(&self) -> &Arc<ConnectionInfo> {
        &self.shared.info
    }

    /// The connection id.
    pub fn id(&self) -> uuid::Uuid {
        self.shared.info.id
    }

    /// A fresh id for an outgoing call.
    pub fn next_id(&self) -> Id {
        match &self.shared.config.id_generator {
            Some(generate) => generate(),
            None => Id::Num(self.shared.next_id.fetch_add(1, Ordering::Relaxed) as i64),
        }
    }

    /// The configuration this connection was started with.
    pub fn config(&self) -> &PeerConfig {
        &self.shared.config
    }

    /// The methods this connection serves.
    pub fn methods(&self) -> &Methods {
        &self.shared.methods
    }

    /// The default timeout of outgoing calls.
    pub fn default_timeout(&self) -> Option<Duration> {
        self.shared.config.call_timeout
    }

    /// Calls `method` on the other side; await the returned [`PeerCall`] for
    /// the result decoded into `R`. The connection's default timeout applies
    /// unless [`PeerCall::timeout`] or [`PeerCall::no_timeout`] says otherwise.
    ///
    /// ```no_run
    /// # async fn demo(peer: switchboard_shared::PeerHandle) -> Result<(), switchboard_shared::Error> {
    /// use std::time::Duration;
    /// let name: String = peer.call("name", ()).await?;
    /// let slow: u64 = peer.call("report", [2024]).timeout(Duration::from_secs(60)).await?;
    /// # let _ = (name, slow); Ok(()) }
    /// ```
    pub fn call<R: DeserializeOwned>(&self, method: &str, params: impl Serialize) -> PeerCall<R> {
        let id = self.next_id();
        let frame = self.shared.encode_request(&id, method, &params).map_err(Error::from);
        PeerCall {
            peer: self.clone(),
            id,
            frame: Some(frame),
            timeout: self.shared.config.call_timeout,
            running: None,
            result: PhantomData,
        }
    }

    /// Calls `method` and returns the raw result; `timeout` bounds the wait
    /// for queue room and for the reply together, `None` waits forever.
    pub async fn call_raw(
        &self,
        method: &str,
        params: impl Serialize,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, Error> {
        let id = self.next_id();
        let frame = self.shared.encode_request(&id, method, &params)?;
        self.call_encoded(id, frame, timeout).await
    }

    async fn call_encoded(&self, id: Id, frame: String, timeout: Option<Duration>) -> Result<Box<RawValue>, Error> {
        match super::observe::Outgoing::start(self, &id, &frame) {
            None => self.send_and_wait(id, frame, timeout).await,
            Some(watch) => watch.finish(self.send_and_wait(id, frame, timeout).await),
        }
    }

    async fn send_and_wait(&self, id: Id, frame: String, timeout: Option<Duration>) -> Result<Box<RawValue>, Error> {
        self.sendable()?;
        let deadline = timeout.map(|limit| Instant::now() + limit);
        let guard = self.shared.pending.insert(id)?;
        let cancel = CancelOnDrop::arm(self, guard.id());
        within(deadline, timeout, self.send_text(frame.into())).await?;
        let reply = guard.wait(deadline.map(|d| d.saturating_duration_since(Instant::now()))).await;
        finish_call(cancel, reply, timeout)
    }

    /// Sends a notification (no reply). Waiting for queue room (with
    /// [`Overflow::Wait`]) is bounded by the default call timeout.
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        let timeout = self.shared.config.call_timeout;
        let deadline = timeout.map(|t| Instant::now() + t);
        within(deadline, timeout, self.notify_with(method, params, self.shared.config.overflow)).await
    }

    /// Sends a notification with an explicit overflow policy, without a
    /// timeout: a producer that would rather wait for a slow reader than cut
    /// it off (a stream of notifications it was asked for) passes
    /// [`Overflow::Wait`]; bound the wait with `tokio::time::timeout` if it
    /// must end. With [`Overflow::Disconnect`] a full queue closes the
    /// connection and this returns `Disconnected`.
    ///
    /// The frame is encoded into a per-thread buffer and copied into the
    /// connection's outbound buffer: a notification costs no allocation of
    /// its own.
    ///
    /// ```no_run
    /// # async fn demo(peer: switchboard_shared::PeerHandle) -> Result<(), switchboard_shared::Error> {
    /// use switchboard_shared::Overflow;
    /// for seq in 0..1000u64 {
    ///     peer.notify_with("tick", [seq], Overflow::Wait).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn notify_with(&self, method: &str, params: impl Serialize, overflow: Overflow) -> Result<(), Error> {
        self.sendable()?;
        let queue = &self.shared.queue;
        let pushed = match self.shared.config.jsonrpc1 {
            Jsonrpc1::Speak => queue.try_push_encoded(v1::notification(method, &params)?.as_bytes()),
            _ => encode::notification_in(method, &params, |text| queue.try_push_encoded(text))?,
        };
        let queued = match pushed {
            Ok(()) => Ok(()),
            Err((PushError::Full, frame)) => match overflow {
                Overflow::Wait => queue.push_wait(frame).await,
                Overflow::Disconnect => queue.push(frame, Overflow::Disconnect),
            },
            Err((error, _)) => Err(error),
        };
        queued.map_err(|_| Error::Disconnected)
    }

    /// Sends a batch; returns one result per call, in the order added.
    /// `timeout` bounds the wait for queue room and for every reply.
    pub async fn batch(
        &self,
        batch: BatchBuilder,
        timeout: Option<Duration>,
    ) -> Result<Vec<Result<Box<RawValue>, Error>>, Error> {
        if let Some(e) = batch.error {
            return Err(e);
        }
        self.sendable()?;
        if self.shared.config.jsonrpc1 == Jsonrpc1::Speak {
            return Err(Error::Encode("JSON-RPC 1.0 has no batches: send the calls one by one".into()));
        }
        if batch.frames.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = timeout.map(|limit| Instant::now() + limit);
        let guards = self.shared.pending.insert_group(batch.ids.into_iter().flatten())?;
        let cancels: Vec<_> = guards.iter().map(|g| CancelOnDrop::arm(self, g.id())).collect();
        within(deadline, timeout, self.send_text(encode::batch(&batch.frames).into())).await?;
        let left = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let replies = futures_util::future::join_all(guards.into_iter().map(|g| g.wait(left()))).await;
        Ok(cancels.into_iter().zip(replies).map(|(cancel, reply)| finish_call(cancel, reply, timeout)).collect())
    }

    /// Queues an already-encoded frame (e.g. a notification shared by many
    /// connections: the bytes are reference-counted, not copied).
    ///
    /// With [`Overflow::Disconnect`] a full queue closes the connection and
    /// this returns `Disconnected`; with [`Overflow::Wait`] it waits for room.
    pub async fn send_text(&self, frame: Utf8Bytes) -> Result<(), Error> {
        self.send_text_with(frame, self.shared.config.overflow).await
    }

    /// Queues an already-encoded frame with an explicit overflow policy:
    /// a producer that would rather wait for a slow reader than cut it off
    /// (a bulk transfer it was asked for) passes [`Overflow::Wait`].
    pub async fn send_text_with(&self, frame: Utf8Bytes, overflow: Overflow) -> Result<(), Error> {
        self.sendable()?;
        let queued = match overflow {
            Overflow::Disconnect => self.shared.queue.push(Outgoing::Text(frame), Overflow::Disconnect),
            Overflow::Wait => self.shared.queue.push_wait(Outgoing::Text(frame)).await,
        };
        queued.map_err(|_| Error::Disconnected)
    }

    /// Queues an already-encoded frame without ever waiting: a full queue is
    /// handled by the overflow policy (`Wait` returns `Full` as `Disconnected`
    /// without closing).
    pub fn try_send_text(&self, frame: Utf8Bytes) -> Result<(), Error> {
        self.sendable()?;
        self.shared.queue.push(Outgoing::Text(frame), self.shared.config.overflow).map_err(|_| Error::Disconnected)
    }

    /// Queues a publication of a topic with a slow-consumer policy without
    /// ever waiting: when the frames still queued leave no room, the queue
    /// sheds publications of `tag.topic` as `tag.shed` says (counted by
    /// [`shed_publications`](Self::shed_publications)) instead of closing the
    /// connection. `Disconnected` when the connection is closing, or was just
    /// closed as a slow consumer because shedding could not make room.
    pub fn try_send_publication(&self, frame: Utf8Bytes, tag: &Arc<Sheddable>) -> Result<(), Error> {
        self.sendable()?;
        match self.shared.queue.push_publication(frame, tag) {
            Ok(0) => Ok(()),
            Ok(shed) => {
                super::observe::flow(self, super::observe::FlowEvent::Shed { tag, count: shed });
                self.shared.stats.add(|s| &s.shed_publications, shed as u64);
                Ok(())
            }
            Err(_) => Err(Error::Disconnected),
        }
    }

    /// Closes the connection: frames queued so far are written first, then a
    /// close frame with `code` and `reason`.
    pub fn close(&self, code: u16, reason: &str) {
        let _ = self.shared.queue.push_control(Outgoing::Close(CloseCode::from(code), Utf8Bytes::from(reason)));
    }

    /// Graceful shutdown: new requests are answered -32000 "Server shutting
    /// down" (parked ones too), while answers, our calls' replies and the
    /// other side's replies keep flowing; once every running request is
    /// answered, or at `deadline`, the connection closes with 1001.
    pub fn shutdown(&self, deadline: Instant) {
        *self.shared.drain_deadline.lock() = Some(deadline);
        self.shared.draining.store(true, Ordering::Release);
        self.shared.queue.wake.notify_one();
    }

    /// Waits until the connection has ended, and says why.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let ended = self.shared.closed_notify.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if let Some(reason) = self.shared.closed.lock().clone() {
                return reason;
            }
            ended.await;
        }
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.closed.lock().clone()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.lock().is_some()
    }

    /// Whether the connection is ending or has ended: from the moment the
    /// socket is found gone (pending calls failed) until [`PeerHandle::closed`]
    /// resolves, new calls already fail with `Disconnected`.
    pub fn is_closing(&self) -> bool {
        self.shared.pending.is_closed()
    }

    /// Calls we made that still wait for a reply.
    pub fn pending_calls(&self) -> usize {
        self.shared.pending.len()
    }

    /// Replies that arrived for ids we were not waiting for.
    pub fn unknown_replies(&self) -> u64 {
        self.shared.pending.unknown_replies()
    }

    /// Inbound calls currently being handled (parked ones not included).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Inbound calls answered so far.
    pub fn calls_answered(&self) -> u64 {
        self.shared.stats.calls_answered.load(Ordering::Relaxed)
    }

    /// Inbound requests refused with -32002 "Server busy" so far.
    pub fn busy_refusals(&self) -> u64 {
        self.shared.stats.read(|s| &s.busy_refusals)
    }

    /// Inbound notifications dropped so far because the parked bound was
    /// full, the connection was shutting down, or the rate limit refused them.
    pub fn dropped_notifications(&self) -> u64 {
        self.shared.stats.read(|s| &s.dropped_notifications)
    }

    /// Inbound requests and notifications the rate limit refused so far
    /// (requests answered -32005, notifications dropped; see
    /// [`PeerConfig::rate_limit`]).
    pub fn rate_limited(&self) -> u64 {
        self.shared.stats.read(|s| &s.rate_limited)
    }

    /// Handlers that panicked so far (each was answered -32603, or not at all
    /// for a notification).
    pub fn handler_panics(&self) -> u64 {
        self.shared.stats.read(|s| &s.handler_panics)
    }

    /// Inbound requests cancelled by the other side so far.
    pub fn cancelled_requests(&self) -> u64 {
        self.shared.stats.read(|s| &s.cancelled)
    }

    /// Error responses with `"id": null` received so far ([`StrayMessage::ErrorWithoutId`](super::StrayMessage::ErrorWithoutId)).
    pub fn errors_without_id(&self) -> u64 {
        self.shared.stats.read(|s| &s.errors_without_id)
    }

    /// Frames received so far that were not JSON-RPC (not JSON, an empty batch).
    pub fn malformed_frames(&self) -> u64 {
        self.shared.stats.read(|s| &s.malformed)
    }

    /// Publications shed so far by their topic's slow-consumer policy
    /// ([`try_send_publication`](Self::try_send_publication)).
    pub fn shed_publications(&self) -> u64 {
        self.shared.stats.read(|s| &s.shed_publications)
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queue.queued_bytes()
    }

    /// The cancellation token of the other side's request `id`.
    pub(crate) fn cancellation_token(&self, id: &Id) -> tokio_util::sync::CancellationToken {
        if self.is_closing() {
            let token = tokio_util::sync::CancellationToken::new();
            token.cancel();
            return token;
        }
        self.shared.inflight.token(id)
    }
}

/// Runs `send` within what is left before `deadline`.
async fn within<F: Future<Output = Result<(), Error>>>(
    deadline: Option<Instant>,
    limit: Option<Duration>,
    send: F,
) -> Result<(), Error> {
    match (deadline, limit) {
        (Some(deadline), Some(limit)) => {
            tokio::time::timeout_at(deadline, send).await.unwrap_or(Err(Error::Timeout(limit)))
        }
        _ => send.await,
    }
}

/// Ends a call: a reply (or a definite failure) disarms its cancellation; a
/// timeout leaves it armed, so dropping it sends `$/cancelRequest`.
fn finish_call(
    cancel: CancelOnDrop,
    reply: Result<Box<RawValue>, Error>,
    limit: Option<Duration>,
) -> Result<Box<RawValue>, Error> {
    match reply {
        // The pending table reports its own remaining-time limit: report the call's.
        Err(Error::Timeout(_)) => Err(Error::Timeout(limit.unwrap_or_default())),
        other => {
            cancel.disarm();
            other
        }
    }
}

/// Sends `$/cancelRequest` for a call when dropped while still armed.
struct CancelOnDrop {
    armed: Option<(Arc<Shared>, Id)>,
}

impl CancelOnDrop {
    fn arm(peer: &PeerHandle, id: &Id) -> Self {
        let armed =
            (peer.shared.config.cancellation == Cancellation::Notify).then(|| (Arc::clone(&peer.shared), id.clone()));
        CancelOnDrop { armed }
    }

    fn disarm(mut self) {
        self.armed = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some((shared, id)) = self.armed.take() else { return };
        if shared.pending.is_closed() {
            return;
        }
        #[derive(Serialize)]
        struct Params<'a> {
            id: &'a Id,
        }
        if let Ok(frame) = shared.encode_notification(CANCEL_METHOD, &Params { id: &id }) {
            // Optional: a full queue skips it rather than wait or close.
            if shared.queue.push_if_room(Outgoing::Text(frame.into())).is_err() {
                tracing::debug!(%id, "cancellation not sent: the outbound queue is full");
            }
        }
    }
}

type RunningCall = Pin<Box<dyn Future<Output = Result<Box<RawValue>, Error>> + Send>>;

/// One call to the other side, returned by [`PeerHandle::call`]: set its
/// timeout, then await it (it is a [`Future`], so it also composes with
/// `join_all`, `select!` and `FuturesUnordered`). Nothing is sent before the
/// first poll; dropping it after that cancels the call.
#[must_use = "a call is sent only when it is awaited"]
pub struct PeerCall<R> {
    peer: PeerHandle,
    id: Id,
    frame: Option<Result<String, Error>>,
    timeout: Option<Duration>,
    running: Option<RunningCall>,
    result: PhantomData<fn() -> R>,
}

impl<R> PeerCall<R> {
    /// Fails with [`Error::Timeout`] if no reply came within `limit`
    /// (instead of the connection's default).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Waits for the reply however long it takes (until the connection ends).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }
}

impl<R> std::fmt::Debug for PeerCall<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerCall").field("id", &self.id).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl<R: DeserializeOwned> Future for PeerCall<R> {
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.running.is_none() {
            let frame = match this.frame.take() {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => panic!("PeerCall polled after completion"),
            };
            let (peer, id, timeout) = (this.peer.clone(), this.id.clone(), this.timeout);
            this.running = Some(Box::pin(async move { peer.call_encoded(id, frame, timeout).await }));
        }
        let raw = std::task::ready!(this.running.as_mut().expect("started above").as_mut().poll(cx));
        Poll::Ready(raw.and_then(|raw| decode_result(&raw)))
    }
}

/// Decodes a raw result into the caller's type.
pub fn decode_result<R: DeserializeOwned>(raw: &RawValue) -> Result<R, Error> {
    serde_json::from_str(raw.get()).map_err(|e| Error::Decode(e.to_string()))
}
