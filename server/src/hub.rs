//! The state every part of a server shares: methods, settings, policies,
//! the registry and the lifecycle. One per server, behind an `Arc`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};

use switchboard_shared::tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use switchboard_shared::{Methods, Overflow, PeerConfig};

use crate::app_heartbeat::AppHeartbeat;
use crate::builder::{Policies, Settings};
use crate::lifecycle::Lifecycle;
use crate::registry::Registry;

#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) methods: Arc<Methods>,
    pub(crate) settings: Settings,
    pub(crate) policies: Policies,
    /// Shared by every connection; holds a [`ServerRef`] back to this hub.
    pub(crate) peer_config: Arc<PeerConfig>,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) registry: Registry,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) local_addr: OnceLock<SocketAddr>,
    pub(crate) app_heartbeat: AppHeartbeat,
}

impl Hub {
    pub(crate) fn new(methods: Methods, settings: Settings, policies: Policies) -> Arc<Self> {
        let max_connections = settings.max_connections;
        let mut peer_config = PeerConfig {
            max_in_flight: settings.max_in_flight,
            max_queue_bytes: settings.max_queue_bytes,
            overflow: Overflow::Disconnect,
            max_batch_len: settings.max_batch_len,
            call_timeout: Some(settings.call_timeout),
            heartbeat: settings.heartbeat,
            id_generator: None,
            extensions: http::Extensions::new(),
            ..PeerConfig::default()
        };
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(settings.read_buffer_size)
            .max_message_size(Some(settings.max_message_size))
            .max_frame_size(Some(settings.max_message_size));
        let app_heartbeat = AppHeartbeat::new(settings.app_heartbeat);
        Arc::new_cyclic(|hub| Hub {
            peer_config: Arc::new({
                peer_config.extensions.insert(ServerRef(hub.clone()));
                peer_config
            }),
            settings,
            methods: Arc::new(methods),
            lifecycle: Lifecycle::new(max_connections),
            policies,
            ws_config,
            registry: Registry::default(),
            local_addr: OnceLock::new(),
            app_heartbeat,
        })
    }
}

/// How a connection finds its server: weak, so the hub's own config does not
/// keep the hub alive.
#[derive(Debug, Clone)]
pub(crate) struct ServerRef(pub(crate) Weak<Hub>);
