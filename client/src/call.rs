//! One call: its options (timeout, what to do while offline) and the
//! awaitable builder [`Call`] that [`Client::call`] returns.

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
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

/// A call being prepared, returned by [`Client::call`] and
/// [`Client::call_raw`]. Await it to send it and get the result; adjust it
/// first if needed.
///
/// ```no_run
/// use std::time::Duration;
/// # async fn demo(client: switchboard_client::Client) -> Result<(), switchboard_client::Error> {
/// let sum: i64 = client.call("add", [1, 2]).await?;
/// let slow: String = client.call("report", ("2024",)).timeout(Duration::from_secs(60)).await?;
/// let when_up: u64 = client.call("uptime", ()).wait_ready().await?;
/// # let _ = (sum, slow, when_up); Ok(()) }
/// ```
#[must_use = "a call is sent only when it is awaited"]
pub struct Call<'a, R, P> {
    client: &'a Client,
    method: &'a str,
    params: P,
    options: CallOptions,
    result: PhantomData<fn() -> R>,
}

impl<'a, R, P> Call<'a, R, P> {
    pub(crate) fn new(client: &'a Client, method: &'a str, params: P) -> Self {
        Call { client, method, params, options: CallOptions::default(), result: PhantomData }
    }

    /// Fails with [`Error::Timeout`] if no reply came within `limit`
    /// (instead of the client's default timeout). The call leaves the
    /// pending table at once; a late reply is counted and dropped.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.options.set_timeout(Some(limit));
        self
    }

    /// Waits for the reply however long it takes (until the socket ends).
    pub fn no_timeout(mut self) -> Self {
        self.options.set_timeout(None);
        self
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
    pub fn when_offline(mut self, policy: WhenOffline) -> Self {
        self.options.when_offline = Some(policy);
        self
    }
}

impl<R, P> std::fmt::Debug for Call<'_, R, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").field("method", &self.method).field("options", &self.options).finish_non_exhaustive()
    }
}

impl<'a, R, P> IntoFuture for Call<'a, R, P>
where
    R: DeserializeOwned + 'a,
    P: Serialize + Send + 'a,
{
    type Output = Result<R, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<R, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let raw = self.client.inner.request(self.method, self.params, self.options).await?;
            decode_result(&raw)
        })
    }
}
