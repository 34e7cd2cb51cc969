//! What a broker tells the server's metrics through its [`Fanout`]: how long
//! publishing takes, what fails, when it reconnects. A broker with a
//! backend calls these (the Redis broker does: publishes, snapshots and
//! history reads through [`reported`], its subscription connection's
//! losses and failures); the in-memory broker, which cannot fail and
//! publishes in a few microseconds, reports nothing. Each server attached
//! to the broker counts what is reported to its own fan-out.

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

/// `future`, a broker operation of `operation`'s kind, reported to every
/// server in `fanouts` when it ends: its failure as an error of that
/// operation, and for a publish also how long it took (from this call).
#[cfg(feature = "redis")]
pub(crate) fn reported<T: Send + 'static>(
    fanouts: &parking_lot::RwLock<Vec<Fanout>>,
    operation: BrokerOperation,
    future: crate::state::broker::BrokerFuture<T>,
) -> crate::state::broker::BrokerFuture<T> {
    let fanouts = fanouts.read().clone();
    let started = std::time::Instant::now();
    Box::pin(async move {
        let outcome = future.await;
        for fanout in &fanouts {
            match (&outcome, operation) {
                (Err(_), _) => fanout.observe_error(operation),
                (Ok(_), BrokerOperation::Publish) => fanout.observe_publish(started.elapsed()),
                (Ok(_), _) => {}
            }
        }
        outcome
    })
}
