//! The symmetric peer engine: drives one WebSocket for either end.
//!
//! One task per connection owns the socket. It reads frames, decodes them
//! once, and:
//! - dispatches **requests and notifications** to the [`Methods`] registry.
//!   A handler is polled once in place; one that finishes at once (most do)
//!   costs no task and no extra wake-up. One that has to wait is spawned and
//!   counts as **in flight**; at `max_in_flight` the task stops reading the
//!   socket (backpressure) until one finishes;
//! - routes **responses** to the [`Pending`] table;
//! - writes everything queued for this connection (responses, our calls,
//!   pushes) through the [`Writer`], coalescing a burst into one flush.
//!
//! When the socket ends, for whatever reason, every pending call fails with
//! [`Error::Disconnected`] at once and [`PeerHandle::closed`] resolves with
//! the [`CloseReason`].

use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::Instrument;

use crate::codec::{self, Entry, ErrorObject, Frame, Id, Invalid, InvalidKind, encode};
use crate::context::{ConnectionInfo, Context};
use crate::error::Error;
use crate::methods::{Dispatch, HandlerFuture, Methods, panicked};
use crate::pending::{Pending, PendingGuard};
use crate::writer::{Drive, OutboundQueue, Outgoing, Overflow, Writer};

/// Makes the ids of our outgoing calls.
pub type IdGenerator = Arc<dyn Fn() -> Id + Send + Sync>;

/// Keep-alive: ping every `interval`, give up when nothing was heard for `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// How often to send a ping.
    pub interval: Duration,
    /// How long silence (no frame of any kind) may last before the connection is closed.
    pub timeout: Duration,
}

/// How one connection behaves. Server and client set different defaults.
#[derive(Clone)]
pub struct PeerConfig {
    /// Handlers that may wait at once before the socket stops being read. Default 256.
    pub max_in_flight: usize,
    /// Bound on bytes waiting to be written. Default 4 MiB.
    pub max_queue_bytes: usize,
    /// What a full queue does. Default [`Overflow::Disconnect`].
    pub overflow: Overflow,
    /// Longest batch answered; a longer one gets a single -32600. Default 1,000.
    pub max_batch_len: usize,
    /// Timeout of our outgoing calls unless overridden. Default 10 s.
    pub call_timeout: Option<Duration>,
    /// Keep-alive pings. Default none.
    pub heartbeat: Option<Heartbeat>,
    /// Ids for our outgoing calls. Default: a counter from 1.
    pub id_generator: Option<IdGenerator>,
    /// Typed values every connection spawned with this config shares (a
    /// server puts a handle to itself here). [`Context::extension`] looks in
    /// the connection's own `ConnectionInfo::extensions` first, then here.
    /// Held once per config, not once per connection.
    pub extensions: http::Extensions,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            max_in_flight: 256,
            max_queue_bytes: 4 << 20,
            overflow: Overflow::Disconnect,
            max_batch_len: 1000,
            call_timeout: Some(Duration::from_secs(10)),
            heartbeat: None,
            id_generator: None,
            extensions: http::Extensions::new(),
        }
    }
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("max_in_flight", &self.max_in_flight)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("overflow", &self.overflow)
            .field("max_batch_len", &self.max_batch_len)
            .field("call_timeout", &self.call_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("custom_ids", &self.id_generator.is_some())
            .finish()
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The other side closed (with its close code and reason, if it sent a close frame).
    Remote {
        /// The close code it sent.
        code: Option<u16>,
        /// The reason it gave.
        reason: String,
    },
    /// We closed it ([`PeerHandle::close`] or a graceful shutdown).
    Local {
        /// The close code we sent.
        code: u16,
        /// The reason we gave.
        reason: String,
    },
    /// Its outbound queue overflowed: closed with 1008 "slow consumer".
    SlowConsumer,
    /// A message exceeded the size limit: closed with 1009.
    MessageTooBig,
    /// Nothing was heard for the heartbeat timeout.
    IdleTimeout,
    /// The WebSocket protocol was violated or the socket failed.
    Transport(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Remote { code: Some(code), reason } => write!(f, "closed by peer ({code} {reason})"),
            CloseReason::Remote { code: None, .. } => f.write_str("closed by peer"),
            CloseReason::Local { code, reason } => write!(f, "closed locally ({code} {reason})"),
            CloseReason::SlowConsumer => f.write_str("slow consumer"),
            CloseReason::MessageTooBig => f.write_str("message too big"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Transport(e) => write!(f, "transport error: {e}"),
        }
    }
}

/// Counters of one connection.
#[derive(Debug, Default)]
struct Stats {
    calls_answered: AtomicU64,
}

struct Shared {
    info: Arc<ConnectionInfo>,
    queue: OutboundQueue,
    pending: Arc<Pending>,
    next_id: AtomicU64,
    /// Shared by every connection of a server: one allocation, not one each.
    config: Arc<PeerConfig>,
    in_flight: AtomicUsize,
    /// Why the connection ended, once it has; `closed_notify` wakes the waiters.
    closed: Mutex<Option<CloseReason>>,
    closed_notify: Notify,
    /// Set by a graceful shutdown: stop reading, close once in-flight calls are done or at the deadline.
    drain_deadline: Mutex<Option<tokio::time::Instant>>,
    stats: Stats,
}

/// A cheap, cloneable handle to one connection: call or notify the other
/// side, push pre-encoded frames, close, or wait for the end.
#[derive(Clone)]
pub struct PeerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHandle").field("id", &self.shared.info.id).finish_non_exhaustive()
    }
}

/// Starts the engine on an open WebSocket. The connection task runs until the
/// socket ends; [`PeerHandle::closed`] reports why.
pub fn spawn<S>(
    ws: WebSocketStream<S>,
    methods: Arc<Methods>,
    info: ConnectionInfo,
    config: impl Into<Arc<PeerConfig>>,
) -> PeerHandle
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    spawn_with_close_hook(ws, methods, info, config, None)
}

/// Runs once on the connection's own task when it has ended, after every
/// pending call has failed and [`PeerHandle::closed`] has resolved.
pub type CloseHook = Box<dyn FnOnce(&PeerHandle, &CloseReason) + Send>;

/// [`spawn`], plus a hook run when the connection ends. A server uses it to
/// forget the connection without a second task per connection waiting for
/// the end (ten thousand idle sockets would pay for ten thousand of them).
pub fn spawn_with_close_hook<S>(
    ws: WebSocketStream<S>,
    methods: Arc<Methods>,
    info: ConnectionInfo,
    config: impl Into<Arc<PeerConfig>>,
    on_close: Option<CloseHook>,
) -> PeerHandle
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config: Arc<PeerConfig> = config.into();
    let shared = Arc::new(Shared {
        info: Arc::new(info),
        queue: OutboundQueue::new(config.max_queue_bytes),
        pending: Arc::new(Pending::new()),
        next_id: AtomicU64::new(1),
        config,
        in_flight: AtomicUsize::new(0),
        closed: Mutex::new(None),
        closed_notify: Notify::new(),
        drain_deadline: Mutex::new(None),
        stats: Stats::default(),
    });
    let handle = PeerHandle { shared };
    let span = tracing::info_span!("connection", id = %handle.shared.info.id, remote = ?handle.shared.info.remote);
    let task = Connection::new(handle.clone(), methods, on_close);
    // Split here, not in the task: the task's state then holds the two
    // halves, not also the dead space of the unsplit stream.
    let (sink, stream) = ws.split();
    if span.is_disabled() {
        // No subscriber wants the span: skip entering and leaving it on every poll.
        tokio::spawn(task.run(sink, stream));
    } else {
        tokio::spawn(task.run(sink, stream).instrument(span));
    }
    handle
}

/// One entry of an outgoing batch, built with [`BatchBuilder`].
#[derive(Debug, Default)]
pub struct BatchBuilder {
    frames: Vec<String>,
    ids: Vec<Option<Id>>,
    error: Option<Error>,
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

impl PeerHandle {
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

    /// The default timeout of outgoing calls.
    pub fn default_timeout(&self) -> Option<Duration> {
        self.shared.config.call_timeout
    }

    /// Calls `method` on the other side and decodes the result into `R`,
    /// with the connection's default timeout.
    pub async fn call<R: DeserializeOwned>(&self, method: &str, params: impl Serialize) -> Result<R, Error> {
        let raw = self.call_raw(method, params, self.shared.config.call_timeout).await?;
        decode_result(&raw)
    }

    /// Calls `method` and returns the raw result; `timeout: None` waits forever.
    pub async fn call_raw(
        &self,
        method: &str,
        params: impl Serialize,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>, Error> {
        let id = self.next_id();
        let frame = encode::request(&id, method, &params)?;
        let guard = self.shared.pending.insert(id)?;
        self.send_text(frame.into()).await?;
        guard.wait(timeout).await
    }

    /// Sends a notification (no reply).
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        let frame = encode::notification(method, &params)?;
        self.send_text(frame.into()).await
    }

    /// Sends a batch; returns one result per call, in the order added.
    pub async fn batch(
        &self,
        batch: BatchBuilder,
        timeout: Option<Duration>,
    ) -> Result<Vec<Result<Box<RawValue>, Error>>, Error> {
        if let Some(e) = batch.error {
            return Err(e);
        }
        if batch.frames.is_empty() {
            return Ok(Vec::new());
        }
        let guards = batch
            .ids
            .into_iter()
            .flatten()
            .map(|id| self.shared.pending.insert(id))
            .collect::<Result<Vec<PendingGuard>, Error>>()?;
        self.send_text(encode::batch(&batch.frames).into()).await?;
        Ok(futures_util::future::join_all(guards.into_iter().map(|g| g.wait(timeout))).await)
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
        self.shared.queue.push(Outgoing::Text(frame), self.shared.config.overflow).map_err(|_| Error::Disconnected)
    }

    /// Closes the connection: frames queued so far are written first, then a
    /// close frame with `code` and `reason`.
    pub fn close(&self, code: u16, reason: &str) {
        let _ = self.shared.queue.push_control(Outgoing::Close(CloseCode::from(code), Utf8Bytes::from(reason)));
    }

    /// Graceful shutdown: stop reading new calls, let in-flight ones finish
    /// until `deadline`, then close with 1001 "going away".
    pub fn shutdown(&self, deadline: tokio::time::Instant) {
        *self.shared.drain_deadline.lock() = Some(deadline);
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

    /// Inbound calls currently being handled.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Inbound calls answered so far.
    pub fn calls_answered(&self) -> u64 {
        self.shared.stats.calls_answered.load(Ordering::Relaxed)
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queue.queued_bytes()
    }
}

/// Decodes a raw result into the caller's type.
pub fn decode_result<R: DeserializeOwned>(raw: &RawValue) -> Result<R, Error> {
    serde_json::from_str(raw.get()).map_err(|e| Error::Decode(e.to_string()))
}

/// The connection task's state.
struct Connection {
    handle: PeerHandle,
    methods: Arc<Methods>,
    cx: Context,
    /// Set once our close frame is written: later frames are not dispatched.
    close_sent: bool,
    /// While a batch is being handled, its ready answers are gathered here
    /// instead of being sent one by one.
    collecting: Option<Vec<String>>,
    on_close: Option<CloseHook>,
}

/// How many frames are read in a row before queued output gets written.
const READ_BURST: usize = 64;

/// A burst also ends once this many bytes of answers wait to be written: big
/// answers go out early instead of piling up (and their buffers are freed
/// sooner, which keeps the allocator from growing and shrinking its heap).
const BURST_OUTPUT: usize = 64 << 10;

impl Connection {
    fn new(handle: PeerHandle, methods: Arc<Methods>, on_close: Option<CloseHook>) -> Self {
        let cx = Context::new(Arc::clone(&handle.shared.info), handle.clone());
        Connection { handle, methods, cx, close_sent: false, collecting: None, on_close }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    // A plain fn returning an `async move` block: an `async fn` would keep
    // its arguments twice in the task's state, once as arguments and once as
    // locals, and every idle connection would pay for the copy.
    #[allow(clippy::manual_async_fn, reason = "an async fn stores its arguments twice")]
    fn run<S>(
        mut self,
        mut sink: SplitSink<WebSocketStream<S>, Message>,
        mut stream: SplitStream<WebSocketStream<S>>,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        async move {
            let heartbeat = self.shared().config.heartbeat;
            let mut ticker = heartbeat.map(|hb| {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + hb.interval, hb.interval);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut last_heard = Instant::now();
            let mut close_deadline: Option<tokio::time::Instant> = None;
            let mut deadline_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
            let max_in_flight = self.shared().config.max_in_flight.max(1);
            let shared = Arc::clone(&self.handle.shared);
            let mut writer = Writer::default();

            let reason = loop {
                if shared.queue.is_overflowed() {
                    break CloseReason::SlowConsumer;
                }
                let drain = *self.shared().drain_deadline.lock();
                if let Some(deadline) = drain {
                    if !self.close_sent
                        && close_deadline.is_none()
                        && (self.handle.in_flight() == 0 || tokio::time::Instant::now() >= deadline)
                    {
                        self.handle.close(1001, "server shutting down");
                    }
                }
                let reading_allowed = drain.is_none() || self.close_sent;
                let can_read = reading_allowed && self.handle.in_flight() < max_in_flight;
                // One timer, boxed and made only while a deadline is set: idle
                // connections carry no timer state for it.
                match close_deadline.or(drain) {
                    None => deadline_timer = None,
                    Some(at) => match &mut deadline_timer {
                        Some(timer) if timer.deadline() == at => {}
                        Some(timer) => timer.as_mut().reset(at),
                        None => deadline_timer = Some(Box::pin(tokio::time::sleep_until(at))),
                    },
                }

                tokio::select! {
                    biased;
                    drive = poll_fn(|cx| writer.poll_drive(cx, &mut sink, &shared.queue)), if writer.has_work(&shared.queue) =>
                    {
                        match drive {
                            Ok(Drive::CloseSent) => {
                                self.close_sent = true;
                                close_deadline.get_or_insert_with(|| tokio::time::Instant::now() + Duration::from_secs(2));
                            }
                            Ok(Drive::Idle) => {}
                            Err(e) => break transport_reason(e),
                        }
                    }
                    frame = stream.next(), if can_read => {
                        last_heard = Instant::now();
                        match self.on_frame(frame) {
                            Ok(()) => {}
                            Err(reason) => break reason,
                        }
                        // Read what is already buffered before writing, so a burst is answered with one flush.
                        for _ in 1..READ_BURST {
                            if self.handle.in_flight() >= max_in_flight || shared.queue.queued_bytes() >= BURST_OUTPUT {
                                break;
                            }
                            let Some(frame) = stream.next().now_or_never() else { break };
                            if let Err(reason) = self.on_frame(frame) {
                                return Box::pin(self.finish(reason, sink)).await;
                            }
                        }
                    }
                    () = shared.queue.wake.notified() => {}
                    _ = async { ticker.as_mut().expect("guarded").tick().await }, if ticker.is_some() => {
                        let hb = heartbeat.expect("ticker implies heartbeat");
                        if last_heard.elapsed() >= hb.timeout {
                            break CloseReason::IdleTimeout;
                        }
                        let _ = shared.queue.push_control(Outgoing::Ping);
                    }
                    () = poll_fn(|cx| deadline_timer.as_mut().map_or(Poll::Pending, |t| t.as_mut().poll(cx))), if deadline_timer.is_some() => {
                        if close_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                            break CloseReason::Local { code: 1001, reason: "close handshake timed out".into() };
                        }
                    }
                }
            };
            // Boxed: the goodbye is needed once, so its state is not carried by
            // every idle connection's task.
            Box::pin(self.finish(reason, sink)).await
        }
    }

    /// Handles one read result. `Err` ends the connection.
    fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Result<(), CloseReason> {
        match frame {
            None => Err(self.local_or_remote(None, String::new())),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                tracing::warn!(size, max_size, "message too big");
                Err(CloseReason::MessageTooBig)
            }
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                Err(self.local_or_remote(None, String::new()))
            }
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                Err(CloseReason::Remote { code: None, reason: "reset without closing handshake".into() })
            }
            Some(Err(e)) => Err(transport_reason(e)),
            Some(Ok(Message::Text(text))) => {
                self.on_text(text.as_str());
                Ok(())
            }
            Some(Ok(Message::Binary(bytes))) => {
                match std::str::from_utf8(&bytes) {
                    Ok(text) => self.on_text(text),
                    Err(_) => self
                        .reply(encode::error(&Id::Null, &ErrorObject::parse_error("binary frame is not UTF-8 JSON"))),
                }
                Ok(())
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) =
                    frame.map_or((None, String::new()), |f| (Some(u16::from(f.code)), f.reason.to_string()));
                Err(self.local_or_remote(code, reason))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
        }
    }

    fn local_or_remote(&self, code: Option<u16>, reason: String) -> CloseReason {
        if self.close_sent {
            CloseReason::Local { code: 1001, reason: "closed".into() }
        } else {
            CloseReason::Remote { code, reason }
        }
    }

    fn on_text(&mut self, text: &str) {
        if self.close_sent {
            return;
        }
        match codec::decode_frame(text) {
            Err(error) => self.reply(encode::error(&Id::Null, &error)),
            Ok(Frame::Single(entry)) => {
                if let Some(future) = self.on_entry(entry) {
                    self.spawn(future, 1);
                }
            }
            Ok(Frame::Batch(entries)) => self.on_batch(entries),
        }
    }

    /// Handles one entry. A handler that must wait is returned, not spawned,
    /// so a batch can gather its handlers into one task.
    fn on_entry(&mut self, entry: Entry<'_>) -> Option<HandlerFuture> {
        match entry {
            Ok(codec::Message::Request(req)) => {
                let id = req.id;
                self.invoke(&req.method, req.params, Some(id))
            }
            Ok(codec::Message::Notification(note)) => self.invoke(&note.method, note.params, None),
            Ok(codec::Message::Response(resp)) => {
                let reply = resp.outcome.map(|raw| raw.to_owned()).map_err(Error::Rpc);
                self.shared().pending.complete(&resp.id, reply);
                None
            }
            Err(Invalid { kind: InvalidKind::Shapeless, id, .. })
                if id != Id::Null && self.shared().pending.contains(&id) =>
            {
                // Neither a call nor a response, carrying the id of one of our
                // pending calls: a broken reply to it, which fails it at once.
                tracing::warn!(%id, "invalid response received: neither result nor error");
                let detail = "a response must carry exactly one of \"result\" and \"error\"; it had neither";
                self.shared().pending.complete(&id, Err(Error::InvalidResponse(detail.into())));
                None
            }
            Err(Invalid { kind: InvalidKind::Request | InvalidKind::Shapeless, id, error }) => {
                self.reply(encode::error(&id, &error));
                None
            }
            Err(Invalid { kind: InvalidKind::Response, id, error }) => {
                let detail = error.data.as_ref().and_then(|d| d.as_str()).unwrap_or("malformed").to_owned();
                tracing::warn!(%id, %detail, "invalid response received");
                if id != Id::Null {
                    self.shared().pending.complete(&id, Err(Error::InvalidResponse(detail)));
                }
                None
            }
        }
    }

    /// Runs a handler, polling it once in place.
    fn invoke(&mut self, method: &str, params: Option<&RawValue>, id: Option<Id>) -> Option<HandlerFuture> {
        let audit = tracing::enabled!(target: "switchboard::call", tracing::Level::DEBUG);
        let started = audit.then(Instant::now);
        let panic_id = id.clone();
        let audit_id = if audit { id.clone() } else { None };
        let mut future = match self.methods.dispatch(method, params, &self.cx, id) {
            Dispatch::Ready(out) => {
                if let Some(started) = started {
                    audit_call(method, audit_id.as_ref(), started, out.as_deref());
                }
                if let Some(out) = out {
                    self.reply(out);
                }
                return None;
            }
            Dispatch::Pending(future) => future,
        };
        let mut cx = std::task::Context::from_waker(Waker::noop());
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(out)) => {
                if let Some(started) = started {
                    audit_call(method, audit_id.as_ref(), started, out.as_deref());
                }
                if let Some(out) = out {
                    self.reply(out);
                }
                None
            }
            Ok(Poll::Pending) => match started {
                Some(started) => {
                    let method = method.to_owned();
                    Some(Box::pin(async move {
                        let out = future.await;
                        audit_call(&method, audit_id.as_ref(), started, out.as_deref());
                        out
                    }))
                }
                None => Some(future),
            },
            Err(_) => {
                tracing::error!(method, "handler panicked");
                if let Some(out) = panicked(panic_id) {
                    self.reply(out);
                }
                None
            }
        }
    }

    fn on_batch(&mut self, entries: Vec<Entry<'_>>) {
        let limit = self.shared().config.max_batch_len;
        if entries.len() > limit {
            let error = ErrorObject::invalid_request(format!(
                "batch of {} entries exceeds the limit of {limit}",
                entries.len()
            ));
            self.reply(encode::error(&Id::Null, &error));
            return;
        }
        self.collecting = Some(Vec::new());
        let waiting: Vec<HandlerFuture> = entries.into_iter().filter_map(|entry| self.on_entry(entry)).collect();
        let mut ready = self.collecting.take().unwrap_or_default();
        if waiting.is_empty() {
            if !ready.is_empty() {
                self.reply(encode::batch(&ready));
            }
            return;
        }
        // Calls that must wait run together in one task, which sends the whole array.
        let count = waiting.len();
        let batch = Box::pin(async move {
            let outs =
                futures_util::future::join_all(waiting.into_iter().map(|f| AssertUnwindSafe(f).catch_unwind())).await;
            ready.extend(outs.into_iter().filter_map(|out| out.unwrap_or_else(|_| panicked(Some(Id::Null)))));
            (!ready.is_empty()).then(|| encode::batch(&ready))
        });
        self.spawn(batch, count);
    }

    /// Queues an answer (or gathers it into the batch being handled).
    fn reply(&mut self, frame: String) {
        if let Some(batch) = &mut self.collecting {
            batch.push(frame);
            return;
        }
        self.shared().stats.calls_answered.fetch_add(1, Ordering::Relaxed);
        // A full queue closes the connection (slow consumer); the loop notices.
        let _ = self.shared().queue.push(Outgoing::Text(frame.into()), Overflow::Disconnect);
    }

    /// Runs a waiting handler on its own task; it counts `weight` calls in flight.
    fn spawn(&mut self, future: HandlerFuture, weight: usize) {
        let shared = Arc::clone(&self.handle.shared);
        shared.in_flight.fetch_add(weight, Ordering::AcqRel);
        tokio::spawn(
            async move {
                let out = AssertUnwindSafe(future).catch_unwind().await.unwrap_or_else(|_| {
                    tracing::error!("handler panicked");
                    panicked(Some(Id::Null))
                });
                if let Some(frame) = out {
                    shared.stats.calls_answered.fetch_add(1, Ordering::Relaxed);
                    let _ = shared.queue.push(Outgoing::Text(frame.into()), Overflow::Disconnect);
                }
                shared.in_flight.fetch_sub(weight, Ordering::AcqRel);
                shared.queue.wake.notify_one();
            }
            .in_current_span(),
        );
    }

    /// Ends the connection: fails pending calls, says goodbye where it can,
    /// and publishes the reason.
    async fn finish<K>(mut self, reason: CloseReason, mut sink: K)
    where
        K: futures_util::Sink<Message, Error = WsError> + Unpin,
    {
        let shared = &self.handle.shared;
        shared.pending.fail_all();
        shared.queue.close();
        let goodbye = match &reason {
            CloseReason::SlowConsumer => Some((CloseCode::Policy, "slow consumer")),
            CloseReason::MessageTooBig => Some((CloseCode::Size, "message too big")),
            CloseReason::IdleTimeout => Some((CloseCode::Away, "idle timeout")),
            CloseReason::Transport(_) => Some((CloseCode::Protocol, "protocol error")),
            CloseReason::Remote { .. } | CloseReason::Local { .. } => None,
        };
        if let Some((code, text)) = goodbye {
            tracing::info!(%reason, "closing connection");
            let close = Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code,
                reason: Utf8Bytes::from_static(text),
            }));
            // Best effort: a peer that does not read may never take it.
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
        } else {
            tracing::debug!(%reason, "connection ended");
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        }
        *shared.closed.lock() = Some(reason.clone());
        shared.closed_notify.notify_waiters();
        if let Some(hook) = self.on_close.take() {
            hook(&self.handle, &reason);
        }
    }
}

fn transport_reason(e: WsError) -> CloseReason {
    CloseReason::Transport(e.to_string())
}

fn audit_call(method: &str, id: Option<&Id>, started: Instant, out: Option<&str>) {
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
