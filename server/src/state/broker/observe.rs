//! What a broker tells the server's metrics through its [`Fanout`]: how long
//! publishing takes, what fails, when it reconnects. A broker with a
//! backend (Redis...) calls these; the in-memory broker, which cannot fail
//! and publishes in a few microseconds, reports nothing. Each server
//! attached to the broker counts what is reported to its own fan-out.

use std::time::Duration;

use crate::state::broker::Fanout;
use crate::state::telemetry::BrokerOperation;

impl Fanout {
    /// Reports one publish: the time from the call to its position being
    /// known (`switchboard_broker_publish_duration_seconds`).
    pub fn observe_publish(&self, took: Duration) {
        if let Some(registry) = self.registry.upgrade() {
            registry.telemetry().broker_publish(took);
        }
    }

    /// Reports a failed operation (`switchboard_broker_errors_total{operation}`).
    pub fn observe_error(&self, operation: BrokerOperation) {
        if let Some(registry) = self.registry.upgrade() {
            registry.telemetry().broker_error(operation);
        }
    }

    /// Reports a reconnection to the backend (`switchboard_broker_reconnects_total`).
    pub fn observe_reconnect(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.telemetry().broker_reconnect();
        }
    }
}
