//! Positioned subscriptions: a topic's stream of publications, each with its
//! place in the stream (an epoch and an offset), carried on across
//! reconnects and failovers without a gap or a duplicate, and saying so
//! explicitly when publications are gone.
//!
//! # The stream
//!
//! [`Client::subscribe_positioned`]`(topic)` sends `rpc.subscribe` with
//! `{"topic": topic, "positioned": true}` (or `"since": position` after
//! [`SubscribePositioned::since`]). The server numbers a topic's
//! publications with consecutive offsets within an epoch (see
//! [`switchboard_shared::stream`]) and sends each as an `rpc.publication`
//! notification. The [`PositionedSubscription`] yields, in order:
//!
//! - [`StreamItem::Publication`]: the next publication, whose offset is
//!   always the previous one's plus one, in the same epoch, unless a
//!   [`StreamItem::Lost`] came in between. Duplicates (a replay overlapping
//!   what was delivered) are dropped.
//! - [`StreamItem::Lost`]: publications after [`Lost::last`] are gone and
//!   will never be delivered; the application must reload its state. The
//!   stream carries on after [`Lost::position`].
//! - [`StreamItem::Recovered`]: publications were missed (a reconnect, a
//!   gap) and every one of them follows, in order. Informational: nothing
//!   needs doing.
//! - `Err(`[`SubscriptionError`]`)`: subscribing again failed, as for a plain
//!   [`Subscription`](crate::Subscription); it is retried with the
//!   reconnect policy's backoff.
//!
//! A subscription made with `since` always starts with a `Recovered` (every
//! publication after `since` follows) or a `Lost`.
//! [`PositionedSubscription::position`] is the position of the last item
//! taken: keep it with the application's state to resume from it later, in
//! this process or the next.
//!
//! # Reconnects, gaps and epochs
//!
//! - **The connection ends** (or the server restarts): once the client is
//!   connected again, the subscription subscribes again with `since` = its
//!   last position. When the server still has every missed publication
//!   (`recovered: true`), they come first, then live ones: the stream goes
//!   on without a gap or a duplicate (one `Recovered` item says how many were
//!   missed). Otherwise (a new epoch, or history no longer reaching back so
//!   far) nothing is replayed and the subscription yields `Lost`, then
//!   carries on from the server's latest offset.
//! - **Offsets jump** within an epoch (the server dropped publications for a
//!   slow consumer, or this subscription's own buffer, the builder's
//!   [`notification_buffer`](crate::ClientBuilder::notification_buffer), was
//!   full because the application read too slowly): it reads the
//!   missing ones with `rpc.history` (`since` = its last position) and
//!   delivers them in order (after a `Recovered`), or yields `Lost` when any
//!   of them is gone or `rpc.history` failed: it never delivers part of a
//!   gap. Missing publications at the very end, when its buffer was full,
//!   are read the same way as soon as it has caught up.
//! - **A live publication comes in another epoch** (the topic's history
//!   started afresh): `Lost`, then that publication.
//!
//! # One connection at a time
//!
//! A positioned subscription lives on one connection: the one the client
//! picked when subscribing (round-robin over the endpoints that are up).
//! Publications arriving on any other connection are not its own and are
//! ignored. When its connection ends, it moves to whichever endpoint is up
//! (the same one once it reconnects, or another one at once: a failover)
//! and subscribes there with `since`; it stays there when the first endpoint
//! comes back. Whether another endpoint can resume it depends on the servers
//! sharing the topic's stream (the same epoch and offsets, as with a shared
//! history store): if they do not, the epochs differ and the move yields a
//! `Lost`.
//!
//! Dropping a positioned subscription sends `rpc.unsubscribe` with `[topic]`
//! on its connection, unless another subscription of the topic still needs
//! that connection subscribed. The server keeps one membership per
//! connection and topic, so hold a topic either plainly
//! ([`Client::subscribe`]) or positioned on one client, not both: how a
//! server sends a topic to a connection that asked both ways is its own
//! choice. Several positioned subscriptions of one topic are fine: each
//! keeps its own position.
//!
//! ```no_run
//! use switchboard_client::{Client, StreamItem, StreamPosition};
//!
//! # fn load_saved() -> Option<StreamPosition> { None }
//! # async fn demo(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! // Resume after the position saved with the state (`None`: from now).
//! let mut orders = client.subscribe_positioned("orders").since(load_saved()).await?;
//! while let Some(item) = orders.next().await {
//!     match item {
//!         Ok(StreamItem::Publication(order)) => println!("order {}: {}", order.offset, order.params),
//!         Ok(StreamItem::Lost(lost)) => eprintln!("{lost}: reloading every order"),
//!         Ok(other) => eprintln!("{other}"),
//!         Err(e) => eprintln!("{e}"),
//!     }
//!     // Saved with the state it goes with.
//!     let _save = orders.position();
//! }
//! # Ok(()) }
//! ```

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_util::Stream;
use parking_lot::Mutex;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use switchboard_shared::PeerHandle;
use switchboard_shared::peer::decode_result;
use switchboard_shared::stream::{
    HISTORY_METHOD, History, HistoryParams, Publication, StreamPosition, SubscribeParams, Subscribed,
};
use tokio::sync::mpsc;

use crate::call::CallOptions;
use crate::connection::{Phase, endpoint_url, start_now};
use crate::reconnect::Schedule;
use crate::subscription::{Arrival, StreamReceiver, SubscriptionError};
use crate::{Client, Error};

/// One item of a [`PositionedSubscription`] (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamItem {
    /// The next publication of the topic, with its position.
    Publication(Publication),
    /// Missed publications were recovered: every one of them follows, in
    /// order. Nothing needs doing.
    Recovered(Recovered),
    /// Publications are gone: reload the state, then carry on.
    Lost(Lost),
}

impl std::fmt::Display for StreamItem {
    /// A publication as `topic EPOCH:OFFSET method params`; the others as their own messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamItem::Publication(p) => write!(f, "{} {}:{} {} {}", p.topic, p.epoch, p.offset, p.method, p.params),
            StreamItem::Recovered(recovered) => recovered.fmt(f),
            StreamItem::Lost(lost) => lost.fmt(f),
        }
    }
}

/// What made a subscription recover publications or lose them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Cause {
    /// The first subscribe, with [`since`](SubscribePositioned::since).
    Subscribe {
        /// The endpoint's URL.
        endpoint: String,
    },
    /// The connection the subscription lived on ended, and it subscribed
    /// again with `since` on `endpoint` (the same endpoint reconnected, or
    /// another one).
    Reconnect {
        /// The endpoint's URL.
        endpoint: String,
    },
    /// Offsets jumped within an epoch, and the subscription read
    /// `rpc.history`.
    Gap {
        /// Why `rpc.history` failed, when it did (the publications are then
        /// counted as lost).
        history_error: Option<Error>,
    },
    /// A live publication came in a new epoch: the topic's stream started afresh.
    EpochChanged,
}

impl PartialEq for Cause {
    /// Errors compare by their message.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cause::Subscribe { endpoint: a }, Cause::Subscribe { endpoint: b }) => a == b,
            (Cause::Reconnect { endpoint: a }, Cause::Reconnect { endpoint: b }) => a == b,
            (Cause::Gap { history_error: a }, Cause::Gap { history_error: b }) => {
                a.as_ref().map(ToString::to_string) == b.as_ref().map(ToString::to_string)
            }
            (Cause::EpochChanged, Cause::EpochChanged) => true,
            _ => false,
        }
    }
}

/// Missed publications that were recovered: the next [`missed`](Self::missed)
/// publications are they, in order.
///
/// Its message says what happened, e.g. `reconnected to ws://h/; recovered 12
/// missed publications of "news" after e1:41`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// The topic.
    pub topic: String,
    /// The last position delivered before them.
    pub since: StreamPosition,
    /// How many were missed (and follow).
    pub missed: u64,
    /// What happened.
    pub cause: Cause,
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (topic, since, missed) = (&self.topic, &self.since, self.missed);
        let count = plural(missed, "missed publication");
        match &self.cause {
            Cause::Reconnect { endpoint } if missed == 0 => {
                write!(f, "reconnected to {endpoint}; no publication of {topic:?} was missed after {since}")
            }
            Cause::Reconnect { endpoint } => {
                write!(f, "reconnected to {endpoint}; recovered {count} of {topic:?} after {since}")
            }
            Cause::Subscribe { .. } => write!(f, "resumed {topic:?} after {since}; recovered {count}"),
            Cause::Gap { .. } | Cause::EpochChanged => {
                write!(f, "publications of {topic:?} were skipped after {since}; recovered {count} from history")
            }
        }
    }
}

/// Publications that are gone: the application's state (as of
/// [`last`](Self::last)) misses them and must be reloaded. The stream
/// carries on with the publications after [`position`](Self::position).
///
/// Its message says what happened, e.g. `reconnected to ws://h/; missed
/// publications of "news" are lost (new epoch e2); continuing after e2:7`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lost {
    /// The topic.
    pub topic: String,
    /// The last position delivered: what the application's state is up to.
    pub last: StreamPosition,
    /// Where the stream carries on: the next publication is the one after it.
    pub position: StreamPosition,
    /// What happened.
    pub cause: Cause,
}

impl Lost {
    /// Whether the topic's stream started afresh (a new epoch).
    pub fn epoch_changed(&self) -> bool {
        self.last.epoch != self.position.epoch
    }

    /// How many publications are gone, when known (within one epoch).
    pub fn missed(&self) -> Option<u64> {
        (!self.epoch_changed()).then(|| self.position.offset.saturating_sub(self.last.offset))
    }

    /// Why, in a few words: `new epoch E` or `no longer in the server's history`, ...
    fn why(&self) -> String {
        if self.epoch_changed() {
            return format!("new epoch {}", self.position.epoch);
        }
        match &self.cause {
            Cause::Gap { history_error: Some(e) } => format!("rpc.history failed: {e}"),
            _ => "no longer in the server's history".to_owned(),
        }
    }
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (topic, last, position, why) = (&self.topic, &self.last, &self.position, self.why());
        match &self.cause {
            Cause::Reconnect { endpoint } => write!(
                f,
                "reconnected to {endpoint}; missed publications of {topic:?} are lost ({why}); continuing after {position}"
            ),
            Cause::Subscribe { .. } => write!(
                f,
                "cannot resume {topic:?} after {last}: missed publications are lost ({why}); continuing after {position}"
            ),
            Cause::Gap { .. } => write!(
                f,
                "publications of {topic:?} after {last} were skipped and are lost ({why}); continuing after {position}"
            ),
            Cause::EpochChanged => write!(
                f,
                "{topic:?} started a new epoch {}; publications after {last} are lost; continuing after {position}",
                position.epoch
            ),
        }
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// A positioned subscribe being set up, from [`Client::subscribe_positioned`]:
/// await it (after [`since`](Self::since) to resume).
///
/// ```no_run
/// use switchboard_client::{Client, StreamPosition};
///
/// # async fn demo(client: Client) -> Result<(), switchboard_client::Error> {
/// let from_now = client.subscribe_positioned("news").await?;
/// let resumed = client.subscribe_positioned("news").since(StreamPosition::new("e1", 41)).await?;
/// let saved: Option<StreamPosition> = "e1:41".parse().ok();
/// let either = client.subscribe_positioned("news").since(saved).await?;
/// # let _ = (from_now, resumed, either); Ok(()) }
/// ```
#[must_use = "nothing is subscribed until it is awaited"]
#[derive(Debug)]
pub struct SubscribePositioned<'a> {
    client: &'a Client,
    topic: &'a str,
    since: Option<StreamPosition>,
}

impl<'a> SubscribePositioned<'a> {
    pub(crate) fn new(client: &'a Client, topic: &'a str) -> Self {
        SubscribePositioned { client, topic, since: None }
    }

    /// Resumes after `position` (the last one the application has): every
    /// publication after it is delivered first if the server still has them
    /// all (a [`StreamItem::Recovered`] first), else a [`StreamItem::Lost`]
    /// comes first. `None` subscribes from now.
    pub fn since(mut self, position: impl Into<Option<StreamPosition>>) -> Self {
        self.since = position.into();
        self
    }
}

impl<'a> IntoFuture for SubscribePositioned<'a> {
    type Output = Result<PositionedSubscription, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(start(self.client, self.topic, self.since))
    }
}

/// What a subscription's channel carries.
type Item = Result<StreamItem, SubscriptionError>;

/// Where a positioned subscription lives, shared by its handle and its
/// driver so that a drop and a move never cross.
#[derive(Debug, Default)]
struct Home {
    peer: Option<PeerHandle>,
    dropped: bool,
}

/// Subscribes, then starts the driver.
async fn start(client: &Client, topic: &str, since: Option<StreamPosition>) -> Result<PositionedSubscription, Error> {
    let inner = &client.inner;
    let _tracked = inner.track()?;
    // Listening first, so nothing sent right after the answer is missed.
    let raw = inner.routing.listen_stream(topic);
    let (peer, budget) = inner.connection_for(CallOptions::default()).await?;
    let id = raw.id;
    let home = Arc::new(Mutex::new(Home { peer: Some(peer.clone()), dropped: false }));
    // Before the subscribe goes out: no plain unsubscribe undoes it.
    inner.routing.set_home(id, topic, peer.id());
    let params = SubscribeParams { topic: topic.to_owned(), since: since.clone(), positioned: since.is_none() };
    let call = peer.call_raw("rpc.subscribe", &params, None);
    let answer = match budget.left() {
        None => call.await,
        Some(left) => tokio::time::timeout(left, call).await.unwrap_or_else(|_| Err(budget.error())),
    };
    let subscribed = match answer.and_then(|raw| decode_subscribed(&raw)) {
        Ok(subscribed) => subscribed,
        Err(e) => {
            inner.routing.leave_home(id);
            // A server without positioned subscriptions made a plain one: undo it.
            if matches!(e, Error::Decode(_)) && !inner.routing.wanted_on(topic, peer.id()) {
                unsubscribe(peer, topic);
            }
            return Err(e);
        }
    };
    let capacity = inner.routing.capacity();
    let (out, rx) = mpsc::channel(capacity);
    let mut driver = Driver {
        client: client.clone(),
        topic: topic.to_owned(),
        overflow_seen: 0,
        raw,
        out,
        home: Arc::clone(&home),
        peer: peer.clone(),
        last: subscribed.position(),
    };
    let position = since.clone().unwrap_or_else(|| subscribed.position());
    let cause = Cause::Subscribe { endpoint: endpoint_url(&peer) };
    // The channel is new: its first item fits.
    let _ = driver.subscribed(since, subscribed, cause).await;
    tokio::spawn(driver.run());
    Ok(PositionedSubscription { rx, topic: topic.to_owned(), position, id, home, client: client.clone() })
}

/// The answer to a positioned `rpc.subscribe`.
fn decode_subscribed(raw: &RawValue) -> Result<Subscribed, Error> {
    if raw.get() == "true" {
        return Err(Error::Decode(
            "the server answered `true`: it does not do positioned subscriptions (named rpc.subscribe params with \
             \"positioned\" or \"since\")"
                .to_owned(),
        ));
    }
    decode_result(raw)
}

/// Sends `rpc.unsubscribe [topic]` on `peer`, queued now.
fn unsubscribe(peer: PeerHandle, topic: &str) {
    let topic = topic.to_owned();
    start_now(async move {
        if let Err(error) = peer.call::<IgnoredAny>("rpc.unsubscribe", [&topic]).await {
            tracing::debug!(%topic, %error, "rpc.unsubscribe failed");
        }
    });
}

/// A positioned subscription from [`Client::subscribe_positioned`]: the
/// topic's publications with their positions, in order, with
/// [`StreamItem::Lost`] when some are gone (see the [module docs](self)).
/// It ends (`None`) when the client is closed or gave up reconnecting.
///
/// Read it with [`PositionedSubscription::next`] (no trait to import), or as
/// a [`Stream`] with `futures_util::StreamExt`. It keeps the client's
/// connections open while it lives.
///
/// ```no_run
/// use switchboard_client::{Client, StreamItem};
///
/// # async fn demo(client: Client) -> Result<(), Box<dyn std::error::Error>> {
/// let mut news = client.subscribe_positioned("news").await?;
/// while let Some(item) = news.next().await {
///     if let StreamItem::Publication(p) = item? {
///         let (headline,): (String,) = serde_json::from_str(p.params.get())?;
///         println!("{} {headline}", news.position());
///     }
/// }
/// # Ok(()) }
/// ```
pub struct PositionedSubscription {
    rx: mpsc::Receiver<Item>,
    topic: String,
    position: StreamPosition,
    id: u64,
    home: Arc<Mutex<Home>>,
    client: Client,
}

impl PositionedSubscription {
    /// The next item, or the error of a failed re-subscribe; `None` once the
    /// client is closed (or every endpoint's reconnect policy gave up).
    pub async fn next(&mut self) -> Option<Result<StreamItem, SubscriptionError>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Item>> {
        let item = std::task::ready!(self.rx.poll_recv(cx));
        match &item {
            Some(Ok(StreamItem::Publication(p))) => self.position = p.position(),
            Some(Ok(StreamItem::Lost(lost))) => self.position = lost.position.clone(),
            _ => {}
        }
        Poll::Ready(item)
    }

    /// The topic subscribed to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The position of the last item taken (a publication's, or where a
    /// [`Lost`] carries on); before any, the position it subscribed at
    /// (`since`, or the topic's latest offset then). Give it to
    /// [`SubscribePositioned::since`] to resume from there later.
    pub fn position(&self) -> &StreamPosition {
        &self.position
    }

    /// The URL of the endpoint it lives on now (`None` between connections).
    pub fn endpoint(&self) -> Option<String> {
        self.home.lock().peer.as_ref().filter(|p| !p.is_closing()).map(endpoint_url)
    }
}

impl std::fmt::Debug for PositionedSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionedSubscription").field("topic", &self.topic).field("position", &self.position).finish()
    }
}

impl Stream for PositionedSubscription {
    type Item = Result<StreamItem, SubscriptionError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl Drop for PositionedSubscription {
    fn drop(&mut self) {
        let routing = &self.client.inner.routing;
        let peer = {
            let mut home = self.home.lock();
            home.dropped = true;
            routing.leave_home(self.id);
            home.peer.take()
        };
        let Some(peer) = peer else { return };
        if *self.client.inner.phase.borrow() == Phase::Stopped || peer.is_closing() {
            return;
        }
        if !routing.wanted_on(&self.topic, peer.id()) {
            // Queued now: a subscribe to the same topic right after this goes out after it.
            unsubscribe(peer, &self.topic);
        }
    }
}

/// How the driver goes on.
enum Flow {
    /// On the same connection.
    Stay,
    /// Its connection ended: subscribe again elsewhere.
    Move,
    /// The subscription was dropped or the client closed.
    Stop,
}

/// The subscription was dropped or the client closed.
struct Stopped;

impl From<Stopped> for Flow {
    fn from(Stopped: Stopped) -> Flow {
        Flow::Stop
    }
}

/// The task behind one positioned subscription: reads the publications the
/// routing hands it, keeps them in order, fills gaps from the history, and
/// moves to another connection when its own ends.
struct Driver {
    client: Client,
    topic: String,
    raw: StreamReceiver,
    /// The routing's drops already dealt with.
    overflow_seen: u64,
    out: mpsc::Sender<Item>,
    home: Arc<Mutex<Home>>,
    /// The connection it lives on.
    peer: PeerHandle,
    /// The last position delivered (or subscribed at).
    last: StreamPosition,
}

impl Driver {
    async fn run(mut self) {
        loop {
            match self.live().await {
                Flow::Stay | Flow::Move => {}
                Flow::Stop => return,
            }
            if self.resubscribe().await.is_err() {
                return;
            }
        }
    }

    /// Reads its connection's publications until that connection ends.
    async fn live(&mut self) -> Flow {
        loop {
            let dropped = self.raw.dropped();
            if dropped > self.overflow_seen && self.raw.rx.is_empty() {
                // Publications dropped at the end of what came: read them now.
                self.overflow_seen = dropped;
                match self.fill(None).await {
                    Flow::Stay => continue,
                    other => return other,
                }
            }
            let arrival = tokio::select! {
                biased;
                () = self.out.closed() => return Flow::Stop,
                // What its connection delivered before ending comes first.
                arrival = self.raw.rx.recv() => match arrival {
                    Some(arrival) => arrival,
                    None => return Flow::Stop,
                },
                _ = self.peer.closed() => return Flow::Move,
            };
            match self.take(arrival).await {
                Flow::Stay => {}
                other => return other,
            }
        }
    }

    /// One publication: delivered, dropped as a duplicate, or after the gap before it.
    async fn take(&mut self, Arrival { connection, publication }: Arrival) -> Flow {
        if connection != self.peer.id() {
            // An earlier connection's, or another subscription's.
            return Flow::Stay;
        }
        if publication.epoch != self.last.epoch {
            let position = StreamPosition::new(publication.epoch.clone(), publication.offset.saturating_sub(1));
            if let Err(stopped) = self.lose(position, Cause::EpochChanged).await {
                return stopped.into();
            }
            return self.deliver(publication).await.map_or(Flow::Stop, |()| Flow::Stay);
        }
        if publication.offset <= self.last.offset {
            return Flow::Stay;
        }
        if publication.offset > self.last.offset + 1 {
            match self.fill(Some(publication.offset - 1)).await {
                Flow::Stay => {}
                other => return other,
            }
            if publication.epoch != self.last.epoch || publication.offset <= self.last.offset {
                return Flow::Stay;
            }
        }
        self.deliver(publication).await.map_or(Flow::Stop, |()| Flow::Stay)
    }

    /// Reads the publications after `last` from `rpc.history`, up to offset
    /// `target` (`None`: up to the latest), and delivers them all after a
    /// `Recovered`, or none of them and a `Lost`.
    async fn fill(&mut self, target: Option<u64>) -> Flow {
        let since = self.last.clone();
        let mut cursor = since.offset;
        let mut target = target;
        let mut found = Vec::new();
        let complete = loop {
            let params = HistoryParams {
                topic: self.topic.clone(),
                since: Some(StreamPosition::new(since.epoch.clone(), cursor)),
                limit: None,
            };
            let history = match self.peer.call::<History>(HISTORY_METHOD, &params).await {
                Ok(history) => history,
                // Subscribing again with `since` on the next connection recovers them.
                Err(Error::Disconnected) => return Flow::Move,
                Err(_) if self.peer.is_closing() => return Flow::Move,
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "rpc.history failed");
                    break Err(Some(e));
                }
            };
            if history.epoch != since.epoch {
                // The stream started afresh: the old epoch's are gone.
                if target.is_none() {
                    // Nothing to say yet: the next live publication shows the new epoch.
                    return Flow::Stay;
                }
                break Err(None);
            }
            let want = *target.get_or_insert(history.offset);
            let before = cursor;
            let mut hole = false;
            for publication in history.publications {
                if cursor >= want {
                    break;
                }
                if publication.epoch != since.epoch || publication.offset <= cursor {
                    continue;
                }
                if publication.offset != cursor + 1 {
                    hole = true;
                    break;
                }
                cursor = publication.offset;
                found.push(publication);
            }
            if cursor >= want {
                break Ok(());
            }
            if hole || cursor == before {
                break Err(None);
            }
        };
        let outcome = match complete {
            Ok(()) if found.is_empty() => Ok(()),
            Ok(()) => self.recovered(since, found).await,
            // A catch-up that failed: the next live publication shows the gap, if there is one.
            Err(_) if target.is_none() => Ok(()),
            Err(history_error) => {
                let want = target.unwrap_or(since.offset);
                self.lose(StreamPosition::new(since.epoch, want), Cause::Gap { history_error }).await
            }
        };
        outcome.map_or(Flow::Stop, |()| Flow::Stay)
    }

    /// Delivers the publications of a filled gap, after saying so.
    async fn recovered(&mut self, since: StreamPosition, found: Vec<Publication>) -> Result<(), Stopped> {
        let missed = found.len() as u64;
        let recovered =
            Recovered { topic: self.topic.clone(), since, missed, cause: Cause::Gap { history_error: None } };
        self.emit(Ok(StreamItem::Recovered(recovered))).await?;
        for publication in found {
            self.deliver(publication).await?;
        }
        Ok(())
    }

    /// Says that everything between `last` and `position` is gone, and carries on after `position`.
    async fn lose(&mut self, position: StreamPosition, cause: Cause) -> Result<(), Stopped> {
        let last = std::mem::replace(&mut self.last, position.clone());
        tracing::info!(topic = %self.topic, %last, %position, ?cause, "publications lost");
        self.emit(Ok(StreamItem::Lost(Lost { topic: self.topic.clone(), last, position, cause }))).await
    }

    async fn deliver(&mut self, publication: Publication) -> Result<(), Stopped> {
        self.last = publication.position();
        self.emit(Ok(StreamItem::Publication(publication))).await
    }

    async fn emit(&self, item: Item) -> Result<(), Stopped> {
        self.out.send(item).await.map_err(|_| Stopped)
    }

    /// Applies the answer to a subscribe made with `since` (or without).
    async fn subscribed(
        &mut self,
        since: Option<StreamPosition>,
        subscribed: Subscribed,
        cause: Cause,
    ) -> Result<(), Stopped> {
        match since {
            None => {
                self.last = subscribed.position();
                Ok(())
            }
            Some(since)
                if subscribed.recovered && subscribed.epoch == since.epoch && subscribed.offset >= since.offset =>
            {
                self.last = since.clone();
                let missed = subscribed.offset - since.offset;
                let recovered = Recovered { topic: self.topic.clone(), since, missed, cause };
                self.emit(Ok(StreamItem::Recovered(recovered))).await
            }
            Some(since) => {
                self.last = since;
                self.lose(subscribed.position(), cause).await
            }
        }
    }

    /// Records `peer` as its home, unless the subscription was dropped.
    fn settle(&self, peer: &PeerHandle) -> Result<(), Stopped> {
        let mut home = self.home.lock();
        if home.dropped {
            return Err(Stopped);
        }
        home.peer = Some(peer.clone());
        self.client.inner.routing.set_home(self.raw.id, &self.topic, peer.id());
        Ok(())
    }

    /// Subscribes again with `since` = the last position, on whichever
    /// connection is up, retrying with the reconnect policy's backoff.
    async fn resubscribe(&mut self) -> Result<(), Stopped> {
        let mut schedule = Schedule::new(self.client.inner.reconnect.clone());
        loop {
            let peer = tokio::select! {
                biased;
                () = self.out.closed() => return Err(Stopped),
                peer = self.client.inner.wait_for_peer() => peer.map_err(|_| Stopped)?,
            };
            self.settle(&peer)?;
            let since = self.last.clone();
            let params = SubscribeParams { topic: self.topic.clone(), since: Some(since.clone()), positioned: false };
            let answer = tokio::select! {
                biased;
                () = self.out.closed() => {
                    // Dropped while subscribing: its unsubscribe may have gone out first.
                    if !peer.is_closing() && !self.client.inner.routing.wanted_on(&self.topic, peer.id()) {
                        unsubscribe(peer, &self.topic);
                    }
                    return Err(Stopped);
                }
                answer = peer.call::<Box<RawValue>>("rpc.subscribe", &params) => answer,
            };
            let endpoint = endpoint_url(&peer);
            let cause = match answer.and_then(|raw| decode_subscribed(&raw)) {
                Ok(subscribed) => {
                    self.peer = peer;
                    return self.subscribed(Some(since), subscribed, Cause::Reconnect { endpoint }).await;
                }
                // The next connection's to subscribe.
                Err(Error::Disconnected) => continue,
                Err(_) if peer.is_closing() => continue,
                Err(cause) => cause,
            };
            let retry_in = schedule.next_delay();
            tracing::warn!(topic = %self.topic, error = %cause, ?retry_in, "re-subscribing (positioned) failed");
            self.emit(Err(SubscriptionError::new(&self.topic, &endpoint, cause, retry_in))).await?;
            tokio::select! {
                biased;
                () = self.out.closed() => return Err(Stopped),
                _ = peer.closed() => {}
                () = pause(retry_in) => {}
            }
        }
    }
}

/// Sleeps `delay`, or forever for `None` (gave up until the next connection).
async fn pause(delay: Option<Duration>) {
    match delay {
        Some(delay) => tokio::time::sleep(delay).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: &str, offset: u64) -> StreamPosition {
        StreamPosition::new(epoch, offset)
    }

    #[test]
    fn lost_and_recovered_say_what_happened() {
        let endpoint = "ws://h/".to_owned();
        let lost = |last, position, cause| Lost { topic: "news".into(), last, position, cause };
        let new_epoch = lost(at("e1", 41), at("e2", 7), Cause::Reconnect { endpoint: endpoint.clone() });
        assert_eq!(
            new_epoch.to_string(),
            "reconnected to ws://h/; missed publications of \"news\" are lost (new epoch e2); continuing after e2:7"
        );
        assert!(new_epoch.epoch_changed());
        assert_eq!(new_epoch.missed(), None);
        let gone = lost(at("e1", 41), at("e1", 44), Cause::Gap { history_error: None });
        assert_eq!(
            gone.to_string(),
            "publications of \"news\" after e1:41 were skipped and are lost (no longer in the server's history); \
             continuing after e1:44"
        );
        assert_eq!(gone.missed(), Some(3));
        let failed = lost(at("e1", 41), at("e1", 44), Cause::Gap { history_error: Some(Error::Offline) });
        assert!(failed.to_string().contains("(rpc.history failed: not connected)"), "{failed}");
        let epoch = lost(at("e1", 41), at("e2", 0), Cause::EpochChanged);
        assert_eq!(
            epoch.to_string(),
            "\"news\" started a new epoch e2; publications after e1:41 are lost; continuing after e2:0"
        );
        let resumed = lost(at("e1", 41), at("e1", 90), Cause::Subscribe { endpoint: endpoint.clone() });
        assert!(resumed.to_string().starts_with("cannot resume \"news\" after e1:41: missed publications are lost"));

        let recovered = |missed, cause| Recovered { topic: "news".into(), since: at("e1", 41), missed, cause };
        assert_eq!(
            recovered(12, Cause::Reconnect { endpoint: endpoint.clone() }).to_string(),
            "reconnected to ws://h/; recovered 12 missed publications of \"news\" after e1:41"
        );
        assert_eq!(
            recovered(0, Cause::Reconnect { endpoint }).to_string(),
            "reconnected to ws://h/; no publication of \"news\" was missed after e1:41"
        );
        assert_eq!(
            recovered(1, Cause::Gap { history_error: None }).to_string(),
            "publications of \"news\" were skipped after e1:41; recovered 1 missed publication from history"
        );
    }

    #[test]
    fn a_plain_true_answer_says_the_server_has_no_positioned_subscriptions() {
        let err = decode_subscribed(&RawValue::from_string("true".into()).unwrap()).unwrap_err();
        assert!(err.to_string().contains("does not do positioned subscriptions"), "{err}");
        let ok = decode_subscribed(
            &RawValue::from_string(r#"{"topic":"t","epoch":"e","offset":3,"recovered":false}"#.into()).unwrap(),
        )
        .unwrap();
        assert_eq!(ok.position(), at("e", 3));
    }
}
