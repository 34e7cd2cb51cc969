//! Built without the cargo feature `metrics`: no metrics are kept. A type
//! with no values stands in for them, so the telemetry's `Option` of it is
//! always `None` and the code around it is the same with the feature or
//! without.

use std::time::Duration;

use switchboard_shared::peer::{CallEvent, FlowEvent};

use crate::config::telemetry::Telemetry as Settings;
use crate::state::telemetry::{BrokerOperation, HandshakeRefusal, Live, MethodStats};

/// Never used: there are no metrics without the feature.
pub(crate) const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// No metrics: this type has no values.
#[derive(Debug)]
pub(crate) enum Metrics {}

#[allow(clippy::unused_self, reason = "the same methods as the real metrics, on a type with no values")]
impl Metrics {
    pub(crate) fn new(_settings: &Settings) -> Option<Self> {
        None
    }
    pub(crate) fn know_methods<'a>(&self, _names: impl Iterator<Item = &'a str>) {
        match *self {}
    }
    pub(crate) fn call(&self, _event: &CallEvent<'_>) {
        match *self {}
    }
    pub(crate) fn flow(&self, _event: FlowEvent<'_>) {
        match *self {}
    }
    pub(crate) fn handshake_accepted(&self) {
        match *self {}
    }
    pub(crate) fn handshake_refused(&self, _reason: HandshakeRefusal) {
        match *self {}
    }
    pub(crate) fn connection_opened(&self) {
        match *self {}
    }
    pub(crate) fn connection_closed(&self, _reason: &'static str) {
        match *self {}
    }
    pub(crate) fn publication(&self, _subscribers: usize) {
        match *self {}
    }
    pub(crate) fn resumed(&self, _recovered: bool, _replayed: usize) {
        match *self {}
    }
    pub(crate) fn broker_publish(&self, _took: Duration) {
        match *self {}
    }
    pub(crate) fn broker_error(&self, _operation: BrokerOperation) {
        match *self {}
    }
    pub(crate) fn broker_reconnect(&self) {
        match *self {}
    }
    pub(crate) fn encode(&self, _live: &Live) -> String {
        match *self {}
    }
    pub(crate) fn method_stats(&self) -> Vec<MethodStats> {
        match *self {}
    }
}
