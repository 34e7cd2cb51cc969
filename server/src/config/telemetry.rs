//! What a server tells its operators: whether it keeps Prometheus metrics
//! ([`Metrics`], cargo feature `metrics`), the hooks that see every call
//! (`ServerBuilder::on_call`), and the bounds on metric labels.
//!
//! Terms:
//! - a **label** is one dimension of a metric (`method="add"`); every
//!   distinct value makes one more time series, so every label here takes
//!   values from a bounded set: methods the server registered, error codes
//!   and outgoing method names up to a bound, then the value `other`;
//! - a **call hook** sees every call of every connection, in both
//!   directions, once it has ended ([`CallEvent`]).

use std::sync::Arc;

use switchboard_shared::peer::CallEvent;

/// Whether a server keeps Prometheus metrics (cargo feature `metrics`).
#[cfg(feature = "metrics")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Metrics {
    /// Counted for every call, handshake, connection and publication, and
    /// served as `GET /metrics` (the default).
    #[default]
    On,
    /// Nothing is counted; `GET /metrics` answers 404. The engine then pays
    /// one branch per call (unless a call hook or the audit log listens).
    Off,
}

/// Runs once per call, in both directions, when it has ended.
pub(crate) type CallHook = Arc<dyn Fn(&CallEvent<'_>) + Send + Sync>;

/// Distinct names of methods the server calls on its clients that get a
/// label of their own; later ones count as `other` (a client may name any
/// method the server calls back, e.g. through a `callback` method).
#[cfg(feature = "metrics")]
pub(crate) const MAX_OUTGOING_METHODS: usize = 64;

/// Distinct error codes that get a label of their own; later ones count as
/// `other` (the other side of an outgoing call may answer with any code).
#[cfg(feature = "metrics")]
pub(crate) const MAX_ERROR_CODES: usize = 64;

/// The label of every method name and error code past the bounds, and of
/// incoming calls to methods the server does not have.
pub(crate) const OTHER: &str = "other";

/// The operators' settings of a server.
#[derive(Clone, Default)]
pub(crate) struct Telemetry {
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Metrics,
    pub(crate) call_hooks: Vec<CallHook>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Telemetry");
        #[cfg(feature = "metrics")]
        debug.field("metrics", &self.metrics);
        debug.field("call_hooks", &self.call_hooks.len()).finish()
    }
}
