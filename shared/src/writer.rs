//! The outbound side of a connection: a byte-bounded queue that any task may
//! push frames into, and the [`Writer`] that the connection task uses to move
//! queued frames into the socket.
//!
//! Terms:
//! - **queued bytes** count every frame from push until the writer has handed
//!   it to the socket; the bound applies to them;
//! - **overflow** is a push that would take queued bytes past the bound. With
//!   [`Overflow::Disconnect`] (the server's choice) the connection is marked
//!   overflowed and closed with 1008 "slow consumer"; with [`Overflow::Wait`]
//!   (the client's) the pusher waits for room;
//! - **replies** (our answers to the other side's calls) are counted against
//!   a bound of their own, the same size: a peer whose queue is full of its
//!   own calls can still answer, so answering never costs the answerer its
//!   connection. Replies never wait: a peer that keeps calling without
//!   reading the answers overflows the reply bound and is cut off as a slow
//!   consumer, whatever the overflow policy;
//! - a **publication** of a topic with a slow-consumer policy is queued
//!   tagged ([`Sheddable`]): when the queue is full, the queue **sheds**
//!   publications of that topic to make room as the tag says ([`Shed`])
//!   instead of closing the connection. The bound for such a publication
//!   applies to the frames still queued, not to those the writer has
//!   already taken for the socket (a socket that does not drain holds them),
//!   so a connection holds at most about twice the bound;
//! - the **arena** is where frames the engine encodes itself (a
//!   notification through [`PeerHandle::notify`](crate::PeerHandle::notify))
//!   are copied to, one after the other in a shared buffer, instead of each
//!   getting an allocation of its own: a frame is a reference-counted slice
//!   of it, and a chunk is freed (or reused) once the writer has written
//!   every frame cut from it. Only this connection's frames are cut from its
//!   arena, so a chunk outlives its frames by at most one queue's worth; the
//!   arena is given back whenever the queue runs empty;
//! - a **run**: on a transport that frames texts itself (a
//!   [`TextHeader`]: a server's WebSocket), encoded texts are framed into the
//!   arena back to back and stay one queued frame (held by a placeholder at
//!   the queue's end) until something else is queued, the writer takes the
//!   queue, or the run reaches 32 KiB: the writer then writes them in one go;
//! - a **drive** of the writer moves every queued frame into the sink (texts
//!   through [`Transport::start_send_text`], pings and the close as the
//!   transport's frames) and then
//!   flushes once, so a burst of responses costs one write system call, not
//!   one per frame. It only takes a frame from the queue when the sink is
//!   ready for it, so cancelling a drive (the connection task's `select!`)
//!   never loses a frame.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::Sink;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::transport::Transport;

/// What to do when a connection's outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Close the connection with 1008 "slow consumer" (a server must not let
    /// one client that does not read grow its memory).
    Disconnect,
    /// Make the pusher wait until the writer has made room (a client that
    /// sends faster than its socket drains, a handler sending a bulk
    /// transfer).
    Wait,
}

/// How a full outbound queue may make room for a publication of a topic
/// instead of closing the connection (a server's per-topic slow-consumer
/// policy).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Shed {
    /// Drop the oldest queued publication of the same topic (as many as it
    /// takes); when none is queued, this one is dropped.
    DropOldest,
    /// Conflate: of the topic's queued publications only the newest per key
    /// stays (this one being the newest of its key; `None` is a key too).
    /// When that makes no room, the connection is closed as a slow consumer.
    LatestPerKey(Option<Arc<str>>),
}

/// What a queued publication carries besides its frame: its topic and how it
/// may be shed. One per publication, shared by all its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheddable {
    /// The topic's name.
    pub topic: Arc<str>,
    /// How it may be shed.
    pub shed: Shed,
}

/// A frame waiting to be written.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    Text(Utf8Bytes),
    /// Text the engine encoded itself (JSON from serde_json: UTF-8), cut
    /// from the arena.
    Encoded(Bytes),
    /// A run of texts the engine encoded, framed for the wire already (the
    /// transport has a [`TextHeader`]): written as they are.
    Framed(Bytes),
    /// Stands for the arena's frames not yet cut into a [`Framed`](Outgoing::Framed)
    /// run; only ever the last queued frame.
    ArenaTail,
    /// A publication the queue may shed when full.
    Publication(Utf8Bytes, Arc<Sheddable>),
    /// An answer to the other side's call: counted against the reply bound.
    Reply(Utf8Bytes),
    Ping,
    Close(CloseCode, Utf8Bytes),
}

impl Outgoing {
    /// (bytes against the main bound, bytes against the reply bound)
    fn len(&self) -> QueuedBytes {
        match self {
            Outgoing::Text(t) | Outgoing::Publication(t, _) => QueuedBytes { own: t.len(), replies: 0 },
            Outgoing::Encoded(t) => QueuedBytes { own: t.len(), replies: 0 },
            Outgoing::Reply(t) => QueuedBytes { own: 0, replies: t.len() },
            // Counted frame by frame when they were queued, never shed.
            Outgoing::Framed(_) | Outgoing::ArenaTail => QueuedBytes::default(),
            Outgoing::Ping | Outgoing::Close(..) => QueuedBytes::default(),
        }
    }

    /// Whether it carries a JSON text (not a ping or a close).
    fn is_text(&self) -> bool {
        !matches!(self, Outgoing::Ping | Outgoing::Close(..) | Outgoing::Framed(_) | Outgoing::ArenaTail)
    }

    /// The JSON text it carries (UTF-8 whichever way it came).
    #[inline]
    fn into_text(self) -> Option<Bytes> {
        match self {
            Outgoing::Text(t) | Outgoing::Reply(t) | Outgoing::Publication(t, _) => Some(Bytes::from(t)),
            Outgoing::Encoded(t) => Some(t),
            _ => None,
        }
    }

    /// The transport's frame for a ping or a close; `None` for a text, or
    /// when the transport has no such frame.
    #[inline]
    fn into_control<T: Transport>(self) -> Option<T::Frame> {
        match self {
            Outgoing::Ping => T::ping(),
            Outgoing::Close(code, reason) => T::close(code, reason),
            _ => None,
        }
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The bound was reached (and, with `Overflow::Disconnect`, the connection is closing).
    Full,
    /// The connection is closed or closing.
    Closed,
}

/// Queued bytes, counted against the two bounds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct QueuedBytes {
    own: usize,
    replies: usize,
}

impl std::ops::AddAssign for QueuedBytes {
    fn add_assign(&mut self, other: QueuedBytes) {
        self.own += other.own;
        self.replies += other.replies;
    }
}

impl std::ops::SubAssign for QueuedBytes {
    fn sub_assign(&mut self, other: QueuedBytes) {
        self.own = self.own.saturating_sub(other.own);
        self.replies = self.replies.saturating_sub(other.replies);
    }
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Outgoing>,
    /// Every byte from push until the writer has handed it to the socket.
    bytes: QueuedBytes,
    /// The bytes of `frames` (not yet taken by the writer).
    waiting: QueuedBytes,
    closed: bool,
    overflowed: bool,
    /// Where encoded frames are cut from (empty until the first one).
    arena: BytesMut,
    /// The next arena chunk's size: it doubles while the queue stays busy
    /// (a u32 packs with the flags above).
    chunk: u32,
    /// How the transport frames a text, when it frames texts itself: then
    /// encoded texts are framed into the arena and written in runs.
    header: Option<TextHeader>,
}

/// Writes into `out` what precedes a text of `len` bytes on the wire (a
/// transport whose text frames are a header and the text: see
/// [`Transport::text_header`]).
pub type TextHeader = fn(out: &mut BytesMut, len: usize);

/// The first arena chunk of a busy spell; each refill doubles it, up to
/// [`ARENA_CHUNK_MAX`].
const ARENA_CHUNK_MIN: usize = 1 << 10;
const ARENA_CHUNK_MAX: usize = 64 << 10;
/// Frames at least this big get an allocation of their own, not a slice of a chunk.
const ARENA_FRAME_MAX: usize = 2 << 10;
/// A run of framed texts is cut off the arena once it holds this much, so
/// that the writer gets runs of a size it writes at once.
const RUN_MAX: usize = 32 << 10;

impl State {
    /// Room for `len` more bytes in the arena (a new chunk when it has none).
    fn arena_room(&mut self, len: usize) {
        if self.arena.capacity() - self.arena.len() < len {
            // Reuses the chunk when every frame cut from it is gone; else the
            // bytes of the run not cut yet move to the new chunk.
            let chunk = (self.chunk as usize).clamp(ARENA_CHUNK_MIN, ARENA_CHUNK_MAX);
            self.arena.reserve(len.max(chunk));
            self.chunk = (2 * chunk) as u32;
        }
    }

    /// `text` copied into the arena, as a frame of its own.
    fn cut(&mut self, text: &[u8]) -> Bytes {
        self.arena_room(text.len());
        self.arena.extend_from_slice(text);
        self.arena.split().freeze()
    }

    /// `text` framed into the arena's run; true when the queue was empty.
    fn frame_into_run(&mut self, header: TextHeader, text: &[u8]) -> bool {
        self.arena_room(text.len() + 10);
        header(&mut self.arena, text.len());
        self.arena.extend_from_slice(text);
        let len = QueuedBytes { own: text.len(), replies: 0 };
        self.bytes += len;
        self.waiting += len;
        let was_empty = self.frames.is_empty();
        if !matches!(self.frames.back(), Some(Outgoing::ArenaTail)) {
            self.frames.push_back(Outgoing::ArenaTail);
        }
        if self.arena.len() >= RUN_MAX {
            self.seal();
        }
        was_empty
    }

    /// Cuts the arena's run into a frame of its own, in the tail's place.
    fn seal(&mut self) {
        if let Some(tail @ Outgoing::ArenaTail) = self.frames.back_mut() {
            *tail = Outgoing::Framed(self.arena.split().freeze());
        }
    }

    /// Queues `frame`, counted as `len`; true when the queue was empty (the
    /// writer must be woken: a non-empty queue has woken it already).
    fn enqueue(&mut self, frame: Outgoing, len: QueuedBytes) -> bool {
        self.seal();
        let was_empty = self.frames.is_empty();
        self.bytes += len;
        self.waiting += len;
        self.frames.push_back(frame);
        was_empty
    }

    /// Removes the frames `drop` picks; returns how many.
    fn drop_frames(&mut self, mut drop: impl FnMut(usize, &Outgoing) -> bool) -> usize {
        let mut at = 0;
        let mut gone = QueuedBytes::default();
        let mut count = 0;
        self.frames.retain(|frame| {
            let keep = !drop(at, frame);
            at += 1;
            if !keep {
                gone += frame.len();
                count += 1;
            }
            keep
        });
        self.bytes -= gone;
        self.waiting -= gone;
        count
    }
}

/// Whether `frame` is a publication of `topic`.
fn tagged<'a>(frame: &'a Outgoing, topic: &str) -> Option<&'a Sheddable> {
    match frame {
        Outgoing::Publication(_, tag) if *tag.topic == *topic => Some(tag),
        _ => None,
    }
}

/// The bounded outbound queue of one connection.
#[derive(Debug)]
pub(crate) struct OutboundQueue {
    state: Mutex<State>,
    max_bytes: usize,
    /// Wakes the connection task: there is output, or something else changed.
    pub(crate) wake: Notify,
    /// Wakes pushers waiting for room.
    space: Notify,
}

impl OutboundQueue {
    pub(crate) fn new(max_bytes: usize) -> Self {
        OutboundQueue { state: Mutex::default(), max_bytes, wake: Notify::new(), space: Notify::new() }
    }

    /// Frames encoded texts with `header` from now on (the transport frames
    /// texts itself), in runs written as they are.
    pub(crate) fn frame_texts_with(&self, header: Option<TextHeader>) {
        self.state.lock().header = header;
    }

    /// Queues `frame` without waiting. A frame larger than the bound is still
    /// accepted into an empty queue, so one big reply can always be sent.
    pub(crate) fn push(&self, frame: Outgoing, overflow: Overflow) -> Result<(), PushError> {
        match self.try_push(frame) {
            Ok(()) => Ok(()),
            Err((PushError::Full, _)) if overflow == Overflow::Disconnect => {
                self.overflow();
                Err(PushError::Full)
            }
            Err((error, _)) => Err(error),
        }
    }

    /// Queues an answer to the other side's call against the reply bound.
    /// Never waits: a full reply bound means the other side does not read
    /// its answers, and the connection is closed as a slow consumer.
    pub(crate) fn push_reply(&self, frame: Utf8Bytes) -> Result<(), PushError> {
        match self.try_push(Outgoing::Reply(frame)) {
            Ok(()) => Ok(()),
            Err((PushError::Full, _)) => {
                self.overflow();
                Err(PushError::Full)
            }
            Err((error, _)) => Err(error),
        }
    }

    /// Queues `frame` if there is room; a full queue drops it (the caller
    /// deems it optional, like a cancellation notice) without closing.
    pub(crate) fn push_if_room(&self, frame: Outgoing) -> Result<(), PushError> {
        self.try_push(frame).map_err(|(error, _)| error)
    }

    fn overflow(&self) {
        let mut state = self.state.lock();
        state.overflowed = true;
        state.closed = true;
        drop(state);
        self.wake.notify_one();
    }

    /// Queues `frame`, waiting for room when the queue is full.
    pub(crate) async fn push_wait(&self, frame: Outgoing) -> Result<(), PushError> {
        // The common case has room: no waiter is registered for it.
        let frame = match self.try_push(frame) {
            Ok(()) => return Ok(()),
            Err((PushError::Closed, _)) => return Err(PushError::Closed),
            Err((PushError::Full, frame)) => frame,
        };
        loop {
            let room = self.space.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.push(frame.clone(), Overflow::Wait) {
                Err(PushError::Full) => room.await,
                done => return done,
            }
        }
    }

    /// Queues `frame` if there is room, else hands it back (no overflow policy applied).
    fn try_push(&self, frame: Outgoing) -> Result<(), (PushError, Outgoing)> {
        let mut state = self.state.lock();
        if state.closed {
            return Err((PushError::Closed, frame));
        }
        let len = frame.len();
        let full = |queued: usize, more: usize| more > 0 && queued > 0 && queued + more > self.max_bytes;
        if full(state.bytes.own, len.own) || full(state.bytes.replies, len.replies) {
            return Err((PushError::Full, frame));
        }
        let wake = state.enqueue(frame, len);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Queues a copy of `text` (JSON the engine encoded) cut from the arena,
    /// if there is room; else returns it as a frame of its own, for the
    /// caller's overflow policy.
    pub(crate) fn try_push_encoded(&self, text: &[u8]) -> Result<(), (PushError, Outgoing)> {
        if text.len() >= ARENA_FRAME_MAX {
            return self.try_push(Outgoing::Encoded(Bytes::copy_from_slice(text)));
        }
        let mut state = self.state.lock();
        let refused = if state.closed {
            Some(PushError::Closed)
        } else if state.bytes.own > 0 && state.bytes.own + text.len() > self.max_bytes {
            Some(PushError::Full)
        } else {
            None
        };
        if let Some(error) = refused {
            drop(state);
            return Err((error, Outgoing::Encoded(Bytes::copy_from_slice(text))));
        }
        if let Some(header) = state.header {
            let wake = state.frame_into_run(header, text);
            drop(state);
            if wake {
                self.wake.notify_one();
            }
            return Ok(());
        }
        let frame = state.cut(text);
        let wake = state.enqueue(Outgoing::Encoded(frame), QueuedBytes { own: text.len(), replies: 0 });
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Queues a publication tagged with its topic and how it may be shed:
    /// when the frames still queued leave no room for it, publications of
    /// its topic are shed as `tag.shed` says. Never waits. Returns how many
    /// publications were shed (this one included, when it was); `Full` when
    /// the connection was closed because shedding could not make room.
    pub(crate) fn push_publication(&self, frame: Utf8Bytes, tag: &Arc<Sheddable>) -> Result<usize, PushError> {
        let len = frame.len();
        let mut state = self.state.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        let room = |state: &State| state.waiting.own == 0 || state.waiting.own + len <= self.max_bytes;
        let mut shed = 0;
        if !room(&state) {
            match &tag.shed {
                Shed::DropOldest => {
                    while !room(&state) {
                        let oldest = state.frames.iter().position(|f| tagged(f, &tag.topic).is_some());
                        match oldest {
                            Some(oldest) => shed += state.drop_frames(|at, _| at == oldest),
                            None => return Ok(shed + 1),
                        }
                    }
                }
                Shed::LatestPerKey(key) => {
                    // From the newest back: a key seen already (this one's first) is superseded.
                    let mut seen = HashSet::from([key.clone()]);
                    let mut superseded = vec![false; state.frames.len()];
                    for (at, frame) in state.frames.iter().enumerate().rev() {
                        if let Some(Sheddable { shed: Shed::LatestPerKey(key), .. }) = tagged(frame, &tag.topic) {
                            superseded[at] = !seen.insert(key.clone());
                        }
                    }
                    shed += state.drop_frames(|at, _| superseded[at]);
                    if !room(&state) {
                        state.overflowed = true;
                        state.closed = true;
                        drop(state);
                        self.wake.notify_one();
                        return Err(PushError::Full);
                    }
                }
            }
        }
        let wake = state.enqueue(Outgoing::Publication(frame, Arc::clone(tag)), QueuedBytes { own: len, replies: 0 });
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        Ok(shed)
    }

    /// Queues a control frame even past the bound (pings, close).
    pub(crate) fn push_control(&self, frame: Outgoing) -> Result<(), PushError> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        let closing = matches!(frame, Outgoing::Close(..));
        state.seal();
        state.frames.push_back(frame);
        // Nothing may follow a close frame.
        state.closed |= closing;
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    /// Refuses further frames and drops queued ones; wakes every waiter.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.frames.clear();
        state.arena = BytesMut::new();
        state.bytes = QueuedBytes::default();
        state.waiting = QueuedBytes::default();
        drop(state);
        self.space.notify_waiters();
        self.wake.notify_one();
    }

    pub(crate) fn is_overflowed(&self) -> bool {
        self.state.lock().overflowed
    }

    /// Every byte waiting to be written, replies included.
    pub(crate) fn queued_bytes(&self) -> usize {
        let bytes = self.state.lock().bytes;
        bytes.own + bytes.replies
    }

    fn has_frames(&self) -> bool {
        !self.state.lock().frames.is_empty()
    }

    fn take_into(&self, batch: &mut VecDeque<Outgoing>) -> QueuedBytes {
        let mut state = self.state.lock();
        // Nothing queued: the (empty) buffers stay where they are, so an
        // idle writer holds both and can let them go; the arena goes now (its
        // chunk is freed with the last frame cut from it).
        if state.frames.is_empty() {
            state.arena = BytesMut::new();
            state.chunk = 0;
        } else {
            state.seal();
            std::mem::swap(&mut state.frames, batch);
        }
        std::mem::take(&mut state.waiting)
    }

    fn release(&self, bytes: QueuedBytes) {
        let mut state = self.state.lock();
        state.bytes.own = state.bytes.own.saturating_sub(bytes.own);
        state.bytes.replies = state.bytes.replies.saturating_sub(bytes.replies);
        drop(state);
        if bytes.own > 0 {
            self.space.notify_waiters();
        }
    }
}

/// What one drive of the writer achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drive {
    /// Everything queued was written and flushed.
    Idle,
    /// A close frame was written and flushed (or, on a transport without
    /// close frames, the sink was closed); nothing more will be.
    CloseSent,
}

/// Where the writer is with closing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Closing {
    #[default]
    Open,
    /// A close without a frame of its own: the sink is being flushed and closed.
    Flushing,
    /// Closed: nothing more is written.
    Sent,
}

/// Room for frames that an idle writer gives back rather than keeps: what
/// a queue's first frame allocates (a `VecDeque` starts with four slots).
const SMALL_BATCH: usize = 4;

/// The connection task's half of the outbound side: owns the frames taken
/// from the queue until the sink has accepted them.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    batch: VecDeque<Outgoing>,
    batch_bytes: QueuedBytes,
    needs_flush: bool,
    closing: Closing,
    /// The code and reason of the close frame written, once it is (boxed:
    /// every connection carries one pointer for it).
    close_sent: Option<Box<(u16, String)>>,
}

impl Writer {
    /// The code and reason of the close frame written, once it is.
    pub(crate) fn close_sent(&self) -> Option<&(u16, String)> {
        self.close_sent.as_deref()
    }

    pub(crate) fn has_work(&self, queue: &OutboundQueue) -> bool {
        match self.closing {
            Closing::Open => !self.batch.is_empty() || self.needs_flush || queue.has_frames(),
            Closing::Flushing => true,
            Closing::Sent => false,
        }
    }

    /// Writes every queued frame, then flushes once.
    pub(crate) fn poll_drive<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        sink: &mut T::Io,
        queue: &OutboundQueue,
    ) -> Poll<Result<Drive, T::Error>> {
        loop {
            if self.batch.is_empty() {
                if self.batch_bytes != QueuedBytes::default() {
                    queue.release(std::mem::take(&mut self.batch_bytes));
                }
                self.batch_bytes = queue.take_into(&mut self.batch);
                if self.batch.is_empty() {
                    // All written. The room of a queue that has held a few
                    // frames at a time (four slots, ~190 bytes) is given
                    // back, so an idle connection keeps none; a busier one
                    // keeps its grown room rather than growing it anew for
                    // every burst.
                    if self.batch.capacity() <= SMALL_BATCH {
                        self.batch = VecDeque::new();
                    }
                    if self.needs_flush {
                        ready!(Pin::new(&mut *sink).poll_flush(cx))?;
                        self.needs_flush = false;
                    }
                    if self.closing == Closing::Flushing {
                        ready!(Pin::new(&mut *sink).poll_close(cx))?;
                        self.closing = Closing::Sent;
                    }
                    return Poll::Ready(Ok(if self.closing == Closing::Sent { Drive::CloseSent } else { Drive::Idle }));
                }
            }
            if let Some(Outgoing::Framed(_)) = self.batch.front() {
                ready!(T::poll_ready_text(sink, cx))?;
                let Some(Outgoing::Framed(run)) = self.batch.pop_front() else { unreachable!("just seen") };
                T::start_send_framed(sink, run)?;
                self.needs_flush = true;
                continue;
            }
            if self.batch.front().is_some_and(Outgoing::is_text) {
                ready!(T::poll_ready_text(sink, cx))?;
                let text = self.batch.pop_front().and_then(Outgoing::into_text).expect("a text frame");
                T::start_send_text(sink, text)?;
                self.needs_flush = true;
                continue;
            }
            ready!(Pin::new(&mut *sink).poll_ready(cx))?;
            let frame = self.batch.pop_front().expect("batch is not empty");
            let closing = match &frame {
                Outgoing::Close(code, reason) => Some(Box::new((u16::from(*code), reason.to_string()))),
                _ => None,
            };
            match frame.into_control::<T>() {
                Some(frame) => {
                    Pin::new(&mut *sink).start_send(frame)?;
                    self.needs_flush = true;
                    if closing.is_some() {
                        self.closing = Closing::Sent;
                    }
                }
                None if closing.is_some() => self.closing = Closing::Flushing,
                // A ping on a transport without pings.
                None => {}
            }
            if closing.is_some() {
                self.close_sent = closing;
                self.batch.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Outgoing {
        Outgoing::Text(Utf8Bytes::from("x".repeat(n)))
    }

    #[test]
    fn an_oversized_frame_fits_an_empty_queue() {
        let q = OutboundQueue::new(10);
        assert_eq!(q.push(text(100), Overflow::Disconnect), Ok(()));
    }

    #[test]
    fn overflow_with_disconnect_marks_the_queue_and_refuses_more() {
        let q = OutboundQueue::new(10);
        q.push(text(8), Overflow::Disconnect).unwrap();
        assert_eq!(q.push(text(8), Overflow::Disconnect), Err(PushError::Full));
        assert!(q.is_overflowed());
        assert_eq!(q.push(text(1), Overflow::Disconnect), Err(PushError::Closed));
    }

    #[test]
    fn overflow_with_wait_leaves_the_queue_open() {
        let q = OutboundQueue::new(10);
        q.push(text(8), Overflow::Wait).unwrap();
        assert_eq!(q.push(text(8), Overflow::Wait), Err(PushError::Full));
        assert!(!q.is_overflowed());
        q.release(QueuedBytes { own: 8, replies: 0 });
        assert_eq!(q.push(text(8), Overflow::Wait), Ok(()));
    }

    #[test]
    fn a_reply_has_room_when_our_own_calls_fill_the_queue() {
        let q = OutboundQueue::new(10);
        q.push(text(8), Overflow::Wait).unwrap();
        assert_eq!(q.push(text(8), Overflow::Wait), Err(PushError::Full));
        assert_eq!(q.push_reply(Utf8Bytes::from("y".repeat(8))), Ok(()));
        assert!(!q.is_overflowed());
    }

    #[test]
    fn replies_the_other_side_never_reads_overflow_whatever_the_policy() {
        let q = OutboundQueue::new(10);
        q.push_reply(Utf8Bytes::from("y".repeat(8))).unwrap();
        assert_eq!(q.push_reply(Utf8Bytes::from("y".repeat(8))), Err(PushError::Full));
        assert!(q.is_overflowed());
    }

    #[test]
    fn an_optional_frame_is_dropped_not_fatal_when_full() {
        let q = OutboundQueue::new(10);
        q.push(text(8), Overflow::Wait).unwrap();
        assert_eq!(q.push_if_room(text(8)), Err(PushError::Full));
        assert!(!q.is_overflowed());
    }

    fn tag(topic: &str, shed: Shed) -> Arc<Sheddable> {
        Arc::new(Sheddable { topic: Arc::from(topic), shed })
    }

    fn frame(text: &str) -> Utf8Bytes {
        Utf8Bytes::from(text.to_owned())
    }

    /// The texts queued (not yet taken), in order.
    fn queued(q: &OutboundQueue) -> Vec<String> {
        q.state
            .lock()
            .frames
            .iter()
            .map(|f| match f {
                Outgoing::Text(t) | Outgoing::Reply(t) | Outgoing::Publication(t, _) => t.to_string(),
                Outgoing::Encoded(t) | Outgoing::Framed(t) => String::from_utf8_lossy(t).into_owned(),
                Outgoing::ArenaTail => "(arena tail)".to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn drop_oldest_sheds_the_topics_oldest_publications_to_make_room() {
        let q = OutboundQueue::new(10);
        let (a, b) = (tag("a", Shed::DropOldest), tag("b", Shed::DropOldest));
        assert_eq!(q.push_publication(frame("a1aa"), &a), Ok(0));
        assert_eq!(q.push_publication(frame("b1bb"), &b), Ok(0));
        assert_eq!(q.push_publication(frame("a2"), &a), Ok(0));
        // 10 bytes queued: a3 needs 4, so a1 goes (b's are not a's to shed).
        assert_eq!(q.push_publication(frame("a3aa"), &a), Ok(1));
        assert_eq!(queued(&q), ["b1bb", "a2", "a3aa"]);
        assert_eq!(q.queued_bytes(), 10);
        q.push(Outgoing::Text(frame("x")), Overflow::Disconnect).unwrap_err();
        assert!(q.is_overflowed(), "a plain frame still overflows the bound");
    }

    #[test]
    fn drop_oldest_drops_the_new_publication_when_none_of_its_topic_is_queued() {
        let q = OutboundQueue::new(10);
        q.push(Outgoing::Text(frame("plainplain")), Overflow::Disconnect).unwrap();
        assert_eq!(q.push_publication(frame("a1"), &tag("a", Shed::DropOldest)), Ok(1));
        assert_eq!(queued(&q), ["plainplain"]);
        assert!(!q.is_overflowed());
    }

    #[test]
    fn latest_per_key_keeps_the_newest_of_each_key_then_overflows() {
        let q = OutboundQueue::new(12);
        let key = |k: &str| tag("p", Shed::LatestPerKey(Some(Arc::from(k))));
        for (text, k) in [("x1", "x"), ("y1", "y"), ("x2", "x"), ("z1", "z"), ("y2", "y"), ("x3", "x")] {
            assert_eq!(q.push_publication(frame(text), &key(k)), Ok(0));
        }
        // Full (12): x4 supersedes every queued x, and the older y goes too.
        assert_eq!(q.push_publication(frame("x4"), &key("x")), Ok(4));
        assert_eq!(queued(&q), ["z1", "y2", "x4"]);
        assert_eq!(q.queued_bytes(), 6);
        let q = OutboundQueue::new(4);
        q.push_publication(frame("a1"), &key("a")).unwrap();
        q.push_publication(frame("b1"), &key("b")).unwrap();
        assert_eq!(q.push_publication(frame("c1"), &key("c")), Err(PushError::Full), "no key to conflate");
        assert!(q.is_overflowed());
    }

    #[test]
    fn shedding_bounds_what_is_still_queued_not_what_the_writer_took() {
        let q = OutboundQueue::new(10);
        let a = tag("a", Shed::DropOldest);
        q.push_publication(frame("a1aaaaaaaa"), &a).unwrap();
        let mut batch = VecDeque::new();
        q.take_into(&mut batch);
        // The writer holds a1 (stuck on a full socket, say): a2 still fits.
        assert_eq!(q.push_publication(frame("a2aaaaaaaa"), &a), Ok(0));
        assert_eq!(q.queued_bytes(), 20);
        assert_eq!(q.push_publication(frame("a3aaaaaaaa"), &a), Ok(1));
        assert_eq!(queued(&q), ["a3aaaaaaaa"]);
    }

    type T = crate::transport::Lines<tokio::io::DuplexStream>;

    /// A writer over newline-delimited lines into a pipe, its queue, and the pipe's far end.
    fn lines_writer() -> (<T as Transport>::Io, tokio::io::DuplexStream, OutboundQueue, Writer) {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let io = crate::transport::Lines::new(ours, 1 << 20).into_io();
        (io, theirs, OutboundQueue::new(1 << 20), Writer::default())
    }

    #[tokio::test]
    async fn an_idle_writer_gives_back_the_room_of_a_few_frames_and_keeps_a_busy_ones() {
        let (mut sink, _theirs, q, mut writer) = lines_writer();
        let room = |writer: &Writer, q: &OutboundQueue| writer.batch.capacity() + q.state.lock().frames.capacity();

        q.push(text(8), Overflow::Disconnect).unwrap();
        let drive = std::future::poll_fn(|cx| writer.poll_drive::<T>(cx, &mut sink, &q)).await.unwrap();
        assert_eq!(drive, Drive::Idle);
        assert_eq!(room(&writer, &q), 0, "an idle connection keeps no room for frames");

        for _ in 0..20 {
            q.push(text(8), Overflow::Disconnect).unwrap();
        }
        let drive = std::future::poll_fn(|cx| writer.poll_drive::<T>(cx, &mut sink, &q)).await.unwrap();
        assert_eq!(drive, Drive::Idle);
        assert!(room(&writer, &q) >= 20, "a busy connection keeps the room its bursts grew");
    }

    fn encoded(q: &OutboundQueue, text: &str) -> Result<(), PushError> {
        q.try_push_encoded(text.as_bytes()).map_err(|(error, _)| error)
    }

    #[test]
    fn encoded_frames_are_cut_from_one_arena_chunk_in_order() {
        let q = OutboundQueue::new(1 << 20);
        for i in 0..100 {
            encoded(&q, &format!("{{\"n\":{i}}}")).unwrap();
        }
        let frames = q.state.lock().frames.iter().cloned().collect::<Vec<_>>();
        let texts: Vec<_> = frames
            .iter()
            .map(|f| match f {
                Outgoing::Encoded(t) => t.clone(),
                other => panic!("not cut from the arena: {other:?}"),
            })
            .collect();
        assert_eq!(texts.iter().map(|t| String::from_utf8_lossy(t).into_owned()).collect::<Vec<_>>(), {
            (0..100).map(|i| format!("{{\"n\":{i}}}")).collect::<Vec<_>>()
        });
        // Consecutive frames of a chunk are adjacent in memory: no allocation each.
        let adjacent = texts.windows(2).filter(|w| w[0].as_ptr().wrapping_add(w[0].len()) == w[1].as_ptr()).count();
        assert!(adjacent >= 90, "only {adjacent} of 99 frames follow the one before");
        assert_eq!(q.queued_bytes(), texts.iter().map(|t| t.len()).sum::<usize>());
    }

    #[test]
    fn a_big_encoded_frame_gets_a_buffer_of_its_own_and_a_full_queue_hands_the_frame_back() {
        let q = OutboundQueue::new(ARENA_FRAME_MAX);
        let big = "x".repeat(ARENA_FRAME_MAX);
        encoded(&q, &big).unwrap();
        assert_eq!(q.state.lock().arena.capacity(), 0, "the big frame did not go through the arena");
        match q.try_push_encoded(b"{}") {
            Err((PushError::Full, Outgoing::Encoded(frame))) => assert_eq!(&frame[..], b"{}"),
            other => panic!("expected the frame back as Full, got {other:?}"),
        }
        assert!(!q.is_overflowed(), "handing back applies no overflow policy");
        q.close();
        assert!(matches!(q.try_push_encoded(b"{}"), Err((PushError::Closed, _))));
    }

    fn bracket(out: &mut BytesMut, len: usize) {
        out.extend_from_slice(format!("<{len}>").as_bytes());
    }

    #[test]
    fn framed_texts_are_queued_as_runs_cut_where_another_frame_comes_between() {
        let q = OutboundQueue::new(1 << 20);
        q.frame_texts_with(Some(bracket));
        for text in ["a", "bb", "ccc"] {
            encoded(&q, text).unwrap();
        }
        assert_eq!(queued(&q), ["(arena tail)"], "one run, not cut yet");
        q.push(text(1), Overflow::Disconnect).unwrap();
        encoded(&q, "dd").unwrap();
        assert_eq!(queued(&q), ["<1>a<2>bb<3>ccc", "x", "(arena tail)"]);
        assert_eq!(q.queued_bytes(), 1 + 2 + 3 + 1 + 2, "texts counted, not their headers");
        let mut batch = VecDeque::new();
        q.take_into(&mut batch);
        let taken: Vec<_> = batch
            .iter()
            .map(|f| match f {
                Outgoing::Framed(t) => String::from_utf8_lossy(t).into_owned(),
                Outgoing::Text(t) => t.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(taken, ["<1>a<2>bb<3>ccc", "x", "<2>dd"], "the writer gets the tail cut");
    }

    #[test]
    fn a_long_run_is_cut_at_its_maximum() {
        let q = OutboundQueue::new(1 << 20);
        q.frame_texts_with(Some(bracket));
        let text = "y".repeat(1000);
        for _ in 0..100 {
            encoded(&q, &text).unwrap();
        }
        let runs: Vec<usize> = q
            .state
            .lock()
            .frames
            .iter()
            .map(|f| match f {
                Outgoing::Framed(t) => t.len(),
                Outgoing::ArenaTail => 0,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(runs.len() >= 3, "{runs:?}");
        assert!(runs.iter().all(|&len| len < RUN_MAX + 1010), "{runs:?}");
        assert_eq!(runs.iter().sum::<usize>() + q.state.lock().arena.len(), 100 * 1006);
    }

    #[tokio::test]
    async fn the_arena_is_given_back_when_the_queue_runs_empty() {
        let (mut io, theirs, q, mut writer) = lines_writer();
        for i in 0..50 {
            encoded(&q, &format!("[{i}]")).unwrap();
        }
        assert!(q.state.lock().arena.capacity() > 0);
        let drive = std::future::poll_fn(|cx| writer.poll_drive::<T>(cx, &mut io, &q)).await.unwrap();
        assert_eq!(drive, Drive::Idle);
        let drive = std::future::poll_fn(|cx| writer.poll_drive::<T>(cx, &mut io, &q)).await.unwrap();
        assert_eq!(drive, Drive::Idle);
        assert_eq!(q.state.lock().arena.capacity(), 0, "an idle queue keeps no arena");
        drop(io);
        let mut read = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut { theirs }, &mut read).await.unwrap();
        let expected: String = (0..50).map(|i| format!("[{i}]\n")).collect();
        assert_eq!(read, expected);
    }

    #[tokio::test]
    async fn a_waiting_pusher_is_woken_by_close() {
        let q = std::sync::Arc::new(OutboundQueue::new(10));
        q.push(text(8), Overflow::Wait).unwrap();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.push_wait(text(8)).await });
        tokio::task::yield_now().await;
        q.close();
        assert_eq!(waiter.await.unwrap(), Err(PushError::Closed));
    }
}
