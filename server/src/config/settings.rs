//! Every limit and policy a server is built with, and the documented
//! default of each (the table is on [`ServerBuilder`](crate::ServerBuilder)).

use std::time::Duration;

use switchboard_shared::{Heartbeat, Jsonrpc1};

use crate::config::auth::Auth;
use crate::config::cors::CorsPolicy;
use crate::config::hooks::{ConnectHook, DisconnectHook};
use crate::config::listen::RawSockets;
use crate::config::origin::OriginPolicy;
use crate::config::subscriptions::{Builtins, SubscriptionFilter};
use crate::config::topics::{HistoryLimits, TopicPolicies};

/// The defaults of every builder setting.
pub mod defaults {
    use std::time::Duration;

    use switchboard_shared::Heartbeat;

    /// Live connections at once.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// Live connections at once from one client address.
    pub const MAX_CONNECTIONS_PER_IP: usize = 256;
    /// Time a client whose credentials expired has to send a fresh one (`rpc.refresh`).
    pub const REFRESH_GRACE: Duration = Duration::from_secs(10);
    /// Bytes of one inbound message (10 MiB).
    pub const MAX_MESSAGE_SIZE: usize = 10 << 20;
    /// Entries of one inbound batch.
    pub const MAX_BATCH_LEN: usize = 1_000;
    /// Handlers of one connection waiting at once.
    pub const MAX_IN_FLIGHT: usize = 256;
    /// Bytes of requests one connection may have parked behind `MAX_IN_FLIGHT` (1 MiB).
    pub const MAX_PARKED_BYTES: usize = 1 << 20;
    /// Bytes waiting in one connection's outbound queue (4 MiB).
    pub const MAX_QUEUE_BYTES: usize = 4 << 20;
    /// Time a client has to complete the WebSocket upgrade.
    pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Time an asynchronous authenticator has to decide.
    pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
    /// TCP connections accepted but not yet upgraded, at once.
    pub const MAX_PENDING_HANDSHAKES: usize = 1_024;
    /// Ping every 25 s; close after 60 s without hearing anything.
    pub const HEARTBEAT: Heartbeat = Heartbeat { interval: Duration::from_secs(25), timeout: Duration::from_secs(60) };
    /// Bytes of each connection's read buffer (1 KiB).
    pub const READ_BUFFER_SIZE: usize = 1 << 10;
    /// Timeout of calls from the server to a client.
    pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
    /// Topics one connection may join with `rpc.subscribe`.
    pub const MAX_SUBSCRIPTIONS: usize = 1_000;
    /// Publications the in-memory broker retains per topic.
    pub const HISTORY_ENTRIES: usize = 1_000;
    /// Bytes of publications the in-memory broker retains per topic (1 MiB).
    pub const HISTORY_BYTES: usize = 1 << 20;
    /// A topic with no publication for this long forgets its history (10 min).
    pub const HISTORY_TTL: Duration = Duration::from_secs(600);
    /// Topics the in-memory broker keeps a stream for at once.
    pub const HISTORY_TOPICS: usize = 1_000;
    /// Publications replayed to one resuming subscriber at most; more missed means `recovered: false`.
    pub const MAX_REPLAY: usize = 1_000;
    /// Publications one `rpc.history` answer holds at most.
    pub const MAX_HISTORY_PAGE: usize = 1_000;
}

/// The numeric settings, fixed at build.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_ip: usize,
    pub(crate) rate_limit: Option<switchboard_shared::RateLimit>,
    pub(crate) refresh_grace: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) max_batch_len: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) max_parked_bytes: usize,
    pub(crate) max_queue_bytes: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) auth_timeout: Duration,
    pub(crate) max_pending_handshakes: usize,
    pub(crate) heartbeat: Option<Heartbeat>,
    pub(crate) app_heartbeat: Option<Duration>,
    pub(crate) read_buffer_size: usize,
    pub(crate) call_timeout: Duration,
    pub(crate) max_subscriptions: usize,
    pub(crate) builtins: Builtins,
    pub(crate) history: HistoryLimits,
    pub(crate) max_replay: usize,
    pub(crate) max_history_page: usize,
    pub(crate) topic_policies: TopicPolicies,
    /// Every listener serves TLS with it (`wss://`, `https://`) when set.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::config::tls::TlsConfig>,
    pub(crate) jsonrpc1: Jsonrpc1,
    pub(crate) raw_sockets: RawSockets,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_connections: defaults::MAX_CONNECTIONS,
            max_connections_per_ip: defaults::MAX_CONNECTIONS_PER_IP,
            rate_limit: None,
            refresh_grace: defaults::REFRESH_GRACE,
            max_message_size: defaults::MAX_MESSAGE_SIZE,
            max_batch_len: defaults::MAX_BATCH_LEN,
            max_in_flight: defaults::MAX_IN_FLIGHT,
            max_parked_bytes: defaults::MAX_PARKED_BYTES,
            max_queue_bytes: defaults::MAX_QUEUE_BYTES,
            handshake_timeout: defaults::HANDSHAKE_TIMEOUT,
            auth_timeout: defaults::AUTH_TIMEOUT,
            max_pending_handshakes: defaults::MAX_PENDING_HANDSHAKES,
            heartbeat: Some(defaults::HEARTBEAT),
            app_heartbeat: None,
            read_buffer_size: defaults::READ_BUFFER_SIZE,
            call_timeout: defaults::CALL_TIMEOUT,
            max_subscriptions: defaults::MAX_SUBSCRIPTIONS,
            builtins: Builtins::default(),
            history: HistoryLimits::default(),
            max_replay: defaults::MAX_REPLAY,
            max_history_page: defaults::MAX_HISTORY_PAGE,
            topic_policies: TopicPolicies::default(),
            #[cfg(feature = "tls")]
            tls: None,
            jsonrpc1: Jsonrpc1::Reject,
            raw_sockets: RawSockets::RefuseWithAuthenticator,
        }
    }
}

/// The user code the server runs at the edges of a connection.
#[derive(Default)]
pub(crate) struct Policies {
    pub(crate) origins: OriginPolicy,
    pub(crate) cors: CorsPolicy,
    pub(crate) authenticator: Option<Auth>,
    pub(crate) subscription_filter: Option<SubscriptionFilter>,
    pub(crate) on_connect: Option<ConnectHook>,
    pub(crate) on_disconnect: Option<DisconnectHook>,
    pub(crate) telemetry: crate::config::telemetry::Telemetry,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("origins", &self.origins)
            .field("cors", &self.cors)
            .field("authenticator", &self.authenticator)
            .field("subscription_filter", &self.subscription_filter.is_some())
            .field("on_connect", &self.on_connect.is_some())
            .field("on_disconnect", &self.on_disconnect.is_some())
            .field("telemetry", &self.telemetry)
            .finish()
    }
}
