//! What the serving layer counts (each upgrade request admitted or refused
//! and why, each handshake that timed out) and what it answers operators:
//! `GET /metrics`, `/healthz` and `/readyz` (see [`operations`](crate::operations)).

use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};

use crate::serve::admission::{Admitted, Refusal};
use crate::state::hub::Hub;
use crate::state::telemetry::HandshakeRefusal;
use crate::state::telemetry::ready::readiness;

const TEXT: &str = "text/plain; charset=utf-8";

/// The answer to `GET` (or `HEAD`) of `/metrics`, `/healthz` or `/readyz`;
/// `None` for any other request.
pub(crate) async fn respond(hub: &Hub, method: &Method, path: &str) -> Option<Response<String>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let (status, content_type, body) = match path {
        "/metrics" => match hub.registry().telemetry().encode(hub.registry()) {
            Some((content_type, text)) => (StatusCode::OK, content_type, text),
            None => (StatusCode::NOT_FOUND, TEXT, "metrics are off\n".to_owned()),
        },
        "/healthz" => (StatusCode::OK, TEXT, "ok\n".to_owned()),
        "/readyz" => match readiness(hub).await {
            Ok(()) => (StatusCode::OK, TEXT, "ready\n".to_owned()),
            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("not ready: {why}\n")),
        },
        _ => return None,
    };
    let body = if method == Method::HEAD { String::new() } else { body };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(response)
}

/// 404 for a request none of the operations paths answers.
#[cfg_attr(not(feature = "http"), allow(dead_code, reason = "the listener and the routes use it"))]
pub(crate) fn not_found() -> Response<String> {
    let mut response = Response::new("not found\n".to_owned());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
    response
}

/// Counts the admission checks' decision on one upgrade request.
pub(crate) fn admission(hub: &Hub, decision: &Result<Admitted, Refusal>) {
    let telemetry = hub.registry().telemetry();
    let reason = match decision {
        Ok(_) => return telemetry.handshake_accepted(),
        Err(Refusal::Origin(_)) => HandshakeRefusal::Origin,
        Err(Refusal::Auth(_)) => HandshakeRefusal::Auth,
        Err(Refusal::AuthTimeout(_)) => HandshakeRefusal::AuthTimeout,
        Err(Refusal::TooManyConnections { .. }) => HandshakeRefusal::Limit,
        Err(Refusal::TooManyFromAddress { .. }) => HandshakeRefusal::LimitPerAddress,
        Err(Refusal::ShuttingDown) => HandshakeRefusal::ShuttingDown,
        Err(Refusal::NotUpgrade { .. }) => HandshakeRefusal::Invalid,
    };
    telemetry.handshake_refused(reason);
}

/// Counts a client that did not finish its handshake within `handshake_timeout`.
pub(crate) fn handshake_timed_out(hub: &Hub) {
    hub.registry().telemetry().handshake_refused(HandshakeRefusal::Timeout);
}
