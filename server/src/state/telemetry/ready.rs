//! Readiness: whether a server is ready for new connections (what
//! `GET /readyz` answers).

use std::fmt;
use std::time::Duration;

use crate::state::hub::Hub;
use crate::state::lifecycle::ServerPhase;

/// How long the readiness check waits for the broker's answer.
pub(crate) const BROKER_CHECK: Duration = Duration::from_secs(1);

/// Why a server is not ready for new connections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotReady {
    /// A graceful shutdown has begun (or is over): no new connection is accepted.
    ShuttingDown,
    /// The broker failed its check (the broker's error says why);
    /// publications and subscriptions would fail.
    BrokerUnavailable(String),
    /// The broker did not answer its check within a second.
    BrokerTimedOut,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::ShuttingDown => f.write_str("the server is shutting down"),
            NotReady::BrokerUnavailable(why) => f.write_str(why),
            NotReady::BrokerTimedOut => write!(f, "the broker did not answer within {BROKER_CHECK:?}"),
        }
    }
}

impl std::error::Error for NotReady {}

/// Running (no shutdown begun) and the broker reachable within [`BROKER_CHECK`].
pub(crate) async fn readiness(hub: &Hub) -> Result<(), NotReady> {
    if hub.phase() != ServerPhase::Running {
        return Err(NotReady::ShuttingDown);
    }
    match tokio::time::timeout(BROKER_CHECK, hub.broker().check_ready()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(NotReady::BrokerUnavailable(error.to_string())),
        Err(_elapsed) => Err(NotReady::BrokerTimedOut),
    }
}
