//! Switchboard's client: JSON-RPC 2.0 over one long-lived WebSocket per
//! server, with many calls in flight at once, calls and notifications from
//! the server, reconnect, failover over several endpoints, and topic
//! subscriptions. It speaks plain JSON-RPC 2.0, so it works against any
//! conforming WebSocket server, not only Switchboard's.
//!
//! The socket work is done by the symmetric peer engine of
//! [`switchboard_shared::peer`]; this crate adds what a client needs around it:
//!
//! | module | its one job |
//! | --- | --- |
//! | [`builder`] | every setting, with its default; start the client |
//! | [`call`] | one call: timeout and offline overrides, awaitable |
//! | [`batch`] | several calls in one frame, results in order |
//! | `connection` | one endpoint's connect, supervise, reconnect loop |
//! | [`reconnect`] | the backoff policy |
//! | `balancer` | round-robin over the endpoints that are up |
//! | [`state`] | `Connecting` / `Ready` / `Offline` / `Closed`, as a watch |
//! | [`subscription`] | notification streams and topic subscriptions |
//! | [`positioned`] | positioned topic subscriptions: offsets, resume, gaps filled from history |
//! | [`relay`](mod@relay) | forward a method's calls to another server |
//! | `tls` | rustls (ring, webpki roots) for `wss://` |
//! | [`http`](mod@http) | [`HttpClient`]: one-off calls over `http://` / `https://` POST (cargo feature `http`) |
//!
//! ```no_run
//! use switchboard_client::{Client, Error};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("ws://127.0.0.1:9000/rpc").await?;
//!
//! let sum: i64 = client.call("add", [1, 2]).await?;
//! client.notify("log", ["hello"]).await?;
//! match client.call::<i64>("div", (1, 0)).await {
//!     Err(Error::Rpc(e)) => println!("the server said no: {e}"),
//!     other => println!("{other:?}"),
//! }
//!
//! let mut prices = client.subscribe("prices").await?;
//! if let Some(update) = prices.next().await {
//!     // Err: subscribing again after a reconnect failed (see `subscription`).
//!     println!("{:?}", update?.raw_params());
//! }
//! client.close().await;
//! # let _ = sum; Ok(()) }
//! ```

pub mod batch;
pub mod builder;
pub mod call;
#[cfg(feature = "http")]
pub mod http;
pub mod positioned;
pub mod reconnect;
pub mod relay;
pub mod state;
pub mod subscription;

mod balancer;
mod connection;
mod stray;
mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::value::RawValue;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

pub use batch::{Batch, BatchResults};
pub use builder::{AttemptError, ClientBuilder, ConnectError, RawSocket};
pub use call::{Call, WhenOffline};
#[cfg(feature = "http")]
pub use http::{HttpBatch, HttpClient, HttpClientBuilder, HttpError};
pub use positioned::{Cause, Lost, PositionedSubscription, Recovered, StreamItem, SubscribePositioned};
pub use reconnect::{Backoff, Reconnect};
pub use relay::{relay, relay_as};
/// The rustls crate this client is built with, for [`ClientBuilder::tls_config`].
pub use rustls;
pub use state::State;
pub use stray::StrayMessages;
pub use subscription::{Notification, Notifications, Subscription, SubscriptionError};
/// The error a call ends with (shared with the server's calls to clients).
pub use switchboard_shared::Error;
/// The wire types of topic streams, shared with the server.
pub use switchboard_shared::stream::{Publication, StreamPosition, Subscribed};
pub use switchboard_shared::{Context, ErrorObject, Id, Method, Methods, PeerHandle, StrayMessage};

use crate::balancer::Balancer;
use crate::call::CallOptions;
use crate::connection::{Phase, start_now};
use crate::state::Board;
use crate::subscription::Routing;

/// A JSON-RPC client over one WebSocket per endpoint.
///
/// Cheap to clone (one reference count); every clone shares the same
/// connections, so many tasks can call at once over one socket: calls are
/// multiplexed and every reply is matched to its caller by id. The
/// connections close when [`Client::close`] is called or the last clone
/// (and the last [`Subscription`]) is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    balancer: Balancer,
    board: Arc<Board>,
    routing: Arc<Routing>,
    /// The reconnect policy, whose backoff also paces re-subscribe retries.
    reconnect: Reconnect,
    default_timeout: Option<Duration>,
    when_offline: WhenOffline,
    close_grace: Duration,
    phase: watch::Sender<Phase>,
    in_flight: InFlight,
    strays: Arc<stray::Strays>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The supervisors close their sockets and stop.
        self.phase.send_replace(Phase::Stopped);
        self.routing.close();
    }
}

/// Calls under way, so that `close` can let them finish.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            let mut idle = std::pin::pin!(idle);
            idle.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One call's claim on [`InFlight`].
struct Tracked<'a>(&'a InFlight);

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A call's time limit, started when the call was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    limit: Option<Duration>,
    started: Instant,
}

impl Budget {
    /// What is left of it (`None`: no limit).
    pub(crate) fn left(&self) -> Option<Duration> {
        self.limit.map(|limit| limit.saturating_sub(self.started.elapsed()))
    }

    /// The error for running out of it.
    pub(crate) fn error(&self) -> Error {
        Error::Timeout(self.limit.unwrap_or_default())
    }
}

impl Inner {
    /// Counts a call in flight, or refuses it once the client is closing.
    pub(crate) fn track(&self) -> Result<Tracked<'_>, Error> {
        if *self.phase.borrow() != Phase::Running {
            return Err(Error::Offline);
        }
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        Ok(Tracked(&self.in_flight))
    }

    /// A connection for one call, waiting for readiness if the options say so.
    pub(crate) async fn connection_for(&self, options: CallOptions) -> Result<(PeerHandle, Budget), Error> {
        let budget = Budget { limit: options.timeout.unwrap_or(self.default_timeout), started: Instant::now() };
        if let Some(peer) = self.balancer.pick() {
            return Ok((peer, budget));
        }
        if options.when_offline.unwrap_or(self.when_offline) == WhenOffline::FailFast {
            return Err(Error::Offline);
        }
        let peer = match budget.limit {
            None => self.wait_for_peer().await,
            Some(limit) => tokio::time::timeout_at(budget.started + limit, self.wait_for_peer())
                .await
                .map_err(|_| budget.error())?,
        }?;
        Ok((peer, budget))
    }

    /// Waits until an endpoint is up; `Offline` once the client is closing or closed.
    async fn wait_for_peer(&self) -> Result<PeerHandle, Error> {
        let mut states = self.board.watch();
        let mut phase = self.phase.subscribe();
        loop {
            if *phase.borrow_and_update() != Phase::Running {
                return Err(Error::Offline);
            }
            // Marked seen before looking, so a change after the look wakes us.
            let state = *states.borrow_and_update();
            if let Some(peer) = self.balancer.pick() {
                return Ok(peer);
            }
            if state == State::Closed {
                return Err(Error::Offline);
            }
            tokio::select! {
                changed = states.changed() => if changed.is_err() { return Err(Error::Offline) },
                _ = phase.changed() => {}
            }
        }
    }

    /// Sends one call and waits for its raw result.
    pub(crate) async fn request(
        &self,
        method: &str,
        params: impl Serialize,
        options: CallOptions,
    ) -> Result<Box<RawValue>, Error> {
        let _tracked = self.track()?;
        let (peer, budget) = self.connection_for(options).await?;
        // One timer for the whole call, the wait for queue room included;
        // dropping the call on timeout takes it out of the pending table.
        let call = peer.call_raw(method, params, None);
        match budget.left() {
            None => call.await,
            Some(left) => tokio::time::timeout(left, call).await.unwrap_or_else(|_| Err(budget.error())),
        }
    }
}

impl Client {
    /// Connects to one endpoint with every default (10 s timeout, reconnect
    /// with backoff, fail fast while offline) and waits until it is ready.
    ///
    /// Fails with [`ConnectError::InvalidUrl`] for anything but a `ws://` or
    /// `wss://` URL, and with [`ConnectError::Unreachable`] if the first
    /// attempt fails. Use [`Client::builder`] for anything else.
    pub async fn connect(url: &str) -> Result<Client, ConnectError> {
        Client::builder().endpoint(url).connect().await
    }

    /// A builder for every other setting.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Calls `method` with `params` (anything `Serialize` that is a JSON
    /// array or object, or `()` for none) and decodes the result into `R`.
    /// Await the returned [`Call`]; adjust its timeout or offline behaviour first if needed.
    ///
    /// Errors: [`Error::Rpc`] for the server's error object, [`Error::Timeout`],
    /// [`Error::Disconnected`] (the socket ended with the call pending; it is
    /// not resent), [`Error::Offline`], [`Error::InvalidResponse`],
    /// [`Error::Decode`] (the result did not fit `R`), [`Error::Encode`].
    ///
    /// ```no_run
    /// # async fn demo(client: switchboard_client::Client) -> Result<(), switchboard_client::Error> {
    /// #[derive(serde::Serialize)]
    /// struct Range { from: u32, to: u32 }
    /// let sum: i64 = client.call("add", [1, 2]).await?;
    /// let total: u64 = client.call("sum_range", Range { from: 1, to: 10 }).await?;
    /// let version: String = client.call("version", ()).await?;
    /// # let _ = (sum, total, version); Ok(()) }
    /// ```
    pub fn call<'a, R: DeserializeOwned>(
        &'a self,
        method: &'a str,
        params: impl Serialize + Send + 'a,
    ) -> Call<'a, R, impl Serialize + Send + 'a> {
        Call::new(self, method, params)
    }

    /// Like [`Client::call`], with the result as a [`serde_json::Value`].
    pub fn call_raw<'a>(
        &'a self,
        method: &'a str,
        params: impl Serialize + Send + 'a,
    ) -> Call<'a, serde_json::Value, impl Serialize + Send + 'a> {
        Call::new(self, method, params)
    }

    /// Sends a notification (no reply, no id). Follows the client's
    /// [`WhenOffline`] setting and default timeout (for waiting only).
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        let _tracked = self.inner.track()?;
        let (peer, _) = self.inner.connection_for(CallOptions::default()).await?;
        peer.notify(method, params).await
    }

    /// Asks the server for its OpenRPC document with `rpc.discover`: its
    /// methods (params, result, errors), the methods it calls on clients
    /// (`x-client-methods`) and the topics it publishes (`x-topics`).
    ///
    /// Errors as for [`Client::call`]: a server without discovery answers
    /// -32601 ([`Error::Rpc`]); a reply that is not such a document is
    /// [`Error::Decode`].
    ///
    /// ```no_run
    /// # async fn demo(client: switchboard_client::Client) -> Result<(), switchboard_client::Error> {
    /// let doc = client.discover().await?;
    /// for method in &doc.methods {
    ///     println!("{}  {}", method.signature(), method.summary.as_deref().unwrap_or(""));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn discover(&self) -> Result<switchboard_shared::discover::Document, Error> {
        self.call("rpc.discover", ()).await
    }

    /// Starts a batch: several calls and notifications in one frame.
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self)
    }

    /// A stream of the server's notifications named `method` (from every
    /// endpoint). See [`subscription`] for how notifications are routed.
    pub fn notifications(&self, method: &str) -> Notifications {
        self.inner.routing.listen(method)
    }

    /// Subscribes to `topic` with `rpc.subscribe` (params `[topic]`) on every
    /// connected endpoint, and again after every reconnect; yields the
    /// notifications whose **method is the topic's name** (Switchboard's
    /// convention), and an error item when subscribing again after a
    /// reconnect failed (see [`Subscription`]). Dropping the last
    /// subscription of the topic sends `rpc.unsubscribe`.
    ///
    /// Fails with the server's error if every endpoint refused, and follows
    /// the client's [`WhenOffline`] setting and timeout.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, Error> {
        self.subscribe_method(topic, topic).await
    }

    /// Like [`Client::subscribe`], for a server that publishes the topic's
    /// events as notifications named `method`.
    pub async fn subscribe_method(&self, topic: &str, method: &str) -> Result<Subscription, Error> {
        let _tracked = self.inner.track()?;
        // Listen and register first, so nothing published right after the
        // server accepts is missed, and a reconnect meanwhile re-subscribes.
        let stream = self.inner.routing.listen_topic(method, Some(topic));
        self.inner.routing.add_topic(topic);
        let subscription = Subscription::new(stream, topic.to_owned(), self.clone());
        let outcome = self.subscribe_everywhere(topic).await;
        match outcome {
            Ok(()) => Ok(subscription),
            Err(e) => {
                subscription.forget();
                Err(e)
            }
        }
    }

    async fn subscribe_everywhere(&self, topic: &str) -> Result<(), Error> {
        let (first, budget) = self.inner.connection_for(CallOptions::default()).await?;
        let mut peers = self.inner.balancer.all_up();
        if !peers.iter().any(|p| p.id() == first.id()) {
            peers.push(first);
        }
        let calls = peers.iter().map(|peer| async move {
            let call = peer.call_raw("rpc.subscribe", [topic], None);
            match budget.left() {
                None => call.await,
                Some(left) => tokio::time::timeout(left, call).await.unwrap_or_else(|_| Err(budget.error())),
            }
        });
        let outcomes = futures_util::future::join_all(calls).await;
        let mut first_error = None;
        for outcome in outcomes {
            match outcome {
                Ok(_) => return Ok(()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(Error::Offline))
    }

    /// Subscribes to `topic` with positions: the topic's publications with
    /// their epoch and offset, carried on seamlessly across reconnects and
    /// failovers, and an explicit [`StreamItem::Lost`] when some are gone.
    /// Await the returned [`SubscribePositioned`], after
    /// [`since`](SubscribePositioned::since) to resume after a position.
    /// See [`positioned`] for how it works.
    ///
    /// Fails with the server's error if it refused, with [`Error::Decode`] if
    /// the server does not do positioned subscriptions (it answered `true`),
    /// and follows the client's [`WhenOffline`] setting and timeout.
    ///
    /// ```no_run
    /// use switchboard_client::{Client, StreamItem};
    ///
    /// # async fn demo(client: Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut prices = client.subscribe_positioned("prices").await?;
    /// while let Some(item) = prices.next().await {
    ///     match item? {
    ///         StreamItem::Publication(p) => println!("{}:{} {}", p.epoch, p.offset, p.params),
    ///         StreamItem::Lost(lost) => println!("reload the prices: {lost}"),
    ///         other => println!("{other}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe_positioned<'a>(&'a self, topic: &'a str) -> SubscribePositioned<'a> {
        SubscribePositioned::new(self, topic)
    }

    /// Called when a subscription to `topic` ends.
    pub(crate) fn topic_dropped(&self, topic: &str, unsubscribe: bool) {
        if !self.inner.routing.remove_topic(topic) || !unsubscribe {
            return;
        }
        if *self.inner.phase.borrow() == Phase::Stopped {
            return;
        }
        for peer in self.inner.balancer.all_up() {
            // A positioned subscription of the topic lives there: keep it.
            if self.inner.routing.is_home(topic, peer.id()) {
                continue;
            }
            let topic = topic.to_owned();
            // Queued now: a new subscribe to the same topic right after this
            // goes out after the unsubscribe, never before it.
            start_now(async move {
                if let Err(error) = peer.call::<IgnoredAny>("rpc.unsubscribe", [&topic]).await {
                    tracing::debug!(%topic, %error, "rpc.unsubscribe failed");
                }
            });
        }
    }

    /// The client's state now (see [`State`]).
    pub fn state(&self) -> State {
        self.inner.board.state()
    }

    /// A watch of the client's state, to show it or react to changes.
    ///
    /// ```no_run
    /// # async fn demo(client: switchboard_client::Client) {
    /// let mut state = client.watch_state();
    /// while state.changed().await.is_ok() {
    ///     println!("connection is {}", *state.borrow());
    /// }
    /// # }
    /// ```
    pub fn watch_state(&self) -> watch::Receiver<State> {
        self.inner.board.watch()
    }

    /// A watch of every endpoint's own state, in the order the endpoints were
    /// given (the client's state sums them up: see [`State::of_endpoints`]).
    pub fn watch_endpoints(&self) -> watch::Receiver<Vec<State>> {
        self.inner.board.watch_endpoints()
    }

    /// Waits until an endpoint is ready. Fails with [`Error::Offline`] if the
    /// client is closed or every endpoint's reconnect policy gave up.
    /// Bound it with `tokio::time::timeout` if needed.
    pub async fn ready(&self) -> Result<(), Error> {
        let mut states = self.inner.board.watch();
        let state = states.wait_for(|s| matches!(s, State::Ready | State::Closed)).await.map(|s| *s);
        match state {
            Ok(State::Ready) => Ok(()),
            _ => Err(Error::Offline),
        }
    }

    /// Each endpoint's URL, state and counters, in the order they were given.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        self.inner
            .balancer
            .endpoints()
            .iter()
            .map(|e| EndpointStatus {
                url: e.url.to_string(),
                state: self.inner.board.endpoint(e.index).state,
                sent: e.sent(),
                connections: e.connections(),
            })
            .collect()
    }

    /// Calls sent that still wait for a reply (over every open connection).
    pub fn pending_calls(&self) -> usize {
        self.inner.balancer.endpoints().iter().map(|e| e.pending_calls()).sum()
    }

    /// Replies that arrived for ids no call was waiting for (timed out
    /// already, never sent, duplicated), since the client started. They are
    /// dropped; they never disturb other calls.
    pub fn unknown_replies(&self) -> u64 {
        self.inner.balancer.endpoints().iter().map(|e| e.unknown_replies()).sum()
    }

    /// Messages from the server that no call could take, from now on: an
    /// error reply with `"id": null` (which has already failed the call it
    /// must have been for, when exactly one call or batch was outstanding)
    /// and frames that are not JSON-RPC (never answered).
    ///
    /// ```no_run
    /// # async fn demo(client: switchboard_client::Client) {
    /// use switchboard_client::StrayMessage;
    /// let mut strays = client.strays();
    /// while let Some(stray) = strays.next().await {
    ///     match stray {
    ///         StrayMessage::ErrorWithoutId { error, failed_calls } => eprintln!("server error {error} ({failed_calls} calls failed)"),
    ///         other => eprintln!("{other:?}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn strays(&self) -> StrayMessages {
        self.inner.strays.subscribe()
    }

    /// Error replies with `"id": null` received since the client started.
    pub fn errors_without_id(&self) -> u64 {
        self.inner.strays.errors_without_id()
    }

    /// Frames received since the client started that were not JSON-RPC (not
    /// JSON, an empty batch). They are never answered.
    pub fn malformed_frames(&self) -> u64 {
        self.inner.strays.malformed()
    }

    /// Closes the client gracefully: new calls fail with [`Error::Offline`],
    /// calls in flight get up to the builder's `close_grace` (default 5 s)
    /// to finish, then every socket is closed with a close frame (1000) and
    /// every stream and subscription ends. Returns once all sockets are
    /// closed. Calling it again (or on a clone) just waits for that.
    pub async fn close(&self) {
        let inner = &self.inner;
        let first = inner.phase.send_if_modified(|phase| {
            let running = *phase == Phase::Running;
            if running {
                *phase = Phase::Draining;
            }
            running
        });
        if first {
            let _ = tokio::time::timeout(inner.close_grace, inner.in_flight.wait_idle()).await;
            inner.phase.send_replace(Phase::Stopped);
        }
        let mut states = inner.board.watch();
        let _ = states.wait_for(|s| *s == State::Closed).await;
        inner.routing.close();
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.inner.phase.borrow() != Phase::Running
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("state", &self.state()).field("endpoints", &self.endpoints()).finish()
    }
}

/// One endpoint as [`Client::endpoints`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// Its URL.
    pub url: String,
    /// Its own state.
    pub state: State,
    /// Calls, notifications and batches the balancer sent through it.
    pub sent: u64,
    /// Sockets opened to it so far (1 + reconnects).
    pub connections: u64,
}
