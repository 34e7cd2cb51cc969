//! The hub: the state every part of a server shares (methods, settings,
//! policies, the registry, the broker, the cluster, the lifecycle, the heartbeat's state). One per
//! server, behind an `Arc`; its fields are reached through its methods.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};

use switchboard_shared::tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use switchboard_shared::{Methods, Overflow, PeerConfig, PeerHandle};

use crate::config::listen::Listening;
use crate::config::settings::{Policies, Settings};
use crate::state::broker::{Broker, Fanout};
use crate::state::cluster::{Cluster, LocalNode, NodeId};
use crate::state::heartbeat::AppHeartbeat;
use crate::state::lifecycle::{Lifecycle, NoSlot, ServerPhase, Slot};
use crate::state::registry::Registry;
use crate::state::telemetry::Telemetry;

#[derive(Debug)]
pub(crate) struct Hub {
    methods: Arc<Methods>,
    settings: Settings,
    policies: Policies,
    /// Shared by every connection; holds a [`ServerRef`] back to this hub.
    peer_config: Arc<PeerConfig>,
    ws_config: WebSocketConfig,
    registry: Arc<Registry>,
    /// Orders publications and keeps history; delivers into `registry`.
    broker: Arc<dyn Broker>,
    /// The other hubs, for addressed traffic and presence; `None`: alone.
    cluster: Option<Arc<dyn Cluster>>,
    /// This hub's node id: the cluster's, or a fresh one when alone.
    node: NodeId,
    lifecycle: Arc<Lifecycle>,
    local_addr: OnceLock<SocketAddr>,
    /// Every listener started, in order.
    listening: parking_lot::Mutex<Vec<Listening>>,
    app_heartbeat: AppHeartbeat,
}

impl Hub {
    /// Builds the hub. `methods` gets a weak reference to the hub being
    /// built, for methods that need it (the built-ins): weak, so the hub's
    /// own methods do not keep it alive.
    pub(crate) fn new_cyclic(
        settings: Settings,
        policies: Policies,
        broker: Arc<dyn Broker>,
        cluster: Option<Arc<dyn Cluster>>,
        methods: impl FnOnce(&Weak<Hub>) -> Methods,
    ) -> Arc<Self> {
        let telemetry = Telemetry::new(&policies.telemetry);
        let registry = Arc::new(Registry::new(
            settings.max_queue_bytes,
            settings.topic_policies.clone(),
            Arc::clone(&broker),
            cluster.clone(),
            Arc::clone(&telemetry),
        ));
        broker.attach(Fanout::new(&registry));
        let lifecycle = Lifecycle::new(settings.max_connections, settings.max_connections_per_ip);
        let node = match &cluster {
            Some(cluster) => {
                cluster.attach(LocalNode::new(&registry, lifecycle.watch()));
                cluster.node()
            }
            None => NodeId::random(),
        };
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(settings.read_buffer_size)
            .max_message_size(Some(settings.max_message_size))
            .max_frame_size(Some(settings.max_message_size));
        Arc::new_cyclic(|hub| {
            let mut peer_config = PeerConfig {
                max_in_flight: settings.max_in_flight,
                max_parked_bytes: settings.max_parked_bytes,
                max_queue_bytes: settings.max_queue_bytes,
                overflow: Overflow::Disconnect,
                max_batch_len: settings.max_batch_len,
                call_timeout: Some(settings.call_timeout),
                heartbeat: settings.heartbeat,
                rate_limit: settings.rate_limit,
                id_generator: None,
                jsonrpc1: settings.jsonrpc1,
                extensions: http::Extensions::new(),
                observer: telemetry.observer(),
                ..PeerConfig::default()
            };
            peer_config.extensions.insert(ServerRef(hub.clone()));
            let methods = Arc::new(methods(hub));
            telemetry.know_methods(&methods);
            Hub {
                methods,
                peer_config: Arc::new(peer_config),
                lifecycle,
                app_heartbeat: AppHeartbeat::new(settings.app_heartbeat),
                settings,
                policies,
                ws_config,
                registry,
                broker,
                cluster,
                node,
                local_addr: OnceLock::new(),
                listening: parking_lot::Mutex::new(Vec::new()),
            }
        })
    }

    /// The methods clients may call, built-ins included.
    pub(crate) fn methods(&self) -> &Arc<Methods> {
        &self.methods
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The engine settings every connection shares.
    pub(crate) fn peer_config(&self) -> &Arc<PeerConfig> {
        &self.peer_config
    }

    /// The WebSocket settings every connection is upgraded with.
    pub(crate) fn ws_config(&self) -> WebSocketConfig {
        self.ws_config
    }

    /// Live connections and topics.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Where publications are ordered and kept.
    pub(crate) fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// The other hubs; `None` when this one is alone.
    pub(crate) fn cluster(&self) -> Option<&Arc<dyn Cluster>> {
        self.cluster.as_ref()
    }

    /// This hub's node id.
    pub(crate) fn node(&self) -> &NodeId {
        &self.node
    }

    pub(crate) fn app_heartbeat(&self) -> &AppHeartbeat {
        &self.app_heartbeat
    }

    pub(crate) fn phase(&self) -> ServerPhase {
        self.lifecycle.phase()
    }

    /// Resolves once the server has left the running phase.
    pub(crate) async fn stopped_running(&self) {
        let mut phase = self.lifecycle.watch();
        let _ = phase.wait_for(|phase| *phase != ServerPhase::Running).await;
    }

    /// Resolves once the server has stopped.
    pub(crate) async fn stopped(&self) {
        let mut phase = self.lifecycle.watch();
        // The sender lives in the lifecycle, which every connection keeps alive until it ends.
        let _ = phase.wait_for(|phase| *phase == ServerPhase::Stopped).await;
    }

    /// Takes a slot for a new connection from `ip` (when known), within
    /// `max_connections` and `max_connections_per_ip`.
    pub(crate) fn reserve(&self, ip: Option<std::net::IpAddr>) -> Result<Slot, NoSlot> {
        self.lifecycle.reserve(ip)
    }

    /// Registers a listener: the server is not stopped before the guard is dropped.
    pub(crate) fn listener(&self) -> crate::state::lifecycle::ListenerGuard {
        self.lifecycle.listener()
    }

    /// Starts a graceful shutdown (once): nothing new is admitted, and every
    /// live connection may finish its in-flight calls until `until`, then is
    /// closed with 1001. Returns `false` when a shutdown had already begun.
    pub(crate) fn begin_shutdown(&self, until: tokio::time::Instant) -> bool {
        if !self.lifecycle.begin_drain() {
            return false;
        }
        let peers: Vec<PeerHandle> = self.registry.close();
        tracing::info!(target: "switchboard::server", connections = peers.len(), "shutting down");
        for peer in &peers {
            peer.shutdown(until);
        }
        true
    }

    /// The address the server listens on, once set.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr.get().copied()
    }

    /// Sets the address reported as the server's (the first listener's).
    pub(crate) fn set_local_addr(&self, addr: SocketAddr) {
        let _ = self.local_addr.set(addr);
    }

    /// Lists a listener that has started.
    pub(crate) fn add_listening(&self, listening: Listening) {
        self.listening.lock().push(listening);
    }

    /// Every listener started, in order.
    pub(crate) fn listening(&self) -> Vec<Listening> {
        self.listening.lock().clone()
    }
}

/// How a connection finds its server: weak, so the hub's own config does not
/// keep the hub alive.
#[derive(Debug, Clone)]
pub(crate) struct ServerRef(pub(crate) Weak<Hub>);
