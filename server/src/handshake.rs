//! The WebSocket upgrade: admission checks on the HTTP request, in this
//! order, each refusing before any WebSocket frame is exchanged:
//!
//! 1. a shutdown under way: HTTP 503;
//! 2. the Origin allow-list: HTTP 403;
//! 3. the connection limit: HTTP 503 (a slot is taken here);
//! 4. the authenticator: HTTP 401 / 403, or auth data for the context.
//!
//! The whole upgrade must finish within the handshake timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, StatusCode, header};
use switchboard_shared::ConnectionInfo;
use switchboard_shared::tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use switchboard_shared::tokio_tungstenite::tungstenite::{self, Error as WsError};
use switchboard_shared::tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::auth::{Rejection, UpgradeRequest};
use crate::error::ServeError;
use crate::hub::Hub;
use crate::lifecycle::{NoSlot, Slot};

/// An upgrade request that passed every check.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) info: ConnectionInfo,
    pub(crate) slot: Slot,
}

/// Why an upgrade request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    ShuttingDown,
    TooManyConnections { limit: usize },
    Origin(String),
    Auth(Rejection),
}

impl Refusal {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Refusal::ShuttingDown | Refusal::TooManyConnections { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Origin(_) => StatusCode::FORBIDDEN,
            Refusal::Auth(rejection) => rejection.status(),
        }
    }

    pub(crate) fn reason(&self) -> String {
        match self {
            Refusal::ShuttingDown => "the server is shutting down".into(),
            Refusal::TooManyConnections { limit } => format!("the server is at its limit of {limit} connections"),
            Refusal::Origin(reason) => reason.clone(),
            Refusal::Auth(rejection) => rejection.reason().to_owned(),
        }
    }

    /// The HTTP response the client gets.
    pub(crate) fn response(&self) -> ErrorResponse {
        let mut response = ErrorResponse::new(Some(self.reason()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        match self {
            Refusal::Auth(Rejection::Unauthorized(_)) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Refusal::TooManyConnections { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }

    pub(crate) fn into_error(self) -> ServeError {
        match self {
            Refusal::ShuttingDown => ServeError::ShuttingDown,
            Refusal::TooManyConnections { limit } => ServeError::TooManyConnections { limit },
            other => ServeError::Refused { status: other.status().as_u16(), reason: other.reason() },
        }
    }
}

impl From<NoSlot> for Refusal {
    fn from(no_slot: NoSlot) -> Self {
        match no_slot {
            NoSlot::ShuttingDown => Refusal::ShuttingDown,
            NoSlot::Full { limit } => Refusal::TooManyConnections { limit },
        }
    }
}

/// Runs the admission checks on an upgrade request.
pub(crate) fn admit(hub: &Arc<Hub>, request: &Request, remote: Option<SocketAddr>) -> Result<Admitted, Refusal> {
    if hub.lifecycle.phase() != crate::Phase::Running {
        return Err(Refusal::ShuttingDown);
    }
    let upgrade = UpgradeRequest::new(request, remote);
    hub.policies.origins.check(upgrade.origin()).map_err(Refusal::Origin)?;
    let slot = hub.lifecycle.reserve()?;
    let auth = match &hub.policies.authenticator {
        Some(authenticator) => Some(authenticator.authenticate(&upgrade).map_err(Refusal::Auth)?),
        None => None,
    };
    let info = ConnectionInfo {
        id: uuid::Uuid::new_v4(),
        remote,
        path: upgrade.path().to_owned(),
        query: upgrade.query().map(str::to_owned),
        headers: request.headers().clone(),
        auth,
        extensions: http::Extensions::new(),
    };
    Ok(Admitted { info, slot })
}

/// Performs the server side of the upgrade on `stream`, with the admission
/// checks and the handshake timeout.
pub(crate) async fn upgrade<S>(
    hub: &Arc<Hub>,
    stream: S,
    remote: Option<SocketAddr>,
) -> Result<(WebSocketStream<S>, Admitted), ServeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut outcome: Option<Result<Admitted, Refusal>> = None;
    #[expect(clippy::result_large_err, reason = "the signature is tungstenite's `Callback`")]
    let callback = |request: &Request, response: Response| {
        let admission = admit(hub, request, remote);
        let reply = match &admission {
            Ok(_) => Ok(response),
            Err(refusal) => {
                log_refusal(refusal, request, remote);
                Err(refusal.response())
            }
        };
        outcome = Some(admission);
        reply
    };
    let timeout = hub.settings.handshake_timeout;
    let handshake = accept_hdr_async_with_config(stream, callback, Some(hub.ws_config));
    let result = tokio::time::timeout(timeout, handshake).await;
    match (result, outcome) {
        (Err(_elapsed), _) => {
            tracing::debug!(target: "switchboard::server", remote = ?remote, ?timeout, "handshake timed out");
            Err(ServeError::HandshakeTimeout(timeout))
        }
        (Ok(Ok(ws)), Some(Ok(admitted))) => Ok((ws, admitted)),
        (Ok(_), Some(Err(refusal))) => Err(refusal.into_error()),
        (Ok(Err(e)), _) => {
            tracing::debug!(target: "switchboard::server", remote = ?remote, error = %e, "handshake failed");
            Err(ServeError::Handshake(Box::new(e)))
        }
        // The callback runs on every successful upgrade.
        (Ok(Ok(_)), None) => Err(ServeError::Handshake(Box::new(WsError::Protocol(
            tungstenite::error::ProtocolError::HandshakeIncomplete,
        )))),
    }
}

pub(crate) fn log_refusal(refusal: &Refusal, request: &Request, remote: Option<SocketAddr>) {
    let status = refusal.status().as_u16();
    let reason = refusal.reason();
    let path = request.uri().path();
    match refusal {
        Refusal::ShuttingDown => {
            tracing::info!(target: "switchboard::server", remote = ?remote, path, status, reason, "connection rejected");
        }
        _ => {
            tracing::warn!(target: "switchboard::server", remote = ?remote, path, status, reason, "connection rejected")
        }
    }
}
