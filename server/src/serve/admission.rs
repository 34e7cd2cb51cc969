//! Admission: the checks every upgrade request passes, in this order, each
//! refusing before any WebSocket frame is exchanged:
//!
//! 1. a shutdown under way: HTTP 503;
//! 2. the origin policy (same origin by default): HTTP 403;
//! 3. the connection limits, in all and per client address: HTTP 503 (a
//!    slot is taken here);
//! 4. the authenticator: HTTP 401 / 403, or the connection's identity; an
//!    asynchronous one that does not decide within `auth_timeout`: HTTP 503.
//!
//! The server's own handshake and every HTTP layer that upgrades by itself
//! ([`ServerHandle::admit`](crate::ServerHandle::admit)) run the same checks.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use switchboard_shared::ConnectionInfo;

use crate::config::auth::{Auth, Identity, Rejection, UpgradeRequest, mark_secrets};
use crate::serve::error::ServeError;
use crate::state::hub::Hub;
use crate::state::lifecycle::{NoSlot, ServerPhase, Slot};

/// An upgrade request that passed every check.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) info: ConnectionInfo,
    pub(crate) slot: Slot,
    /// When its credentials expire, if they do.
    pub(crate) expires: Option<tokio::time::Instant>,
}

/// Why an upgrade request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a valid WebSocket upgrade request (400), or another version (426).
    NotUpgrade {
        status: StatusCode,
        reason: &'static str,
    },
    ShuttingDown,
    TooManyConnections {
        limit: usize,
    },
    TooManyFromAddress {
        limit: usize,
    },
    Origin(String),
    Auth(Rejection),
    AuthTimeout(Duration),
}

impl Refusal {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Refusal::NotUpgrade { status, .. } => *status,
            Refusal::ShuttingDown
            | Refusal::TooManyConnections { .. }
            | Refusal::TooManyFromAddress { .. }
            | Refusal::AuthTimeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Origin(_) => StatusCode::FORBIDDEN,
            Refusal::Auth(rejection) => rejection.status(),
        }
    }

    pub(crate) fn reason(&self) -> String {
        match self {
            Refusal::NotUpgrade { reason, .. } => (*reason).to_owned(),
            Refusal::ShuttingDown => "the server is shutting down".into(),
            Refusal::TooManyConnections { limit } => format!("the server is at its limit of {limit} connections"),
            Refusal::TooManyFromAddress { limit } => {
                format!("this address already has the server's limit of {limit} connections open")
            }
            Refusal::Origin(reason) => reason.clone(),
            Refusal::Auth(rejection) => rejection.reason().to_owned(),
            Refusal::AuthTimeout(timeout) => format!("authentication did not finish within {timeout:?}; try again"),
        }
    }

    /// The HTTP response the client gets: the status, the reason as a
    /// plain-text body, and the headers that go with it.
    pub(crate) fn response(&self) -> http::Response<String> {
        let mut response = http::Response::new(self.reason());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        match self {
            Refusal::Auth(Rejection::Unauthorized(_)) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Refusal::TooManyConnections { .. } | Refusal::TooManyFromAddress { .. } | Refusal::AuthTimeout(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Refusal::NotUpgrade { status: StatusCode::UPGRADE_REQUIRED, .. } => {
                headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            _ => {}
        }
        response
    }

    pub(crate) fn into_error(self) -> ServeError {
        match self {
            Refusal::ShuttingDown => ServeError::ShuttingDown,
            Refusal::TooManyConnections { limit } => ServeError::TooManyConnections { limit },
            Refusal::TooManyFromAddress { limit } => ServeError::TooManyFromAddress { limit },
            other => ServeError::Refused { status: other.status().as_u16(), reason: other.reason() },
        }
    }
}

impl From<NoSlot> for Refusal {
    fn from(no_slot: NoSlot) -> Self {
        match no_slot {
            NoSlot::ShuttingDown => Refusal::ShuttingDown,
            NoSlot::Full { limit } => Refusal::TooManyConnections { limit },
            NoSlot::FullForAddress { limit } => Refusal::TooManyFromAddress { limit },
        }
    }
}

/// Runs the admission checks on an upgrade request (its head), logging a
/// refusal. The slot is taken before the authenticator runs, so at most
/// `max_connections` authentications run at once.
pub(crate) async fn admit(
    hub: &Hub,
    request: http::Request<()>,
    remote: Option<SocketAddr>,
) -> Result<Admitted, Refusal> {
    let path = request.uri().path().to_owned();
    let admitted = checks(hub, request, remote).await;
    crate::serve::observe::admission(hub, &admitted);
    if let Err(refusal) = &admitted {
        log_refusal(refusal, &path, remote);
    }
    admitted
}

async fn checks(hub: &Hub, mut request: http::Request<()>, remote: Option<SocketAddr>) -> Result<Admitted, Refusal> {
    if hub.phase() != ServerPhase::Running {
        return Err(Refusal::ShuttingDown);
    }
    mark_secrets(request.headers_mut());
    let text = |name| request.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let host = text(header::HOST).or_else(|| request.uri().authority().map(|a| a.as_str()));
    hub.policies().origins.check(text(header::ORIGIN), host).map_err(Refusal::Origin)?;
    let slot = hub.reserve(remote.map(|r| r.ip()))?;
    let (request, identity) = match &hub.policies().authenticator {
        None => (request, Identity::new()),
        Some(_) => {
            let upgrade = UpgradeRequest::new(request, remote);
            let identity = authenticate(hub, upgrade.clone()).await?;
            (upgrade.into_request(), identity)
        }
    };
    let expires = identity.deadline();
    let (parts, ()) = request.into_parts();
    let info = ConnectionInfo {
        id: uuid::Uuid::new_v4(),
        remote,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: kept_headers(parts.headers),
        auth: identity.json,
        extensions: identity.extensions,
    };
    Ok(Admitted { info, slot, expires })
}

/// The headers of the handshake itself: once upgraded they say nothing
/// about the client, and the connection keeps its headers for its whole life.
const HANDSHAKE_HEADERS: [header::HeaderName; 5] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// What a connection keeps of its upgrade request's headers: all but the
/// handshake's own, in a map of the size they need (a map grown one header
/// at a time has room for at least six, about 600 bytes).
fn kept_headers(headers: http::HeaderMap) -> http::HeaderMap {
    use http::header::Entry;
    let names = headers.keys().filter(|name| !HANDSHAKE_HEADERS.contains(name)).count();
    let mut kept = http::HeaderMap::with_capacity(names);
    // `into_iter` names a header at its first value only, the others follow
    // it; names are moved, not cloned (a clone of a custom name allocates).
    let mut current = None;
    for (name, value) in headers {
        if let Some(name) = name {
            current = None;
            if HANDSHAKE_HEADERS.contains(&name) {
                continue;
            }
            current = Some(match kept.entry(name) {
                Entry::Occupied(mut entry) => {
                    entry.append(value);
                    entry
                }
                Entry::Vacant(entry) => entry.insert_entry(value),
            });
        } else if let Some(entry) = &mut current {
            entry.append(value);
        }
    }
    kept
}

/// Runs the authenticator (none accepts everyone): a synchronous one at
/// once, an asynchronous one within `auth_timeout`.
pub(crate) async fn authenticate(hub: &Hub, upgrade: UpgradeRequest) -> Result<Identity, Refusal> {
    match &hub.policies().authenticator {
        None => Ok(Identity::new()),
        Some(Auth::Sync(authenticator)) => authenticator.authenticate(&upgrade).map_err(Refusal::Auth),
        Some(Auth::Async(authenticator)) => {
            let timeout = hub.settings().auth_timeout;
            let decided = tokio::time::timeout(timeout, authenticator.authenticate(upgrade)).await;
            decided.map_err(|_elapsed| Refusal::AuthTimeout(timeout))?.map_err(Refusal::Auth)
        }
    }
}

/// An upgrade request that passed every admission check. It holds one of the
/// server's connection slots until it is served with
/// [`ServerHandle::serve_websocket`](crate::ServerHandle::serve_websocket)
/// (then until that connection ends) or dropped.
#[derive(Debug)]
#[must_use = "an admission holds a connection slot until it is served or dropped"]
pub struct Admission {
    pub(crate) admitted: Admitted,
}

impl Admission {
    /// What handlers will see of the connection (id, path, query, headers,
    /// auth data); the remote address is the one given to `admit`.
    pub fn info(&self) -> &ConnectionInfo {
        &self.admitted.info
    }

    /// Lets the HTTP layer add to it (extensions for handlers, say).
    pub fn info_mut(&mut self) -> &mut ConnectionInfo {
        &mut self.admitted.info
    }
}

/// Why an upgrade request was refused; answer the client with
/// [`response`](Self::response) instead of upgrading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub(crate) refusal: Refusal,
}

impl Refused {
    /// 503 (shutting down, connection limits, authenticator timed out), 403
    /// (origin, authenticator), 401 (authenticator), or 400 / 426 (not a
    /// valid WebSocket upgrade request).
    pub fn status(&self) -> StatusCode {
        self.refusal.status()
    }

    /// Why, as the response body says it.
    pub fn reason(&self) -> String {
        self.refusal.reason()
    }

    /// The HTTP response to send: the status, a plain-text body, and
    /// `WWW-Authenticate` or `Retry-After` where they apply.
    pub fn response(&self) -> http::Response<String> {
        self.refusal.response()
    }

    /// The same refusal as the server's own handshake reports it.
    pub fn into_error(self) -> ServeError {
        self.refusal.into_error()
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status().as_u16(), self.reason())
    }
}

impl std::error::Error for Refused {}

fn log_refusal(refusal: &Refusal, path: &str, remote: Option<SocketAddr>) {
    let status = refusal.status().as_u16();
    let reason = refusal.reason();
    match refusal {
        Refusal::ShuttingDown | Refusal::NotUpgrade { .. } => {
            tracing::info!(target: "switchboard::server", remote = ?remote, path, status, reason, "connection rejected");
        }
        _ => {
            tracing::warn!(target: "switchboard::server", remote = ?remote, path, status, reason, "connection rejected")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(headers: &[(&str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(header::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_connection_keeps_every_header_but_the_handshakes_own() {
        let kept = kept_headers(map(&[
            ("host", "hub.example.com"),
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("sec-websocket-protocol", "jsonrpc"),
            ("cookie", "a=1"),
            ("x-tenant", "blue"),
            ("cookie", "b=2"),
        ]));
        let pairs: Vec<(String, &str)> =
            kept.iter().map(|(name, value)| (name.to_string(), value.to_str().unwrap())).collect();
        let expected = [
            ("host", "hub.example.com"),
            ("sec-websocket-protocol", "jsonrpc"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x-tenant", "blue"),
        ];
        assert_eq!(pairs, expected.map(|(name, value)| (name.to_owned(), value)));
    }

    #[test]
    fn the_kept_headers_take_the_room_they_need() {
        let kept = kept_headers(map(&[("host", "hub"), ("upgrade", "websocket"), ("connection", "upgrade")]));
        assert_eq!(kept.len(), 1);
        // One header: room for one, not the six a map grown one header at a time has.
        assert_eq!(kept.capacity(), 1);
        assert_eq!(kept_headers(map(&[("upgrade", "websocket")])).capacity(), 0);
    }
}
