//! What a running server tells its operators: the observer the peer engine
//! reports every call to, which feeds the server's metrics (`metrics.rs`,
//! cargo feature `metrics`), the `on_call` hooks and the audit log; and
//! what the other layers count (handshakes, connections, publications,
//! the broker).
//!
//! Terms:
//! - the **audit log** is one `tracing` event per call, at INFO on the
//!   target `switchboard::audit`: the connection, its remote address and
//!   auth data, the direction, method, request id, outcome (and error
//!   code) and duration. It costs nothing while no subscriber enables the
//!   target;
//! - the engine is **watched** (given this observer) only when something
//!   listens: metrics on, a call hook set, or the audit target enabled when
//!   the server is built. Otherwise it pays one branch per call.

#[cfg(feature = "metrics")]
pub(crate) mod histogram;
// Without the feature, a type with no values: `metrics` is always `None`.
#[cfg_attr(not(feature = "metrics"), path = "metrics_off.rs")]
pub(crate) mod metrics;
pub(crate) mod ready;

use std::sync::Arc;
use std::time::Duration;

use switchboard_shared::peer::{CallEvent, CallObserver, Direction, FlowEvent};
use switchboard_shared::{CloseReason, Methods, PeerHandle};

use crate::config::hooks;
use crate::config::telemetry::{CallHook, Telemetry as Settings};
use crate::state::registry::{Registry, Target};

/// The tracing target of the audit log.
pub(crate) const AUDIT_TARGET: &str = "switchboard::audit";

/// Why an upgrade request was refused, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeRefusal {
    /// The Origin allow-list (403).
    Origin,
    /// The authenticator said no (401 / 403).
    Auth,
    /// An asynchronous authenticator did not decide in time (503).
    AuthTimeout,
    /// `max_connections` (503).
    Limit,
    /// `max_connections_per_ip` (503).
    LimitPerAddress,
    /// A shutdown under way (503).
    ShuttingDown,
    /// The client did not finish the handshake within `handshake_timeout`.
    Timeout,
    /// Not a valid WebSocket upgrade request (400, 426, 431).
    Invalid,
}

impl HandshakeRefusal {
    /// The label value.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code, reason = "only the metrics label refusals"))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HandshakeRefusal::Origin => "origin",
            HandshakeRefusal::Auth => "auth",
            HandshakeRefusal::AuthTimeout => "auth_timeout",
            HandshakeRefusal::Limit => "limit",
            HandshakeRefusal::LimitPerAddress => "limit_per_address",
            HandshakeRefusal::ShuttingDown => "shutting_down",
            HandshakeRefusal::Timeout => "timeout",
            HandshakeRefusal::Invalid => "invalid",
        }
    }
}

/// A broker operation, as the `switchboard_broker_errors_total` metric labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerOperation {
    /// Publishing (giving a publication its offset, storing it).
    Publish,
    /// Taking a subscription's snapshot (position and replay).
    Snapshot,
    /// Reading a topic's history (`rpc.history`).
    History,
    /// Receiving publications from the backend to deliver them here.
    Deliver,
    /// Addressed traffic between servers (calls, notifications to a
    /// connection on another server).
    Control,
}

impl BrokerOperation {
    /// The label value: `publish`, `snapshot`, `history`, `deliver` or `control`.
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerOperation::Publish => "publish",
            BrokerOperation::Snapshot => "snapshot",
            BrokerOperation::History => "history",
            BrokerOperation::Deliver => "deliver",
            BrokerOperation::Control => "control",
        }
    }
}

/// Counts and latency of one method in one direction, since the server was built.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MethodStats {
    /// Who called whom.
    pub direction: Direction,
    /// The method (`other` for every method the server does not have, and
    /// for outgoing names past the label bound).
    pub method: String,
    /// Calls that ended (notifications included).
    pub calls: u64,
    /// Calls that did not end `ok` (nor as a notification): errors, timeouts...
    pub errors: u64,
    /// The median latency, estimated from the histogram's buckets.
    pub p50: Option<Duration>,
    /// The 99th percentile latency, estimated from the histogram's buckets.
    pub p99: Option<Duration>,
}

/// What is read from the connections at scrape time.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) connections: usize,
    pub(crate) in_flight_incoming: usize,
    pub(crate) in_flight_outgoing: usize,
    pub(crate) queued_bytes: Vec<usize>,
}

impl Live {
    /// Reads every live connection of `registry`.
    pub(crate) fn read(registry: &Registry) -> Live {
        let mut live = Live::default();
        registry.for_each(&Target::All, |peer| {
            live.connections += 1;
            live.in_flight_incoming += peer.in_flight();
            live.in_flight_outgoing += peer.pending_calls();
            live.queued_bytes.push(peer.queued_bytes());
        });
        live
    }
}

/// A server's telemetry: its metrics (when on), its call hooks, its audit log.
pub(crate) struct Telemetry {
    hooks: Vec<CallHook>,
    /// Whether the audit target was enabled when the server was built.
    audit_at_build: bool,
    metrics: Option<metrics::Metrics>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("metrics", &self.metrics.is_some())
            .field("hooks", &self.hooks.len())
            .field("audit_at_build", &self.audit_at_build)
            .finish()
    }
}

impl Telemetry {
    pub(crate) fn new(settings: &Settings) -> Arc<Telemetry> {
        Arc::new(Telemetry {
            hooks: settings.call_hooks.clone(),
            audit_at_build: tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO),
            metrics: metrics::Metrics::new(settings),
        })
    }

    /// The observer for the engine, when anything listens (see the module docs).
    pub(crate) fn observer(self: &Arc<Self>) -> Option<Arc<dyn CallObserver>> {
        let listens = self.has_metrics() || !self.hooks.is_empty() || self.audit_at_build;
        listens.then(|| {
            // Now, rather than on the first call.
            switchboard_shared::peer::observe::calibrate_clock();
            Arc::clone(self) as Arc<dyn CallObserver>
        })
    }

    /// Labels the methods the server has (once, when it is built).
    pub(crate) fn know_methods(&self, methods: &Methods) {
        if let Some(metrics) = &self.metrics {
            metrics.know_methods(methods.iter().map(|(name, _)| name));
        }
    }

    /// Whether metrics are kept.
    pub(crate) fn has_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    pub(crate) fn handshake_accepted(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.handshake_accepted();
        }
    }

    pub(crate) fn handshake_refused(&self, reason: HandshakeRefusal) {
        if let Some(metrics) = &self.metrics {
            metrics.handshake_refused(reason);
        }
    }

    pub(crate) fn connection_opened(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.connection_opened();
        }
    }

    pub(crate) fn connection_closed(&self, reason: &CloseReason) {
        let Some(metrics) = &self.metrics else { return };
        let reason = match reason {
            CloseReason::SlowConsumer => "slow_consumer",
            // A subscriber that overflowed while its subscription started is closed with 1008 too.
            CloseReason::Local { code: 1008, .. } => "slow_consumer",
            CloseReason::Local { code: 1001, .. } => "shutdown",
            CloseReason::Local { .. } => "local",
            CloseReason::Remote { .. } => "remote",
            CloseReason::MessageTooBig => "message_too_big",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Transport(_) => "transport",
            _ => crate::config::telemetry::OTHER,
        };
        metrics.connection_closed(reason);
    }

    /// A publication reached this server's fan-out; `subscribers` get it.
    pub(crate) fn publication(&self, subscribers: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.publication(subscribers);
        }
    }

    /// A positioned subscription gave `since`: all it missed was replayed
    /// (`replayed` publications), or not (`recovered: false`).
    pub(crate) fn resumed(&self, recovered: bool, replayed: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.resumed(recovered, replayed);
        }
    }

    pub(crate) fn broker_publish(&self, took: Duration) {
        if let Some(metrics) = &self.metrics {
            metrics.broker_publish(took);
        }
    }

    pub(crate) fn broker_error(&self, operation: BrokerOperation) {
        if let Some(metrics) = &self.metrics {
            metrics.broker_error(operation);
        }
    }

    pub(crate) fn broker_reconnect(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.broker_reconnect();
        }
    }

    /// The Prometheus text of the server's metrics and its `Content-Type`;
    /// `None` when metrics are off.
    pub(crate) fn encode(&self, registry: &Registry) -> Option<(&'static str, String)> {
        let metrics = self.metrics.as_ref()?;
        Some((metrics::CONTENT_TYPE, metrics.encode(&Live::read(registry))))
    }

    /// Every method's counts and latency; empty when metrics are off.
    pub(crate) fn method_stats(&self) -> Vec<MethodStats> {
        self.metrics.as_ref().map(metrics::Metrics::method_stats).unwrap_or_default()
    }
}

impl CallObserver for Telemetry {
    fn call(&self, event: &CallEvent<'_>) {
        if let Some(metrics) = &self.metrics {
            metrics.call(event);
        }
        for hook in &self.hooks {
            hooks::run("on_call", || hook(event));
        }
        if tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
            audit(event);
        }
    }

    fn flow(&self, _peer: &PeerHandle, event: FlowEvent<'_>) {
        if let Some(metrics) = &self.metrics {
            metrics.flow(event);
        }
    }
}

/// One audit-log event.
fn audit(event: &CallEvent<'_>) {
    let info = event.peer.info();
    let auth = info.auth.as_ref().map(ToString::to_string);
    tracing::info!(
        target: AUDIT_TARGET,
        connection = %info.id,
        remote = info.remote.map(tracing::field::display),
        auth,
        direction = event.direction.as_str(),
        method = event.method,
        id = event.id.map(tracing::field::display),
        outcome = event.outcome.as_str(),
        code = event.outcome.code(),
        duration_us = u64::try_from(event.duration.as_micros()).unwrap_or(u64::MAX),
        "call"
    );
}
