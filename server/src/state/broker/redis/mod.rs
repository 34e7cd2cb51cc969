//! [`RedisBroker`]: topic streams shared by several server processes through
//! one Redis, so that the hubs act as one: a publication made on any hub
//! reaches every subscriber on every hub, once, in one order; offsets and
//! epochs come from Redis, so a client may resume on any hub.
//!
//! # In Redis
//!
//! Per topic, a meta hash (epoch, latest offset), a stream (the newest
//! publications, entry id = offset) and a pub/sub channel, named under one
//! prefix (see `keys.rs` for the table). Both keys live for the history TTL
//! after the topic's last publication (a meta created by a subscribe or a
//! history read lives that long too): **every key the broker creates has a
//! TTL**.
//!
//! # Publishing
//!
//! One Lua script per publication (`publish.lua`), so one round trip:
//!
//! 1. read the topic's epoch; none (never published, expired, or lost with
//!    Redis's data): take the fresh random epoch the call brings, and drop a
//!    stream left from a lost epoch;
//! 2. increment the latest offset;
//! 3. `XADD` the publication with the offset as its entry id (`OFFSET-0`),
//!    trimmed to the history size (`MAXLEN`), and renew both keys' TTL;
//! 4. `PUBLISH` it on the topic's channel (`EPOCH OFFSET BODY`, the body
//!    encoded once by the publishing server; see `codec.rs`);
//! 5. return `{epoch, offset}`.
//!
//! A script runs alone, so the channel carries a topic's publications in
//! offset order. Publications leave in the order [`Broker::publish`] was
//! called: it queues them at the call for one task that pipelines them on
//! the command connection (see `publish.rs`).
//!
//! # Delivering
//!
//! A hub does not deliver its own publications when it makes them: every
//! hub, the publishing one included, delivers what its subscription
//! connection receives, so each delivers every publication once, in order.
//! A hub subscribes to a topic's channel only while it has local
//! subscribers (the registry's [`Broker::watch`] / [`Broker::unwatch`]);
//! `rpc.subscribe` is answered only once Redis confirmed the `SUBSCRIBE`
//! ([`Broker::watching`]), and a positioned subscription's snapshot is
//! read after that, so nothing published after it is missed. (A join made
//! by a handler, `ServerContext::join`, is not awaited: it receives the
//! topic's publications once Redis confirmed, a round trip later.)
//!
//! # Recovery
//!
//! The subscription task (see `subscriber.rs`) keeps, per watched topic,
//! the last position it delivered. A publication after a gap in the same
//! epoch: the missing ones are read from the stream and delivered first. A
//! duplicate (an offset already delivered) is dropped. When the subscription
//! connection drops (`CLIENT KILL TYPE pubsub`, Redis restarting, a network
//! cut), the task reconnects (at once, then with backoff from 50 ms to 2 s),
//! subscribes to every watched topic again and delivers, from the stream,
//! what was published meanwhile. What the stream no longer has is not
//! invented: positioned clients see the gap (or the new epoch, when Redis
//! lost the topic) and fill it from `rpc.history` or report it lost; never
//! a silent gap.
//!
//! # Outages
//!
//! Every Redis operation is bounded by the broker's timeout (default
//! [`DEFAULT_TIMEOUT`](RedisBroker::DEFAULT_TIMEOUT)). While Redis is
//! unreachable, publishing fails with [`BrokerError::Unavailable`] (within
//! about the timeout after the call), and so do `rpc.subscribe`
//! and `rpc.history` (JSON-RPC error -32003 "Broker unavailable"). Local
//! connections keep working; once Redis is back the command connection
//! reconnects on the next command and the subscription task on its own,
//! without restarting the hub.

mod codec;
mod keys;
mod publish;
mod read;
mod subscriber;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::value::RawValue;
use switchboard_shared::stream::StreamPosition;

use crate::config::settings::defaults;
use crate::state::broker::entry::StreamEntry;
use crate::state::broker::history::Replay;
use crate::state::broker::observe;
use crate::state::broker::redis::keys::Keys;
use crate::state::broker::redis::publish::Publisher;
use crate::state::broker::redis::read::{Mode, read};
use crate::state::broker::redis::subscriber::Subscriber;
use crate::state::broker::{Broker, BrokerError, BrokerFuture, Fanout, HistoryPage, Snapshot};
use crate::state::cluster::Cluster;
use crate::state::cluster::redis::RedisCluster;
use crate::state::telemetry::BrokerOperation;

/// Why [`RedisBrokerBuilder::connect`] failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConnectError {
    /// The URL is not a Redis URL; give one like `redis://127.0.0.1:6379`
    /// (`rediss://` needs TLS support, which is not built in).
    #[error("{url} is not a Redis URL: {reason} (expected e.g. redis://127.0.0.1:6379)")]
    InvalidUrl {
        /// The URL, its password hidden.
        url: String,
        /// Why.
        reason: String,
    },
    /// Redis did not answer (refused, timed out, or an error such as a
    /// required password); check that it runs and the URL is right.
    #[error("could not reach Redis at {url}: {reason} (is redis-server running there?)")]
    Unreachable {
        /// The URL, its password hidden.
        url: String,
        /// Why.
        reason: String,
    },
}

/// The broker's settings.
#[derive(Debug, Clone)]
struct Settings {
    prefix: String,
    history_size: usize,
    history_ttl: Duration,
    timeout: Duration,
    addressed: Addressed,
}

/// Whether the servers of a [`RedisBroker`] also act as one for traffic
/// addressed to connections (calls and notifications by connection id,
/// pushes, broadcasts, `call_many`) and for presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Addressed {
    /// Through a [`RedisCluster`](crate::RedisCluster) on the same Redis
    /// and prefix, whose keys live `ttl` (how soon the other hubs forget a
    /// killed one; see [`RedisClusterBuilder::ttl`](crate::RedisClusterBuilder::ttl)).
    Cluster {
        /// The TTL of this hub's directory, presence and liveness keys.
        ttl: Duration,
    },
    /// Each server reaches only its own connections; only topic streams are
    /// shared.
    LocalOnly,
}

impl Default for Addressed {
    /// A cluster with a TTL of 15 s.
    fn default() -> Self {
        Addressed::Cluster { ttl: crate::state::cluster::redis::DEFAULT_TTL }
    }
}

impl Settings {
    /// The keys' time to live in milliseconds (at least 1).
    fn ttl_millis(&self) -> u64 {
        u64::try_from(self.history_ttl.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}

/// What the broker's handle and its tasks share.
struct Shared {
    url: String,
    keys: Keys,
    settings: Settings,
    /// Commands (scripts, reads): one multiplexed connection that reconnects
    /// on the next command after it broke.
    commands: ConnectionManager,
    /// Opens the subscription connection (its own, apart from commands).
    client: redis::Client,
    /// The servers publications are delivered to.
    fanouts: RwLock<Vec<Fanout>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker").field("url", &self.url).field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Shared {
    /// Awaits a Redis operation, at most the broker's timeout; its failure
    /// as [`BrokerError::Unavailable`], saying `what` was being done.
    async fn bounded<T>(
        &self,
        what: &str,
        operation: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BrokerError> {
        match tokio::time::timeout(self.settings.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(unavailable(format_args!("{what}: {e}"))),
            Err(_) => Err(unavailable(format_args!("{what}: no answer from Redis within {:?}", self.settings.timeout))),
        }
    }

    /// Hands `entry` to every attached server.
    fn deliver(&self, entry: &StreamEntry) {
        for fanout in self.fanouts.read().iter() {
            fanout.deliver(entry);
        }
    }

    /// Publications read from the stream at most at once.
    fn catch_up_limit(&self) -> usize {
        self.settings.history_size.max(1)
    }
}

/// [`BrokerError::Unavailable`] saying why.
fn unavailable(why: impl Display) -> BrokerError {
    BrokerError::Unavailable(why.to_string())
}

/// `url` with its password, if any, hidden.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Topic streams in Redis, shared by every server built with a broker
/// connected to the same Redis and prefix: several hub processes act as one.
/// A publication made on any of them reaches every subscriber on every one,
/// once, in offset order; a positioned subscriber resumes on any of them.
///
/// What it keeps in Redis, per topic (`PREFIX` is [`prefix`](RedisBrokerBuilder::prefix)):
///
/// | name | kind | holds | time to live |
/// |---|---|---|---|
/// | `PREFIX:meta:TOPIC` | hash | the topic's epoch and latest offset | [`history_ttl`](RedisBrokerBuilder::history_ttl) after its last publication |
/// | `PREFIX:stream:TOPIC` | stream | its newest [`history_size`](RedisBrokerBuilder::history_size) publications | the same |
/// | `PREFIX:pub:TOPIC` | pub/sub channel | (every publication as it is made) | - |
///
/// Each publication is one Lua script in Redis (one round trip): next
/// offset, stream append, `PUBLISH`. Every server delivers what comes from
/// the channel (the publishing one included), subscribing to a topic's
/// channel only while it has local subscribers, and fills what its
/// subscription connection missed from the stream. When Redis lost a topic
/// (restarted without persistence, `FLUSHALL`, expiry) the topic starts a
/// new epoch: resuming subscribers get `recovered: false`, never a silent
/// gap. While Redis is unreachable, publishing, subscribing and reading
/// history fail in bounded time with [`BrokerError::Unavailable`] (JSON-RPC
/// error -32003), and the broker reconnects by itself.
///
/// ```no_run
/// use std::time::Duration;
/// use switchboard_server::{RedisBroker, Server};
/// use switchboard_shared::Methods;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = RedisBroker::builder("redis://127.0.0.1:6379")
///     .prefix("chat")
///     .history_size(10_000)
///     .history_ttl(Duration::from_secs(3600))
///     .connect()
///     .await?;
/// let server = Server::builder().broker(broker).build(Methods::new()).listen("127.0.0.1:9000").await?;
/// # drop(server); Ok(()) }
/// ```
///
/// It holds two connections to Redis: one for commands (publishing,
/// snapshots, history), reconnecting on demand, and one for pub/sub,
/// reconnecting by itself. Cloning it is cheap; clones share both (a clone
/// given to another server in the same process delivers to both). Its tasks
/// end when the last clone is dropped.
#[derive(Clone)]
pub struct RedisBroker {
    shared: Arc<Shared>,
    publisher: Publisher,
    subscriber: Subscriber,
    /// The cluster its servers join ([`Addressed::Cluster`]).
    cluster: Option<RedisCluster>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.fmt(f)
    }
}

impl RedisBroker {
    /// The prefix of every key and channel, by default.
    pub const DEFAULT_PREFIX: &str = "switchboard";
    /// The bound on every Redis operation, by default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// Connects with every default (see [`RedisBrokerBuilder`]).
    pub async fn connect(url: &str) -> Result<RedisBroker, RedisConnectError> {
        RedisBroker::builder(url).connect().await
    }

    /// Starts configuring a broker for the Redis at `url`
    /// (`redis://[:password@]host[:port][/db]`).
    pub fn builder(url: impl Into<String>) -> RedisBrokerBuilder {
        RedisBrokerBuilder {
            url: url.into(),
            settings: Settings {
                prefix: RedisBroker::DEFAULT_PREFIX.to_owned(),
                history_size: defaults::HISTORY_ENTRIES,
                history_ttl: defaults::HISTORY_TTL,
                timeout: RedisBroker::DEFAULT_TIMEOUT,
                addressed: Addressed::default(),
            },
        }
    }

    /// The prefix of its keys and channels.
    pub fn prefix(&self) -> &str {
        &self.shared.settings.prefix
    }
}

/// Configures a [`RedisBroker`]; start from [`RedisBroker::builder`].
///
/// | setting | default | when hit |
/// |---|---|---|
/// | [`prefix`](Self::prefix) | `switchboard` | (names every key and channel) |
/// | [`history_size`](Self::history_size) | 1,000 publications per topic | the oldest is trimmed from the stream |
/// | [`history_ttl`](Self::history_ttl) | 10 min after the topic's last publication | the topic's keys expire; its next publication starts a new epoch |
/// | [`timeout`](Self::timeout) | 2 s per Redis operation | the operation fails with [`BrokerError::Unavailable`] |
/// | [`addressed`](Self::addressed) | [`Addressed::Cluster`], TTL 15 s | (calls, pushes and presence reach every hub's connections) |
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisBrokerBuilder {
    url: String,
    settings: Settings,
}

impl RedisBrokerBuilder {
    /// Sets the prefix of every key and channel (`PREFIX:meta:TOPIC`, ...).
    ///
    /// Default: `switchboard`. Hubs act as one when they use the same Redis
    /// and the same prefix; another prefix is another, separate deployment.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.prefix = prefix.into();
        self
    }

    /// Sets how many publications each topic's stream keeps, for subscribers
    /// that resume (`since`) on any hub and for `rpc.history`.
    ///
    /// Default: 1,000 (as the in-memory broker). Past it the oldest is
    /// trimmed (`XADD MAXLEN`); a subscriber that missed a trimmed one gets
    /// `recovered: false`. 0 keeps none (offsets and epochs are still
    /// given out). The server's `max_replay` still caps a replay.
    pub fn history_size(mut self, publications: usize) -> Self {
        self.settings.history_size = publications;
        self
    }

    /// Sets how long a topic's keys live after its last publication.
    ///
    /// Default: 10 minutes. Then Redis expires them: the topic's next
    /// publication starts a new epoch, and a subscriber resuming from the
    /// old one gets `recovered: false`. The minimum is 1 ms.
    pub fn history_ttl(mut self, ttl: Duration) -> Self {
        self.settings.history_ttl = ttl;
        self
    }

    /// Sets the bound on every Redis operation: connecting, each publish
    /// pipeline, each read, each `SUBSCRIBE`.
    ///
    /// Default: 2 s. Past it the operation fails with
    /// [`BrokerError::Unavailable`]. While Redis is unreachable a publish
    /// fails within about the timeout (the pipeline ahead of it fails, and
    /// takes every publication queued behind it along, unsent); a subscribe
    /// within twice the timeout (the `SUBSCRIBE`, then reading where the
    /// stream stands). While Redis is up, a burst of publications waits its
    /// turn (at most 65,536 wait; past that publishing fails at once). The
    /// minimum is 10 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// Sets whether the servers built with this broker also act as one for
    /// traffic addressed to connections and for presence (a
    /// [`RedisCluster`](crate::RedisCluster) on the same Redis and prefix,
    /// which the server joins unless [`ServerBuilder::cluster`](crate::ServerBuilder::cluster)
    /// names another).
    ///
    /// Default: [`Addressed::Cluster`] with a TTL of 15 s.
    /// [`Addressed::LocalOnly`] shares topic streams only.
    pub fn addressed(mut self, addressed: Addressed) -> Self {
        self.settings.addressed = addressed;
        self
    }

    /// Connects to Redis (the command connection, and loads the publish
    /// script) and starts the publishing and subscription tasks. Fails when
    /// Redis does not answer within the timeout.
    pub async fn connect(self) -> Result<RedisBroker, RedisConnectError> {
        let RedisBrokerBuilder { url, settings } = self;
        let shown = redacted(&url);
        let client = redis::Client::open(url.as_str())
            .map_err(|e| RedisConnectError::InvalidUrl { url: shown.clone(), reason: e.to_string() })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            // One attempt per command: the broker's own timeout bounds the
            // wait, and the next command tries again.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50));
        let unreachable = |reason: String| RedisConnectError::Unreachable { url: shown.clone(), reason };
        let cluster = match settings.addressed {
            Addressed::Cluster { ttl } => Some(
                RedisCluster::builder(url.as_str())
                    .key_prefix(settings.prefix.as_str())
                    .ttl(ttl)
                    .connect()
                    .await
                    .map_err(|e| unreachable(format!("the cluster: {e}")))?,
            ),
            Addressed::LocalOnly => None,
        };
        let mut commands =
            tokio::time::timeout(settings.timeout, ConnectionManager::new_with_config(client.clone(), config))
                .await
                .map_err(|_| unreachable(format!("no answer within {:?}", settings.timeout)))?
                .map_err(|e| unreachable(e.to_string()))?;
        tokio::time::timeout(settings.timeout, publish::PUBLISH.load_async(&mut commands))
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", settings.timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
        let shared = Arc::new(Shared {
            url: shown,
            keys: Keys::new(&settings.prefix),
            settings,
            commands,
            client,
            fanouts: RwLock::default(),
        });
        Ok(RedisBroker {
            publisher: Publisher::start(Arc::clone(&shared)),
            subscriber: Subscriber::start(Arc::clone(&shared)),
            shared,
            cluster,
        })
    }
}

impl Broker for RedisBroker {
    fn cluster(&self) -> Option<Arc<dyn Cluster>> {
        self.cluster.clone().map(|cluster| Arc::new(cluster) as Arc<dyn Cluster>)
    }

    fn attach(&self, fanout: Fanout) {
        let mut fanouts = self.shared.fanouts.write();
        fanouts.retain(|f| !f.is_gone());
        fanouts.push(fanout);
    }

    fn publish(&self, topic: &str, method: &str, params: &RawValue) -> BrokerFuture<StreamPosition> {
        let published = self.publisher.publish(&self.shared, topic, method, params);
        observe::reported(&self.shared.fanouts, BrokerOperation::Publish, published)
    }

    fn check_ready(&self) -> BrokerFuture<()> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let mut commands = shared.commands.clone();
            shared.bounded("PING", redis::cmd("PING").query_async::<()>(&mut commands)).await
        })
    }

    fn snapshot(&self, topic: &str, since: Option<&StreamPosition>, max_replay: usize) -> BrokerFuture<Snapshot> {
        let (shared, topic, since) = (Arc::clone(&self.shared), Arc::<str>::from(topic), since.cloned());
        let fanouts = &self.shared.fanouts;
        observe::reported(
            fanouts,
            BrokerOperation::Snapshot,
            Box::pin(async move {
                let Some(since) = since else {
                    let read = read(&shared, &topic, Mode::Page, None, 0).await?;
                    return Ok(Snapshot::new(read.position, Replay::Complete(Vec::new())));
                };
                let read = read(&shared, &topic, Mode::Replay, Some(&since), max_replay).await?;
                let replay = match read.entries {
                    Some(entries) => Replay::Complete(entries),
                    None => Replay::Lost,
                };
                Ok(Snapshot::new(read.position, replay))
            }),
        )
    }

    fn history(&self, topic: &str, since: Option<&StreamPosition>, limit: usize) -> BrokerFuture<HistoryPage> {
        let (shared, topic, since) = (Arc::clone(&self.shared), Arc::<str>::from(topic), since.cloned());
        observe::reported(
            &self.shared.fanouts,
            BrokerOperation::History,
            Box::pin(async move {
                let read = read(&shared, &topic, Mode::Page, since.as_ref(), limit).await?;
                Ok(HistoryPage::new(read.position, read.entries.unwrap_or_default()))
            }),
        )
    }

    fn watch(&self, topic: &str) {
        self.subscriber.watch(topic);
    }

    fn unwatch(&self, topic: &str) {
        self.subscriber.unwatch(topic);
    }

    fn watching(&self, topic: &str) -> BrokerFuture<()> {
        self.subscriber.watching(topic, 2 * self.shared.settings.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(redacted("redis://:hunter2@127.0.0.1:6379/0"), "redis://:***@127.0.0.1:6379/0");
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn the_ttl_is_at_least_a_millisecond() {
        let settings = |ttl| Settings {
            prefix: String::new(),
            history_size: 0,
            history_ttl: ttl,
            timeout: Duration::ZERO,
            addressed: Addressed::LocalOnly,
        };
        assert_eq!(settings(Duration::ZERO).ttl_millis(), 1);
        assert_eq!(settings(Duration::from_secs(600)).ttl_millis(), 600_000);
    }
}
