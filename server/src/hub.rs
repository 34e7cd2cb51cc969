//! The state every part of a server shares: methods, settings, policies,
//! the registry and the lifecycle. One per server, behind an `Arc`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use switchboard_shared::tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use switchboard_shared::{Methods, Overflow, PeerConfig};

use crate::builder::{Policies, Settings};
use crate::lifecycle::Lifecycle;
use crate::registry::Registry;

#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) methods: Arc<Methods>,
    pub(crate) settings: Settings,
    pub(crate) policies: Policies,
    pub(crate) peer_config: PeerConfig,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) registry: Registry,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) local_addr: OnceLock<SocketAddr>,
}

impl Hub {
    pub(crate) fn new(methods: Methods, settings: Settings, policies: Policies) -> Arc<Self> {
        let peer_config = PeerConfig {
            max_in_flight: settings.max_in_flight,
            max_queue_bytes: settings.max_queue_bytes,
            overflow: Overflow::Disconnect,
            max_batch_len: settings.max_batch_len,
            call_timeout: Some(settings.call_timeout),
            heartbeat: settings.heartbeat,
            id_generator: None,
        };
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(settings.read_buffer_size)
            .max_message_size(Some(settings.max_message_size))
            .max_frame_size(Some(settings.max_message_size));
        Arc::new(Hub {
            methods: Arc::new(methods),
            lifecycle: Lifecycle::new(settings.max_connections),
            settings,
            policies,
            peer_config,
            ws_config,
            registry: Registry::default(),
            local_addr: OnceLock::new(),
        })
    }
}
