//! The symmetric peer engine: drives one connection for either end, over
//! any [`Transport`] (a WebSocket, newline-delimited JSON over TCP or a Unix
//! socket).
//!
//! One task per connection owns the socket (`connection.rs`). It reads every
//! frame as it arrives, decodes it once, and:
//! - routes **responses** to the pending table (`pending.rs`) at
//!   once, whatever else is going on: the socket is never left unread, so
//!   calls in both directions can never wait on each other;
//! - hands **requests and notifications** to `dispatch.rs`, which runs them
//!   under the connection's flow control (see there: in flight, parked,
//!   busy);
//! - writes everything queued for this connection (answers, our calls,
//!   pushes) through the writer (`writer.rs`), coalescing a
//!   burst into one flush.
//!
//! When the socket ends, for whatever reason (a panic of the task
//! included), every pending call fails with [`Error::Disconnected`](crate::Error::Disconnected)
//! at once and [`PeerHandle::closed`] resolves with the [`CloseReason`].
//!
//! The files: `config.rs` (how a connection behaves), `handle.rs` (what other
//! tasks hold: calls, notifications, pushes, close), `batch.rs` (building an
//! outgoing batch), `connection.rs` (the task's loop and its end),
//! `dispatch.rs` (running inbound requests), `inflight.rs` (the requests
//! running now, for cancellation), `rate.rs` (the per-connection rate
//! limit), [`observe`] (what an observer is told of every call).

mod batch;
mod config;
mod connection;
mod dispatch;
mod handle;
mod inflight;
pub mod observe;
mod rate;

use std::sync::Arc;

use tracing::Instrument;

use crate::context::ConnectionInfo;
use crate::methods::Methods;
use crate::transport::Transport;

pub use batch::BatchBuilder;
pub use config::{
    Cancellation, CloseReason, Heartbeat, IdGenerator, Jsonrpc1, MalformedFrames, PeerConfig, StrayHook, StrayMessage,
};
pub use handle::{PeerCall, PeerHandle, decode_result};
pub use observe::{CallEvent, CallObserver, Direction, FlowEvent, Outcome};
pub use rate::{DEFAULT_CLOSE_AFTER, RATE_LIMIT_CLOSE_CODE, RATE_LIMIT_CLOSE_REASON, RateLimit};

/// The notification that cancels a request: params `{"id": <the request's id>}`
/// (the Language Server Protocol's convention). The request is answered with
/// -32800 "Request cancelled" unless its answer is already on its way.
pub const CANCEL_METHOD: &str = "$/cancelRequest";

/// Starts the engine on an open connection (a `WebSocketStream`, or
/// [`Lines`](crate::transport::Lines) over a byte stream). The connection
/// task runs until the socket ends; [`PeerHandle::closed`] reports why.
pub fn spawn<T: Transport>(
    transport: T,
    methods: Arc<Methods>,
    info: ConnectionInfo,
    config: impl Into<Arc<PeerConfig>>,
) -> PeerHandle {
    spawn_with_close_hook(transport, methods, info, config, None)
}

/// Runs once on the connection's own task when it has ended, after every
/// pending call has failed and [`PeerHandle::closed`] has resolved.
pub type CloseHook = Box<dyn FnOnce(&PeerHandle, &CloseReason) + Send>;

/// [`spawn`], plus a hook run when the connection ends. A server uses it to
/// forget the connection without a second task per connection waiting for
/// the end (ten thousand idle sockets would pay for ten thousand of them).
/// The hook runs however the task ends, a panic included.
pub fn spawn_with_close_hook<T: Transport>(
    transport: T,
    methods: Arc<Methods>,
    info: ConnectionInfo,
    config: impl Into<Arc<PeerConfig>>,
    on_close: Option<CloseHook>,
) -> PeerHandle {
    let handle = PeerHandle::new(info, config.into(), Arc::clone(&methods));
    handle.shared.queue.frame_texts_with(T::text_header());
    let span = tracing::info_span!("connection", id = %handle.id(), remote = ?handle.info().remote);
    let task = connection::Connection::new(handle.clone(), methods, on_close);
    let io = transport.into_io();
    if span.is_disabled() {
        // No subscriber wants the span: skip entering and leaving it on every poll.
        tokio::spawn(task.run::<T>(io));
    } else {
        tokio::spawn(task.run::<T>(io).instrument(span));
    }
    handle
}
