//! Expiring credentials: a connection admitted with an identity that
//! expires is watched by a task of its own (connections whose credentials
//! never expire have none).
//!
//! Terms:
//! - at **expiry** the server calls `rpc.refresh` on the client (no params);
//! - the answer, a JSON string, is the **fresh credential**: the
//!   authenticator checks it as the `Authorization: Bearer` header of a copy
//!   of the connection's upgrade request (see `UpgradeRequest::refresh`);
//! - accepted, the connection lives on until the new identity's expiry, or
//!   for good if it has none (the connection keeps the identity data it was
//!   admitted with: handlers see no change);
//! - otherwise (no answer, an error, not a string, refused) the connection
//!   is closed with 4401 "credentials expired" at the end of the **grace
//!   period** (`refresh_grace` from the expiry); until then it is served as
//!   before, so calls in flight can finish.
//!
//! The credential is never logged: failures are logged by what went wrong,
//! not by what was sent.

use std::fmt;
use std::sync::Arc;

use switchboard_shared::PeerHandle;
use switchboard_shared::credentials::{CREDENTIALS_EXPIRED, CREDENTIALS_EXPIRED_REASON, REFRESH_METHOD};
use tokio::time::Instant;

use crate::config::auth::UpgradeRequest;
use crate::serve::admission::{self, Refusal};
use crate::state::hub::Hub;

/// Why a connection got no fresh credential.
#[derive(Debug)]
enum NotRefreshed {
    /// The call failed: no answer in time, an error answer (a client without
    /// a token provider answers -32601), the connection ended.
    Call(switchboard_shared::Error),
    /// The answer cannot be an `Authorization: Bearer` value.
    NotAToken,
    /// The authenticator refused it (or timed out).
    Refused(Refusal),
}

impl fmt::Display for NotRefreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRefreshed::Call(error) => write!(f, "{REFRESH_METHOD} failed: {error}"),
            NotRefreshed::NotAToken => write!(f, "the {REFRESH_METHOD} answer cannot be a bearer token"),
            NotRefreshed::Refused(refusal) => {
                write!(f, "the authenticator refused the fresh credential: {}", refusal.reason())
            }
        }
    }
}

/// Watches `peer`'s credentials, which expire at `expires`: asks for fresh
/// ones each time they do, closes the connection when none come.
pub(crate) fn watch(hub: &Arc<Hub>, peer: &PeerHandle, expires: Instant) {
    let (hub, peer) = (Arc::clone(hub), peer.clone());
    tokio::spawn(async move {
        let mut expires = expires;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(expires) => {}
                _ = peer.closed() => return,
            }
            let grace_end = Instant::now() + hub.settings().refresh_grace;
            let outcome = tokio::select! {
                outcome = refresh(&hub, &peer, grace_end) => outcome,
                _ = peer.closed() => return,
            };
            match outcome {
                Ok(Some(next)) => {
                    tracing::debug!(target: "switchboard::server", id = %peer.id(), "credentials refreshed");
                    expires = next;
                }
                Ok(None) => {
                    tracing::debug!(target: "switchboard::server", id = %peer.id(), "credentials refreshed; they no longer expire");
                    return;
                }
                Err(why) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(grace_end) => {}
                        _ = peer.closed() => return,
                    }
                    tracing::warn!(
                        target: "switchboard::server",
                        id = %peer.id(),
                        remote = ?peer.info().remote,
                        %why,
                        "credentials expired and were not refreshed within the grace period; closing with {CREDENTIALS_EXPIRED}"
                    );
                    peer.close(CREDENTIALS_EXPIRED, CREDENTIALS_EXPIRED_REASON);
                    return;
                }
            }
        }
    });
}

/// Asks the client for a fresh credential and has the authenticator check
/// it, all before `grace_end`: the new expiry (`None`: it never expires).
async fn refresh(hub: &Hub, peer: &PeerHandle, grace_end: Instant) -> Result<Option<Instant>, NotRefreshed> {
    let left = grace_end.saturating_duration_since(Instant::now());
    let credential: String = peer.call(REFRESH_METHOD, ()).timeout(left).await.map_err(NotRefreshed::Call)?;
    let upgrade = UpgradeRequest::refresh(peer.info(), peer.id(), credential.trim()).ok_or(NotRefreshed::NotAToken)?;
    let checking = admission::authenticate(hub, upgrade);
    let identity = tokio::time::timeout_at(grace_end, checking)
        .await
        .map_err(|_elapsed| NotRefreshed::Refused(Refusal::AuthTimeout(hub.settings().auth_timeout)))?
        .map_err(NotRefreshed::Refused)?;
    Ok(identity.deadline())
}
