//! Watching a connection's calls from outside the engine: metrics, audit
//! trails. The engine knows nothing of Prometheus or logs; it tells a
//! [`CallObserver`] (set in [`PeerConfig::observer`](super::PeerConfig::observer))
//! what happened, and the observer decides what to keep.
//!
//! Terms:
//! - a **call event** ([`CallEvent`]) is reported once per call, in either
//!   [`Direction`], when it has ended: its method, its [`Outcome`] and how
//!   long it took. An incoming call is timed from the moment its handler is
//!   started (parked time is not included) until its answer is queued; an
//!   outgoing call from the moment it is sent until its reply arrived or it
//!   gave up;
//! - a **flow event** ([`FlowEvent`]) is one of the rare things flow
//!   control does instead of running a request: parking it, refusing it,
//!   dropping a notification, shedding publications of a slow subscriber.
//!
//! What is not reported: our outgoing notifications, the calls of our
//! outgoing batches ([`PeerHandle::batch`]), and pushes (`send_text`):
//! none of them has a single method and outcome to report.
//!
//! Cost: with no observer (the default) the engine pays one branch per
//! call. With one, it reads the clock twice per call and makes one
//! dynamic call; a handler that has to wait is wrapped in one more future.
//! The clock is the CPU's time-stamp counter where it is reliable (quanta:
//! a few nanoseconds a reading, against a few tens for the OS clock),
//! calibrated against the OS clock once per process (see
//! [`calibrate_clock`]), else the OS's monotonic clock. The observer runs
//! on the connection's task (or the handler's): keep it short and never
//! block.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::codec::Id;
use crate::error::Error;
use crate::writer::{Shed, Sheddable};

use super::PeerHandle;

/// The clock that times observed calls.
fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calibrates the clock that times observed calls (see the [module
/// docs](self)): once per process, usually in under a millisecond, 200 ms
/// at most. Otherwise the first observed call waits for it; a server calls
/// this when it is built with an observer. Later calls return at once.
pub fn calibrate_clock() {
    let _ = clock();
}

/// When an observed call started, on the observers' clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Started(u64);

impl Started {
    pub(super) fn now() -> Self {
        Started(clock().raw())
    }

    /// The time since.
    pub(super) fn elapsed(self) -> Duration {
        let clock = clock();
        clock.delta(self.0, clock.raw())
    }
}

/// Which side made the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// The other side called us; our handler answered.
    Incoming,
    /// We called the other side.
    Outgoing,
}

impl Direction {
    /// `"incoming"` or `"outgoing"` (for labels and logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Answered with a result (an incoming call that answered itself, like
    /// a positioned `rpc.subscribe`, counts as one too).
    Ok,
    /// Answered with an error object of this code: for an incoming call,
    /// the handler's error, -32602 for bad params, -32601 for an unknown
    /// method, -32603 for a panic, -32800 when the caller cancelled it.
    Error(i64),
    /// An incoming notification: its handler ran, nothing was answered.
    Notification,
    /// An outgoing call got no reply within its timeout.
    Timeout,
    /// An outgoing call failed because the connection ended (or was closing).
    Disconnected,
    /// An outgoing call whose caller stopped waiting (its future was dropped).
    Cancelled,
    /// An outgoing call failed on our side: its reply was not a valid
    /// response, or its request could not be sent.
    Failed,
}

impl Outcome {
    /// `"ok"`, `"error"`, `"notification"`, `"timeout"`, `"disconnected"`,
    /// `"cancelled"` or `"failed"` (for labels and logs; the code of an
    /// error is separate).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error(_) => "error",
            Outcome::Notification => "notification",
            Outcome::Timeout => "timeout",
            Outcome::Disconnected => "disconnected",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
        }
    }

    /// The error code, for [`Outcome::Error`].
    pub fn code(self) -> Option<i64> {
        match self {
            Outcome::Error(code) => Some(code),
            _ => None,
        }
    }

    /// The outcome of an outgoing call from its result.
    pub fn of_reply<T>(reply: &Result<T, Error>) -> Outcome {
        match reply {
            Ok(_) => Outcome::Ok,
            Err(Error::Rpc(error)) => Outcome::Error(error.code),
            Err(Error::Timeout(_)) => Outcome::Timeout,
            Err(Error::Disconnected) => Outcome::Disconnected,
            Err(_) => Outcome::Failed,
        }
    }

    /// The outcome of an incoming call from the frame it was answered with
    /// (`None`: a notification, or a request that answered itself).
    fn of_answer(id: Option<&Id>, answer: Option<&str>) -> Outcome {
        const ERROR_HEAD: &str = r#"{"jsonrpc":"2.0","error":{"code":"#;
        // The first letter of the member after the version: `e`rror or `r`esult.
        const MEMBER_AT: usize = r#"{"jsonrpc":"2.0",""#.len();
        match answer {
            None if id.is_none() => Outcome::Notification,
            None => Outcome::Ok,
            // The engine encodes every answer itself (`codec::encode`): the
            // version, then the result or the error, code first. One byte
            // tells most answers (results) apart.
            Some(frame) if frame.as_bytes().get(MEMBER_AT) != Some(&b'e') => Outcome::Ok,
            Some(frame) => match frame.strip_prefix(ERROR_HEAD) {
                None => Outcome::Ok,
                Some(rest) => {
                    let end = rest.find(|c: char| c != '-' && !c.is_ascii_digit()).unwrap_or(rest.len());
                    Outcome::Error(rest[..end].parse().unwrap_or(crate::code::INTERNAL_ERROR))
                }
            },
        }
    }
}

/// One call that has ended, as a [`CallObserver`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct CallEvent<'a> {
    /// The connection it was made on (its id, its `ConnectionInfo` with the
    /// authenticator's data and typed identity).
    pub peer: &'a PeerHandle,
    /// Who called whom.
    pub direction: Direction,
    /// The method called, as the caller named it.
    pub method: &'a str,
    /// For an incoming call of a registered method, its index in the
    /// connection's [`Methods`](crate::Methods) (see the
    /// [`methods`](crate::methods) module docs): an observer can keep per-method state in a
    /// `Vec` laid out by [`Methods::iter`](crate::Methods::iter) instead of
    /// looking `method` up. `None` for a routed or unknown method and for
    /// outgoing calls.
    pub method_index: Option<usize>,
    /// The request's id (`None` for a notification).
    pub id: Option<&'a Id>,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took (see the [module docs](self)).
    pub duration: Duration,
}

/// Something flow control did instead of running a request at once.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum FlowEvent<'a> {
    /// A request (or a whole batch) was parked: `max_in_flight` handlers were running.
    Parked,
    /// A request was answered at once with this error code instead of
    /// being run: -32002 "Server busy" (the parked bound was full), -32000
    /// "Server shutting down", -32600 (its batch was too long).
    Refused(i64),
    /// A notification was dropped for the reason this code names (as for `Refused`).
    Dropped(i64),
    /// `count` publications of a topic were shed from a full outbound queue
    /// as the topic's slow-consumer policy says.
    Shed {
        /// The topic and its policy.
        tag: &'a Sheddable,
        /// How many publications were dropped (the new one included, when it was).
        count: usize,
    },
}

impl FlowEvent<'_> {
    /// The policy of a [`FlowEvent::Shed`]: `"drop_oldest"` or `"latest_per_key"`.
    pub fn shed_policy(&self) -> Option<&'static str> {
        match self {
            FlowEvent::Shed { tag, .. } => Some(match tag.shed {
                Shed::DropOldest => "drop_oldest",
                Shed::LatestPerKey(_) => "latest_per_key",
            }),
            _ => None,
        }
    }
}

/// Told of every call and of flow control's rare events on the connections
/// whose [`PeerConfig::observer`](super::PeerConfig::observer) it is.
pub trait CallObserver: Send + Sync + 'static {
    /// A call has ended.
    fn call(&self, event: &CallEvent<'_>);

    /// Flow control parked, refused, dropped or shed something. Default: nothing.
    fn flow(&self, peer: &PeerHandle, event: FlowEvent<'_>) {
        let _ = (peer, event);
    }
}

/// The observer, when the connection has one.
fn observer(peer: &PeerHandle) -> Option<&Arc<dyn CallObserver>> {
    peer.shared.config.observer.as_ref()
}

/// Whether calls on `peer` are reported (the engine then times them).
pub(super) fn is_watched(peer: &PeerHandle) -> bool {
    observer(peer).is_some()
}

/// An incoming call: what the engine knows of it when it has run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Incoming<'a> {
    pub(super) method: &'a str,
    /// Its index in the connection's methods (see [`CallEvent::method_index`]).
    pub(super) index: Option<usize>,
    pub(super) id: Option<&'a Id>,
    pub(super) started: Started,
}

/// Reports an incoming call answered with `answer` (see [`Outcome`]).
#[inline]
pub(super) fn incoming(peer: &PeerHandle, call: Incoming<'_>, answer: Option<&str>) {
    if let Some(observer) = observer(peer) {
        let event = CallEvent {
            peer,
            direction: Direction::Incoming,
            method: call.method,
            method_index: call.index,
            id: call.id,
            outcome: Outcome::of_answer(call.id, answer),
            duration: call.started.elapsed(),
        };
        observer.call(&event);
    }
}

/// Reports a flow event.
pub(super) fn flow(peer: &PeerHandle, event: FlowEvent<'_>) {
    if let Some(observer) = observer(peer) {
        observer.flow(peer, event);
    }
}

/// Reports a request refused (answered `code` without running) or a
/// notification dropped.
pub(super) fn refused(peer: &PeerHandle, id: Option<&Id>, code: i64) {
    flow(peer, if id.is_some() { FlowEvent::Refused(code) } else { FlowEvent::Dropped(code) });
}

/// An incoming call whose handler is waiting: reports it once, when it
/// answers, or, if its future is dropped first (cancelled) or unwinds
/// (panicked), with the error the engine answers then.
pub(super) struct Waiting {
    peer: PeerHandle,
    method: Box<str>,
    index: Option<usize>,
    id: Option<Id>,
    started: Started,
    reported: bool,
}

impl Waiting {
    pub(super) fn new(peer: &PeerHandle, call: Incoming<'_>) -> Self {
        Waiting {
            peer: peer.clone(),
            method: call.method.into(),
            index: call.index,
            id: call.id.cloned(),
            started: call.started,
            reported: false,
        }
    }

    /// The handler answered `answer`: `report` is told (the engine's own
    /// audit, which calls [`incoming`]).
    pub(super) fn answered(mut self, answer: Option<&str>, report: fn(&PeerHandle, Incoming<'_>, Option<&str>)) {
        self.reported = true;
        let call = Incoming { method: &self.method, index: self.index, id: self.id.as_ref(), started: self.started };
        report(&self.peer, call, answer);
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.reported {
            return;
        }
        let Some(observer) = observer(&self.peer) else { return };
        let code = if std::thread::panicking() { crate::code::INTERNAL_ERROR } else { crate::code::REQUEST_CANCELLED };
        // A notification is never answered, whatever became of its handler.
        let outcome = if self.id.is_some() { Outcome::Error(code) } else { Outcome::Notification };
        let event = CallEvent {
            peer: &self.peer,
            direction: Direction::Incoming,
            method: &self.method,
            method_index: self.index,
            id: self.id.as_ref(),
            outcome,
            duration: self.started.elapsed(),
        };
        observer.call(&event);
    }
}

/// An outgoing call being made: reports it once, when it has a result, or
/// as [`Outcome::Cancelled`] if its caller stops waiting first.
pub(super) struct Outgoing {
    peer: PeerHandle,
    method: Box<str>,
    id: Id,
    started: Started,
    reported: bool,
}

impl Outgoing {
    /// Starts watching the call whose request `frame` is, when the
    /// connection has an observer.
    pub(super) fn start(peer: &PeerHandle, id: &Id, frame: &str) -> Option<Self> {
        is_watched(peer).then(|| Outgoing {
            peer: peer.clone(),
            method: method_of_request(frame).unwrap_or_default().into(),
            id: id.clone(),
            started: Started::now(),
            reported: false,
        })
    }

    /// The call has its result.
    pub(super) fn finish<T>(mut self, reply: Result<T, Error>) -> Result<T, Error> {
        self.reported = true;
        self.report(Outcome::of_reply(&reply));
        reply
    }

    fn report(&self, outcome: Outcome) {
        if let Some(observer) = observer(&self.peer) {
            let event = CallEvent {
                peer: &self.peer,
                direction: Direction::Outgoing,
                method: &self.method,
                method_index: None,
                id: Some(&self.id),
                outcome,
                duration: self.started.elapsed(),
            };
            observer.call(&event);
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        if !self.reported {
            self.report(Outcome::Cancelled);
        }
    }
}

/// The method of a request frame the engine encoded: `codec::encode`
/// writes `{"jsonrpc":"2.0","method":` first.
fn method_of_request(frame: &str) -> Option<String> {
    let rest = frame.strip_prefix(r#"{"jsonrpc":"2.0","method":"#)?;
    let mut strings = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    strings.next()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;
    use crate::{ErrorObject, code};

    #[test]
    fn the_method_is_read_back_from_an_encoded_request() {
        let frame = encode::request(&Id::Num(3), "a \"quoted\" \u{e9} name", &[1, 2]).unwrap();
        assert_eq!(method_of_request(&frame).as_deref(), Some("a \"quoted\" \u{e9} name"));
        assert_eq!(method_of_request("[]"), None);
    }

    #[test]
    fn an_answer_frame_gives_the_outcome_and_its_code() {
        let id = Id::Num(1);
        let error = encode::error(&id, &ErrorObject::new(-32601, "Method not found"));
        assert_eq!(Outcome::of_answer(Some(&id), Some(&error)), Outcome::Error(code::METHOD_NOT_FOUND));
        let custom = encode::error(&id, &ErrorObject::new(42, "out of stock"));
        assert_eq!(Outcome::of_answer(Some(&id), Some(&custom)), Outcome::Error(42));
        let ok = encode::success(&id, &"fine").unwrap();
        assert_eq!(Outcome::of_answer(Some(&id), Some(&ok)), Outcome::Ok);
        assert_eq!(Outcome::of_answer(None, None), Outcome::Notification);
        assert_eq!(Outcome::of_answer(Some(&id), None), Outcome::Ok);
    }
}
