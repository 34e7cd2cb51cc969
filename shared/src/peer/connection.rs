//! The connection task: one per socket, owning it. Its loop reads every
//! frame as it comes (never pausing: flow control lives in [`dispatch`](super::dispatch)),
//! writes queued frames, pings, and runs the graceful shutdown; its end is
//! guarded so that cleanup runs even if the task panics.
//!
//! Terms:
//! - **draining**: a graceful shutdown began; new requests are refused, the
//!   socket is still read, and the connection closes with 1001 once no
//!   request runs or at the deadline;
//! - **end of input** (a byte stream's end): the stream is not read again;
//!   the connection ends once every request received is answered and
//!   written;
//! - the **ending** runs exactly once however the task stops: every pending
//!   call fails with `Disconnected`, the queue closes, waiting tasks learn
//!   the [`CloseReason`], and the close hook runs.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::dispatch::Parked;
use super::rate::Bucket;
use super::{CloseHook, CloseReason, MalformedFrames, PeerHandle};
use crate::codec::{ErrorObject, Id, encode};
use crate::methods::Methods;
use crate::transport::{Inbound, Transport};
use crate::writer::{Drive, Writer};

/// The connection task's state.
pub(super) struct Connection {
    pub(super) handle: PeerHandle,
    pub(super) methods: Arc<Methods>,
    /// Set once our close frame is written (its code and reason): later
    /// frames are not dispatched.
    pub(super) close_sent: Option<Box<(u16, String)>>,
    /// Set when a graceful shutdown begins.
    pub(super) draining: bool,
    /// Set when the other side's input has ended (a byte stream's end): the
    /// stream is not read again; the connection ends once everything
    /// received is answered and written.
    input_ended: bool,
    /// While a batch is being handled, its ready answers are gathered here
    /// instead of being sent one by one.
    pub(super) collecting: Option<Vec<String>>,
    /// Requests waiting for a free in-flight slot (made on first use: idle
    /// connections carry one pointer for it).
    pub(super) parked: Option<Box<Parked>>,
    /// The rate limit's bucket, when the config has one (boxed: idle
    /// connections without a limit carry one empty pointer).
    pub(super) rate: Option<Box<Bucket>>,
    /// Set when the rate limit's `close_after` was reached: the connection
    /// closes once the frame being handled is answered.
    pub(super) close_for_rate: bool,
    /// Runs once when the connection has ended.
    on_close: Option<CloseHook>,
    /// Set once the ending has run; a task unwound by a panic finds it unset.
    ended: bool,
}

/// How many frames are read in a row before queued output gets written.
const READ_BURST: usize = 64;

/// A burst also ends once this many bytes of answers wait to be written: big
/// answers go out early instead of piling up (and their buffers are freed
/// sooner, which keeps the allocator from growing and shrinking its heap).
const BURST_OUTPUT: usize = 64 << 10;

impl Connection {
    pub(super) fn new(handle: PeerHandle, methods: Arc<Methods>, on_close: Option<CloseHook>) -> Self {
        let rate = handle.shared.config.rate_limit.map(|limit| Box::new(Bucket::new(limit, Instant::now())));
        Connection {
            rate,
            close_for_rate: false,
            handle,
            methods,
            close_sent: None,
            draining: false,
            input_ended: false,
            collecting: None,
            parked: None,
            on_close,
            ended: false,
        }
    }

    // A plain fn returning an `async move` block: an `async fn` would keep
    // its arguments twice in the task's state, once as arguments and once as
    // locals, and every idle connection would pay for the copy.
    #[allow(clippy::manual_async_fn, reason = "an async fn stores its arguments twice")]
    pub(super) fn run<T: Transport>(mut self, mut io: T::Io) -> impl Future<Output = ()> + Send + 'static {
        async move {
            let shared = Arc::clone(&self.handle.shared);
            // Without pings, silence proves nothing: no heartbeat.
            let heartbeat = shared.config.heartbeat.filter(|_| T::ping().is_some());
            let mut ticker = heartbeat.map(|hb| {
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + hb.interval, hb.interval);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut last_heard = Instant::now();
            let mut close_deadline: Option<tokio::time::Instant> = None;
            let mut deadline_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
            let mut writer = Writer::default();

            let reason = loop {
                if shared.queue.is_overflowed() {
                    break CloseReason::SlowConsumer;
                }
                let drain = *shared.drain_deadline.lock();
                if let Some(deadline) = drain {
                    if !self.draining {
                        self.draining = true;
                        self.refuse_parked(ErrorObject::shutting_down());
                    }
                    if self.close_sent.is_none()
                        && close_deadline.is_none()
                        && (self.handle.in_flight() == 0 || tokio::time::Instant::now() >= deadline)
                    {
                        self.handle.close(1001, "server shutting down");
                    }
                }
                self.unpark();
                if self.input_ended
                    && self.handle.in_flight() == 0
                    && self.parked.as_ref().is_none_or(|p| p.is_empty())
                    && !writer.has_work(&shared.queue)
                {
                    break self.local_or_remote(None, "end of input".into());
                }
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

                let (write, read) = (writer.has_work(&shared.queue), !self.input_ended);
                tokio::select! {
                    biased;
                    // Writing first, then reading, on the one I/O object.
                    event = poll_fn(|cx| poll_io::<T>(cx, &mut io, &mut writer, &shared.queue, write, read)), if write || read => match event {
                    Io::Drive(drive) => {
                        match drive {
                            Ok(Drive::CloseSent) => {
                                self.close_sent = writer.close_sent().cloned().map(Box::new);
                                close_deadline.get_or_insert_with(|| tokio::time::Instant::now() + Duration::from_secs(2));
                            }
                            Ok(Drive::Idle) => {}
                            Err(e) => break transport_reason(e),
                        }
                    }
                    // Always read: answers to our calls, pongs and
                    // cancellations must get through whatever the load.
                    Io::Read(frame) => {
                        last_heard = Instant::now();
                        if let Err(reason) = self.on_frame(T::read(frame)) {
                            break reason;
                        }
                        // Read what is already buffered before writing, so a burst is answered with one flush.
                        let mut burst_end = None;
                        for _ in 1..READ_BURST {
                            if shared.queue.queued_bytes() >= BURST_OUTPUT || self.input_ended {
                                break;
                            }
                            let Some(frame) = io.next().now_or_never() else { break };
                            if let Err(reason) = self.on_frame(T::read(frame)) {
                                burst_end = Some(reason);
                                break;
                            }
                        }
                        if let Some(reason) = burst_end {
                            break reason;
                        }
                    }
                    },
                    () = shared.queue.wake.notified() => {}
                    _ = async { ticker.as_mut().expect("guarded").tick().await }, if ticker.is_some() => {
                        let hb = heartbeat.expect("ticker implies heartbeat");
                        if last_heard.elapsed() >= hb.timeout {
                            break CloseReason::IdleTimeout;
                        }
                        let _ = shared.queue.push_control(crate::writer::Outgoing::Ping);
                    }
                    () = poll_fn(|cx| deadline_timer.as_mut().map_or(Poll::Pending, |t| t.as_mut().poll(cx))), if deadline_timer.is_some() => {
                        if close_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                            let (code, reason) = self.close_sent.as_deref().cloned().unwrap_or((1001, String::new()));
                            let reason = format!("{reason} (the close handshake timed out)").trim_start().to_owned();
                            break CloseReason::Local { code, reason };
                        }
                    }
                }
            };
            // Boxed: the goodbye is needed once, so its state is not carried by
            // every idle connection's task.
            Box::pin(self.finish::<T>(reason, io)).await
        }
    }

    /// Handles one read. `Err` ends the connection.
    fn on_frame(&mut self, frame: Inbound) -> Result<(), CloseReason> {
        match frame {
            Inbound::Text(text) => {
                self.on_text(text.as_str());
                Ok(())
            }
            Inbound::Binary(bytes) => {
                match std::str::from_utf8(&bytes) {
                    Ok(text) => self.on_text(text),
                    Err(_) => self.on_malformed(ErrorObject::parse_error("binary frame is not UTF-8 JSON")),
                }
                Ok(())
            }
            Inbound::Heard => Ok(()),
            Inbound::Closed { code, reason } => Err(self.local_or_remote(code, reason)),
            Inbound::EndOfInput => {
                self.input_ended = true;
                // No reply can come any more.
                self.handle.shared.pending.fail_all();
                Ok(())
            }
            Inbound::TooBig { size, max } => {
                tracing::warn!(size, max_size = max, "message too big");
                Err(CloseReason::MessageTooBig)
            }
            Inbound::Ended(reason) => Err(reason),
        }
    }

    fn local_or_remote(&self, code: Option<u16>, reason: String) -> CloseReason {
        match self.close_sent.as_deref() {
            Some((code, reason)) => CloseReason::Local { code: *code, reason: reason.clone() },
            None => CloseReason::Remote { code, reason },
        }
    }

    /// Ends the connection: fails pending calls, says goodbye where it can,
    /// and publishes the reason.
    async fn finish<T: Transport>(mut self, reason: CloseReason, mut sink: T::Io) {
        // Callers learn at once; the goodbye below may take a while.
        self.fail_calls();
        let goodbye = match &reason {
            CloseReason::SlowConsumer => Some((CloseCode::Policy, "slow consumer")),
            CloseReason::MessageTooBig => Some((CloseCode::Size, "message too big")),
            CloseReason::IdleTimeout => Some((CloseCode::Away, "idle timeout")),
            CloseReason::Transport(_) => Some((CloseCode::Protocol, "protocol error")),
            CloseReason::Remote { .. } | CloseReason::Local { .. } => None,
        };
        if let Some((code, text)) = goodbye {
            tracing::info!(%reason, "closing connection");
            let close = T::close(code, Utf8Bytes::from_static(text));
            // No close frame to say why: an over-long message gets the
            // answer a malformed one would.
            let answer = if close.is_none() { self.last_answer(&reason) } else { None };
            // Best effort: a peer that does not read may never take it.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                match close {
                    Some(close) => sink.send(close).await,
                    None => {
                        if let Some(answer) = answer {
                            sink.feed(T::text(answer.into())).await?;
                        }
                        sink.close().await
                    }
                }
            })
            .await;
        } else {
            tracing::debug!(%reason, "connection ended");
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        }
        self.end(reason);
    }

    /// On a transport without close frames, what is said before closing:
    /// -32600 with `"id": null` for a message over the size limit (when
    /// malformed frames are answered).
    fn last_answer(&self, reason: &CloseReason) -> Option<String> {
        let answers = self.handle.shared.config.malformed_frames == MalformedFrames::Answer;
        (answers && *reason == CloseReason::MessageTooBig).then(|| {
            let error = ErrorObject::invalid_request(
                "message too big: it exceeds the size limit (max_message_size); the connection is closed",
            );
            encode::error(&Id::Null, &error)
        })
    }

    fn fail_calls(&self) {
        let shared = &self.handle.shared;
        shared.pending.fail_all();
        shared.queue.close();
        shared.inflight.cancel_all();
    }

    /// The rest of the ending: the reason is published, the hook runs.
    fn end(&mut self, reason: CloseReason) {
        self.ended = true;
        self.fail_calls();
        let shared = &self.handle.shared;
        *shared.closed.lock() = Some(reason.clone());
        shared.closed_notify.notify_waiters();
        if let Some(hook) = self.on_close.take() {
            hook(&self.handle, &reason);
        }
    }
}

/// A task unwound by a panic still ends its connection: a panic cannot skip
/// the cleanup (every pending call fails, waiters learn, the hook runs).
impl Drop for Connection {
    fn drop(&mut self) {
        if !self.ended {
            tracing::error!("the connection task panicked; its connection is closed");
            self.end(CloseReason::Transport("the connection task panicked".into()));
        }
    }
}

/// What the I/O object did: the writer's drive ended, or a read came in.
enum Io<T: Transport> {
    Drive(Result<Drive, T::Error>),
    Read(Option<<T::Io as futures_util::Stream>::Item>),
}

/// Drives the writer (when `write`), then reads (when `read`): the two
/// branches of the connection's loop that need the I/O object, in one poll
/// so that they can share it.
fn poll_io<T: Transport>(
    cx: &mut std::task::Context<'_>,
    io: &mut T::Io,
    writer: &mut Writer,
    queue: &crate::writer::OutboundQueue,
    write: bool,
    read: bool,
) -> Poll<Io<T>> {
    if write && let Poll::Ready(drive) = writer.poll_drive::<T>(cx, io, queue) {
        return Poll::Ready(Io::Drive(drive));
    }
    if read && let Poll::Ready(frame) = io.poll_next_unpin(cx) {
        return Poll::Ready(Io::Read(frame));
    }
    Poll::Pending
}

fn transport_reason(e: impl std::fmt::Display) -> CloseReason {
    CloseReason::Transport(e.to_string())
}

/// Guards on what every open connection carries for its whole life, so that
/// growth shows up here rather than as idle memory in a benchmark (see
/// "Where an idle connection's memory goes" in BENCHMARKS.md). The bounds
/// hold in debug and release builds.
#[cfg(test)]
mod sizes {
    use super::*;
    use crate::context::ConnectionInfo;
    use crate::peer::PeerConfig;
    use crate::peer::handle::Shared;
    use crate::transport::ServerSocket;

    /// The connection task's future: today 768 bytes, the WebSocket
    /// stream inline (it is not split into two halves behind a lock).
    /// Tokio's task holds it with a header and a trailer, rounded up to 128
    /// bytes: 896 today, 1,024 once the future passes 816 bytes.
    const TASK_FUTURE_MAX: usize = 816;
    /// What a connection's handles share: today 384 bytes (the outbound
    /// queue's arena and how it frames texts are 40 of them).
    const SHARED_MAX: usize = 384;
    /// A connection's facts from the handshake: today 232 bytes.
    const INFO_MAX: usize = 232;

    #[tokio::test]
    async fn the_connection_task_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let connect = tokio_tungstenite::connect_async(format!("ws://{}/", listener.local_addr().unwrap()));
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio_tungstenite::accept_async(tcp).await.unwrap()
        };
        let (client, server) = tokio::join!(connect, accept);
        let handle = PeerHandle::new(ConnectionInfo::new(), Arc::new(PeerConfig::default()), Arc::default());
        let io = Transport::into_io(server);
        let task = Connection::new(handle.clone(), Arc::default(), None).run::<WebSocketStream>(io);
        let size = std::mem::size_of_val(&task);
        assert!(size <= TASK_FUTURE_MAX, "the connection task's future is {size} bytes (bound {TASK_FUTURE_MAX})");
        drop((task, client));
        // What a hub serves its WebSocket connections with.
        let (ours, _theirs) = tokio::io::duplex(64);
        let io = Transport::into_io(ServerSocket::from_raw_socket(ours, None).await);
        let task =
            Connection::new(handle.clone(), Arc::default(), None).run::<ServerSocket<tokio::io::DuplexStream>>(io);
        let size = std::mem::size_of_val(&task);
        assert!(size <= TASK_FUTURE_MAX, "a hub connection task's future is {size} bytes (bound {TASK_FUTURE_MAX})");
    }

    #[test]
    fn what_a_connections_handles_share_stays_small() {
        let size = std::mem::size_of::<Shared>();
        assert!(size <= SHARED_MAX, "peer state is {size} bytes (bound {SHARED_MAX})");
        let size = std::mem::size_of::<ConnectionInfo>();
        assert!(size <= INFO_MAX, "ConnectionInfo is {size} bytes (bound {INFO_MAX})");
    }

    type WebSocketStream = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
}
