//! Building a server: every limit and policy, its default, and what happens
//! when it is hit.
//!
//! | setting | default | when hit |
//! |---|---|---|
//! | [`max_connections`](ServerBuilder::max_connections) | 10,000 | HTTP 503 before the upgrade (or for a POST: each HTTP request in progress holds a slot) |
//! | [`max_connections_per_ip`](ServerBuilder::max_connections_per_ip) | 256 per client address | HTTP 503 before the upgrade |
//! | [`origins`](ServerBuilder::origins) | same origin (and clients that send no `Origin`) | HTTP 403 before the upgrade |
//! | [`rate_limit`](ServerBuilder::rate_limit) | off | -32005 "Rate limited" (`data: {"retry_after_ms": N}`), notifications dropped; 1,000 refusals in a row: close 1008 "rate limit exceeded" |
//! | [`refresh_grace`](ServerBuilder::refresh_grace) | 10 s after credentials expire | close 4401 "credentials expired" |
//! | [`max_message_size`](ServerBuilder::max_message_size) | 10 MiB | close 1009 (HTTP POST: 413) |
//! | [`max_batch_len`](ServerBuilder::max_batch_len) | 1,000 | each request of the batch is answered -32600 with its own id |
//! | [`max_in_flight`](ServerBuilder::max_in_flight) | 256 per connection | further requests are parked (the socket is still read) |
//! | [`max_parked_bytes`](ServerBuilder::max_parked_bytes) | 1 MiB per connection | -32002 "Server busy" at once (`data` names the limit) |
//! | [`max_queue_bytes`](ServerBuilder::max_queue_bytes) | 4 MiB per connection | close 1008 "slow consumer" |
//! | [`handshake_timeout`](ServerBuilder::handshake_timeout) | 10 s | the TCP connection is dropped (it bounds the TLS handshake and each HTTP request head too) |
//! | [`auth_timeout`](ServerBuilder::auth_timeout) | 5 s | HTTP 503 before the upgrade (asynchronous authenticators) |
//! | [`max_pending_handshakes`](ServerBuilder::max_pending_handshakes) | 1,024 | accepting pauses (the OS backlog holds new connections) |
//! | [`heartbeat`](ServerBuilder::heartbeat) | ping 25 s, timeout 60 s | close 1001 "idle timeout" |
//! | [`app_heartbeat`](ServerBuilder::app_heartbeat) | off | (`rpc.heartbeat` notifications for browsers) |
//! | [`read_buffer_size`](ServerBuilder::read_buffer_size) | 1 KiB per connection | (a buffer, not a limit) |
//! | [`call_timeout`](ServerBuilder::call_timeout) | 10 s | the call fails with `Timeout` |
//! | [`max_subscriptions`](ServerBuilder::max_subscriptions) | 1,000 topics per connection | `rpc.subscribe` is denied |
//! | [`history_entries`](ServerBuilder::history_entries) | 1,000 publications per topic | the oldest is forgotten |
//! | [`history_bytes`](ServerBuilder::history_bytes) | 1 MiB per topic | the oldest is forgotten |
//! | [`history_ttl`](ServerBuilder::history_ttl) | 10 min without a publication | the topic's history is forgotten; its next publication starts a new epoch |
//! | [`max_history_topics`](ServerBuilder::max_history_topics) | 1,000 topics | the topic published to longest ago is forgotten |
//! | [`max_replay`](ServerBuilder::max_replay) | 1,000 publications | a resuming subscriber gets `recovered: false` and no replay |
//! | [`max_history_page`](ServerBuilder::max_history_page) | 1,000 publications | `rpc.history` answers the oldest that many |
//! | [`cors`](ServerBuilder::cors) | off | a browser preflight from another origin gets HTTP 403 |
//! | [`tls`](ServerBuilder::tls) | none (plain TCP) | a client that fails the TLS handshake is disconnected |
//! | [`topic_policy`](ServerBuilder::topic_policy) | `Disconnect` for every topic | a subscriber whose queue is full is closed (1008), or its topic's publications are shed ([`SlowConsumer`]) |
//! | [`cluster`](ServerBuilder::cluster) | none: the server is alone | (calls, pushes and presence reach other hubs through it) |
//! | [`jsonrpc1`](ServerBuilder::jsonrpc1) | [`Jsonrpc1::Reject`] | a call without `"jsonrpc": "2.0"` is answered -32600 |
//! | [`raw_sockets`](ServerBuilder::raw_sockets) | [`RawSockets::RefuseWithAuthenticator`] | with an authenticator, `listen("tcp://..")` / `listen("unix:..")` fails with `NoCredentials` |
//!
//! On raw sockets (`tcp://`, `unix:`; see [`Server::listen`]) the same limits
//! apply, with these differences: `max_message_size` bounds a line (a longer
//! one is answered -32600 with `"id": null`, then the connection is closed);
//! a refused connection (shutdown, `max_connections`) gets one error line
//! instead of an HTTP status; there is no handshake (`handshake_timeout`,
//! `max_pending_handshakes`, origins and the authenticator do not apply) and
//! no WebSocket ping, so `heartbeat` does not apply either: turn on
//! [`app_heartbeat`](ServerBuilder::app_heartbeat) to notice dead peers.
//!
//! The four history settings bound the default in-memory broker; another
//! [`broker`](ServerBuilder::broker) keeps history by its own rules. Each
//! retained publication costs its `rpc.publication` frame (the plain
//! notification plus 82 bytes, the topic's name and the offset's digits)
//! and about 175 bytes besides (measured as the server's resident memory
//! with `loadgen fanout --retain-topics`: the entry, its share of the
//! history's ring and of the shared frame's header), so the defaults bound
//! history to 1 MiB per topic and 1 GiB in all; a topic of 1,000
//! publications of 100-byte params takes about 0.4 MiB.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard_shared::discover::ServiceInfo;
use switchboard_shared::peer::CallEvent;
use switchboard_shared::{CloseReason, Context, Heartbeat, Jsonrpc1, Methods, PeerHandle, RateLimit};

use crate::config::auth::{AsyncAuthenticator, Auth, Authenticator, Identity, Rejection, UpgradeRequest};
use crate::config::cors::CorsPolicy;
use crate::config::listen::RawSockets;
#[cfg(doc)]
use crate::config::origin::OriginPattern;
use crate::config::origin::{InvalidOrigin, OriginPolicy};
use crate::config::settings::{Policies, Settings};
use crate::config::subscriptions::{Builtins, SubscriptionDecision};
use crate::config::topics::SlowConsumer;
use crate::server::Server;
use crate::state::broker::{Broker, MemoryBroker};
use crate::state::cluster::Cluster;
use crate::state::hub::Hub;

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// A server with every default around `methods`.
    pub fn new(methods: Methods) -> Self {
        ServerBuilder::new().build(methods)
    }
}

/// Configures a [`Server`]; start from [`Server::builder`].
///
/// ```
/// use std::time::Duration;
/// use switchboard_server::Server;
/// use switchboard_shared::Methods;
///
/// let server = Server::builder()
///     .max_connections(1_000)
///     .max_message_size(1 << 20)
///     .handshake_timeout(Duration::from_secs(5))
///     .build(Methods::new());
/// # drop(server);
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ServerBuilder {
    settings: Settings,
    policies: Policies,
    service: Option<ServiceInfo>,
    broker: Option<Arc<dyn Broker>>,
    cluster: Option<Arc<dyn Cluster>>,
}

impl ServerBuilder {
    /// A builder with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the maximum number of connections open at once (upgraded or
    /// being upgraded).
    ///
    /// Default: 10,000. When reached, a new client's upgrade request is
    /// answered with HTTP 503 "Service Unavailable" (with `Retry-After: 1`)
    /// and no WebSocket is opened; so is an HTTP layer's
    /// [`admit`](crate::ServerHandle::admit). A JSON-RPC POST holds a slot
    /// while it is answered, and gets the same 503 at the limit.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.settings.max_connections = max;
        self
    }

    /// Sets the maximum number of connections open at once from one client
    /// address (IPv4, or IPv6; an IPv4-mapped IPv6 address counts as its
    /// IPv4 address), so that one client cannot take every slot of
    /// `max_connections`.
    ///
    /// Default: 256. When reached, that address's next upgrade request is
    /// answered with HTTP 503 "Service Unavailable" (with `Retry-After: 1`)
    /// and no WebSocket is opened; other addresses are not affected. Behind
    /// a reverse proxy every client has the proxy's address: raise the limit,
    /// or let the HTTP layer pass the client's own address to
    /// [`admit`](crate::ServerHandle::admit). A connection without a known
    /// address counts only against `max_connections`. The minimum is 1.
    pub fn max_connections_per_ip(mut self, max: usize) -> Self {
        self.settings.max_connections_per_ip = max.max(1);
        self
    }

    /// Limits how fast each connection may call: a token bucket of `burst`
    /// calls refilled at `per_second` ([`RateLimit`]). Every request and
    /// notification takes a token (each entry of a batch too); answers to the
    /// server's own calls and `$/cancelRequest` do not. `None` turns it off.
    ///
    /// Default: off (for deployments whose clients are trusted; `switchboard
    /// serve` turns it on). Over the limit a request is answered at once with
    /// -32005 "Rate limited" whose `data` is `{"retry_after_ms": N}` (when the
    /// next call would be admitted), and a notification is dropped; both are
    /// counted ([`PeerHandle::rate_limited`](switchboard_shared::PeerHandle::rate_limited)).
    /// A client that goes on calling, `close_after` refusals (default 1,000)
    /// without ever letting its bucket refill, is closed with 1008 "rate
    /// limit exceeded" and the event is logged.
    ///
    /// ```
    /// use switchboard_server::Server;
    /// use switchboard_shared::{Methods, RateLimit};
    ///
    /// // 50 calls a second, 100 at once; closed after 500 refusals in a row.
    /// let server = Server::builder()
    ///     .rate_limit(Some(RateLimit::new(50.0, 100).close_after(Some(500))))
    ///     .build(Methods::new());
    /// # drop(server);
    /// ```
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.settings.rate_limit = limit;
        self
    }

    /// Sets how long a client whose credentials expired
    /// ([`Identity::expires_in`]) has to answer `rpc.refresh` with a fresh
    /// credential that the authenticator accepts.
    ///
    /// Default: 10 s. The server calls `rpc.refresh` when the credentials
    /// expire; a connection still without a valid credential when the grace
    /// period ends is closed with 4401 "credentials expired"
    /// ([`CREDENTIALS_EXPIRED`](switchboard_shared::credentials::CREDENTIALS_EXPIRED))
    /// and the event is logged (without the credential). During the grace
    /// period the connection is served as before.
    pub fn refresh_grace(mut self, grace: Duration) -> Self {
        self.settings.refresh_grace = grace;
        self
    }

    /// Sets the maximum size in bytes of one inbound message (and of one
    /// WebSocket frame).
    ///
    /// Default: 10 MiB. A larger message is not read: the connection is
    /// closed with 1009 "message too big" (on a raw socket, where it bounds a
    /// line, it is answered -32600 with `"id": null`, then closed). Over
    /// HTTP it bounds the POST body: a larger one gets HTTP 413 "Payload Too
    /// Large". The minimum is 1 KiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_size = bytes.max(1024);
        self
    }

    /// Sets the maximum number of entries in one batch.
    ///
    /// Default: 1,000. A longer batch is not run: each of its requests is
    /// answered -32600 "Invalid Request" (with its own id) saying so, over a
    /// WebSocket and over HTTP alike. The minimum is 1.
    pub fn max_batch_len(mut self, len: usize) -> Self {
        self.settings.max_batch_len = len.max(1);
        self
    }

    /// Sets the maximum number of calls per connection whose handlers are
    /// waiting at once (handlers that answer at once do not count).
    ///
    /// Default: 256. At the limit further requests are **parked** and run in
    /// arrival order as handlers finish (see [`max_parked_bytes`](Self::max_parked_bytes)).
    /// The socket is always read: answers to the server's own calls to the
    /// client, pongs and `$/cancelRequest` get through whatever the load, so
    /// handlers that call their client back can never deadlock. A batch
    /// counts one per waiting call. The minimum is 1.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.settings.max_in_flight = calls.max(1);
        self
    }

    /// Sets the bound, in bytes of their params, on requests one connection
    /// may have parked behind [`max_in_flight`](Self::max_in_flight).
    ///
    /// Default: 1 MiB (one request is always accepted, however large). Past
    /// it, a request is answered at once with -32002 "Server busy", whose
    /// `data` names the limits, and a notification is dropped (and counted):
    /// a client that floods calls gets errors, not unbounded buffering.
    /// While the server shuts down, parked and new requests are answered
    /// -32000 "Server shutting down" instead.
    pub fn max_parked_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_parked_bytes = bytes;
        self
    }

    /// Sets the bound in bytes of one connection's outbound queue (answers,
    /// pushes and calls waiting to be written to its socket).
    ///
    /// Default: 4 MiB. A client that does not read fast enough and lets its
    /// queue reach the bound is closed with 1008 "slow consumer" and the
    /// event is logged; other clients are never slowed by it. One frame
    /// larger than the bound is still sent to an empty queue.
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_queue_bytes = bytes;
        self
    }

    /// Sets how long a client has, from the TCP accept (or from
    /// [`serve_stream`](crate::ServerHandle::serve_stream)), to complete the
    /// WebSocket upgrade, the authenticator's decision included. Over HTTP
    /// (the `http` and `web` features) it bounds reading each request head
    /// and the upgrade; with [`tls`](Self::tls), the TLS handshake too.
    ///
    /// Default: 10 s. When it passes, the TCP connection is dropped without
    /// a response (a half-open or stalled client).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.settings.handshake_timeout = timeout;
        self
    }

    /// Sets how many accepted TCP connections may be in their WebSocket
    /// handshake at once (they do not count against `max_connections` until
    /// admitted).
    ///
    /// Default: 1,024, for each of the server's listeners ([`Server::listen`]
    /// and the `web` feature's `WebServer`, which share one accept loop; an
    /// HTTP connection counts until its first request head has arrived).
    /// When reached, the listener stops accepting until a handshake ends
    /// (upgraded, refused, or timed out after `handshake_timeout`); meanwhile
    /// new connections wait in the operating system's backlog. So a flood of
    /// sockets that never send an upgrade request costs bounded memory and
    /// tasks. Connections you accept yourself and hand to
    /// [`serve_stream`](crate::ServerHandle::serve_stream) are yours to bound.
    /// The minimum is 1.
    pub fn max_pending_handshakes(mut self, handshakes: usize) -> Self {
        self.settings.max_pending_handshakes = handshakes.max(1);
        self
    }

    /// Sets the keep-alive: a ping every `interval`, and the connection is
    /// closed when nothing at all (frame, ping, pong) was heard from the client
    /// for `timeout`. `None` turns keep-alive off.
    ///
    /// Default: ping every 25 s, timeout 60 s. When the timeout passes the
    /// connection is closed with 1001 "idle timeout". WebSocket only: raw
    /// sockets (`tcp://`, `unix:`) have no pings, so their quiet peers are not
    /// closed; use [`app_heartbeat`](Self::app_heartbeat) there.
    pub fn heartbeat(mut self, heartbeat: Option<Heartbeat>) -> Self {
        self.settings.heartbeat = heartbeat;
        self
    }

    /// Turns on the application-level heartbeat for clients that cannot send
    /// WebSocket pings (browsers): every `interval` each connection gets an
    /// `rpc.heartbeat` notification `{"t": <server ms>, "interval": <ms>, "rtt": <ms | null>}`,
    /// and a client that knows it answers with the notification
    /// `rpc.heartbeat_ack` `{"t": <the same t>}`. The client learns that the
    /// server is alive (and reconnects after a silence of a few intervals);
    /// the server learns the round trip ([`ServerHandle::heartbeat_rtt`](crate::ServerHandle::heartbeat_rtt)).
    /// The full protocol is in [`app_heartbeat`](crate::app_heartbeat). `None` turns it off.
    ///
    /// Default: off. When on, `rpc.heartbeat_ack` is registered (and listed by
    /// `rpc.discover`) unless a method of that name is. Intervals under 10 ms are raised to 10 ms.
    pub fn app_heartbeat(mut self, interval: Option<Duration>) -> Self {
        self.settings.app_heartbeat = interval.map(|i| i.max(Duration::from_millis(10)));
        self
    }

    /// Sets the size in bytes of each connection's read buffer, allocated for
    /// the connection's whole life.
    ///
    /// Default: 1 KiB, so ten thousand idle connections cost 10 MiB of read
    /// buffers (a whole idle connection costs under 4 KiB, see BENCHMARKS.md).
    /// Larger messages are still read whole (up to `max_message_size`), and
    /// a busy connection takes in up to 64 KiB per system call whatever this
    /// size (the server reads ahead beneath the buffer); each message is then
    /// copied into the buffer in pieces of this size, so a few connections
    /// that mostly receive large messages may gain from raising it (4-16 KiB).
    /// The minimum is 512 bytes.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.settings.read_buffer_size = bytes.max(512);
        self
    }

    /// Sets the timeout of calls from the server to a client
    /// ([`crate::ServerHandle::call`], `Context::peer().call`).
    ///
    /// Default: 10 s. When it passes the call fails with `Timeout`, and a late
    /// reply is dropped.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.settings.call_timeout = timeout;
        self
    }

    /// Sets how many topics one connection may join with `rpc.subscribe`.
    ///
    /// Default: 1,000. Past it, `rpc.subscribe` is answered with the
    /// [`code::SUBSCRIPTION_DENIED`](switchboard_shared::code::SUBSCRIPTION_DENIED)
    /// error. Joins made by handlers (`ServerContext::join`) are not counted against it.
    pub fn max_subscriptions(mut self, topics: usize) -> Self {
        self.settings.max_subscriptions = topics;
        self
    }

    /// Sets how many publications the in-memory broker keeps per topic, for
    /// subscribers that resume (`since`) and for `rpc.history`.
    ///
    /// Default: 1,000. Past it the oldest is forgotten; a subscriber that
    /// missed a forgotten one gets `recovered: false` and no replay. 0 keeps
    /// none (offsets and epochs are still given out). Unused with another
    /// [`broker`](Self::broker).
    pub fn history_entries(mut self, entries: usize) -> Self {
        self.settings.history.max_entries = entries;
        self
    }

    /// Sets how many bytes of encoded publications the in-memory broker keeps per topic.
    ///
    /// Default: 1 MiB. Past it the oldest are forgotten (the newest is kept
    /// whatever its size). Unused with another [`broker`](Self::broker).
    pub fn history_bytes(mut self, bytes: usize) -> Self {
        self.settings.history.max_bytes = bytes;
        self
    }

    /// Sets how long a topic keeps its history without a publication.
    ///
    /// Default: 10 minutes. After it the history is forgotten and the
    /// topic's next publication starts a new epoch (offset 1): a subscriber
    /// resuming from the old epoch gets `recovered: false`. Unused with
    /// another [`broker`](Self::broker).
    pub fn history_ttl(mut self, ttl: Duration) -> Self {
        self.settings.history.ttl = ttl;
        self
    }

    /// Sets how many topics the in-memory broker keeps a stream (epoch,
    /// offset, history) for at once.
    ///
    /// Default: 1,000. Past it, expired topics are forgotten, then one never
    /// published to (subscribed to, or its history read), then the one
    /// published to longest ago (its next publication starts a new epoch).
    /// The minimum is 1. Unused with another [`broker`](Self::broker).
    pub fn max_history_topics(mut self, topics: usize) -> Self {
        self.settings.history.max_topics = topics.max(1);
        self
    }

    /// Sets how many missed publications a resuming subscriber (`since`)
    /// may be replayed, whatever the broker retains.
    ///
    /// Default: 1,000. A subscriber that missed more gets `recovered: false`
    /// and no replay (never a partial one): it should reload its state.
    pub fn max_replay(mut self, publications: usize) -> Self {
        self.settings.max_replay = publications;
        self
    }

    /// Sets how many publications one `rpc.history` answer holds at most
    /// (a smaller `limit` in the call is kept).
    ///
    /// Default: 1,000. The oldest that many after `since` are answered; the
    /// client asks again after the last one for more.
    pub fn max_history_page(mut self, publications: usize) -> Self {
        self.settings.max_history_page = publications;
        self
    }

    /// Sets what happens to a subscriber of the topics `pattern` names whose
    /// outbound queue is full: `pattern` is a topic's name, or a prefix
    /// ending in `*` (`"prices.*"`); the exact name wins, then the longest
    /// prefix; the last setting for a pattern is kept.
    ///
    /// Default: [`SlowConsumer::Disconnect`] for every topic (close 1008
    /// "slow consumer", as for any frame). With [`SlowConsumer::DropOldest`]
    /// or [`SlowConsumer::LatestPerKey`] the subscriber keeps its connection
    /// and misses some publications instead (positioned subscribers see the
    /// gap in the offsets; `rpc.history` has what is retained).
    ///
    /// ```
    /// use switchboard_server::{ConflationKey, Server, SlowConsumer};
    /// use switchboard_shared::Methods;
    ///
    /// let server = Server::builder()
    ///     .topic_policy("prices.*", SlowConsumer::LatestPerKey(ConflationKey::field("symbol")))
    ///     .topic_policy("telemetry", SlowConsumer::DropOldest)
    ///     .build(Methods::new());
    /// # drop(server);
    /// ```
    pub fn topic_policy(mut self, pattern: &str, policy: SlowConsumer) -> Self {
        self.settings.topic_policies.set(pattern, policy);
        self
    }

    /// Sets whether clients may speak JSON-RPC 1.0.
    ///
    /// Default: [`Jsonrpc1::Reject`]: a call without `"jsonrpc": "2.0"` is
    /// answered -32600 "Invalid Request" whose `data` says that `jsonrpc` is
    /// missing. With [`Jsonrpc1::Accept`], a single object without `jsonrpc`
    /// is a 1.0 call: `{"method": "echo", "params": ["hi"], "id": 1}` is
    /// answered `{"result": "hi", "error": null, "id": 1}` (an error:
    /// `{"result": null, "error": {"code": .., "message": ..}, "id": 1}`), and
    /// one with `"id": null` is a notification (no answer). 2.0 calls on the
    /// same connection are still answered in 2.0; batches are 2.0 only (1.0
    /// has none); the server's own calls and pushes to the client stay 2.0.
    /// Applies on every interface.
    ///
    /// ```
    /// use switchboard_server::Server;
    /// use switchboard_shared::{Jsonrpc1, Methods};
    ///
    /// let server = Server::builder().jsonrpc1(Jsonrpc1::Accept).build(Methods::new());
    /// # drop(server);
    /// ```
    pub fn jsonrpc1(mut self, jsonrpc1: Jsonrpc1) -> Self {
        self.settings.jsonrpc1 = jsonrpc1;
        self
    }

    /// Sets whether raw socket listeners (`tcp://`, `unix:`) may start on a
    /// server with an authenticator. A raw socket has no request head, so
    /// no header, query token or cookie reaches the authenticator.
    ///
    /// Default: [`RawSockets::RefuseWithAuthenticator`]: with an
    /// authenticator set, [`Server::listen`] on a raw socket fails with
    /// `ListenError::NoCredentials` and nothing is bound. With
    /// [`RawSockets::AllowUnauthenticated`] they are served, and their
    /// connections have no identity (`Context::auth()` is `None`): guard
    /// them otherwise (a Unix socket's file permissions, a trusted network).
    /// Without an authenticator this setting changes nothing.
    pub fn raw_sockets(mut self, raw_sockets: RawSockets) -> Self {
        self.settings.raw_sockets = raw_sockets;
        self
    }

    /// Sets the broker: where publications get their offsets and history is
    /// kept, and where publications come from (other servers' too, for a
    /// shared broker). Connections never know which broker is behind them.
    ///
    /// Default: a [`MemoryBroker`] built from the history settings above
    /// (which another broker does not use). With the cargo feature `redis`,
    /// `RedisBroker` makes every server given a broker on the same Redis
    /// act as one (its history settings are on its own builder).
    pub fn broker(mut self, broker: impl Broker) -> Self {
        self.broker = Some(Arc::new(broker));
        self
    }

    /// Makes the server one hub of a cluster (e.g. a `RedisCluster`,
    /// cargo feature `redis`, one per server): calls and notifications by
    /// connection id, pushes, broadcasts and `call_many` reach connections
    /// on every hub, and [`presence`](crate::ServerHandle::presence) lists
    /// a topic's members on every hub. A connection this server serves is
    /// still reached directly, never through the cluster.
    ///
    /// Default: none, the server is alone (nothing crosses, nothing costs).
    /// When the cluster's backend is unreachable, calls to other hubs' clients fail with
    /// [`CallError::Cluster`](crate::CallError::Cluster) and local clients are served as usual.
    pub fn cluster(mut self, cluster: impl Cluster) -> Self {
        self.cluster = Some(Arc::new(cluster));
        self
    }

    /// Chooses the built-in methods.
    ///
    /// Default: [`Builtins::All`]: `rpc.discover`, `rpc.subscribe`,
    /// `rpc.unsubscribe` and `rpc.history` (a method the user registered
    /// under one of these names is kept instead).
    pub fn builtins(mut self, builtins: Builtins) -> Self {
        self.settings.builtins = builtins;
        self
    }

    /// Sets which browser origins may connect ([`OriginPolicy`]).
    ///
    /// Default: [`OriginPolicy::SameOrigin`]: pages served from the hub's own
    /// host and port (its `Host` header) and clients that send no `Origin`
    /// (programs; browsers always send one) may connect; a page from any
    /// other origin gets HTTP 403 before the upgrade, and the refusal is
    /// logged. Why: a browser sends the user's cookies with a WebSocket
    /// upgrade whatever page opened it, so without this check any web site
    /// the user visits could call methods as the user (cross-site WebSocket
    /// hijacking). Pages on other origins are allowed with
    /// [`allowed_origins`](Self::allowed_origins); [`OriginPolicy::Any`]
    /// turns the check off (and `build` logs a warning).
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.policies.origins = policy;
        self
    }

    /// Also lets pages from these origins connect: patterns
    /// `scheme://host[:port]`, where the host may start with `*.` (any
    /// subdomain) and the port may be `*` (see [`OriginPattern`]).
    /// Same-origin pages and clients without an `Origin` still may connect.
    /// Shorthand for [`OriginPolicy::allow`].
    ///
    /// Fails with [`InvalidOrigin`], naming the entry and what is wrong
    /// with it, on an entry that is not an origin pattern.
    ///
    /// ```
    /// use switchboard_server::Server;
    /// use switchboard_shared::Methods;
    ///
    /// let server = Server::builder()
    ///     .allowed_origins(["https://app.example.com", "https://*.example.org"])?
    ///     .build(Methods::new());
    /// # drop(server);
    /// # Ok::<(), switchboard_server::InvalidOrigin>(())
    /// ```
    pub fn allowed_origins<I, S>(self, origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(self.origins(OriginPolicy::allow(origins)?))
    }

    /// Sets which other web sites' pages may call the hub over HTTP POST from
    /// a browser (CORS); see [`CorsPolicy`].
    ///
    /// Default: [`CorsPolicy::Off`]: a browser's preflight (`OPTIONS`) from
    /// another origin gets HTTP 403 and answers carry no CORS header, so a
    /// page of another origin cannot send JSON calls or read the answers.
    /// With an allow-list, a listed origin's preflight gets 204 with
    /// `Access-Control-Allow-Origin` (and `-Methods: POST`, `-Headers:
    /// content-type, authorization`, `-Max-Age`), and so do the answers to its
    /// calls; any other origin's preflight gets 403. CORS only tells browsers
    /// what a page may read: each call must still pass the origin policy
    /// ([`origins`](Self::origins), HTTP 403) and the authenticator, as
    /// WebSocket upgrades do, so an origin listed here must be allowed
    /// there too. (Cargo feature `http`; WebSocket upgrades need no CORS.)
    ///
    /// ```
    /// use switchboard_server::{CorsPolicy, OriginPolicy, Server};
    /// use switchboard_shared::Methods;
    ///
    /// let app = "https://app.example.com";
    /// let server = Server::builder()
    ///     .origins(OriginPolicy::allow([app])?)
    ///     .cors(CorsPolicy::allow([app]))
    ///     .build(Methods::new());
    /// # drop(server);
    /// # Ok::<(), switchboard_server::InvalidOrigin>(())
    /// ```
    pub fn cors(mut self, policy: CorsPolicy) -> Self {
        self.policies.cors = policy;
        self
    }

    /// Serves TLS on every listener of the server, with this certificate
    /// chain and key: `wss://` and `https://` on the same port instead of
    /// `ws://` and `http://` (cargo feature `tls`; rustls).
    ///
    /// Default: none, plain TCP. With it, every accepted connection first
    /// completes a TLS handshake, bounded by
    /// [`handshake_timeout`](Self::handshake_timeout) (then the upgrade or
    /// request head gets its own); a client that fails it (does not trust
    /// the certificate, speaks plain HTTP to the port) is disconnected and
    /// the event logged at debug level. A bad certificate or key file is
    /// reported by [`TlsConfig::from_pem_files`](crate::TlsConfig::from_pem_files), before the server starts.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::config::tls::TlsConfig) -> Self {
        self.settings.tls = Some(config);
        self
    }

    /// Sets the authenticator: it sees every upgrade request and accepts it
    /// (with an [`Identity`] for the handlers) or rejects it with 401 / 403
    /// (see [`Authenticator`]). It decides at once; for one that awaits, see
    /// [`async_authenticator`](Self::async_authenticator). The last one set is used.
    ///
    /// Default: none, every client is accepted; listening on a non-loopback
    /// address without one logs a warning.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.policies.authenticator = Some(Auth::Sync(Arc::new(authenticator)));
        self
    }

    /// Sets the authenticator from a closure that decides at once; it may
    /// return JSON auth data (read by handlers with `Context::auth()`), an
    /// [`Identity`] (typed values too) or `()`.
    ///
    /// ```
    /// use switchboard_server::{Rejection, Server};
    /// use switchboard_shared::Methods;
    ///
    /// let server = Server::builder()
    ///     .authenticate(|req| match req.bearer_token().or(req.query_param("token").as_deref()) {
    ///         Some("secret") => Ok(serde_json::json!({ "user": "ada" })),
    ///         Some(_) => Err(Rejection::Forbidden("unknown token".into())),
    ///         None => Err(Rejection::Unauthorized("a bearer token is required".into())),
    ///     })
    ///     .build(Methods::new());
    /// # drop(server);
    /// ```
    pub fn authenticate<F, I>(self, authenticate: F) -> Self
    where
        F: Fn(&UpgradeRequest) -> Result<I, Rejection> + Send + Sync + 'static,
        I: Into<Identity>,
    {
        self.authenticator(authenticate)
    }

    /// Sets an authenticator that may await (a database, an HTTP call)
    /// before the upgrade is answered; see [`AsyncAuthenticator`]. It must
    /// decide within [`auth_timeout`](Self::auth_timeout). The last
    /// authenticator set is used.
    pub fn async_authenticator(mut self, authenticator: impl AsyncAuthenticator) -> Self {
        self.policies.authenticator = Some(Auth::Async(Arc::new(authenticator)));
        self
    }

    /// Sets an authenticator that may await, from an async closure taking
    /// the request (cheap to clone, `'static`).
    ///
    /// ```
    /// use switchboard_server::{Identity, Rejection, Server, UpgradeRequest};
    /// use switchboard_shared::Methods;
    ///
    /// #[derive(Clone)]
    /// struct Claims { user: String }
    ///
    /// # async fn lookup(_token: &str) -> Option<String> { None }
    /// let server = Server::builder()
    ///     .authenticate_async(|req: UpgradeRequest| async move {
    ///         let token = req.bearer_token().ok_or(Rejection::Unauthorized("a bearer token is required".into()))?;
    ///         match lookup(token).await {
    ///             Some(user) => Ok(Identity::typed(Claims { user })),
    ///             None => Err(Rejection::Forbidden("unknown token".into())),
    ///         }
    ///     })
    ///     .build(Methods::new());
    /// # drop(server);
    /// ```
    pub fn authenticate_async<F, Fut, I>(self, authenticate: F) -> Self
    where
        F: Fn(UpgradeRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<I, Rejection>> + Send + 'static,
        I: Into<Identity>,
    {
        self.async_authenticator(authenticate)
    }

    /// Sets how long an asynchronous authenticator has to decide.
    ///
    /// Default: 5 s. When it passes, the client gets HTTP 503 "Service
    /// Unavailable" with `Retry-After: 1` (the server, not the client's
    /// credentials, is at fault) and the event is logged. It counts within
    /// `handshake_timeout`, which bounds the whole upgrade. A synchronous
    /// authenticator is not timed.
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.settings.auth_timeout = timeout;
        self
    }

    /// Sets the hook that decides each `rpc.subscribe` (the connection's
    /// context and the topic).
    ///
    /// Default: every subscription is allowed. A denied one is answered
    /// with the `SUBSCRIPTION_DENIED` error object.
    pub fn on_subscribe<F>(mut self, decide: F) -> Self
    where
        F: Fn(&Context, &str) -> SubscriptionDecision + Send + Sync + 'static,
    {
        self.policies.subscription_filter = Some(Arc::new(decide));
        self
    }

    /// Sets the hook run when a connection has been upgraded and registered.
    /// Calls may already be in flight on it. It runs on the accepting task:
    /// keep it short and spawn anything slow. Every `on_connect` is followed
    /// by exactly one `on_disconnect`.
    pub fn on_connect<F>(mut self, hook: F) -> Self
    where
        F: Fn(&PeerHandle) + Send + Sync + 'static,
    {
        self.policies.on_connect = Some(Arc::new(hook));
        self
    }

    /// Sets the hook run once a registered connection has ended, with the
    /// reason (client closed, slow consumer, idle timeout, shutdown...). By
    /// then the connection has left the registry and its topics.
    pub fn on_disconnect<F>(mut self, hook: F) -> Self
    where
        F: Fn(&PeerHandle, &CloseReason) + Send + Sync + 'static,
    {
        self.policies.on_disconnect = Some(Arc::new(hook));
        self
    }

    /// Chooses whether the server keeps Prometheus metrics (served as
    /// `GET /metrics`, see [`operations`](crate::operations)).
    ///
    /// Default: [`Metrics::On`](crate::Metrics::On). Each server keeps its
    /// own registry. With [`Metrics::Off`](crate::Metrics::Off) nothing is
    /// counted and `GET /metrics` answers 404.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: crate::config::telemetry::Metrics) -> Self {
        self.policies.telemetry.metrics = metrics;
        self
    }

    /// Adds a hook that sees every call once it has ended, in both
    /// directions: the connection (its id, and the authenticator's
    /// identity through [`ServerContext::identity`](crate::ServerContext::identity)
    /// on `event.peer`), the method, the outcome and the duration. Hooks run
    /// in the order added, on the connection's task or the handler's: keep
    /// them short, and spawn anything slow. A hook that panics is logged
    /// and the call is unaffected.
    ///
    /// Default: none. With no hook, no metrics and no subscriber for the
    /// audit log (target `switchboard::audit`), calls are not timed at all.
    ///
    /// ```
    /// use switchboard_server::{CallEvent, Server};
    /// use switchboard_shared::Methods;
    ///
    /// let server = Server::builder()
    ///     .on_call(|event: &CallEvent| {
    ///         if event.duration.as_secs() >= 1 {
    ///             eprintln!("slow call: {} on {} took {:?}", event.method, event.peer.id(), event.duration);
    ///         }
    ///     })
    ///     .build(Methods::new());
    /// # drop(server);
    /// ```
    pub fn on_call<F>(mut self, hook: F) -> Self
    where
        F: Fn(&CallEvent<'_>) + Send + Sync + 'static,
    {
        self.policies.telemetry.call_hooks.push(Arc::new(hook));
        self
    }

    /// Sets what `rpc.discover` says of the service beyond its methods: title,
    /// version, the methods the server calls on clients and the topics it
    /// publishes (OpenRPC `x-` extension fields).
    ///
    /// Default: title "switchboard", this crate's version, no extensions.
    /// With [`Builtins::None`] there is no `rpc.discover` and this is unused.
    pub fn discovery(mut self, service: ServiceInfo) -> Self {
        self.service = Some(service);
        self
    }

    /// Builds the server around `methods` (plus the chosen built-ins). No
    /// socket is opened yet: call [`Server::listen`] or hand it connections.
    pub fn build(self, mut methods: Methods) -> Server {
        if self.policies.origins == OriginPolicy::Any {
            tracing::warn!(
                target: "switchboard::server",
                "origin policy Any: a page from any web site may open a connection with its visitor's cookies; \
                 allow the origins you serve instead (ServerBuilder::allowed_origins)"
            );
        }
        let service = self.service.unwrap_or_else(|| ServiceInfo::new("switchboard", env!("CARGO_PKG_VERSION")));
        let (heartbeat, builtins) = (self.settings.app_heartbeat.is_some(), self.settings.builtins);
        let history = self.settings.history;
        let broker = self.broker.unwrap_or_else(|| Arc::new(MemoryBroker::new(history)));
        // The built-ins hold the hub they are part of.
        // A cluster named here wins over the one a shared broker brings.
        let cluster = self.cluster.or_else(|| broker.cluster());
        let hub = Hub::new_cyclic(self.settings, self.policies, broker, cluster, |hub| {
            if heartbeat {
                crate::app_heartbeat::install(&mut methods, hub);
            }
            crate::builtin::install(&mut methods, builtins, &service, hub);
            methods
        });
        Server::from_hub(hub)
    }
}
