//! How one connection behaves ([`PeerConfig`]) and why it ended ([`CloseReason`]).

use std::sync::Arc;
use std::time::Duration;

use crate::codec::Id;
use crate::writer::Overflow;

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

/// Whether requests are cancelled across the wire with `$/cancelRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cancellation {
    /// The default. When one of our calls times out or its future is
    /// dropped, we send `$/cancelRequest {"id": ..}`; when the other side
    /// sends it for one of its requests that we are still running, we drop
    /// the handler's future, fire its [`Context::cancellation`](crate::Context::cancellation)
    /// token and answer -32800. A peer that does not know the notification
    /// ignores it, as JSON-RPC says of unknown notifications.
    #[default]
    Notify,
    /// Neither send nor honour `$/cancelRequest` (it then reaches the
    /// method registry like any other notification).
    Off,
}

/// What to do with a frame that is not JSON-RPC at all (not JSON, or an
/// empty batch), which therefore carries no id to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MalformedFrames {
    /// Answer it with -32700 or -32600 and `"id": null`, as the spec asks
    /// of a server (the default).
    #[default]
    Answer,
    /// Send nothing back and report it as a [`StrayMessage::Malformed`]: a
    /// client, whose peer is a server that sends answers, must not answer an
    /// answer with an error.
    Report,
}

/// Whether a connection speaks JSON-RPC 1.0 besides 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jsonrpc1 {
    /// The default: 2.0 only. A call without `"jsonrpc": "2.0"` is answered
    /// -32600 "Invalid Request" (`data` says that `jsonrpc` is missing).
    #[default]
    Reject,
    /// Accept 1.0 as well: a single object without a `jsonrpc` member (or
    /// with `"1.0"`) is read by 1.0's rules (a notification is a request with
    /// `"id": null`) and answered in 1.0 (`result` and `error`, one of them
    /// `null`, no `jsonrpc`); 2.0 messages on the same connection are still
    /// answered in 2.0. 1.0 has no batches: a batch is read as 2.0. Our own
    /// calls and notifications go out in 2.0.
    Accept,
    /// Speak 1.0 (to an old server): our calls and notifications go out in
    /// 1.0 (`params` always present, notifications with `"id": null`),
    /// batches are refused (1.0 has none), and 1.0 is accepted as with
    /// `Accept`.
    Speak,
}

/// Something the other side sent that none of our calls can take. Reported
/// to [`PeerConfig::on_stray`], counted, never answered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StrayMessage {
    /// An error response with `"id": null` (what a server sends when it
    /// could not read which request failed, e.g. an over-long batch). When
    /// exactly one call, or one batch, of ours was outstanding it was the
    /// one: it has failed with this error (`failed_calls` says how many
    /// calls that was); otherwise nothing could be matched.
    ErrorWithoutId {
        /// The other side's error object.
        error: crate::ErrorObject,
        /// Calls that failed with it (0 when it was ambiguous).
        failed_calls: usize,
    },
    /// A frame that is not JSON-RPC: not JSON, or an empty batch.
    Malformed {
        /// What was wrong with it (-32700 or -32600, `data` says why).
        error: crate::ErrorObject,
    },
}

/// Receives [`StrayMessage`]s, on the connection's task: keep it short.
pub type StrayHook = Arc<dyn Fn(StrayMessage) + Send + Sync>;

/// How one connection behaves. Server and client set different defaults.
#[derive(Clone)]
pub struct PeerConfig {
    /// Inbound requests whose handlers may wait at once. Default 256.
    /// Requests beyond it are parked (see `max_parked_bytes`); the socket is
    /// read all the same, so answers to our own calls always get through.
    pub max_in_flight: usize,
    /// Bound, in bytes of their frames, on requests parked while
    /// `max_in_flight` handlers run. Default 1 MiB. Beyond it a request is
    /// answered at once with -32002 "Server busy" (`data` names the limit)
    /// and a notification is dropped (and counted).
    pub max_parked_bytes: usize,
    /// Bound on bytes waiting to be written. Default 4 MiB. Answers to the
    /// other side's calls have a bound of the same size of their own.
    pub max_queue_bytes: usize,
    /// What a full queue does to our own calls and pushes. Default
    /// [`Overflow::Disconnect`]. Answers never wait: a full answer bound
    /// always closes the connection as a slow consumer.
    pub overflow: Overflow,
    /// Longest batch answered; each request of a longer one is answered with
    /// -32600 carrying its own id. Default 1,000.
    pub max_batch_len: usize,
    /// Timeout of our outgoing calls unless overridden, the wait for queue
    /// room included. Default 10 s.
    pub call_timeout: Option<Duration>,
    /// Keep-alive pings. Default none.
    pub heartbeat: Option<Heartbeat>,
    /// Ids for our outgoing calls. Default: a counter from 1.
    pub id_generator: Option<IdGenerator>,
    /// `$/cancelRequest` in both directions. Default [`Cancellation::Notify`].
    pub cancellation: Cancellation,
    /// Frames that are not JSON-RPC. Default [`MalformedFrames::Answer`].
    pub malformed_frames: MalformedFrames,
    /// Told of every [`StrayMessage`]. Default none (they are still counted
    /// and logged).
    pub on_stray: Option<StrayHook>,
    /// JSON-RPC 1.0 besides 2.0. Default [`Jsonrpc1::Reject`].
    pub jsonrpc1: Jsonrpc1,
    /// A token bucket over the other side's requests and notifications
    /// ([`RateLimit`](super::RateLimit)): over it, a request is answered
    /// -32005 "Rate limited" (`data: {"retry_after_ms": N}`), a notification
    /// is dropped, and repeated abuse closes with 1008. Default `None` (off,
    /// at no cost per request).
    pub rate_limit: Option<super::RateLimit>,
    /// Typed values every connection spawned with this config shares (a
    /// server puts a handle to itself here). [`Context::extension`](crate::Context::extension)
    /// looks in the connection's own `ConnectionInfo::extensions` first, then
    /// here. Held once per config, not once per connection.
    pub extensions: http::Extensions,
    /// Told of every call in both directions and of flow control's rare
    /// events (metrics, audit trails; see [`observe`](super::observe)).
    /// Default none: the engine then pays one branch per call.
    pub observer: Option<Arc<dyn super::CallObserver>>,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            max_in_flight: 256,
            max_parked_bytes: 1 << 20,
            max_queue_bytes: 4 << 20,
            overflow: Overflow::Disconnect,
            max_batch_len: 1000,
            call_timeout: Some(Duration::from_secs(10)),
            heartbeat: None,
            id_generator: None,
            cancellation: Cancellation::Notify,
            malformed_frames: MalformedFrames::Answer,
            on_stray: None,
            jsonrpc1: Jsonrpc1::Reject,
            rate_limit: None,
            extensions: http::Extensions::new(),
            observer: None,
        }
    }
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("max_in_flight", &self.max_in_flight)
            .field("max_parked_bytes", &self.max_parked_bytes)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("overflow", &self.overflow)
            .field("max_batch_len", &self.max_batch_len)
            .field("call_timeout", &self.call_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("custom_ids", &self.id_generator.is_some())
            .field("cancellation", &self.cancellation)
            .field("malformed_frames", &self.malformed_frames)
            .field("on_stray", &self.on_stray.is_some())
            .field("jsonrpc1", &self.jsonrpc1)
            .field("rate_limit", &self.rate_limit)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The other side closed (with its close code and reason, if it sent a close frame).
    Remote {
        /// The close code it sent.
        code: Option<u16>,
        /// The reason it gave.
        reason: String,
    },
    /// We closed it ([`PeerHandle::close`](super::PeerHandle::close) or a graceful shutdown).
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
    /// The WebSocket protocol was violated, the socket failed, or the
    /// connection's task panicked.
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
