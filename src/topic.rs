//! Typed topics: a topic declared once with the type of its publications,
//! published by the server and subscribed to by clients without naming it
//! as a string or decoding its params by hand.
//!
//! Terms:
//!
//! - a **topic** is a stream of publications the server sends to its
//!   subscribers (see the README's topic streams); a [`Topic<T>`] is its name
//!   and the type `T` of its **publications** (the params of each one, a
//!   struct or a list: JSON-RPC params are an object or an array);
//! - a **publisher** ([`Publisher`]) publishes a `T` to it from the server;
//! - a **subscriber** ([`Subscriber`]) subscribes a client to it, plain
//!   ([`TopicSubscription`]: each publication's `T`) or positioned
//!   ([`PositionedTopicSubscription`]: each `T` with its place in the stream,
//!   resumed without gaps after a reconnect).
//!
//! A topic is declared in a `#[switchboard::rpc]` trait, which generates the
//! accessors (`server.prices().publish(&price)`, `client.prices().subscribe()`)
//! and its entry under discovery's `x-topics`:
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//! use switchboard::topic::Topic;
//!
//! /// One trade.
//! #[derive(Debug, Serialize, Deserialize, JsonSchema)]
//! pub struct Price {
//!     pub symbol: String,
//!     pub price: f64,
//! }
//!
//! #[switchboard::rpc(namespace = "market")]
//! pub trait Market {
//!     /// Every trade's price, as it happens.
//!     #[rpc(topic)]
//!     fn prices() -> Topic<Price>;
//! }
//!
//! assert_eq!(MarketApi::prices().name(), "market.prices");
//! assert_eq!(MarketApi::topics()[0].summary.as_deref(), Some("Every trade's price, as it happens."));
//! ```
//!
//! A publication is sent as the notification named like the topic (its
//! method), with the `T` as its params; a subscriber decodes each one into
//! `T`, and one that does not fit is a [`TopicError::Decode`] item: the
//! subscription goes on.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_util::Stream;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use switchboard_client::{
    Client, Error, Lost, PositionedSubscription, Recovered, StreamItem, StreamPosition, SubscribePositioned,
    Subscription, SubscriptionError,
};
use switchboard_server::{DeliveryError, Published, ServerHandle};
use switchboard_shared::discover::{TopicDoc, schema_of};
use switchboard_shared::methods::decode_params;

/// A topic and the type `T` of its publications. Cheap to copy; made by the
/// code `#[switchboard::rpc]` generates (`MarketApi::prices()`), or by hand
/// with [`Topic::new`].
pub struct Topic<T> {
    name: &'static str,
    publication: PhantomData<fn() -> T>,
}

impl<T> Topic<T> {
    /// The topic named `name`, whose publications are `T`s.
    pub const fn new(name: &'static str) -> Self {
        Topic { name, publication: PhantomData }
    }

    /// The topic's name (what `rpc.subscribe` takes), also the method of
    /// its publications.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Publishes to this topic on `server`.
    pub fn publisher(self, server: &ServerHandle) -> Publisher<'_, T> {
        Publisher { server, topic: self }
    }

    /// Subscribes `client` to this topic.
    pub fn subscriber(self, client: &Client) -> Subscriber<'_, T> {
        Subscriber { client, topic: self }
    }
}

impl<T: JsonSchema> Topic<T> {
    /// Its entry for discovery's `x-topics`: the name, the summary, the
    /// method of its publications and the JSON Schema of `T`.
    pub fn doc(&self, summary: Option<&str>) -> TopicDoc {
        TopicDoc {
            name: self.name.to_owned(),
            summary: summary.map(str::to_owned),
            method: Some(self.name.to_owned()),
            schema: Some(schema_of::<T>()),
        }
    }
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Topic<T> {}

impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic").field("name", &self.name).field("publication", &std::any::type_name::<T>()).finish()
    }
}

/// Publishes `T`s to a topic from the server: `server.prices().publish(&price)`.
pub struct Publisher<'a, T> {
    server: &'a ServerHandle,
    topic: Topic<T>,
}

impl<T: Serialize> Publisher<'_, T> {
    /// Publishes `publication` (see [`ServerHandle::publish`]): every
    /// subscriber receives it, and it is kept in the topic's history. Await
    /// the [`Published`] for its position. Fails at once when `T` does not
    /// encode as a JSON object or array (params are one or the other).
    pub fn publish(&self, publication: &T) -> Result<Published, DeliveryError> {
        self.server.publish(self.topic.name, self.topic.name, publication)
    }
}

impl<T> fmt::Debug for Publisher<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").field("topic", &self.topic).finish_non_exhaustive()
    }
}

/// Subscribes a client to a topic: `client.prices().subscribe().await`.
pub struct Subscriber<'a, T> {
    client: &'a Client,
    topic: Topic<T>,
}

impl<'a, T: DeserializeOwned + 'static> Subscriber<'a, T> {
    /// A plain subscription (see [`Client::subscribe`]): each publication
    /// decoded into `T`, from now on; what is published while the
    /// connection is down is missed.
    pub async fn subscribe(&self) -> Result<TopicSubscription<T>, Error> {
        let inner = self.client.subscribe(self.topic.name).await?;
        Ok(TopicSubscription { inner, publication: PhantomData })
    }

    /// A positioned subscription (see [`Client::subscribe_positioned`]):
    /// each publication decoded into `T` with its position, resumed without
    /// gaps after a reconnect or a failover. Await it, after
    /// [`since`](SubscribeTopic::since) to resume after a position.
    pub fn subscribe_positioned(&self) -> SubscribeTopic<'a, T> {
        SubscribeTopic { inner: self.client.subscribe_positioned(self.topic.name), publication: PhantomData }
    }
}

impl<T> fmt::Debug for Subscriber<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").field("topic", &self.topic).finish_non_exhaustive()
    }
}

/// Why an item of a typed subscription is not a publication.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Subscribing again after a reconnect failed (see
    /// [`SubscriptionError`]): the client retries as its message says; stop
    /// reading to give up.
    #[error(transparent)]
    Resubscribe(Box<SubscriptionError>),
    /// A publication's params did not decode into the topic's type: the
    /// publisher and this client disagree on it (update one of them). The
    /// subscription goes on with the next publication.
    #[error("a publication of {topic:?}{} did not decode: {detail}", at(.position))]
    Decode {
        /// The topic.
        topic: String,
        /// Its position, for a positioned subscription.
        position: Option<StreamPosition>,
        /// What did not fit.
        detail: String,
    },
}

impl From<SubscriptionError> for TopicError {
    fn from(e: SubscriptionError) -> Self {
        TopicError::Resubscribe(Box::new(e))
    }
}

fn at(position: &Option<StreamPosition>) -> String {
    position.as_ref().map(|p| format!(" at {p}")).unwrap_or_default()
}

/// Decodes a publication's params into `T`; absent params read as `null`.
fn decode<T: DeserializeOwned + 'static>(
    topic: &str,
    position: Option<StreamPosition>,
    params: Option<&RawValue>,
) -> Result<T, TopicError> {
    decode_params::<T>(params).map_err(|e| TopicError::Decode {
        topic: topic.to_owned(),
        position,
        detail: match e.data {
            Some(serde_json::Value::String(detail)) => detail,
            _ => e.message.into_owned(),
        },
    })
}

/// A plain typed subscription: each publication of the topic as a `T`.
/// Read it with [`next`](Self::next), or as a [`Stream`]. Dropping it
/// unsubscribes (when it is the topic's last subscription on the client).
pub struct TopicSubscription<T> {
    inner: Subscription,
    publication: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> TopicSubscription<T> {
    /// The next publication, or why there is none this time (a failed
    /// re-subscribe, a publication that did not decode); `None` once the
    /// client is closed.
    pub async fn next(&mut self) -> Option<Result<T, TopicError>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T, TopicError>>> {
        let item = std::task::ready!(Pin::new(&mut self.inner).poll_next(cx));
        Poll::Ready(item.map(|item| match item {
            Ok(notification) => decode(self.inner.topic(), None, notification.raw_params()),
            Err(e) => Err(TopicError::from(e)),
        }))
    }

    /// The topic subscribed to.
    pub fn topic(&self) -> &str {
        self.inner.topic()
    }

    /// Publications lost because this subscription's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    /// The untyped subscription underneath.
    pub fn into_inner(self) -> Subscription {
        self.inner
    }
}

impl<T> fmt::Debug for TopicSubscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicSubscription").field("topic", &self.inner.topic()).finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + 'static> Stream for TopicSubscription<T> {
    type Item = Result<T, TopicError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

/// A positioned typed subscription about to be made: await it, after
/// [`since`](Self::since) to resume after a position.
#[must_use = "nothing is subscribed until it is awaited"]
pub struct SubscribeTopic<'a, T> {
    inner: SubscribePositioned<'a>,
    publication: PhantomData<fn() -> T>,
}

impl<T> SubscribeTopic<'_, T> {
    /// Resumes after `position` (see [`SubscribePositioned::since`]); `None`
    /// subscribes from now.
    pub fn since(self, position: impl Into<Option<StreamPosition>>) -> Self {
        SubscribeTopic { inner: self.inner.since(position), publication: PhantomData }
    }
}

impl<T> fmt::Debug for SubscribeTopic<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscribeTopic").field("inner", &self.inner).finish()
    }
}

impl<'a, T: DeserializeOwned + 'static> IntoFuture for SubscribeTopic<'a, T> {
    type Output = Result<PositionedTopicSubscription<T>, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        let subscribing = self.inner.into_future();
        Box::pin(async move {
            let inner = subscribing.await?;
            Ok(PositionedTopicSubscription { inner, publication: PhantomData })
        })
    }
}

/// One item of a [`PositionedTopicSubscription`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TopicItem<T> {
    /// The next publication, with its place in the topic's stream.
    Publication {
        /// The publication.
        value: T,
        /// Where it is in the stream (save it to resume after it).
        position: StreamPosition,
    },
    /// Missed publications were recovered: every one of them follows, in
    /// order. Nothing needs doing.
    Recovered(Recovered),
    /// Publications are gone: reload the state, then carry on.
    Lost(Lost),
}

/// A positioned typed subscription: each publication as a `T` with its
/// position, in order and once, resumed after a reconnect or a failover (see
/// [`PositionedSubscription`]). Read it with [`next`](Self::next), or as a
/// [`Stream`].
pub struct PositionedTopicSubscription<T> {
    inner: PositionedSubscription,
    publication: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> PositionedTopicSubscription<T> {
    /// The next item, or why there is none this time (a failed
    /// re-subscribe, a publication that did not decode: its position is
    /// passed all the same); `None` once the client is closed.
    pub async fn next(&mut self) -> Option<Result<TopicItem<T>, TopicError>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<TopicItem<T>, TopicError>>> {
        let item = std::task::ready!(Pin::new(&mut self.inner).poll_next(cx));
        Poll::Ready(item.map(|item| match item {
            Ok(StreamItem::Publication(p)) => {
                let position = p.position();
                decode(&p.topic, Some(position.clone()), Some(&p.params))
                    .map(|value| TopicItem::Publication { value, position })
            }
            Ok(StreamItem::Recovered(recovered)) => Ok(TopicItem::Recovered(recovered)),
            Ok(StreamItem::Lost(lost)) => Ok(TopicItem::Lost(lost)),
            // `StreamItem` may grow: a kind this version does not know is no publication.
            Ok(other) => Err(TopicError::Decode {
                topic: self.inner.topic().to_owned(),
                position: Some(self.inner.position().clone()),
                detail: format!("an item of an unknown kind: {other}"),
            }),
            Err(e) => Err(TopicError::from(e)),
        }))
    }

    /// The topic subscribed to.
    pub fn topic(&self) -> &str {
        self.inner.topic()
    }

    /// The position of the last item taken (see
    /// [`PositionedSubscription::position`]): give it to
    /// [`SubscribeTopic::since`] to resume from there later.
    pub fn position(&self) -> &StreamPosition {
        self.inner.position()
    }

    /// The URL of the endpoint it lives on now (`None` between connections).
    pub fn endpoint(&self) -> Option<String> {
        self.inner.endpoint()
    }

    /// The untyped subscription underneath.
    pub fn into_inner(self) -> PositionedSubscription {
        self.inner
    }
}

impl<T> fmt::Debug for PositionedTopicSubscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PositionedTopicSubscription")
            .field("topic", &self.inner.topic())
            .field("position", self.inner.position())
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + 'static> Stream for PositionedTopicSubscription<T> {
    type Item = Result<TopicItem<T>, TopicError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}
