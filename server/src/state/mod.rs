//! The middle layer: the state every part of a running server shares. The
//! hub (one per server) with its connection and topic registry, each
//! topic's local fan-out, the broker (publication order and history; it
//! delivers into the registry), the cluster (addressed traffic and
//! presence across hubs; the registry reports to it), its lifecycle (phase and connection slots)
//! and the heartbeat's state. Imports only [`config`](crate::config).

pub(crate) mod broker;
pub(crate) mod cluster;
pub(crate) mod heartbeat;
pub(crate) mod hub;
pub(crate) mod lifecycle;
pub(crate) mod registry;
pub(crate) mod telemetry;
pub(crate) mod topics;
