//! What the serving layer counts: each upgrade request admitted or refused
//! (and why), each handshake that timed out.

use crate::serve::admission::{Admitted, Refusal};
use crate::state::hub::Hub;
use crate::state::telemetry::HandshakeRefusal;

/// Counts the admission checks' decision on one upgrade request.
pub(crate) fn admission(hub: &Hub, decision: &Result<Admitted, Refusal>) {
    let telemetry = hub.registry().telemetry();
    let reason = match decision {
        Ok(_) => return telemetry.handshake_accepted(),
        Err(Refusal::Origin(_)) => HandshakeRefusal::Origin,
        Err(Refusal::Auth(_)) => HandshakeRefusal::Auth,
        Err(Refusal::AuthTimeout(_)) => HandshakeRefusal::AuthTimeout,
        Err(Refusal::TooManyConnections { .. }) => HandshakeRefusal::Limit,
        Err(Refusal::ShuttingDown) => HandshakeRefusal::ShuttingDown,
        Err(Refusal::NotUpgrade { .. }) => HandshakeRefusal::Invalid,
    };
    telemetry.handshake_refused(reason);
}

/// Counts a client that did not finish its handshake within `handshake_timeout`.
pub(crate) fn handshake_timed_out(hub: &Hub) {
    hub.registry().telemetry().handshake_refused(HandshakeRefusal::Timeout);
}
