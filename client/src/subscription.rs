//! Notifications from the server: streams by method name, and topic
//! subscriptions.
//!
//! # How a notification finds its listeners
//!
//! Every notification the server sends goes, by its `method`:
//! 1. to every [`Notifications`] stream taken for that method
//!    ([`Client::notifications`]) and every [`Subscription`] listening for
//!    that method; and
//! 2. to the handler registered for that method in the client's
//!    [`Methods`], if there is one.
//!
//! Calls (requests with an id) from the server only ever go to the registry.
//!
//! # Topics
//!
//! [`Client::subscribe`]`(topic)` sends `rpc.subscribe` with params
//! `[topic]` to every connected endpoint (and again after every reconnect),
//! and yields the notifications **whose method is the topic's name**: that is
//! the convention Switchboard's server follows when it publishes to a topic.
//! A server that publishes a topic's events under another method name is
//! followed with [`Client::subscribe_method`]`(topic, method)`. Dropping the
//! last subscription of a topic sends `rpc.unsubscribe` with `[topic]`.
//!
//! A plain subscription may miss what is published while the connection is
//! down. [`Client::subscribe_positioned`] gives each publication its
//! position and resumes after it, without gaps or duplicates (see
//! [`positioned`](crate::positioned)).
//!
//! # When re-subscribing fails
//!
//! After a reconnect, every topic is subscribed again on the new connection.
//! When the server refuses that (an error answer) or the call fails (no
//! answer in time), each [`Subscription`] of the topic yields an
//! `Err(`[`SubscriptionError`]`)`: from then on it receives nothing from that
//! endpoint until a retry succeeds. The client retries with the reconnect
//! policy's backoff ([`Reconnect`](crate::Reconnect)), and each failed retry
//! is one more error item; [`SubscriptionError::gave_up`] says when the
//! policy's `max_retries` ran out (or the policy is `Never`): the topic is
//! then subscribed again only on the endpoint's next connection. A retry that
//! succeeds yields nothing special: the topic's notifications simply resume.
//! A connection that drops while re-subscribing yields no error (the next one
//! subscribes again, and the state watch shows the drop).
//!
//! ```no_run
//! # async fn demo(client: switchboard_client::Client) {
//! let mut news = client.subscribe("news").await.expect("subscribed");
//! while let Some(item) = news.next().await {
//!     match item {
//!         Ok(note) => println!("{:?}", note.raw_params()),
//!         Err(e) if e.gave_up() => {
//!             eprintln!("{e}");
//!             break;
//!         }
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! # }
//! ```
//!
//! # Slow readers
//!
//! Each stream buffers up to the builder's `notification_buffer` entries
//! (default 1,024). When a stream's buffer is full, new notifications for it
//! are dropped (never blocking the connection) and counted in
//! [`Notifications::dropped`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_util::Stream;
use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use switchboard_shared::methods::decode_params;
use switchboard_shared::stream::{PUBLICATION_METHOD, Publication};
use switchboard_shared::{Context, Dispatch, Id, Method, Methods};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{Client, Error};

/// A notification the server sent.
#[derive(Debug, Clone)]
pub struct Notification {
    method: Arc<str>,
    params: Option<Arc<RawValue>>,
}

impl Notification {
    /// The notification's method name (for a topic: the topic's name, by convention).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The params as raw JSON, or `None` when the server sent none.
    pub fn raw_params(&self) -> Option<&RawValue> {
        self.params.as_deref()
    }

    /// Decodes the params into `T` (a tuple for positional params, a struct
    /// for named ones). Absent params decode as `null`, so `()` and `Option`
    /// accept them. A mismatch is [`Error::Decode`].
    pub fn params<T: DeserializeOwned + 'static>(&self) -> Result<T, Error> {
        decode_params(self.params.as_deref()).map_err(|e| match e.data {
            Some(serde_json::Value::String(detail)) => Error::Decode(detail),
            _ => Error::Decode(e.message.into_owned()),
        })
    }
}

/// Why a [`Subscription`] is not receiving its topic from one endpoint:
/// subscribing again after a reconnect failed. See the [module
/// docs](self#when-re-subscribing-fails).
///
/// Its message says the topic, the endpoint, the cause and what happens
/// next, e.g. `re-subscribing to "news" on ws://127.0.0.1:9000/ failed: the
/// peer answered with an error: -32001 not now; retrying in 150ms`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("re-subscribing to {topic:?} on {endpoint} failed: {cause}; {}", next_step(*.retry_in))]
pub struct SubscriptionError {
    topic: String,
    endpoint: String,
    cause: Error,
    retry_in: Option<Duration>,
}

fn next_step(retry_in: Option<Duration>) -> String {
    match retry_in {
        Some(delay) if delay.is_zero() => "retrying now".to_owned(),
        Some(delay) => format!("retrying in {delay:?}"),
        None => "gave up until the next reconnect".to_owned(),
    }
}

impl SubscriptionError {
    pub(crate) fn new(topic: &str, endpoint: &str, cause: Error, retry_in: Option<Duration>) -> Self {
        SubscriptionError { topic: topic.to_owned(), endpoint: endpoint.to_owned(), cause, retry_in }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The endpoint's URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Why it failed: the server's refusal ([`Error::Rpc`]), or a call that
    /// failed ([`Error::Timeout`], ...).
    pub fn cause(&self) -> &Error {
        &self.cause
    }

    /// When the client tries again on this connection; `None` once it gave up.
    pub fn retry_in(&self) -> Option<Duration> {
        self.retry_in
    }

    /// Whether the client stopped retrying: the subscription receives nothing
    /// from this endpoint until it reconnects (with a single endpoint: the
    /// subscription is dead until then).
    pub fn gave_up(&self) -> bool {
        self.retry_in.is_none()
    }
}

/// What a stream's channel carries: a notification, or (for a topic's
/// subscriptions only) a failed re-subscribe.
type Item = Result<Notification, SubscriptionError>;

struct Listener {
    id: u64,
    /// The topic, for a [`Subscription`]'s listener.
    topic: Option<Arc<str>>,
    tx: mpsc::Sender<Item>,
    dropped: Arc<AtomicU64>,
}

/// A positioned publication as it reached a positioned subscription: with
/// the connection it came on.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub(crate) connection: Uuid,
    pub(crate) publication: Publication,
}

/// A positioned subscription's end of the routing.
struct StreamListener {
    id: u64,
    tx: mpsc::Sender<Arrival>,
    dropped: Arc<AtomicU64>,
}

/// Who listens for which notification, and which topics we are subscribed to.
pub(crate) struct Routing {
    listeners: RwLock<HashMap<Arc<str>, Vec<Listener>>>,
    /// Topic name to the number of live [`Subscription`]s on it.
    topics: Mutex<HashMap<String, usize>>,
    /// Positioned subscriptions' listeners, by topic.
    streams: RwLock<HashMap<String, Vec<StreamListener>>>,
    /// Where each positioned subscription lives (its listener id to its
    /// topic and connection), so that no `rpc.unsubscribe` undoes it.
    homes: Mutex<HashMap<u64, (String, Uuid)>>,
    next_id: AtomicU64,
    capacity: usize,
    closed: AtomicBool,
}

impl Routing {
    pub(crate) fn new(capacity: usize) -> Self {
        Routing {
            listeners: RwLock::new(HashMap::new()),
            topics: Mutex::new(HashMap::new()),
            streams: RwLock::new(HashMap::new()),
            homes: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            capacity: capacity.max(1),
            closed: AtomicBool::new(false),
        }
    }

    /// Hands a notification to every stream listening for `method`.
    pub(crate) fn deliver(&self, method: &str, params: Option<&RawValue>) {
        let listeners = self.listeners.read();
        let Some((name, list)) = listeners.get_key_value(method) else { return };
        let note = Notification { method: Arc::clone(name), params: params.map(|p| Arc::from(p.to_owned())) };
        for listener in list {
            if let Err(mpsc::error::TrySendError::Full(_)) = listener.tx.try_send(Ok(note.clone())) {
                let n = listener.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(method, dropped_total = n, "notification stream full: notification dropped");
            }
        }
    }

    /// Hands a failed re-subscribe to every subscription of its topic.
    pub(crate) fn report(&self, error: &SubscriptionError) {
        let listeners = self.listeners.read();
        let of_topic = listeners.values().flatten().filter(|l| l.topic.as_deref() == Some(error.topic()));
        for listener in of_topic {
            if let Err(mpsc::error::TrySendError::Full(_)) = listener.tx.try_send(Err(error.clone())) {
                let n = listener.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(topic = error.topic(), dropped_total = n, "subscription full: its error dropped");
            }
        }
    }

    /// A new stream of the notifications named `method` (for a subscription:
    /// of `topic`, which also receives the topic's re-subscribe failures).
    pub(crate) fn listen_topic(self: &Arc<Self>, method: &str, topic: Option<&str>) -> Receiver {
        let (tx, rx) = mpsc::channel(self.capacity);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        let method: Arc<str> = Arc::from(method);
        {
            let mut listeners = self.listeners.write();
            // Checked under the lock `close` takes: a stream made after close ends at once.
            if !self.closed.load(Ordering::Acquire) {
                let listener = Listener { id, topic: topic.map(Arc::from), tx, dropped: Arc::clone(&dropped) };
                listeners.entry(Arc::clone(&method)).or_default().push(listener);
            }
        }
        Receiver { rx, routing: Arc::clone(self), method, id, dropped }
    }

    /// A new stream of the notifications named `method`.
    pub(crate) fn listen(self: &Arc<Self>, method: &str) -> Notifications {
        Notifications { inner: self.listen_topic(method, None) }
    }

    fn unlisten(&self, method: &str, id: u64) {
        let mut listeners = self.listeners.write();
        if let Some(list) = listeners.get_mut(method) {
            list.retain(|l| l.id != id);
            if list.is_empty() {
                listeners.remove(method);
            }
        }
    }

    /// Counts one more subscription to `topic`.
    pub(crate) fn add_topic(&self, topic: &str) {
        *self.topics.lock().entry(topic.to_owned()).or_insert(0) += 1;
    }

    /// Counts one subscription less; true when it was the last one.
    pub(crate) fn remove_topic(&self, topic: &str) -> bool {
        let mut topics = self.topics.lock();
        match topics.get_mut(topic) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                topics.remove(topic);
                true
            }
            None => false,
        }
    }

    /// Whether some subscription still wants `topic`.
    pub(crate) fn has_topic(&self, topic: &str) -> bool {
        self.topics.lock().contains_key(topic)
    }

    /// The topics to subscribe to on a fresh connection.
    pub(crate) fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.topics.lock().keys().cloned().collect();
        topics.sort();
        topics
    }

    /// The buffer size of every stream.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Hands an `rpc.publication` that came on `connection` to every
    /// positioned subscription of its topic. A full one misses it (and
    /// counts it): it sees a gap and reads the history.
    pub(crate) fn deliver_publication(&self, connection: Uuid, params: Option<&RawValue>) {
        let streams = self.streams.read();
        if streams.is_empty() {
            return;
        }
        let publication = match params.map(|p| serde_json::from_str::<Publication>(p.get())) {
            Some(Ok(publication)) => publication,
            Some(Err(e)) => return tracing::debug!(error = %e, "an rpc.publication that is not a publication ignored"),
            None => return tracing::debug!("an rpc.publication without params ignored"),
        };
        let Some(list) = streams.get(&publication.topic) else { return };
        let Some((last, others)) = list.split_last() else { return };
        let send = |listener: &StreamListener, publication: Publication| {
            if let Err(mpsc::error::TrySendError::Full(_)) = listener.tx.try_send(Arrival { connection, publication }) {
                let n = listener.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(dropped_total = n, "positioned subscription full: a publication left to the history");
            }
        };
        for listener in others {
            send(listener, publication.clone());
        }
        send(last, publication);
    }

    /// A new positioned subscription's listener for `topic`.
    pub(crate) fn listen_stream(self: &Arc<Self>, topic: &str) -> StreamReceiver {
        let (tx, rx) = mpsc::channel(self.capacity);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        {
            let mut streams = self.streams.write();
            // Checked under the lock `close` takes: a stream made after close ends at once.
            if !self.closed.load(Ordering::Acquire) {
                let listener = StreamListener { id, tx, dropped: Arc::clone(&dropped) };
                streams.entry(topic.to_owned()).or_default().push(listener);
            }
        }
        StreamReceiver { rx, routing: Arc::clone(self), topic: topic.to_owned(), id, dropped }
    }

    fn unlisten_stream(&self, topic: &str, id: u64) {
        let mut streams = self.streams.write();
        if let Some(list) = streams.get_mut(topic) {
            list.retain(|l| l.id != id);
            if list.is_empty() {
                streams.remove(topic);
            }
        }
    }

    /// Records that positioned subscription `id` (of `topic`) lives on `connection`.
    pub(crate) fn set_home(&self, id: u64, topic: &str, connection: Uuid) {
        self.homes.lock().insert(id, (topic.to_owned(), connection));
    }

    /// Forgets where positioned subscription `id` lives.
    pub(crate) fn leave_home(&self, id: u64) {
        self.homes.lock().remove(&id);
    }

    /// Whether a positioned subscription of `topic` lives on `connection`.
    pub(crate) fn is_home(&self, topic: &str, connection: Uuid) -> bool {
        self.homes.lock().values().any(|(t, c)| t == topic && *c == connection)
    }

    /// Whether `connection` must stay subscribed to `topic`: a plain
    /// subscription wants it everywhere, a positioned one where it lives.
    pub(crate) fn wanted_on(&self, topic: &str, connection: Uuid) -> bool {
        self.has_topic(topic) || self.is_home(topic, connection)
    }

    /// Ends every stream (the client closed).
    pub(crate) fn close(&self) {
        let mut listeners = self.listeners.write();
        let mut streams = self.streams.write();
        self.closed.store(true, Ordering::Release);
        listeners.clear();
        streams.clear();
    }
}

/// A positioned subscription's end of the routing: the publications of its
/// topic, each with its connection (leaves the routing when dropped).
pub(crate) struct StreamReceiver {
    pub(crate) rx: mpsc::Receiver<Arrival>,
    routing: Arc<Routing>,
    topic: String,
    pub(crate) id: u64,
    dropped: Arc<AtomicU64>,
}

impl StreamReceiver {
    /// Publications missed because this listener's buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        self.routing.unlisten_stream(&self.topic, self.id);
    }
}

/// Builds the registry the peer engine dispatches to: the user's methods,
/// with notifications also handed to the streams listening for them.
pub(crate) fn client_methods(user: Methods, routing: Arc<Routing>) -> Methods {
    let user = Arc::new(user);
    let mut methods = Methods::new();
    // Registered names get a wrapper each, so the common path allocates nothing.
    for (name, method) in user.iter() {
        let inner = method.clone();
        let routing = Arc::clone(&routing);
        let name_for_delivery: Arc<str> = Arc::from(name);
        let publication = name == PUBLICATION_METHOD;
        let mut wrapped = Method::raw(move |params: Option<&RawValue>, cx: &Context, id: Option<Id>| {
            if id.is_none() {
                if publication {
                    routing.deliver_publication(cx.connection_id(), params);
                }
                routing.deliver(&name_for_delivery, params);
            }
            inner.invoke(params, cx, id)
        });
        *wrapped.info_mut() = method.info().clone();
        methods.insert(name, wrapped);
    }
    // Any other name: streams first (notifications only), then the user's own
    // router if it has one, else -32601 for calls.
    methods.router(move |name: &str| {
        let publication = name == PUBLICATION_METHOD;
        let name: Arc<str> = Arc::from(name);
        let routing = Arc::clone(&routing);
        let user = Arc::clone(&user);
        Some(Method::raw(move |params: Option<&RawValue>, cx: &Context, id: Option<Id>| -> Dispatch {
            if id.is_none() {
                if publication {
                    routing.deliver_publication(cx.connection_id(), params);
                }
                routing.deliver(&name, params);
            }
            user.dispatch(&name, params, cx, id)
        }))
    });
    methods
}

/// One listener's end of the routing: its channel, and its place in the
/// routing table (left when it is dropped).
pub(crate) struct Receiver {
    rx: mpsc::Receiver<Item>,
    routing: Arc<Routing>,
    method: Arc<str>,
    id: u64,
    dropped: Arc<AtomicU64>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.routing.unlisten(&self.method, self.id);
    }
}

/// A stream of the server's notifications with one method name, from
/// [`Client::notifications`]. It ends when the client is closed. Dropping it
/// stops the delivery.
///
/// Read it with [`Notifications::next`] (no trait to import), or as a
/// [`Stream`] with `futures_util::StreamExt`.
///
/// ```no_run
/// # async fn demo(client: switchboard_client::Client) -> Result<(), switchboard_client::Error> {
/// let mut ticks = client.notifications("tick");
/// while let Some(tick) = ticks.next().await {
///     let (n,): (u64,) = tick.params()?;
///     println!("tick {n}");
/// }
/// # Ok(()) }
/// ```
pub struct Notifications {
    inner: Receiver,
}

impl Notifications {
    /// The next notification; `None` once the client is closed.
    pub async fn next(&mut self) -> Option<Notification> {
        std::future::poll_fn(|cx| self.poll_notification(cx)).await
    }

    fn poll_notification(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Notification>> {
        loop {
            match std::task::ready!(self.inner.rx.poll_recv(cx)) {
                Some(Ok(note)) => return Poll::Ready(Some(note)),
                // Only a subscription's listener is sent errors.
                Some(Err(_)) => continue,
                None => return Poll::Ready(None),
            }
        }
    }

    /// The method name this stream listens for.
    pub fn method(&self) -> &str {
        &self.inner.method
    }

    /// Notifications lost because this stream's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications").field("method", &self.method()).field("dropped", &self.dropped()).finish()
    }
}

impl Stream for Notifications {
    type Item = Notification;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Notification>> {
        self.get_mut().poll_notification(cx)
    }
}

/// A topic subscription from [`Client::subscribe`]: the topic's
/// notifications, each `Ok`, and an `Err(`[`SubscriptionError`]`)` whenever
/// subscribing again after a reconnect failed (see the [module
/// docs](self#when-re-subscribing-fails)). Dropping the last subscription of
/// a topic sends `rpc.unsubscribe`. It ends (`None`) when the client is
/// closed; across reconnects it carries on (the topic is subscribed again on
/// every new connection).
///
/// Read it with [`Subscription::next`] (no trait to import), or as a
/// [`Stream`] with `futures_util::StreamExt`.
///
/// ```no_run
/// # async fn demo(client: switchboard_client::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let mut prices = client.subscribe("prices").await?;
/// while let Some(update) = prices.next().await {
///     // `?`: stop at the first failed re-subscribe (match on it to carry on instead).
///     let quote: serde_json::Value = update?.params()?;
///     println!("{quote}");
/// }
/// # Ok(()) }
/// ```
pub struct Subscription {
    inner: Receiver,
    topic: String,
    client: Client,
    /// Whether dropping it may send `rpc.unsubscribe` (not for a refused subscribe).
    unsubscribe: bool,
}

impl Subscription {
    pub(crate) fn new(inner: Receiver, topic: String, client: Client) -> Self {
        Subscription { inner, topic, client, unsubscribe: true }
    }

    /// Undoes the registration without telling the server (it refused anyway).
    pub(crate) fn forget(mut self) {
        self.unsubscribe = false;
    }

    /// The next notification of the topic, or the error of a failed
    /// re-subscribe; `None` once the client is closed.
    pub async fn next(&mut self) -> Option<Result<Notification, SubscriptionError>> {
        std::future::poll_fn(|cx| self.inner.rx.poll_recv(cx)).await
    }

    /// The topic subscribed to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The notification method this subscription yields (the topic's name
    /// unless [`Client::subscribe_method`] chose another).
    pub fn method(&self) -> &str {
        &self.inner.method
    }

    /// Notifications (and errors) lost because this subscription's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("topic", &self.topic).field("method", &self.method()).finish()
    }
}

impl Stream for Subscription {
    type Item = Result<Notification, SubscriptionError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.client.topic_dropped(&self.topic, self.unsubscribe);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn a_reported_error_reaches_only_the_subscriptions_of_its_topic() {
        let routing = Arc::new(Routing::new(8));
        let mut news = routing.listen_topic("news", Some("news"));
        let mut plain = routing.listen("news");
        let error = SubscriptionError::new("news", "ws://h/", Error::Offline, Some(Duration::from_millis(150)));
        routing.report(&error);
        routing.deliver("news", None);
        let Some(Err(seen)) = news.rx.recv().await else { panic!("the error first") };
        assert_eq!(seen.to_string(), "re-subscribing to \"news\" on ws://h/ failed: not connected; retrying in 150ms");
        assert!(matches!(news.rx.recv().await, Some(Ok(_))));
        assert!(plain.next().await.is_some(), "a plain stream skips errors and gets the notification");
        let gave_up = SubscriptionError::new("news", "ws://h/", Error::Offline, None);
        assert!(gave_up.gave_up() && gave_up.to_string().ends_with("gave up until the next reconnect"));
    }

    #[tokio::test]
    async fn a_notification_reaches_every_stream_of_its_method_only() {
        let routing = Arc::new(Routing::new(8));
        let mut a = routing.listen("tick");
        let mut b = routing.listen("tick");
        let mut other = routing.listen("tock");
        routing.deliver("tick", Some(&raw("[1]")));
        assert_eq!(a.next().await.unwrap().params::<(u8,)>().unwrap(), (1,));
        assert_eq!(b.next().await.unwrap().raw_params().unwrap().get(), "[1]");
        routing.close();
        assert!(other.next().await.is_none(), "closing ends the streams");
    }

    #[tokio::test]
    async fn a_full_stream_drops_and_counts_instead_of_blocking() {
        let routing = Arc::new(Routing::new(1));
        let mut s = routing.listen("tick");
        routing.deliver("tick", None);
        routing.deliver("tick", None);
        assert_eq!(s.dropped(), 1);
        assert!(s.next().await.unwrap().params::<()>().is_ok());
    }

    #[test]
    fn a_dropped_stream_stops_listening() {
        let routing = Arc::new(Routing::new(1));
        drop(routing.listen("tick"));
        assert!(routing.listeners.read().is_empty());
    }

    #[test]
    fn topics_are_counted_per_subscription() {
        let routing = Routing::new(1);
        routing.add_topic("t");
        routing.add_topic("t");
        assert!(!routing.remove_topic("t"));
        assert_eq!(routing.topics(), vec!["t".to_owned()]);
        assert!(routing.remove_topic("t"));
        assert!(routing.topics().is_empty());
    }
}
