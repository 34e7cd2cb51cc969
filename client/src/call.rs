//! One call: its options (timeout, what to do while offline) and the
//! future [`Call`] that [`Client::call`] returns.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use switchboard_shared::peer::decode_result;

use crate::{Client, Error};

/// What a call (or notification, batch, subscribe) does when no endpoint is
/// connected at the moment it is made.
///
/// Set for the whole client with
/// [`ClientBuilder::when_offline`](crate::ClientBuilder::when_offline)
/// (default [`WhenOffline::FailFast`]); override per call with
/// [`Call::wait_ready`] or [`Call::fail_fast`].
///
/// ```
/// use std::time::Duration;
/// use switchboard_client::{Client, Error, Reconnect, WhenOffline};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Nothing listens on port 1: the client never becomes ready.
/// let client = Client::builder().endpoint("ws://127.0.0.1:1/").reconnect(Reconnect::Never).build().unwrap();
/// let err = client.call::<i64>("add", [1, 2]).await.unwrap_err();
/// assert!(matches!(err, Error::Offline));
///
/// // Waiting for readiness is bounded by the call's timeout.
/// let err = client
///     .call::<i64>("add", [1, 2])
///     .when_offline(WhenOffline::WaitReady)
///     .timeout(Duration::from_millis(20))
///     .await
///     .unwrap_err();
/// assert!(matches!(err, Error::Timeout(_) | Error::Offline));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenOffline {
    /// Fail at once with [`Error::Offline`] (the default): the caller decides
    /// whether and when to try again.
    #[default]
    FailFast,
    /// Wait until an endpoint is ready, then send. The wait counts against
    /// the call's timeout (which then fails with [`Error::Timeout`]); a client
    /// that is closed, or whose reconnect policy gave up, fails with
    /// [`Error::Offline`].
    WaitReady,
}

/// Per-call overrides of the client's settings.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallOptions {
    /// `None`: the client's default; `Some(None)`: no timeout.
    pub(crate) timeout: Option<Option<Duration>>,
    /// `None`: the client's default.
    pub(crate) when_offline: Option<WhenOffline>,
}

impl CallOptions {
    pub(crate) fn set_timeout(&mut self, limit: Option<Duration>) {
        self.timeout = Some(limit);
    }
}

/// A call, returned by [`Client::call`] and [`Client::call_raw`]: a
/// [`Future`] of the decoded result. Adjust it first if needed (the builder
/// methods below), then await it, or hand it to anything that takes futures
/// (`tokio::select!`, `join_all`, `FuturesUnordered`, `tokio::spawn` for a
/// `'static` one...).
///
/// Nothing is sent until the call is first polled: creating a call and
/// dropping it sends nothing. Dropping it after the first poll (a `select!`
/// that took another branch) takes the call out of the pending table; a late
/// reply is counted and dropped. It is `Send` and `Unpin`, so `&mut call`
/// is a future too.
///
/// ```no_run
/// use std::time::Duration;
/// # async fn demo(client: switchboard_client::Client) -> Result<(), switchboard_client::Error> {
/// let sum: i64 = client.call("add", [1, 2]).await?;
/// let slow: String = client.call("report", ("2024",)).timeout(Duration::from_secs(60)).await?;
/// let when_up: u64 = client.call("uptime", ()).wait_ready().await?;
///
/// // Many at once over the one socket, results in order:
/// let sums = futures_util::future::join_all((0..10).map(|i| client.call::<i64>("add", [i, i]))).await;
///
/// // Or whichever comes first:
/// tokio::select! {
///     fast = client.call::<String>("fast", ()) => println!("{}", fast?),
///     slow = client.call::<String>("slow", ()) => println!("{}", slow?),
/// }
/// # let _ = (sum, slow, when_up, sums); Ok(()) }
/// ```
#[must_use = "a call is sent only when it is awaited (or polled)"]
pub struct Call<'a, R, P> {
    state: State<'a, P>,
    result: PhantomData<fn() -> R>,
}

/// Where a [`Call`] is: not sent yet (its options may still change), under
/// way, or finished.
enum State<'a, P> {
    Prepared { client: &'a Client, method: &'a str, params: P, options: CallOptions },
    Sent { method: &'a str, request: Request<'a> },
    Done,
}

/// The request under way: the client's send-and-wait, boxed once.
type Request<'a> = Pin<Box<dyn Future<Output = Result<Box<RawValue>, Error>> + Send + 'a>>;

// `P` is moved out of the prepared state by value and never pinned in place,
// and the request under way is boxed: a `Call` may move between polls.
impl<R, P> Unpin for Call<'_, R, P> {}

impl<'a, R, P> Call<'a, R, P> {
    pub(crate) fn new(client: &'a Client, method: &'a str, params: P) -> Self {
        Call { state: State::Prepared { client, method, params, options: CallOptions::default() }, result: PhantomData }
    }

    /// Changes the options of a call not sent yet. The builder methods are
    /// meant to be chained before the call is awaited; on a call already
    /// polled they change nothing (it is on its way with what it had).
    fn options(mut self, change: impl FnOnce(&mut CallOptions)) -> Self {
        if let State::Prepared { options, .. } = &mut self.state {
            change(options);
        }
        self
    }

    /// Fails with [`Error::Timeout`] if no reply came within `limit`
    /// (instead of the client's default timeout). The call leaves the
    /// pending table at once; a late reply is counted and dropped.
    pub fn timeout(self, limit: Duration) -> Self {
        self.options(|o| o.set_timeout(Some(limit)))
    }

    /// Waits for the reply however long it takes (until the socket ends).
    pub fn no_timeout(self) -> Self {
        self.options(|o| o.set_timeout(None))
    }

    /// While no endpoint is connected, waits for one instead of failing with
    /// [`Error::Offline`] (the wait counts against the timeout).
    pub fn wait_ready(self) -> Self {
        self.when_offline(WhenOffline::WaitReady)
    }

    /// Fails at once with [`Error::Offline`] while no endpoint is connected,
    /// whatever the client's default.
    pub fn fail_fast(self) -> Self {
        self.when_offline(WhenOffline::FailFast)
    }

    /// Sets what this call does while no endpoint is connected.
    pub fn when_offline(self, policy: WhenOffline) -> Self {
        self.options(|o| o.when_offline = Some(policy))
    }

    /// The method called.
    pub fn method(&self) -> &str {
        match &self.state {
            State::Prepared { method, .. } | State::Sent { method, .. } => method,
            State::Done => "",
        }
    }
}

impl<R, P> std::fmt::Debug for Call<'_, R, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Call");
        match &self.state {
            State::Prepared { method, options, .. } => out.field("method", method).field("options", options),
            State::Sent { method, .. } => out.field("method", method).field("state", &"sent"),
            State::Done => out.field("state", &"done"),
        };
        out.finish_non_exhaustive()
    }
}

impl<'a, R, P> Future for Call<'a, R, P>
where
    R: DeserializeOwned,
    P: Serialize + Send + 'a,
{
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if matches!(this.state, State::Prepared { .. }) {
            let State::Prepared { client, method, params, options } = std::mem::replace(&mut this.state, State::Done)
            else {
                unreachable!("matched just above")
            };
            let request = Box::pin(client.inner.request(method, params, options));
            this.state = State::Sent { method, request };
        }
        let State::Sent { request, .. } = &mut this.state else {
            panic!("a Call polled after it finished");
        };
        let raw = std::task::ready!(request.as_mut().poll(cx));
        this.state = State::Done;
        Poll::Ready(raw.and_then(|raw| decode_result(&raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_future<F: Future + Send + Unpin>(_: &F) {}

    #[tokio::test]
    async fn a_call_is_a_send_unpin_future_that_sends_nothing_until_polled() {
        let client =
            Client::builder().endpoint("ws://127.0.0.1:1/").reconnect(crate::Reconnect::Never).build().unwrap();
        let call = client.call::<i64>("add", [1, 2]).timeout(Duration::from_millis(5));
        assert_future(&call);
        assert_eq!(call.method(), "add");
        assert!(format!("{call:?}").contains("options"), "not sent yet: {call:?}");
        drop(call);
        assert_eq!(client.pending_calls(), 0);
    }
}
